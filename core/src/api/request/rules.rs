//! Typed requests of the router's rules: firewall, egress, port forwarding, load balancing.

use super::{Listing, listing, must, must_uuid, s, uuid};
use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::params::Params;

/// createFirewallRule (ingress on `ip_id`) or createEgressFirewallRule (on `network_id`).
#[derive(Debug, Clone)]
pub struct NewFirewallRequest {
    pub ip_id: Option<String>,
    pub network_id: Option<String>,
    pub protocol: String,
    pub start_port: Option<i32>,
    pub end_port: Option<i32>,
    pub cidrs: Option<Vec<String>>,
    pub dest_cidrs: Option<Vec<String>>,
    pub icmp_type: Option<i32>,
    pub icmp_code: Option<i32>,
    pub for_display: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct NewForwardRequest {
    pub ip_id: String,
    pub private_port: i32,
    pub private_end_port: Option<i32>,
    pub public_port: i32,
    pub public_end_port: Option<i32>,
    pub protocol: String,
    pub vm_id: String,
    pub vm_guest_ip: Option<String>,
    /// cidrlist was sent: CloudStack refuses it (deprecated).
    pub cidrs_given: bool,
    pub open_firewall: Option<bool>,
    pub network_id: Option<String>,
    pub for_display: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct ForwardUpdate {
    pub id: String,
    pub private_port: Option<i32>,
    pub private_end_port: Option<i32>,
    pub vm_id: Option<String>,
    pub vm_guest_ip: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewBalancerRequest {
    pub name: String,
    pub algorithm: String,
    pub private_port: i32,
    pub public_port: i32,
    pub public_ip_id: Option<String>,
    pub network_id: Option<String>,
    pub zone_id: Option<String>,
    pub description: Option<String>,
    pub protocol: Option<String>,
    pub cidrs: Option<Vec<String>>,
    pub open_firewall: Option<bool>,
    pub for_display: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct BalancerUpdate {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub algorithm: Option<String>,
}

/// The VMs (and guest addresses) of assignToLoadBalancerRule / removeFromLoadBalancerRule.
#[derive(Debug, Clone, Default)]
pub struct Members {
    pub vm_ids: Option<Vec<String>>,
    /// vmidipmap entries: (VM id, guest address).
    pub vm_ips: Vec<(String, String)>,
}

/// Filters of the rule listings.
#[derive(Debug, Clone, Default)]
pub struct RuleQuery {
    pub id: Option<String>,
    pub ip_id: Option<String>,
    pub network_id: Option<String>,
    pub vm_id: Option<String>,
    pub name: Option<String>,
    pub zone_id: Option<String>,
    pub listing: Listing,
}

/// One rules command, parsed.
#[derive(Debug, Clone)]
pub enum RulesRequest {
    CreateFirewall(NewFirewallRequest),
    DeleteFirewall { id: String },
    ListFirewall(RuleQuery),
    CreateEgress(NewFirewallRequest),
    DeleteEgress { id: String },
    ListEgress(RuleQuery),
    CreateForward(NewForwardRequest),
    DeleteForward { id: String },
    ListForwards(RuleQuery),
    UpdateForward(ForwardUpdate),
    CreateBalancer(NewBalancerRequest),
    DeleteBalancer { id: String },
    ListBalancers(RuleQuery),
    UpdateBalancer(BalancerUpdate),
    Assign { id: String, members: Members },
    Remove { id: String, members: Members },
    ListInstances { id: String, applied: bool, vm_ips: bool, page: Option<(u32, u32)> },
}

fn members(p: &Params) -> Result<Members, ApiError> {
    let mut vm_ips = Vec::new();
    for entry in p.map("vmidipmap")?.into_iter().flat_map(|m| m.values()) {
        let field = |f: &str| entry.iter().find(|(k, _)| k.eq_ignore_ascii_case(f)).map(|(_, v)| v.clone());
        match (field("vmid"), field("vmip")) {
            (Some(vm), Some(ip)) => vm_ips.push((vm, ip)),
            _ => return Err(ApiError::invalid_param("Each vmidipmap entry needs vmid and vmip")),
        }
    }
    Ok(Members { vm_ids: p.uuid_list("virtualmachineids")?, vm_ips })
}

fn firewall(p: &Params, cmd: &Command, egress: bool) -> Result<NewFirewallRequest, ApiError> {
    Ok(NewFirewallRequest {
        ip_id: if egress { None } else { Some(must_uuid(p, cmd, "ipaddressid")?) },
        network_id: if egress { Some(must_uuid(p, cmd, "networkid")?) } else { None },
        protocol: must(p, cmd, "protocol")?.trim().to_owned(),
        start_port: p.int("startport")?,
        end_port: p.int("endport")?,
        cidrs: p.list("cidrlist")?,
        dest_cidrs: p.list("destcidrlist")?,
        icmp_type: p.int("icmptype")?,
        icmp_code: p.int("icmpcode")?,
        for_display: p.bool("fordisplay")?,
    })
}

fn query(p: &Params) -> Result<RuleQuery, ApiError> {
    Ok(RuleQuery {
        id: uuid(p, "id")?,
        ip_id: match uuid(p, "ipaddressid")? {
            Some(ip) => Some(ip),
            None => uuid(p, "publicipid")?,
        },
        network_id: uuid(p, "networkid")?,
        vm_id: uuid(p, "virtualmachineid")?,
        name: s(p, "name"),
        zone_id: uuid(p, "zoneid")?,
        listing: listing(p)?,
    })
}

fn required_int(p: &Params, cmd: &Command, name: &str) -> Result<i32, ApiError> {
    p.int(name)?.ok_or_else(|| ApiError::missing_param(&cmd.name.to_ascii_lowercase(), name))
}

/// The rules request for `cmd`, or None when `cmd` is not one.
pub fn parse(cmd: &'static Command, p: &Params) -> Result<Option<RulesRequest>, ApiError> {
    use RulesRequest::*;
    let id = || must_uuid(p, cmd, "id");
    Ok(Some(match cmd.name {
        "createFirewallRule" => CreateFirewall(firewall(p, cmd, false)?),
        "deleteFirewallRule" => DeleteFirewall { id: id()? },
        "listFirewallRules" => ListFirewall(query(p)?),
        "createEgressFirewallRule" => CreateEgress(firewall(p, cmd, true)?),
        "deleteEgressFirewallRule" => DeleteEgress { id: id()? },
        "listEgressFirewallRules" => ListEgress(query(p)?),
        "createPortForwardingRule" => CreateForward(NewForwardRequest {
            ip_id: must_uuid(p, cmd, "ipaddressid")?,
            private_port: required_int(p, cmd, "privateport")?,
            private_end_port: p.int("privateendport")?,
            public_port: required_int(p, cmd, "publicport")?,
            public_end_port: p.int("publicendport")?,
            protocol: must(p, cmd, "protocol")?.trim().to_owned(),
            vm_id: must_uuid(p, cmd, "virtualmachineid")?,
            vm_guest_ip: s(p, "vmguestip"),
            cidrs_given: p.get("cidrlist").is_some(),
            open_firewall: p.bool("openfirewall")?,
            network_id: uuid(p, "networkid")?,
            for_display: p.bool("fordisplay")?,
        }),
        "deletePortForwardingRule" => DeleteForward { id: id()? },
        "listPortForwardingRules" => ListForwards(query(p)?),
        "updatePortForwardingRule" => UpdateForward(ForwardUpdate {
            id: id()?,
            private_port: p.int("privateport")?,
            private_end_port: p.int("privateendport")?,
            vm_id: uuid(p, "virtualmachineid")?,
            vm_guest_ip: s(p, "vmguestip"),
        }),
        "createLoadBalancerRule" => CreateBalancer(NewBalancerRequest {
            name: must(p, cmd, "name")?,
            algorithm: must(p, cmd, "algorithm")?,
            private_port: required_int(p, cmd, "privateport")?,
            public_port: required_int(p, cmd, "publicport")?,
            public_ip_id: uuid(p, "publicipid")?,
            network_id: uuid(p, "networkid")?,
            zone_id: uuid(p, "zoneid")?,
            description: s(p, "description"),
            protocol: s(p, "protocol"),
            cidrs: p.list("cidrlist")?,
            open_firewall: p.bool("openfirewall")?,
            for_display: p.bool("fordisplay")?,
        }),
        "deleteLoadBalancerRule" => DeleteBalancer { id: id()? },
        "listLoadBalancerRules" => ListBalancers(query(p)?),
        "updateLoadBalancerRule" => UpdateBalancer(BalancerUpdate {
            id: id()?,
            name: s(p, "name"),
            description: s(p, "description"),
            algorithm: s(p, "algorithm"),
        }),
        "assignToLoadBalancerRule" => Assign { id: id()?, members: members(p)? },
        "removeFromLoadBalancerRule" => Remove { id: id()?, members: members(p)? },
        "listLoadBalancerRuleInstances" => ListInstances {
            id: id()?,
            applied: p.bool("applied")?.unwrap_or(true),
            vm_ips: p.bool("lbvmips")?.unwrap_or(false),
            page: p.page()?,
        },
        _ => return Ok(None),
    }))
}
