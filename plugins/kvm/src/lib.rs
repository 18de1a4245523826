//! wasmstack hypervisor driver for KVM/QEMU hosts, driven through the host's libvirt
//! capability. Stateless: every call opens the host's (pooled) connection by URL.

#[cfg(not(feature = "wit-v0-1"))]
wit_bindgen::generate!({ world: "hypervisor-driver", path: "../../wit", generate_all });
// The same driver built against the frozen 0.1.0 contract, to prove the server still runs
// such drivers: no `serves` in describe() and no connect-host (the server adapts both).
#[cfg(feature = "wit-v0-1")]
wit_bindgen::generate!({ world: "hypervisor-driver", path: "../../wit/v0.1.0", generate_all });

mod domain_xml;
mod xml_scan;

use std::thread::sleep;
use std::time::{Duration, Instant};

#[cfg(not(feature = "wit-v0-1"))]
use exports::wasmstack::driver::hypervisor::HostTarget;
use exports::wasmstack::driver::hypervisor::{
    self, Accel, ConsoleEndpoint, Disk, HostFacts, VmPower, VmSpec, VmStats, VmStatus,
};
use exports::wasmstack::driver::plugin::{self, Capability, DriverKind, PluginInfo};
#[cfg(not(feature = "wit-v0-1"))]
use exports::wasmstack::driver::plugin::{HypervisorFeatures, HypervisorType, Serves};
use wasmstack::driver::libvirt::{ChangeScope, Connection, DomainState};
use wasmstack::driver::log::{Level, log};
use wasmstack::driver::types::DriverError;

/// How often stop-vm looks whether the guest has shut down.
const STOP_POLL: Duration = Duration::from_millis(100);

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "KVM host",
  "type": "object",
  "properties": {
    "accel": {
      "title": "Acceleration",
      "description": "How guests run: auto uses KVM when libvirt offers it, else QEMU emulation (TCG). A host can offer KVM and still fail to run guests with it (e.g. under nested virtualisation); choose tcg there.",
      "type": "string",
      "enum": ["auto", "kvm", "tcg"],
      "default": "auto"
    }
  },
  "additionalProperties": false
}"#;

struct Kvm;

/// The hypervisor types this driver serves: KVM hosts, and libvirt's test driver as the
/// Simulator (VMs that run nowhere).
#[cfg(not(feature = "wit-v0-1"))]
const KVM: &str = "KVM";
#[cfg(not(feature = "wit-v0-1"))]
const SIMULATOR: &str = "Simulator";

/// Where the server reaches a host an operator added with `url`: CloudStack gives KVM
/// hosts as http://address, which libvirt reaches over SSH; libvirt URIs (qemu…) are kept
/// as given. Simulator hosts all share libvirt's test driver unless a test: URI is given.
#[cfg(not(feature = "wit-v0-1"))]
fn host_target(hypervisor_type: &str, url: &str) -> Result<HostTarget, DriverError> {
    let host_part = |u: &str| -> String {
        let rest = u.split_once("://").map_or(u, |(_, r)| r);
        let host = rest.split(['/', '?']).next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or(host);
        host.split(':').next().unwrap_or("").to_owned()
    };
    if hypervisor_type.eq_ignore_ascii_case(SIMULATOR) {
        let url = if url.starts_with("test:") { url.to_owned() } else { "test:///default".to_owned() };
        return Ok(HostTarget { url, address: "127.0.0.1".into() });
    }
    if !hypervisor_type.eq_ignore_ascii_case(KVM) {
        return Err(DriverError::InvalidSpec(format!(
            "hypervisor type {hypervisor_type} is not served here; this driver serves {KVM} and {SIMULATOR}"
        )));
    }
    let h = host_part(url);
    if url.starts_with("qemu") {
        let address = if h.is_empty() { "127.0.0.1".into() } else { h };
        return Ok(HostTarget { url: url.to_owned(), address });
    }
    if h.is_empty() {
        return Err(DriverError::InvalidSpec(format!(
            "{url}: give a libvirt URI (qemu:///system, qemu+ssh://host/system) or http://host"
        )));
    }
    Ok(HostTarget { url: format!("qemu+ssh://{h}/system"), address: h })
}

impl plugin::Guest for Kvm {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "kvm".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: DriverKind::Hypervisor,
            #[cfg(not(feature = "wit-v0-1"))]
            // Only what the server really does with these hosts: it hot-plugs disks (not NICs),
            // and migrates nothing and keeps no memory snapshots yet.
            serves: Serves::Hypervisor(vec![
                HypervisorType {
                    name: KVM.into(),
                    features: HypervisorFeatures::HOT_PLUG_DISKS
                        | HypervisorFeatures::VNC_CONSOLE
                        | HypervisorFeatures::BOOT_ISO
                        | HypervisorFeatures::SERIAL_LOG,
                },
                HypervisorType {
                    name: SIMULATOR.into(),
                    features: HypervisorFeatures::SIMULATED | HypervisorFeatures::BOOT_ISO,
                },
            ]),
            description: "Runs VMs on KVM/QEMU hosts through libvirt".into(),
            capabilities: ["qemu:///system", "qemu+ssh://*/system", "qemu+tcp://*/system", "test:///default"]
                .into_iter()
                .map(|uri| Capability::Libvirt(uri.into()))
                .collect(),
            config_schema: CONFIG_SCHEMA.into(),
        }
    }
}

/// Prefixes a host error with what the driver was doing, keeping its kind.
fn context(what: &str) -> impl Fn(DriverError) -> DriverError + '_ {
    move |e| match e {
        DriverError::InvalidSpec(m) => DriverError::InvalidSpec(format!("{what}: {m}")),
        DriverError::NotFound(m) => DriverError::NotFound(format!("{what}: {m}")),
        DriverError::Unavailable(m) => DriverError::Unavailable(format!("{what}: {m}")),
        DriverError::Denied(m) => DriverError::Denied(format!("{what}: {m}")),
        DriverError::Unsupported(m) => DriverError::Unsupported(format!("{what}: {m}")),
        DriverError::Failed(m) => DriverError::Failed(format!("{what}: {m}")),
    }
}

/// The host names domains by canonical lowercase UUID.
fn canonical(uuid: &str) -> String {
    uuid.trim().to_ascii_lowercase()
}

/// The domain's state, or `None` when the host does not know it.
fn state_of(conn: &Connection, uuid: &str) -> Result<Option<DomainState>, DriverError> {
    match conn.domain_state(uuid) {
        Ok(state) => Ok(Some(state)),
        Err(DriverError::NotFound(_)) => Ok(None),
        Err(e) => Err(context(&format!("state of {uuid}"))(e)),
    }
}

/// The domain's state; `not-found` when the host does not know it.
fn existing_state(conn: &Connection, uuid: &str) -> Result<DomainState, DriverError> {
    state_of(conn, uuid)?.ok_or_else(|| DriverError::NotFound(format!("no VM {uuid} on this host")))
}

fn power(state: DomainState) -> VmPower {
    match state {
        DomainState::Running | DomainState::Blocked | DomainState::ShuttingDown => VmPower::Running,
        DomainState::ShutOff | DomainState::NoState => VmPower::Stopped,
        DomainState::Paused | DomainState::Suspended => VmPower::Paused,
        DomainState::Crashed => VmPower::Crashed,
    }
}

/// Whether a QEMU process exists for the domain (so live changes apply and it can be
/// destroyed).
fn active(state: DomainState) -> bool {
    !matches!(state, DomainState::ShutOff | DomainState::NoState)
}

fn state_word(state: DomainState) -> &'static str {
    match state {
        DomainState::NoState | DomainState::ShutOff => "stopped",
        DomainState::Running | DomainState::Blocked => "running",
        DomainState::Paused => "paused",
        DomainState::ShuttingDown => "shutting down",
        DomainState::Crashed => "crashed",
        DomainState::Suspended => "suspended",
    }
}

fn not_running(uuid: &str, state: DomainState) -> DriverError {
    DriverError::Unavailable(format!("VM {uuid} is not running ({})", state_word(state)))
}

/// What the operator set for a host, carried in its URL's query (see `CONFIG_SCHEMA`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct HostSettings {
    accel: Accel,
}

/// Splits a host URL into the libvirt URI and the host's settings.
fn settings(url: &str) -> Result<(&str, HostSettings), DriverError> {
    let (uri, query) = url.split_once('?').unwrap_or((url, ""));
    let mut found = HostSettings { accel: Accel::Auto };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        found.accel = match pair {
            "accel=auto" => Accel::Auto,
            "accel=kvm" => Accel::Kvm,
            "accel=tcg" => Accel::Tcg,
            other => return Err(DriverError::InvalidSpec(format!("unknown host setting {other} (kvm takes accel)"))),
        };
    }
    Ok((uri, found))
}

/// Opens libvirt for a host URL, settings stripped.
fn open(url: &str) -> Result<(Connection, HostSettings), DriverError> {
    let (uri, found) = settings(url)?;
    Ok((Connection::open(uri)?, found))
}

/// libvirt's domain type for an acceleration choice.
fn domain_type(conn: &Connection, accel: Accel) -> Result<&'static str, DriverError> {
    Ok(match accel {
        Accel::Kvm => "kvm",
        Accel::Tcg => "qemu",
        Accel::Auto => {
            let caps = conn.capabilities().map_err(context("capabilities"))?;
            if xml_scan::offers_kvm(&caps) { "kvm" } else { "qemu" }
        }
    })
}

/// Powers a domain off, tolerating that it stopped on its own meanwhile.
fn destroy(conn: &Connection, uuid: &str) -> Result<(), DriverError> {
    match conn.destroy_domain(uuid) {
        Ok(()) => Ok(()),
        Err(e) => match state_of(conn, uuid)? {
            None => Ok(()),
            Some(state) if !active(state) => Ok(()),
            Some(_) => Err(context(&format!("power off {uuid}"))(e)),
        },
    }
}

/// Scope for a device change: the running domain too when there is one.
fn scope_for(state: DomainState) -> ChangeScope {
    if active(state) { ChangeScope::LIVE | ChangeScope::CONFIG } else { ChangeScope::CONFIG }
}

/// Makes room for a definition whose UUID exists under another name: libvirt refuses to
/// rename through define, but the contract says defining an existing UUID replaces it.
/// Returns the old XML so a failed define can put it back.
fn clear_renamed(conn: &Connection, spec: &VmSpec, uuid: &str) -> Result<Option<String>, DriverError> {
    let Some(state) = state_of(conn, uuid)? else {
        return Ok(None);
    };
    let old_xml = conn.domain_xml(uuid, true).map_err(context(&format!("read {uuid}")))?;
    let old_name = xml_scan::domain_name(&old_xml).unwrap_or_default();
    if old_name == spec.name {
        return Ok(None);
    }
    if active(state) {
        return Err(DriverError::InvalidSpec(format!(
            "VM {uuid} is {} as {old_name}; stop it before renaming it to {}",
            state_word(state),
            spec.name
        )));
    }
    log(Level::Info, &format!("renaming {uuid} from {old_name} to {}", spec.name));
    conn.undefine_domain(uuid).map_err(context(&format!("undefine {old_name}")))?;
    Ok(Some(old_xml))
}

impl hypervisor::Guest for Kvm {
    #[cfg(not(feature = "wit-v0-1"))]
    fn connect_host(hypervisor_type: String, url: String) -> Result<HostTarget, DriverError> {
        host_target(&hypervisor_type, &url)
    }

    fn probe_host(url: String) -> Result<HostFacts, DriverError> {
        let (conn, _) = open(&url)?;
        let node = conn.node_info().map_err(context("node info"))?;
        let version = conn.hypervisor_version().map_err(context("hypervisor version"))?;
        let caps = conn.capabilities().map_err(context("capabilities"))?;
        let facts = HostFacts {
            cpus: node.cpus,
            cpu_mhz: node.mhz,
            cpu_model: node.cpu_model,
            memory_bytes: node.memory_kib.saturating_mul(1024),
            hypervisor_version: version,
            hardware_accel: xml_scan::offers_kvm(&caps),
        };
        log(
            Level::Debug,
            &format!(
                "probed {url}: {} CPUs, {} MiB, {}, kvm offered: {}",
                facts.cpus,
                facts.memory_bytes >> 20,
                facts.hypervisor_version,
                facts.hardware_accel
            ),
        );
        Ok(facts)
    }

    fn create_vm(url: String, spec: VmSpec) -> Result<(), DriverError> {
        domain_xml::validate_spec(&spec)?;
        let (conn, host) = open(&url)?;
        let uuid = canonical(&spec.uuid);
        // The host's own setting is the more specific: it wins over the cluster's.
        let accel = if host.accel == Accel::Auto { spec.accel } else { host.accel };
        let kind = domain_type(&conn, accel)?;
        let xml = domain_xml::domain_xml(&spec, kind);
        let restore = clear_renamed(&conn, &spec, &uuid)?;
        let what = format!("define {}", spec.name);
        if let Err(e) = conn.define_domain(&xml) {
            if let Some(old) = restore
                && let Err(undo) = conn.define_domain(&old)
            {
                log(Level::Error, &format!("could not restore the old definition of {uuid}: {undo:?}"));
            }
            return Err(context(&what)(e));
        }
        log(
            Level::Info,
            &format!(
                "defined {} ({uuid}) as {kind}: {} vCPU, {} MiB, {} disk(s), {} NIC(s)",
                spec.name,
                spec.vcpus,
                spec.memory_mib,
                spec.disks.len(),
                spec.nics.len()
            ),
        );
        Ok(())
    }

    fn start_vm(url: String, uuid: String) -> Result<(), DriverError> {
        let (conn, _) = open(&url)?;
        let uuid = canonical(&uuid);
        let state = existing_state(&conn, &uuid)?;
        if matches!(state, DomainState::Paused | DomainState::Suspended) {
            conn.resume_domain(&uuid).map_err(context(&format!("resume {uuid}")))?;
            log(Level::Info, &format!("resumed {uuid}"));
            return Ok(());
        }
        if active(state) && state != DomainState::Crashed {
            return Ok(());
        }
        if state == DomainState::Crashed {
            // A crashed domain that libvirt kept must be powered off before it can start.
            destroy(&conn, &uuid)?;
        }
        conn.start_domain(&uuid).map_err(context(&format!("start {uuid}")))?;
        log(Level::Info, &format!("started {uuid}"));
        Ok(())
    }

    fn stop_vm(url: String, uuid: String, timeout_ms: u32) -> Result<(), DriverError> {
        let (conn, _) = open(&url)?;
        let uuid = canonical(&uuid);
        let state = existing_state(&conn, &uuid)?;
        if !active(state) {
            return Ok(());
        }
        // A paused or crashed guest cannot answer an ACPI request, so waiting is pointless.
        let graceful =
            timeout_ms > 0 && matches!(state, DomainState::Running | DomainState::Blocked | DomainState::ShuttingDown);
        if graceful {
            if state != DomainState::ShuttingDown {
                conn.shutdown_domain(&uuid).map_err(context(&format!("shut down {uuid}")))?;
            }
            log(Level::Debug, &format!("asked {uuid} to shut down; waiting up to {timeout_ms} ms"));
            let deadline = Instant::now() + Duration::from_millis(timeout_ms.into());
            while Instant::now() < deadline {
                sleep(STOP_POLL.min(deadline.saturating_duration_since(Instant::now())));
                match state_of(&conn, &uuid)? {
                    Some(s) if active(s) => {}
                    _ => {
                        log(Level::Info, &format!("{uuid} shut down"));
                        return Ok(());
                    }
                }
            }
            log(Level::Info, &format!("{uuid} did not shut down within {timeout_ms} ms; powering off"));
        }
        destroy(&conn, &uuid)?;
        log(Level::Info, &format!("powered off {uuid}"));
        Ok(())
    }

    fn reboot_vm(url: String, uuid: String, forced: bool) -> Result<(), DriverError> {
        let (conn, _) = open(&url)?;
        let uuid = canonical(&uuid);
        let state = existing_state(&conn, &uuid)?;
        if !matches!(state, DomainState::Running | DomainState::Blocked) {
            return Err(not_running(&uuid, state));
        }
        if forced {
            conn.reset_domain(&uuid).map_err(context(&format!("reset {uuid}")))?;
            log(Level::Info, &format!("reset {uuid}"));
        } else {
            conn.reboot_domain(&uuid).map_err(context(&format!("reboot {uuid}")))?;
            log(Level::Info, &format!("rebooting {uuid}"));
        }
        Ok(())
    }

    fn destroy_vm(url: String, uuid: String) -> Result<(), DriverError> {
        let (conn, _) = open(&url)?;
        let uuid = canonical(&uuid);
        let Some(state) = state_of(&conn, &uuid)? else {
            return Ok(());
        };
        if active(state) {
            destroy(&conn, &uuid)?;
        }
        match conn.undefine_domain(&uuid) {
            // A transient domain vanishes when powered off; nothing is left to undefine.
            Ok(()) | Err(DriverError::NotFound(_)) => {}
            Err(e) => return Err(context(&format!("undefine {uuid}"))(e)),
        }
        log(Level::Info, &format!("destroyed {uuid}"));
        Ok(())
    }

    fn power_state(url: String, uuid: String) -> Result<VmPower, DriverError> {
        let (conn, _) = open(&url)?;
        Ok(state_of(&conn, &canonical(&uuid))?.map_or(VmPower::Missing, power))
    }

    fn list_vms(url: String) -> Result<Vec<VmStatus>, DriverError> {
        let (conn, _) = open(&url)?;
        let domains = conn.list_domains().map_err(context("list domains"))?;
        Ok(domains.into_iter().map(|d| VmStatus { uuid: d.uuid, name: d.name, power: power(d.state) }).collect())
    }

    fn console(url: String, uuid: String) -> Result<ConsoleEndpoint, DriverError> {
        let (conn, _) = open(&url)?;
        let uuid = canonical(&uuid);
        let state = existing_state(&conn, &uuid)?;
        if !active(state) || state == DomainState::Crashed {
            return Err(not_running(&uuid, state));
        }
        let xml = conn.domain_xml(&uuid, false).map_err(context(&format!("read {uuid}")))?;
        let vnc =
            xml_scan::vnc(&xml).ok_or_else(|| DriverError::Unsupported(format!("VM {uuid} has no VNC console")))?;
        let port =
            vnc.port.ok_or_else(|| DriverError::Unavailable(format!("VM {uuid} has no VNC port assigned yet")))?;
        let host = match vnc.listen {
            Some(addr) if !is_wildcard(&addr) => addr,
            // Only VMs defined elsewhere lack an address (we always set one); the host's
            // own address is the best guess for where a viewer can reach it.
            _ => url_host(&url),
        };
        Ok(ConsoleEndpoint { protocol: "vnc".into(), host, port })
    }

    fn stats(url: String, uuid: String) -> Result<VmStats, DriverError> {
        let (conn, _) = open(&url)?;
        let uuid = canonical(&uuid);
        let state = existing_state(&conn, &uuid)?;
        if !active(state) {
            return Err(not_running(&uuid, state));
        }
        let stats = conn.domain_stats(&uuid).map_err(context(&format!("stats of {uuid}")))?;
        Ok(VmStats { cpu_time_ns: stats.cpu_time_ns, memory_kib: stats.memory_kib })
    }

    fn attach_disk(url: String, uuid: String, disk: Disk) -> Result<(), DriverError> {
        domain_xml::validate_disk(&disk)?;
        let (conn, _) = open(&url)?;
        let uuid = canonical(&uuid);
        let state = existing_state(&conn, &uuid)?;
        let xml = domain_xml::disk_xml(&disk);
        conn.attach_device(&uuid, &xml, scope_for(state))
            .map_err(context(&format!("attach {} to {uuid}", disk.target)))?;
        log(Level::Info, &format!("attached {} to {uuid}{}", disk.target, if active(state) { " (live)" } else { "" }));
        Ok(())
    }

    fn detach_disk(url: String, uuid: String, target: String) -> Result<(), DriverError> {
        let (conn, _) = open(&url)?;
        let uuid = canonical(&uuid);
        let state = existing_state(&conn, &uuid)?;
        // The persistent definition lists every disk, also one attached while stopped.
        let xml = conn.domain_xml(&uuid, true).map_err(context(&format!("read {uuid}")))?;
        let disk = xml_scan::disk_element(&xml, &target)
            .ok_or_else(|| DriverError::NotFound(format!("VM {uuid} has no disk {target}")))?;
        conn.detach_device(&uuid, disk, scope_for(state)).map_err(context(&format!("detach {target} from {uuid}")))?;
        log(Level::Info, &format!("detached {target} from {uuid}"));
        Ok(())
    }
}

fn is_wildcard(addr: &str) -> bool {
    matches!(addr, "0.0.0.0" | "::" | "[::]")
}

/// The server part of a libvirt URI ("qemu+ssh://root@10.0.0.7:22/system" → "10.0.0.7");
/// local URIs name this host, so loopback.
fn url_host(url: &str) -> String {
    let authority = url.split_once("://").map_or("", |(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    if host.is_empty() { "127.0.0.1".into() } else { host.into() }
}

export!(Kvm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_from_urls() {
        assert_eq!(url_host("qemu:///system"), "127.0.0.1");
        assert_eq!(url_host("qemu+ssh://root@10.0.0.7:22/system"), "10.0.0.7");
        assert_eq!(url_host("qemu+tcp://kvm1.lab/system?x=1"), "kvm1.lab");
        assert_eq!(url_host("qemu+tcp://[fd00::7]:16509/system"), "fd00::7");
        assert_eq!(url_host("test:///default"), "127.0.0.1");
    }

    #[test]
    fn host_settings_from_urls() {
        let (uri, found) = settings("qemu:///system?accel=tcg").unwrap();
        assert_eq!((uri, found.accel), ("qemu:///system", Accel::Tcg));
        assert_eq!(settings("qemu:///system").unwrap(), ("qemu:///system", HostSettings { accel: Accel::Auto }));
        let e = settings("qemu:///system?accel=fast").unwrap_err();
        assert!(matches!(&e, DriverError::InvalidSpec(m) if m.contains("accel=fast")), "{e:?}");
    }

    #[test]
    fn power_mapping() {
        assert_eq!(power(DomainState::Blocked), VmPower::Running);
        assert_eq!(power(DomainState::ShuttingDown), VmPower::Running);
        assert_eq!(power(DomainState::NoState), VmPower::Stopped);
        assert_eq!(power(DomainState::Suspended), VmPower::Paused);
        assert_eq!(power(DomainState::Crashed), VmPower::Crashed);
    }

    #[test]
    #[cfg(not(feature = "wit-v0-1"))]
    fn host_targets_from_operator_urls() {
        let t = |ty: &str, url: &str| host_target(ty, url).map(|t| (t.url, t.address));
        assert_eq!(t("KVM", "http://10.0.0.7").unwrap(), ("qemu+ssh://10.0.0.7/system".into(), "10.0.0.7".into()));
        assert_eq!(t("kvm", "qemu:///system").unwrap(), ("qemu:///system".into(), "127.0.0.1".into()));
        assert_eq!(
            t("KVM", "qemu+tcp://root@kvm1:16509/system").unwrap(),
            ("qemu+tcp://root@kvm1:16509/system".into(), "kvm1".into())
        );
        assert_eq!(t("Simulator", "http://sim1").unwrap(), ("test:///default".into(), "127.0.0.1".into()));
        assert_eq!(t("simulator", "test:///other").unwrap(), ("test:///other".into(), "127.0.0.1".into()));
        assert!(
            matches!(t("KVM", "http://"), Err(DriverError::InvalidSpec(m)) if m.contains("qemu+ssh://host/system"))
        );
        assert!(
            matches!(t("Xen", "http://h"), Err(DriverError::InvalidSpec(m)) if m.contains("serves KVM and Simulator"))
        );
    }

    #[test]
    fn describes_itself() {
        let info = <Kvm as plugin::Guest>::describe();
        assert_eq!(info.name, "kvm");
        assert_eq!(info.capabilities.len(), 4);
        #[cfg(not(feature = "wit-v0-1"))]
        let Serves::Hypervisor(types) = info.serves else { panic!("serves no hypervisor types") };
        #[cfg(not(feature = "wit-v0-1"))]
        {
            assert_eq!(types.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), [KVM, SIMULATOR]);
            let has = |f: HypervisorFeatures| types[0].features.bits() & f.bits() != 0;
            assert!(has(HypervisorFeatures::HOT_PLUG_DISKS) && !has(HypervisorFeatures::LIVE_MIGRATION));
        }
        assert!(CONFIG_SCHEMA.contains(r#""enum": ["auto", "kvm", "tcg"]"#));
    }
}
