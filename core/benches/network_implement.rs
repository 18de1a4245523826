//! What building a VLAN network with DHCP costs through the vlan driver, against the bare
//! commands that build the same on this host, measured in the same run.
//!
//!   CARGO_TARGET_DIR=$HOME/.cache/wasmstack/target cargo bench -p wasmstack --bench network_implement
//!
//! Needs root, Open vSwitch running (scripts/setup.sh) and the components built
//! (scripts/build.sh). `BENCH_RUNS` sets the runs per measurement (20).
//!
//! One run: `implement` (bridge ensured, DHCP service started in a namespace of the
//! network's: the namespace, a veth link from it to an OVS port with the VLAN tag, its
//! address, udhcpd inside) then `prepare-nic` (bridge ensured, one lease added: udhcpd
//! restarted, as it has no reload), each call in a fresh store and instance as the server
//! makes them. The baseline runs the same `ovs-vsctl`, `ip`, `nsenter` and `busybox udhcpd`
//! commands from the bench itself. Teardown is not timed. Runs of both alternate.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wasmstack::plugins::{Grants, HostConfig, NetworkDriver, NetworkSpec, NicSpec, PluginHost};

const VLAN: u16 = 3999;

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

fn pid_in(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn wait_for_pid(file: &Path) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(pid) = pid_in(file) {
            return pid;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "udhcpd wrote no pid file");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn kill_and_wait(pid: i32) {
    // SAFETY: kill(2) on a pid this bench started; no memory is involved.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    // Exited, as a zombie counts: udhcpd detached itself, so init reaps it, maybe late.
    while std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
    {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The bridge and the baseline's service, removed however the bench ends.
struct Plumbing {
    bridge: String,
    service: String,
    pid_file: PathBuf,
}

impl Drop for Plumbing {
    fn drop(&mut self) {
        if let Some(pid) = pid_in(&self.pid_file) {
            // SAFETY: kill takes plain integers and touches no memory of ours.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = Command::new("ovs-vsctl").args(["--timeout=5", "--if-exists", "del-br", &self.bridge]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.service]).output();
    }
}

/// Shuts the driver's network down however the bench ends.
struct Implemented<'a>(&'a NetworkDriver, NetworkSpec);

impl Drop for Implemented<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.shutdown("local", &self.1) {
            eprintln!("shutting the network down: {e}");
        }
    }
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

/// The bare commands: what `implement` then `prepare-nic` do, without the plugin host.
/// The namespace is named like the service.
fn native(bridge: &str, service: &str, dir: &Path, nic: &NicSpec) -> (Duration, Duration) {
    let conf = dir.join("udhcpd.conf");
    let pid_file = dir.join("udhcpd.pid");
    let base = format!(
        "interface {service}\nstart 10.99.0.2\nend 10.99.0.2\nmax_leases 1\nopt subnet 255.255.255.0\n\
         opt router 10.99.0.1\nopt dns 10.99.0.1\nlease_file {}\npidfile {}\n",
        dir.join("leases").display(),
        pid_file.display()
    );
    let conf_arg = conf.to_string_lossy().into_owned();
    let tag = format!("tag={VLAN}");
    let net = format!("--net=/run/netns/{service}");

    let start = Instant::now();
    must(
        "ovs-vsctl",
        &["--timeout=5", "--may-exist", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev"],
    );
    must("ip", &["link", "set", "dev", bridge, "up"]);
    must("ip", &["netns", "add", service]);
    must("ip", &["-n", service, "link", "set", "lo", "up"]);
    must("ip", &["link", "add", service, "type", "veth", "peer", "name", service, "netns", service]);
    must("ovs-vsctl", &["--timeout=5", "--may-exist", "add-port", bridge, service, "--", "set", "port", service, &tag]);
    must("ip", &["link", "set", "dev", service, "up"]);
    must("ip", &["-n", service, "link", "set", "dev", service, "up"]);
    no_tx_checksum_offload(service, service);
    std::fs::write(&conf, &base).unwrap();
    std::fs::write(dir.join("leases"), b"").unwrap();
    must("ip", &["-n", service, "addr", "replace", "10.99.0.2/24", "dev", service]);
    must("nsenter", &[&net, "--", "busybox", "udhcpd", &conf_arg]);
    let pid = wait_for_pid(&pid_file);
    let implemented = start.elapsed();

    let start = Instant::now();
    must("ovs-vsctl", &["--timeout=5", "--may-exist", "add-br", bridge]);
    must("ip", &["link", "set", "dev", bridge, "up"]);
    std::fs::write(&conf, format!("{base}static_lease {} {}\n", nic.mac, nic.ip.as_deref().unwrap())).unwrap();
    kill_and_wait(pid);
    let _ = std::fs::remove_file(&pid_file);
    must("nsenter", &[&net, "--", "busybox", "udhcpd", &conf_arg]);
    let pid = wait_for_pid(&pid_file);
    let prepared = start.elapsed();

    kill_and_wait(pid);
    let _ = std::fs::remove_file(&pid_file);
    must("ovs-vsctl", &["--timeout=5", "--if-exists", "del-port", bridge, service]);
    must("ip", &["netns", "del", service]);
    (implemented, prepared)
}

/// The same through the vlan driver.
fn hosted(vlan: &NetworkDriver, net: &NetworkSpec, nic: &NicSpec) -> (Duration, Duration) {
    let start = Instant::now();
    let guard = Implemented(vlan, net.clone());
    vlan.implement("local", net).expect("implement");
    let implemented = start.elapsed();
    let start = Instant::now();
    vlan.prepare_nic("local", net, nic).expect("prepare-nic");
    let prepared = start.elapsed();
    drop(guard);
    (implemented, prepared)
}

/// Median and 90th percentile.
fn stats(mut runs: Vec<Duration>) -> (f64, f64) {
    runs.sort();
    let at = |q: f64| runs[((runs.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.9))
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(wasm_dir().join("vlan.wasm"), plugins.path().join("vlan.wasm"))
        .expect("vlan.wasm; run scripts/build.sh");
    let mut config = HostConfig::new(plugins.path());
    config.grant("vlan", Grants::new(vec![], vec![], vec!["ws-".into()]).unwrap());
    let host = PluginHost::new(config).unwrap();
    host.scan();
    let vlan = host.network("vlan").expect("vlan loaded");

    let r = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let bridge = format!("ws-bn{r}");
    let service = format!("ws-bs{r}");
    let state = tempfile::tempdir().unwrap();
    let _plumbing =
        Plumbing { bridge: bridge.clone(), service: service.clone(), pid_file: state.path().join("udhcpd.pid") };
    // The bridge is shared by every network on the physical label: it exists already.
    must("ovs-vsctl", &["--timeout=5", "add-br", &bridge, "--", "set", "bridge", &bridge, "datapath_type=netdev"]);

    let nic = NicSpec {
        id: uuid::Uuid::new_v4().to_string(),
        mac: "52:54:00:5e:99:0a".into(),
        ip: Some("10.99.0.10".into()),
        hostname: Some("bench".into()),
    };
    let spec = || NetworkSpec {
        id: uuid::Uuid::new_v4().to_string(),
        physical: bridge.clone(),
        vlan: Some(VLAN),
        isolation: "VLAN".into(),
        segment: Some(VLAN.into()),
        cidr: "10.99.0.0/24".into(),
        gateway: Some("10.99.0.1".into()),
        dns: vec!["10.99.0.1".into()],
        dhcp_server: Some("10.99.0.2/24".into()),
    };

    for _ in 0..2 {
        native(&bridge, &service, state.path(), &nic);
        hosted(&vlan, &spec(), &nic);
    }
    let (mut n_impl, mut n_prep, mut h_impl, mut h_prep) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let (i, p) = native(&bridge, &service, state.path(), &nic);
        n_impl.push(i);
        n_prep.push(p);
        let (i, p) = hosted(&vlan, &spec(), &nic);
        h_impl.push(i);
        h_prep.push(p);
    }
    let total = |a: &[Duration], b: &[Duration]| a.iter().zip(b).map(|(x, y)| *x + *y).collect::<Vec<_>>();
    let (n_total, h_total) = (total(&n_impl, &n_prep), total(&h_impl, &h_prep));

    println!("VLAN network with DHCP on an OVS userspace bridge, {runs} runs (ms: median / p90):");
    for (what, n, h) in [("implement", n_impl, h_impl), ("prepare-nic", n_prep, h_prep), ("both", n_total, h_total)] {
        let ((nm, n9), (hm, h9)) = (stats(n), stats(h));
        println!(
            "  {what:<12} bare commands {nm:>7.2} / {n9:>7.2}   vlan driver {hm:>7.2} / {h9:>7.2}   \
             ratio {:.2}x / {:.2}x",
            hm / nm,
            h9 / n9
        );
    }
}
