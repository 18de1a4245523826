//! What a security group change costs through the flat driver and the host's port
//! filters, against bare `nft -f` of the same rules on this host, measured in the same run:
//! a rule change on 100 NICs in one call, and 1,000 rules on one NIC.
//!
//!   CARGO_TARGET_DIR=$HOME/.cache/wasmstack/target cargo bench -p wasmstack --bench security_apply
//!
//! Needs root, nftables, br_netfilter, and the components built (scripts/build.sh).
//! `BENCH_RUNS` sets the runs per measurement (10).
//!
//! A change has taken effect when its nft transaction is committed: the kernel filters
//! the next packet with it. So both sides are timed to that point: the driver from the
//! `apply-security` call to its answer (a fresh instance, the driver's conversion, the
//! host's checks and rendering, `nft -f`), the baseline for `nft -f` of the very text the
//! host renders for the same rules. Two rule sets alternate (every port moves): the
//! baseline always applies one and the driver the other, so every run is a real change. The devices need not exist; rules keyed by name
//! apply as they appear, as for a VM about to start. Runs of the driver and the baseline
//! alternate.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wasmstack::plugins::{
    Grants, HostConfig, IcmpMatch, NetworkDriver, NetworkSpec, NicSecurity, NicSpec, PluginHost, PortFilter, PortRange,
    PortRule, RuleIcmp, RulePorts, RuleProtocol, SecurityProtocol, SecurityRule, port_filters_nft,
};

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

/// The NICs' devices: their filters go however the bench ends.
struct Devices<'a>(&'a NetworkDriver, &'a NetworkSpec, Vec<NicSecurity>);

impl Drop for Devices<'_> {
    fn drop(&mut self) {
        for n in &self.2 {
            let _ = self.0.remove_security("local", self.1, &n.nic, &n.device);
        }
    }
}

/// `count` NICs named `ws-sb{r}{i}`, each admitting tcp to `port + i % 50` and ICMP echo from a
/// /24, and sending only udp/53 and tcp/443 anywhere, plus `extra` more ingress rules each
/// (one port and one /32 per rule).
fn nics(r: &str, count: usize, port: u16, extra: usize) -> Vec<NicSecurity> {
    let tcp = |p: u16, cidr: String| SecurityRule {
        protocol: SecurityProtocol::Tcp,
        ports: Some(PortRange { start: p, end: p }),
        icmp: None,
        cidrs: vec![cidr],
    };
    (0..count)
        .map(|i| {
            let mut ingress = vec![
                tcp(port + (i % 50) as u16, "10.90.0.0/16".into()),
                SecurityRule {
                    protocol: SecurityProtocol::Icmp,
                    ports: None,
                    icmp: Some(IcmpMatch { kind: Some(8), code: None }),
                    cidrs: vec!["10.90.0.0/16".into()],
                },
            ];
            ingress.extend(
                (0..extra).map(|k| tcp(port + 100 + k as u16, format!("10.91.{}.{}/32", k / 250, k % 250 + 1))),
            );
            let egress = vec![
                SecurityRule {
                    protocol: SecurityProtocol::Udp,
                    ports: Some(PortRange { start: 53, end: 53 }),
                    icmp: None,
                    cidrs: vec!["0.0.0.0/0".into()],
                },
                tcp(443, "0.0.0.0/0".into()),
            ];
            NicSecurity {
                nic: NicSpec {
                    id: uuid::Uuid::new_v4().to_string(),
                    mac: format!("52:54:00:5b:{:02x}:{:02x}", i / 256, i % 256),
                    ip: Some(format!("10.90.{}.{}", i / 250, i % 250 + 1)),
                    hostname: None,
                },
                device: format!("ws-sb{r}{i}"),
                ingress,
                egress,
            }
        })
        .collect()
}

/// The host's port filters for these NICs, as the flat driver passes them.
fn filters(nics: &[NicSecurity]) -> Vec<PortFilter> {
    let rule = |r: &SecurityRule| PortRule {
        protocol: match r.protocol {
            SecurityProtocol::Tcp => RuleProtocol::Tcp,
            SecurityProtocol::Udp => RuleProtocol::Udp,
            SecurityProtocol::Icmp => RuleProtocol::Icmp,
            SecurityProtocol::All => RuleProtocol::All,
            SecurityProtocol::Number(n) => RuleProtocol::Number(n),
        },
        ports: r.ports.as_ref().map(|p| RulePorts { start: p.start, end: p.end }),
        icmp: r.icmp.as_ref().map(|m| RuleIcmp { kind: m.kind, code: m.code }),
        cidrs: r.cidrs.clone(),
    };
    nics.iter()
        .map(|n| PortFilter {
            device: n.device.clone(),
            mac: n.nic.mac.clone(),
            addresses: n.nic.ip.iter().cloned().collect(),
            ingress: n.ingress.iter().map(rule).collect(),
            egress: n.egress.iter().map(rule).collect(),
        })
        .collect()
}

fn nft(file: &str) -> Duration {
    let start = Instant::now();
    must("nft", &["-f", file]);
    start.elapsed()
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
    std::fs::copy(wasm_dir().join("flat.wasm"), plugins.path().join("flat.wasm"))
        .expect("flat.wasm; run scripts/build.sh");
    let mut config = HostConfig::new(plugins.path());
    config.grant("flat", Grants::new(vec![], vec![], vec!["ws-".into()]).unwrap());
    let host = PluginHost::new(config).unwrap();
    host.scan();
    let flat: NetworkDriver = host.network("flat").expect("flat loaded");
    let r = &uuid::Uuid::new_v4().simple().to_string()[..4];
    let net = NetworkSpec {
        id: uuid::Uuid::new_v4().to_string(),
        physical: format!("ws-sb{r}"),
        vlan: None,
        isolation: "Flat".into(),
        segment: None,
        cidr: "10.90.0.0/16".into(),
        gateway: None,
        dns: vec![],
        dhcp_server: None,
    };
    let scratch = tempfile::tempdir().unwrap();
    let file = |n: &str| scratch.path().join(n).to_string_lossy().into_owned();

    println!("security group apply, {runs} runs each (ms: median / p90), flat driver against bare nft -f:");
    for (what, count, extra) in [("100 NICs, 4 rules each", 100, 0), ("1 NIC, 1,004 rules", 1, 1000)] {
        let (a, b) = (nics(r, count, 2000, extra), nics(r, count, 3000, extra));
        let _cleanup = Devices(&flat, &net, a.clone());
        let fb = file("b.nft");
        std::fs::write(&fb, port_filters_nft(&filters(&b)).unwrap()).unwrap();
        let (mut native, mut hosted) = (vec![], vec![]);
        for run in 0..runs + 1 {
            let n = nft(&fb);
            let start = Instant::now();
            flat.apply_security("local", &net, &a).expect("apply-security");
            let h = start.elapsed();
            // The first run warms caches on both sides.
            if run > 0 {
                native.push(n);
                hosted.push(h);
            }
        }
        let ((nm, n9), (hm, h9)) = (stats(native), stats(hosted));
        println!(
            "  {what:<24} bare nft -f {nm:>8.2} / {n9:>8.2}   flat driver {hm:>8.2} / {h9:>8.2}   ratio {:.2}x / {:.2}x",
            hm / nm,
            h9 / n9
        );
    }
}
