//! What applying a router costs through the vlan driver, against the bare `ip`, `ovs-vsctl`
//! and `nft` commands doing the same work on this host, measured in the same run, with 1,
//! 100 and 1,000 port-forwarding rules.
//!
//!   CARGO_TARGET_DIR=$HOME/.cache/wasmstack/target cargo bench -p wasmstack --bench router_apply
//!
//! Needs root, Open vSwitch running (scripts/setup.sh), nftables, and the components built
//! (scripts/build.sh). `BENCH_RUNS` sets the runs per measurement (10).
//!
//! Two measurements per rule count:
//! - build: no router on the host yet; `apply-router` makes the namespace, its guest link
//!   on the network's VLAN (Open vSwitch) and its public link (a Linux bridge), addresses,
//!   the default route, forwarding and the rule set. The baseline runs the same commands
//!   from the bench. Teardown is not timed.
//! - update: the router is there; its rules change (every port forward moves to another
//!   port). Through the driver that is the whole desired state applied again (each piece
//!   checked, the rule set replaced); the baseline is `nft -f` of the new rule set alone,
//!   the least any tool must do.
//!
//! - ready: as build, then until a guest (a namespace on the network's VLAN, default route
//!   via the router) opens a TCP connection to a server in a namespace standing for the
//!   internet, through source NAT (the server checks it sees the public IP). This is what
//!   `restartNetwork` waits for once the database is read, without the API around it.
//!
//! Runs of the driver and the baseline alternate.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmstack::plugins::{
    EgressPolicy, FirewallRule, Grants, HostConfig, NetworkDriver, NetworkSpec, PluginHost, PortForward, PortRange,
    Protocol, PublicIp, RouterSpec,
};

const VLAN: u16 = 3998;
const PUBLIC: &str = "198.51.100.10";

fn wasm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WASMSTACK_WASM_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("bench executable path");
    exe.ancestors().nth(3).expect("cargo target dir").join("wasm32-wasip2/release")
}

fn must(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().expect("running a command");
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn quiet(program: &str, args: &[&str]) {
    let _ = Command::new(program).args(args).stdin(Stdio::null()).output();
}

/// Bridges made for the bench, removed however it ends.
struct Bridges {
    ovs: String,
    linux: String,
}

impl Drop for Bridges {
    fn drop(&mut self) {
        quiet("ovs-vsctl", &["--timeout=5", "--if-exists", "del-br", &self.ovs]);
        quiet("ip", &["link", "del", &self.linux]);
    }
}

/// Namespaces (and an Open vSwitch port) made for the bench, removed however it ends.
struct Namespaces(Vec<String>, String, String);

impl Drop for Namespaces {
    fn drop(&mut self) {
        quiet("ovs-vsctl", &["--timeout=5", "--if-exists", "del-port", &self.1, &self.2]);
        for ns in &self.0 {
            quiet("ip", &["netns", "del", ns]);
        }
    }
}

/// `n` port forwards from the public IP's ports `first..` to one guest's port 8000.
fn forwards(n: u16, first: u16) -> Vec<PortForward> {
    (0..n)
        .map(|i| PortForward {
            public_ip: PUBLIC.into(),
            protocol: Protocol::Tcp,
            public_ports: PortRange { start: first + i, end: first + i },
            private_ip: "10.98.0.10".into(),
            private_ports: PortRange { start: 8000, end: 8000 },
        })
        .collect()
}

fn router(public_bridge: &str, pfs: Vec<PortForward>) -> RouterSpec {
    let firewall = pfs
        .iter()
        .map(|pf| FirewallRule { protocol: Protocol::Tcp, ports: Some(pf.public_ports), cidrs: vec![] })
        .collect();
    RouterSpec {
        guest_gateway: "10.98.0.1/24".into(),
        public_label: public_bridge.into(),
        public_ips: vec![PublicIp {
            address: PUBLIC.into(),
            prefix: 24,
            gateway: "198.51.100.1".into(),
            vlan: None,
            source_nat: true,
            firewall,
        }],
        egress_default: EgressPolicy::Allow,
        egress: vec![],
        port_forwards: pfs,
        static_nats: vec![],
        load_balancers: vec![],
    }
}

/// The rule set the baseline applies: the router's, with `n` port forwards from `first`.
fn ruleset(guest: &str, n: u16, first: u16) -> String {
    let (mut pre, mut ingress) = (String::new(), String::new());
    for p in first..first + n {
        let _ = writeln!(pre, "        ip daddr {PUBLIC} tcp dport {p} dnat to 10.98.0.10:8000");
        let _ = writeln!(
            ingress,
            "        ct original ip daddr {PUBLIC} meta l4proto tcp ct original proto-dst {p} accept"
        );
    }
    format!(
        "flush ruleset\ntable ip router {{\n\
         \x20   chain prerouting {{\n        type nat hook prerouting priority dstnat; policy accept;\n\
         \x20       iifname \"{guest}\" return\n{pre}    }}\n\
         \x20   chain postrouting {{\n        type nat hook postrouting priority srcnat; policy accept;\n\
         \x20       oifname \"{guest}\" return\n        ip saddr 10.98.0.0/24 snat to {PUBLIC}\n    }}\n\
         \x20   chain ingress {{\n{ingress}    }}\n\
         \x20   chain egress {{\n        accept\n    }}\n\
         \x20   chain input {{\n        type filter hook input priority filter; policy drop;\n\
         \x20       iifname \"lo\" accept\n        ct state established,related accept\n\
         \x20       ct state invalid drop\n        iifname \"{guest}\" accept\n        jump ingress\n    }}\n\
         \x20   chain forward {{\n        type filter hook forward priority filter; policy drop;\n\
         \x20       ct state established,related accept\n        ct state invalid drop\n\
         \x20       iifname \"{guest}\" oifname != \"{guest}\" jump egress\n\
         \x20       iifname != \"{guest}\" ct status dnat jump ingress\n    }}\n}}\n"
    )
}

/// `ethtool -K DEV tx off` inside `ns`, as the host does it for links on Open vSwitch.
fn no_tx_checksum_offload(ns: &str, device: &str) {
    let (path, device) = (format!("/run/netns/{ns}"), device.to_owned());
    std::thread::spawn(move || {
        let file = std::fs::File::open(path).unwrap();
        // SAFETY: a namespace descriptor; it changes this thread's network namespace only.
        assert_eq!(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        // SAFETY: socket(2) gives a new descriptor, owned here alone.
        let sock = unsafe { OwnedFd::from_raw_fd(libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0)) };
        let mut value = [0x17u32, 0];
        // SAFETY: ifreq is plain data; zeroes are a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(device.bytes()) {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = value.as_mut_ptr().cast();
        // SAFETY: SIOCETHTOOL reads the ifreq and the value it points to, both alive.
        assert_eq!(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) }, 0);
    })
    .join()
    .unwrap();
}

/// The bare commands building the same router.
fn native_build(b: &Bridges, ns: &str, guest: &str, public: &str, nft: &str, file: &str) -> Duration {
    std::fs::write(file, nft).unwrap();
    let net = format!("--net=/run/netns/{ns}");
    let tag = format!("tag={VLAN}");
    let start = Instant::now();
    must("ip", &["netns", "add", ns]);
    must("ip", &["-n", ns, "link", "set", "lo", "up"]);
    must(
        "ip",
        &["link", "add", guest, "type", "veth", "peer", "name", guest, "address", "02:00:00:98:00:01", "netns", ns],
    );
    must("ovs-vsctl", &["--timeout=5", "--may-exist", "add-port", &b.ovs, guest, "--", "set", "port", guest, &tag]);
    must("ip", &["link", "set", "dev", guest, "up"]);
    must("ip", &["-n", ns, "link", "set", "dev", guest, "up"]);
    no_tx_checksum_offload(ns, guest);
    must("ip", &["-n", ns, "addr", "add", "10.98.0.1/24", "dev", guest]);
    must(
        "ip",
        &["link", "add", public, "type", "veth", "peer", "name", public, "address", "02:00:00:98:00:02", "netns", ns],
    );
    must("ip", &["link", "set", "dev", public, "master", &b.linux]);
    must("ip", &["link", "set", "dev", public, "up"]);
    must("ip", &["-n", ns, "link", "set", "dev", public, "up"]);
    must("ip", &["-n", ns, "addr", "add", &format!("{PUBLIC}/24"), "dev", public]);
    must("ip", &["-n", ns, "route", "replace", "default", "via", "198.51.100.1"]);
    must("nsenter", &[&net, "--", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    must("nsenter", &[&net, "--", "nft", "-f", file]);
    start.elapsed()
}

fn native_update(ns: &str, nft: &str, file: &str) -> Duration {
    let net = format!("--net=/run/netns/{ns}");
    let start = Instant::now();
    std::fs::write(file, nft).unwrap();
    must("nsenter", &[&net, "--", "nft", "-f", file]);
    start.elapsed()
}

fn native_teardown(b: &Bridges, ns: &str, guest: &str) {
    quiet("ovs-vsctl", &["--timeout=5", "--if-exists", "del-port", &b.ovs, guest]);
    quiet("ip", &["netns", "del", ns]);
}

/// Runs `f` on a thread inside network namespace `ns`.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(path).unwrap();
        // SAFETY: a namespace descriptor; it changes this thread's network namespace only.
        assert_eq!(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        f()
    })
    .join()
    .unwrap()
}

/// A namespace joined to `bridge` by a veth pair (`device` at both ends), holding `cidr`
/// and a default route via `gateway` when given.
fn endpoint(ns: &str, device: &str, mac: &str, bridge: &str, ovs_tag: Option<u16>, cidr: &str, gateway: Option<&str>) {
    must("ip", &["netns", "add", ns]);
    must("ip", &["-n", ns, "link", "set", "lo", "up"]);
    must("ip", &["link", "add", device, "type", "veth", "peer", "name", device, "address", mac, "netns", ns]);
    match ovs_tag {
        Some(tag) => must(
            "ovs-vsctl",
            &["--timeout=5", "add-port", bridge, device, "--", "set", "port", device, &format!("tag={tag}")],
        ),
        None => must("ip", &["link", "set", "dev", device, "master", bridge]),
    }
    must("ip", &["link", "set", "dev", device, "up"]);
    must("ip", &["-n", ns, "link", "set", "dev", device, "up"]);
    // Checksums are left to the device on a veth; Open vSwitch's userspace datapath does
    // not fill them in.
    no_tx_checksum_offload(ns, device);
    must("ip", &["-n", ns, "addr", "add", cidr, "dev", device]);
    if let Some(gw) = gateway {
        must("ip", &["-n", ns, "route", "add", "default", "via", gw]);
    }
}

/// From inside the guest namespace, tries to connect to the internet server until it
/// answers; returns when it did.
fn wait_reachable(guest_ns: &str, server: SocketAddr) {
    in_netns(guest_ns, move || {
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&server, Duration::from_millis(100)).is_ok() {
                return;
            }
            assert!(Instant::now() < give_up, "the guest never reached {server}");
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

/// Median and 90th percentile, in ms.
fn stats(mut runs: Vec<Duration>) -> (f64, f64) {
    runs.sort();
    let at = |q: f64| runs[((runs.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.9))
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(wasm_dir().join("vlan.wasm"), plugins.path().join("vlan.wasm"))
        .expect("vlan.wasm; run scripts/build.sh");
    let mut config = HostConfig::new(plugins.path());
    config.grant("vlan", Grants::new(vec![], vec![], vec!["ws-".into()]).unwrap());
    let host = PluginHost::new(config).unwrap();
    host.scan();
    let vlan: NetworkDriver = host.network("vlan").expect("vlan loaded");

    let r = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let b = Bridges { ovs: format!("ws-ba{r}"), linux: format!("ws-bb{r}") };
    must("ovs-vsctl", &["--timeout=5", "add-br", &b.ovs, "--", "set", "bridge", &b.ovs, "datapath_type=netdev"]);
    must("ip", &["link", "add", &b.linux, "type", "bridge"]);
    must("ip", &["link", "set", &b.linux, "up"]);
    let (ns, guest, public) = (format!("ws-bn{r}"), format!("ws-bg{r}"), format!("ws-bp{r}"));
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("router.nft").to_string_lossy().into_owned();

    let net = NetworkSpec {
        id: uuid::Uuid::new_v4().to_string(),
        physical: b.ovs.clone(),
        vlan: Some(VLAN),
        isolation: "VLAN".into(),
        segment: Some(VLAN.into()),
        cidr: "10.98.0.0/24".into(),
        gateway: Some("10.98.0.1".into()),
        dns: vec![],
        dhcp_server: None,
    };
    vlan.implement("local", &net).expect("implement");

    // The internet: a server on the router's upstream gateway address, which checks that
    // connections come from the public IP (source NAT), and a guest on the network.
    let (inet_ns, inet_dev, guest_ns, guest_dev) =
        (format!("ws-bi{r}"), format!("ws-bw{r}"), format!("ws-bq{r}"), format!("ws-bv{r}"));
    let _ends = Namespaces(vec![inet_ns.clone(), guest_ns.clone()], b.ovs.clone(), guest_dev.clone());
    endpoint(&inet_ns, &inet_dev, "02:00:00:98:00:03", &b.linux, None, "198.51.100.1/24", None);
    endpoint(&guest_ns, &guest_dev, "02:00:00:98:00:0a", &b.ovs, Some(VLAN), "10.98.0.10/24", Some("10.98.0.1"));
    let server: SocketAddr = "198.51.100.1:8080".parse().unwrap();
    let listener = in_netns(&inet_ns, move || TcpListener::bind(server).expect("the internet server"));
    let wrong_source = Arc::new(AtomicBool::new(false));
    let seen = wrong_source.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            if conn.peer_addr().ok().map(|a| a.ip().to_string()).as_deref() != Some(PUBLIC) {
                seen.store(true, Ordering::Relaxed);
            }
        }
    });

    println!("router apply, {runs} runs each (ms: median / p90), vlan driver against the bare commands:");
    for n in [1u16, 100, 1000] {
        let (spec_a, spec_b) = (router(&b.linux, forwards(n, 10000)), router(&b.linux, forwards(n, 20000)));
        let (nft_a, nft_b) = (ruleset(&guest, n, 10000), ruleset(&guest, n, 20000));
        let (mut nb, mut hb, mut nu, mut hu) = (vec![], vec![], vec![], vec![]);
        for run in 0..runs + 1 {
            let t = native_build(&b, &ns, &guest, &public, &nft_a, &file);
            let u = native_update(&ns, &nft_b, &file);
            native_teardown(&b, &ns, &guest);

            let start = Instant::now();
            vlan.apply_router("local", &net, &spec_a).expect("apply-router (build)");
            let hosted_build = start.elapsed();
            let start = Instant::now();
            vlan.apply_router("local", &net, &spec_b).expect("apply-router (update)");
            let hosted_update = start.elapsed();
            vlan.destroy_router("local", &net).expect("destroy-router");
            // The first run warms caches on both sides.
            if run > 0 {
                nb.push(t);
                nu.push(u);
                hb.push(hosted_build);
                hu.push(hosted_update);
            }
        }
        for (what, native, hosted) in [("build", nb, hb), ("update", nu, hu)] {
            let ((nm, n9), (hm, h9)) = (stats(native), stats(hosted));
            println!(
                "  {n:>5} rules {what:<7} bare commands {nm:>8.2} / {n9:>8.2}   vlan driver {hm:>8.2} / {h9:>8.2}   \
                 ratio {:.2}x / {:.2}x",
                hm / nm,
                h9 / n9
            );
        }
    }
    let spec = router(&b.linux, forwards(1, 10000));
    let nft = ruleset(&guest, 1, 10000);
    let (mut native, mut hosted) = (vec![], vec![]);
    // The bare commands and the driver give the router different MACs: the guest forgets
    // its gateway's before each run (untimed), so both pay one ARP resolution.
    let forget = || must("ip", &["-n", &guest_ns, "neigh", "flush", "all"]);
    for run in 0..runs + 1 {
        forget();
        let start = Instant::now();
        native_build(&b, &ns, &guest, &public, &nft, &file);
        wait_reachable(&guest_ns, server);
        let t = start.elapsed();
        native_teardown(&b, &ns, &guest);

        forget();
        let start = Instant::now();
        vlan.apply_router("local", &net, &spec).expect("apply-router (ready)");
        wait_reachable(&guest_ns, server);
        let h = start.elapsed();
        vlan.destroy_router("local", &net).expect("destroy-router");
        if run > 0 {
            native.push(t);
            hosted.push(h);
        }
    }
    assert!(!wrong_source.load(Ordering::Relaxed), "a connection reached the internet without source NAT");
    let ((nm, n9), (hm, h9)) = (stats(native), stats(hosted));
    println!(
        "  router ready (guest reaches the internet) bare commands {nm:>8.2} / {n9:>8.2}   vlan driver {hm:>8.2} / {h9:>8.2}   \
         ratio {:.2}x / {:.2}x",
        hm / nm,
        h9 / n9
    );
    if let Err(e) = vlan.shutdown("local", &net) {
        eprintln!("shutting the network down: {e}");
    }
}
