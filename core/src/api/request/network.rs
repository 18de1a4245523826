//! Typed requests of the networking commands.

use super::{Listing, listing, must, must_uuid, s, uuid};
use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::params::Params;

#[derive(Debug, Clone)]
pub struct NewPhysicalNetworkRequest {
    pub name: String,
    pub zone_id: String,
    pub vlan: Option<String>,
    pub isolation_methods: Option<Vec<String>>,
    pub broadcast_domain_range: Option<String>,
    pub tags: Option<Vec<String>>,
    pub network_speed: Option<String>,
    pub domain_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PhysicalNetworkUpdate {
    pub id: String,
    pub vlan: Option<String>,
    pub remove_vlan: Option<String>,
    pub state: Option<String>,
    pub tags: Option<Vec<String>>,
    pub network_speed: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewNetworkRequest {
    pub name: String,
    pub display_text: Option<String>,
    pub offering_id: String,
    pub zone_id: String,
    pub physical_network_id: Option<String>,
    pub gateway: Option<String>,
    pub netmask: Option<String>,
    pub start_ip: Option<String>,
    pub end_ip: Option<String>,
    pub vlan: Option<String>,
    pub acl_type: Option<String>,
    pub network_domain: Option<String>,
    pub dns1: Option<String>,
    pub dns2: Option<String>,
    pub account: Option<String>,
    pub domain_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NetworkQuery {
    pub id: Option<String>,
    pub name: Option<String>,
    pub zone_id: Option<String>,
    pub guest_type: Option<String>,
    pub traffic_type: Option<String>,
    pub physical_network_id: Option<String>,
    pub is_system: Option<bool>,
    pub listing: Listing,
}

#[derive(Debug, Clone)]
pub struct NetworkUpdate {
    pub id: String,
    pub name: Option<String>,
    pub display_text: Option<String>,
    pub network_domain: Option<String>,
    pub dns1: Option<String>,
    pub dns2: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NetworkOfferingQuery {
    pub id: Option<String>,
    pub name: Option<String>,
    pub guest_ip_type: Option<String>,
    pub traffic_type: Option<String>,
    pub state: Option<String>,
    pub is_default: Option<bool>,
    pub specify_vlan: Option<bool>,
    pub zone_id: Option<String>,
    pub for_vpc: Option<bool>,
    pub keyword: Option<String>,
    pub page: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
pub struct NewIpRangeRequest {
    pub zone_id: Option<String>,
    pub pod_id: Option<String>,
    pub network_id: Option<String>,
    pub physical_network_id: Option<String>,
    pub vlan: Option<String>,
    pub gateway: Option<String>,
    pub netmask: Option<String>,
    pub start_ip: Option<String>,
    pub end_ip: Option<String>,
    pub for_virtual_network: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct IpRangeQuery {
    pub id: Option<String>,
    pub zone_id: Option<String>,
    pub pod_id: Option<String>,
    pub network_id: Option<String>,
    pub physical_network_id: Option<String>,
    pub vlan: Option<String>,
    pub for_virtual_network: Option<bool>,
    pub page: Option<(u32, u32)>,
}

/// One networking command, parsed.
#[derive(Debug, Clone)]
pub enum NetworkRequest {
    CreatePhysicalNetwork(NewPhysicalNetworkRequest),
    ListPhysicalNetworks { id: Option<String>, name: Option<String>, zone_id: Option<String>, listing: Listing },
    UpdatePhysicalNetwork(PhysicalNetworkUpdate),
    DeletePhysicalNetwork { id: String },
    AddTrafficType { physical_network_id: String, traffic_type: String, kvm_label: Option<String> },
    ListTrafficTypes { physical_network_id: String, page: Option<(u32, u32)> },
    DeleteTrafficType { id: String },
    ListNetworkOfferings(NetworkOfferingQuery),
    CreateNetwork(NewNetworkRequest),
    ListNetworks(NetworkQuery),
    UpdateNetwork(NetworkUpdate),
    DeleteNetwork { id: String, forced: bool },
    RestartNetwork { id: String, cleanup: bool },
    ListNics { vm_id: String, nic_id: Option<String>, network_id: Option<String>, page: Option<(u32, u32)> },
    CreateVlanIpRange(NewIpRangeRequest),
    ListVlanIpRanges(IpRangeQuery),
    DeleteVlanIpRange { id: String },
}

/// The networking request for `cmd`, or None when `cmd` is not a networking command.
pub fn parse(cmd: &'static Command, p: &Params) -> Result<Option<NetworkRequest>, ApiError> {
    use NetworkRequest::*;
    Ok(Some(match cmd.name {
        "createPhysicalNetwork" => CreatePhysicalNetwork(NewPhysicalNetworkRequest {
            name: must(p, cmd, "name")?,
            zone_id: must_uuid(p, cmd, "zoneid")?,
            vlan: s(p, "vlan"),
            isolation_methods: p.list("isolationmethods")?,
            broadcast_domain_range: s(p, "broadcastdomainrange"),
            tags: p.list("tags")?,
            network_speed: s(p, "networkspeed"),
            domain_id: uuid(p, "domainid")?,
        }),
        "listPhysicalNetworks" => ListPhysicalNetworks {
            id: uuid(p, "id")?,
            name: s(p, "name"),
            zone_id: uuid(p, "zoneid")?,
            listing: listing(p)?,
        },
        "updatePhysicalNetwork" => UpdatePhysicalNetwork(PhysicalNetworkUpdate {
            id: must_uuid(p, cmd, "id")?,
            vlan: s(p, "vlan"),
            remove_vlan: s(p, "removevlan"),
            state: s(p, "state"),
            tags: p.list("tags")?,
            network_speed: s(p, "networkspeed"),
        }),
        "deletePhysicalNetwork" => DeletePhysicalNetwork { id: must_uuid(p, cmd, "id")? },
        "addTrafficType" => AddTrafficType {
            physical_network_id: must_uuid(p, cmd, "physicalnetworkid")?,
            traffic_type: must(p, cmd, "traffictype")?,
            kvm_label: s(p, "kvmnetworklabel"),
        },
        "listTrafficTypes" => {
            ListTrafficTypes { physical_network_id: must_uuid(p, cmd, "physicalnetworkid")?, page: p.page()? }
        }
        "deleteTrafficType" => DeleteTrafficType { id: must_uuid(p, cmd, "id")? },
        "listNetworkOfferings" => ListNetworkOfferings(NetworkOfferingQuery {
            id: uuid(p, "id")?,
            name: s(p, "name"),
            guest_ip_type: s(p, "guestiptype"),
            traffic_type: s(p, "traffictype"),
            state: s(p, "state"),
            is_default: p.bool("isdefault")?,
            specify_vlan: p.bool("specifyvlan")?,
            zone_id: uuid(p, "zoneid")?,
            for_vpc: p.bool("forvpc")?,
            keyword: s(p, "keyword").filter(|k| !k.is_empty()),
            page: p.page()?,
        }),
        "createNetwork" => CreateNetwork(NewNetworkRequest {
            name: must(p, cmd, "name")?,
            display_text: s(p, "displaytext"),
            offering_id: must_uuid(p, cmd, "networkofferingid")?,
            zone_id: must_uuid(p, cmd, "zoneid")?,
            physical_network_id: uuid(p, "physicalnetworkid")?,
            gateway: s(p, "gateway"),
            netmask: s(p, "netmask"),
            start_ip: s(p, "startip"),
            end_ip: s(p, "endip"),
            vlan: s(p, "vlan"),
            acl_type: s(p, "acltype"),
            network_domain: s(p, "networkdomain"),
            dns1: s(p, "dns1"),
            dns2: s(p, "dns2"),
            account: s(p, "account"),
            domain_id: uuid(p, "domainid")?,
        }),
        "listNetworks" => ListNetworks(NetworkQuery {
            id: uuid(p, "id")?,
            name: s(p, "name"),
            zone_id: uuid(p, "zoneid")?,
            guest_type: s(p, "type"),
            traffic_type: s(p, "traffictype"),
            physical_network_id: uuid(p, "physicalnetworkid")?,
            is_system: p.bool("issystem")?,
            listing: listing(p)?,
        }),
        "updateNetwork" => UpdateNetwork(NetworkUpdate {
            id: must_uuid(p, cmd, "id")?,
            name: s(p, "name"),
            display_text: s(p, "displaytext"),
            network_domain: s(p, "networkdomain"),
            dns1: s(p, "dns1"),
            dns2: s(p, "dns2"),
        }),
        "deleteNetwork" => DeleteNetwork { id: must_uuid(p, cmd, "id")?, forced: p.bool("forced")?.unwrap_or(false) },
        "restartNetwork" => {
            // cleanup: the network's router is destroyed and built anew.
            RestartNetwork { id: must_uuid(p, cmd, "id")?, cleanup: p.bool("cleanup")?.unwrap_or(false) }
        }
        "listNics" => ListNics {
            vm_id: must_uuid(p, cmd, "virtualmachineid")?,
            nic_id: uuid(p, "nicid")?,
            network_id: uuid(p, "networkid")?,
            page: p.page()?,
        },
        "createVlanIpRange" => CreateVlanIpRange(NewIpRangeRequest {
            zone_id: uuid(p, "zoneid")?,
            pod_id: uuid(p, "podid")?,
            network_id: uuid(p, "networkid")?,
            physical_network_id: uuid(p, "physicalnetworkid")?,
            vlan: s(p, "vlan"),
            gateway: s(p, "gateway"),
            netmask: s(p, "netmask"),
            start_ip: s(p, "startip"),
            end_ip: s(p, "endip"),
            for_virtual_network: p.bool("forvirtualnetwork")?,
        }),
        "listVlanIpRanges" => ListVlanIpRanges(IpRangeQuery {
            id: uuid(p, "id")?,
            zone_id: uuid(p, "zoneid")?,
            pod_id: uuid(p, "podid")?,
            network_id: uuid(p, "networkid")?,
            physical_network_id: uuid(p, "physicalnetworkid")?,
            vlan: s(p, "vlan"),
            for_virtual_network: p.bool("forvirtualnetwork")?,
            page: p.page()?,
        }),
        "deleteVlanIpRange" => DeleteVlanIpRange { id: must_uuid(p, cmd, "id")? },
        _ => return Ok(None),
    }))
}
