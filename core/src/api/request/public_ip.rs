//! Typed requests of the public IP commands: addresses, static NAT, and routers.

use super::{Listing, listing, must_uuid, s, uuid};
use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::params::Params;

#[derive(Debug, Clone, Default)]
pub struct PublicIpQuery {
    pub id: Option<String>,
    pub ip_address: Option<String>,
    pub allocated_only: Option<bool>,
    pub state: Option<String>,
    pub for_virtual_network: Option<bool>,
    pub vlan_id: Option<String>,
    pub zone_id: Option<String>,
    pub physical_network_id: Option<String>,
    pub associated_network_id: Option<String>,
    pub source_nat: Option<bool>,
    pub static_nat: Option<bool>,
    pub vpc_id: Option<String>,
    pub for_display: Option<bool>,
    pub listing: Listing,
}

#[derive(Debug, Clone, Default)]
pub struct RouterQuery {
    pub id: Option<String>,
    pub name: Option<String>,
    pub state: Option<String>,
    pub zone_id: Option<String>,
    pub host_id: Option<String>,
    pub network_id: Option<String>,
    pub vpc_id: Option<String>,
    pub listing: Listing,
}

/// What a router command does to the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterAction {
    Start,
    Stop,
    Reboot,
    Destroy,
}

/// One public IP command, parsed.
#[derive(Debug, Clone)]
pub enum PublicIpRequest {
    List(PublicIpQuery),
    Associate {
        zone_id: Option<String>,
        network_id: Option<String>,
        vpc_id: Option<String>,
        account: Option<String>,
        domain_id: Option<String>,
        for_display: Option<bool>,
    },
    /// By id or by address (one of them, checked when executed).
    Disassociate {
        id: Option<String>,
        ip_address: Option<String>,
    },
    Update {
        id: String,
        for_display: Option<bool>,
    },
    EnableStaticNat {
        ip_id: String,
        vm_id: String,
        network_id: Option<String>,
        vm_guest_ip: Option<String>,
    },
    DisableStaticNat {
        ip_id: String,
    },
    ListRouters(RouterQuery),
    Router {
        id: String,
        action: RouterAction,
    },
}

/// The public IP request for `cmd`, or None when `cmd` is not one.
pub fn parse(cmd: &'static Command, p: &Params) -> Result<Option<PublicIpRequest>, ApiError> {
    use PublicIpRequest::*;
    Ok(Some(match cmd.name {
        "listPublicIpAddresses" => List(PublicIpQuery {
            id: uuid(p, "id")?,
            ip_address: s(p, "ipaddress"),
            allocated_only: p.bool("allocatedonly")?,
            state: s(p, "state"),
            for_virtual_network: p.bool("forvirtualnetwork")?,
            vlan_id: uuid(p, "vlanid")?,
            zone_id: uuid(p, "zoneid")?,
            physical_network_id: uuid(p, "physicalnetworkid")?,
            associated_network_id: uuid(p, "associatednetworkid")?,
            source_nat: p.bool("issourcenat")?,
            static_nat: p.bool("isstaticnat")?,
            vpc_id: uuid(p, "vpcid")?,
            for_display: p.bool("fordisplay")?,
            listing: listing(p)?,
        }),
        "associateIpAddress" => Associate {
            zone_id: uuid(p, "zoneid")?,
            network_id: uuid(p, "networkid")?,
            vpc_id: uuid(p, "vpcid")?,
            account: s(p, "account"),
            domain_id: uuid(p, "domainid")?,
            for_display: p.bool("fordisplay")?,
        },
        "disassociateIpAddress" => Disassociate { id: uuid(p, "id")?, ip_address: s(p, "ipaddress") },
        "updateIpAddress" => Update { id: must_uuid(p, cmd, "id")?, for_display: p.bool("fordisplay")? },
        "enableStaticNat" => EnableStaticNat {
            ip_id: must_uuid(p, cmd, "ipaddressid")?,
            vm_id: must_uuid(p, cmd, "virtualmachineid")?,
            network_id: uuid(p, "networkid")?,
            vm_guest_ip: s(p, "vmguestip"),
        },
        "disableStaticNat" => DisableStaticNat { ip_id: must_uuid(p, cmd, "ipaddressid")? },
        "listRouters" => ListRouters(RouterQuery {
            id: uuid(p, "id")?,
            name: s(p, "name"),
            state: s(p, "state"),
            zone_id: uuid(p, "zoneid")?,
            host_id: uuid(p, "hostid")?,
            network_id: uuid(p, "networkid")?,
            vpc_id: uuid(p, "vpcid")?,
            listing: listing(p)?,
        }),
        "startRouter" => Router { id: must_uuid(p, cmd, "id")?, action: RouterAction::Start },
        "stopRouter" => Router { id: must_uuid(p, cmd, "id")?, action: RouterAction::Stop },
        "rebootRouter" => Router { id: must_uuid(p, cmd, "id")?, action: RouterAction::Reboot },
        "destroyRouter" => Router { id: must_uuid(p, cmd, "id")?, action: RouterAction::Destroy },
        _ => return Ok(None),
    }))
}
