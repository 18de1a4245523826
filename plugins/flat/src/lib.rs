//! wasmstack network driver for flat networks: every guest NIC of a network plugs into
//! one Linux bridge named by the physical network label, untagged; no isolation
//! between networks that share a label. Security groups isolate the NICs instead: each
//! NIC's port on the bridge gets its rules through the host's port filters.

#[cfg(not(any(feature = "wit-v0-2", feature = "wit-v0-3")))]
wit_bindgen::generate!({ world: "network-driver", path: "../../wit", generate_all });
// The same driver built against the frozen 0.3.0 contract: routers, no security groups.
#[cfg(feature = "wit-v0-3")]
wit_bindgen::generate!({ world: "network-driver", path: "../../wit/v0.3.0", generate_all });
// The same driver built against the frozen 0.2.0 contract, to prove the server still runs
// such drivers: no router calls (the server answers them for it).
#[cfg(feature = "wit-v0-2")]
wit_bindgen::generate!({ world: "network-driver", path: "../../wit/v0.2.0", generate_all });

#[path = "../../shared/bridge.rs"]
mod bridge;
#[cfg(not(any(feature = "wit-v0-2", feature = "wit-v0-3")))]
#[path = "../../shared/security.rs"]
mod security;

#[cfg(not(any(feature = "wit-v0-2", feature = "wit-v0-3")))]
use exports::wasmstack::driver::network::NicSecurity;
use exports::wasmstack::driver::network::{self, Attachment, NetworkSpec, NicSpec};
#[cfg(not(feature = "wit-v0-2"))]
use exports::wasmstack::driver::network::{RouterSpec, RouterState};
use exports::wasmstack::driver::plugin::{self, Capability, DriverKind, NetworkFacts, PluginInfo, Serves};
use wasmstack::driver::netdev::{self, BridgeKind};
use wasmstack::driver::types::DriverError;

struct Flat;

fn attachment(net: &NetworkSpec) -> Result<Attachment, DriverError> {
    let bridge = bridge::bridge_name(&net.physical).map_err(DriverError::InvalidSpec)?;
    if let Some(vlan) = net.vlan {
        // A Linux bridge here cannot tag (no 8021q, no VLAN filtering): refuse rather
        // than silently join the untagged network.
        return Err(DriverError::Unsupported(format!(
            "network {} asks for VLAN {vlan}; the flat driver has no VLANs, use the vlan driver",
            net.id
        )));
    }
    Ok(Attachment { bridge, openvswitch: false, vlan: None })
}

impl network::Guest for Flat {
    fn implement(_host: String, net: NetworkSpec) -> Result<Attachment, DriverError> {
        let att = attachment(&net)?;
        netdev::ensure_bridge(&att.bridge, BridgeKind::Linux)?;
        bridge::ensure_dhcp(&net, bridge::DhcpPlace::Bridge(&att.bridge))?;
        Ok(att)
    }

    fn shutdown(_host: String, net: NetworkSpec) -> Result<(), DriverError> {
        // The bridge may carry other networks with the same label (and the host's
        // uplink), so it stays; this network's DHCP goes.
        netdev::stop_dhcp(&bridge::dhcp_name(&net.id))
    }

    fn prepare_nic(_host: String, net: NetworkSpec, nic: NicSpec) -> Result<Attachment, DriverError> {
        let att = attachment(&net)?;
        netdev::ensure_bridge(&att.bridge, BridgeKind::Linux)?;
        bridge::add_lease(&net, &nic, bridge::DhcpPlace::Bridge(&att.bridge))?;
        Ok(att)
    }

    fn release_nic(_host: String, net: NetworkSpec, nic: NicSpec) -> Result<(), DriverError> {
        // The NIC's port is the hypervisor's (it goes with the VM's tap); its lease is ours.
        bridge::remove_lease(&net, &nic)
    }

    #[cfg(not(feature = "wit-v0-2"))]
    fn apply_router(_host: String, _net: NetworkSpec, _router: RouterSpec) -> Result<(), DriverError> {
        // Flat networks share one bridge, untagged: there is no network of its own to
        // put a router in front of.
        Err(DriverError::Unsupported("the flat driver builds no routers; use the vlan driver".into()))
    }

    #[cfg(not(feature = "wit-v0-2"))]
    fn destroy_router(_host: String, _net: NetworkSpec) -> Result<(), DriverError> {
        Ok(())
    }

    #[cfg(not(feature = "wit-v0-2"))]
    fn router_status(_host: String, _net: NetworkSpec) -> Result<RouterState, DriverError> {
        Ok(RouterState::Missing)
    }

    #[cfg(not(any(feature = "wit-v0-2", feature = "wit-v0-3")))]
    fn apply_security(_host: String, net: NetworkSpec, nics: Vec<NicSecurity>) -> Result<(), DriverError> {
        // Checks the network is one of ours (no VLAN) before filtering its NICs' ports.
        attachment(&net)?;
        security::apply(&nics)
    }

    #[cfg(not(any(feature = "wit-v0-2", feature = "wit-v0-3")))]
    fn remove_security(_host: String, net: NetworkSpec, _nic: NicSpec, device: String) -> Result<(), DriverError> {
        attachment(&net)?;
        security::remove(&device)
    }
}

impl plugin::Guest for Flat {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "flat".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: DriverKind::Network,
            serves: Serves::Network(NetworkFacts {
                isolation_methods: vec!["Flat".into()],
                services: if cfg!(any(feature = "wit-v0-2", feature = "wit-v0-3")) {
                    vec!["Dhcp".into()]
                } else {
                    vec!["Dhcp".into(), "SecurityGroup".into()]
                },
            }),
            description: "Flat guest networks on a Linux bridge named by the physical network label, \
                          e.g. \"ws-flat0\". Grant netdev = [\"ws-\"]."
                .into(),
            capabilities: vec![Capability::Netdev(bridge::PREFIX.into())],
            config_schema: "{}".into(),
        }
    }
}

export!(Flat);
