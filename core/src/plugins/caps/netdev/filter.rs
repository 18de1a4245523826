//! Port filters: security group rules on the ports of Linux bridges in the host's
//! namespace, written here as nftables rules from typed fields (a driver never passes
//! rule text) and applied in one transaction.
//!
//! Two tables work together, because this kernel's bridge family has no connection
//! tracking (no nf_conntrack_bridge) while br_netfilter hands bridged IPv4 to the
//! `inet` hooks, where conntrack works but the bridge ports are no longer known:
//!
//! - `bridge wasmstack_ports` sees each frame with its in and out port. Per filtered
//!   port it has an egress chain (`e-DEV`: anti-spoofing, then the egress rules) and an
//!   ingress chain (`i-DEV`: DHCP answers for its MAC only, then the ingress rules),
//!   reached through verdict maps keyed by port name. They only mark the packet: bit
//!   `OURS` when a filtered port is an end, `EGRESS_OK` and `INGRESS_OK` when the
//!   sending and receiving ports' rules allow it (an unfiltered port allows all).
//! - `inet wasmstack_ports`, on the forward hook br_netfilter runs for bridged IPv4,
//!   lets marked packets through when they belong to a connection already allowed
//!   (`ct state established,related`) or when both bits allow them; the rest is dropped.
//!
//! Traffic between a filtered port and the host itself stays in the bridge table: DHCP
//! requests and ARP in, ARP and DHCP answers out, nothing else (the host's address on a
//! guest bridge is its DHCP service). Other ports, bridges and hosts' traffic is never
//! marked, so these rules leave it alone. Mark bits 16-18 are taken.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::plugins::bindings::netdev::{PortFilter, PortRule, RuleProtocol};

/// Both tables' name.
pub(super) const TABLE: &str = "wasmstack_ports";
/// Where each transaction is written for `nft -f` (and removed after).
const FILTER_DIR: &str = "/run/wasmstack/nft";
/// Filters in one call.
pub(super) const MAX_FILTERS: usize = 4096;
/// Rules in one call, all filters together.
const MAX_RULES: usize = 65536;
/// Addresses in one call, all rules together.
const MAX_CIDRS: usize = 1 << 20;

const OURS: u32 = 0x0001_0000;
const EGRESS_OK: u32 = 0x0002_0000;
const INGRESS_OK: u32 = 0x0004_0000;
const ALL_BITS: u32 = OURS | EGRESS_OK | INGRESS_OK;

/// br_netfilter's switch for bridged IPv4; missing when the kernel has no br_netfilter.
const BR_NF_CALL_IPTABLES: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";

/// A rule after its fields were checked.
#[derive(Debug, Clone)]
struct Rule {
    protocol: RuleProtocol,
    ports: Option<(u16, u16)>,
    icmp: Option<(Option<u8>, Option<u8>)>,
    /// None: every address (a /0 was among them).
    cidrs: Option<Vec<(Ipv4Addr, u8)>>,
}

/// A filter after its fields were checked.
#[derive(Debug)]
struct Filter {
    device: String,
    mac: [u8; 6],
    addresses: Vec<Ipv4Addr>,
    ingress: Vec<Rule>,
    egress: Vec<Rule>,
}

fn cidr(text: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad = || format!("\"{text}\" is not an IPv4 CIDR");
    let (addr, prefix) = text.split_once('/').unwrap_or((text, "32"));
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(bad)?;
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    Ok((Ipv4Addr::from(u32::from(addr) & mask), prefix))
}

/// The CIDRs without those inside another: nft refuses overlapping intervals in one set.
fn disjoint(mut cidrs: Vec<(Ipv4Addr, u8)>) -> Option<Vec<(Ipv4Addr, u8)>> {
    cidrs.sort_by_key(|&(a, p)| (p, a));
    cidrs.dedup();
    let mut kept: Vec<(Ipv4Addr, u8)> = Vec::with_capacity(cidrs.len());
    for (a, p) in cidrs {
        if p == 0 {
            return None;
        }
        let inside = kept.iter().any(|&(k, q)| {
            let mask = u32::MAX << (32 - q);
            u32::from(a) & mask == u32::from(k)
        });
        if !inside {
            kept.push((a, p));
        }
    }
    kept.sort();
    Some(kept)
}

fn rule(r: &PortRule) -> Result<Rule, String> {
    let ported = matches!(r.protocol, RuleProtocol::Tcp | RuleProtocol::Udp);
    let ports = match &r.ports {
        Some(_) if !ported => return Err(format!("a {} rule has no ports", protocol_name(r.protocol))),
        Some(p) if p.start == 0 || p.start > p.end => {
            return Err(format!("ports {}-{} are not a range within 1-65535", p.start, p.end));
        }
        Some(p) => Some((p.start, p.end)),
        None => None,
    };
    let icmp = match &r.icmp {
        Some(_) if !matches!(r.protocol, RuleProtocol::Icmp) => {
            return Err(format!("a {} rule has no ICMP type", protocol_name(r.protocol)));
        }
        Some(m) if m.kind.is_none() && m.code.is_some() => return Err("an ICMP code needs a type".into()),
        Some(m) => Some((m.kind, m.code)),
        None => None,
    };
    let cidrs = r.cidrs.iter().map(|c| cidr(c)).collect::<Result<Vec<_>, _>>()?;
    Ok(Rule { protocol: r.protocol, ports, icmp, cidrs: disjoint(cidrs) })
}

fn protocol_name(p: RuleProtocol) -> String {
    match p {
        RuleProtocol::Tcp => "tcp".into(),
        RuleProtocol::Udp => "udp".into(),
        RuleProtocol::Icmp => "icmp".into(),
        RuleProtocol::All => "all".into(),
        RuleProtocol::Number(n) => format!("protocol {n}"),
    }
}

/// Checks every field of every filter (names were checked against the grant already).
fn check(filters: &[PortFilter]) -> Result<Vec<Filter>, String> {
    if filters.len() > MAX_FILTERS {
        return Err(format!("{} filters, at most {MAX_FILTERS}", filters.len()));
    }
    let rules: usize = filters.iter().map(|f| f.ingress.len() + f.egress.len()).sum();
    if rules > MAX_RULES {
        return Err(format!("{rules} rules, at most {MAX_RULES}"));
    }
    let cidrs: usize = filters.iter().flat_map(|f| f.ingress.iter().chain(&f.egress)).map(|r| r.cidrs.len()).sum();
    if cidrs > MAX_CIDRS {
        return Err(format!("{cidrs} addresses in rules, at most {MAX_CIDRS}"));
    }
    let mut seen = BTreeMap::new();
    filters
        .iter()
        .map(|f| {
            if seen.insert(f.device.as_str(), ()).is_some() {
                return Err(format!("{} has two filters", f.device));
            }
            let mac = parse_mac(&f.mac).ok_or_else(|| format!("\"{}\" is not a MAC address", f.mac))?;
            if mac[0] & 1 == 1 {
                return Err(format!("{} is a multicast MAC address", f.mac));
            }
            let addresses = f
                .addresses
                .iter()
                .map(|a| a.parse::<Ipv4Addr>().map_err(|_| format!("\"{a}\" is not an IPv4 address")))
                .collect::<Result<Vec<_>, _>>()?;
            let rules = |list: &[PortRule]| list.iter().map(rule).collect::<Result<Vec<_>, _>>();
            let (ingress, egress) = (rules(&f.ingress)?, rules(&f.egress)?);
            Ok(Filter { device: f.device.clone(), mac, addresses, ingress, egress })
        })
        .collect()
}

fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn set<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    format!("{{ {} }}", items.join(", "))
}

/// The tables, maps and base chains, made if missing and their base rules written
/// again (the same each time), so every transaction leaves them whole.
fn base() -> String {
    let keep = !ALL_BITS;
    format!(
        "add table bridge {TABLE}
add set bridge {TABLE} ports {{ type ifname; }}
add map bridge {TABLE} egress {{ type ifname : verdict; }}
add map bridge {TABLE} ingress {{ type ifname : verdict; }}
add chain bridge {TABLE} forward {{ type filter hook forward priority -200; policy accept; }}
add chain bridge {TABLE} input {{ type filter hook input priority -200; policy accept; }}
add chain bridge {TABLE} output {{ type filter hook output priority -200; policy accept; }}
flush chain bridge {TABLE} forward
flush chain bridge {TABLE} input
flush chain bridge {TABLE} output
add rule bridge {TABLE} forward meta mark set meta mark & {keep:#010x} | {ok:#010x}
add rule bridge {TABLE} forward iifname vmap @egress
add rule bridge {TABLE} forward oifname vmap @ingress
add rule bridge {TABLE} input iifname vmap @egress
add rule bridge {TABLE} input iifname @ports ether type arp accept
add rule bridge {TABLE} input iifname @ports udp sport 68 udp dport 67 accept
add rule bridge {TABLE} input iifname @ports drop
add rule bridge {TABLE} output oifname vmap @ingress
add rule bridge {TABLE} output oifname @ports ether type arp accept
add rule bridge {TABLE} output oifname @ports udp sport 67 udp dport 68 accept
add rule bridge {TABLE} output oifname @ports drop
add table inet {TABLE}
add chain inet {TABLE} forward {{ type filter hook forward priority -10; policy accept; }}
flush chain inet {TABLE} forward
add rule inet {TABLE} forward meta mark & {OURS:#010x} == 0 return
add rule inet {TABLE} forward ct state established,related accept
add rule inet {TABLE} forward meta mark & {both:#010x} == {both:#010x} accept
add rule inet {TABLE} forward drop
",
        ok = EGRESS_OK | INGRESS_OK,
        both = EGRESS_OK | INGRESS_OK,
    )
}

/// What a rule matches, in nft words, with `field` the other end's address (`ip saddr`
/// for ingress, `ip daddr` for egress); None when it matches nothing.
fn matches(r: &Rule, field: &str) -> Option<String> {
    let mut m = String::from("ether type ip ");
    match &r.cidrs {
        Some(list) if list.is_empty() => return None,
        Some(list) => {
            let _ = write!(m, "{field} {} ", set(list.iter().map(|(a, p)| format!("{a}/{p}"))));
        }
        None => {}
    }
    let ports = |proto: &str, m: &mut String| match r.ports {
        Some((a, b)) if a == b => {
            let _ = write!(m, "{proto} dport {a} ");
        }
        Some((a, b)) => {
            let _ = write!(m, "{proto} dport {a}-{b} ");
        }
        None => {
            let _ = write!(m, "ip protocol {proto} ");
        }
    };
    match r.protocol {
        RuleProtocol::Tcp => ports("tcp", &mut m),
        RuleProtocol::Udp => ports("udp", &mut m),
        RuleProtocol::Icmp => match r.icmp {
            Some((Some(kind), code)) => {
                let _ = write!(m, "icmp type {kind} ");
                if let Some(code) = code {
                    let _ = write!(m, "icmp code {code} ");
                }
            }
            _ => m.push_str("ip protocol icmp "),
        },
        RuleProtocol::All => {}
        RuleProtocol::Number(n) => {
            let _ = write!(m, "ip protocol {n} ");
        }
    }
    Some(m)
}

fn chain(direction: char, device: &str) -> String {
    format!("{direction}-{device}")
}

/// The rules of one filter's two chains and its map entries.
fn render(f: &Filter, out: &mut String) {
    let (e, i, dev) = (chain('e', &f.device), chain('i', &f.device), &f.device);
    let mac = mac_text(&f.mac);
    let mark = |bit: u32| format!("meta mark set meta mark | {bit:#010x}");
    let add = |out: &mut String, chain: &str, rule: &str| {
        let _ = writeln!(out, "add rule bridge {TABLE} {chain} {rule}");
    };
    for c in [&e, &i] {
        let _ = writeln!(out, "add chain bridge {TABLE} {c}\nflush chain bridge {TABLE} {c}");
    }
    // Egress: what the port sends. Anti-spoofing first, then DHCP, then the rules.
    add(out, &e, &format!("meta mark set meta mark & {:#010x} | {OURS:#010x}", !EGRESS_OK));
    add(out, &e, &format!("ether saddr != {mac} drop"));
    add(out, &e, &format!("ether type arp arp saddr ether != {mac} drop"));
    let arp_from = set(std::iter::once(Ipv4Addr::UNSPECIFIED).chain(f.addresses.iter().copied()));
    add(out, &e, &format!("ether type arp arp saddr ip != {arp_from} drop"));
    add(out, &e, &format!("ether type arp {} return", mark(EGRESS_OK)));
    add(out, &e, "ether type != ip drop");
    // No DHCP service of its own: other NICs' answers come from the network's only.
    add(out, &e, "udp sport 67 drop");
    add(out, &e, &format!("ip saddr 0.0.0.0 udp sport 68 udp dport 67 {} return", mark(EGRESS_OK)));
    if f.addresses.is_empty() {
        add(out, &e, "drop");
    } else {
        add(out, &e, &format!("ip saddr != {} drop", set(&f.addresses)));
    }
    add(out, &e, &format!("udp sport 68 udp dport 67 {} return", mark(EGRESS_OK)));
    if f.egress.is_empty() {
        add(out, &e, &mark(EGRESS_OK));
    }
    for r in &f.egress {
        if let Some(m) = matches(r, "ip daddr") {
            add(out, &e, &format!("{m}{} return", mark(EGRESS_OK)));
        }
    }
    // Ingress: what reaches the port.
    add(out, &i, &format!("meta mark set meta mark & {:#010x} | {OURS:#010x}", !INGRESS_OK));
    add(out, &i, &format!("ether type arp {} return", mark(INGRESS_OK)));
    add(out, &i, "ether type != ip drop");
    // A DHCP answer carries the client's MAC at byte 28 of the DHCP message (chaddr),
    // which follows the 8-byte UDP header: bits 288-335 from the transport header.
    let chaddr = mac.replace(':', "");
    add(out, &i, &format!("udp sport 67 udp dport 68 @th,288,48 != 0x{chaddr} drop"));
    add(out, &i, &format!("udp sport 67 udp dport 68 {} return", mark(INGRESS_OK)));
    for r in &f.ingress {
        if let Some(m) = matches(r, "ip saddr") {
            add(out, &i, &format!("{m}{} return", mark(INGRESS_OK)));
        }
    }
    let _ = writeln!(out, "add element bridge {TABLE} ports {{ \"{dev}\" }}");
    let _ = writeln!(out, "add element bridge {TABLE} egress {{ \"{dev}\" : jump {e} }}");
    let _ = writeln!(out, "add element bridge {TABLE} ingress {{ \"{dev}\" : jump {i} }}");
}

/// The nft text that makes `filters` the rules of their ports, whole.
fn apply_text(filters: &[Filter]) -> String {
    let mut out = base();
    for f in filters {
        render(f, &mut out);
    }
    out
}

/// The nft text that removes the filters of `devices`. nft 1.0 has no "delete if
/// there", so each element and chain is added first: then deleting it always succeeds.
fn remove_text(devices: &[String]) -> String {
    let mut out = base();
    for dev in devices {
        let (e, i) = (chain('e', dev), chain('i', dev));
        let _ = write!(
            out,
            "add chain bridge {TABLE} {e}
add chain bridge {TABLE} {i}
add element bridge {TABLE} ports {{ \"{dev}\" }}
add element bridge {TABLE} egress {{ \"{dev}\" : jump {e} }}
add element bridge {TABLE} ingress {{ \"{dev}\" : jump {i} }}
delete element bridge {TABLE} ports {{ \"{dev}\" }}
delete element bridge {TABLE} egress {{ \"{dev}\" }}
delete element bridge {TABLE} ingress {{ \"{dev}\" }}
flush chain bridge {TABLE} {e}
delete chain bridge {TABLE} {e}
flush chain bridge {TABLE} {i}
delete chain bridge {TABLE} {i}
"
        );
    }
    out
}

/// Makes sure bridged IPv4 reaches the `inet` hooks: br_netfilter must be there, and
/// when it is off for all bridges, it is turned on for the bridges these ports are on.
fn need_br_netfilter(op: &Op, devices: &[&str]) -> NetResult<()> {
    let on = match std::fs::read_to_string(BR_NF_CALL_IPTABLES) {
        Ok(v) => v.trim() == "1",
        Err(_) => {
            return Err(DriverError::Unavailable(
                "this kernel has no br_netfilter (modprobe br_netfilter): port filters need it".into(),
            )
            .into());
        }
    };
    if on {
        return Ok(());
    }
    for dev in devices {
        let master = std::fs::read_link(Path::new("/sys/class/net").join(dev).join("master")).ok();
        if let Some(bridge) = master.as_deref().and_then(Path::file_name).and_then(|b| b.to_str())
            && is_linux_bridge(bridge)
        {
            op.must("ip", &["link", "set", "dev", bridge, "type", "bridge", "nf_call_iptables", "1"])?;
        }
    }
    Ok(())
}

/// Runs one nft transaction from `text`.
fn run_nft(op: &Op, text: &str) -> NetResult<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let io = |e: std::io::Error| DriverError::Failed(format!("nft state folder {FILTER_DIR}: {e}"));
    std::fs::create_dir_all(FILTER_DIR).map_err(io)?;
    let file =
        Path::new(FILTER_DIR).join(format!("ports-{}-{}.nft", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&file, text).map_err(io)?;
    let result = op.must("nft", &["-f", &file.to_string_lossy()]);
    let _ = std::fs::remove_file(&file);
    result.map(drop)
}

/// The nftables text `apply-port-filters` runs for `filters` (one transaction), or why
/// they are refused: for measuring the host's work against bare `nft -f` of the same text.
pub fn port_filters_nft(filters: &[PortFilter]) -> Result<String, String> {
    Ok(apply_text(&check(filters)?))
}

pub(super) fn apply_port_filters(op: &Op, filters: &[PortFilter]) -> NetResult<()> {
    let checked = check(filters).map_err(invalid)?;
    need_br_netfilter(op, &checked.iter().map(|f| f.device.as_str()).collect::<Vec<_>>())?;
    run_nft(op, &apply_text(&checked))
}

pub(super) fn remove_port_filters(op: &Op, devices: &[String]) -> NetResult<()> {
    if devices.len() > MAX_FILTERS {
        return Err(invalid(format!("{} devices, at most {MAX_FILTERS}", devices.len())));
    }
    if devices.is_empty() {
        return Ok(());
    }
    run_nft(op, &remove_text(devices))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::bindings::netdev::{RuleIcmp, RulePorts};

    fn tcp(ports: Option<(u16, u16)>, cidrs: &[&str]) -> PortRule {
        PortRule {
            protocol: RuleProtocol::Tcp,
            ports: ports.map(|(start, end)| RulePorts { start, end }),
            icmp: None,
            cidrs: cidrs.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn filter(ingress: Vec<PortRule>) -> PortFilter {
        PortFilter {
            device: "ws-t1".into(),
            mac: "52:54:00:00:00:01".into(),
            addresses: vec!["10.1.1.10".into()],
            ingress,
            egress: vec![],
        }
    }

    #[test]
    fn cidrs_are_normalised_and_nested_ones_dropped() {
        let got = disjoint(vec![cidr("10.1.2.3/16").unwrap(), cidr("10.1.9.9").unwrap(), cidr("10.2.0.0/16").unwrap()]);
        assert_eq!(got, Some(vec![("10.1.0.0".parse().unwrap(), 16), ("10.2.0.0".parse().unwrap(), 16)]));
        assert_eq!(disjoint(vec![cidr("10.0.0.0/8").unwrap(), cidr("0.0.0.0/0").unwrap()]), None);
        assert_eq!(disjoint(vec![]), Some(vec![]));
        for bad in ["10.1.1.0/33", "10.1.1/24", "::/0", "10.1.1.0/", "x"] {
            assert!(cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        let refused = |r: PortRule, why: &str| {
            let err = check(&[filter(vec![r])]).unwrap_err();
            assert!(err.contains(why), "{err}");
        };
        refused(tcp(Some((30, 20)), &["10.0.0.0/8"]), "not a range");
        refused(tcp(Some((0, 20)), &["10.0.0.0/8"]), "not a range");
        refused(tcp(None, &["10.0.0.0/33"]), "not an IPv4 CIDR");
        let icmp_ports = PortRule { protocol: RuleProtocol::Icmp, ..tcp(Some((1, 2)), &[]) };
        refused(icmp_ports, "has no ports");
        let code_only = PortRule {
            protocol: RuleProtocol::Icmp,
            icmp: Some(RuleIcmp { kind: None, code: Some(0) }),
            ..tcp(None, &[])
        };
        refused(code_only, "needs a type");
        let mut f = filter(vec![]);
        f.mac = "01:00:5e:00:00:01".into();
        assert!(check(&[f]).unwrap_err().contains("multicast"));
        let mut f = filter(vec![]);
        f.addresses = vec!["10.1.1".into()];
        assert!(check(&[f]).is_err());
        assert!(check(&[filter(vec![]), filter(vec![])]).unwrap_err().contains("two filters"));
    }

    #[test]
    fn rules_become_nft_matches_from_their_fields_only() {
        let f = check(&[filter(vec![tcp(Some((22, 22)), &["10.1.1.0/24"]), tcp(Some((80, 90)), &[])])]).unwrap();
        let text = apply_text(&f);
        assert!(
            text.contains("add rule bridge wasmstack_ports i-ws-t1 ether type ip ip saddr { 10.1.1.0/24 } tcp dport 22 meta mark set meta mark | 0x00040000 return"),
            "{text}"
        );
        // A rule matching no address (a group without members) is left out.
        assert!(!text.contains("dport 80-90"), "{text}");
        assert!(text.contains("ether saddr != 52:54:00:00:00:01 drop"));
        assert!(text.contains("@th,288,48 != 0x525400000001 drop"));
        assert!(text.contains("ip saddr != { 10.1.1.10 } drop"));
        let icmp = Rule { protocol: RuleProtocol::Icmp, ports: None, icmp: Some((Some(8), Some(0))), cidrs: None };
        assert_eq!(matches(&icmp, "ip saddr").unwrap(), "ether type ip icmp type 8 icmp code 0 ");
        let gre = Rule { protocol: RuleProtocol::Number(47), ports: None, icmp: None, cidrs: None };
        assert_eq!(matches(&gre, "ip daddr").unwrap(), "ether type ip ip protocol 47 ");
    }

    fn state() -> crate::plugins::state::CallState {
        let grants = crate::plugins::grants::Grants::new(vec![], vec![], vec!["ws-".into()]).unwrap();
        crate::plugins::state::CallState::new(
            "netplug".into(),
            std::sync::Arc::new(grants),
            Default::default(),
            Default::default(),
            std::sync::Arc::new(crate::plugins::DownloadPolicy::new(vec![])),
            64 << 20,
            Instant::now() + Duration::from_secs(30),
        )
    }

    /// The call was refused as not granted, naming `name`, and so ran nothing.
    fn denied(outcome: wasmtime::Result<Result<(), DriverError>>, name: &str) {
        match outcome.expect("no trap") {
            Err(DriverError::Denied(m)) => {
                assert!(m.contains(&format!("\"{name}\"")) && m.contains("netdev = [\""), "{m}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    fn refused(outcome: wasmtime::Result<Result<(), DriverError>>) {
        assert!(matches!(outcome.expect("no trap"), Err(DriverError::InvalidSpec(_))));
    }

    fn chain_exists(chain: &str) -> bool {
        std::process::Command::new("nft")
            .args(["list", "chain", "bridge", TABLE, chain])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Each device is checked against the grant before nft runs: one outside it refuses the
    /// whole call, so nothing of it applies; text that is not a device name never reaches
    /// the rule text.
    #[test]
    fn port_filters_outside_the_grant_are_refused() {
        use crate::plugins::bindings::netdev::Host as _;
        let mut s = state();
        let on = |device: &str| PortFilter { device: device.into(), ..filter(vec![]) };
        denied(s.apply_port_filters(vec![on("eth0")]), "eth0");
        let granted = format!("ws-q{}", std::process::id() % 100_000);
        denied(s.apply_port_filters(vec![on(&granted), on("virbr0")]), "virbr0");
        assert!(!chain_exists(&format!("e-{granted}")), "a refused call applied a filter");
        denied(s.remove_port_filters(vec![granted.clone(), "eth0".into()]), "eth0");
        for bad in ["ws-a b", "-ws", "ws-0123456789abc", "ws-x;drop", "ws-x}", "ws-\"q"] {
            refused(s.apply_port_filters(vec![on(bad)]));
            refused(s.remove_port_filters(vec![bad.into()]));
        }
        assert!(!chain_exists(&format!("e-{granted}")));
        // Over the limit: refused before any name is looked at.
        refused(s.apply_port_filters(vec![on(&granted); MAX_FILTERS + 1]));
    }
}
