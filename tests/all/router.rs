//! Routers built by the vlan driver through the real plugin host, as the server drives
//! it: a namespace per network holding the guest gateway and the public IPs, nftables
//! for NAT and the firewalls, HAProxy for load balancers. Namespaces stand in for the
//! rest: an "internet" on the public bridge with an HTTP server that logs its clients'
//! addresses, and "guests" on the network's VLAN, each serving a page that names it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wasmstack::plugins::{
    EgressPolicy, EgressRule, FirewallRule, LbAlgorithm, LbMember, LoadBalancer, NetworkDriver, NetworkSpec,
    PortForward, PortRange, Protocol, PublicIp, RouterSpec, RouterState, StaticNat,
};

use crate::network::{Implemented, Plumbing, dhcp_lease, dhcp_spec, host, must, nic_at, spec};
use crate::support::new_uuid;

/// The internet's address on the public bridge, the public range's gateway.
const INTERNET: &str = "203.0.113.1";

/// HTTP servers the test started, stopped when it ends however it ends.
#[derive(Default)]
struct Servers {
    children: Vec<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Servers {
    /// An HTTP server in `ns` on `address:port`, serving `/who` with `name` in it and
    /// logging each request (client address first) to the file it returns.
    fn start(&mut self, ns: &str, address: &str, port: u16, name: &str) -> PathBuf {
        let dir = self._dir.get_or_insert_with(|| tempfile::tempdir().unwrap()).path().join(format!("{ns}-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("who"), name).unwrap();
        let log = dir.with_extension("log");
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-u", "-m", "http.server", &port.to_string(), "--bind", address])
            .arg("--directory")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("python3 -m http.server");
        self.children.push(child);
        let started = Instant::now();
        while get(ns, &format!("http://{address}:{port}/who"), 1).as_deref() != Some(name) {
            assert!(started.elapsed() < Duration::from_secs(10), "the HTTP server in {ns} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        log
    }
}

/// Has the kernel fill in the checksums of what eth0 in `ns` sends (`ethtool -K eth0 tx
/// off`, which the machine may not have): Open vSwitch's userspace datapath reads a veth
/// through a packet socket, which drops the note that a checksum is still to be filled in.
/// A VM's tap needs no such thing; these stand-ins do.
pub(crate) fn no_tx_checksum_offload(ns: &str) {
    let script = "import ctypes, fcntl, socket, struct\n\
                  s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                  value = ctypes.create_string_buffer(struct.pack('II', 0x17, 0))\n\
                  fcntl.ioctl(s.fileno(), 0x8946, struct.pack('16sP', b'eth0', ctypes.addressof(value)))\n";
    must("ip", &["netns", "exec", ns, "python3", "-c", script]);
}

/// GET `url` from namespace `ns`; the body, or None when nothing answered in `seconds`.
fn get(ns: &str, url: &str, seconds: u32) -> Option<String> {
    let out = Command::new("ip")
        // curl, not BusyBox wget: Debian's wget crashes with -T.
        .args(["netns", "exec", ns, "curl", "-sf", "--max-time", &seconds.to_string(), url])
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// GET, a few tries: the userspace datapath learns MACs on the first packets.
fn reaches(ns: &str, url: &str) -> Option<String> {
    for _ in 0..3 {
        let t = Instant::now();
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "curl", "-sS", "-f", "--max-time", "2", url])
            .output()
            .ok()?;
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        eprintln!(
            "{ns} GET {url}: {:?} after {:?}: {}",
            out.status.code(),
            t.elapsed(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    None
}

/// The client addresses an HTTP server logged.
fn clients(log: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("\"GET "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn range(start: u16, end: u16) -> PortRange {
    PortRange { start, end }
}

fn tcp(port: u16) -> FirewallRule {
    FirewallRule { protocol: Protocol::Tcp, ports: Some(range(port, port)), cidrs: vec![] }
}

fn public(address: &str, source_nat: bool, firewall: Vec<FirewallRule>) -> PublicIp {
    PublicIp { address: address.into(), prefix: 24, gateway: INTERNET.into(), vlan: None, source_nat, firewall }
}

/// One test's world: an internet namespace on a public Linux bridge, an OVS bridge for
/// guest VLANs, and the vlan driver.
struct World {
    r: String,
    public_bridge: String,
    guest_bridge: String,
    internet: String,
    internet_log: PathBuf,
    servers: Servers,
    driver: NetworkDriver,
    _sb: crate::support::Sandbox,
    // Declared last: dropped after the servers stopped and the networks were shut down.
    p: Plumbing,
}

impl World {
    fn new() -> World {
        let (sb, host) = host();
        let driver = host.network("vlan").expect("the vlan driver");
        let r = new_uuid()[..6].to_owned();
        let (public_bridge, guest_bridge) = (format!("ws-u{r}"), format!("ws-h{r}"));
        let mut p = Plumbing::new(&[&guest_bridge], &[&public_bridge]);
        must("ip", &["link", "add", &public_bridge, "type", "bridge"]);
        must("ip", &["link", "set", &public_bridge, "up"]);
        let internet = format!("ws-i{r}");
        let dev = p.guest(&internet, &format!("ws-i{r}h"), &format!("{INTERNET}/24"));
        must("ip", &["link", "set", &dev, "master", &public_bridge]);
        must("ip", &["link", "set", &dev, "up"]);
        let mut servers = Servers::default();
        let internet_log = servers.start(&internet, INTERNET, 80, "internet");
        World { r, public_bridge, guest_bridge, internet, internet_log, servers, driver, _sb: sb, p }
    }

    /// A guest namespace at `ip` on the network's VLAN, its gateway .1, serving `/who`
    /// (its name) on port 8000.
    fn guest(&mut self, net: &NetworkSpec, name: &str, ip: &str) -> String {
        let ns = format!("ws-{}{name}", self.r);
        let dev = self.p.guest(&ns, &format!("ws-{}{name}h", self.r), &format!("{ip}/24"));
        let att = self.driver.implement("local", net).expect("implement");
        self.p.plug(&att, &dev);
        no_tx_checksum_offload(&ns);
        let gateway = net.gateway.clone().unwrap();
        must("ip", &["-n", &ns, "route", "add", "default", "via", &gateway]);
        self.servers.start(&ns, "0.0.0.0", 8000, name);
        ns
    }

    fn url(&self, address: &str, port: u16) -> String {
        format!("http://{address}:{port}/who")
    }
}

/// A network on 10.90.0.0/24 (gateway .1) on VLAN `vlan` of the world's guest bridge.
fn network(w: &World, vlan: u16, subnet: &str) -> NetworkSpec {
    NetworkSpec {
        cidr: format!("{subnet}.0/24"),
        gateway: Some(format!("{subnet}.1")),
        ..spec(&w.guest_bridge, Some(vlan))
    }
}

fn router(w: &World, subnet: &str) -> RouterSpec {
    RouterSpec {
        guest_gateway: format!("{subnet}.1/24"),
        public_label: w.public_bridge.clone(),
        public_ips: vec![],
        egress_default: EgressPolicy::Allow,
        egress: vec![],
        port_forwards: vec![],
        static_nats: vec![],
        load_balancers: vec![],
    }
}

/// What a router namespace holds, for a failure's message.
fn diagnose(net: &NetworkSpec, guest: &str) -> String {
    let ns = router_namespace(net);
    let mut out = String::new();
    for args in [
        vec!["-n", &ns, "-br", "addr"],
        vec!["-n", &ns, "route"],
        vec!["netns", "exec", &ns, "nft", "list", "ruleset"],
        vec!["netns", "exec", &ns, "busybox", "ping", "-c1", "-W1", INTERNET],
        vec!["netns", "exec", &ns, "busybox", "ping", "-c1", "-W1", "10.90.0.10"],
        vec!["netns", "exec", &guest, "busybox", "ping", "-c1", "-W1", INTERNET],
        vec!["netns", "exec", &guest, "curl", "-sv", "--max-time", "2", "http://203.0.113.1/who"],
        vec!["-n", &guest, "route"],
    ] {
        let o = Command::new("ip").args(&args).output().unwrap();
        out += &format!(
            "$ ip {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    out
}

fn router_namespace(net: &NetworkSpec) -> String {
    format!("ws-r{}", net.id.chars().filter(|c| c.is_ascii_hexdigit()).take(11).collect::<String>())
}

#[test]
fn a_router_does_nat_port_forwarding_firewalls_and_load_balancing_and_comes_back() {
    let mut w = World::new();
    let net = network(&w, 130, "10.90.0");
    let _net = Implemented { driver: w.driver.clone(), net: net.clone() };
    w.driver.implement("local", &net).expect("implementing the network");
    let a = w.guest(&net, "a", "10.90.0.10");
    let b = w.guest(&net, "b", "10.90.0.11");
    let (snat, nat, shared) = ("203.0.113.10", "203.0.113.11", "203.0.113.12");
    assert_eq!(w.driver.router_status("local", &net).unwrap(), RouterState::Missing);

    let full = RouterSpec {
        public_ips: vec![
            public(snat, true, vec![]),
            public(nat, false, vec![tcp(8000)]),
            public(shared, false, vec![tcp(8080), tcp(80)]),
        ],
        port_forwards: vec![PortForward {
            public_ip: shared.into(),
            protocol: Protocol::Tcp,
            public_ports: range(8080, 8080),
            private_ip: "10.90.0.10".into(),
            private_ports: range(8000, 8000),
        }],
        static_nats: vec![StaticNat { public_ip: nat.into(), private_ip: "10.90.0.11".into() }],
        load_balancers: vec![LoadBalancer {
            name: "web".into(),
            public_ip: shared.into(),
            public_port: 80,
            algorithm: LbAlgorithm::RoundRobin,
            members: vec![
                LbMember { ip: "10.90.0.10".into(), port: 8000 },
                LbMember { ip: "10.90.0.11".into(), port: 8000 },
            ],
        }],
        ..router(&w, "10.90.0")
    };
    let apply = |spec: &RouterSpec| w.driver.apply_router("local", &net, spec).expect("apply-router");
    apply(&full);
    assert_eq!(w.driver.router_status("local", &net).unwrap(), RouterState::Running);
    apply(&full);

    let internet_url = w.url(INTERNET, 80);
    let works = |w: &World| {
        // Source NAT: a guest reaches the internet, which sees the source NAT IP.
        assert_eq!(
            reaches(&a, &internet_url).as_deref(),
            Some("internet"),
            "a guest reaches the internet\n{}",
            diagnose(&net, &a)
        );
        assert!(clients(&w.internet_log).contains(snat), "{:?}", clients(&w.internet_log));
        // Static NAT both ways: b leaves from its own public IP and is reached on it.
        assert_eq!(reaches(&b, &internet_url).as_deref(), Some("internet"));
        assert!(clients(&w.internet_log).contains(nat), "{:?}", clients(&w.internet_log));
        assert_eq!(reaches(&w.internet, &w.url(nat, 8000)).as_deref(), Some("b"), "static NAT inbound");
        // Port forwarding, where the firewall allows it.
        assert_eq!(reaches(&w.internet, &w.url(shared, 8080)).as_deref(), Some("a"), "port forward");
        // Load balancing spreads connections over both guests.
        let seen: BTreeSet<String> = (0..6).filter_map(|_| reaches(&w.internet, &w.url(shared, 80))).collect();
        assert_eq!(seen, BTreeSet::from(["a".to_owned(), "b".to_owned()]), "load balancer");
    };
    works(&w);
    // Ingress nothing allows is refused: the static NAT guest's other port, and the
    // source NAT IP itself.
    assert_eq!(get(&w.internet, &w.url(nat, 8001), 2), None, "ingress without a firewall rule");
    assert_eq!(get(&w.internet, &w.url(snat, 80), 2), None, "the source NAT IP took a connection");

    // The firewall rule of a port forward removed closes it; the rule back opens it.
    let mut closed = full.clone();
    closed.public_ips[2].firewall = vec![tcp(80)];
    apply(&closed);
    assert_eq!(get(&w.internet, &w.url(shared, 8080), 2), None, "a port forward with no firewall rule");
    apply(&full);
    assert_eq!(reaches(&w.internet, &w.url(shared, 8080)).as_deref(), Some("a"));
    // The port forward removed closes it too.
    let mut no_forward = full.clone();
    no_forward.port_forwards.clear();
    apply(&no_forward);
    assert_eq!(get(&w.internet, &w.url(shared, 8080), 2), None, "a removed port forward");

    // Egress: denied by default, then one rule lets web traffic to the internet out.
    let mut deny = full.clone();
    deny.egress_default = EgressPolicy::Deny;
    apply(&deny);
    assert_eq!(get(&a, &internet_url, 2), None, "egress denied by default");
    deny.egress = vec![EgressRule {
        protocol: Protocol::Tcp,
        ports: Some(range(80, 80)),
        source_cidrs: vec![],
        destination_cidrs: vec!["203.0.113.0/24".into()],
    }];
    apply(&deny);
    assert_eq!(reaches(&a, &internet_url).as_deref(), Some("internet"), "egress allowed by a rule");
    // And under allow, a rule refuses what it matches.
    let mut allow = full.clone();
    allow.egress = vec![EgressRule { destination_cidrs: vec![format!("{INTERNET}/32")], ..deny.egress[0].clone() }];
    apply(&allow);
    assert_eq!(get(&a, &internet_url, 2), None, "egress refused by a rule");

    // Someone deletes the router's namespace: the status says so, and applying the spec
    // again brings everything back.
    apply(&full);
    must("ip", &["netns", "del", &router_namespace(&net)]);
    assert_eq!(w.driver.router_status("local", &net).unwrap(), RouterState::Missing);
    apply(&full);
    assert_eq!(w.driver.router_status("local", &net).unwrap(), RouterState::Running);
    works(&w);

    w.driver.destroy_router("local", &net).expect("destroy-router");
    assert_eq!(w.driver.router_status("local", &net).unwrap(), RouterState::Missing);
    assert!(!Path::new("/run/netns").join(router_namespace(&net)).exists());
    assert_eq!(get(&a, &internet_url, 2), None, "a destroyed router still routes");
    w.driver.destroy_router("local", &net).expect("destroying it again");
}

#[test]
fn two_networks_with_the_same_addresses_on_one_host_both_work() {
    let mut w = World::new();
    let subnet = "10.91.0";
    let (mut nets, mut guests) = (vec![], vec![]);
    for (i, (vlan, snat)) in [(131, "203.0.113.20"), (132, "203.0.113.21")].into_iter().enumerate() {
        let net = NetworkSpec { id: new_uuid(), ..dhcp_spec(&w.guest_bridge, Some(vlan), subnet) };
        let implemented = Implemented { driver: w.driver.clone(), net: net.clone() };
        w.driver.implement("local", &net).expect("implement");
        // Each network's DHCP service hands the same address to its own guest.
        let mac = format!("52:54:00:5f:00:0{i}");
        w.driver.prepare_nic("local", &net, &nic_at(&mac, &format!("{subnet}.10"), None)).expect("prepare-nic");
        let name = ["a", "b"][i];
        let ns = w.guest(&net, name, &format!("{subnet}.10"));
        must("ip", &["-n", &ns, "link", "set", "eth0", "address", &mac]);
        let lease = dhcp_lease(&ns).unwrap_or_default();
        assert!(lease.starts_with(&format!("{subnet}.10 ")), "network {i}'s DHCP offered {lease:?}");
        let spec = RouterSpec { public_ips: vec![public(snat, true, vec![])], ..router(&w, subnet) };
        w.driver.apply_router("local", &net, &spec).expect("apply-router");
        nets.push(implemented);
        guests.push((ns, snat));
    }
    for (ns, snat) in &guests {
        let got = reaches(ns, &w.url(INTERNET, 80));
        assert_eq!(got.as_deref(), Some("internet"), "{ns} reaches the internet\n{}", diagnose(&nets[0].net, ns));
        assert!(clients(&w.internet_log).contains(*snat), "{ns}: {:?}", clients(&w.internet_log));
    }
    drop(nets);
}
