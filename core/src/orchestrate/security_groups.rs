//! Security groups: createSecurityGroup, deleteSecurityGroup, listSecurityGroups,
//! authorizeSecurityGroupIngress/Egress, revokeSecurityGroupIngress/Egress, the groups of
//! instances (deployVirtualMachine, updateVirtualMachine), and the per-NIC rule sets the
//! network driver enforces.
//!
//! Semantics are CloudStack's: a NIC of a member instance takes in only what an ingress
//! rule of one of its groups allows (the `default` group has none: ingress closed), and
//! sends anything while its groups have no egress rule at all, else only what an egress
//! rule allows. Rules are stateful: replies to allowed traffic pass. A rule naming a group
//! allows the addresses of that group's members on a host, so it follows membership.
//!
//! Every change that alters a rule set ends in [`Orchestrator::security_changed`], the seam
//! where the network driver is told.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use serde_json::{Map, Value, json};

use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{AuthorizeRequest, Direction, GroupChoice, Listing, OwnerRef, SecurityGroupRequest};
use crate::auth::Caller;
use crate::auth::store;
use crate::cloud::networks::{NetworkRow, int_to_ip};
use crate::cloud::security_groups::{
    self as sg, DEFAULT_GROUP, GroupFilter, GroupRow, MemberNic, NewRule, RuleRow, SecurityGroupError,
};
use crate::db::{Db, DbError};
use crate::jobs::JobSpec;

use super::{Orchestrator, list, object, views};

fn invalid(text: impl Into<String>) -> ApiError {
    ApiError::invalid_param(text)
}

// ---------------------------------------------------------------- rule values

/// A rule's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    All,
    /// Any other IP protocol, by number (no ports).
    Number(u8),
}

impl Protocol {
    /// The stored form: `tcp`, `udp`, `icmp`, `all`, or the number.
    pub fn as_text(self) -> String {
        match self {
            Protocol::Tcp => "tcp".into(),
            Protocol::Udp => "udp".into(),
            Protocol::Icmp => "icmp".into(),
            Protocol::All => "all".into(),
            Protocol::Number(n) => n.to_string(),
        }
    }

    fn from_text(s: &str) -> Option<Protocol> {
        Some(match s {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "icmp" => Protocol::Icmp,
            "all" => Protocol::All,
            n => Protocol::Number(n.parse().ok()?),
        })
    }
}

/// One rule of a NIC's set, ready for a driver: every group reference resolved to the
/// member NICs' addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRule {
    pub protocol: Protocol,
    /// The port range of a tcp/udp rule.
    pub ports: Option<(u16, u16)>,
    /// An ICMP rule's (type, code); `None` in either place means any.
    pub icmp: Option<(Option<u8>, Option<u8>)>,
    /// The peers allowed: normalised CIDRs (the network address, then the prefix), a
    /// member NIC as a /32.
    pub cidrs: Vec<String>,
}

/// What one NIC enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicRules {
    pub nic: String,
    pub instance: String,
    pub mac: String,
    pub ip: Option<Ipv4Addr>,
    /// Traffic to the NIC that is let in; anything else is dropped.
    pub ingress: Vec<ResolvedRule>,
    /// Traffic from the NIC that is let out when `egress_open` is false.
    pub egress: Vec<ResolvedRule>,
    /// None of the NIC's groups has an egress rule: everything goes out (CloudStack's
    /// default). Once one has, only what the egress rules allow does.
    pub egress_open: bool,
}

/// A CIDR in its normal form (host bits cleared), or None when it is not one.
pub fn normal_cidr(cidr: &str) -> Option<String> {
    let (addr, prefix) = cidr.trim().split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) if prefix <= 32 => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            Some(format!("{}/{prefix}", Ipv4Addr::from(u32::from(a) & mask)))
        }
        IpAddr::V6(a) if prefix <= 128 => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
            Some(format!("{}/{prefix}", std::net::Ipv6Addr::from(u128::from(a) & mask)))
        }
        _ => None,
    }
}

/// How Java prints an optional integer.
fn java(v: Option<i32>) -> String {
    v.map_or("null".into(), |v| v.to_string())
}

/// A rule's protocol and ports/ICMP fields checked as CloudStack checks them, in its
/// order and with its texts: (protocol, start port, end port, icmp type, icmp code).
#[allow(clippy::type_complexity)]
pub fn check_rule(
    protocol: Option<&str>,
    start: Option<i32>,
    end: Option<i32>,
    icmp_type: Option<i32>,
    icmp_code: Option<i32>,
) -> Result<(Protocol, Option<i64>, Option<i64>, Option<i64>, Option<i64>), ApiError> {
    let given = protocol.unwrap_or("all").trim().to_ascii_lowercase();
    let (mut icmp_type, mut icmp_code) = (icmp_type, icmp_code);
    let proto = if !given.is_empty() && given.bytes().all(|b| b.is_ascii_digit()) {
        match given.parse::<u32>() {
            // ICMP by number is ICMP of any type and code.
            Ok(1) => {
                (icmp_type, icmp_code) = (Some(-1), Some(-1));
                Protocol::Icmp
            }
            Ok(n) if n <= 255 => Protocol::Number(n as u8),
            _ => return Err(invalid(format!("Invalid protocol number: {given}"))),
        }
    } else {
        Protocol::from_text(&given)
            .filter(|p| !matches!(p, Protocol::Number(_)))
            .ok_or_else(|| invalid(format!("Invalid protocol {given}")))?
    };
    match proto {
        Protocol::Icmp => {
            let (Some(t), Some(c)) = (icmp_type, icmp_code) else {
                return Err(invalid(format!(
                    "Invalid ICMP type/code specified, icmpType = {}, icmpCode = {}",
                    java(icmp_type),
                    java(icmp_code)
                )));
            };
            if t == -1 && c != -1 {
                return Err(invalid("Invalid icmp code"));
            }
            if t != -1 && c == -1 {
                return Err(invalid("Invalid icmp code: need non-negative icmp code "));
            }
            if c > 255 || t > 255 || c < -1 || t < -1 {
                return Err(invalid("Invalid icmp type/code "));
            }
            Ok((proto, None, None, Some(t.into()), Some(c.into())))
        }
        Protocol::All => {
            if start.is_some() || end.is_some() {
                return Err(invalid("Cannot specify startPort or endPort without specifying protocol"));
            }
            Ok((proto, None, None, None, None))
        }
        Protocol::Tcp | Protocol::Udp => {
            let (Some(s), Some(mut e)) = (start, end) else {
                return Err(invalid(format!(
                    "Invalid port range specified, startPort = {}, endPort = {}",
                    java(start),
                    java(end)
                )));
            };
            if s == 0 && e == 0 {
                e = 65535;
            }
            if s > e {
                return Err(invalid(format!("Invalid port range {s}:{e}")));
            }
            if s > 65535 || e > 65535 || s < -1 || e < -1 {
                return Err(invalid(format!("Invalid port numbers {s}:{e}")));
            }
            if s < 0 || e < 0 {
                return Err(invalid(format!("Invalid port range {s}:{e}")));
            }
            Ok((proto, Some(s.into()), Some(e.into()), None, None))
        }
        // Other protocols have no ports (CloudStack ignores them).
        Protocol::Number(_) => Ok((proto, None, None, None, None)),
    }
}

// ---------------------------------------------------------------- resolution

/// The rule sets of NICs, from: the NICs (one row per NIC and group of its instance), the
/// rules of those groups, and the addresses of each referenced group's members.
pub fn resolve(nics: &[MemberNic], rules: &[RuleRow], members: &HashMap<i64, Vec<Ipv4Addr>>) -> Vec<NicRules> {
    let mut by_nic: BTreeMap<&str, (&MemberNic, Vec<i64>)> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for n in nics {
        let entry = by_nic.entry(&n.nic_uuid).or_insert_with(|| {
            order.push(&n.nic_uuid);
            (n, Vec::new())
        });
        if !entry.1.contains(&n.group_id) {
            entry.1.push(n.group_id);
        }
    }
    let mut out = Vec::new();
    for uuid in order {
        let (nic, groups) = &by_nic[uuid];
        let mine: Vec<&RuleRow> = rules.iter().filter(|r| groups.contains(&r.group_id)).collect();
        let mut set = NicRules {
            nic: nic.nic_uuid.clone(),
            instance: nic.instance_uuid.clone(),
            mac: nic.mac.clone(),
            ip: nic.ip_address.map(int_to_ip),
            ingress: Vec::new(),
            egress: Vec::new(),
            egress_open: !mine.iter().any(|r| r.direction == "egress"),
        };
        for r in mine {
            let Some(resolved) = resolve_rule(r, members) else { continue };
            let list = if r.direction == "egress" { &mut set.egress } else { &mut set.ingress };
            // One entry per distinct match: rules that differ only in their peers merge.
            match list
                .iter_mut()
                .find(|x| x.protocol == resolved.protocol && x.ports == resolved.ports && x.icmp == resolved.icmp)
            {
                Some(x) => {
                    for c in resolved.cidrs {
                        if !x.cidrs.contains(&c) {
                            x.cidrs.push(c);
                        }
                    }
                }
                None => list.push(resolved),
            }
        }
        out.push(set);
    }
    out
}

/// One stored rule, resolved; None when it allows no one (a group with no member on a host).
fn resolve_rule(r: &RuleRow, members: &HashMap<i64, Vec<Ipv4Addr>>) -> Option<ResolvedRule> {
    let protocol = Protocol::from_text(&r.protocol)?;
    let cidrs: Vec<String> = match (r.ref_group_id, &r.cidr) {
        (Some(g), _) => members.get(&g).map_or(Vec::new(), |ips| ips.iter().map(|ip| format!("{ip}/32")).collect()),
        (None, Some(c)) => normal_cidr(c).into_iter().collect(),
        (None, None) => Vec::new(),
    };
    if cidrs.is_empty() {
        return None;
    }
    let port = |p: Option<i64>| p.and_then(|p| u16::try_from(p).ok());
    let icmp_part = |v: Option<i64>| v.and_then(|v| u8::try_from(v).ok());
    Some(ResolvedRule {
        protocol,
        ports: match protocol {
            Protocol::Tcp | Protocol::Udp => port(r.start_port).zip(port(r.end_port)),
            _ => None,
        },
        icmp: match protocol {
            Protocol::Icmp => Some((icmp_part(r.icmp_type), icmp_part(r.icmp_code))),
            _ => None,
        },
        cidrs,
    })
}

/// The rule set of every NIC on `network_id` whose instance is (or is about to be) on a
/// host and in a group, with group references resolved to the members' addresses.
pub async fn nic_rule_sets(db: &Db, network_id: i64) -> Result<Vec<NicRules>, DbError> {
    let nics = sg::member_nics(db, Some(network_id), &[]).await?;
    let mut group_ids: Vec<i64> = nics.iter().map(|n| n.group_id).collect();
    group_ids.sort_unstable();
    group_ids.dedup();
    let rules = sg::rules_of(db, &group_ids).await?;
    let mut referenced: Vec<i64> = rules.iter().filter_map(|r| r.ref_group_id).collect();
    referenced.sort_unstable();
    referenced.dedup();
    let mut members: HashMap<i64, Vec<Ipv4Addr>> = HashMap::new();
    if !referenced.is_empty() {
        for m in sg::member_nics(db, None, &referenced).await? {
            if let Some(ip) = m.ip_address.map(int_to_ip) {
                let ips = members.entry(m.group_id).or_default();
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
        }
    }
    Ok(resolve(&nics, &rules, &members))
}

/// The networks whose rule sets a change of group `group_id` (its rules or members) alters.
pub async fn networks_affected(db: &Db, group_id: i64) -> Result<Vec<i64>, DbError> {
    sg::networks_affected_by(db, group_id).await
}

// ---------------------------------------------------------------- views

fn rule_view(r: &RuleRow) -> Value {
    let mut m = views::object(json!({
        "ruleid": r.uuid,
        "protocol": r.protocol,
        "tags": [],
    }));
    if r.protocol == "icmp" {
        m.insert("icmptype".into(), json!(r.icmp_type.unwrap_or(-1)));
        m.insert("icmpcode".into(), json!(r.icmp_code.unwrap_or(-1)));
    } else {
        m.insert("startport".into(), json!(r.start_port.unwrap_or(0)));
        m.insert("endport".into(), json!(r.end_port.unwrap_or(0)));
    }
    match (&r.ref_group_name, &r.cidr) {
        (Some(g), _) => {
            m.insert("securitygroupname".into(), json!(g));
            m.insert("account".into(), json!(r.ref_account_name));
        }
        (None, Some(c)) => {
            m.insert("cidr".into(), json!(c));
        }
        (None, None) => {}
    }
    Value::Object(m)
}

/// A group as CloudStack shows it: with its rules and (for listings) its members.
fn group_view(g: &GroupRow, rules: &[&RuleRow], members: Option<&[String]>) -> Map<String, Value> {
    let of = |d: &str| rules.iter().filter(|r| r.direction == d).map(|r| rule_view(r)).collect::<Vec<_>>();
    let mut m = views::object(json!({
        "id": g.uuid,
        "name": g.name,
        "description": g.description,
        "account": g.account_name,
        "domainid": g.domain_uuid,
        "domain": g.domain_name,
        "domainpath": g.domain_path,
        "ingressrule": of("ingress"),
        "egressrule": of("egress"),
        "tags": [],
    }));
    if let Some(vms) = members {
        m.insert("virtualmachinecount".into(), json!(vms.len()));
        m.insert("virtualmachineids".into(), json!(vms));
    }
    m
}

impl Orchestrator {
    /// The driver seam: the rule sets of the NICs on `networks` (ids) changed, because a
    /// rule or a group's membership did, or a member came or went. Each network's driver is
    /// to apply [`nic_rule_sets`] of it. For now it only logs.
    pub async fn security_changed(&self, networks: &[i64]) {
        if !networks.is_empty() {
            tracing::debug!(?networks, "security group rule sets changed");
        }
    }

    pub(super) async fn execute_security_group(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        request: SecurityGroupRequest,
    ) -> Result<Reply, ApiError> {
        use SecurityGroupRequest::*;
        match request {
            Create { name, description, owner } => {
                Box::pin(self.create_group(caller, &name, description, &owner)).await
            }
            Delete { id, name, owner } => Box::pin(self.delete_group(caller, id, name, &owner)).await,
            List { id, name, vm_id, listing } => Box::pin(self.list_groups(caller, id, name, vm_id, listing)).await,
            Authorize(r) => Box::pin(self.authorize(caller, cmd, r)).await,
            Revoke { id, direction } => Box::pin(self.revoke(caller, cmd, &id, direction)).await,
        }
    }

    /// The account a command acts for: the named one, else the caller's.
    async fn group_owner(&self, caller: &Caller, owner: &OwnerRef) -> Result<(i64, i64), ApiError> {
        self.owner(caller, owner.account.as_deref(), owner.domain_id.as_deref()).await
    }

    async fn create_group(
        &self,
        caller: &Caller,
        name: &str,
        description: Option<String>,
        owner: &OwnerRef,
    ) -> Result<Reply, ApiError> {
        let (account_id, domain_id) = self.group_owner(caller, owner).await?;
        let taken = || invalid(format!("Unable to create security group, a group with name {name} already exists."));
        if name.trim().is_empty() {
            return Err(invalid("The security group name cannot be empty"));
        }
        // `default` is every account's; asking for it again is asking for a taken name.
        sg::ensure_default(&self.db, account_id, domain_id).await?;
        if sg::group_named(&self.db, account_id, name).await?.is_some() {
            return Err(taken());
        }
        let uuid = sg::insert_group(&self.db, account_id, domain_id, name, description.as_deref()).await.map_err(
            |e| match e {
                SecurityGroupError::NameTaken(_) => taken(),
                other => group_error(other),
            },
        )?;
        self.audit(caller, "SG.CREATE", ("SecurityGroup", &uuid, name), format!("Security group {name} created"))
            .await?;
        let g = sg::group(&self.db, &uuid).await?.ok_or_else(|| ApiError::internal("the new group is gone"))?;
        Ok(object("securitygroup", group_view(&g, &[], None)))
    }

    /// A group by id, the caller's to act on.
    async fn group_for(&self, caller: &Caller, id: &str) -> Result<GroupRow, ApiError> {
        let g = sg::group(&self.db, id)
            .await?
            .ok_or_else(|| invalid(format!("Unable to find security group by id {id}")))?;
        if !caller.can_reach(&g) {
            return Err(super::not_yours("security group", id));
        }
        Ok(g)
    }

    async fn delete_group(
        &self,
        caller: &Caller,
        id: Option<String>,
        name: Option<String>,
        owner: &OwnerRef,
    ) -> Result<Reply, ApiError> {
        let g = match (id, name) {
            (Some(_), Some(_)) => return Err(invalid("name parameter is mutually exclusive with id parameter")),
            (None, None) => {
                return Err(invalid("Either id or name parameter is required by deleteSecurityGroup command"));
            }
            (Some(id), None) => self.group_for(caller, &id).await?,
            (None, Some(name)) => {
                let (account_id, _) = self.group_owner(caller, owner).await?;
                sg::group_named(&self.db, account_id, &name).await?.ok_or_else(|| {
                    invalid(format!("Unable to find security group {name} for account id={account_id}"))
                })?
            }
        };
        if g.name.eq_ignore_ascii_case(DEFAULT_GROUP) {
            return Err(invalid("The network group default is reserved"));
        }
        sg::delete_group(&self.db, g.id).await.map_err(group_error)?;
        self.audit(
            caller,
            "SG.DELETE",
            ("SecurityGroup", &g.uuid, &g.name),
            format!("Security group {} deleted", g.name),
        )
        .await?;
        Ok(Reply::Success { display_text: None })
    }

    async fn list_groups(
        &self,
        caller: &Caller,
        id: Option<String>,
        name: Option<String>,
        vm_id: Option<String>,
        listing: Listing,
    ) -> Result<Reply, ApiError> {
        let scope = self.scope(caller, &listing).await?;
        // The default group exists by the time anyone looks for it.
        let (account_id, domain_id) = match &listing.account {
            Some(_) => self.owner(caller, listing.account.as_deref(), listing.domain_id.as_deref()).await?,
            None => (caller.user.account_id, caller.user.domain_id),
        };
        sg::ensure_default(&self.db, account_id, domain_id).await?;
        let instance_id = match &vm_id {
            Some(v) => Some(self.vm_for(caller, v).await?.id),
            None => None,
        };
        let f = GroupFilter { uuid: id, name, instance_id, keyword: listing.keyword.clone() };
        let (rows, total) = sg::list_groups(&self.db, &scope, &f, listing.page).await?;
        let ids: Vec<i64> = rows.iter().map(|g| g.id).collect();
        let rules = sg::rules_of(&self.db, &ids).await?;
        let members = sg::members(&self.db, &ids).await?;
        let items = rows
            .iter()
            .map(|g| {
                let mine: Vec<&RuleRow> = rules.iter().filter(|r| r.group_id == g.id).collect();
                let vms: Vec<String> = members.iter().filter(|m| m.0 == g.id).map(|m| m.1.clone()).collect();
                group_view(g, &mine, Some(&vms))
            })
            .collect();
        Ok(list("securitygroup", total, items))
    }

    async fn authorize(&self, caller: &Caller, cmd: &'static Command, r: AuthorizeRequest) -> Result<Reply, ApiError> {
        let g = match (&r.group_id, &r.group_name) {
            (Some(_), Some(_)) => {
                return Err(invalid("securityGroupId and securityGroupName parameters are mutually exclusive"));
            }
            (None, None) => {
                return Err(invalid(format!(
                    "Either securityGroupId or securityGroupName is required by {} command",
                    cmd.name
                )));
            }
            (Some(id), None) => self.group_for(caller, id).await?,
            (None, Some(name)) => {
                let (account_id, domain_id) = self.group_owner(caller, &r.owner).await?;
                sg::ensure_default(&self.db, account_id, domain_id).await?;
                sg::group_named(&self.db, account_id, name)
                    .await?
                    .ok_or_else(|| invalid(format!("Unable to find security group {name} in account {account_id}")))?
            }
        };
        let cidrs = r.cidrs.clone().filter(|c| !c.is_empty());
        let groups = r.groups.clone().filter(|g| !g.is_empty());
        if cidrs.is_none() && groups.is_none() {
            return Err(invalid("At least one cidr or at least one security group needs to be specified"));
        }
        for c in cidrs.iter().flatten() {
            if normal_cidr(c).is_none() {
                return Err(invalid(format!("Invalid cidr {c}")));
            }
        }
        let (protocol, start_port, end_port, icmp_type, icmp_code) =
            check_rule(r.protocol.as_deref(), r.start_port, r.end_port, r.icmp_type, r.icmp_code)?;
        // Groups are another account's by name, in the rule's owner's domain.
        let mut allowed: Vec<GroupRow> = Vec::new();
        for (account, group) in groups.iter().flatten() {
            let (Some(account), Some(group)) = (account, group) else {
                return Err(invalid(
                    "Invalid user group specified, fields 'group' and 'account' cannot be null, please specify groups \
                     in the form:  userGroupList[0].group=XXX&userGroupList[0].account=YYY",
                ));
            };
            let a = store::account_by_name(&self.db, account, g.domain_id).await?.ok_or_else(|| {
                invalid(format!(
                    "Nonexistent account: {account} when trying to authorize security group rule  for {}:{}",
                    g.uuid,
                    protocol.as_text()
                ))
            })?;
            let found = if a.id == g.account_id && group.eq_ignore_ascii_case(DEFAULT_GROUP) {
                Some(sg::ensure_default(&self.db, a.id, a.domain_id).await?)
            } else {
                sg::group_named(&self.db, a.id, group).await?
            };
            let found = found.ok_or_else(|| {
                invalid(format!(
                    "Nonexistent group {group} for account {account}/{} is given, unable to authorize security group \
                     rule.",
                    g.domain_uuid
                ))
            })?;
            if !allowed.iter().any(|x| x.id == found.id) {
                allowed.push(found);
            }
        }
        let base = NewRule {
            direction: r.direction.as_str(),
            protocol: protocol.as_text(),
            start_port,
            end_port,
            icmp_type,
            icmp_code,
            cidr: None,
            ref_group_id: None,
        };
        let mut new: Vec<NewRule> =
            allowed.iter().map(|a| NewRule { ref_group_id: Some(a.id), ..base.clone() }).collect();
        new.extend(cidrs.iter().flatten().map(|c| NewRule { cidr: Some(c.clone()), ..base.clone() }));

        let class = match r.direction {
            Direction::Ingress => "AuthorizeSecurityGroupIngressCmd",
            Direction::Egress => "AuthorizeSecurityGroupEgressCmd",
        };
        let (me, who) = (self.clone(), caller.clone());
        let uuid = g.uuid.clone();
        let work = async move {
            let made = sg::insert_rules(&me.db, g.id, &new).await?;
            let kind = match r.direction {
                Direction::Ingress => "SG.AUTH.INGRESS",
                Direction::Egress => "SG.AUTH.EGRESS",
            };
            me.audit(
                &who,
                kind,
                ("SecurityGroup", &g.uuid, &g.name),
                format!("{} {} rule(s) added to security group {}", made.len(), r.direction.as_str(), g.name),
            )
            .await?;
            me.security_changed(&networks_affected(&me.db, g.id).await?).await;
            let rules = sg::rules_of(&me.db, &[g.id]).await?;
            let fresh: Vec<&RuleRow> = rules.iter().filter(|x| made.contains(&x.id)).collect();
            Ok(super::volumes::wrap("securitygroup", group_view(&g, &fresh, None)))
        };
        self.group_job(caller, cmd, class, &uuid, work).await
    }

    async fn revoke(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
        direction: Direction,
    ) -> Result<Reply, ApiError> {
        let rule = sg::rule(&self.db, id)
            .await?
            .ok_or_else(|| invalid(format!("Unable to find security rule with id {id}")))?;
        if rule.direction != direction.as_str() {
            return Err(invalid(format!("Mismatch in rule type for security rule with id {id}")));
        }
        let g = sg::group_by_id(&self.db, rule.group_id)
            .await?
            .ok_or_else(|| ApiError::internal("the rule's group is gone"))?;
        if !caller.can_reach(&g) {
            return Err(super::not_yours("security group", &g.uuid));
        }
        let class = match direction {
            Direction::Ingress => "RevokeSecurityGroupIngressCmd",
            Direction::Egress => "RevokeSecurityGroupEgressCmd",
        };
        let (me, who) = (self.clone(), caller.clone());
        let uuid = g.uuid.clone();
        let work = async move {
            // The networks are found before the rule goes, while it still names its group.
            let mut networks = networks_affected(&me.db, g.id).await?;
            if let Some(r) = rule.ref_group_id {
                networks.extend(networks_affected(&me.db, r).await?);
            }
            sg::delete_rule(&me.db, rule.id).await?;
            let kind = match direction {
                Direction::Ingress => "SG.REVOKE.INGRESS",
                Direction::Egress => "SG.REVOKE.EGRESS",
            };
            me.audit(
                &who,
                kind,
                ("SecurityGroup", &g.uuid, &g.name),
                format!("Rule {} of security group {} revoked", rule.uuid, g.name),
            )
            .await?;
            networks.sort_unstable();
            networks.dedup();
            me.security_changed(&networks).await;
            let mut m = Map::new();
            m.insert("success".into(), Value::Bool(true));
            Ok(m)
        };
        self.group_job(caller, cmd, class, &uuid, work).await
    }

    async fn group_job(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        class: &str,
        uuid: &str,
        work: impl Future<Output = Result<Map<String, Value>, ApiError>> + Send + 'static,
    ) -> Result<Reply, ApiError> {
        let class = format!("org.apache.cloudstack.api.command.user.securitygroup.{class}");
        let spec = JobSpec { cmd: &class, command: cmd.name, instance: Some(("SecurityGroup", uuid.to_owned())) };
        let job = self.jobs.submit(caller, spec, work).await?;
        Ok(Reply::AsyncJob { job_id: job, id: None })
    }

    // ---------------------------------------------------------------- instances

    /// The groups a new or changed instance of `account_id` is put in, as ids: those named,
    /// else (on a network with the SecurityGroup service) the account's default group.
    /// Groups on networks without the service are refused as CloudStack refuses them.
    pub(super) async fn instance_group_ids(
        &self,
        caller: &Caller,
        account_id: i64,
        domain_id: i64,
        choice: &GroupChoice,
        networks: &[NetworkRow],
    ) -> Result<Vec<i64>, ApiError> {
        if choice.ids.is_some() && choice.names.is_some() {
            return Err(invalid("securitygroupids parameter is mutually exclusive with securitygroupnames parameter"));
        }
        let enabled = networks.iter().any(|n| n.has_service("SecurityGroup"));
        let named =
            choice.ids.as_ref().is_some_and(|l| !l.is_empty()) || choice.names.as_ref().is_some_and(|l| !l.is_empty());
        if !enabled {
            if named {
                return Err(invalid(
                    "Can't create vm with security groups; security group feature is not enabled per zone",
                ));
            }
            return Ok(Vec::new());
        }
        let mut out: Vec<i64> = Vec::new();
        for id in choice.ids.iter().flatten() {
            let g = sg::group(&self.db, id)
                .await?
                .ok_or_else(|| invalid(format!("Unable to find security group by id {id}")))?;
            if g.account_id != account_id {
                return Err(ApiError::permission_denied(format!(
                    "The caller does not have permission to use security group {id}"
                )));
            }
            if !caller.can_reach(&g) {
                return Err(super::not_yours("security group", id));
            }
            if !out.contains(&g.id) {
                out.push(g.id);
            }
        }
        for name in choice.names.iter().flatten() {
            let g = if name.eq_ignore_ascii_case(DEFAULT_GROUP) {
                Some(sg::ensure_default(&self.db, account_id, domain_id).await?)
            } else {
                sg::group_named(&self.db, account_id, name).await?
            };
            let g = g.ok_or_else(|| invalid(format!("Unable to find group by name {name}")))?;
            if !out.contains(&g.id) {
                out.push(g.id);
            }
        }
        if out.is_empty() {
            out.push(sg::ensure_default(&self.db, account_id, domain_id).await?.id);
        }
        Ok(out)
    }

    /// The networks of an instance's NICs.
    pub(super) async fn instance_networks(
        &self,
        vm: &crate::cloud::instances::InstanceRow,
    ) -> Result<Vec<NetworkRow>, ApiError> {
        let mut out = Vec::new();
        for id in sg::instance_networks(&self.db, &vm.uuid).await? {
            if let Some(n) = crate::cloud::networks::network_by_id(&self.db, id).await? {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// The `securitygroup` lists of instances' views, by instance id.
    pub(super) async fn instance_group_views(
        &self,
        instance_ids: &[i64],
    ) -> Result<HashMap<i64, Vec<Value>>, ApiError> {
        let pairs = sg::groups_of_instances(&self.db, instance_ids).await?;
        let mut ids: Vec<i64> = pairs.iter().map(|p| p.1.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let rules = sg::rules_of(&self.db, &ids).await?;
        let mut out: HashMap<i64, Vec<Value>> = HashMap::new();
        for (vm, g) in &pairs {
            let mine: Vec<&RuleRow> = rules.iter().filter(|r| r.group_id == g.id).collect();
            out.entry(*vm).or_default().push(Value::Object(group_view(g, &mine, None)));
        }
        Ok(out)
    }

    /// Tells the driver seam that an instance's NICs came or went (or changed groups).
    pub(super) async fn instance_security_changed(&self, instance_uuid: &str) {
        match sg::instance_networks(&self.db, instance_uuid).await {
            Ok(networks) => self.security_changed(&networks).await,
            Err(e) => tracing::warn!("the networks of instance {instance_uuid}: {e}"),
        }
    }
}

fn group_error(e: SecurityGroupError) -> ApiError {
    match e {
        SecurityGroupError::Db(e) => e.into(),
        SecurityGroupError::NameTaken(n) => {
            invalid(format!("Unable to create security group, a group with name {n} already exists."))
        }
        SecurityGroupError::Referenced => {
            ApiError::in_use("Cannot delete group when there are security rules that allow this group")
        }
        SecurityGroupError::HasMembers => ApiError::in_use("Cannot delete group when it's in use by virtual machines"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_checked_and_normalised() {
        assert_eq!(normal_cidr("10.1.2.3/24").as_deref(), Some("10.1.2.0/24"));
        assert_eq!(normal_cidr("0.0.0.0/0").as_deref(), Some("0.0.0.0/0"));
        assert_eq!(normal_cidr("192.0.2.7/32").as_deref(), Some("192.0.2.7/32"));
        assert_eq!(normal_cidr("2001:db8::1/64").as_deref(), Some("2001:db8::/64"));
        for bad in ["10.1.2.3", "10.1.2.3/33", "10.1.2/24", "banana/8", "10.1.2.3/-1", "", "/24"] {
            assert_eq!(normal_cidr(bad), None, "{bad}");
        }
    }

    #[test]
    fn rules_are_checked_as_cloudstack_checks_them() {
        let text = |r: Result<_, ApiError>| r.map(|_| ()).unwrap_err().text;
        assert_eq!(
            check_rule(Some("TCP"), Some(22), Some(22), None, None).unwrap(),
            (Protocol::Tcp, Some(22), Some(22), None, None)
        );
        assert_eq!(check_rule(Some("udp"), Some(0), Some(0), None, None).unwrap().2, Some(65535), "0-0 is every port");
        assert_eq!(check_rule(None, None, None, None, None).unwrap().0, Protocol::All, "all by default");
        assert_eq!(check_rule(Some("47"), None, None, None, None).unwrap().0, Protocol::Number(47));
        assert_eq!(
            check_rule(Some("1"), None, None, None, None).unwrap(),
            (Protocol::Icmp, None, None, Some(-1), Some(-1))
        );
        assert_eq!(check_rule(Some("icmp"), None, None, Some(8), Some(0)).unwrap().3, Some(8));
        assert_eq!(text(check_rule(Some("tcp"), Some(30), Some(20), None, None)), "Invalid port range 30:20");
        assert_eq!(text(check_rule(Some("tcp"), Some(1), Some(70000), None, None)), "Invalid port numbers 1:70000");
        assert_eq!(
            text(check_rule(Some("tcp"), Some(1), None, None, None)),
            "Invalid port range specified, startPort = 1, endPort = null"
        );
        assert_eq!(text(check_rule(Some("gre"), None, None, None, None)), "Invalid protocol gre");
        assert_eq!(text(check_rule(Some("256"), None, None, None, None)), "Invalid protocol number: 256");
        assert_eq!(
            text(check_rule(Some("all"), Some(1), Some(2), None, None)),
            "Cannot specify startPort or endPort without specifying protocol"
        );
        assert_eq!(
            text(check_rule(Some("icmp"), None, None, None, None)),
            "Invalid ICMP type/code specified, icmpType = null, icmpCode = null"
        );
        assert_eq!(text(check_rule(Some("icmp"), None, None, Some(-1), Some(3))), "Invalid icmp code");
        assert_eq!(text(check_rule(Some("icmp"), None, None, Some(300), Some(3))), "Invalid icmp type/code ");
    }

    fn nic(uuid: &str, vm: &str, ip: [u8; 4], group: i64) -> MemberNic {
        MemberNic {
            nic_uuid: uuid.into(),
            network_id: 1,
            mac: format!("02:00:00:00:00:{:02x}", ip[3]),
            ip_address: Some(u32::from(Ipv4Addr::from(ip)) as i64),
            instance_id: ip[3] as i64,
            instance_uuid: vm.into(),
            group_id: group,
        }
    }

    fn rule(
        id: i64,
        group: i64,
        dir: &str,
        proto: &str,
        ports: Option<(i64, i64)>,
        cidr: Option<&str>,
        refg: Option<i64>,
    ) -> RuleRow {
        RuleRow {
            id,
            uuid: format!("r{id}"),
            group_id: group,
            direction: dir.into(),
            protocol: proto.into(),
            start_port: ports.map(|p| p.0),
            end_port: ports.map(|p| p.1),
            icmp_type: None,
            icmp_code: None,
            cidr: cidr.map(Into::into),
            ref_group_id: refg,
            ref_group_name: None,
            ref_account_name: None,
        }
    }

    /// The member addresses of groups, as `nic_rule_sets` builds them.
    fn members_of(nics: &[MemberNic]) -> HashMap<i64, Vec<Ipv4Addr>> {
        let mut m: HashMap<i64, Vec<Ipv4Addr>> = HashMap::new();
        for n in nics {
            m.entry(n.group_id).or_default().push(int_to_ip(n.ip_address.unwrap()));
        }
        m
    }

    #[test]
    fn group_references_follow_membership_as_instances_come_and_go() {
        // Group 1 ("web") lets tcp/22 in from a CIDR and tcp/80 from the members of group 2 ("lb").
        let rules = vec![
            rule(1, 1, "ingress", "tcp", Some((22, 22)), Some("10.9.8.7/16"), None),
            rule(2, 1, "ingress", "tcp", Some((80, 80)), None, Some(2)),
        ];
        let web = nic("n1", "vm1", [10, 0, 0, 11], 1);
        let lb_a = nic("n2", "vm2", [10, 0, 0, 12], 2);
        let lb_b = nic("n3", "vm3", [10, 0, 0, 13], 2);

        // No lb member on a host: the group rule allows no one and is left out.
        let sets = resolve(std::slice::from_ref(&web), &rules, &members_of(std::slice::from_ref(&web)));
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].ip, Some(Ipv4Addr::new(10, 0, 0, 11)));
        assert_eq!(
            sets[0].ingress,
            [ResolvedRule {
                protocol: Protocol::Tcp,
                ports: Some((22, 22)),
                icmp: None,
                cidrs: vec!["10.9.0.0/16".into()]
            }]
        );
        assert!(sets[0].egress.is_empty() && sets[0].egress_open, "no egress rule: egress open");

        // Two lb members start: port 80 is open to exactly their addresses.
        let all = vec![web.clone(), lb_a.clone(), lb_b.clone()];
        let sets = resolve(&all, &rules, &members_of(&all));
        let web_set = sets.iter().find(|s| s.nic == "n1").unwrap();
        let http = web_set.ingress.iter().find(|r| r.ports == Some((80, 80))).unwrap();
        assert_eq!(http.cidrs, ["10.0.0.12/32", "10.0.0.13/32"]);
        // The lb NICs have no rule of their own: ingress closed, egress open.
        let lb_set = sets.iter().find(|s| s.nic == "n2").unwrap();
        assert!(lb_set.ingress.is_empty() && lb_set.egress_open);

        // One leaves (stopped): only the other's address stays.
        let fewer = vec![web.clone(), lb_b.clone()];
        let sets = resolve(&fewer, &rules, &members_of(&fewer));
        let http = sets[0].ingress.iter().find(|r| r.ports == Some((80, 80))).unwrap();
        assert_eq!(http.cidrs, ["10.0.0.13/32"]);
    }

    #[test]
    fn one_egress_rule_closes_egress_to_what_it_allows() {
        let rules = vec![rule(1, 1, "egress", "udp", Some((53, 53)), Some("0.0.0.0/0"), None)];
        let n = nic("n1", "vm1", [10, 0, 0, 11], 1);
        let sets = resolve(std::slice::from_ref(&n), &rules, &HashMap::new());
        assert!(!sets[0].egress_open);
        assert_eq!(sets[0].egress[0].protocol, Protocol::Udp);
        assert_eq!(sets[0].egress[0].cidrs, ["0.0.0.0/0"]);
        // An egress rule naming an empty group still closes egress, though it allows no one.
        let rules = vec![rule(1, 1, "egress", "all", None, None, Some(9))];
        let sets = resolve(std::slice::from_ref(&n), &rules, &HashMap::new());
        assert!(!sets[0].egress_open && sets[0].egress.is_empty());
    }

    #[test]
    fn a_nic_in_two_groups_gets_both_groups_rules_merged() {
        let rules = vec![
            rule(1, 1, "ingress", "tcp", Some((22, 22)), Some("192.0.2.0/24"), None),
            rule(2, 2, "ingress", "tcp", Some((22, 22)), Some("198.51.100.0/24"), None),
            rule(3, 2, "ingress", "icmp", None, Some("0.0.0.0/0"), None),
        ];
        let nics = vec![nic("n1", "vm1", [10, 0, 0, 11], 1), nic("n1", "vm1", [10, 0, 0, 11], 2)];
        let sets = resolve(&nics, &rules, &HashMap::new());
        assert_eq!(sets.len(), 1, "one set per NIC");
        let ssh = &sets[0].ingress[0];
        assert_eq!(ssh.cidrs, ["192.0.2.0/24", "198.51.100.0/24"]);
        assert_eq!(sets[0].ingress[1].icmp, Some((None, None)), "no type or code: any");
    }
}
