//! The `netdev` capability: bridges, ports and DHCP services on this host, limited to
//! device names that start with a granted prefix.
//!
//! Linux bridges go through `ip`; Open vSwitch bridges through `ovs-vsctl` and always
//! use the userspace datapath (`datapath_type=netdev`), so they work without the
//! openvswitch kernel module. DHCP is BusyBox `udhcpd` with static leases only. Every
//! name is checked against the grant before any command runs, and every command runs
//! within the call's deadline.

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::plugins::bindings::netdev::{BridgeKind, DhcpConfig, Host};
use crate::plugins::bindings::types::DriverError;
use crate::plugins::grants::denial;
use crate::plugins::state::{CallState, DeadlinePassed};

/// The longest one command may take, even with a generous call deadline: these
/// commands answer in milliseconds unless something is stuck.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Where DHCP services keep their configuration, leases and pid file, one folder each.
/// /run is cleared at boot, as are the services it describes.
const DHCP_STATE_DIR: &str = "/run/wasmstack/dhcp";

type Outcome<T> = wasmtime::Result<Result<T, DriverError>>;

/// Why a netdev operation failed; `Deadline` ends the guest call instead.
#[derive(Debug)]
enum NetError {
    Driver(DriverError),
    Deadline,
}

impl From<DriverError> for NetError {
    fn from(e: DriverError) -> Self {
        NetError::Driver(e)
    }
}

type NetResult<T> = Result<T, NetError>;

/// One operation: the deadline its commands must finish by.
struct Op {
    deadline: Instant,
}

impl Op {
    /// Runs a command to completion, killed at the deadline or after COMMAND_TIMEOUT.
    /// Returns the exit code and what it wrote (stdout, stderr).
    fn run(&self, program: &str, args: &[&str]) -> NetResult<(i32, String, String)> {
        let stop = self.deadline.min(Instant::now() + COMMAND_TIMEOUT);
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| DriverError::Unavailable(format!("cannot run {program}: {e}")))?;
        // Drained on threads so that a chatty command never blocks on a full pipe.
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut text);
                }
                String::from_utf8_lossy(&text).into_owned()
            })
        };
        let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        let mut poll = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => return Err(DriverError::Failed(format!("waiting for {program}: {e}")).into()),
            }
            if Instant::now() >= stop {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!("{program} {args:?} killed: it ran too long");
                if Instant::now() >= self.deadline {
                    return Err(NetError::Deadline);
                }
                return Err(
                    DriverError::Unavailable(format!("{program} did not answer within {COMMAND_TIMEOUT:?}")).into()
                );
            }
            std::thread::sleep(poll);
            poll = (poll * 2).min(Duration::from_millis(20));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        tracing::debug!("{program} {args:?}: {status}");
        Ok((status.code().unwrap_or(-1), stdout, stderr))
    }

    /// Runs a command that must succeed; its complaint becomes an error of the right kind.
    fn must(&self, program: &str, args: &[&str]) -> NetResult<String> {
        let (code, stdout, stderr) = self.run(program, args)?;
        if code == 0 {
            return Ok(stdout);
        }
        let text = stderr.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no message");
        let text = format!("{program} {}: {}", args.first().unwrap_or(&""), short(text));
        let lower = text.to_ascii_lowercase();
        Err(if lower.contains("cannot find device") || lower.contains("no bridge named") {
            DriverError::NotFound(text)
        } else if lower.contains("database connection failed") || lower.contains("not supported") {
            DriverError::Unavailable(text)
        } else {
            DriverError::Failed(text)
        }
        .into())
    }

    fn ovs(&self, args: &[&str]) -> NetResult<String> {
        // ovs-vsctl's own timeout keeps it from waiting forever for ovs-vswitchd.
        let mut all = vec!["--timeout=5"];
        all.extend_from_slice(args);
        self.must("ovs-vsctl", &all)
    }

    /// Whether `name` is an Open vSwitch bridge. No OVS at all means "no".
    fn is_ovs_bridge(&self, name: &str) -> NetResult<bool> {
        match self.run("ovs-vsctl", &["--timeout=5", "br-exists", name]) {
            Ok((0, _, _)) => Ok(true),
            Ok((2, _, _)) => Ok(false),
            Ok((_, _, stderr)) if stderr.contains("database connection failed") => Ok(false),
            Ok((_, _, stderr)) => {
                Err(DriverError::Unavailable(format!("ovs-vsctl br-exists: {}", short(&stderr))).into())
            }
            Err(NetError::Driver(DriverError::Unavailable(_))) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn bridge_kind(&self, name: &str) -> NetResult<Option<BridgeKind>> {
        if is_linux_bridge(name) {
            return Ok(Some(BridgeKind::Linux));
        }
        Ok(self.is_ovs_bridge(name)?.then_some(BridgeKind::Openvswitch))
    }

    fn link_up(&self, device: &str) -> NetResult<()> {
        self.must("ip", &["link", "set", "dev", device, "up"]).map(drop)
    }
}

fn is_linux_bridge(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).join("bridge").is_dir()
}

fn device_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The first line of a tool's complaint, cut short: enough to act on, small enough
/// for an error message.
fn short(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_owned();
    if line.chars().count() > 200 { format!("{}…", line.chars().take(200).collect::<String>()) } else { line }
}

/// Whether `name` can be a network device name: what the kernel accepts, and
/// nothing a command line could read as an option.
fn valid_device_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && !name.starts_with('-')
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl CallState {
    /// Checks every name (valid, then granted) before anything runs, then runs `f`
    /// within the call's deadline, checked before and after.
    fn netdev_op<T>(&mut self, names: &[&str], f: impl FnOnce(&Op) -> NetResult<T>) -> Outcome<T> {
        self.check_deadline()?;
        for name in names {
            if !valid_device_name(name) {
                return Ok(Err(DriverError::InvalidSpec(format!(
                    "\"{name}\" is not a device name (1-15 letters, digits, '-', '_', '.')"
                ))));
            }
            if !self.grants.allows_netdev(name) {
                return Ok(Err(DriverError::Denied(denial(&self.plugin, "netdev", name))));
            }
        }
        let result = f(&Op { deadline: self.deadline });
        self.check_deadline()?;
        match result {
            Ok(v) => Ok(Ok(v)),
            Err(NetError::Deadline) => Err(DeadlinePassed.into()),
            Err(NetError::Driver(e)) => Ok(Err(e)),
        }
    }
}

impl Host for CallState {
    fn ensure_bridge(&mut self, name: String, kind: BridgeKind) -> Outcome<()> {
        self.netdev_op(&[&name], |op| {
            match (op.bridge_kind(&name)?, kind) {
                (Some(BridgeKind::Linux), BridgeKind::Linux)
                | (Some(BridgeKind::Openvswitch), BridgeKind::Openvswitch) => {}
                (Some(_), _) => {
                    return Err(DriverError::InvalidSpec(format!("{name} exists as another kind of bridge")).into());
                }
                (None, _) if device_exists(&name) => {
                    return Err(DriverError::InvalidSpec(format!("{name} exists and is not a bridge")).into());
                }
                (None, BridgeKind::Linux) => drop(op.must("ip", &["link", "add", "name", &name, "type", "bridge"])?),
                (None, BridgeKind::Openvswitch) => {
                    // The userspace datapath: this kernel may have no openvswitch module.
                    op.ovs(&["--may-exist", "add-br", &name, "--", "set", "bridge", &name, "datapath_type=netdev"])?;
                }
            }
            op.link_up(&name)
        })
    }

    fn remove_bridge(&mut self, name: String) -> Outcome<()> {
        self.netdev_op(&[&name], |op| match op.bridge_kind(&name)? {
            Some(BridgeKind::Linux) => op.must("ip", &["link", "del", "dev", &name]).map(drop),
            Some(BridgeKind::Openvswitch) => op.ovs(&["--if-exists", "del-br", &name]).map(drop),
            None if device_exists(&name) => {
                Err(DriverError::InvalidSpec(format!("{name} is not a bridge; not removing it")).into())
            }
            None => Ok(()),
        })
    }

    fn bridge_exists(&mut self, name: String) -> Outcome<bool> {
        self.netdev_op(&[&name], |op| Ok(op.bridge_kind(&name)?.is_some()))
    }

    fn add_port(&mut self, bridge: String, device: String, vlan: Option<u16>) -> Outcome<()> {
        self.netdev_op(&[&bridge, &device], |op| {
            if vlan.is_some_and(|v| v == 0 || v > 4094) {
                return Err(DriverError::InvalidSpec(format!("VLAN {} is outside 1-4094", vlan.unwrap_or(0))).into());
            }
            if !device_exists(&device) {
                return Err(DriverError::NotFound(format!("no device {device}")).into());
            }
            match op.bridge_kind(&bridge)? {
                Some(BridgeKind::Linux) => {
                    if vlan.is_some() {
                        // No 8021q and no bridge VLAN filtering to rely on: tags need OVS.
                        return Err(DriverError::Unsupported(format!(
                            "{bridge} is a Linux bridge; VLAN tags need an Open vSwitch bridge"
                        ))
                        .into());
                    }
                    op.must("ip", &["link", "set", "dev", &device, "master", &bridge])?;
                }
                Some(BridgeKind::Openvswitch) => {
                    // --may-exist keeps an old tag: set (or clear) it in the same transaction.
                    let tag = vlan.map(|v| format!("tag={v}"));
                    let mut args = vec!["--may-exist", "add-port", &bridge, &device, "--"];
                    match &tag {
                        Some(t) => args.extend(["set", "port", &device, t.as_str()]),
                        None => args.extend(["clear", "port", &device, "tag"]),
                    }
                    op.ovs(&args)?;
                }
                None => return Err(DriverError::NotFound(format!("no bridge {bridge}")).into()),
            }
            op.link_up(&device)
        })
    }

    fn remove_port(&mut self, bridge: String, device: String) -> Outcome<()> {
        self.netdev_op(&[&bridge, &device], |op| match op.bridge_kind(&bridge)? {
            Some(BridgeKind::Linux) => {
                let master = std::fs::read_link(Path::new("/sys/class/net").join(&device).join("master")).ok();
                if master.as_deref().and_then(Path::file_name).is_some_and(|m| m == bridge.as_str()) {
                    op.must("ip", &["link", "set", "dev", &device, "nomaster"])?;
                }
                Ok(())
            }
            Some(BridgeKind::Openvswitch) => op.ovs(&["--if-exists", "del-port", &bridge, &device]).map(drop),
            None => Ok(()),
        })
    }

    fn set_link(&mut self, device: String, up: bool) -> Outcome<()> {
        self.netdev_op(&[&device], |op| {
            if !device_exists(&device) {
                return Err(DriverError::NotFound(format!("no device {device}")).into());
            }
            op.must("ip", &["link", "set", "dev", &device, if up { "up" } else { "down" }]).map(drop)
        })
    }

    fn start_dhcp(&mut self, config: DhcpConfig) -> Outcome<()> {
        let (name, bridge) = (config.name.clone(), config.bridge.clone());
        self.netdev_op(&[&name, &bridge], |op| start_dhcp(op, &config))
    }

    fn stop_dhcp(&mut self, name: String) -> Outcome<()> {
        self.netdev_op(&[&name], |op| stop_dhcp(op, &name))
    }
}

// ------------------------------------------------------------------ DHCP

fn dhcp_dir(name: &str) -> PathBuf {
    Path::new(DHCP_STATE_DIR).join(name)
}

fn invalid(text: String) -> NetError {
    DriverError::InvalidSpec(text).into()
}

fn ipv4(text: &str, what: &str) -> NetResult<Ipv4Addr> {
    text.parse().map_err(|_| invalid(format!("{what} \"{text}\" is not an IPv4 address")))
}

fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The udhcpd configuration for a service on `iface`. The pool is the server's own
/// address alone, which udhcpd never hands out: only the static leases are served.
fn udhcpd_conf(config: &DhcpConfig, iface: &str, server: Ipv4Addr, prefix: u8, dir: &Path) -> NetResult<String> {
    let mask = Ipv4Addr::from(if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) });
    let mut conf = format!(
        "interface {iface}\nstart {server}\nend {server}\nmax_leases 1\nopt subnet {mask}\n\
         lease_file {}\npidfile {}\n",
        dir.join("leases").display(),
        dir.join("udhcpd.pid").display()
    );
    if let Some(gw) = &config.gateway {
        conf += &format!("opt router {}\n", ipv4(gw, "gateway")?);
    }
    if !config.dns.is_empty() {
        let dns =
            config.dns.iter().map(|d| ipv4(d, "DNS server").map(|a| a.to_string())).collect::<NetResult<Vec<_>>>()?;
        conf += &format!("opt dns {}\n", dns.join(" "));
    }
    for h in &config.hosts {
        if !valid_mac(&h.mac) {
            return Err(invalid(format!("\"{}\" is not a MAC address", h.mac)));
        }
        conf += &format!("static_lease {} {}\n", h.mac.to_ascii_lowercase(), ipv4(&h.ip, "lease address")?);
    }
    Ok(conf)
}

fn start_dhcp(op: &Op, config: &DhcpConfig) -> NetResult<()> {
    let (addr, prefix) = config
        .server_address
        .split_once('/')
        .ok_or_else(|| invalid(format!("server address \"{}\" is not CIDR", config.server_address)))?;
    let server = ipv4(addr, "server address")?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| invalid(format!("server address \"{}\" has a bad prefix", config.server_address)))?;
    let kind =
        op.bridge_kind(&config.bridge)?.ok_or_else(|| DriverError::NotFound(format!("no bridge {}", config.bridge)))?;
    // A restart (new leases) replaces the old service.
    stop_dhcp(op, &config.name)?;

    // The service's own interface: on OVS an internal port with the network's tag; on
    // a Linux bridge (no VLANs there) the bridge itself, which holds the address.
    let iface = match kind {
        BridgeKind::Openvswitch => {
            let tag = config.vlan.map(|v| format!("tag={v}"));
            let mut args = vec!["--may-exist", "add-port", &config.bridge, &config.name, "--"];
            args.extend(["set", "interface", &config.name, "type=internal"]);
            if let Some(t) = &tag {
                args.extend(["--", "set", "port", &config.name, t.as_str()]);
            }
            op.ovs(&args)?;
            config.name.as_str()
        }
        BridgeKind::Linux if config.vlan.is_some() => {
            return Err(DriverError::Unsupported(format!(
                "{} is a Linux bridge; VLAN tags need an Open vSwitch bridge",
                config.bridge
            ))
            .into());
        }
        BridgeKind::Linux => config.bridge.as_str(),
    };
    let dir = dhcp_dir(&config.name);
    let io = |e: std::io::Error| DriverError::Failed(format!("DHCP state folder {}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(io)?;
    let conf = udhcpd_conf(config, iface, server, prefix, &dir)?;
    std::fs::write(dir.join("udhcpd.conf"), conf).map_err(io)?;
    // What stop-dhcp must undo besides the daemon.
    std::fs::write(dir.join("interface"), format!("{iface} {}\n", config.server_address)).map_err(io)?;
    std::fs::write(dir.join("leases"), b"").map_err(io)?;
    op.must("ip", &["addr", "replace", &config.server_address, "dev", iface])?;
    op.link_up(iface)?;
    let conf_path = dir.join("udhcpd.conf");
    // udhcpd detaches itself and writes its pid file.
    op.must("busybox", &["udhcpd", &conf_path.to_string_lossy()])?;
    while Instant::now() < op.deadline {
        if dhcp_pid(&config.name).is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(NetError::Deadline)
}

/// The pid of the service's udhcpd, when it runs.
fn dhcp_pid(name: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dhcp_dir(name).join("udhcpd.pid")).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    // Only a udhcpd started for this service: pids are reused.
    let conf = dhcp_dir(name).join("udhcpd.conf");
    let text = String::from_utf8_lossy(&cmdline);
    (text.contains("udhcpd") && text.contains(&*conf.to_string_lossy())).then_some(pid)
}

fn stop_dhcp(op: &Op, name: &str) -> NetResult<()> {
    let dir = dhcp_dir(name);
    if let Some(pid) = dhcp_pid(name) {
        // SAFETY: kill(2) with a pid just read and checked; no memory is involved.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        while Path::new(&format!("/proc/{pid}")).exists() {
            if Instant::now() >= op.deadline {
                return Err(NetError::Deadline);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("interface"))
        && let Some((iface, address)) = text.trim().split_once(' ')
        && device_exists(iface)
    {
        if iface == name {
            // Our own OVS internal port.
            op.ovs(&["--if-exists", "del-port", name])?;
        } else {
            // The Linux bridge's address; the bridge itself is the driver's.
            let (code, _, _) = op.run("ip", &["addr", "del", address, "dev", iface])?;
            if code != 0 {
                tracing::debug!("{address} was no longer on {iface}");
            }
        }
    }
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DriverError::Failed(format!("removing {}: {e}", dir.display())).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        assert!(valid_device_name("ws-br0"));
        assert!(!valid_device_name("-ws"));
        assert!(!valid_device_name("ws-this-is-too-long"));
        assert!(!valid_device_name("ws br"));
        assert!(!valid_device_name(""));
    }

    #[test]
    fn udhcpd_config_serves_static_leases_only() {
        let config = DhcpConfig {
            name: "ws-d1".into(),
            bridge: "ws-br".into(),
            vlan: Some(100),
            server_address: "10.1.1.2/24".into(),
            gateway: Some("10.1.1.1".into()),
            dns: vec!["10.1.1.1".into()],
            hosts: vec![crate::plugins::bindings::netdev::DhcpHost {
                mac: "52:54:00:AA:BB:CC".into(),
                ip: "10.1.1.10".into(),
                hostname: None,
            }],
        };
        let conf = udhcpd_conf(&config, "ws-d1", "10.1.1.2".parse().unwrap(), 24, Path::new("/x")).unwrap();
        assert!(conf.contains("start 10.1.1.2\nend 10.1.1.2\n"), "{conf}");
        assert!(conf.contains("opt subnet 255.255.255.0\n"), "{conf}");
        assert!(conf.contains("static_lease 52:54:00:aa:bb:cc 10.1.1.10\n"), "{conf}");
        let bad = DhcpConfig { gateway: Some("nope".into()), ..config };
        assert!(udhcpd_conf(&bad, "ws-d1", "10.1.1.2".parse().unwrap(), 24, Path::new("/x")).is_err());
    }
}
