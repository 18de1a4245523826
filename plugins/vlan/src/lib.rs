//! wasmstack network driver for isolated networks: every network is a VLAN on one
//! shared Open vSwitch bridge per physical network label, and each guest NIC an access
//! port tagged with the network's VLAN ID. Open vSwitch runs with its userspace
//! datapath, so no kernel module (8021q, openvswitch) is needed. A network's DHCP
//! service runs in a namespace of its own, linked to the network's VLAN, so networks
//! with the same addresses on one host do not clash; its router (`router.rs`) in another.

wit_bindgen::generate!({ world: "network-driver", path: "../../wit", generate_all });

#[path = "../../shared/bridge.rs"]
mod bridge;
mod router;

use bridge::DhcpPlace;
use exports::wasmstack::driver::network::{
    self, Attachment, NetworkSpec, NicSecurity, NicSpec, RouterSpec, RouterState,
};
use exports::wasmstack::driver::plugin::{self, Capability, DriverKind, NetworkFacts, PluginInfo, Serves};
use wasmstack::driver::netdev::{self, BridgeKind, LinkPlug};
use wasmstack::driver::types::DriverError;

struct Vlan;

fn attachment(net: &NetworkSpec) -> Result<Attachment, DriverError> {
    let bridge = bridge::bridge_name(&net.physical).map_err(DriverError::InvalidSpec)?;
    let vlan = net.vlan.ok_or_else(|| {
        DriverError::InvalidSpec(format!("network {} has no VLAN ID; isolated networks need one", net.id))
    })?;
    if !(1..=4094).contains(&vlan) {
        return Err(DriverError::InvalidSpec(format!("VLAN {vlan} is outside 1-4094")));
    }
    Ok(Attachment { bridge, openvswitch: true, vlan: Some(vlan) })
}

/// The namespace (and the link in it, of the same name) the network's DHCP service runs in.
fn dhcp_namespace(net: &NetworkSpec) -> String {
    let hex: String = net.id.chars().filter(|c| c.is_ascii_hexdigit()).take(11).collect();
    format!("{}n{hex}", bridge::PREFIX)
}

/// Makes the DHCP service's namespace and its link to the network's VLAN, when the
/// network has DHCP; where the service lives.
fn dhcp_home(net: &NetworkSpec, att: &Attachment) -> Result<String, DriverError> {
    let ns = dhcp_namespace(net);
    if net.dhcp_server.is_some() {
        netdev::create_namespace(&ns)?;
        netdev::add_namespace_link(&ns, &ns, &LinkPlug { bridge: att.bridge.clone(), vlan: att.vlan })?;
    }
    Ok(ns)
}

impl network::Guest for Vlan {
    fn implement(_host: String, net: NetworkSpec) -> Result<Attachment, DriverError> {
        let att = attachment(&net)?;
        // Idempotent: the bridge is shared by every VLAN on this physical network.
        netdev::ensure_bridge(&att.bridge, BridgeKind::Openvswitch)?;
        let ns = dhcp_home(&net, &att)?;
        bridge::ensure_dhcp(&net, DhcpPlace::Namespace { ns: &ns, device: &ns })?;
        Ok(att)
    }

    fn shutdown(_host: String, net: NetworkSpec) -> Result<(), DriverError> {
        // The bridge carries the other VLANs of this physical network, so it stays;
        // only what belongs to this network alone goes: its router, its DHCP service and
        // the namespace that held it.
        router::destroy(&net)?;
        netdev::stop_dhcp(&bridge::dhcp_name(&net.id))?;
        netdev::delete_namespace(&dhcp_namespace(&net))
    }

    fn prepare_nic(_host: String, net: NetworkSpec, nic: NicSpec) -> Result<Attachment, DriverError> {
        let att = attachment(&net)?;
        netdev::ensure_bridge(&att.bridge, BridgeKind::Openvswitch)?;
        if net.dhcp_server.is_some() && nic.ip.is_some() {
            let ns = dhcp_namespace(&net);
            let place = DhcpPlace::Namespace { ns: &ns, device: &ns };
            // The service runs nearly always; its namespace is made only when it does not.
            match bridge::add_lease(&net, &nic, place) {
                Err(DriverError::NotFound(_)) => {
                    dhcp_home(&net, &att)?;
                    bridge::add_lease(&net, &nic, place)?;
                }
                other => other?,
            }
        }
        Ok(att)
    }

    fn release_nic(_host: String, net: NetworkSpec, nic: NicSpec) -> Result<(), DriverError> {
        // The NIC's port is the hypervisor's (it goes with the VM's tap); its lease is ours.
        bridge::remove_lease(&net, &nic)
    }

    fn apply_router(_host: String, net: NetworkSpec, spec: RouterSpec) -> Result<(), DriverError> {
        let att = attachment(&net)?;
        netdev::ensure_bridge(&att.bridge, BridgeKind::Openvswitch)?;
        router::apply(&net, &att.bridge, att.vlan.unwrap_or_default(), &spec)
    }

    fn destroy_router(_host: String, net: NetworkSpec) -> Result<(), DriverError> {
        router::destroy(&net)
    }

    fn router_status(_host: String, net: NetworkSpec) -> Result<RouterState, DriverError> {
        router::status(&net)
    }

    fn apply_security(_host: String, _net: NetworkSpec, _nics: Vec<NicSecurity>) -> Result<(), DriverError> {
        // Its NICs are Open vSwitch ports, which the host's port filters (Linux bridge
        // ports) do not reach.
        Err(DriverError::Unsupported("the vlan driver has no security groups; use the flat driver".into()))
    }

    fn remove_security(_host: String, _net: NetworkSpec, _nic: NicSpec, _device: String) -> Result<(), DriverError> {
        Err(DriverError::Unsupported("the vlan driver has no security groups; use the flat driver".into()))
    }
}

impl plugin::Guest for Vlan {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "vlan".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: DriverKind::Network,
            serves: Serves::Network(NetworkFacts {
                isolation_methods: vec!["VLAN".into()],
                services: ["Dhcp", "SourceNat", "StaticNat", "PortForwarding", "Firewall", "Lb"]
                    .map(Into::into)
                    .to_vec(),
            }),
            description: "Isolated guest networks as VLANs on an Open vSwitch bridge (userspace datapath) \
                          named by the physical network label, e.g. \"ws-phys0\", with a router per network \
                          in a network namespace (nftables, HAProxy). Grant netdev = [\"ws-\"]."
                .into(),
            capabilities: vec![Capability::Netdev(bridge::PREFIX.into())],
            config_schema: "{}".into(),
        }
    }
}

export!(Vlan);
