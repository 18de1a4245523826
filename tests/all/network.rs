//! Network drivers end to end: `vlan` (Open vSwitch, userspace datapath; scripts/setup.sh
//! starts it) and `flat` (Linux bridge) through the real plugin host and its `netdev`
//! capability. Network namespaces joined by veth pairs stand in for guests; the test
//! plugs their host ends in where the attachment says, as a hypervisor would, and
//! checks who can reach whom (BusyBox ping: the images may have no iputils), and what
//! BusyBox udhcpc gets from the drivers' DHCP services.

use std::process::Command;
use std::thread;

use wasmstack::plugins::{
    Attachment, DriverError, Grants, NetworkDriver, NetworkSpec, NicSpec, PluginError, PluginHost,
};

use crate::support::{Sandbox, new_uuid};

pub(crate) const CONFIG: &str = "[plugin.vlan]\nnetdev = [\"ws-\"]\ntimeout-ms = 30000\n\n\
                      [plugin.flat]\nnetdev = [\"ws-\"]\ntimeout-ms = 30000\n";

/// Runs a command; whether it succeeded.
pub(crate) fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().map(|o| o.status.success()).unwrap_or(false)
}

pub(crate) fn must(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect("running a command");
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Everything the test made, removed when it ends however it ends.
pub(crate) struct Plumbing {
    namespaces: Vec<String>,
    links: Vec<String>,
    ovs_bridges: Vec<String>,
    linux_bridges: Vec<String>,
}

impl Drop for Plumbing {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            run("ip", &["netns", "del", ns]);
        }
        for link in &self.links {
            run("ip", &["link", "del", link]);
        }
        for br in &self.ovs_bridges {
            run("ovs-vsctl", &["--timeout=5", "--if-exists", "del-br", br]);
        }
        for br in &self.linux_bridges {
            run("ip", &["link", "del", br]);
        }
    }
}

impl Plumbing {
    /// Cleans up these bridges too, once the drivers made them.
    pub(crate) fn new(ovs_bridges: &[&str], linux_bridges: &[&str]) -> Self {
        let own = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        Plumbing { namespaces: vec![], links: vec![], ovs_bridges: own(ovs_bridges), linux_bridges: own(linux_bridges) }
    }

    /// A "guest": a namespace with one end of a veth pair holding `address`; the other
    /// end (returned) stays on the host, down and unplugged.
    pub(crate) fn guest(&mut self, ns: &str, host_end: &str, address: &str) -> String {
        self.endpoint(ns, host_end);
        must("ip", &["-n", ns, "addr", "add", address, "dev", "eth0"]);
        host_end.to_owned()
    }

    /// A "guest" with no address yet, whose eth0 has `mac` (a NIC's), for DHCP.
    pub(crate) fn dhcp_guest(&mut self, ns: &str, host_end: &str, mac: &str) -> String {
        self.endpoint(ns, host_end);
        must("ip", &["-n", ns, "link", "set", "eth0", "address", mac]);
        host_end.to_owned()
    }

    fn endpoint(&mut self, ns: &str, host_end: &str) {
        self.namespaces.push(ns.to_owned());
        must("ip", &["netns", "add", ns]);
        self.links.push(host_end.to_owned());
        must("ip", &["link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns]);
        must("ip", &["-n", ns, "link", "set", "eth0", "up"]);
        must("ip", &["-n", ns, "link", "set", "lo", "up"]);
    }

    /// Plugs a host end in where the attachment says, as libvirt does for a tap.
    pub(crate) fn plug(&self, att: &Attachment, device: &str) {
        if att.openvswitch {
            let mut args = vec!["--timeout=5".to_owned(), "add-port".into(), att.bridge.clone(), device.into()];
            args.extend(att.vlan.map(|v| format!("tag={v}")));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            must("ovs-vsctl", &args);
        } else {
            must("ip", &["link", "set", device, "master", &att.bridge]);
        }
        must("ip", &["link", "set", device, "up"]);
    }
}

/// One ping from a namespace, one second to answer.
pub(crate) fn ping_once(ns: &str, address: &str) -> bool {
    run("ip", &["netns", "exec", ns, "busybox", "ping", "-c1", "-W1", address])
}

pub(crate) fn pings(ns: &str, address: &str) -> bool {
    // A few tries: the userspace datapath learns MACs on the first packets.
    (0..3).any(|_| ping_once(ns, address))
}

pub(crate) fn spec(physical: &str, vlan: Option<u16>) -> NetworkSpec {
    NetworkSpec {
        id: new_uuid(),
        physical: physical.to_owned(),
        vlan,
        isolation: if vlan.is_some() { "VLAN" } else { "Flat" }.into(),
        segment: vlan.map(u32::from),
        cidr: "10.77.0.0/24".into(),
        gateway: None,
        dns: vec![],
        dhcp_server: None,
    }
}

fn nic() -> NicSpec {
    NicSpec { id: new_uuid(), mac: "52:54:00:12:34:56".into(), ip: None, hostname: None }
}

pub(crate) fn host() -> (Sandbox, PluginHost) {
    let sb = Sandbox::new();
    sb.install("vlan.wasm", "vlan.wasm");
    sb.install("flat.wasm", "flat.wasm");
    let host = sb.host(CONFIG);
    for ev in host.scan() {
        assert!(ev.loaded, "{}", ev.message);
    }
    (sb, host)
}

fn bridge_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists() || run("ovs-vsctl", &["--timeout=5", "br-exists", name])
}

#[test]
fn vlans_isolate_networks_on_one_ovs_bridge() {
    let (_sb, host) = host();
    let vlan = host.network("vlan").expect("the vlan driver");
    let r = &new_uuid()[..6];
    let bridge = format!("ws-t{r}");
    let mut p = Plumbing::new(&[&bridge], &[]);

    let (net100, net200) = (spec(&bridge, Some(100)), spec(&bridge, Some(200)));
    let a100 = vlan.implement("local", &net100).expect("implementing VLAN 100");
    let a200 = vlan.implement("local", &net200).expect("implementing VLAN 200");
    assert_eq!((a100.bridge.as_str(), a100.openvswitch, a100.vlan), (bridge.as_str(), true, Some(100)));
    assert_eq!((a200.bridge.as_str(), a200.openvswitch, a200.vlan), (bridge.as_str(), true, Some(200)));
    assert!(run("ovs-vsctl", &["--timeout=5", "br-exists", &bridge]), "{bridge} is not an OVS bridge");
    // Idempotent, and prepare-nic answers the same place.
    let again = vlan.implement("local", &net100).expect("implementing VLAN 100 again");
    assert_eq!((again.bridge, again.vlan), (bridge.clone(), Some(100)));
    let prepared = vlan.prepare_nic("local", &net100, &nic()).expect("prepare-nic");
    assert_eq!((prepared.bridge.as_str(), prepared.vlan), (bridge.as_str(), Some(100)));

    let guests = [("a", &a100, "10.77.0.1"), ("b", &a100, "10.77.0.2"), ("c", &a200, "10.77.0.3")];
    for (g, att, ip) in guests {
        let dev = p.guest(&format!("ws-t{r}-{g}"), &format!("ws-t{r}{g}"), &format!("{ip}/24"));
        p.plug(att, &dev);
    }
    let ns_a = format!("ws-t{r}-a");
    assert!(pings(&ns_a, "10.77.0.2"), "VLAN 100 endpoints cannot reach each other");
    assert!(!ping_once(&ns_a, "10.77.0.3"), "VLAN 100 reached VLAN 200");
    assert!(!ping_once(&format!("ws-t{r}-c"), "10.77.0.2"));

    vlan.release_nic("local", &net100, &nic()).expect("release-nic");
    vlan.shutdown("local", &net100).expect("shutting VLAN 100 down");
    vlan.shutdown("local", &net200).expect("shutting VLAN 200 down");
    // The physical bridge is shared: it stays.
    assert!(bridge_exists(&bridge));
}

#[test]
fn flat_networks_share_a_linux_bridge() {
    let (_sb, host) = host();
    let flat = host.network("flat").expect("the flat driver");
    let r = &new_uuid()[..6];
    let bridge = format!("ws-f{r}");
    let mut p = Plumbing::new(&[], &[&bridge]);

    let net = spec(&bridge, None);
    let att = flat.implement("local", &net).expect("implementing a flat network");
    assert_eq!((att.bridge.as_str(), att.openvswitch, att.vlan), (bridge.as_str(), false, None));
    assert!(std::path::Path::new("/sys/class/net").join(&bridge).join("bridge").is_dir(), "not a Linux bridge");
    let err = flat.implement("local", &spec(&bridge, Some(5))).unwrap_err();
    assert!(matches!(err, PluginError::Driver { error: DriverError::Unsupported(_), .. }), "{err}");

    for (g, ip) in [("a", "10.78.0.1"), ("b", "10.78.0.2"), ("c", "10.78.0.3")] {
        let dev = p.guest(&format!("ws-f{r}-{g}"), &format!("ws-f{r}{g}"), &format!("{ip}/24"));
        p.plug(&att, &dev);
    }
    for (from, to) in [("a", "10.78.0.2"), ("a", "10.78.0.3"), ("c", "10.78.0.2")] {
        assert!(pings(&format!("ws-f{r}-{from}"), to), "{from} cannot reach {to} on the flat bridge");
    }
    flat.shutdown("local", &net).expect("shutdown");
    assert!(bridge_exists(&bridge));
}

#[test]
fn names_outside_the_grant_run_nothing() {
    let (_sb, host) = host();
    let r = &new_uuid()[..6];
    let bridge = format!("ws-x{r}");
    // Whatever happens, nothing may be left behind.
    let _p = Plumbing::new(&[&bridge], &[&bridge]);
    for name in ["vlan", "flat"] {
        host.set_grants(name, Grants::new(vec![], vec![], vec!["ws-only-".into()]).unwrap()).unwrap();
    }
    let vlan_err = host.network("vlan").unwrap().implement("local", &spec(&bridge, Some(10))).unwrap_err();
    let flat_err = host.network("flat").unwrap().implement("local", &spec(&bridge, None)).unwrap_err();
    for err in [vlan_err, flat_err] {
        match &err {
            PluginError::Driver { error: DriverError::Denied(text), .. } => {
                assert!(text.contains(&bridge) && text.contains("netdev"), "{text}")
            }
            other => panic!("expected a denial, got {other}"),
        }
    }
    assert!(!bridge_exists(&bridge), "a denied name reached the host");
}

/// A network a driver implemented, shut down (its DHCP service with it) when the test
/// ends however it ends. Declared after the `Plumbing`, so it goes first.
pub(crate) struct Implemented {
    pub(crate) driver: NetworkDriver,
    pub(crate) net: NetworkSpec,
}

impl Drop for Implemented {
    fn drop(&mut self) {
        if let Err(e) = self.driver.shutdown("local", &self.net) {
            eprintln!("shutting network {} down: {e}", self.net.id);
        }
    }
}

/// A network on `subnet`.0/24 with gateway .1, DNS servers .1 and .53, and its DHCP
/// service on .2.
pub(crate) fn dhcp_spec(physical: &str, vlan: Option<u16>, subnet: &str) -> NetworkSpec {
    NetworkSpec {
        cidr: format!("{subnet}.0/24"),
        gateway: Some(format!("{subnet}.1")),
        dns: vec![format!("{subnet}.1"), format!("{subnet}.53")],
        dhcp_server: Some(format!("{subnet}.2/24")),
        ..spec(physical, vlan)
    }
}

pub(crate) fn nic_at(mac: &str, ip: &str, hostname: Option<&str>) -> NicSpec {
    NicSpec { id: new_uuid(), mac: mac.into(), ip: Some(ip.into()), hostname: hostname.map(Into::into) }
}

/// What BusyBox udhcpc in a namespace is offered ("ADDRESS MASK ROUTER DNS…"), within about
/// three seconds; None when no server answers.
pub(crate) fn dhcp_lease(ns: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("lease.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$1\" = bound ] && echo \"LEASE $ip $subnet ${router:-none} ${dns:-none}\"\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "busybox", "udhcpc", "-i", "eth0", "-f", "-n", "-q", "-t", "3", "-T", "1", "-s"])
        .arg(&script)
        .output()
        .expect("running udhcpc");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| l.strip_prefix("LEASE ")).map(str::to_owned)
}

/// Whether some interface on the host (or in namespace `ns`) holds `address` (a DHCP
/// service's).
pub(crate) fn holds(ns: Option<&str>, address: &str) -> bool {
    let mut args = vec!["-o", "-4", "addr", "show"];
    if let Some(ns) = ns {
        args.splice(0..0, ["-n", ns]);
    }
    let out = Command::new("ip").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().any(|w| w == address)
}

/// The namespace the vlan driver runs a network's DHCP service in.
pub(crate) fn dhcp_namespace(net: &NetworkSpec) -> String {
    format!("ws-n{}", net.id.chars().filter(|c| c.is_ascii_hexdigit()).take(11).collect::<String>())
}

/// DHCP through `driver`: endpoints get exactly their NIC's lease, a released NIC (and,
/// with VLANs, the same MAC in another VLAN) gets nothing, repeated calls keep the
/// leases, and shutdown removes the service. The vlan driver runs it in a namespace of
/// the network's, the flat driver on the host.
fn holds_on_host(address: &str) -> bool {
    holds(None, address)
}

fn dhcp_serves_prepared_nics(driver: &str, bridge: &str, vlan: Option<u16>, subnet: &str, p: &mut Plumbing) {
    let (_sb, host) = host();
    let drv = host.network(driver).expect("the driver");
    let r = &bridge[3..];
    let net = dhcp_spec(bridge, vlan, subnet);
    let implemented = Implemented { driver: drv.clone(), net: net.clone() };
    let att = drv.implement("local", &net).expect("implementing the network with DHCP");
    let ns = (driver == "vlan").then(|| dhcp_namespace(&net));
    let holds = |address: &str| holds(ns.as_deref(), address);
    assert!(holds(&format!("{subnet}.2/24")), "no DHCP service address where it should be");
    if ns.is_some() {
        assert!(!holds_on_host(&format!("{subnet}.2/24")), "the namespaced service's address is on the host");
    }
    drv.implement("local", &net).expect("implementing it again");

    let a = nic_at("52:54:00:5e:00:0a", &format!("{subnet}.10"), Some("guest-a"));
    let b = nic_at("52:54:00:5e:00:0b", &format!("{subnet}.11"), None);
    for nic in [&a, &b, &a] {
        let prepared = drv.prepare_nic("local", &net, nic).expect("prepare-nic");
        assert_eq!((prepared.bridge.as_str(), prepared.vlan), (att.bridge.as_str(), att.vlan));
    }
    let (ns_a, ns_b, ns_c) = (format!("ws-{r}-a"), format!("ws-{r}-b"), format!("ws-{r}-c"));
    let dev = p.dhcp_guest(&ns_a, &format!("ws-{r}a"), &a.mac);
    p.plug(&att, &dev);
    let dev = p.dhcp_guest(&ns_b, &format!("ws-{r}b"), &b.mac);
    p.plug(&att, &dev);
    let want = |ip: &str| Some(format!("{ip} 255.255.255.0 {subnet}.1 {subnet}.1 {subnet}.53"));
    let (got_a, got_b) = thread::scope(|s| {
        let b = s.spawn(|| dhcp_lease(&ns_b));
        (dhcp_lease(&ns_a), b.join().unwrap())
    });
    assert_eq!(got_a, want(&format!("{subnet}.10")), "endpoint a");
    assert_eq!(got_b, want(&format!("{subnet}.11")), "endpoint b");

    drv.release_nic("local", &net, &b).expect("release-nic");
    drv.release_nic("local", &net, &b).expect("release-nic again");
    // A repeated implement keeps the leases it did not make.
    drv.implement("local", &net).expect("implementing it a third time");
    if let Some(tag) = vlan {
        // a's MAC in another VLAN on the same bridge.
        let other = Attachment { vlan: Some(tag + 1), ..att.clone() };
        let dev = p.dhcp_guest(&ns_c, &format!("ws-{r}c"), &a.mac);
        p.plug(&other, &dev);
    }
    let (got_a, got_b, got_c) = thread::scope(|s| {
        let b = s.spawn(|| dhcp_lease(&ns_b));
        let c = s.spawn(|| vlan.and_then(|_| dhcp_lease(&ns_c)));
        (dhcp_lease(&ns_a), b.join().unwrap(), c.join().unwrap())
    });
    assert_eq!(got_a, want(&format!("{subnet}.10")), "endpoint a after b's release");
    assert_eq!(got_b, None, "a released NIC still got a lease");
    assert_eq!(got_c, None, "another VLAN got a's lease");

    drv.shutdown("local", &net).expect("shutdown");
    assert!(!holds(&format!("{subnet}.2/24")), "the DHCP service outlived shutdown");
    if let Some(ns) = &ns {
        assert!(!std::path::Path::new("/run/netns").join(ns).exists(), "its namespace outlived shutdown");
    }
    drv.release_nic("local", &net, &a).expect("release-nic after shutdown");
    drop(implemented);
}

#[test]
fn vlan_dhcp_serves_exactly_the_prepared_leases() {
    let r = &new_uuid()[..6];
    let bridge = format!("ws-h{r}");
    let mut p = Plumbing::new(&[&bridge], &[]);
    dhcp_serves_prepared_nics("vlan", &bridge, Some(110), "10.79.0", &mut p);
}

#[test]
fn flat_dhcp_serves_exactly_the_prepared_leases() {
    let r = &new_uuid()[..6];
    let bridge = format!("ws-g{r}");
    let mut p = Plumbing::new(&[], &[&bridge]);
    dhcp_serves_prepared_nics("flat", &bridge, None, "10.80.0", &mut p);
}
