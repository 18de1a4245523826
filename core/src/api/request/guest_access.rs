//! Typed requests of the guest access commands: SSH key pairs, userdata, passwords.

use std::collections::BTreeMap;

use super::{Listing, listing, must, must_uuid, s, uuid};
use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::params::Params;

/// Who a named thing belongs to: the caller's account unless an account is named.
#[derive(Debug, Clone, Default)]
pub struct OwnerRef {
    pub account: Option<String>,
    pub domain_id: Option<String>,
}

/// Userdata as a request gives it: inline (base64), or stored userdata by id with the
/// values of its variables.
#[derive(Debug, Clone, Default)]
pub struct UserDataInput {
    pub data: Option<String>,
    pub id: Option<String>,
    pub details: BTreeMap<String, String>,
    /// Whether the request came by HTTP POST, which allows more userdata than GET.
    pub posted: bool,
}

/// One guest access command, parsed.
#[derive(Debug, Clone)]
pub enum GuestAccessRequest {
    CreateKeyPair {
        name: String,
        owner: OwnerRef,
    },
    RegisterKeyPair {
        name: String,
        public_key: String,
        owner: OwnerRef,
    },
    ListKeyPairs {
        id: Option<String>,
        name: Option<String>,
        fingerprint: Option<String>,
        listing: Listing,
    },
    DeleteKeyPair {
        name: String,
        owner: OwnerRef,
    },
    ResetKeys {
        vm_id: String,
        names: Vec<String>,
        owner: OwnerRef,
    },
    ResetPassword {
        vm_id: String,
    },
    UpdateVm {
        id: String,
        display_name: Option<String>,
        user_data: UserDataInput,
        /// `securitygroupids` / `securitygroupnames`: only while the VM is stopped.
        security_groups: super::GroupChoice,
    },
    GetUserData {
        vm_id: String,
    },
    RegisterUserData {
        name: String,
        data: String,
        params: Option<String>,
        owner: OwnerRef,
        posted: bool,
    },
    ListUserData {
        id: Option<String>,
        name: Option<String>,
        listing: Listing,
    },
    DeleteUserData {
        id: String,
        owner: OwnerRef,
    },
    LinkUserData {
        template_id: Option<String>,
        iso_id: Option<String>,
        user_data_id: Option<String>,
        policy: Option<String>,
    },
}

fn owner(p: &Params) -> Result<OwnerRef, ApiError> {
    Ok(OwnerRef { account: s(p, "account"), domain_id: uuid(p, "domainid")? })
}

/// `name[0].key=value` maps as one map of key → value; both of CloudStack's forms are
/// read (`[i].key`/`[i].value` pairs, and a field per variable).
pub(super) fn string_map(p: &Params, name: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for entry in p.map(name)?.into_iter().flat_map(|m| m.values()) {
        let field = |f: &str| entry.iter().find(|(k, _)| k.eq_ignore_ascii_case(f)).map(|(_, v)| v.clone());
        match (field("key"), field("value")) {
            (Some(k), Some(v)) if entry.len() == 2 => {
                out.insert(k, v);
            }
            _ => out.extend(entry.iter().map(|(k, v)| (k.clone(), v.clone()))),
        }
    }
    Ok(out)
}

/// The key pair names of `keypair` and `keypairs` together, without repeats.
pub(super) fn key_pair_names(p: &Params) -> Result<Vec<String>, ApiError> {
    let mut names: Vec<String> = Vec::new();
    let given = s(p, "keypair").into_iter().chain(p.list("keypairs")?.unwrap_or_default());
    for n in given.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    Ok(names)
}

pub(super) fn user_data_input(p: &Params) -> Result<UserDataInput, ApiError> {
    Ok(UserDataInput {
        data: s(p, "userdata"),
        id: uuid(p, "userdataid")?,
        details: string_map(p, "userdatadetails")?,
        posted: p.posted(),
    })
}

/// The guest access request for `cmd`, or None when `cmd` is not one.
pub fn parse(cmd: &'static Command, p: &Params) -> Result<Option<GuestAccessRequest>, ApiError> {
    use GuestAccessRequest::*;
    Ok(Some(match cmd.name {
        "createSSHKeyPair" => CreateKeyPair { name: must(p, cmd, "name")?, owner: owner(p)? },
        "registerSSHKeyPair" => {
            RegisterKeyPair { name: must(p, cmd, "name")?, public_key: must(p, cmd, "publickey")?, owner: owner(p)? }
        }
        "listSSHKeyPairs" => ListKeyPairs {
            id: uuid(p, "id")?,
            name: s(p, "name"),
            fingerprint: s(p, "fingerprint"),
            listing: listing(p)?,
        },
        "deleteSSHKeyPair" => DeleteKeyPair { name: must(p, cmd, "name")?, owner: owner(p)? },
        "resetSSHKeyForVirtualMachine" => {
            ResetKeys { vm_id: must_uuid(p, cmd, "id")?, names: key_pair_names(p)?, owner: owner(p)? }
        }
        "resetPasswordForVirtualMachine" => ResetPassword { vm_id: must_uuid(p, cmd, "id")? },
        "updateVirtualMachine" => UpdateVm {
            id: must_uuid(p, cmd, "id")?,
            display_name: s(p, "displayname"),
            user_data: user_data_input(p)?,
            security_groups: super::security_groups::group_choice(p)?,
        },
        "getVirtualMachineUserData" => GetUserData { vm_id: must_uuid(p, cmd, "virtualmachineid")? },
        "registerUserData" => RegisterUserData {
            name: must(p, cmd, "name")?,
            data: must(p, cmd, "userdata")?,
            params: s(p, "params"),
            owner: owner(p)?,
            posted: p.posted(),
        },
        "listUserData" => ListUserData { id: uuid(p, "id")?, name: s(p, "name"), listing: listing(p)? },
        "deleteUserData" => DeleteUserData { id: must_uuid(p, cmd, "id")?, owner: owner(p)? },
        "linkUserDataToTemplate" => LinkUserData {
            template_id: uuid(p, "templateid")?,
            iso_id: uuid(p, "isoid")?,
            user_data_id: uuid(p, "userdataid")?,
            policy: s(p, "userdatapolicy"),
        },
        _ => return Ok(None),
    }))
}
