//! Typed requests of the security group commands.

use super::{Listing, OwnerRef, listing, must, must_uuid, s, uuid};
use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::params::Params;

/// Ingress (traffic to the member) or egress (traffic from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// `usersecuritygrouplist` entries: (account, group), either possibly missing.
pub type UserGroups = Vec<(Option<String>, Option<String>)>;

/// One authorizeSecurityGroupIngress/Egress call: the rule's fields as given; the
/// orchestrator checks them as CloudStack does, in CloudStack's order.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub direction: Direction,
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub protocol: Option<String>,
    pub start_port: Option<i32>,
    pub end_port: Option<i32>,
    pub icmp_type: Option<i32>,
    pub icmp_code: Option<i32>,
    pub cidrs: Option<Vec<String>>,
    /// `usersecuritygrouplist[i].account` and `.group`, as given (either may be missing).
    pub groups: Option<UserGroups>,
    pub owner: OwnerRef,
}

/// One security group command, parsed.
#[derive(Debug, Clone)]
pub enum SecurityGroupRequest {
    Create { name: String, description: Option<String>, owner: OwnerRef },
    Delete { id: Option<String>, name: Option<String>, owner: OwnerRef },
    List { id: Option<String>, name: Option<String>, vm_id: Option<String>, listing: Listing },
    Authorize(AuthorizeRequest),
    Revoke { id: String, direction: Direction },
}

fn owner(p: &Params) -> Result<OwnerRef, ApiError> {
    Ok(OwnerRef { account: s(p, "account"), domain_id: uuid(p, "domainid")? })
}

/// `usersecuritygrouplist[i].account` / `.group` pairs, in index order.
fn user_groups(p: &Params) -> Result<Option<UserGroups>, ApiError> {
    let Some(map) = p.map("usersecuritygrouplist")? else {
        return Ok(None);
    };
    let field = |entry: &std::collections::BTreeMap<String, String>, f: &str| {
        entry.iter().find(|(k, _)| k.eq_ignore_ascii_case(f)).map(|(_, v)| v.trim().to_owned())
    };
    Ok(Some(map.values().map(|entry| (field(entry, "account"), field(entry, "group"))).collect()))
}

/// The groups a deploy or update names: by id or by name (both is CloudStack's 431).
#[derive(Debug, Clone, Default)]
pub struct GroupChoice {
    pub ids: Option<Vec<String>>,
    pub names: Option<Vec<String>>,
}

impl GroupChoice {
    pub fn given(&self) -> bool {
        self.ids.is_some() || self.names.is_some()
    }
}

pub(super) fn group_choice(p: &Params) -> Result<GroupChoice, ApiError> {
    Ok(GroupChoice { ids: p.uuid_list("securitygroupids")?, names: p.list("securitygroupnames")? })
}

/// The security group request for `cmd`, or None when `cmd` is not one.
pub fn parse(cmd: &'static Command, p: &Params) -> Result<Option<SecurityGroupRequest>, ApiError> {
    use SecurityGroupRequest::*;
    let authorize = |direction| -> Result<SecurityGroupRequest, ApiError> {
        Ok(Authorize(AuthorizeRequest {
            direction,
            group_id: uuid(p, "securitygroupid")?,
            group_name: s(p, "securitygroupname"),
            protocol: s(p, "protocol"),
            start_port: p.int("startport")?,
            end_port: p.int("endport")?,
            icmp_type: p.int("icmptype")?,
            icmp_code: p.int("icmpcode")?,
            cidrs: p.list("cidrlist")?.map(|l| l.into_iter().map(|c| c.trim().to_owned()).collect()),
            groups: user_groups(p)?,
            owner: owner(p)?,
        }))
    };
    Ok(Some(match cmd.name {
        "createSecurityGroup" => {
            Create { name: must(p, cmd, "name")?, description: s(p, "description"), owner: owner(p)? }
        }
        "deleteSecurityGroup" => Delete { id: uuid(p, "id")?, name: s(p, "name"), owner: owner(p)? },
        "listSecurityGroups" => List {
            id: uuid(p, "id")?,
            name: s(p, "securitygroupname"),
            vm_id: uuid(p, "virtualmachineid")?,
            listing: listing(p)?,
        },
        "authorizeSecurityGroupIngress" => authorize(Direction::Ingress)?,
        "authorizeSecurityGroupEgress" => authorize(Direction::Egress)?,
        "revokeSecurityGroupIngress" => Revoke { id: must_uuid(p, cmd, "id")?, direction: Direction::Ingress },
        "revokeSecurityGroupEgress" => Revoke { id: must_uuid(p, cmd, "id")?, direction: Direction::Egress },
        _ => return Ok(None),
    }))
}
