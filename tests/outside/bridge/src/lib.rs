//! bridge: a wasmstack network driver for an isolation method of its own, "BRIDGE".
//!
//! Written outside wasmstack from `wasmstack plugins new --kind network bridge`. Each guest
//! network gets a Linux bridge of its own on every host that runs its NICs, named from the
//! network's segment ("wsbr-<segment>"), so networks never share a layer-2 domain. The
//! bridges have no uplink: a network spans one host. A network with a DHCP service gets a
//! BusyBox DHCP server on its bridge that hands each prepared NIC its address, and nothing
//! to anyone else.

wit_bindgen::generate!({ world: "network-driver", path: "wit", generate_all });

use exports::wasmstack::driver::network::{
    Attachment, Guest as Network, NetworkSpec, NicSecurity, NicSpec, RouterSpec, RouterState,
};
use exports::wasmstack::driver::plugin::{Capability, DriverKind, Guest as Plugin, NetworkFacts, PluginInfo, Serves};
use wasmstack::driver::log::{Level, log};
use wasmstack::driver::netdev::{self, BridgeKind, DhcpConfig, DhcpHost};
use wasmstack::driver::types::DriverError;

/// Every device this driver makes starts with this; it is what the operator grants.
const PREFIX: &str = "wsbr-";

/// Linux device names are at most 15 bytes.
const MAX_DEVICE: usize = 15;

/// A MAC no NIC is given: removing its lease is a harmless question "does the service run?".
const NOBODY: &str = "00:00:00:00:00:00";

struct Bridge;

impl Plugin for Bridge {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "bridge".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: DriverKind::Network,
            serves: Serves::Network(NetworkFacts {
                isolation_methods: vec!["BRIDGE".into()],
                services: vec!["Dhcp".into()],
            }),
            description: format!(
                "Isolation method BRIDGE: one Linux bridge per guest network, {PREFIX}<segment> (the segment \
                 comes from the physical network's vlan range), with no uplink, so a network spans one host; \
                 DHCP hands prepared NICs their addresses. Grant netdev = [\"{PREFIX}\"]."
            ),
            capabilities: vec![Capability::Netdev(PREFIX.into())],
            config_schema: "{}".into(),
        }
    }
}

/// The network's bridge: from its segment, or from its id when the method got none.
fn bridge_of(net: &NetworkSpec) -> String {
    match net.segment {
        Some(segment) => format!("{PREFIX}{segment}"),
        None => format!("{PREFIX}n{}", hex_of(&net.id, MAX_DEVICE - PREFIX.len() - 1)),
    }
}

/// The first `n` hex digits of a UUID.
fn hex_of(id: &str, n: usize) -> String {
    id.chars().filter(char::is_ascii_hexdigit).take(n).collect::<String>().to_ascii_lowercase()
}

/// The network's DHCP service; one per network and host.
fn dhcp_of(net: &NetworkSpec) -> String {
    format!("{PREFIX}d{}", hex_of(&net.id, MAX_DEVICE - PREFIX.len() - 1))
}

fn attachment(net: &NetworkSpec) -> Attachment {
    // The segment is this driver's own: nothing is tagged on the wire.
    Attachment { bridge: bridge_of(net), openvswitch: false, vlan: None }
}

fn dhcp_config(net: &NetworkSpec, server: &str, hosts: Vec<DhcpHost>) -> DhcpConfig {
    DhcpConfig {
        name: dhcp_of(net),
        bridge: bridge_of(net),
        vlan: None,
        server_address: server.to_owned(),
        gateway: net.gateway.clone(),
        dns: net.dns.clone(),
        hosts,
    }
}

/// Builds the network's bridge and, when the network has one, its DHCP service (kept
/// with its leases when it runs: the server may call again).
fn build(net: &NetworkSpec) -> Result<Attachment, DriverError> {
    let att = attachment(net);
    netdev::ensure_bridge(&att.bridge, BridgeKind::Linux)?;
    if let Some(server) = &net.dhcp_server {
        match netdev::remove_dhcp_host(&dhcp_of(net), NOBODY) {
            Err(DriverError::NotFound(_)) => netdev::start_dhcp(&dhcp_config(net, server, Vec::new()))?,
            other => other?,
        }
    }
    Ok(att)
}

impl Network for Bridge {
    fn implement(host: String, net: NetworkSpec) -> Result<Attachment, DriverError> {
        let att = build(&net)?;
        log(Level::Info, &format!("network {} on {host}: bridge {}", net.id, att.bridge));
        Ok(att)
    }

    fn shutdown(host: String, net: NetworkSpec) -> Result<(), DriverError> {
        // The bridge is this network's alone, so it goes with its DHCP service.
        netdev::stop_dhcp(&dhcp_of(&net))?;
        netdev::remove_bridge(&bridge_of(&net))?;
        log(Level::Info, &format!("network {} removed from {host}", net.id));
        Ok(())
    }

    fn prepare_nic(_host: String, net: NetworkSpec, nic: NicSpec) -> Result<Attachment, DriverError> {
        let att = build(&net)?;
        if let (Some(server), Some(ip)) = (&net.dhcp_server, &nic.ip) {
            let lease = DhcpHost { mac: nic.mac.clone(), ip: ip.clone(), hostname: nic.hostname.clone() };
            match netdev::add_dhcp_host(&dhcp_of(&net), &lease) {
                Err(DriverError::NotFound(_)) => netdev::start_dhcp(&dhcp_config(&net, server, vec![lease]))?,
                other => other?,
            }
        }
        Ok(att)
    }

    fn release_nic(_host: String, net: NetworkSpec, nic: NicSpec) -> Result<(), DriverError> {
        if net.dhcp_server.is_none() {
            return Ok(());
        }
        match netdev::remove_dhcp_host(&dhcp_of(&net), &nic.mac) {
            Err(DriverError::NotFound(_)) => Ok(()),
            other => other,
        }
    }

    fn apply_router(_host: String, _net: NetworkSpec, _router: RouterSpec) -> Result<(), DriverError> {
        // It declares no router services: its networks span one host and have no uplink.
        Err(DriverError::Unsupported("the bridge driver builds no routers".into()))
    }

    fn destroy_router(_host: String, _net: NetworkSpec) -> Result<(), DriverError> {
        Ok(())
    }

    fn router_status(_host: String, _net: NetworkSpec) -> Result<RouterState, DriverError> {
        Ok(RouterState::Missing)
    }

    fn apply_security(_host: String, _net: NetworkSpec, _nics: Vec<NicSecurity>) -> Result<(), DriverError> {
        // It declares no SecurityGroup service: its ports are not filtered.
        Err(DriverError::Unsupported("the bridge driver has no security groups".into()))
    }

    fn remove_security(_host: String, _net: NetworkSpec, _nic: NicSpec, _device: String) -> Result<(), DriverError> {
        Err(DriverError::Unsupported("the bridge driver has no security groups".into()))
    }
}

export!(Bridge);
