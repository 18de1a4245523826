//! lxc: a wasmstack hypervisor driver for Linux containers, through libvirt's LXC driver.
//!
//! Written outside wasmstack from `wasmstack plugins new --kind hypervisor lxc`: it serves
//! a hypervisor type of its own, "LXC", which the server knows only from `describe`.
//!
//! A VM is a container whose init is a small shell script. Its root is the host's root
//! file system, read-only, with a private /dev (libvirt's) and /run (a small tmpfs); the
//! script brings the NICs up, asks DHCP for their addresses (BusyBox `udhcpc`), and waits.
//! It ends on SIGTERM, and on the message libvirt's plain shutdown writes to the container's
//! initctl FIFO, so a graceful stop works either way.
//!
//! Containers cannot boot disk images: the disks of a VM spec are not attached (their
//! volumes stay where the storage driver made them), and a disk cannot be attached to or
//! detached from a container, so the type declares no features at all.

wit_bindgen::generate!({ world: "hypervisor-driver", path: "wit", generate_all });

use std::fmt::Write as _;
use std::thread::sleep;
use std::time::{Duration, Instant};

use exports::wasmstack::driver::hypervisor::{
    ConsoleEndpoint, Disk, Guest as Hypervisor, HostFacts, HostTarget, Nic, SwitchKind, VmPower, VmSpec, VmStats,
    VmStatus,
};
use exports::wasmstack::driver::plugin::{
    Capability, DriverKind, Guest as Plugin, HypervisorFeatures, HypervisorType, PluginInfo, Serves,
};
use wasmstack::driver::libvirt::{Connection, DomainState};
use wasmstack::driver::log::{Level, log};
use wasmstack::driver::types::DriverError;

/// The hypervisor type this driver serves, as operators spell it in `addHost`.
const TYPE: &str = "LXC";

/// libvirt's test driver: containers defined there run nowhere.
const SIMULATOR: &str = "test:///default";

/// How often stop-vm looks whether the container has ended.
const POLL: Duration = Duration::from_millis(100);

/// The container's init. libvirt runs it as `/bin/sh -c SCRIPT`, PID 1 of the container.
const INIT: &str = r#"trap 'exit 0' TERM
busybox mkfifo -m 600 /run/initctl && exec 3<>/run/initctl
printf '#!/bin/sh\n[ "$1" = bound ] && busybox ip addr add "$ip/$mask" dev "$interface"\nexit 0\n' > /run/dhcp.sh
busybox chmod 700 /run/dhcp.sh
busybox ip link set lo up
for i in $(busybox ls /sys/class/net); do
  [ "$i" = lo ] || { busybox ip link set "$i" up; busybox udhcpc -i "$i" -q -n -t 10 -T 1 -s /run/dhcp.sh >/dev/null 2>&1 & }
done
busybox head -c 1 <&3 >/dev/null &
wait $!
exit 0
"#;

struct Lxc;

impl Plugin for Lxc {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "lxc".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: DriverKind::Hypervisor,
            serves: Serves::Hypervisor(vec![HypervisorType {
                name: TYPE.into(),
                features: HypervisorFeatures::empty(),
            }]),
            description: "Linux containers (hypervisor type LXC) through libvirt's LXC driver: each VM is a \
                          container on the host's root file system, read-only, whose NICs take their addresses \
                          by DHCP (needs /bin/sh and busybox on the host). Containers boot no disk images: a VM's \
                          disks are not attached, and disks cannot be hot-plugged. Hosts: addHost url=lxc:///system \
                          (or lxc:///system?socket=PATH for a daemon of its own); grant libvirt = [\"lxc:///system*\"]. \
                          It also runs on libvirt's test driver (test:///default), where `plugins check` tries it."
                .into(),
            // The test driver takes container definitions too, so `plugins check` can run
            // every call against it without a container daemon.
            capabilities: vec![Capability::Libvirt("lxc:///system*".into()), Capability::Libvirt(SIMULATOR.into())],
            config_schema: "{}".into(),
        }
    }
}

/// Keeps the kind of a host error, saying what the driver was doing.
fn doing(what: &str) -> impl Fn(DriverError) -> DriverError + '_ {
    move |e| match e {
        DriverError::InvalidSpec(m) => DriverError::InvalidSpec(format!("{what}: {m}")),
        DriverError::NotFound(m) => DriverError::NotFound(format!("{what}: {m}")),
        DriverError::Unavailable(m) => DriverError::Unavailable(format!("{what}: {m}")),
        DriverError::Denied(m) => DriverError::Denied(format!("{what}: {m}")),
        DriverError::Unsupported(m) => DriverError::Unsupported(format!("{what}: {m}")),
        DriverError::Failed(m) => DriverError::Failed(format!("{what}: {m}")),
    }
}

/// The host names domains by lowercase UUID.
fn canonical(uuid: &str) -> String {
    uuid.trim().to_ascii_lowercase()
}

/// The container's state; `None` when the daemon does not know it.
fn state_of(conn: &Connection, uuid: &str) -> Result<Option<DomainState>, DriverError> {
    match conn.domain_state(uuid) {
        Ok(s) => Ok(Some(s)),
        Err(DriverError::NotFound(_)) => Ok(None),
        Err(e) => Err(doing(&format!("state of {uuid}"))(e)),
    }
}

/// Whether the container has processes (libvirt_lxc runs for it).
fn active(state: DomainState) -> bool {
    !matches!(state, DomainState::ShutOff | DomainState::NoState)
}

fn power(state: DomainState) -> VmPower {
    match state {
        DomainState::Running | DomainState::Blocked | DomainState::ShuttingDown => VmPower::Running,
        DomainState::ShutOff | DomainState::NoState => VmPower::Stopped,
        DomainState::Paused | DomainState::Suspended => VmPower::Paused,
        DomainState::Crashed => VmPower::Crashed,
    }
}

/// Ends the container at once, content when it has ended meanwhile.
fn kill(conn: &Connection, uuid: &str) -> Result<(), DriverError> {
    match conn.destroy_domain(uuid) {
        Ok(()) => Ok(()),
        Err(e) => match state_of(conn, uuid)? {
            Some(s) if active(s) => Err(doing(&format!("power off {uuid}"))(e)),
            _ => Ok(()),
        },
    }
}

/// Text for an XML attribute or element.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn interface_xml(out: &mut String, nic: &Nic) {
    let _ = write!(
        out,
        "<interface type='bridge'><mac address='{}'/><source bridge='{}'/>",
        esc(&nic.mac),
        esc(&nic.bridge)
    );
    if nic.switch == SwitchKind::Openvswitch {
        out.push_str("<virtualport type='openvswitch'/>");
        if let Some(tag) = nic.vlan {
            let _ = write!(out, "<vlan><tag id='{tag}'/></vlan>");
        }
    }
    if let Some(dev) = &nic.host_device {
        let _ = write!(out, "<target dev='{}'/>", esc(dev));
    }
    out.push_str("</interface>");
}

/// The container's domain XML.
fn domain_xml(spec: &VmSpec) -> String {
    let mut x = String::new();
    let _ = write!(
        x,
        "<domain type='lxc'><name>{}</name><uuid>{}</uuid><memory unit='MiB'>{}</memory><vcpu>{}</vcpu>\
         <os><type>exe</type><init>/bin/sh</init><initarg>-c</initarg><initarg>{}</initarg></os>\
         <features><privnet/></features><on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot>\
         <on_crash>destroy</on_crash><devices><emulator>/usr/lib/libvirt/libvirt_lxc</emulator>\
         <filesystem type='mount' accessmode='passthrough'><source dir='/'/><target dir='/'/><readonly/></filesystem>\
         <filesystem type='ram' accessmode='passthrough'><source usage='1024' units='KiB'/><target dir='/run'/></filesystem>",
        esc(&spec.name),
        esc(&canonical(&spec.uuid)),
        spec.memory_mib.max(16),
        spec.vcpus.max(1),
        esc(INIT),
    );
    for nic in &spec.nics {
        interface_xml(&mut x, nic);
    }
    x.push_str("<console type='pty'/></devices></domain>");
    x
}

/// Checks what a container can be given; says why not otherwise.
fn check_spec(spec: &VmSpec) -> Result<(), DriverError> {
    let bad = |what: &str, v: &str| {
        DriverError::InvalidSpec(format!("{what} \"{v}\" is not usable in a container's definition"))
    };
    if spec.name.is_empty()
        || spec.name.len() > 64
        || !spec.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(bad("name", &spec.name));
    }
    for nic in &spec.nics {
        let mac_ok =
            nic.mac.len() == 17 && nic.mac.split(':').all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
        if !mac_ok {
            return Err(bad("MAC", &nic.mac));
        }
        if nic.bridge.is_empty() || nic.bridge.len() > 15 {
            return Err(bad("bridge", &nic.bridge));
        }
    }
    Ok(())
}

/// The host part of an `http://H[:port][/...]` URL.
fn http_host(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') { host } else { host.split(':').next()? };
    (!host.is_empty()).then_some(host)
}

impl Hypervisor for Lxc {
    fn connect_host(hypervisor_type: String, url: String) -> Result<HostTarget, DriverError> {
        if !hypervisor_type.eq_ignore_ascii_case(TYPE) {
            return Err(DriverError::InvalidSpec(format!("lxc serves hypervisor type {TYPE}, not {hypervisor_type}")));
        }
        let url = url.trim();
        if url == SIMULATOR {
            return Ok(HostTarget { url: url.to_owned(), address: "127.0.0.1".into() });
        }
        if let Some(rest) = url.strip_prefix("lxc://") {
            // lxc:///system, possibly with ?socket=... for a daemon of its own: this host.
            let host = rest.split(['/', '?']).next().unwrap_or("");
            let address = if host.is_empty() { "127.0.0.1" } else { host };
            return Ok(HostTarget { url: url.to_owned(), address: address.to_owned() });
        }
        match http_host(url) {
            Some(h) if h == "localhost" || h == "127.0.0.1" => {
                Ok(HostTarget { url: "lxc:///system".into(), address: "127.0.0.1".into() })
            }
            Some(h) => Ok(HostTarget { url: format!("lxc+ssh://{h}/system"), address: h.to_owned() }),
            None => Err(DriverError::InvalidSpec(format!(
                "host URL \"{url}\" is not one lxc takes: give lxc:///system, lxc:///system?socket=PATH, http://HOST or {SIMULATOR}"
            ))),
        }
    }

    fn probe_host(url: String) -> Result<HostFacts, DriverError> {
        let conn = Connection::open(&url)?;
        let node = conn.node_info().map_err(doing("node info"))?;
        let version = conn.hypervisor_version().map_err(doing("hypervisor version"))?;
        Ok(HostFacts {
            cpus: node.cpus,
            cpu_mhz: node.mhz,
            cpu_model: node.cpu_model,
            memory_bytes: node.memory_kib.saturating_mul(1024),
            hypervisor_version: version,
            // Containers run on the host's kernel: there is nothing to accelerate.
            hardware_accel: false,
        })
    }

    fn create_vm(url: String, spec: VmSpec) -> Result<(), DriverError> {
        check_spec(&spec)?;
        let conn = Connection::open(&url)?;
        let uuid = canonical(&spec.uuid);
        if let Some(state) = state_of(&conn, &uuid)? {
            // libvirt will not rename through define: a stopped container is defined anew.
            if active(state) {
                return Err(DriverError::InvalidSpec(format!("container {uuid} runs; stop it before redefining it")));
            }
            conn.undefine_domain(&uuid).map_err(doing(&format!("undefine {uuid}")))?;
        }
        conn.define_domain(&domain_xml(&spec)).map_err(doing(&format!("define {}", spec.name)))?;
        log(
            Level::Info,
            &format!(
                "defined container {} ({uuid}): {} NIC(s), {} disk(s) not attached",
                spec.name,
                spec.nics.len(),
                spec.disks.len()
            ),
        );
        Ok(())
    }

    fn start_vm(url: String, uuid: String) -> Result<(), DriverError> {
        let conn = Connection::open(&url)?;
        let uuid = canonical(&uuid);
        match state_of(&conn, &uuid)? {
            None => Err(DriverError::NotFound(format!("no container {uuid} on this host"))),
            Some(DomainState::Paused | DomainState::Suspended) => {
                conn.resume_domain(&uuid).map_err(doing(&format!("resume {uuid}")))
            }
            Some(DomainState::Crashed) => {
                kill(&conn, &uuid)?;
                conn.start_domain(&uuid).map_err(doing(&format!("start {uuid}")))
            }
            Some(s) if active(s) => Ok(()),
            Some(_) => conn.start_domain(&uuid).map_err(doing(&format!("start {uuid}"))),
        }
    }

    fn stop_vm(url: String, uuid: String, timeout_ms: u32) -> Result<(), DriverError> {
        let conn = Connection::open(&url)?;
        let uuid = canonical(&uuid);
        let Some(state) = state_of(&conn, &uuid)? else {
            return Err(DriverError::NotFound(format!("no container {uuid} on this host")));
        };
        if !active(state) {
            return Ok(());
        }
        if timeout_ms > 0 && matches!(state, DomainState::Running | DomainState::Blocked) {
            conn.shutdown_domain(&uuid).map_err(doing(&format!("shut down {uuid}")))?;
            let deadline = Instant::now() + Duration::from_millis(timeout_ms.into());
            while Instant::now() < deadline {
                sleep(POLL);
                if !state_of(&conn, &uuid)?.is_some_and(active) {
                    return Ok(());
                }
            }
            log(Level::Info, &format!("container {uuid} did not end within {timeout_ms} ms; killing it"));
        }
        kill(&conn, &uuid)
    }

    fn reboot_vm(url: String, uuid: String, forced: bool) -> Result<(), DriverError> {
        // A container's reboot is a new init: end the old one (gently unless forced), start again.
        let timeout = if forced { 0 } else { 10_000 };
        Self::stop_vm(url.clone(), uuid.clone(), timeout)?;
        Self::start_vm(url, uuid)
    }

    fn destroy_vm(url: String, uuid: String) -> Result<(), DriverError> {
        let conn = Connection::open(&url)?;
        let uuid = canonical(&uuid);
        let Some(state) = state_of(&conn, &uuid)? else { return Ok(()) };
        if active(state) {
            kill(&conn, &uuid)?;
        }
        match conn.undefine_domain(&uuid) {
            Ok(()) | Err(DriverError::NotFound(_)) => Ok(()),
            Err(e) => Err(doing(&format!("undefine {uuid}"))(e)),
        }
    }

    fn power_state(url: String, uuid: String) -> Result<VmPower, DriverError> {
        let conn = Connection::open(&url)?;
        Ok(state_of(&conn, &canonical(&uuid))?.map_or(VmPower::Missing, power))
    }

    fn list_vms(url: String) -> Result<Vec<VmStatus>, DriverError> {
        let conn = Connection::open(&url)?;
        let domains = conn.list_domains().map_err(doing("list containers"))?;
        Ok(domains.into_iter().map(|d| VmStatus { uuid: d.uuid, name: d.name, power: power(d.state) }).collect())
    }

    fn console(_url: String, uuid: String) -> Result<ConsoleEndpoint, DriverError> {
        Err(DriverError::Unsupported(format!(
            "container {uuid} has no graphical console (LXC has a text console only)"
        )))
    }

    fn stats(url: String, uuid: String) -> Result<VmStats, DriverError> {
        let conn = Connection::open(&url)?;
        let s = conn.domain_stats(&canonical(&uuid)).map_err(doing(&format!("stats of {uuid}")))?;
        Ok(VmStats { cpu_time_ns: s.cpu_time_ns, memory_kib: s.memory_kib })
    }

    fn attach_disk(_url: String, uuid: String, disk: Disk) -> Result<(), DriverError> {
        Err(DriverError::Unsupported(format!(
            "LXC cannot hot-plug disks: container {uuid} cannot take disk {}",
            disk.target
        )))
    }

    fn detach_disk(_url: String, uuid: String, target: String) -> Result<(), DriverError> {
        Err(DriverError::Unsupported(format!(
            "LXC cannot hot-plug disks: container {uuid} has no disk {target} to remove"
        )))
    }
}

export!(Lxc);
