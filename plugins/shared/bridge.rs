//! What the `vlan` and `flat` network drivers share: one bridge per physical network
//! label, kept for as long as the host runs guests; the driver only decides its kind and
//! whether ports carry a VLAN tag. Both serve DHCP the same way: one BusyBox service per
//! network, with static leases only: one for each prepared NIC that has an address.

/// The prefix both drivers ask for: every device they touch is named with it.
pub const PREFIX: &str = "ws-";

/// DHCP service name for a network on a host: unique per network, within the
/// granted prefix and the kernel's 15-character device names.
pub fn dhcp_name(net_id: &str) -> String {
    let hex: String = net_id.chars().filter(|c| c.is_ascii_hexdigit()).take(11).collect();
    format!("{PREFIX}d{hex}")
}

/// Checks that the physical label can name the bridge, so that the operator learns
/// the rule instead of reading a grant denial.
pub fn bridge_name(physical: &str) -> Result<String, String> {
    if !physical.starts_with(PREFIX) || physical.len() > 15 {
        return Err(format!(
            "the physical network label \"{physical}\" names the bridge: it must start with \"{PREFIX}\" \
             and be at most 15 characters"
        ));
    }
    Ok(physical.to_owned())
}

use crate::exports::wasmstack::driver::network::{NetworkSpec, NicSpec};
use crate::wasmstack::driver::netdev::{self, DhcpConfig, DhcpHost};
use crate::wasmstack::driver::types::DriverError;

/// Where a network's DHCP service lives.
#[derive(Clone, Copy)]
// Each driver uses one of the two.
#[allow(dead_code)]
pub enum DhcpPlace<'a> {
    /// On the host, on this bridge (tagged with the network's VLAN on Open vSwitch).
    Bridge(&'a str),
    /// Inside a namespace, on this device there: networks with the same addresses on
    /// one host then do not clash.
    Namespace { ns: &'a str, device: &'a str },
}

/// Starts the network's DHCP service where `place` says, with these leases.
fn start(net: &NetworkSpec, server: &str, place: DhcpPlace, hosts: Vec<DhcpHost>) -> Result<(), DriverError> {
    let config = |device: &str, vlan: Option<u16>| DhcpConfig {
        name: dhcp_name(&net.id),
        bridge: device.to_owned(),
        vlan,
        server_address: server.to_owned(),
        gateway: net.gateway.clone(),
        dns: net.dns.clone(),
        hosts,
    };
    match place {
        DhcpPlace::Bridge(bridge) => netdev::start_dhcp(&config(bridge, net.vlan)),
        #[cfg(not(feature = "wit-v0-2"))]
        DhcpPlace::Namespace { ns, device } => netdev::start_namespace_dhcp(ns, &config(device, None)),
        // 0.2.0 has no namespaces: only the flat driver is built against it, on a bridge.
        #[cfg(feature = "wit-v0-2")]
        DhcpPlace::Namespace { .. } => Err(DriverError::Unsupported("DHCP in a namespace needs 0.3.0".into())),
    }
}

/// Starts the network's DHCP service where `place` says when it has one and it is not
/// running. A running one keeps its leases: the server may repeat `implement`.
pub fn ensure_dhcp(net: &NetworkSpec, place: DhcpPlace) -> Result<(), DriverError> {
    let Some(server) = &net.dhcp_server else { return Ok(()) };
    // Removing a lease no NIC holds changes nothing; it answers not-found when the service
    // does not exist, and the host restarts a service whose daemon died.
    match netdev::remove_dhcp_host(&dhcp_name(&net.id), NO_NIC_MAC) {
        Err(DriverError::NotFound(_)) => start(net, server, place, vec![]),
        other => other,
    }
}

/// A MAC no NIC has (the zero address is never assigned).
const NO_NIC_MAC: &str = "00:00:00:00:00:00";

/// Serves the NIC's lease, starting the network's DHCP service first if needed. Nothing
/// to do when the network has no DHCP or the NIC no address.
pub fn add_lease(net: &NetworkSpec, nic: &NicSpec, place: DhcpPlace) -> Result<(), DriverError> {
    let (Some(server), Some(ip)) = (&net.dhcp_server, &nic.ip) else { return Ok(()) };
    let host = DhcpHost { mac: nic.mac.clone(), ip: ip.clone(), hostname: nic.hostname.clone() };
    match netdev::add_dhcp_host(&dhcp_name(&net.id), &host) {
        Err(DriverError::NotFound(_)) => start(net, server, place, vec![host]),
        other => other,
    }
}

/// Withdraws the NIC's lease; a network without a running DHCP service has none.
pub fn remove_lease(net: &NetworkSpec, nic: &NicSpec) -> Result<(), DriverError> {
    if net.dhcp_server.is_none() {
        return Ok(());
    }
    match netdev::remove_dhcp_host(&dhcp_name(&net.id), &nic.mac) {
        Err(DriverError::NotFound(_)) => Ok(()),
        other => other,
    }
}
