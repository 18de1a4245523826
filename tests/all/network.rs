//! Network drivers end to end: `vlan` (Open vSwitch, userspace datapath; scripts/setup.sh
//! starts it) and `flat` (Linux bridge) through the real plugin host and its `netdev`
//! capability. Network namespaces joined by veth pairs stand in for guests; the test
//! plugs their host ends in where the attachment says, as a hypervisor would, and
//! checks who can reach whom (BusyBox ping: the images may have no iputils).

use std::process::Command;

use wasmstack::plugins::{Attachment, DriverError, Grants, NetworkSpec, NicSpec, PluginError, PluginHost};

use crate::support::{Sandbox, new_uuid};

const CONFIG: &str = "[plugin.vlan]\nnetdev = [\"ws-\"]\ntimeout-ms = 30000\n\n\
                      [plugin.flat]\nnetdev = [\"ws-\"]\ntimeout-ms = 30000\n";

/// Runs a command; whether it succeeded.
fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().map(|o| o.status.success()).unwrap_or(false)
}

fn must(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect("running a command");
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Everything the test made, removed when it ends however it ends.
struct Plumbing {
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
    fn new(ovs_bridges: &[&str], linux_bridges: &[&str]) -> Self {
        let own = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        Plumbing { namespaces: vec![], links: vec![], ovs_bridges: own(ovs_bridges), linux_bridges: own(linux_bridges) }
    }

    /// A "guest": a namespace with one end of a veth pair holding `address`; the other
    /// end (returned) stays on the host, down and unplugged.
    fn guest(&mut self, ns: &str, host_end: &str, address: &str) -> String {
        self.namespaces.push(ns.to_owned());
        must("ip", &["netns", "add", ns]);
        self.links.push(host_end.to_owned());
        must("ip", &["link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns]);
        must("ip", &["-n", ns, "addr", "add", address, "dev", "eth0"]);
        must("ip", &["-n", ns, "link", "set", "eth0", "up"]);
        must("ip", &["-n", ns, "link", "set", "lo", "up"]);
        host_end.to_owned()
    }

    /// Plugs a host end in where the attachment says, as libvirt does for a tap.
    fn plug(&self, att: &Attachment, device: &str) {
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
fn ping_once(ns: &str, address: &str) -> bool {
    run("ip", &["netns", "exec", ns, "busybox", "ping", "-c1", "-W1", address])
}

fn pings(ns: &str, address: &str) -> bool {
    // A few tries: the userspace datapath learns MACs on the first packets.
    (0..3).any(|_| ping_once(ns, address))
}

fn spec(physical: &str, vlan: Option<u16>) -> NetworkSpec {
    NetworkSpec {
        id: new_uuid(),
        physical: physical.to_owned(),
        vlan,
        cidr: "10.77.0.0/24".into(),
        gateway: None,
        dns: vec![],
        dhcp: false,
    }
}

fn nic() -> NicSpec {
    NicSpec { id: new_uuid(), mac: "52:54:00:12:34:56".into(), ip: None, hostname: None }
}

fn host() -> (Sandbox, PluginHost) {
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
