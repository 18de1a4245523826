//! Guest networking: physical networks and their traffic types, network offerings,
//! guest networks with their VLANs and IP ranges, and NICs.
//!
//! Addresses are the core's: VLAN IDs, IPs and MACs are handed out in database
//! transactions (`cloud::networks`). The network drivers only build what was decided,
//! on each host: `restartNetwork` builds a network (bridge, VLAN, DHCP service) on every
//! Up KVM host of its zone; `deleteNetwork` tears it down there.

use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{
    IpRangeQuery, NetworkOfferingQuery, NetworkQuery, NetworkRequest, NetworkUpdate, NewIpRangeRequest,
    NewNetworkRequest, NewPhysicalNetworkRequest, PhysicalNetworkUpdate,
};
use crate::auth::{Caller, RoleType};
use crate::cloud::infra::{self, InfraFilter};
use crate::cloud::networks::{
    self as nets, NetworkError, NetworkFilter, NetworkRow, NewNetwork, NewRange, NicFilter, NicRow, OfferingFilter,
    OfferingRow, PhysicalFilter, PhysicalNetworkRow, RangeFilter, RangeRow, VlanChoice, int_to_ip, ip_to_int,
    parse_vlan_ranges, prefix_mask, vlan_in_ranges,
};
use crate::db::{Db, format_time};
use crate::jobs::Outcome;
use crate::plugins::NetworkSpec;

use super::drivers::{DEFAULT_ISOLATION, isolation_of};
use super::infra::{check_netmask, one_of};
use super::instances::blocking;
use super::volumes::wrap;
use super::{Orchestrator, list, no_such, not_yours, object, views};

const TRAFFIC_TYPES: &[&str] = &["Guest", "Management", "Public", "Storage"];

impl From<NetworkError> for ApiError {
    fn from(e: NetworkError) -> Self {
        match e {
            NetworkError::Db(e) => e.into(),
            NetworkError::NoFreeAddress(_) | NetworkError::NoFreeVlan { .. } => {
                ApiError::insufficient_capacity(e.to_string())
            }
            NetworkError::Gone(_) => ApiError::invalid_param(e.to_string()),
            _ => ApiError::invalid_param(e.to_string()),
        }
    }
}

fn invalid(text: impl Into<String>) -> ApiError {
    ApiError::invalid_param(text)
}

fn ipv4(param: &str, value: &str) -> Result<Ipv4Addr, ApiError> {
    value.parse().map_err(|_| invalid(format!("Invalid value of parameter {param}: {value} is not an IPv4 address")))
}

/// A VLAN as clients give it: "100" or "vlan://100".
pub(super) fn vlan_id(value: &str) -> Result<u16, ApiError> {
    value
        .strip_prefix("vlan://")
        .unwrap_or(value)
        .parse::<u16>()
        .ok()
        .filter(|v| (1..=4094).contains(v))
        .ok_or_else(|| invalid(format!("Invalid value of parameter vlan: {value} is not a VLAN ID (1-4094)")))
}

/// The subnet of gateway/netmask: (network address, prefix).
fn subnet(gateway: Ipv4Addr, netmask: &str) -> Result<(i64, i64), ApiError> {
    let mask = check_netmask("netmask", netmask)?;
    let prefix = i64::from(mask.leading_ones());
    if prefix > 30 {
        return Err(invalid(format!("The netmask {netmask} leaves no room for guests; use /30 or wider")));
    }
    let network = i64::from(u32::from(gateway) & mask);
    let g = ip_to_int(gateway);
    let broadcast = network + (1i64 << (32 - prefix)) - 1;
    if g == network || g == broadcast {
        return Err(invalid(format!("The gateway {gateway} is the network's own or broadcast address")));
    }
    Ok((network, prefix))
}

/// A segment as CloudStack names it: "vlan://100", or "untagged".
pub(super) fn vlan_uri(vlan: Option<i64>) -> String {
    vlan.map_or("untagged".to_owned(), |v| format!("vlan://{v}"))
}

fn cidr_text((address, prefix): (i64, i64)) -> String {
    format!("{}/{prefix}", int_to_ip(address))
}

pub(super) fn overlaps(a: (i64, i64), b: (i64, i64)) -> bool {
    let end = |(addr, prefix): (i64, i64)| addr + (1i64 << (32 - prefix)) - 1;
    a.0 <= end(b) && b.0 <= end(a)
}

/// Checks an address range against a subnet: both ends IPv4, start ≤ end, inside.
pub(super) fn check_range(start: &str, end: Option<&str>, subnet: (i64, i64)) -> Result<(i64, i64), ApiError> {
    let s = ip_to_int(ipv4("startip", start)?);
    let e = match end {
        Some(e) => ip_to_int(ipv4("endip", e)?),
        None => s,
    };
    if s > e {
        return Err(invalid(format!("The start IP {start} is after the end IP {}", end.unwrap_or(start))));
    }
    let mask = i64::from(prefix_mask(subnet.1));
    for (name, a) in [("startip", s), ("endip", e)] {
        if a & mask != subnet.0 {
            return Err(invalid(format!(
                "The {name} {} is outside the network's CIDR {}",
                int_to_ip(a),
                cidr_text(subnet)
            )));
        }
    }
    Ok((s, e))
}

/// Whether a physical network hands its networks segments (VLAN IDs, VNIs…): it has an
/// isolation method and segment ranges.
fn has_segments(p: &PhysicalNetworkRow) -> bool {
    !p.isolation_method.is_empty() && p.vlan.as_deref().is_some_and(|v| !v.trim().is_empty())
}

/// What the driver is told about a network; `dhcp` is the service's reserved address.
pub fn driver_spec(n: &NetworkRow, dhcp: Option<&str>) -> Result<NetworkSpec, ApiError> {
    let physical = n.guest_label.clone().ok_or_else(|| {
        invalid(format!(
            "Physical network {} has no Guest traffic type with a KVM network label: add one with addTrafficType \
             traffictype=Guest kvmnetworklabel=<bridge>",
            n.physical_network_uuid
        ))
    })?;
    let segment = n.vlan.and_then(|v| u32::try_from(v).ok());
    Ok(NetworkSpec {
        id: n.uuid.clone(),
        physical,
        // The segment is a VLAN ID when it fits one; drivers of other methods read `segment`.
        vlan: segment.filter(|v| (1..=4094).contains(v)).map(|v| v as u16),
        isolation: super::drivers::isolation_of(&n.isolation_method).to_owned(),
        segment,
        cidr: n.cidr().unwrap_or_default(),
        gateway: n.gateway.clone(),
        dns: n.dns(),
        dhcp_server: match (dhcp, n.cidr_prefix) {
            (Some(d), Some(p)) => Some(format!("{d}/{p}")),
            _ => None,
        },
    })
}

/// The spec of a network with its DHCP address reserved (on first use).
pub async fn spec_with_dhcp(db: &Db, n: &NetworkRow) -> Result<NetworkSpec, ApiError> {
    let dhcp = nets::dhcp_address(db, n).await?;
    driver_spec(n, dhcp.as_deref())
}

impl Orchestrator {
    /// 431 for an isolation method no loaded network driver serves, naming those served.
    fn unserved_method(&self, method: &str) -> ApiError {
        let served = self.served_isolation_methods();
        invalid(format!(
            "Invalid value of parameter isolationmethods: {method}; the loaded network drivers serve {}",
            if served.is_empty() { "none".to_owned() } else { served.join(", ") }
        ))
    }

    fn physical_view(&self, p: &PhysicalNetworkRow) -> Map<String, Value> {
        let serving = self.plugins.network_serving(isolation_of(&p.isolation_method));
        physical_view(p, serving.map(|(d, _)| (d.info.name.clone(), d.info.version.clone())))
    }

    /// A network as the API shows it, in Alert when its driver cannot serve it now.
    fn network_view(&self, n: &NetworkRow, caller: &Caller) -> Map<String, Value> {
        network_view(n, caller, self.network_problem_text(n))
    }

    pub(super) async fn execute_network(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        request: NetworkRequest,
    ) -> Result<Reply, ApiError> {
        use NetworkRequest::*;
        match request {
            CreatePhysicalNetwork(r) => Box::pin(self.create_physical(caller, cmd, r)).await,
            ListPhysicalNetworks { id, name, zone_id, listing } => {
                let zone_id = match zone_id {
                    Some(z) => Some(infra::zone(&self.db, &z).await?.ok_or_else(|| no_such("zone", &z))?.id),
                    None => None,
                };
                let f = PhysicalFilter { uuid: id, name, zone_id, keyword: listing.keyword };
                let (rows, total) = nets::list_physical(&self.db, &f, listing.page).await?;
                Ok(list("physicalnetwork", total, rows.iter().map(|p| self.physical_view(p)).collect()))
            }
            UpdatePhysicalNetwork(u) => Box::pin(self.update_physical(caller, cmd, u)).await,
            DeletePhysicalNetwork { id } => Box::pin(self.delete_physical(caller, cmd, &id)).await,
            AddTrafficType { physical_network_id, traffic_type, kvm_label } => {
                Box::pin(self.add_traffic_type(caller, cmd, &physical_network_id, &traffic_type, kvm_label)).await
            }
            ListTrafficTypes { physical_network_id, page } => {
                let p = Box::pin(self.physical(&physical_network_id)).await?;
                let (rows, total) = nets::traffic_types(&self.db, Some(p.id), None, page).await?;
                Ok(list("traffictype", total, rows.iter().map(traffic_view).collect()))
            }
            DeleteTrafficType { id } => Box::pin(self.delete_traffic_type(caller, cmd, &id)).await,
            ListNetworkOfferings(q) => Box::pin(self.list_network_offerings(q)).await,
            CreateNetwork(r) => Box::pin(self.create_network(caller, r)).await,
            ListNetworks(q) => Box::pin(self.list_networks(caller, q)).await,
            UpdateNetwork(u) => Box::pin(self.update_network(caller, cmd, u)).await,
            DeleteNetwork { id, forced } => Box::pin(self.delete_network(caller, cmd, &id, forced)).await,
            RestartNetwork { id, cleanup } => Box::pin(self.restart_network(caller, cmd, &id, cleanup)).await,
            ListNics { vm_id, nic_id, network_id, page } => {
                let network_id = match network_id {
                    Some(n) => Some(Box::pin(self.network_for(caller, &n)).await?.id),
                    None => None,
                };
                let f = NicFilter { uuid: nic_id, instance_uuid: Some(vm_id), network_id };
                let (rows, _) = nets::list_nics(&self.db, &f, None).await?;
                let mut visible = Vec::new();
                for nic in rows {
                    if let Some(n) = nets::network_by_id(&self.db, nic.network_id).await?
                        && self.may_use(caller, &n)
                    {
                        visible.push(nic_view(&nic, &n));
                    }
                }
                let total = visible.len() as i64;
                let page = match page {
                    Some((page, size)) => {
                        visible.into_iter().skip(((page - 1) * size) as usize).take(size as usize).collect()
                    }
                    None => visible,
                };
                Ok(list("nic", total, page))
            }
            CreateVlanIpRange(r) => Box::pin(self.create_ip_range(caller, r)).await,
            ListVlanIpRanges(q) => Box::pin(self.list_ip_ranges(q)).await,
            DeleteVlanIpRange { id } => Box::pin(self.delete_ip_range(caller, &id)).await,
        }
    }

    /// Runs `work` as an async job about `(kind, uuid)`.
    async fn network_job(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        class: &str,
        instance: (&str, &str),
        id: Option<String>,
        work: impl Future<Output = Outcome> + Send + 'static,
    ) -> Result<Reply, ApiError> {
        let class = format!("org.apache.cloudstack.api.command.{class}");
        let spec =
            crate::jobs::JobSpec { cmd: &class, command: cmd.name, instance: Some((instance.0, instance.1.into())) };
        let job = self.jobs.submit(caller, spec, work).await?;
        Ok(Reply::AsyncJob { job_id: job, id })
    }

    async fn physical(&self, id: &str) -> Result<PhysicalNetworkRow, ApiError> {
        nets::physical(&self.db, id).await?.ok_or_else(|| no_such("physical network", id))
    }

    // ---------------------------------------------------------------- physical networks

    async fn create_physical(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        r: NewPhysicalNetworkRequest,
    ) -> Result<Reply, ApiError> {
        let zone = infra::zone(&self.db, &r.zone_id).await?.ok_or_else(|| no_such("zone", &r.zone_id))?;
        if r.name.trim().is_empty() {
            return Err(invalid("The physical network name cannot be empty"));
        }
        let same = PhysicalFilter { name: Some(r.name.clone()), zone_id: Some(zone.id), ..Default::default() };
        if !nets::list_physical(&self.db, &same, None).await?.0.is_empty() {
            return Err(invalid(format!("A physical network named {} already exists in zone {}", r.name, zone.name)));
        }
        let methods = r.isolation_methods.unwrap_or_default();
        // Stored as the serving driver spells it; none given is the default method, shown
        // as no method at all (CloudStack's flat networks).
        let isolation = match methods.as_slice() {
            [] => String::new(),
            [m] => match self.plugins.network_serving(m) {
                Some((_, spelled)) => spelled,
                None if m.eq_ignore_ascii_case("none") || m.eq_ignore_ascii_case("L3") => String::new(),
                None => return Err(self.unserved_method(m)),
            },
            other => {
                return Err(invalid(format!(
                    "Invalid value of parameter isolationmethods: {}; give one isolation method",
                    other.join(",")
                )));
            }
        };
        if isolation.is_empty() && self.plugins.network_serving(DEFAULT_ISOLATION).is_none() {
            return Err(self.unserved_method(DEFAULT_ISOLATION));
        }
        let vlan = match &r.vlan {
            Some(v) if isolation.is_empty() => {
                return Err(invalid(format!("A flat physical network (no isolation method) cannot have VLANs ({v})")));
            }
            Some(v) => Some(normalize_ranges(v)?),
            None => None,
        };
        let range = match r.broadcast_domain_range.as_deref() {
            Some(b) => one_of("broadcastdomainrange", b, &["ZONE", "POD"])?,
            None => "ZONE",
        };
        let domain_id = match &r.domain_id {
            Some(d) => {
                Some(crate::auth::store::domain_by_uuid(&self.db, d).await?.ok_or_else(|| no_such("domain", d))?.id)
            }
            None => None,
        };
        let new = nets::NewPhysical {
            name: r.name.clone(),
            zone_id: zone.id,
            vlan,
            isolation_method: isolation,
            broadcast_domain_range: range.into(),
            tags: r.tags.map(|t| t.join(",")),
            network_speed: r.network_speed,
            domain_id,
        };
        // Created before the job runs, so that the reply's id names it; the job reports it.
        let uuid = nets::create_physical(&self.db, new).await?;
        let p = self.physical(&uuid).await?;
        self.audit(
            caller,
            "PHYSICAL.NETWORK.CREATE",
            ("PhysicalNetwork", &p.uuid, &p.name),
            format!("Physical network {} created in zone {}", p.name, zone.name),
        )
        .await?;
        let view = self.physical_view(&p);
        self.network_job(
            caller,
            cmd,
            "admin.network.CreatePhysicalNetworkCmd",
            ("PhysicalNetwork", &uuid),
            Some(uuid.clone()),
            async move { Ok(wrap("physicalnetwork", view)) },
        )
        .await
    }

    async fn update_physical(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        u: PhysicalNetworkUpdate,
    ) -> Result<Reply, ApiError> {
        let p = self.physical(&u.id).await?;
        let mut ranges = match &p.vlan {
            Some(v) => parse_vlan_ranges(v).map_err(invalid)?,
            None => vec![],
        };
        let mut changed = false;
        if let Some(v) = &u.vlan {
            if p.isolation_method.is_empty() {
                return Err(invalid(format!(
                    "Physical network {} is flat (no isolation method); it has no VLANs",
                    p.name
                )));
            }
            // CloudStack adds the given range to the existing ones.
            ranges.extend(parse_vlan_ranges(v).map_err(|e| invalid(format!("Invalid value of parameter vlan: {e}")))?);
            changed = true;
        }
        if let Some(v) = &u.remove_vlan {
            let gone =
                parse_vlan_ranges(v).map_err(|e| invalid(format!("Invalid value of parameter removevlan: {e}")))?;
            ranges = subtract(&ranges, &gone);
            changed = true;
        }
        if changed {
            for (vlan, user) in nets::vlans_in_use(&self.db, p.id).await? {
                if !vlan_in_ranges(vlan as u16, &ranges) && was_in(vlan, p.vlan.as_deref()) {
                    return Err(ApiError::in_use(format!(
                        "VLAN {vlan} is in use by network {user}; the physical network's range must keep it"
                    )));
                }
            }
        }
        let state = match &u.state {
            Some(s) => Some(one_of("state", s, &["Enabled", "Disabled"])?),
            None => None,
        };
        if changed {
            let text = (!ranges.is_empty()).then(|| format_ranges(&merge(&ranges)));
            infra::set_text(&self.db, "physical_networks", p.id, "vlan", text).await?;
        }
        if let Some(s) = state {
            infra::set_text(&self.db, "physical_networks", p.id, "state", Some(s.into())).await?;
        }
        if let Some(t) = u.tags {
            infra::set_text(&self.db, "physical_networks", p.id, "tags", Some(t.join(","))).await?;
        }
        if let Some(s) = u.network_speed {
            infra::set_text(&self.db, "physical_networks", p.id, "network_speed", Some(s)).await?;
        }
        let p = self.physical(&u.id).await?;
        self.audit(
            caller,
            "PHYSICAL.NETWORK.UPDATE",
            ("PhysicalNetwork", &p.uuid, &p.name),
            format!("Physical network {} updated", p.name),
        )
        .await?;
        let view = self.physical_view(&p);
        self.network_job(
            caller,
            cmd,
            "admin.network.UpdatePhysicalNetworkCmd",
            ("PhysicalNetwork", &p.uuid),
            None,
            async move { Ok(wrap("physicalnetwork", view)) },
        )
        .await
    }

    async fn delete_physical(&self, caller: &Caller, cmd: &'static Command, id: &str) -> Result<Reply, ApiError> {
        let p = self.physical(id).await?;
        let f = NetworkFilter { physical_network_id: Some(p.id), ..Default::default() };
        let (users, _) = nets::list_networks(&self.db, &Default::default(), None, &f, None).await?;
        if !users.is_empty() {
            let names: Vec<&str> = users.iter().map(|n| n.name.as_str()).collect();
            return Err(ApiError::in_use(format!(
                "Physical network {} is in use by network(s) {}; delete them first",
                p.name,
                names.join(", ")
            )));
        }
        self.no_public_ranges_on(p.id, &p.name).await?;
        nets::remove_physical(&self.db, p.id).await?;
        self.audit(
            caller,
            "PHYSICAL.NETWORK.DELETE",
            ("PhysicalNetwork", &p.uuid, &p.name),
            format!("Physical network {} deleted", p.name),
        )
        .await?;
        self.network_job(
            caller,
            cmd,
            "admin.network.DeletePhysicalNetworkCmd",
            ("PhysicalNetwork", &p.uuid),
            None,
            async move { Ok(success()) },
        )
        .await
    }

    async fn add_traffic_type(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        physical_id: &str,
        traffic_type: &str,
        kvm_label: Option<String>,
    ) -> Result<Reply, ApiError> {
        let p = self.physical(physical_id).await?;
        let kind = one_of("traffictype", traffic_type, TRAFFIC_TYPES)?;
        let (existing, _) = nets::traffic_types(&self.db, Some(p.id), None, None).await?;
        if existing.iter().any(|t| t.traffic_type == kind) {
            return Err(invalid(format!("Physical network {} already carries {kind} traffic", p.name)));
        }
        if kind == "Guest" {
            // Only one physical network per zone carries guest traffic of each kind, so
            // that networks created without physicalnetworkid land on a definite one.
            let f = PhysicalFilter { zone_id: Some(p.zone_id), ..Default::default() };
            for other in nets::list_physical(&self.db, &f, None).await?.0 {
                if other.id != p.id && other.guest_label.is_some() && other.isolation_method == p.isolation_method {
                    return Err(invalid(format!(
                        "Physical network {} in zone {} already carries Guest traffic with the same isolation method",
                        other.name, p.zone_name
                    )));
                }
            }
        }
        if let Some(l) = &kvm_label
            && (l.is_empty() || l.len() > 15 || !l.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
        {
            return Err(invalid(format!(
                "Invalid value of parameter kvmnetworklabel: {l} is not a bridge name (1-15 letters, digits, '-', '_', '.')"
            )));
        }
        let uuid = nets::add_traffic_type(&self.db, p.id, kind, kvm_label.or_else(|| Some("cloudbr0".into()))).await?;
        self.audit(
            caller,
            "TRAFFIC.TYPE.CREATE",
            ("TrafficType", &uuid, kind),
            format!("{kind} traffic added to physical network {}", p.name),
        )
        .await?;
        let t = nets::traffic_types(&self.db, None, Some(&uuid), None).await?.0.into_iter().next();
        let view = t.as_ref().map(traffic_view).unwrap_or_default();
        self.network_job(
            caller,
            cmd,
            "admin.usage.AddTrafficTypeCmd",
            ("TrafficType", &uuid),
            Some(uuid.clone()),
            async move { Ok(wrap("traffictype", view)) },
        )
        .await
    }

    /// 536 while a physical network carries public IP ranges.
    async fn no_public_ranges_on(&self, physical_id: i64, name: &str) -> Result<(), ApiError> {
        let f = crate::cloud::public_ips::RangeFilter { physical_network_id: Some(physical_id), ..Default::default() };
        let ranges = crate::cloud::public_ips::list_ranges(&self.db, &f).await?;
        if !ranges.is_empty() {
            return Err(ApiError::in_use(format!(
                "Physical network {name} carries {} public IP range(s); delete them first",
                ranges.len()
            )));
        }
        Ok(())
    }

    async fn delete_traffic_type(&self, caller: &Caller, cmd: &'static Command, id: &str) -> Result<Reply, ApiError> {
        let t = nets::traffic_types(&self.db, None, Some(id), None)
            .await?
            .0
            .into_iter()
            .next()
            .ok_or_else(|| no_such("traffic type", id))?;
        if t.traffic_type == "Guest" {
            let f = NetworkFilter { physical_network_id: Some(t.physical_network_id), ..Default::default() };
            let (users, _) = nets::list_networks(&self.db, &Default::default(), None, &f, None).await?;
            if !users.is_empty() {
                return Err(ApiError::in_use(format!(
                    "Guest traffic of physical network {} is in use by {} network(s); delete them first",
                    t.physical_network_uuid,
                    users.len()
                )));
            }
        }
        if t.traffic_type == "Public" {
            self.no_public_ranges_on(t.physical_network_id, &t.physical_network_uuid).await?;
        }
        nets::delete_traffic_type(&self.db, t.id).await?;
        self.audit(
            caller,
            "TRAFFIC.TYPE.DELETE",
            ("TrafficType", &t.uuid, &t.traffic_type),
            format!("{} traffic removed", t.traffic_type),
        )
        .await?;
        self.network_job(caller, cmd, "admin.usage.DeleteTrafficTypeCmd", ("TrafficType", &t.uuid), None, async move {
            Ok(success())
        })
        .await
    }

    // ---------------------------------------------------------------- offerings

    async fn list_network_offerings(&self, q: NetworkOfferingQuery) -> Result<Reply, ApiError> {
        if let Some(z) = &q.zone_id {
            infra::zone(&self.db, z).await?.ok_or_else(|| no_such("zone", z))?;
        }
        if q.for_vpc == Some(true) {
            // No VPCs here: nothing is for VPCs only.
            return Ok(list("networkoffering", 0, vec![]));
        }
        let f = OfferingFilter {
            uuid: q.id,
            name: q.name,
            guest_ip_type: q.guest_ip_type,
            traffic_type: q.traffic_type,
            state: q.state,
            is_default: q.is_default,
            specify_vlan: q.specify_vlan,
            keyword: q.keyword,
        };
        let (rows, total) = nets::list_offerings(&self.db, &f, q.page).await?;
        Ok(list("networkoffering", total, rows.iter().map(offering_view).collect()))
    }

    // ---------------------------------------------------------------- networks

    /// Whether the caller may see and use a network: its own, or a Domain-wide one of
    /// its domain or a domain above it.
    pub(super) fn may_use(&self, caller: &Caller, n: &NetworkRow) -> bool {
        caller.can_reach(&n) || (n.acl_type == "Domain" && caller.user.domain_path.starts_with(&n.domain_path))
    }

    /// A network the caller may see.
    pub(super) async fn network_for(&self, caller: &Caller, id: &str) -> Result<NetworkRow, ApiError> {
        let n = nets::network(&self.db, id).await?.ok_or_else(|| no_such("network", id))?;
        if !self.may_use(caller, &n) {
            return Err(not_yours("network", id));
        }
        Ok(n)
    }

    /// A network the caller may change: its owner's, or an admin's over it.
    pub(super) async fn network_to_change(&self, caller: &Caller, id: &str) -> Result<NetworkRow, ApiError> {
        let n = self.network_for(caller, id).await?;
        let ok = match n.acl_type.as_str() {
            "Domain" => {
                caller.role != RoleType::User
                    && caller.can_reach_domain(&n.domain_path)
                    && caller.role.may_act_on(RoleType::of_account_type(n.account_type))
            }
            _ => caller.can_reach(&n),
        };
        if !ok {
            return Err(not_yours("network", id));
        }
        Ok(n)
    }

    async fn create_network(&self, caller: &Caller, r: NewNetworkRequest) -> Result<Reply, ApiError> {
        if r.name.trim().is_empty() {
            return Err(invalid("The network name cannot be empty"));
        }
        let offering = nets::offering(&self.db, &r.offering_id)
            .await?
            .ok_or_else(|| no_such("network offering", &r.offering_id))?;
        if offering.state != "Enabled" {
            return Err(invalid(format!("Network offering {} is {}", offering.name, offering.state)));
        }
        let zone = infra::zone(&self.db, &r.zone_id).await?.ok_or_else(|| no_such("zone", &r.zone_id))?;
        let guest_type = offering.guest_ip_type.as_str();
        let is_admin = caller.role != RoleType::User;
        if guest_type == "Shared" && !is_admin {
            return Err(ApiError::permission_denied("Only admins may create Shared networks"));
        }
        let physical = self.guest_physical(&zone, r.physical_network_id.as_deref(), guest_type).await?;
        let method = isolation_of(&physical.isolation_method);
        let (driver, _) = self.plugins.network_serving(method).ok_or_else(|| {
            ApiError::unavailable(format!(
                "No loaded network driver serves isolation method {method} of physical network {}",
                physical.name
            ))
        })?;

        // Who owns it.
        let acl = match r.acl_type.as_deref() {
            Some(a) => one_of("acltype", a, &["Account", "Domain"])?,
            None if guest_type == "Shared" && r.account.is_none() => "Domain",
            None => "Account",
        };
        if acl == "Domain" && guest_type != "Shared" {
            return Err(invalid(format!(
                "{guest_type} networks belong to one account; acltype Domain is for Shared networks"
            )));
        }
        let (account_id, domain_id) = if acl == "Domain" {
            let domain = match &r.domain_id {
                Some(d) => {
                    crate::auth::store::domain_by_uuid(&self.db, d).await?.ok_or_else(|| no_such("domain", d))?
                }
                None => crate::auth::store::domain_by_id(&self.db, caller.user.domain_id)
                    .await?
                    .ok_or_else(|| ApiError::internal("the caller's domain is gone"))?,
            };
            if !caller.can_reach_domain(&domain.path) {
                return Err(not_yours("domain", &domain.uuid));
            }
            (caller.user.account_id, domain.id)
        } else {
            self.owner(caller, r.account.as_deref(), r.domain_id.as_deref()).await?
        };

        // Addresses.
        let gateway = r.gateway.as_deref().map(|g| ipv4("gateway", g)).transpose()?;
        let cidr = match (guest_type, gateway, r.netmask.as_deref()) {
            ("L2", None, None) => None,
            ("L2", _, _) => return Err(invalid("L2 networks have no addresses: leave out gateway and netmask")),
            (_, Some(g), Some(m)) => Some(subnet(g, m)?),
            ("Shared", _, _) => return Err(invalid("Shared networks need gateway and netmask")),
            (_, None, Some(m)) => {
                check_netmask("netmask", m)?;
                return Err(invalid("Give the gateway along with the netmask"));
            }
            ("Isolated", g, None) => {
                // The zone's guest CIDR, as CloudStack: the gateway its first address.
                let text = zone.guest_cidr.clone().unwrap_or_else(|| "10.1.1.0/24".into());
                let (addr, mask) = super::infra::check_cidr("guestcidraddress", &text)?;
                let c = (i64::from(addr), i64::from(mask.leading_ones()));
                if let Some(g) = g
                    && ip_to_int(g) & i64::from(prefix_mask(c.1)) != c.0
                {
                    return Err(invalid(format!("The gateway {g} is outside the zone's guest CIDR {text}")));
                }
                Some(c)
            }
            _ => None,
        };
        let gateway = match (gateway, cidr) {
            (Some(g), _) => Some(g.to_string()),
            (None, Some((addr, _))) => Some(int_to_ip(addr + 1).to_string()),
            (None, None) => None,
        };
        let range = match (&r.start_ip, cidr) {
            (Some(s), Some(c)) => Some(check_range(s, r.end_ip.as_deref(), c)?),
            (Some(_), None) => return Err(invalid("An IP range needs a network with gateway and netmask")),
            (None, _) if r.end_ip.is_some() => return Err(invalid("Give startip along with endip")),
            (None, _) => None,
        };
        for (param, v) in [("dns1", &r.dns1), ("dns2", &r.dns2)] {
            if let Some(v) = v {
                ipv4(param, v)?;
            }
        }
        if let (Some(c), true) = (cidr, r.gateway.is_some() || guest_type == "Shared") {
            for (uuid, name, addr, prefix, kind, owner) in nets::networks_with_cidr(&self.db, zone.id).await? {
                let clash = guest_type == "Shared" || kind == "Shared" || owner == account_id;
                if clash && overlaps(c, (addr, prefix)) {
                    return Err(invalid(format!(
                        "The CIDR {} overlaps network {name} ({uuid}, {})",
                        cidr_text(c),
                        cidr_text((addr, prefix))
                    )));
                }
            }
        }

        // VLAN.
        let vlan_given = r.vlan.as_deref().map(vlan_id).transpose()?;
        let vlan = self.vlan_choice(&physical, &offering, vlan_given, is_admin)?;
        let range = range.map(|(start, end)| NewRange {
            zone_id: zone.id,
            pod_id: None,
            physical_network_id: physical.id,
            vlan: match &vlan {
                VlanChoice::Given(v) => Some(i64::from(*v)),
                _ => None,
            },
            gateway: gateway.clone().unwrap_or_default(),
            netmask: r.netmask.clone().unwrap_or_default(),
            start,
            end,
            for_virtual_network: false,
        });
        let new = NewNetwork {
            name: r.name.clone(),
            display_text: r.display_text.clone().unwrap_or_else(|| r.name.clone()),
            zone_id: zone.id,
            physical_network_id: physical.id,
            offering_id: offering.id,
            account_id,
            domain_id,
            guest_type: guest_type.into(),
            acl_type: acl.into(),
            cidr,
            gateway,
            vlan,
            dns1: r.dns1,
            dns2: r.dns2,
            network_domain: r.network_domain,
            state: if guest_type == "Shared" { "Setup" } else { "Allocated" }.into(),
            driver: (driver.info.name.clone(), driver.info.version.clone()),
            range,
        };
        let uuid = nets::create_network(&self.db, new).await.map_err(|e| match e {
            NetworkError::NoFreeVlan { range, .. } => ApiError::insufficient_capacity(format!(
                "No free VLAN left in the range {range} of physical network {}",
                physical.name
            )),
            other => other.into(),
        })?;
        let n = nets::network(&self.db, &uuid).await?.ok_or_else(|| ApiError::internal("the new network is gone"))?;
        self.audit(caller, "NETWORK.CREATE", ("Network", &n.uuid, &n.name), format!("Network {} created", n.name))
            .await?;
        Ok(object("network", self.network_view(&n, caller)))
    }

    /// The physical network a new network of `guest_type` lands on.
    async fn guest_physical(
        &self,
        zone: &crate::cloud::infra::ZoneRow,
        id: Option<&str>,
        guest_type: &str,
    ) -> Result<PhysicalNetworkRow, ApiError> {
        let p = match id {
            Some(id) => {
                let p = self.physical(id).await?;
                if p.zone_id != zone.id {
                    return Err(invalid(format!("Physical network {} is not in zone {}", p.name, zone.name)));
                }
                p
            }
            None => {
                let f = PhysicalFilter { zone_id: Some(zone.id), ..Default::default() };
                let all = nets::list_physical(&self.db, &f, None).await?.0;
                let carrying: Vec<_> = all.into_iter().filter(|p| p.guest_label.is_some()).collect();
                // Isolated networks need segments; otherwise the first one carrying guests.
                let wanted = |p: &PhysicalNetworkRow| guest_type != "Isolated" || has_segments(p);
                carrying.into_iter().find(wanted).ok_or_else(|| {
                    invalid(format!(
                        "Zone {} has no physical network with Guest traffic for {guest_type} networks: create one with \
                         createPhysicalNetwork and addTrafficType traffictype=Guest",
                        zone.name
                    ))
                })?
            }
        };
        if p.guest_label.is_none() {
            return Err(invalid(format!(
                "Physical network {} carries no Guest traffic; add it with addTrafficType",
                p.name
            )));
        }
        if guest_type == "Isolated" && !has_segments(&p) {
            return Err(invalid(format!(
                "Isolated networks need a physical network with segment (vlan) ranges; physical network {} has none",
                p.name
            )));
        }
        Ok(p)
    }

    fn vlan_choice(
        &self,
        p: &PhysicalNetworkRow,
        offering: &OfferingRow,
        given: Option<u16>,
        is_admin: bool,
    ) -> Result<VlanChoice, ApiError> {
        if p.isolation_method.is_empty() {
            return match given {
                Some(v) => Err(invalid(format!("Physical network {} is flat; it cannot carry VLAN {v}", p.name))),
                None => Ok(VlanChoice::None),
            };
        }
        let ranges = match &p.vlan {
            Some(v) => parse_vlan_ranges(v).map_err(invalid)?,
            None => vec![],
        };
        match given {
            Some(v) => {
                if !is_admin {
                    return Err(ApiError::permission_denied("Only admins may choose a network's VLAN"));
                }
                if !vlan_in_ranges(v, &ranges) {
                    return Err(invalid(format!(
                        "VLAN {v} is outside the VLAN range {} of physical network {}",
                        p.vlan.as_deref().unwrap_or("(none)"),
                        p.name
                    )));
                }
                Ok(VlanChoice::Given(v))
            }
            None if offering.specify_vlan != 0 => {
                Err(invalid(format!("Network offering {} needs a VLAN: give vlan", offering.name)))
            }
            // A method without segment ranges builds unsegmented networks; Isolated ones
            // were refused before (`guest_physical`).
            None if ranges.is_empty() => Ok(VlanChoice::None),
            None => Ok(VlanChoice::FromRange(ranges, p.vlan.clone().unwrap_or_default())),
        }
    }

    async fn list_networks(&self, caller: &Caller, q: NetworkQuery) -> Result<Reply, ApiError> {
        if q.is_system == Some(true) || q.traffic_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("Guest")) {
            // Only guest networks exist here.
            return Ok(list("network", 0, vec![]));
        }
        let zone_id = self.zone_id(q.zone_id.as_deref()).await?;
        let physical_network_id = match &q.physical_network_id {
            Some(p) => Some(self.physical(p).await?.id),
            None => None,
        };
        let scope = self.scope(caller, &q.listing).await?;
        // Users (and anyone not narrowing to an account) also see the Domain-wide
        // networks above them, as CloudStack lists shared networks.
        let shared = (q.listing.account.is_none()).then_some(caller.user.domain_path.as_str());
        let f = NetworkFilter {
            uuid: q.id,
            name: q.name,
            zone_id,
            physical_network_id,
            guest_type: q.guest_type,
            keyword: q.listing.keyword.clone(),
        };
        let (rows, total) = nets::list_networks(&self.db, &scope, shared, &f, q.listing.page).await?;
        Ok(list("network", total, rows.iter().map(|n| self.network_view(n, caller)).collect()))
    }

    async fn update_network(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        u: NetworkUpdate,
    ) -> Result<Reply, ApiError> {
        let n = self.network_to_change(caller, &u.id).await?;
        if u.name.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(invalid("The network name cannot be empty"));
        }
        for (param, v) in [("dns1", &u.dns1), ("dns2", &u.dns2)] {
            if let Some(v) = v {
                ipv4(param, v)?;
            }
        }
        let fields = [
            ("name", u.name),
            ("display_text", u.display_text),
            ("network_domain", u.network_domain),
            ("dns1", u.dns1),
            ("dns2", u.dns2),
        ];
        for (column, value) in fields {
            if let Some(v) = value {
                infra::set_text(&self.db, "networks", n.id, column, Some(v)).await?;
            }
        }
        let n = nets::network(&self.db, &u.id).await?.ok_or_else(|| no_such("network", &u.id))?;
        self.audit(caller, "NETWORK.UPDATE", ("Network", &n.uuid, &n.name), format!("Network {} updated", n.name))
            .await?;
        let view = self.network_view(&n, caller);
        self.network_job(caller, cmd, "user.network.UpdateNetworkCmd", ("Network", &n.uuid), None, async move {
            Ok(wrap("network", view))
        })
        .await
    }

    /// The Up hosts of a zone that run real guests: where its networks are built. Hosts
    /// whose driver is gone are left out (they show as Alert in listHosts).
    async fn network_hosts(&self, zone_id: i64) -> Result<Vec<String>, ApiError> {
        let f = InfraFilter { zone_id: Some(zone_id), ..Default::default() };
        let (hosts, _) = infra::list_hosts(&self.db, &f, Some("Up"), None).await?;
        Ok(hosts.into_iter().filter(|h| self.features_of(h).is_ok_and(|f| !f.simulated)).map(|h| h.name).collect())
    }

    async fn restart_network(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
        cleanup: bool,
    ) -> Result<Reply, ApiError> {
        let n = self.network_to_change(caller, id).await?;
        let hosts = self.network_hosts(n.zone_id).await?;
        let driver = if hosts.is_empty() { None } else { Some(self.network_driver(&n)?) };
        let spec = spec_with_dhcp(&self.db, &n).await?;
        let me = self.clone();
        let who = caller.clone();
        let work = async move {
            // The router first: rebuilt from the database with cleanup (taken off its host
            // first), else (re)applied.
            if cleanup && let Some(old) = crate::cloud::public_ips::router_of_network(&me.db, n.id).await? {
                me.remove_router(&n, &old).await?;
                crate::cloud::public_ips::remove_router(&me.db, old.id).await?;
            }
            me.implement_router(&n, None, true).await?;
            let Some(driver) = driver else {
                return Ok(success_text(format!(
                    "Zone {} has no Up host of a real hypervisor; nothing to build",
                    n.zone_name
                )));
            };
            for host in &hosts {
                let (d, s, h) = (driver.clone(), spec.clone(), host.clone());
                let what = format!("Building network {} on host {host}", n.name);
                blocking(what, move || d.implement(&h, &s)).await?;
            }
            infra::set_text(&me.db, "networks", n.id, "state", Some("Implemented".into())).await?;
            me.audit(
                &who,
                "NETWORK.RESTART",
                ("Network", &n.uuid, &n.name),
                format!("Network {} built on {} host(s)", n.name, hosts.len()),
            )
            .await?;
            Ok(success())
        };
        self.network_job(caller, cmd, "user.network.RestartNetworkCmd", ("Network", id), None, work).await
    }

    async fn delete_network(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
        forced: bool,
    ) -> Result<Reply, ApiError> {
        let n = self.network_to_change(caller, id).await?;
        let nics = nets::nic_count(&self.db, n.id).await?;
        if nics > 0 {
            return Err(ApiError::in_use(format!("Network {} still has {nics} NIC(s); remove them first", n.name)));
        }
        let hosts = if n.state == "Implemented" { self.network_hosts(n.zone_id).await? } else { vec![] };
        let driver = if hosts.is_empty() { None } else { Some(self.network_driver(&n)?) };
        let spec = driver_spec(&n, n.dhcp_server.as_deref()).ok();
        let me = self.clone();
        let who = caller.clone();
        let work = async move {
            // The router goes before the network it stands on.
            if let Some(r) = crate::cloud::public_ips::router_of_network(&me.db, n.id).await?
                && let Err(e) = me.remove_router(&n, &r).await
            {
                if !forced {
                    return Err(e);
                }
                tracing::warn!("{}", e.text);
            }
            if let (Some(driver), Some(spec)) = (driver, spec) {
                for host in &hosts {
                    let (d, s, h) = (driver.clone(), spec.clone(), host.clone());
                    let what = format!("Tearing network {} down on host {host}", n.name);
                    if let Err(e) = blocking(what, move || d.shutdown(&h, &s)).await {
                        if !forced {
                            return Err(e);
                        }
                        tracing::warn!("{}", e.text);
                    }
                }
            }
            crate::cloud::public_ips::release_network(&me.db, n.id).await?;
            nets::remove_network(&me.db, n.id).await?;
            me.audit(&who, "NETWORK.DELETE", ("Network", &n.uuid, &n.name), format!("Network {} deleted", n.name))
                .await?;
            Ok(success())
        };
        self.network_job(caller, cmd, "user.network.DeleteNetworkCmd", ("Network", id), None, work).await
    }

    // ---------------------------------------------------------------- IP ranges

    async fn create_ip_range(&self, caller: &Caller, r: NewIpRangeRequest) -> Result<Reply, ApiError> {
        // CloudStack's default is a public range: forvirtualnetwork true, the zone's.
        let public = match (r.for_virtual_network, &r.network_id, &r.pod_id) {
            (Some(v), _, _) => v,
            (None, None, None) => true,
            _ => false,
        };
        if public {
            if r.network_id.is_some() {
                return Err(invalid(
                    "Public IP ranges (forvirtualnetwork=true) belong to the zone: leave out networkid, or give \
                     forvirtualnetwork=false for a range of a Shared network",
                ));
            }
            return Box::pin(self.create_public_range(caller, r)).await;
        }
        let pod = match &r.pod_id {
            Some(p) => Some(infra::pod(&self.db, p).await?.ok_or_else(|| no_such("pod", p))?),
            None => None,
        };
        let n = match (&r.network_id, &pod) {
            (Some(id), _) => nets::network(&self.db, id).await?.ok_or_else(|| no_such("network", id))?,
            (None, Some(pod)) => {
                // A Basic zone's pod range goes to the zone's flat Shared network.
                let f = NetworkFilter {
                    zone_id: Some(pod.zone_id),
                    guest_type: Some("Shared".into()),
                    ..Default::default()
                };
                let (mut shared, _) = nets::list_networks(&self.db, &Default::default(), None, &f, None).await?;
                shared.retain(|n| n.isolation_method.is_empty());
                match shared.len() {
                    1 => shared.remove(0),
                    0 => {
                        return Err(invalid(format!(
                            "Zone {} has no flat Shared network for pod {}; give networkid",
                            pod.zone_name, pod.name
                        )));
                    }
                    _ => {
                        return Err(invalid(format!(
                            "Zone {} has several flat Shared networks; give networkid",
                            pod.zone_name
                        )));
                    }
                }
            }
            (None, None) => return Err(invalid("Give networkid (or podid in a Basic zone)")),
        };
        if n.guest_type != "Shared" {
            return Err(invalid(format!(
                "IP ranges are for Shared networks; {} network {} uses its whole CIDR",
                n.guest_type, n.name
            )));
        }
        if let Some(z) = &r.zone_id
            && *z != n.zone_uuid
        {
            return Err(invalid(format!("Network {} is not in zone {z}", n.name)));
        }
        if let Some(pod) = &pod
            && pod.zone_id != n.zone_id
        {
            return Err(invalid(format!("Pod {} is not in the zone of network {}", pod.name, n.name)));
        }
        if let Some(p) = &r.physical_network_id
            && *p != n.physical_network_uuid
        {
            return Err(invalid(format!("Network {} is not on physical network {p}", n.name)));
        }
        if let Some(v) = &r.vlan {
            let matches = match (v.as_str(), n.vlan) {
                ("untagged", None) => true,
                (v, Some(have)) => vlan_id(v)? == have as u16,
                (v, None) => {
                    vlan_id(v)?;
                    false
                }
            };
            if !matches {
                return Err(invalid(format!(
                    "The vlan {v} is not the VLAN of network {} ({})",
                    n.name,
                    n.vlan.map_or("untagged".into(), |v| v.to_string())
                )));
            }
        }
        let (Some(addr), Some(prefix)) = (n.cidr_address, n.cidr_prefix) else {
            return Err(invalid(format!("Network {} has no subnet", n.name)));
        };
        if let Some(m) = &r.netmask {
            let mask = check_netmask("netmask", m)?;
            if i64::from(mask.leading_ones()) != prefix {
                return Err(invalid(format!("The netmask {m} is not the netmask of network {}", n.name)));
            }
        }
        if let Some(g) = &r.gateway {
            ipv4("gateway", g)?;
            if Some(g) != n.gateway.as_ref() {
                return Err(invalid(format!(
                    "The gateway {g} is not the gateway of network {} ({})",
                    n.name,
                    n.gateway.as_deref().unwrap_or("none")
                )));
            }
        }
        let start = r.start_ip.as_deref().ok_or_else(|| ApiError::missing_param("createvlaniprange", "startip"))?;
        let (s, e) = check_range(start, r.end_ip.as_deref(), (addr, prefix))?;
        let f = RangeFilter { network_id: Some(n.id), ..Default::default() };
        for other in nets::list_ranges(&self.db, &f, None).await?.0 {
            if s <= other.end_ip && other.start_ip <= e {
                return Err(invalid(format!(
                    "The range {}-{} overlaps the range {}-{} of network {}",
                    int_to_ip(s),
                    int_to_ip(e),
                    int_to_ip(other.start_ip),
                    int_to_ip(other.end_ip),
                    n.name
                )));
            }
        }
        let new = NewRange {
            zone_id: n.zone_id,
            pod_id: pod.as_ref().map(|p| p.id),
            physical_network_id: n.physical_network_id,
            vlan: n.vlan,
            gateway: n.gateway.clone().unwrap_or_default(),
            netmask: n.netmask().unwrap_or_default(),
            start: s,
            end: e,
            for_virtual_network: false,
        };
        let uuid = nets::add_range(&self.db, n.id, &new).await?;
        let f = RangeFilter { uuid: Some(uuid.clone()), ..Default::default() };
        let range = nets::list_ranges(&self.db, &f, None)
            .await?
            .0
            .into_iter()
            .next()
            .ok_or_else(|| no_such("VLAN IP range", &uuid))?;
        self.audit(
            caller,
            "VLAN.IP.RANGE.CREATE",
            ("VlanIpRange", &uuid, &format!("{}-{}", int_to_ip(s), int_to_ip(e))),
            format!("IP range {}-{} added to network {}", int_to_ip(s), int_to_ip(e), n.name),
        )
        .await?;
        Ok(object("vlan", range_view(&range)))
    }

    async fn list_ip_ranges(&self, q: IpRangeQuery) -> Result<Reply, ApiError> {
        let zone_id = self.zone_id(q.zone_id.as_deref()).await?;
        let pod_id = self.pod_id(q.pod_id.as_deref()).await?;
        let network_id = match &q.network_id {
            Some(n) => Some(nets::network(&self.db, n).await?.ok_or_else(|| no_such("network", n))?.id),
            None => None,
        };
        let physical_network_id = match &q.physical_network_id {
            Some(p) => Some(self.physical(p).await?.id),
            None => None,
        };
        let vlan = q.vlan.as_deref().filter(|v| *v != "untagged").map(vlan_id).transpose()?.map(i64::from);
        let f = RangeFilter {
            uuid: q.id,
            zone_id,
            pod_id,
            network_id,
            physical_network_id,
            vlan,
            for_virtual_network: q.for_virtual_network,
        };
        let public = q.for_virtual_network != Some(false) && q.pod_id.is_none() && q.network_id.is_none();
        if !public {
            let (rows, total) = nets::list_ranges(&self.db, &f, q.page).await?;
            return Ok(list("vlaniprange", total, rows.iter().map(range_view).collect()));
        }
        // Guest ranges, then the zones' public ones, paged together.
        let mut all: Vec<Map<String, Value>> = if q.for_virtual_network == Some(true) {
            vec![]
        } else {
            nets::list_ranges(&self.db, &f, None).await?.0.iter().map(range_view).collect()
        };
        let pf = crate::cloud::public_ips::RangeFilter { uuid: f.uuid, zone_id, physical_network_id, vlan };
        all.extend(
            crate::cloud::public_ips::list_ranges(&self.db, &pf)
                .await?
                .iter()
                .map(super::public_ips::public_range_view),
        );
        let total = all.len() as i64;
        let page = match q.page {
            Some((page, size)) => all.into_iter().skip(((page - 1) * size) as usize).take(size as usize).collect(),
            None => all,
        };
        Ok(list("vlaniprange", total, page))
    }

    async fn delete_ip_range(&self, caller: &Caller, id: &str) -> Result<Reply, ApiError> {
        let f = RangeFilter { uuid: Some(id.into()), ..Default::default() };
        let Some(r): Option<RangeRow> = nets::list_ranges(&self.db, &f, None).await?.0.into_iter().next() else {
            let pf = crate::cloud::public_ips::RangeFilter { uuid: Some(id.into()), ..Default::default() };
            let public = crate::cloud::public_ips::list_ranges(&self.db, &pf).await?;
            let r = public.first().ok_or_else(|| no_such("VLAN IP range", id))?;
            return Box::pin(self.delete_public_range(caller, r)).await;
        };
        let used = nets::range_use(&self.db, &r).await?;
        if used > 0 {
            return Err(ApiError::in_use(format!(
                "The range {}-{} has {used} address(es) in use by NICs; release them first",
                int_to_ip(r.start_ip),
                int_to_ip(r.end_ip)
            )));
        }
        nets::delete_range(&self.db, &r).await?;
        let name = format!("{}-{}", int_to_ip(r.start_ip), int_to_ip(r.end_ip));
        self.audit(caller, "VLAN.IP.RANGE.DELETE", ("VlanIpRange", &r.uuid, &name), format!("IP range {name} deleted"))
            .await?;
        Ok(Reply::Success { display_text: None })
    }
}

fn success() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("success".into(), Value::Bool(true));
    m
}

fn success_text(text: String) -> Map<String, Value> {
    let mut m = success();
    m.insert("displaytext".into(), Value::String(text));
    m
}

// ------------------------------------------------------------------ VLAN range sets

fn normalize_ranges(text: &str) -> Result<String, ApiError> {
    let ranges = parse_vlan_ranges(text).map_err(|e| invalid(format!("Invalid value of parameter vlan: {e}")))?;
    Ok(format_ranges(&merge(&ranges)))
}

fn merge(ranges: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut sorted = ranges.to_vec();
    sorted.sort();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for (a, b) in sorted {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn subtract(ranges: &[(u16, u16)], gone: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let keep: Vec<u16> =
        merge(ranges).iter().flat_map(|(a, b)| *a..=*b).filter(|v| !vlan_in_ranges(*v, gone)).collect();
    merge(&keep.iter().map(|v| (*v, *v)).collect::<Vec<_>>())
}

fn format_ranges(ranges: &[(u16, u16)]) -> String {
    ranges.iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect::<Vec<_>>().join(",")
}

/// Whether a VLAN came from the physical network's range (Shared networks may have
/// been given one from it too): those the range must keep.
fn was_in(vlan: i64, old: Option<&str>) -> bool {
    old.and_then(|o| parse_vlan_ranges(o).ok()).is_some_and(|r| vlan_in_ranges(vlan as u16, &r))
}

// ------------------------------------------------------------------ views

/// A physical network as the API shows it, with the driver serving its isolation method
/// now, or with the reason none does (its state stays the operator's Enabled/Disabled).
fn physical_view(p: &PhysicalNetworkRow, serving: Option<(String, String)>) -> Map<String, Value> {
    let method = isolation_of(&p.isolation_method);
    let reason = serving.is_none().then(|| format!("No loaded network driver serves isolation method {method}"));
    let (driver, version) = serving.unzip();
    views::object(json!({
        "driver": driver,
        "driverversion": version,
        "details": reason.map(|r| json!({ "reason": r })),
        "id": p.uuid,
        "name": p.name,
        "zoneid": p.zone_uuid,
        "zonename": p.zone_name,
        "state": p.state,
        "vlan": p.vlan,
        "isolationmethods": if p.isolation_method.is_empty() { None } else { Some(&p.isolation_method) },
        "broadcastdomainrange": p.broadcast_domain_range,
        "tags": p.tags,
        "networkspeed": p.network_speed,
        "domainid": p.domain_uuid,
    }))
}

fn traffic_view(t: &nets::TrafficTypeRow) -> Map<String, Value> {
    views::object(json!({
        "id": t.uuid,
        "traffictype": t.traffic_type,
        "physicalnetworkid": t.physical_network_uuid,
        "kvmnetworklabel": t.kvm_label,
    }))
}

fn services(list: &str, providers: &str) -> Vec<Value> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| json!({ "name": s, "provider": [{ "name": nets::provider_of(providers, s) }] }))
        .collect()
}

fn offering_view(o: &OfferingRow) -> Map<String, Value> {
    views::object(json!({
        "id": o.uuid,
        "name": o.name,
        "displaytext": o.display_text,
        "guestiptype": o.guest_ip_type,
        "traffictype": o.traffic_type,
        "state": o.state,
        "isdefault": o.is_default != 0,
        "specifyvlan": o.specify_vlan != 0,
        "specifyipranges": o.specify_ip_ranges != 0,
        "availability": o.availability,
        "conservemode": o.conserve_mode != 0,
        "forvpc": false,
        "ispersistent": false,
        "egressdefaultpolicy": o.egress_default_policy != 0,
        "service": services(&o.services, &o.service_providers),
        "created": format_time(o.created),
    }))
}

fn network_view(n: &NetworkRow, caller: &Caller, problem: Option<String>) -> Map<String, Value> {
    let admin = caller.is_root_admin();
    let uri = n.vlan.map(|v| format!("vlan://{v}"));
    let mut view = views::object(json!({
        // A network whose driver is gone (or no longer serves its method) cannot be built.
        "state": if problem.is_some() { "Alert" } else { n.state.as_str() },
        "details": problem.map(|p| json!({ "reason": p })),
        "driver": if admin { Some(&n.driver) } else { None },
        "driverversion": if admin { Some(&n.driver_version) } else { None },
        "id": n.uuid,
        "name": n.name,
        "displaytext": n.display_text,
        "zoneid": n.zone_uuid,
        "zonename": n.zone_name,
        "physicalnetworkid": n.physical_network_uuid,
        "networkofferingid": n.offering_uuid,
        "networkofferingname": n.offering_name,
        "networkofferingdisplaytext": n.offering_display_text,
        "networkofferingconservemode": n.offering_conserve_mode != 0,
        "networkofferingavailability": n.offering_availability,
        "type": n.guest_type,
        "traffictype": "Guest",
        "cidr": n.cidr(),
        "gateway": n.gateway,
        "netmask": n.netmask(),
        "vlan": if admin { n.vlan.map(|v| v.to_string()) } else { None },
        "broadcastdomaintype": if n.vlan.is_some() { "Vlan" } else { "Native" },
        "broadcasturi": if admin { uri } else { None },
        "dns1": n.dns1.clone().unwrap_or_else(|| n.zone_dns1.clone()),
        "dns2": n.dns2.clone().or_else(|| n.zone_dns2.clone()),
        "networkdomain": n.network_domain,
        "acltype": n.acl_type,
        "account": if n.acl_type == "Account" { Some(&n.account_name) } else { None },
        "domainid": n.domain_uuid,
        "domain": n.domain_name,
        "issystem": false,
        "isdefault": false,
        "restartrequired": false,
        "specifyipranges": n.specify_ip_ranges != 0,
        "canusefordeploy": true,
        "ispersistent": false,
        "displaynetwork": true,
        "related": n.uuid,
        "dhcpserver": n.dhcp_server,
        "service": services(&n.offering_services, &n.offering_service_providers),
        "created": format_time(n.created),
    }));
    // Apart: one more key would take json! past its recursion limit.
    view.insert("egressdefaultpolicy".into(), Value::Bool(n.offering_egress_default_policy != 0));
    view
}

fn range_view(r: &RangeRow) -> Map<String, Value> {
    let prefix = r.netmask.parse::<Ipv4Addr>().map(|m| u32::from(m).leading_ones()).unwrap_or(0);
    let network = r.gateway.parse::<Ipv4Addr>().map(|g| u32::from(g) & prefix_mask(i64::from(prefix))).unwrap_or(0);
    views::object(json!({
        "id": r.uuid,
        "forvirtualnetwork": r.for_virtual_network != 0,
        "zoneid": r.zone_uuid,
        "vlan": vlan_uri(r.vlan),
        "account": if r.acl_type == "Account" { Some(&r.account_name) } else { None },
        "domainid": r.domain_uuid,
        "domain": r.domain_name,
        "podid": r.pod_uuid,
        "podname": r.pod_name,
        "gateway": r.gateway,
        "netmask": r.netmask,
        "cidr": format!("{}/{prefix}", Ipv4Addr::from(network)),
        "startip": int_to_ip(r.start_ip).to_string(),
        "endip": int_to_ip(r.end_ip).to_string(),
        "networkid": r.network_uuid,
        "physicalnetworkid": r.physical_network_uuid,
    }))
}

fn nic_view(c: &NicRow, n: &NetworkRow) -> Map<String, Value> {
    views::object(json!({
        "id": c.uuid,
        "networkid": c.network_uuid,
        "networkname": c.network_name,
        "virtualmachineid": c.instance_uuid,
        "macaddress": c.mac,
        "ipaddress": c.ip().map(|i| i.to_string()),
        "netmask": n.netmask(),
        "gateway": c.gateway,
        "isdefault": c.is_default != 0,
        "deviceid": c.device_id.to_string(),
        "traffictype": "Guest",
        "type": c.guest_type,
        "broadcasturi": c.vlan.map(|v| format!("vlan://{v}")),
        "isolationuri": c.vlan.map(|v| format!("vlan://{v}")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_sets_merge_and_subtract() {
        assert_eq!(format_ranges(&merge(&[(100, 110), (105, 120), (200, 200), (121, 130)])), "100-130,200");
        assert_eq!(format_ranges(&subtract(&[(100, 110)], &[(103, 104)])), "100-102,105-110");
        assert!(subtract(&[(100, 100)], &[(100, 100)]).is_empty());
    }

    #[test]
    fn subnets_and_ranges_are_checked() {
        let s = subnet("10.2.0.1".parse().unwrap(), "255.255.255.0").unwrap();
        assert_eq!(cidr_text(s), "10.2.0.0/24");
        assert!(subnet("10.2.0.0".parse().unwrap(), "255.255.255.0").is_err(), "network address as gateway");
        assert!(subnet("10.2.0.1".parse().unwrap(), "255.0.255.0").is_err(), "malformed netmask");
        assert!(check_range("10.2.0.20", Some("10.2.0.10"), s).is_err(), "start after end");
        assert!(check_range("10.2.0.20", Some("10.2.1.10"), s).is_err(), "outside");
        assert_eq!(check_range("10.2.0.10", None, s).unwrap().0, check_range("10.2.0.10", None, s).unwrap().1);
        assert!(overlaps(s, (ip_to_int("10.2.0.128".parse().unwrap()), 25)));
        assert!(!overlaps(s, (ip_to_int("10.2.1.0".parse().unwrap()), 24)));
    }

    #[test]
    fn vlans_parse_in_both_spellings() {
        assert_eq!(vlan_id("vlan://100").unwrap(), 100);
        assert_eq!(vlan_id("4094").unwrap(), 4094);
        assert!(vlan_id("4095").is_err());
        assert!(vlan_id("abc").is_err());
    }
}
