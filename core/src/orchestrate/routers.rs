//! Routers: the public side of an Isolated guest network with services (CloudStack's
//! virtual router). A network gets its router, and its source NAT address when its
//! offering has SourceNat, when it is implemented: on the first deploy into it, or on
//! restartNetwork.
//!
//! Every change of what a router must do (implement, an address associated or
//! released, static NAT, a rule added or removed, a router started or rebuilt) goes
//! through `router_changed`, which reads the network's whole router state from the
//! database (`router_state`) and records a new generation of it. Simulated hosts have no data plane: the state is
//! recorded and nothing is built.

use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{RouterAction, RouterQuery};
use crate::auth::Caller;
use crate::cloud::infra::{self, InfraFilter};
use crate::cloud::networks::{self as nets, NetworkRow, int_to_ip};
use crate::cloud::public_ips::{self as pips, Holder, PublicIpError, RouterFilter, RouterRow};
use crate::db::format_time;

use super::volumes::wrap;
use super::{CLOUDSTACK_VERSION, Orchestrator, list, no_such, views};

/// The guest side of a router: the network's gateway address and subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSide {
    pub network: String,
    /// "10.1.1.0/24".
    pub cidr: String,
    /// The address the router holds in the guest network.
    pub gateway: Option<Ipv4Addr>,
    pub vlan: Option<i64>,
    pub dns: Vec<String>,
}

/// One public address the router holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicAddress {
    pub id: String,
    pub address: Ipv4Addr,
    pub prefix: u32,
    pub gateway: Ipv4Addr,
    /// VLAN of the public segment, None when untagged.
    pub vlan: Option<i64>,
    pub source_nat: bool,
    /// The guest address it is mapped to both ways, with static NAT.
    pub static_nat: Option<Ipv4Addr>,
}

/// Everything a network's router must do, read whole from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterState {
    pub router: String,
    pub name: String,
    pub network_id: i64,
    /// Where it runs, None while stopped.
    pub host: Option<String>,
    pub running: bool,
    /// The generation this state was recorded as.
    pub generation: i64,
    pub guest: GuestSide,
    pub public: Vec<PublicAddress>,
    /// Firewall, egress, port forwarding and load-balancing rules (revoked ones left out).
    pub rules: super::rules::RouterRules,
}

impl RouterState {
    /// The source NAT address, if the network has one.
    pub fn source_nat(&self) -> Option<&PublicAddress> {
        self.public.iter().find(|p| p.source_nat)
    }
}

/// Whether a network has a router: Isolated, with services from its offering.
pub fn needs_router(n: &NetworkRow) -> bool {
    n.guest_type == "Isolated" && !n.offering_services.is_empty()
}

fn prefix_of(netmask: &str) -> u32 {
    netmask.parse::<Ipv4Addr>().map(|m| u32::from(m).leading_ones()).unwrap_or(32)
}

/// Reads a network's router state from the database.
pub async fn router_state(db: &crate::db::Db, n: &NetworkRow, r: &RouterRow) -> Result<RouterState, ApiError> {
    let ips = pips::ips_of_network(db, n.id).await?;
    let public = ips
        .iter()
        .map(|ip| PublicAddress {
            id: ip.uuid.clone(),
            address: ip.ip(),
            prefix: prefix_of(&ip.netmask),
            gateway: ip.gateway.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
            vlan: ip.vlan,
            source_nat: ip.is_source_nat != 0,
            static_nat: ip.static_nat_vm_ip.map(int_to_ip),
        })
        .collect();
    let (rules, _) = super::rules::router_rules(db, n).await?;
    Ok(RouterState {
        router: r.uuid.clone(),
        name: r.name.clone(),
        network_id: n.id,
        host: r.host_name.clone(),
        running: r.state == "Running",
        generation: r.generation,
        guest: GuestSide {
            network: n.uuid.clone(),
            cidr: n.cidr().unwrap_or_default(),
            gateway: n.gateway.as_deref().and_then(|g| g.parse().ok()),
            vlan: n.vlan,
            dns: n.dns(),
        },
        public,
        rules,
    })
}

/// 533 for a zone whose public addresses are all taken, naming its ranges.
pub(super) fn exhausted(zone: &str, ranges: &[(i64, i64)]) -> ApiError {
    if ranges.is_empty() {
        return ApiError::insufficient_capacity(format!(
            "Insufficient address capacity: zone {zone} has no public IP range"
        ));
    }
    let names: Vec<String> = ranges.iter().map(|(s, e)| format!("{}-{}", int_to_ip(*s), int_to_ip(*e))).collect();
    ApiError::insufficient_capacity(format!(
        "Insufficient address capacity: every address of the public IP range {} of zone {zone} is allocated",
        names.join(", ")
    ))
}

impl From<PublicIpError> for ApiError {
    fn from(e: PublicIpError) -> Self {
        match e {
            PublicIpError::Db(e) => e.into(),
            PublicIpError::Exhausted { ranges } => exhausted("", &ranges),
            PublicIpError::Gone(what) => ApiError::invalid_param(format!("{what} is gone")),
        }
    }
}

impl Orchestrator {
    /// Whether a zone carries public traffic: one of its physical networks has a Public
    /// traffic type. A zone without has no public side, and its networks no source NAT.
    pub(super) async fn has_public_traffic(&self, zone_id: i64) -> Result<bool, ApiError> {
        Ok(self.public_traffic(zone_id).await?.is_some())
    }

    /// An Up host of the zone for a router to run on.
    async fn router_host(&self, zone_id: i64) -> Result<Option<i64>, ApiError> {
        let f = InfraFilter { zone_id: Some(zone_id), ..Default::default() };
        let (hosts, _) = infra::list_hosts(&self.db, &f, Some("Up"), None).await?;
        Ok(hosts.first().map(|h| h.id))
    }

    /// Implements a network's public side: its source NAT address (when its offering has
    /// SourceNat and its zone carries public traffic) and its router (on `host_id`, else
    /// an Up host of the zone). Idempotent; 533 when the zone's public ranges are used up.
    /// With `reapply` the state is recorded even when nothing changed (restartNetwork).
    pub(super) async fn implement_router(
        &self,
        n: &NetworkRow,
        host_id: Option<i64>,
        reapply: bool,
    ) -> Result<Option<RouterState>, ApiError> {
        if !needs_router(n) {
            return Ok(None);
        }
        let mut changed = reapply;
        if n.has_service("SourceNat") && self.has_public_traffic(n.zone_id).await? {
            let h = Holder { zone_id: n.zone_id, account_id: n.account_id, domain_id: n.domain_id, network_id: n.id };
            let (ip, new) = pips::ensure_source_nat(&self.db, &h).await.map_err(|e| match e {
                PublicIpError::Exhausted { ranges } => exhausted(&n.zone_name, &ranges),
                other => other.into(),
            })?;
            if new {
                tracing::info!(network = n.uuid.as_str(), ip = ip.as_str(), "source NAT address allocated");
                changed = true;
            }
        }
        let host = match host_id {
            Some(h) => Some(h),
            None => self.router_host(n.zone_id).await?,
        };
        let (r, created) = pips::ensure_router(&self.db, n.id, host).await?;
        changed |= created;
        if !created && r.state == "Stopped" && host.is_some() {
            pips::set_router(&self.db, r.id, "Running", host).await?;
            changed = true;
        }
        if changed {
            return self.router_changed(n.id).await;
        }
        Ok(Some(router_state(&self.db, n, &r).await?))
    }

    /// Records a change of a network's router: reads its whole state and bumps its
    /// generation. None when the network has no router.
    pub(super) async fn router_changed(&self, network_id: i64) -> Result<Option<RouterState>, ApiError> {
        let Some(r) = pips::router_of_network(&self.db, network_id).await? else {
            return Ok(None);
        };
        let n = nets::network_by_id(&self.db, network_id).await?.ok_or_else(|| no_such("network", &r.network_uuid))?;
        let generation = pips::next_generation(&self.db, r.id).await?;
        let r = RouterRow { generation, ..r };
        let state = router_state(&self.db, &n, &r).await?;
        tracing::debug!(router = state.name.as_str(), generation, public = state.public.len(), "router state recorded");
        self.apply_router(&n, &r, &state).await?;
        Ok(Some(state))
    }

    /// Takes a router off its host, before it is recorded stopped or destroyed.
    async fn router_leaves_host(&self, r: &RouterRow) -> Result<(), ApiError> {
        let n =
            nets::network_by_id(&self.db, r.network_id).await?.ok_or_else(|| no_such("network", &r.network_uuid))?;
        self.remove_router(&n, r).await
    }

    /// A router and its state as the API shows it.
    async fn router_reply(&self, r: &RouterRow) -> Result<Map<String, Value>, ApiError> {
        let n =
            nets::network_by_id(&self.db, r.network_id).await?.ok_or_else(|| no_such("network", &r.network_uuid))?;
        let state = router_state(&self.db, &n, r).await?;
        Ok(router_view(r, &n, &state))
    }

    pub(super) async fn list_routers(&self, caller: &Caller, q: RouterQuery) -> Result<Reply, ApiError> {
        if q.vpc_id.is_some() {
            // No VPCs here: no VPC has routers.
            return Ok(list("router", 0, vec![]));
        }
        let zone_id = self.zone_id(q.zone_id.as_deref()).await?;
        let host_id = match &q.host_id {
            Some(h) => Some(infra::host(&self.db, h).await?.ok_or_else(|| no_such("host", h))?.id),
            None => None,
        };
        let network_id = match &q.network_id {
            Some(n) => Some(nets::network(&self.db, n).await?.ok_or_else(|| no_such("network", n))?.id),
            None => None,
        };
        let scope = self.scope(caller, &q.listing).await?;
        let f = RouterFilter { uuid: q.id, name: q.name, state: q.state, zone_id, host_id, network_id };
        let (rows, total) = pips::list_routers(&self.db, &scope, &f, q.listing.page).await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            items.push(self.router_reply(r).await?);
        }
        Ok(list("router", total, items))
    }

    pub(super) async fn router_command(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
        action: RouterAction,
    ) -> Result<Reply, ApiError> {
        let r = pips::router(&self.db, id).await?.ok_or_else(|| ApiError::invalid_param("Can't find router by id"))?;
        let (class, event) = match action {
            RouterAction::Start => ("StartRouterCmd", "ROUTER.START"),
            RouterAction::Stop => ("StopRouterCmd", "ROUTER.STOP"),
            RouterAction::Reboot => ("RebootRouterCmd", "ROUTER.REBOOT"),
            RouterAction::Destroy => ("DestroyRouterCmd", "ROUTER.DESTROY"),
        };
        let (me, who) = (self.clone(), caller.clone());
        let work = async move {
            match action {
                RouterAction::Start => {
                    let host = match r.host_id {
                        Some(h) => Some(h),
                        None => me.router_host(r.zone_id).await?,
                    };
                    let Some(host) = host else {
                        return Err(ApiError::insufficient_capacity(format!(
                            "Unable to start router {}: zone {} has no Up host",
                            r.name, r.zone_name
                        )));
                    };
                    pips::set_router(&me.db, r.id, "Running", Some(host)).await?;
                    me.router_changed(r.network_id).await?;
                }
                RouterAction::Stop => {
                    me.router_leaves_host(&r).await?;
                    pips::set_router(&me.db, r.id, "Stopped", None).await?
                }
                RouterAction::Reboot => {
                    if r.state != "Running" {
                        return Err(ApiError::internal(format!(
                            "Unable to reboot domR, it is not in right state {}",
                            r.state
                        )));
                    }
                    me.router_changed(r.network_id).await?;
                }
                RouterAction::Destroy => {
                    me.router_leaves_host(&r).await?;
                    pips::remove_router(&me.db, r.id).await?
                }
            }
            me.audit(&who, event, ("DomainRouter", &r.uuid, &r.name), format!("Router {} {}", r.name, done(action)))
                .await?;
            let view = match action {
                RouterAction::Destroy => {
                    let gone =
                        RouterRow { state: "Destroyed".into(), host_id: None, host_uuid: None, host_name: None, ..r };
                    me.router_reply(&gone).await?
                }
                _ => {
                    let now = pips::router(&me.db, &r.uuid).await?.ok_or_else(|| no_such("router", &r.uuid))?;
                    me.router_reply(&now).await?
                }
            };
            Ok(wrap("router", view))
        };
        let class = format!("org.apache.cloudstack.api.command.admin.router.{class}");
        let spec =
            crate::jobs::JobSpec { cmd: &class, command: cmd.name, instance: Some(("DomainRouter", id.to_owned())) };
        let job = self.jobs.submit(caller, spec, work).await?;
        Ok(Reply::AsyncJob { job_id: job, id: None })
    }
}

fn done(action: RouterAction) -> &'static str {
    match action {
        RouterAction::Start => "started",
        RouterAction::Stop => "stopped",
        RouterAction::Reboot => "rebooted",
        RouterAction::Destroy => "destroyed",
    }
}

fn router_view(r: &RouterRow, n: &NetworkRow, s: &RouterState) -> Map<String, Value> {
    let source_nat = s.source_nat();
    let guest_nic = views::object(json!({
        "id": format!("{}-guest", r.uuid),
        "networkid": n.uuid,
        "networkname": n.name,
        "ipaddress": s.guest.gateway.map(|g| g.to_string()),
        "netmask": n.netmask(),
        "gateway": n.gateway,
        "isdefault": false,
        "traffictype": "Guest",
        "type": n.guest_type,
        "broadcasturi": n.vlan.map(|v| super::networks::vlan_uri(Some(v))),
        "isolationuri": n.vlan.map(|v| super::networks::vlan_uri(Some(v))),
    }));
    let mut nics = vec![Value::Object(guest_nic)];
    for p in &s.public {
        nics.push(Value::Object(views::object(json!({
            "id": format!("{}-{}", r.uuid, p.id),
            "ipaddress": p.address.to_string(),
            "netmask": std::net::Ipv4Addr::from(nets::prefix_mask(i64::from(p.prefix))).to_string(),
            "gateway": p.gateway.to_string(),
            "isdefault": p.source_nat,
            "traffictype": "Public",
            "type": "Virtual",
            "broadcasturi": super::networks::vlan_uri(p.vlan),
            "isolationuri": super::networks::vlan_uri(p.vlan),
        }))));
    }
    let dns = n.dns();
    views::object(json!({
        "id": r.uuid,
        "name": r.name,
        "state": r.state,
        "role": "VIRTUAL_ROUTER",
        "zoneid": r.zone_uuid,
        "zonename": r.zone_name,
        "hostid": r.host_uuid,
        "hostname": r.host_name,
        "hypervisor": r.hypervisor,
        "dns1": dns.first(),
        "dns2": dns.get(1),
        "networkdomain": n.network_domain,
        "gateway": source_nat.map(|p| p.gateway.to_string()),
        "publicip": source_nat.map(|p| p.address.to_string()),
        "publicnetmask": source_nat.map(|p| std::net::Ipv4Addr::from(nets::prefix_mask(i64::from(p.prefix))).to_string()),
        "guestipaddress": s.guest.gateway.map(|g| g.to_string()),
        "guestnetmask": n.netmask(),
        "guestnetworkid": n.uuid,
        "guestnetworkname": n.name,
        "account": r.account_name,
        "domainid": r.domain_uuid,
        "domain": r.domain_name,
        "created": format_time(r.created),
        "isredundantrouter": false,
        "redundantstate": "UNKNOWN",
        "requiresupgrade": false,
        "version": CLOUDSTACK_VERSION,
        "generation": r.generation,
        "nic": nics,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::networks::ip_to_int;

    #[test]
    fn a_used_up_zone_names_its_ranges() {
        let a = |s: &str| ip_to_int(s.parse().unwrap());
        let e = exhausted("Demo", &[(a("198.51.100.10"), a("198.51.100.11")), (a("203.0.113.5"), a("203.0.113.5"))]);
        assert_eq!(e.code.code(), 533);
        assert_eq!(
            e.text,
            "Insufficient address capacity: every address of the public IP range 198.51.100.10-198.51.100.11, \
             203.0.113.5-203.0.113.5 of zone Demo is allocated"
        );
        let none = exhausted("Demo", &[]);
        assert_eq!(none.text, "Insufficient address capacity: zone Demo has no public IP range");
    }

    #[test]
    fn prefixes_come_from_netmasks() {
        assert_eq!(prefix_of("255.255.255.0"), 24);
        assert_eq!(prefix_of("255.255.254.0"), 23);
        assert_eq!(prefix_of("not a mask"), 32);
    }
}
