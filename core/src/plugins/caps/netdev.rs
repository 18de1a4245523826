//! The `netdev` capability: bridges, ports and DHCP services on this host, and the
//! namespaces, links, rule sets and load balancers routers are built of (`netns`),
//! limited to names that start with a granted prefix.
//!
//! Linux bridges go through `ip`; Open vSwitch bridges through `ovs-vsctl` and always
//! use the userspace datapath (`datapath_type=netdev`), so they work without the
//! openvswitch kernel module. DHCP is BusyBox `udhcpd` with static leases only. Every
//! name is checked against the grant before any command runs, and every command runs
//! within the call's deadline.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod filter;
mod netns;

pub use filter::port_filters_nft;

use super::process::{self, ExitWatch, RunError};
use crate::plugins::bindings::netdev::{
    BridgeKind, DhcpConfig, DhcpHost, Host, LbConfig, LinkPlug, PortFilter, ServiceState,
};
use crate::plugins::bindings::types::DriverError;
use crate::plugins::grants::denial;
use crate::plugins::guest_data::{GuestDataPlane, Leases, parse_mac};
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
    /// Where guest data is served beside namespaced DHCP services.
    guest: Arc<GuestDataPlane>,
}

impl Op {
    /// Runs a command to completion, killed at the deadline or after COMMAND_TIMEOUT.
    /// Returns the exit code and what it wrote (stdout, stderr).
    fn run(&self, program: &str, args: &[&str]) -> NetResult<(i32, String, String)> {
        let stop = self.deadline.min(Instant::now() + COMMAND_TIMEOUT);
        match process::run(program, args, stop) {
            Ok(done) => Ok((done.status.code().unwrap_or(-1), done.stdout, done.stderr)),
            Err(RunError::TooLong(_)) if Instant::now() >= self.deadline => Err(NetError::Deadline),
            Err(RunError::TooLong(_)) => {
                Err(DriverError::Unavailable(format!("{program} did not answer within {COMMAND_TIMEOUT:?}")).into())
            }
            Err(e @ RunError::Spawn(..)) => Err(DriverError::Unavailable(e.to_string()).into()),
            Err(e) => Err(DriverError::Failed(e.to_string()).into()),
        }
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
        if let Some(answer) = ovsdb_has_bridge(name, self.deadline.min(Instant::now() + COMMAND_TIMEOUT)) {
            return Ok(answer);
        }
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
        // Every NIC a deploy prepares checks its bridge is up; it nearly always is.
        if is_up(device) {
            return Ok(());
        }
        self.must("ip", &["link", "set", "dev", device, "up"]).map(drop)
    }
}

fn is_linux_bridge(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).join("bridge").is_dir()
}

/// The database socket ovs-vsctl uses unless told otherwise.
fn ovsdb_socket() -> PathBuf {
    std::env::var_os("OVS_RUNDIR").map_or_else(|| PathBuf::from("/run/openvswitch"), PathBuf::from).join("db.sock")
}

/// Asks the Open vSwitch database itself whether it has a bridge `name`: one query on
/// its socket, where `ovs-vsctl br-exists` costs a process. `None` when the database
/// cannot be asked this way (ovs-vsctl decides then).
fn ovsdb_has_bridge(name: &str, stop: Instant) -> Option<bool> {
    use std::io::{Read, Write};
    let limit = stop.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
    let mut db = std::os::unix::net::UnixStream::connect(ovsdb_socket()).ok()?;
    db.set_read_timeout(Some(limit)).ok()?;
    db.set_write_timeout(Some(limit)).ok()?;
    let query = serde_json::json!({
        "method": "transact",
        "params": ["Open_vSwitch", {"op": "select", "table": "Bridge", "where": [["name", "==", name]], "columns": ["name"]}],
        "id": 0,
    });
    db.write_all(query.to_string().as_bytes()).ok()?;
    let (mut answer, mut chunk) = (Vec::new(), [0u8; 4096]);
    loop {
        let n = db.read(&mut chunk).ok().filter(|&n| n > 0)?;
        answer.extend_from_slice(&chunk[..n]);
        match serde_json::from_slice::<serde_json::Value>(&answer) {
            Ok(reply) => return reply["result"][0]["rows"].as_array().map(|rows| !rows.is_empty()),
            Err(e) if e.is_eof() => {}
            Err(_) => return None,
        }
    }
}

/// The VLAN tag of Open vSwitch port `port` when it is on `bridge` (None inside: no tag),
/// asked of the database as `ovsdb_has_bridge` does; None when it is not there or the
/// database cannot be asked this way.
fn ovsdb_port_tag(bridge: &str, port: &str, stop: Instant) -> Option<Option<u16>> {
    use std::io::{Read, Write};
    let limit = stop.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
    let mut db = std::os::unix::net::UnixStream::connect(ovsdb_socket()).ok()?;
    db.set_read_timeout(Some(limit)).ok()?;
    db.set_write_timeout(Some(limit)).ok()?;
    let query = serde_json::json!({
        "method": "transact",
        "params": ["Open_vSwitch",
            {"op": "select", "table": "Port", "where": [["name", "==", port]], "columns": ["_uuid", "tag"]},
            {"op": "select", "table": "Bridge", "where": [["name", "==", bridge]], "columns": ["ports"]}],
        "id": 0,
    });
    db.write_all(query.to_string().as_bytes()).ok()?;
    let (mut answer, mut chunk) = (Vec::new(), [0u8; 4096]);
    let reply: serde_json::Value = loop {
        let n = db.read(&mut chunk).ok().filter(|&n| n > 0)?;
        answer.extend_from_slice(&chunk[..n]);
        match serde_json::from_slice(&answer) {
            Ok(reply) => break reply,
            Err(e) if e.is_eof() => {}
            Err(_) => return None,
        }
    };
    let row = reply["result"][0]["rows"].as_array()?.first()?.clone();
    let uuid = row["_uuid"][1].as_str()?;
    // A set column is ["set", [...]] or, with one member, the member itself.
    let ports = &reply["result"][1]["rows"].as_array()?.first()?["ports"];
    let members: Vec<&serde_json::Value> = match ports[0].as_str() {
        Some("set") => ports[1].as_array()?.iter().collect(),
        _ => vec![ports],
    };
    if !members.iter().any(|m| m[1].as_str() == Some(uuid)) {
        return None;
    }
    match &row["tag"] {
        serde_json::Value::Number(n) => Some(Some(u16::try_from(n.as_u64()?).ok()?)),
        _ => Some(None),
    }
}

/// Whether a device is administratively up (IFF_UP in its flags).
fn is_up(name: &str) -> bool {
    std::fs::read_to_string(Path::new("/sys/class/net").join(name).join("flags"))
        .ok()
        .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|flags| flags & libc::IFF_UP as u32 != 0)
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
        let result = f(&Op { deadline: self.deadline, guest: self.guest_data.clone() });
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
        self.netdev_op(&[&name, &bridge], |op| start_dhcp(op, &config, None))
    }

    fn start_namespace_dhcp(&mut self, namespace: String, config: DhcpConfig) -> Outcome<()> {
        let (name, device) = (config.name.clone(), config.bridge.clone());
        self.netdev_op(&[&namespace, &name, &device], |op| start_dhcp(op, &config, Some(&namespace)))
    }

    fn create_namespace(&mut self, name: String) -> Outcome<()> {
        self.netdev_op(&[&name], |op| netns::create_namespace(op, &name))
    }

    fn delete_namespace(&mut self, name: String) -> Outcome<()> {
        let grants = self.grants.clone();
        self.netdev_op(&[&name], |op| netns::delete_namespace(op, &name, &grants))
    }

    fn namespace_exists(&mut self, name: String) -> Outcome<bool> {
        self.netdev_op(&[&name], |_| Ok(netns::namespace_exists(&name)))
    }

    fn add_namespace_link(&mut self, namespace: String, device: String, plug: LinkPlug) -> Outcome<()> {
        self.netdev_op(&[&namespace, &device, &plug.bridge], |op| {
            netns::add_namespace_link(op, &namespace, &device, &plug)
        })
    }

    fn remove_namespace_link(&mut self, namespace: String, device: String) -> Outcome<()> {
        self.netdev_op(&[&namespace, &device], |op| netns::remove_namespace_link(op, &namespace, &device))
    }

    fn set_namespace_addresses(&mut self, namespace: String, device: String, addresses: Vec<String>) -> Outcome<()> {
        self.netdev_op(&[&namespace, &device], |op| netns::set_namespace_addresses(op, &namespace, &device, &addresses))
    }

    fn set_namespace_default_route(&mut self, namespace: String, gateway: Option<String>) -> Outcome<()> {
        self.netdev_op(&[&namespace], |op| netns::set_namespace_default_route(op, &namespace, gateway.as_deref()))
    }

    fn set_namespace_forwarding(&mut self, namespace: String, on: bool) -> Outcome<()> {
        self.netdev_op(&[&namespace], |_| netns::set_namespace_forwarding(&namespace, on))
    }

    fn apply_nftables(&mut self, namespace: String, ruleset: String) -> Outcome<()> {
        self.netdev_op(&[&namespace], |op| netns::apply_nftables(op, &namespace, &ruleset))
    }

    fn apply_load_balancer(&mut self, config: LbConfig) -> Outcome<()> {
        let (name, namespace) = (config.name.clone(), config.namespace.clone());
        self.netdev_op(&[&name, &namespace], |op| netns::apply_load_balancer(op, &config))
    }

    fn stop_load_balancer(&mut self, name: String) -> Outcome<()> {
        self.netdev_op(&[&name], |op| netns::stop_load_balancer(op, &name))
    }

    fn load_balancer_state(&mut self, name: String) -> Outcome<ServiceState> {
        self.netdev_op(&[&name], |_| Ok(netns::load_balancer_state(&name)))
    }

    fn add_dhcp_host(&mut self, name: String, host: DhcpHost) -> Outcome<()> {
        self.netdev_op(&[&name], |op| {
            let host = valid_host(&host)?;
            edit_leases(op, &name, |hosts| upsert_host(hosts, host))
        })
    }

    fn remove_dhcp_host(&mut self, name: String, mac: String) -> Outcome<()> {
        self.netdev_op(&[&name], |op| {
            if !valid_mac(&mac) {
                return Err(invalid(format!("\"{mac}\" is not a MAC address")));
            }
            edit_leases(op, &name, |hosts| remove_host(hosts, &mac))
        })
    }

    fn stop_dhcp(&mut self, name: String) -> Outcome<()> {
        self.netdev_op(&[&name], |op| stop_dhcp(op, &name))
    }

    fn apply_port_filters(&mut self, filters: Vec<PortFilter>) -> Outcome<()> {
        if filters.len() > filter::MAX_FILTERS {
            return Ok(Err(DriverError::InvalidSpec(format!(
                "{} filters, at most {}",
                filters.len(),
                filter::MAX_FILTERS
            ))));
        }
        let devices: Vec<&str> = filters.iter().map(|f| f.device.as_str()).collect();
        self.netdev_op(&devices, |op| filter::apply_port_filters(op, &filters))
    }

    fn remove_port_filters(&mut self, devices: Vec<String>) -> Outcome<()> {
        if devices.len() > filter::MAX_FILTERS {
            return Ok(Err(DriverError::InvalidSpec(format!(
                "{} devices, at most {}",
                devices.len(),
                filter::MAX_FILTERS
            ))));
        }
        let names: Vec<&str> = devices.iter().map(String::as_str).collect();
        self.netdev_op(&names, |op| filter::remove_port_filters(op, &devices))
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
    let hosts = config.hosts.iter().map(valid_host).collect::<NetResult<Vec<_>>>()?;
    Ok(with_leases(&conf, &hosts))
}

/// A lease as the host keeps it: MAC in lowercase, address and host name checked.
fn valid_host(h: &DhcpHost) -> NetResult<DhcpHost> {
    if !valid_mac(&h.mac) {
        return Err(invalid(format!("\"{}\" is not a MAC address", h.mac)));
    }
    let ip = ipv4(&h.ip, "lease address")?;
    if let Some(name) = &h.hostname
        && (name.is_empty()
            || name.len() > 253
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        return Err(invalid(format!("\"{name}\" is not a host name")));
    }
    Ok(DhcpHost { mac: h.mac.to_ascii_lowercase(), ip: ip.to_string(), hostname: h.hostname.clone() })
}

/// The lease list as the `hosts` file holds it: "MAC IP [HOSTNAME]", one a line.
fn parse_hosts(text: &str) -> Vec<DhcpHost> {
    text.lines()
        .filter_map(|line| {
            let mut w = line.split_whitespace();
            let (mac, ip) = (w.next()?, w.next()?);
            Some(DhcpHost { mac: mac.to_owned(), ip: ip.to_owned(), hostname: w.next().map(str::to_owned) })
        })
        .collect()
}

fn render_hosts(hosts: &[DhcpHost]) -> String {
    hosts
        .iter()
        .map(|h| match &h.hostname {
            Some(n) => format!("{} {} {n}\n", h.mac, h.ip),
            None => format!("{} {}\n", h.mac, h.ip),
        })
        .collect()
}

/// Adds `host`, replacing any lease for its MAC or its address (one NIC, one address).
/// Whether the list changed.
fn upsert_host(hosts: &mut Vec<DhcpHost>, host: DhcpHost) -> bool {
    let same = |h: &DhcpHost| h.mac.eq_ignore_ascii_case(&host.mac) || h.ip == host.ip;
    let identical = |h: &DhcpHost| h.mac == host.mac && h.ip == host.ip && h.hostname == host.hostname;
    if hosts.iter().filter(|h| same(h)).count() == 1 && hosts.iter().any(identical) {
        return false;
    }
    hosts.retain(|h| !same(h));
    hosts.push(host);
    true
}

fn remove_host(hosts: &mut Vec<DhcpHost>, mac: &str) -> bool {
    let len = hosts.len();
    hosts.retain(|h| !h.mac.eq_ignore_ascii_case(mac));
    hosts.len() != len
}

/// `conf` with its static leases replaced by `hosts`. udhcpd's static leases carry a
/// MAC and an address only: host names stay in the list, not on the wire.
fn with_leases(conf: &str, hosts: &[DhcpHost]) -> String {
    let mut out: String = conf.lines().filter(|l| !l.starts_with("static_lease ")).flat_map(|l| [l, "\n"]).collect();
    for h in hosts {
        out += &format!("static_lease {} {}\n", h.mac, h.ip);
    }
    out
}

/// Starts a DHCP service on the host, or inside namespace `ns` on its device `config.bridge`.
fn start_dhcp(op: &Op, config: &DhcpConfig, ns: Option<&str>) -> NetResult<()> {
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
    if let Some(ns) = ns {
        if config.vlan.is_some() {
            return Err(invalid(format!("{} is a device in {ns}: a VLAN tag means nothing there", config.bridge)));
        }
        if !netns::namespace_exists(ns) {
            return Err(DriverError::NotFound(format!("no namespace {ns}")).into());
        }
    }
    // Not a Linux bridge: Open vSwitch, and adding the port below is the check (one
    // ovs-vsctl less; "no bridge named" comes back as not-found).
    let kind = if is_linux_bridge(&config.bridge) { BridgeKind::Linux } else { BridgeKind::Openvswitch };
    // A restart (new leases) replaces the old service.
    stop_dhcp(op, &config.name)?;
    if let Some(ns) = ns {
        return start_namespace_dhcp(op, config, ns, server, prefix);
    }

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
    let hosts = config.hosts.iter().map(valid_host).collect::<NetResult<Vec<_>>>()?;
    std::fs::write(dir.join("hosts"), render_hosts(&hosts)).map_err(io)?;
    // What stop-dhcp must undo besides the daemon.
    std::fs::write(dir.join("interface"), format!("{iface} {}\n", config.server_address)).map_err(io)?;
    std::fs::write(dir.join("leases"), b"").map_err(io)?;
    op.must("ip", &["addr", "replace", &config.server_address, "dev", iface])?;
    op.link_up(iface)?;
    launch_udhcpd(op, &config.name)
}

/// The inside of `start_dhcp` for a service in namespace `ns`, whose device there holds
/// the service's address.
fn start_namespace_dhcp(op: &Op, config: &DhcpConfig, ns: &str, server: Ipv4Addr, prefix: u8) -> NetResult<()> {
    let dir = dhcp_dir(&config.name);
    let io = |e: std::io::Error| DriverError::Failed(format!("DHCP state folder {}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(io)?;
    let conf = udhcpd_conf(config, &config.bridge, server, prefix, &dir)?;
    let hosts = config.hosts.iter().map(valid_host).collect::<NetResult<Vec<_>>>()?;
    std::fs::write(dir.join("udhcpd.conf"), conf).map_err(io)?;
    std::fs::write(dir.join("hosts"), render_hosts(&hosts)).map_err(io)?;
    std::fs::write(dir.join("interface"), format!("{} {}\n", config.bridge, config.server_address)).map_err(io)?;
    std::fs::write(dir.join("namespace"), format!("{ns}\n")).map_err(io)?;
    std::fs::write(dir.join("leases"), b"").map_err(io)?;
    op.must("ip", &["-n", ns, "addr", "replace", &config.server_address, "dev", &config.bridge])?;
    op.must("ip", &["-n", ns, "link", "set", "dev", &config.bridge, "up"])?;
    launch_udhcpd(op, &config.name)?;
    serve_guest_data(&op.guest, &config.name)
}

/// Gives a namespaced DHCP service its guest-data listeners (metadata on port 80, the
/// password server on 8080, on the service's address) and its current leases, when the
/// host serves guest data; a service on the host's own namespace gets none.
fn serve_guest_data(guest: &GuestDataPlane, name: &str) -> NetResult<()> {
    let Some(ns) = dhcp_namespace(name) else { return Ok(()) };
    if !guest.has_source() {
        return Ok(());
    }
    let text = std::fs::read_to_string(dhcp_dir(name).join("interface")).unwrap_or_default();
    let Some((iface, address)) = text.trim().split_once(' ') else {
        return Err(DriverError::Failed(format!("DHCP service {name} has no interface recorded")).into());
    };
    let server = ipv4(address.split('/').next().unwrap_or(address), "server address")?;
    let hosts = parse_hosts(&std::fs::read_to_string(dhcp_dir(name).join("hosts")).unwrap_or_default());
    guest
        .ensure(name, &netns::ns_path(&ns), iface, server, leases(&hosts))
        .map_err(|e| DriverError::Failed(e.to_string()))?;
    // Whose listeners these are, for this server after a restart (see `serve_running_services`).
    let owner = guest.owner().unwrap_or_default();
    let file = dhcp_dir(name).join(GUEST_DATA_OWNER);
    if std::fs::read_to_string(&file).ok().as_deref() != Some(&*owner) {
        std::fs::write(&file, &*owner).map_err(|e| DriverError::Failed(format!("writing {}: {e}", file.display())))?;
    }
    Ok(())
}

/// The file in a DHCP service's folder naming the server that serves its guest data.
const GUEST_DATA_OWNER: &str = "guest-data-owner";

fn leases(hosts: &[DhcpHost]) -> Leases {
    hosts.iter().filter_map(|h| Some((h.ip.parse().ok()?, parse_mac(&h.mac)?))).collect()
}

/// Gives every namespaced DHCP service whose daemon runs, and whose guest data this
/// server served before, its guest-data listeners: after a restart of this server the
/// daemons run on, and their guests still need their data. Another server's services on
/// the same machine are left to it.
pub(crate) fn serve_running_services(guest: &GuestDataPlane) {
    let Some(owner) = guest.owner() else { return };
    let Ok(entries) = std::fs::read_dir(DHCP_STATE_DIR) else { return };
    for name in entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_owned)) {
        if std::fs::read_to_string(dhcp_dir(&name).join(GUEST_DATA_OWNER)).ok().as_deref() != Some(&*owner) {
            continue;
        }
        let running =
            dhcp_pid(&name).is_some_and(|pid| dhcp_namespace(&name).is_some_and(|ns| netns::in_namespace(pid, &ns)));
        if !running {
            continue;
        }
        if let Err(NetError::Driver(e)) = serve_guest_data(guest, &name) {
            tracing::warn!("guest data beside DHCP service {name}: {e:?}");
        }
    }
}

/// The namespace a DHCP service runs in, when not the host's.
fn dhcp_namespace(name: &str) -> Option<String> {
    std::fs::read_to_string(dhcp_dir(name).join("namespace")).ok().map(|n| n.trim().to_owned())
}

/// Starts the service's udhcpd on its configuration and waits for its pid file.
fn launch_udhcpd(op: &Op, name: &str) -> NetResult<()> {
    let conf_path = dhcp_dir(name).join("udhcpd.conf");
    // A stale pid file would pass for the new daemon.
    let _ = std::fs::remove_file(dhcp_dir(name).join("udhcpd.pid"));
    // udhcpd detaches itself and writes its pid file.
    match dhcp_namespace(name) {
        Some(ns) => {
            // A namespace made again (deleted, a reboot) has the device but not the
            // service's address, which udhcpd needs.
            let text = std::fs::read_to_string(dhcp_dir(name).join("interface")).unwrap_or_default();
            if let Some((iface, address)) = text.trim().split_once(' ') {
                netns::ensure_address(op, &ns, iface, address)?;
            }
            netns::must_in(op, &ns, "busybox", &["udhcpd", &conf_path.to_string_lossy()])?
        }
        None => op.must("busybox", &["udhcpd", &conf_path.to_string_lossy()])?,
    };
    while Instant::now() < op.deadline {
        if dhcp_pid(name).is_some() {
            return Ok(());
        }
        // It writes the file within a millisecond or two of starting.
        std::thread::sleep(Duration::from_micros(250));
    }
    Err(NetError::Deadline)
}

/// Ends the service's udhcpd, when it runs, and waits until it is gone (it holds port 67).
fn kill_udhcpd(op: &Op, name: &str) -> NetResult<()> {
    if let Some(pid) = dhcp_pid(name) {
        let exited = ExitWatch::new(pid as u32);
        // SAFETY: kill(2) with a pid just read and checked; no memory is involved.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        while alive(pid) {
            let now = Instant::now();
            if now >= op.deadline {
                return Err(NetError::Deadline);
            }
            match &exited {
                Some(w) => w.wait((op.deadline - now).min(Duration::from_millis(50))),
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
    Ok(())
}

/// Whether a process still runs. A zombie does not: it has let go of its sockets, and
/// udhcpd detached itself, so reaping it is up to init, which may take a second or more.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

/// Edits a service's lease list (`edit` says whether it changed), then rewrites its
/// configuration and restarts its udhcpd, which has no reload. A missing service is
/// not-found; one whose daemon died is started again even when nothing changed.
fn edit_leases(op: &Op, name: &str, edit: impl FnOnce(&mut Vec<DhcpHost>) -> bool) -> NetResult<()> {
    let dir = dhcp_dir(name);
    let conf_path = dir.join("udhcpd.conf");
    let conf = match std::fs::read_to_string(&conf_path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DriverError::NotFound(format!("no DHCP service {name}")).into());
        }
        Err(e) => return Err(DriverError::Failed(format!("reading {}: {e}", conf_path.display())).into()),
    };
    let io = |e: std::io::Error| DriverError::Failed(format!("DHCP state folder {}: {e}", dir.display()));
    let mut hosts = parse_hosts(&std::fs::read_to_string(dir.join("hosts")).unwrap_or_default());
    let changed = edit(&mut hosts);
    // A daemon left in a namespace that was deleted and made again serves nobody.
    let running = dhcp_pid(name).is_some_and(|pid| dhcp_namespace(name).is_none_or(|ns| netns::in_namespace(pid, &ns)));
    if !changed && running {
        // Its listeners too: gone if this server restarted since.
        return serve_guest_data(&op.guest, name);
    }
    if changed {
        // Written beside and renamed: a crash never leaves half a list.
        let tmp = dir.join("hosts.new");
        std::fs::write(&tmp, render_hosts(&hosts)).map_err(io)?;
        std::fs::rename(&tmp, dir.join("hosts")).map_err(io)?;
        std::fs::write(&conf_path, with_leases(&conf, &hosts)).map_err(io)?;
    }
    kill_udhcpd(op, name)?;
    launch_udhcpd(op, name)?;
    serve_guest_data(&op.guest, name)
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
    op.guest.stop(name);
    kill_udhcpd(op, name)?;
    let text = std::fs::read_to_string(dir.join("interface")).unwrap_or_default();
    if let (Some(ns), Some((iface, address))) = (dhcp_namespace(name), text.trim().split_once(' ')) {
        // The device is the driver's; the address was ours. Gone with the namespace, maybe.
        if netns::namespace_exists(&ns) {
            let (code, _, _) = op.run("ip", &["-n", &ns, "addr", "del", address, "dev", iface])?;
            if code != 0 {
                tracing::debug!("{address} was no longer on {iface} in {ns}");
            }
        }
    } else if let Some((iface, address)) = text.trim().split_once(' ')
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

    /// The database's own answer is ovs-vsctl's, for a bridge there and one not.
    #[test]
    fn bridges_are_found_in_the_ovs_database() {
        let name = format!("ws-t{}", std::process::id() % 100_000);
        let vsctl = |args: &[&str]| {
            let done = std::process::Command::new("ovs-vsctl").arg("--timeout=5").args(args).status().unwrap();
            assert!(done.success(), "ovs-vsctl {args:?}");
        };
        let soon = || Instant::now() + Duration::from_secs(5);
        vsctl(&["--may-exist", "add-br", &name, "--", "set", "bridge", &name, "datapath_type=netdev"]);
        let there = ovsdb_has_bridge(&name, soon());
        vsctl(&["--if-exists", "del-br", &name]);
        assert_eq!(there, Some(true), "the Open vSwitch database socket answers (scripts/setup.sh starts it)");
        assert_eq!(ovsdb_has_bridge(&name, soon()), Some(false));
        assert_eq!(ovsdb_has_bridge("ws-\"quoted", soon()), Some(false), "a name is a JSON string, not syntax");
    }

    /// A source that knows no guest: these tests are about where and when the ports
    /// are open, not what they answer.
    struct NoGuests;

    impl crate::plugins::guest_data::GuestDataSource for NoGuests {
        fn guest(
            &self,
            _: crate::plugins::guest_data::GuestAddress,
        ) -> crate::plugins::guest_data::SourceFuture<'_, Option<crate::plugins::guest_data::GuestRecord>> {
            Box::pin(async { Ok(None) })
        }
        fn take_password(
            &self,
            _: crate::plugins::guest_data::GuestAddress,
        ) -> crate::plugins::guest_data::SourceFuture<'_, Option<Option<String>>> {
            Box::pin(async { Ok(None) })
        }
    }

    /// Whether something listens on `address:port` inside namespace `ns` (or on the host).
    fn listening(ns: Option<&str>, address: &str, port: u16) -> bool {
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = std::process::Command::new("ip");
                c.args(["netns", "exec", ns, "ss", "-Htln"]);
                c
            }
            None => {
                let mut c = std::process::Command::new("ss");
                c.arg("-Htln");
                c
            }
        };
        let out = cmd.output().expect("ss");
        String::from_utf8_lossy(&out.stdout).split_whitespace().any(|w| w == format!("{address}:{port}"))
    }

    /// The guest-data ports open inside the namespace with a namespaced DHCP service (never
    /// on the host), and close when the service stops, though the namespace stays; a
    /// deleted namespace takes them too.
    #[test]
    fn guest_data_ports_follow_the_namespaced_dhcp_service() {
        use crate::plugins::bindings::netdev::Host as _;
        let id = std::process::id() % 100_000;
        let (ns, dev, name) = (format!("ws-gn{id}"), format!("ws-gv{id}"), format!("ws-gd{id}"));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let grants = crate::plugins::grants::Grants::new(vec![], vec![], vec!["ws-".into()]).unwrap();
        let mut state = CallState::new(
            "netplug".into(),
            Arc::new(grants),
            Default::default(),
            Default::default(),
            Arc::new(crate::plugins::DownloadPolicy::new(vec![])),
            64 << 20,
            Instant::now() + Duration::from_secs(30),
        );
        state.guest_data.set_source(Arc::new(NoGuests), runtime.handle().clone(), "netdev-test");
        state.create_namespace(ns.clone()).unwrap().unwrap();
        let ip = |args: &[&str]| assert!(std::process::Command::new("ip").args(args).status().unwrap().success());
        // A veth pair wholly inside the namespace: this kernel may have no dummy devices.
        ip(&["-n", &ns, "link", "add", &dev, "type", "veth", "peer", "name", &format!("{dev}p")]);
        ip(&["-n", &ns, "link", "set", &format!("{dev}p"), "up"]);
        let config = DhcpConfig {
            name: name.clone(),
            bridge: dev.clone(),
            vlan: None,
            server_address: "10.93.0.2/24".into(),
            gateway: None,
            dns: vec![],
            hosts: vec![lease("52:54:00:93:00:0a", "10.93.0.10", None)],
        };
        let started = state.start_namespace_dhcp(ns.clone(), config.clone()).unwrap();
        let (inside_80, inside_8080, on_host) = (
            listening(Some(&ns), "10.93.0.2", 80),
            listening(Some(&ns), "10.93.0.2", 8080),
            listening(None, "10.93.0.2", 80),
        );
        let stopped = state.stop_dhcp(name.clone()).unwrap();
        let after_stop = (listening(Some(&ns), "10.93.0.2", 80), listening(Some(&ns), "10.93.0.2", 8080));
        let served_after_stop = state.guest_data.serves(&name);
        let again = state.start_namespace_dhcp(ns.clone(), config).unwrap();
        let served_again = state.guest_data.serves(&name);
        let deleted = state.delete_namespace(ns.clone()).unwrap();
        let served_after_delete = state.guest_data.serves(&name);
        let _ = std::process::Command::new("ip").args(["netns", "del", &ns]).status();
        assert!(started.is_ok() && stopped.is_ok() && again.is_ok() && deleted.is_ok());
        assert!(inside_80 && inside_8080, "no guest-data listeners in the namespace");
        assert!(!on_host, "a guest-data listener on the host");
        assert_eq!(after_stop, (false, false), "the ports outlived the DHCP service");
        assert!(!served_after_stop);
        assert!(served_again, "a restarted service has no listeners");
        assert!(!served_after_delete, "the listeners outlived the namespace");
    }

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

    fn lease(mac: &str, ip: &str, hostname: Option<&str>) -> DhcpHost {
        DhcpHost { mac: mac.into(), ip: ip.into(), hostname: hostname.map(Into::into) }
    }

    fn pairs(hosts: &[DhcpHost]) -> Vec<(String, String)> {
        hosts.iter().map(|h| (h.mac.clone(), h.ip.clone())).collect()
    }

    #[test]
    fn lease_list_adds_replaces_and_removes() {
        let mut hosts = vec![];
        assert!(upsert_host(&mut hosts, lease("52:54:00:00:00:01", "10.1.1.10", Some("a"))));
        assert!(upsert_host(&mut hosts, lease("52:54:00:00:00:02", "10.1.1.11", None)));
        // The same lease again changes nothing (no restart).
        assert!(!upsert_host(&mut hosts, lease("52:54:00:00:00:01", "10.1.1.10", Some("a"))));
        // Same MAC, new address: replaced.
        assert!(upsert_host(&mut hosts, lease("52:54:00:00:00:01", "10.1.1.12", Some("a"))));
        assert_eq!(
            pairs(&hosts),
            [("52:54:00:00:00:02".into(), "10.1.1.11".into()), ("52:54:00:00:00:01".into(), "10.1.1.12".into())]
        );
        // Same address, new MAC: the old holder loses it.
        assert!(upsert_host(&mut hosts, lease("52:54:00:00:00:03", "10.1.1.11", None)));
        assert_eq!(
            pairs(&hosts),
            [("52:54:00:00:00:01".into(), "10.1.1.12".into()), ("52:54:00:00:00:03".into(), "10.1.1.11".into())]
        );
        assert!(remove_host(&mut hosts, "52:54:00:00:00:01"));
        assert!(!remove_host(&mut hosts, "52:54:00:00:00:01"), "a missing lease is no change");
        assert_eq!(pairs(&hosts), [("52:54:00:00:00:03".into(), "10.1.1.11".into())]);
    }

    #[test]
    fn lease_file_round_trips_and_conf_follows_it() {
        let hosts =
            vec![lease("52:54:00:00:00:01", "10.1.1.10", Some("web-1")), lease("52:54:00:00:00:02", "10.1.1.11", None)];
        let text = render_hosts(&hosts);
        assert_eq!(text, "52:54:00:00:00:01 10.1.1.10 web-1\n52:54:00:00:00:02 10.1.1.11\n");
        let back = parse_hosts(&text);
        assert_eq!(pairs(&back), pairs(&hosts));
        assert_eq!(back[0].hostname.as_deref(), Some("web-1"));
        assert_eq!(back[1].hostname, None);

        let conf = "interface ws-d1\nstart 10.1.1.2\nstatic_lease 52:54:00:00:00:09 10.1.1.99\n";
        let conf = with_leases(conf, &back[1..]);
        assert_eq!(conf, "interface ws-d1\nstart 10.1.1.2\nstatic_lease 52:54:00:00:00:02 10.1.1.11\n");
    }

    #[test]
    fn leases_are_checked() {
        assert!(valid_host(&lease("52:54:00:00:00:0g", "10.1.1.10", None)).is_err());
        assert!(valid_host(&lease("52:54:00:00:00:01", "10.1.1", None)).is_err());
        assert!(valid_host(&lease("52:54:00:00:00:01", "10.1.1.10", Some("a b"))).is_err());
        let ok = valid_host(&lease("52:54:00:AA:00:01", "10.1.1.10", Some("web-1.example"))).unwrap();
        assert_eq!((ok.mac.as_str(), ok.ip.as_str()), ("52:54:00:aa:00:01", "10.1.1.10"));
    }
}
