//! wasmstack network driver for isolated networks: every network is a VLAN on one
//! shared Open vSwitch bridge per physical network label, and each guest NIC an access
//! port tagged with the network's VLAN ID. Open vSwitch runs with its userspace
//! datapath, so no kernel module (8021q, openvswitch) is needed.

wit_bindgen::generate!({ world: "network-driver", path: "../../wit", generate_all });

#[path = "../../shared/bridge.rs"]
mod bridge;

use exports::wasmstack::driver::network::{self, Attachment, NetworkSpec, NicSpec};
use exports::wasmstack::driver::plugin::{self, Capability, DriverKind, NetworkFacts, PluginInfo, Serves};
use wasmstack::driver::netdev::{self, BridgeKind};
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

impl network::Guest for Vlan {
    fn implement(_host: String, net: NetworkSpec) -> Result<Attachment, DriverError> {
        let att = attachment(&net)?;
        // Idempotent: the bridge is shared by every VLAN on this physical network.
        netdev::ensure_bridge(&att.bridge, BridgeKind::Openvswitch)?;
        bridge::ensure_dhcp(&net, &att.bridge)?;
        Ok(att)
    }

    fn shutdown(_host: String, net: NetworkSpec) -> Result<(), DriverError> {
        // The bridge carries the other VLANs of this physical network, so it stays;
        // only what belongs to this network alone goes.
        netdev::stop_dhcp(&bridge::dhcp_name(&net.id))
    }

    fn prepare_nic(_host: String, net: NetworkSpec, nic: NicSpec) -> Result<Attachment, DriverError> {
        let att = attachment(&net)?;
        netdev::ensure_bridge(&att.bridge, BridgeKind::Openvswitch)?;
        bridge::add_lease(&net, &nic, &att.bridge)?;
        Ok(att)
    }

    fn release_nic(_host: String, net: NetworkSpec, nic: NicSpec) -> Result<(), DriverError> {
        // The NIC's port is the hypervisor's (it goes with the VM's tap); its lease is ours.
        bridge::remove_lease(&net, &nic)
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
                services: vec!["Dhcp".into()],
            }),
            description: "Isolated guest networks as VLANs on an Open vSwitch bridge (userspace datapath) \
                          named by the physical network label, e.g. \"ws-phys0\". Grant netdev = [\"ws-\"]."
                .into(),
            capabilities: vec![Capability::Netdev(bridge::PREFIX.into())],
            config_schema: "{}".into(),
        }
    }
}

export!(Vlan);
