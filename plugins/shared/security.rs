//! Security groups on Linux bridge ports: the contract's per-NIC rules as the netdev
//! capability's port filters, which the host renders and applies (a driver passes typed
//! fields, never rule text). Only drivers whose NICs sit on Linux bridges in the host's
//! namespace use it.

use crate::exports::wasmstack::driver::network::{NicSecurity, SecurityProtocol, SecurityRule};
use crate::wasmstack::driver::netdev::{self, PortFilter, PortRule, RuleIcmp, RulePorts, RuleProtocol};
use crate::wasmstack::driver::types::DriverError;

fn rule(r: &SecurityRule) -> PortRule {
    PortRule {
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
    }
}

/// The port filter of one NIC: its MAC and address are all it may send from.
pub fn filter(n: &NicSecurity) -> PortFilter {
    PortFilter {
        device: n.device.clone(),
        mac: n.nic.mac.clone(),
        addresses: n.nic.ip.iter().cloned().collect(),
        ingress: n.ingress.iter().map(rule).collect(),
        egress: n.egress.iter().map(rule).collect(),
    }
}

/// Filters these NICs' ports, all in one transaction.
pub fn apply(nics: &[NicSecurity]) -> Result<(), DriverError> {
    if nics.is_empty() {
        return Ok(());
    }
    netdev::apply_port_filters(&nics.iter().map(filter).collect::<Vec<_>>())
}

/// Stops filtering a NIC's port.
pub fn remove(device: &str) -> Result<(), DriverError> {
    netdev::remove_port_filters(&[device.to_owned()])
}
