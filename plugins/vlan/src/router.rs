//! The router of a VLAN network: a network namespace of its own holding the guest
//! gateway (a link on the network's VLAN) and the public IPs (links on the public
//! bridge, one per public VLAN), with forwarding on, an nftables rule set for source
//! NAT, static NAT, port forwarding and the firewalls, and an HAProxy for load balancers.
//!
//! Everything is a pure function of the spec: `apply` renders the whole state and makes
//! the host match it, so applying again is cheap and rebuilds a router whose namespace
//! vanished.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::exports::wasmstack::driver::network::{
    EgressPolicy, FirewallRule, LbAlgorithm, NetworkSpec, PortRange, Protocol, RouterSpec, RouterState,
};
use crate::wasmstack::driver::netdev::{self, Balance, LbConfig, LbFrontend, LbServer, LinkPlug, ServiceState};
use crate::wasmstack::driver::types::DriverError;

/// Public VLANs a router can be on at once (each is a link of its own).
const MAX_PUBLIC_VLANS: usize = 4;

fn invalid(text: String) -> DriverError {
    DriverError::InvalidSpec(text)
}

/// The names of a network's router pieces on a host: 15 characters at most, within the
/// granted prefix, unique per network.
pub struct Names {
    /// The router's namespace.
    pub ns: String,
    /// Its guest-side link (the same name inside the namespace and on the host).
    pub guest: String,
    /// Its load balancer.
    pub lb: String,
    hex: String,
}

impl Names {
    pub fn of(net_id: &str) -> Names {
        let hex: String = net_id.chars().filter(|c| c.is_ascii_hexdigit()).take(11).collect();
        let p = crate::bridge::PREFIX;
        Names { ns: format!("{p}r{hex}"), guest: format!("{p}g{hex}"), lb: format!("{p}l{hex}"), hex }
    }

    /// The public link for the `i`-th public VLAN.
    pub fn public(&self, i: usize) -> String {
        format!("{}p{}{i}", crate::bridge::PREFIX, &self.hex[..self.hex.len().min(10)])
    }
}

fn ipv4(text: &str, what: &str) -> Result<Ipv4Addr, DriverError> {
    text.parse().map_err(|_| invalid(format!("{what} \"{text}\" is not an IPv4 address")))
}

/// "a.b.c.d/p" checked, in its canonical form (a bare address is a /32).
fn cidr(text: &str, what: &str) -> Result<String, DriverError> {
    let (addr, prefix) = text.split_once('/').unwrap_or((text, "32"));
    let addr = ipv4(addr, what)?;
    let prefix: u8 =
        prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(|| invalid(format!("{what} \"{text}\" is not CIDR")))?;
    Ok(format!("{addr}/{prefix}"))
}

fn ports(r: &PortRange) -> Result<String, DriverError> {
    if r.start == 0 || r.start > r.end {
        return Err(invalid(format!("port range {}-{} is not within 1-65535, first to last", r.start, r.end)));
    }
    Ok(if r.start == r.end { r.start.to_string() } else { format!("{}-{}", r.start, r.end) })
}

/// `ip saddr { … } ` for a list of CIDRs; nothing when the list is empty (any address).
fn addr_match(dir: &str, cidrs: &[String]) -> Result<String, DriverError> {
    if cidrs.is_empty() {
        return Ok(String::new());
    }
    let list = cidrs.iter().map(|c| cidr(c, "CIDR")).collect::<Result<Vec<_>, _>>()?;
    Ok(format!("ip {dir} {{ {} }} ", list.join(", ")))
}

/// What a rule of `protocol` on `ports` matches, with `port_expr` the port's expression.
fn proto_match(protocol: Protocol, ports_: &Option<PortRange>, port_expr: &str) -> Result<String, DriverError> {
    let name = match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Icmp => "icmp",
        Protocol::All => return Ok(String::new()),
    };
    Ok(match (protocol, ports_) {
        (Protocol::Tcp | Protocol::Udp, Some(r)) => format!("meta l4proto {name} {port_expr} {} ", ports(r)?),
        _ => format!("meta l4proto {name} "),
    })
}

fn firewall_rule(public: &str, rule: &FirewallRule) -> Result<String, DriverError> {
    Ok(format!(
        "        ct original ip daddr {public} {}{}accept\n",
        proto_match(rule.protocol, &rule.ports, "ct original proto-dst")?,
        addr_match("saddr", &rule.cidrs)?
    ))
}

/// The router's whole nftables rule set for `spec`, its guest link being `guest`.
pub fn render_nft(net: &NetworkSpec, spec: &RouterSpec, guest: &str) -> Result<String, DriverError> {
    let guest_cidr = cidr(&net.cidr, "network CIDR")?;
    let publics: BTreeSet<String> = spec
        .public_ips
        .iter()
        .map(|p| ipv4(&p.address, "public IP").map(|a| a.to_string()))
        .collect::<Result<_, _>>()?;
    let public = |ip: &str| -> Result<String, DriverError> {
        let a = ipv4(ip, "public IP")?.to_string();
        if !publics.contains(&a) {
            return Err(invalid(format!("{a} is not one of the router's public IPs")));
        }
        Ok(a)
    };
    let snat: Vec<_> = spec.public_ips.iter().filter(|p| p.source_nat).collect();
    if snat.len() > 1 {
        return Err(invalid(format!("{} public IPs are marked source NAT; at most one may be", snat.len())));
    }

    let (mut pre, mut post, mut ingress, mut egress) = (String::new(), String::new(), String::new(), String::new());
    for pf in &spec.port_forwards {
        let (pub_ip, priv_ip) = (public(&pf.public_ip)?, ipv4(&pf.private_ip, "private IP")?);
        let proto = match pf.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            _ => return Err(invalid("port forwarding is for tcp or udp".into())),
        };
        let (pp, vp) = (&pf.public_ports, &pf.private_ports);
        let (public_ports, _) = (ports(pp)?, ports(vp)?);
        if pp.end - pp.start != vp.end - vp.start {
            return Err(invalid(format!(
                "public ports {public_ports} and private ports {}-{} differ in length",
                vp.start, vp.end
            )));
        }
        let target = if pp.start == vp.start {
            // The same ports: only the address changes.
            priv_ip.to_string()
        } else if pp.start == pp.end {
            format!("{priv_ip}:{}", vp.start)
        } else {
            let pairs: Vec<String> =
                (0..=(pp.end - pp.start)).map(|i| format!("{} : {}", pp.start + i, vp.start + i)).collect();
            format!("{priv_ip} : {proto} dport map {{ {} }}", pairs.join(", "))
        };
        let _ = writeln!(pre, "        ip daddr {pub_ip} {proto} dport {public_ports} dnat to {target}");
    }
    for nat in &spec.static_nats {
        let (pub_ip, priv_ip) = (public(&nat.public_ip)?, ipv4(&nat.private_ip, "private IP")?);
        if snat.iter().any(|s| s.address == pub_ip) {
            return Err(invalid(format!("{pub_ip} is the source NAT IP; it cannot be a static NAT one")));
        }
        let _ = writeln!(pre, "        ip daddr {pub_ip} dnat to {priv_ip}");
        let _ = writeln!(post, "        ip saddr {priv_ip} snat to {pub_ip}");
    }
    if let Some(s) = snat.first() {
        let _ = writeln!(post, "        ip saddr {guest_cidr} snat to {}", public(&s.address)?);
    }
    for ip in &spec.public_ips {
        let a = public(&ip.address)?;
        for rule in &ip.firewall {
            ingress += &firewall_rule(&a, rule)?;
        }
    }
    let (exception, default) = match spec.egress_default {
        EgressPolicy::Allow => ("drop", "accept"),
        EgressPolicy::Deny => ("accept", "drop"),
    };
    for rule in &spec.egress {
        let _ = writeln!(
            egress,
            "        {}{}{}{exception}",
            addr_match("saddr", &rule.source_cidrs)?,
            addr_match("daddr", &rule.destination_cidrs)?,
            proto_match(rule.protocol, &rule.ports, "th dport")?
        );
    }
    let _ = writeln!(egress, "        {default}");

    Ok(format!(
        "table ip router {{\n\
         \x20   chain prerouting {{\n\
         \x20       type nat hook prerouting priority dstnat; policy accept;\n\
         \x20       iifname \"{guest}\" return\n{pre}    }}\n\
         \x20   chain postrouting {{\n\
         \x20       type nat hook postrouting priority srcnat; policy accept;\n\
         \x20       oifname \"{guest}\" return\n{post}    }}\n\
         \x20   chain ingress {{\n{ingress}    }}\n\
         \x20   chain egress {{\n{egress}    }}\n\
         \x20   chain input {{\n\
         \x20       type filter hook input priority filter; policy drop;\n\
         \x20       iifname \"lo\" accept\n\
         \x20       ct state established,related accept\n\
         \x20       ct state invalid drop\n\
         \x20       iifname \"{guest}\" accept\n\
         \x20       jump ingress\n\
         \x20   }}\n\
         \x20   chain forward {{\n\
         \x20       type filter hook forward priority filter; policy drop;\n\
         \x20       ct state established,related accept\n\
         \x20       ct state invalid drop\n\
         \x20       iifname \"{guest}\" oifname != \"{guest}\" jump egress\n\
         \x20       iifname != \"{guest}\" ct status dnat jump ingress\n\
         \x20   }}\n\
         }}\n"
    ))
}

/// The load balancers of `spec` as the host's typed HAProxy configuration.
fn load_balancer(names: &Names, spec: &RouterSpec) -> Result<LbConfig, DriverError> {
    let frontends = spec
        .load_balancers
        .iter()
        .map(|lb| {
            if lb.public_port == 0 {
                return Err(invalid(format!("load balancer {} has port 0", lb.name)));
            }
            Ok(LbFrontend {
                name: lb.name.clone(),
                address: ipv4(&lb.public_ip, "public IP")?.to_string(),
                port: lb.public_port,
                balance: match lb.algorithm {
                    LbAlgorithm::RoundRobin => Balance::RoundRobin,
                    LbAlgorithm::LeastConnections => Balance::LeastConnections,
                    LbAlgorithm::Source => Balance::Source,
                },
                servers: lb
                    .members
                    .iter()
                    .map(|m| Ok(LbServer { address: ipv4(&m.ip, "member IP")?.to_string(), port: m.port }))
                    .collect::<Result<_, DriverError>>()?,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(LbConfig { name: names.lb.clone(), namespace: names.ns.clone(), frontends })
}

/// The public VLANs of `spec` in a fixed order, each with its addresses as CIDR.
fn public_legs(spec: &RouterSpec) -> Result<Vec<(Option<u16>, Vec<String>)>, DriverError> {
    let mut legs: Vec<(Option<u16>, Vec<String>)> = Vec::new();
    for ip in &spec.public_ips {
        if ip.prefix > 32 {
            return Err(invalid(format!("public IP {} has prefix /{}", ip.address, ip.prefix)));
        }
        let addr = format!("{}/{}", ipv4(&ip.address, "public IP")?, ip.prefix);
        match legs.iter_mut().find(|(v, _)| *v == ip.vlan) {
            Some((_, list)) => list.push(addr),
            None => legs.push((ip.vlan, vec![addr])),
        }
    }
    legs.sort_by_key(|(v, _)| *v);
    if legs.len() > MAX_PUBLIC_VLANS {
        return Err(invalid(format!("public IPs on {} VLANs; a router takes at most {MAX_PUBLIC_VLANS}", legs.len())));
    }
    Ok(legs)
}

/// Makes the host's router for `net` what `spec` says.
pub fn apply(net: &NetworkSpec, bridge: &str, vlan: u16, spec: &RouterSpec) -> Result<(), DriverError> {
    let names = Names::of(&net.id);
    let public_label = crate::bridge::bridge_name(&spec.public_label).map_err(invalid)?;
    // Everything is rendered and checked before the host is touched.
    let gateway = cidr(&spec.guest_gateway, "guest gateway")?;
    let ruleset = render_nft(net, spec, &names.guest)?;
    let legs = public_legs(spec)?;
    let lb = load_balancer(&names, spec)?;
    let default_route = match spec.public_ips.iter().find(|p| p.source_nat).or(spec.public_ips.first()) {
        Some(p) => Some(ipv4(&p.gateway, "public gateway")?.to_string()),
        None => None,
    };

    netdev::create_namespace(&names.ns)?;
    netdev::add_namespace_link(&names.ns, &names.guest, &LinkPlug { bridge: bridge.to_owned(), vlan: Some(vlan) })?;
    netdev::set_namespace_addresses(&names.ns, &names.guest, &[gateway])?;
    for (i, (public_vlan, addresses)) in legs.iter().enumerate() {
        let leg = names.public(i);
        netdev::add_namespace_link(&names.ns, &leg, &LinkPlug { bridge: public_label.clone(), vlan: *public_vlan })?;
        netdev::set_namespace_addresses(&names.ns, &leg, addresses)?;
    }
    for i in legs.len()..MAX_PUBLIC_VLANS {
        netdev::remove_namespace_link(&names.ns, &names.public(i))?;
    }
    netdev::set_namespace_default_route(&names.ns, default_route.as_deref())?;
    netdev::set_namespace_forwarding(&names.ns, true)?;
    netdev::apply_nftables(&names.ns, &ruleset)?;
    if lb.frontends.is_empty() { netdev::stop_load_balancer(&names.lb) } else { netdev::apply_load_balancer(&lb) }
}

/// Removes the router of `net`, whatever of it there is.
pub fn destroy(net: &NetworkSpec) -> Result<(), DriverError> {
    let names = Names::of(&net.id);
    netdev::stop_load_balancer(&names.lb)?;
    // The namespace takes its links (and their bridge ports) with it.
    netdev::delete_namespace(&names.ns)
}

pub fn status(net: &NetworkSpec) -> Result<RouterState, DriverError> {
    let names = Names::of(&net.id);
    if !netdev::namespace_exists(&names.ns)? {
        return Ok(RouterState::Missing);
    }
    Ok(match netdev::load_balancer_state(&names.lb)? {
        ServiceState::Dead => RouterState::Degraded,
        ServiceState::Running | ServiceState::Absent => RouterState::Running,
    })
}
