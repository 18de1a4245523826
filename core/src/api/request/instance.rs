//! Typed requests of the virtual machine commands.

use super::{Listing, UserDataInput, listing, must_uuid, s, uuid};
use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::params::Params;

#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub service_offering_id: String,
    pub zone_id: String,
    pub template_id: Option<String>,
    pub network_ids: Vec<String>,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub start: bool,
    pub ip_address: Option<String>,
    pub user_data: UserDataInput,
    /// Key pair names from `keypair` and `keypairs`.
    pub key_pairs: Vec<String>,
    /// `securitygroupids` / `securitygroupnames`.
    pub security_groups: super::GroupChoice,
    pub hypervisor: Option<String>,
    pub account: Option<String>,
    pub domain_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct InstanceQuery {
    pub id: Option<String>,
    pub name: Option<String>,
    pub state: Option<String>,
    pub zone_id: Option<String>,
    pub host_id: Option<String>,
    pub listing: Listing,
}

/// One virtual machine command, parsed.
#[derive(Debug, Clone)]
pub enum InstanceRequest {
    Deploy(DeployRequest),
    Start { id: String },
    Stop { id: String, forced: bool },
    Reboot { id: String, forced: bool },
    Destroy { id: String, expunge: bool },
    Expunge { id: String },
    Recover { id: String },
    List(InstanceQuery),
    AttachVolume { id: String, vm_id: String, device_id: Option<i64> },
    DetachVolume { id: Option<String>, vm_id: Option<String>, device_id: Option<i64> },
    ListAddressing(AddressQuery),
    Scale { id: String, offering_id: String },
    Migrate { vm_id: String, host_id: Option<String> },
    HostsForMigration { vm_id: String },
    AttachIso { id: String, vm_id: String },
    DetachIso { vm_id: String },
}

/// A listing of public addresses or forwarding rules.
#[derive(Debug, Clone)]
pub struct AddressQuery {
    /// The response's object name.
    pub object: &'static str,
    pub zone_id: Option<String>,
    pub vm_id: Option<String>,
    pub listing: Listing,
}

/// The virtual machine request for `cmd`, or None when `cmd` is not one.
pub fn parse(cmd: &'static Command, p: &Params) -> Result<Option<InstanceRequest>, ApiError> {
    use InstanceRequest::*;
    let forced = || -> Result<bool, ApiError> { Ok(p.bool("forced")?.unwrap_or(false)) };
    Ok(Some(match cmd.name {
        "deployVirtualMachine" => Deploy(DeployRequest {
            service_offering_id: must_uuid(p, cmd, "serviceofferingid")?,
            zone_id: must_uuid(p, cmd, "zoneid")?,
            template_id: uuid(p, "templateid")?,
            network_ids: p.list("networkids")?.unwrap_or_default(),
            name: s(p, "name"),
            display_name: s(p, "displayname"),
            start: p.bool("startvm")?.unwrap_or(true),
            ip_address: s(p, "ipaddress"),
            user_data: super::guest_access::user_data_input(p)?,
            key_pairs: super::guest_access::key_pair_names(p)?,
            security_groups: super::security_groups::group_choice(p)?,
            hypervisor: s(p, "hypervisor"),
            account: s(p, "account"),
            domain_id: uuid(p, "domainid")?,
        }),
        "startVirtualMachine" => Start { id: must_uuid(p, cmd, "id")? },
        "stopVirtualMachine" => Stop { id: must_uuid(p, cmd, "id")?, forced: forced()? },
        "rebootVirtualMachine" => Reboot { id: must_uuid(p, cmd, "id")?, forced: forced()? },
        "destroyVirtualMachine" => {
            Destroy { id: must_uuid(p, cmd, "id")?, expunge: p.bool("expunge")?.unwrap_or(false) }
        }
        "expungeVirtualMachine" => Expunge { id: must_uuid(p, cmd, "id")? },
        "recoverVirtualMachine" => Recover { id: must_uuid(p, cmd, "id")? },
        "listVirtualMachines" => List(InstanceQuery {
            id: uuid(p, "id")?,
            name: s(p, "name"),
            state: s(p, "state"),
            zone_id: uuid(p, "zoneid")?,
            host_id: uuid(p, "hostid")?,
            listing: listing(p)?,
        }),
        "attachVolume" => AttachVolume {
            id: must_uuid(p, cmd, "id")?,
            vm_id: must_uuid(p, cmd, "virtualmachineid")?,
            device_id: p.long("deviceid")?,
        },
        "detachVolume" => {
            DetachVolume { id: uuid(p, "id")?, vm_id: uuid(p, "virtualmachineid")?, device_id: p.long("deviceid")? }
        }
        "scaleVirtualMachine" => {
            Scale { id: must_uuid(p, cmd, "id")?, offering_id: must_uuid(p, cmd, "serviceofferingid")? }
        }
        "migrateVirtualMachine" => {
            Migrate { vm_id: must_uuid(p, cmd, "virtualmachineid")?, host_id: uuid(p, "hostid")? }
        }
        "findHostsForMigration" => HostsForMigration { vm_id: must_uuid(p, cmd, "id")? },
        "attachIso" => AttachIso { id: must_uuid(p, cmd, "id")?, vm_id: must_uuid(p, cmd, "virtualmachineid")? },
        "detachIso" => DetachIso { vm_id: must_uuid(p, cmd, "virtualmachineid")? },
        "listIpForwardingRules" => ListAddressing(AddressQuery {
            object: "ipforwardingrule",
            zone_id: uuid(p, "zoneid")?,
            vm_id: uuid(p, "virtualmachineid")?,
            listing: listing(p)?,
        }),
        _ => return Ok(None),
    }))
}
