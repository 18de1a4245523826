//! Security groups on a flat network, through the real plugin host, the flat driver and
//! the host's port filters (nftables on the bridge ports, conntrack through
//! br_netfilter). Network namespaces joined to one Linux bridge by veth pairs play the
//! NICs: their host ends are the "taps" the rules are applied to. Each runs a TCP echo
//! server; who can open a connection to whom is what the rules decide.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use wasmstack::plugins::{
    DriverError, IcmpMatch, NetworkDriver, NetworkSpec, NicSecurity, NicSpec, PluginError, PortRange, SecurityProtocol,
    SecurityRule, Serves,
};

use crate::network::{Plumbing, host, must, ping_once, run};
use crate::support::new_uuid;

/// A TCP echo server on each of `ports`, in the namespace it runs in.
const ECHO_SERVER: &str = "import socket, sys, threading
def serve(c):
    with c:
        while True:
            d = c.recv(100)
            if not d:
                return
            c.sendall(d)
def listen(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
for p in sys.argv[1:]:
    threading.Thread(target=listen, args=(int(p),), daemon=True).start()
print('ready', flush=True)
threading.Event().wait()
";

/// Opens one connection (from `source` when given), sends a byte, expects it back.
const CONNECT: &str = "import socket, sys
host, port, source = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    s = socket.create_connection((host, port), timeout=1.5, source_address=(source, 0) if source else None)
    s.sendall(b'x')
    sys.exit(0 if s.recv(1) == b'x' else 1)
except OSError:
    sys.exit(1)
";

/// One connection kept open: each line on stdin is sent, and "ok" or "lost" printed as
/// its echo comes back or not.
const KEEP: &str = "import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
print('connected', flush=True)
for line in sys.stdin:
    try:
        s.sendall(b'y')
        print('ok' if s.recv(1) == b'y' else 'lost', flush=True)
    except OSError:
        print('lost', flush=True)
";

/// Processes the test started, stopped when it ends however it ends.
#[derive(Default)]
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn python_in(ns: &str, script: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, "python3", "-u", "-c", script]).args(args);
    c
}

/// Whether a TCP connection from `ns` to `host:port` opens and carries a byte both ways.
fn connects(ns: &str, host: &str, port: u16) -> bool {
    connects_from(ns, host, port, "")
}

fn connects_from(ns: &str, host: &str, port: u16, source: &str) -> bool {
    python_in(ns, CONNECT, &[host, &port.to_string(), source]).status().is_ok_and(|s| s.success())
}

/// A connection held open from one namespace to another's echo server.
struct Kept {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Kept {
    fn open(children: &mut Children, ns: &str, host: &str, port: u16) -> Kept {
        let mut child = python_in(ns, KEEP, &[host, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let (stdin, stdout) = (child.stdin.take().unwrap(), BufReader::new(child.stdout.take().unwrap()));
        children.0.push(child);
        let mut kept = Kept { stdin, stdout };
        assert_eq!(kept.line(), "connected");
        kept
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("reading the kept connection's answer");
        line.trim().to_owned()
    }

    /// Whether a byte still goes both ways on it.
    fn carries(&mut self) -> bool {
        writeln!(self.stdin).unwrap();
        self.line() == "ok"
    }
}

/// A NIC played by namespace `ns`, whose host end is `device`.
struct Nic {
    ns: String,
    device: String,
    spec: NicSpec,
}

impl Nic {
    fn ip(&self) -> &str {
        self.spec.ip.as_deref().unwrap()
    }
}

fn rule(protocol: SecurityProtocol, ports: Option<(u16, u16)>, cidrs: &[&str]) -> SecurityRule {
    SecurityRule {
        protocol,
        ports: ports.map(|(start, end)| PortRange { start, end }),
        icmp: None,
        cidrs: cidrs.iter().map(|c| c.to_string()).collect(),
    }
}

fn tcp(port: u16, cidrs: &[&str]) -> SecurityRule {
    rule(SecurityProtocol::Tcp, Some((port, port)), cidrs)
}

fn security(nic: &Nic, ingress: Vec<SecurityRule>, egress: Vec<SecurityRule>) -> NicSecurity {
    NicSecurity { nic: nic.spec.clone(), device: nic.device.clone(), ingress, egress }
}

/// Asserts, naming the step, what can connect: `(from, to, port, expected)`.
fn expect(step: &str, cases: &[(&Nic, &Nic, u16, bool)]) {
    for (from, to, port, want) in cases {
        let got = connects(&from.ns, to.ip(), *port);
        assert_eq!(got, *want, "{step}: {} -> {}:{port} connected: {got}", from.ns, to.ip());
    }
}

struct Flat {
    driver: NetworkDriver,
    net: NetworkSpec,
    nics: Vec<Nic>,
    children: Children,
    // Declared last: the namespaces and bridge go after the servers stopped.
    _p: Plumbing,
    _sb: crate::support::Sandbox,
}

impl Drop for Flat {
    fn drop(&mut self) {
        for n in &self.nics {
            let _ = self.driver.remove_security("local", &self.net, &n.spec, &n.device);
        }
        let _ = self.driver.shutdown("local", &self.net);
    }
}

/// A flat network on a bridge of its own with three NICs (`a`, `b`, `c` at .1-.3 of
/// `subnet`, a /24 given as its first three octets), each running echo servers on 22
/// and 80, all reachable before any rule.
fn flat(subnet: &str) -> Flat {
    let (sb, host) = host();
    let driver = host.network("flat").expect("the flat driver");
    let r = &new_uuid()[..6];
    let bridge = format!("ws-s{r}");
    let mut p = Plumbing::new(&[], &[&bridge]);
    let net = NetworkSpec { cidr: format!("{subnet}.0/24"), ..crate::network::spec(&bridge, None) };
    let att = driver.implement("local", &net).expect("implementing a flat network");
    let mut children = Children::default();
    let mut nics = vec![];
    for (i, g) in ["a", "b", "c"].iter().enumerate() {
        let (ns, device) = (format!("ws-s{r}-{g}"), format!("ws-s{r}{g}"));
        let third: u8 = subnet.rsplit('.').next().unwrap().parse().unwrap();
        let (mac, ip) = (format!("52:54:00:4f:{third:02x}:{:02x}", i + 1), format!("{subnet}.{}", i + 1));
        p.dhcp_guest(&ns, &device, &mac);
        must("ip", &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        p.plug(&att, &device);
        let mut server =
            python_in(&ns, ECHO_SERVER, &["22", "80"]).stdout(Stdio::piped()).spawn().expect("python3 echo server");
        let mut ready = String::new();
        BufReader::new(server.stdout.take().unwrap()).read_line(&mut ready).unwrap();
        assert_eq!(ready.trim(), "ready");
        children.0.push(server);
        let spec = NicSpec { id: new_uuid(), mac, ip: Some(ip), hostname: None };
        nics.push(Nic { ns, device, spec });
    }
    Flat { driver, net, nics, children, _p: p, _sb: sb }
}

#[test]
fn flat_driver_serves_security_groups() {
    let (_sb, host) = host();
    let flat = host.get("flat").unwrap();
    assert!(
        matches!(&flat.info.serves, Serves::Network(n) if n.services.iter().any(|s| s == "SecurityGroup")),
        "{:?}",
        flat.info.serves
    );
    // The vlan driver's NICs are Open vSwitch ports: it says it cannot.
    let vlan = host.network("vlan").unwrap();
    let net = crate::network::spec("ws-none", Some(5));
    let nic = NicSpec { id: new_uuid(), mac: "52:54:00:00:00:01".into(), ip: None, hostname: None };
    let err = vlan.apply_security("local", &net, &[]).unwrap_err();
    assert!(matches!(err, PluginError::Driver { error: DriverError::Unsupported(_), .. }), "{err}");
    let err = vlan.remove_security("local", &net, &nic, "ws-x").unwrap_err();
    assert!(matches!(err, PluginError::Driver { error: DriverError::Unsupported(_), .. }), "{err}");
}

/// Only the default group (no ingress, open egress): nobody reaches anybody; an ingress
/// rule for tcp/22 from one address lets exactly that in, and its replies out; other NICs
/// keep their rules while one's change.
#[test]
fn ingress_rules_let_exactly_their_traffic_in_and_replies_out() {
    let w = flat("10.79.1");
    let [a, b, c] = [&w.nics[0], &w.nics[1], &w.nics[2]];
    expect("no rules yet", &[(a, b, 22, true), (c, a, 80, true)]);

    let default: Vec<NicSecurity> = w.nics.iter().map(|n| security(n, vec![], vec![])).collect();
    w.driver.apply_security("local", &w.net, &default).expect("apply-security");
    expect("default group", &[(a, b, 22, false), (b, a, 22, false), (c, b, 80, false), (b, c, 80, false)]);
    assert!(!ping_once(&a.ns, b.ip()), "a pings b in the default group");

    // b admits tcp/22 from a alone; a's ingress stays empty, yet b's replies reach it.
    let a_only = format!("{}/32", a.ip());
    w.driver.apply_security("local", &w.net, &[security(b, vec![tcp(22, &[&a_only])], vec![])]).unwrap();
    expect(
        "b admits tcp/22 from a",
        &[(a, b, 22, true), (a, b, 80, false), (c, b, 22, false), (b, a, 22, false), (c, a, 22, false)],
    );
    assert!(!ping_once(&a.ns, b.ip()), "icmp passed a tcp rule");

    // ICMP echo from the subnet, and a port range from everywhere.
    let ping = SecurityRule {
        icmp: Some(IcmpMatch { kind: Some(8), code: None }),
        ..rule(SecurityProtocol::Icmp, None, &["10.79.1.0/24"])
    };
    let web = rule(SecurityProtocol::Tcp, Some((79, 81)), &["0.0.0.0/0"]);
    w.driver.apply_security("local", &w.net, &[security(b, vec![ping, web], vec![])]).unwrap();
    assert!((0..3).any(|_| ping_once(&a.ns, b.ip())), "a cannot ping b with an echo rule");
    expect("icmp and 79-81", &[(a, b, 80, true), (c, b, 80, true), (a, b, 22, false)]);

    // A rule naming a group without members matches nobody.
    w.driver.apply_security("local", &w.net, &[security(b, vec![tcp(22, &[])], vec![])]).unwrap();
    expect("empty group", &[(a, b, 22, false), (c, b, 22, false)]);

    // Removing b's filter leaves b open and the others as they were.
    w.driver.remove_security("local", &w.net, &b.spec, &b.device).unwrap();
    w.driver.remove_security("local", &w.net, &b.spec, &b.device).expect("removing it again succeeds");
    expect("b unfiltered", &[(a, b, 22, true), (c, b, 80, true), (b, a, 22, false), (a, c, 22, false)]);
}

/// No egress rules let everything out; an egress list lets out only what it names.
/// Connections already open survive rule changes; new ones follow the new rules.
#[test]
fn egress_rules_restrict_outgoing_and_open_connections_survive_changes() {
    let mut w = flat("10.79.2");
    let subnet = "10.79.2.0/24";
    let open_ingress = || vec![tcp(22, &[subnet]), tcp(80, &[subnet])];
    let all: Vec<NicSecurity> = w.nics.iter().map(|n| security(n, open_ingress(), vec![])).collect();
    w.driver.apply_security("local", &w.net, &all).unwrap();
    let [a, b, c] = [&w.nics[0], &w.nics[1], &w.nics[2]];
    expect("open egress", &[(a, b, 22, true), (a, c, 80, true), (b, a, 22, true)]);

    let mut kept = Kept::open(&mut w.children, &a.ns, b.ip(), 22);
    assert!(kept.carries());
    let b_80 = format!("{}/32", b.ip());
    w.driver.apply_security("local", &w.net, &[security(a, open_ingress(), vec![tcp(80, &[&b_80])])]).unwrap();
    expect(
        "a may send only tcp/80 to b",
        &[(a, b, 80, true), (a, b, 22, false), (a, c, 80, false), (c, a, 22, true), (b, c, 22, true)],
    );
    assert!(kept.carries(), "the connection a opened before lost its way");

    // b's ingress closes: the open connection keeps going, a new one does not start.
    w.driver.apply_security("local", &w.net, &[security(b, vec![], vec![])]).unwrap();
    assert!(kept.carries(), "closing b's ingress cut an open connection");
    expect("b closed", &[(a, b, 80, false), (c, b, 22, false)]);

    // `all` egress to a CIDR lets every protocol out to it.
    let egress = vec![rule(SecurityProtocol::All, None, &[&format!("{}/32", c.ip())])];
    w.driver.apply_security("local", &w.net, &[security(a, open_ingress(), egress)]).unwrap();
    expect("a may send anything to c", &[(a, c, 22, true), (a, c, 80, true)]);
}

/// A NIC that takes another address or MAC gets nothing through; back on its own, it does.
#[test]
fn a_nic_sending_from_another_address_or_mac_gets_nothing_through() {
    let w = flat("10.79.3");
    let subnet = "10.79.3.0/24";
    let all: Vec<NicSecurity> =
        w.nics.iter().map(|n| security(n, vec![tcp(22, &[subnet]), tcp(80, &[subnet])], vec![])).collect();
    w.driver.apply_security("local", &w.net, &all).unwrap();
    let [a, b, c] = [&w.nics[0], &w.nics[1], &w.nics[2]];
    expect("own addresses", &[(a, b, 22, true), (c, a, 80, true)]);

    // Another address on the same NIC: even to a port b admits from the whole subnet.
    must("ip", &["-n", &a.ns, "addr", "add", "10.79.3.9/24", "dev", "eth0"]);
    assert!(!connects_from(&a.ns, b.ip(), 22, "10.79.3.9"), "a spoofed 10.79.3.9");
    assert!(connects_from(&a.ns, b.ip(), 22, a.ip()), "a lost its own address");
    must("ip", &["-n", &a.ns, "addr", "del", "10.79.3.9/24", "dev", "eth0"]);

    // Another MAC: nothing, ARP included, until it takes its own back.
    must("ip", &["-n", &a.ns, "link", "set", "eth0", "address", "52:54:00:66:66:66"]);
    run("ip", &["-n", &a.ns, "neigh", "flush", "all"]);
    expect("another MAC", &[(a, b, 22, false), (a, c, 80, false)]);
    must("ip", &["-n", &a.ns, "link", "set", "eth0", "address", &a.spec.mac]);
    let started = Instant::now();
    while !connects(&a.ns, b.ip(), 22) {
        assert!(started.elapsed() < Duration::from_secs(10), "a's own MAC does not get through again");
    }

    // A NIC with no address yet may only ask for one.
    let mut no_ip = security(c, vec![tcp(22, &[subnet])], vec![]);
    no_ip.nic.ip = None;
    w.driver.apply_security("local", &w.net, &[no_ip]).unwrap();
    expect("c without an address", &[(c, a, 22, false), (c, b, 80, false)]);
}

/// Bad input is refused before anything changes, and names beyond the grant are denied.
#[test]
fn bad_security_input_changes_nothing() {
    let w = flat("10.79.4");
    let [a, b, _] = [&w.nics[0], &w.nics[1], &w.nics[2]];
    w.driver.apply_security("local", &w.net, &[security(b, vec![tcp(22, &["10.79.4.0/24"])], vec![])]).unwrap();
    let refused = |nics: Vec<NicSecurity>, kind: fn(&DriverError) -> bool| {
        let err = w.driver.apply_security("local", &w.net, &nics).unwrap_err();
        assert!(matches!(&err, PluginError::Driver { error, .. } if kind(error)), "{err}");
    };
    let invalid = |e: &DriverError| matches!(e, DriverError::InvalidSpec(_));
    // The good one first: all of a call applies or none.
    let bad_cidr = security(a, vec![tcp(22, &["10.79.4.0/33"])], vec![]);
    refused(vec![security(b, vec![], vec![]), bad_cidr], invalid);
    refused(vec![security(b, vec![rule(SecurityProtocol::Tcp, Some((90, 80)), &["0.0.0.0/0"])], vec![])], invalid);
    let mut bad_mac = security(b, vec![], vec![]);
    bad_mac.nic.mac = "52:54:00:zz:00:01".into();
    refused(vec![bad_mac], invalid);
    let mut outside = security(b, vec![], vec![]);
    outside.device = "eth0".into();
    refused(vec![outside], |e| matches!(e, DriverError::Denied(_)));
    expect("b's rules unchanged", &[(a, b, 22, true), (a, b, 80, false)]);
}

/// DHCP passes the filter both ways: a filtered NIC with no inbound rules gets its lease
/// from the network's own service, and another filtered NIC running a DHCP server of its
/// own answers nobody.
#[test]
fn filtered_nics_get_their_own_lease_and_serve_none() {
    let (_sb, host) = host();
    let driver = host.network("flat").expect("the flat driver");
    let r = &new_uuid()[..6];
    let bridge = format!("ws-s{r}");
    let mut p = Plumbing::new(&[], &[&bridge]);
    let net = crate::network::dhcp_spec(&bridge, None, "10.79.5");
    driver.implement("local", &net).expect("implementing a flat network with DHCP");
    let a = NicSpec { id: new_uuid(), mac: "52:54:00:4f:05:0a".into(), ip: Some("10.79.5.10".into()), hostname: None };
    let b = NicSpec { id: new_uuid(), mac: "52:54:00:4f:05:0b".into(), ip: Some("10.79.5.11".into()), hostname: None };
    let att = driver.prepare_nic("local", &net, &a).expect("prepare-nic");
    let (ns_a, dev_a, ns_b, dev_b) =
        (format!("ws-s{r}-a"), format!("ws-s{r}a"), format!("ws-s{r}-b"), format!("ws-s{r}b"));
    p.dhcp_guest(&ns_a, &dev_a, &a.mac);
    p.plug(&att, &dev_a);
    p.dhcp_guest(&ns_b, &dev_b, &b.mac);
    must("ip", &["-n", &ns_b, "addr", "add", "10.79.5.11/24", "dev", "eth0"]);
    p.plug(&att, &dev_b);
    let nics = [
        NicSecurity { nic: a.clone(), device: dev_a.clone(), ingress: vec![], egress: vec![] },
        NicSecurity { nic: b.clone(), device: dev_b.clone(), ingress: vec![], egress: vec![] },
    ];
    driver.apply_security("local", &net, &nics).unwrap();
    // b offers 10.79.5.99 to anyone who asks.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("rogue.conf");
    std::fs::write(
        &conf,
        format!(
            "interface eth0\nstart 10.79.5.99\nend 10.79.5.99\nopt subnet 255.255.255.0\nlease_file {}\npidfile {}\n",
            dir.path().join("leases").display(),
            dir.path().join("pid").display()
        ),
    )
    .unwrap();
    let mut children = Children::default();
    children.0.push(
        Command::new("ip")
            .args(["netns", "exec", &ns_b, "busybox", "udhcpd", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("busybox udhcpd"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let want = Some("10.79.5.10 255.255.255.0 10.79.5.1 10.79.5.1 10.79.5.53".to_owned());
    for _ in 0..3 {
        assert_eq!(crate::network::dhcp_lease(&ns_a), want, "a filtered NIC's lease");
    }
    drop(children);
    for n in &nics {
        driver.remove_security("local", &net, &n.nic, &n.device).unwrap();
    }
    driver.shutdown("local", &net).unwrap();
}
