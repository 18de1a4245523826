//! Public IP addresses: a zone's public ranges (createVlanIpRange forvirtualnetwork=true),
//! the addresses accounts acquire for their guest networks (associateIpAddress,
//! disassociateIpAddress, listPublicIpAddresses, updateIpAddress) and static NAT.
//!
//! Addresses are handed out in database transactions (`cloud::public_ips`); the first
//! address of an Isolated network with SourceNat is its source NAT address, kept while
//! the network lives. Each change is recorded on the network's router (`routers`).

use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{NewIpRangeRequest, PublicIpQuery, PublicIpRequest};
use crate::auth::Caller;
use crate::cloud::infra;
use crate::cloud::networks::{self as nets, NetworkFilter, NetworkRow, PhysicalFilter, int_to_ip, ip_to_int};
use crate::cloud::public_ips::{
    self as pips, Holder, IpFilter, NewPublicRange, PublicIpError, PublicIpRow, PublicRangeRow,
};
use crate::db::format_time;
use crate::jobs::{JobSpec, Outcome};

use super::infra::check_netmask;
use super::routers::exhausted;
use super::volumes::wrap;
use super::{Orchestrator, list, no_such, not_yours, object, views};

/// Addresses one public range may hold: rows are made for each.
const MAX_RANGE: i64 = 65_536;

fn invalid(text: impl Into<String>) -> ApiError {
    ApiError::invalid_param(text)
}

fn ipv4(param: &str, value: &str) -> Result<Ipv4Addr, ApiError> {
    value.parse().map_err(|_| invalid(format!("Invalid value of parameter {param}: {value} is not an IPv4 address")))
}

/// An address as CloudStack's messages print an address object.
fn ip_text(ip: &PublicIpRow) -> String {
    format!("Ip[{}-{}]", ip.ip(), ip.zone_id)
}

impl Orchestrator {
    pub(super) async fn execute_public_ip(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        request: PublicIpRequest,
    ) -> Result<Reply, ApiError> {
        use PublicIpRequest::*;
        match request {
            List(q) => Box::pin(self.list_public_ips(caller, q)).await,
            Associate { zone_id, network_id, vpc_id, account, domain_id, for_display } => {
                let target = Target { zone_id, network_id, vpc_id, account, domain_id, for_display };
                Box::pin(self.associate_ip(caller, cmd, target)).await
            }
            Disassociate { id, ip_address } => Box::pin(self.disassociate_ip(caller, cmd, id, ip_address)).await,
            Update { id, for_display } => Box::pin(self.update_ip(caller, cmd, &id, for_display)).await,
            EnableStaticNat { ip_id, vm_id, network_id, vm_guest_ip } => {
                Box::pin(self.enable_static_nat(caller, &ip_id, &vm_id, network_id.as_deref(), vm_guest_ip)).await
            }
            DisableStaticNat { ip_id } => Box::pin(self.disable_static_nat(caller, cmd, &ip_id)).await,
            ListRouters(q) => Box::pin(self.list_routers(caller, q)).await,
            Router { id, action } => Box::pin(self.router_command(caller, cmd, &id, action)).await,
        }
    }

    /// Runs `work` as an async job about a public IP address.
    async fn ip_job(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        class: &str,
        ip: &str,
        id: Option<String>,
        work: impl Future<Output = Outcome> + Send + 'static,
    ) -> Result<Reply, ApiError> {
        let class = format!("org.apache.cloudstack.api.command.user.{class}");
        let spec = JobSpec { cmd: &class, command: cmd.name, instance: Some(("IpAddress", ip.to_owned())) };
        let job = self.jobs.submit(caller, spec, work).await?;
        Ok(Reply::AsyncJob { job_id: job, id })
    }

    /// An address the caller may act on: one its account (or, for admins, an account it
    /// reaches) holds. A free address is only the root admin's to see.
    pub(super) async fn ip_for(&self, caller: &Caller, id: &str) -> Result<PublicIpRow, ApiError> {
        let ip = pips::ip(&self.db, id).await?.ok_or_else(|| no_such("ip address", id))?;
        let reach = match ip.owner() {
            Some(owner) => caller.can_reach(&owner),
            None => caller.is_root_admin(),
        };
        if !reach {
            return Err(not_yours("ip address", id));
        }
        Ok(ip)
    }

    async fn ip_reply(&self, caller: &Caller, uuid: &str) -> Result<Map<String, Value>, ApiError> {
        let ip = pips::ip(&self.db, uuid).await?.ok_or_else(|| no_such("ip address", uuid))?;
        Ok(ip_view(caller, &ip))
    }

    // ---------------------------------------------------------------- listing

    async fn list_public_ips(&self, caller: &Caller, q: PublicIpQuery) -> Result<Reply, ApiError> {
        if q.for_virtual_network == Some(false) || q.vpc_id.is_some() {
            // Every public address here is for virtual networks, and there are no VPCs.
            return Ok(list("publicipaddress", 0, vec![]));
        }
        let zone_id = self.zone_id(q.zone_id.as_deref()).await?;
        let network_id = match &q.associated_network_id {
            Some(n) => Some(nets::network(&self.db, n).await?.ok_or_else(|| no_such("network", n))?.id),
            None => None,
        };
        let address = match &q.ip_address {
            Some(a) => Some(ip_to_int(ipv4("ipaddress", a)?)),
            None => None,
        };
        let scope = self.scope(caller, &q.listing).await?;
        let f = IpFilter {
            uuid: q.id,
            address,
            zone_id,
            range_uuid: q.vlan_id,
            physical_network_uuid: q.physical_network_id,
            network_id,
            state: q.state,
            source_nat: q.source_nat,
            static_nat: q.static_nat,
            for_display: q.for_display,
            allocated_only: q.allocated_only.unwrap_or(true),
        };
        let (rows, total) = pips::list_ips(&self.db, &scope, &f, q.listing.page).await?;
        Ok(list("publicipaddress", total, rows.iter().map(|ip| ip_view(caller, ip)).collect()))
    }

    // ---------------------------------------------------------------- associate

    /// The guest network an address goes to, and its owner.
    async fn associate_target(&self, caller: &Caller, t: &Target) -> Result<(NetworkRow, i64, i64), ApiError> {
        if let Some(v) = &t.vpc_id {
            return Err(no_such("vpc", v));
        }
        let named_owner = match &t.account {
            Some(_) => Some(self.owner(caller, t.account.as_deref(), t.domain_id.as_deref()).await?),
            None => None,
        };
        let n = match (&t.network_id, &t.zone_id) {
            (Some(id), _) => {
                let n = nets::network(&self.db, id).await?.ok_or_else(|| no_such("network", id))?;
                if !self.may_use(caller, &n) {
                    return Err(not_yours("network", id));
                }
                if let Some(z) = &t.zone_id
                    && *z != n.zone_uuid
                {
                    return Err(invalid(format!("Network {} is not in zone {z}", n.name)));
                }
                n
            }
            (None, Some(zone)) => {
                let zone = infra::zone(&self.db, zone).await?.ok_or_else(|| no_such("zone", zone))?;
                let (account_id, _) = match named_owner {
                    Some(o) => o,
                    None => (caller.user.account_id, caller.user.domain_id),
                };
                let f =
                    NetworkFilter { zone_id: Some(zone.id), guest_type: Some("Isolated".into()), ..Default::default() };
                let scope = crate::auth::store::Scope { account_id: Some(account_id), ..Default::default() };
                let (mut own, _) = nets::list_networks(&self.db, &scope, None, &f, None).await?;
                match own.len() {
                    1 => own.remove(0),
                    0 => {
                        let a = crate::auth::store::account_by_id(&self.db, account_id)
                            .await?
                            .ok_or_else(|| ApiError::internal("the owner's account is gone"))?;
                        return Err(invalid(format!(
                            "Account name={} domain={} doesn't have virtual networks in zone={}",
                            a.name, a.domain_id, zone.name
                        )));
                    }
                    _ => return Err(invalid("Account has more than one isolated network in the zone")),
                }
            }
            (None, None) => {
                return Err(invalid(
                    "Unable to figure out zone to assign IP to. Please specify either zoneId, or networkId, or vpcId in \
                     the call",
                ));
            }
        };
        // The address is the network's owner's unless an account is named; a named
        // account must own the network.
        let (account_id, domain_id) = named_owner.unwrap_or((n.account_id, n.domain_id));
        if account_id != n.account_id {
            return Err(not_yours("network", &n.uuid));
        }
        if n.guest_type != "Isolated" {
            return Err(invalid(format!(
                "Public IP addresses are associated with Isolated networks; network {} is {}",
                n.name, n.guest_type
            )));
        }
        if !caller.can_reach(&n) {
            return Err(not_yours("network", &n.uuid));
        }
        Ok((n, account_id, domain_id))
    }

    async fn associate_ip(&self, caller: &Caller, cmd: &'static Command, t: Target) -> Result<Reply, ApiError> {
        let (n, account_id, domain_id) = self.associate_target(caller, &t).await?;
        let h = Holder { zone_id: n.zone_id, account_id, domain_id, network_id: n.id };
        // Allocated before the job, as CloudStack's create() does: a used-up zone answers 533 at once.
        let uuid = pips::allocate(&self.db, &h, n.has_service("SourceNat")).await.map_err(|e| match e {
            PublicIpError::Exhausted { ranges } => exhausted(&n.zone_name, &ranges),
            other => other.into(),
        })?;
        if t.for_display == Some(false) {
            let ip = pips::ip(&self.db, &uuid).await?.ok_or_else(|| no_such("ip address", &uuid))?;
            pips::set_for_display(&self.db, ip.id, false).await?;
        }
        let ip = pips::ip(&self.db, &uuid).await?.ok_or_else(|| no_such("ip address", &uuid))?;
        self.audit(
            caller,
            "NET.IPASSIGN",
            ("IpAddress", &uuid, &ip.ip().to_string()),
            format!("Public IP {} associated with network {}", ip.ip(), n.name),
        )
        .await?;
        let (me, who, id) = (self.clone(), caller.clone(), uuid.clone());
        let work = async move {
            me.router_changed(n.id).await?;
            Ok(wrap("ipaddress", me.ip_reply(&who, &id).await?))
        };
        self.ip_job(caller, cmd, "address.AssociateIPAddrCmd", &uuid, Some(uuid.clone()), work).await
    }

    // ---------------------------------------------------------------- disassociate

    async fn disassociate_ip(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: Option<String>,
        address: Option<String>,
    ) -> Result<Reply, ApiError> {
        let ip = match (id, address) {
            (Some(_), Some(_)) => return Err(invalid("id parameter is mutually exclusive with ipaddress parameter")),
            (None, None) => return Err(invalid("Please specify either IP address or IP address ID")),
            (Some(id), None) => self.ip_for(caller, &id).await?,
            (None, Some(a)) => {
                let found = pips::ip_at(&self.db, None, ip_to_int(ipv4("ipaddress", &a)?)).await?;
                let ip = found.into_iter().next().ok_or_else(|| no_such("ip address", &a))?;
                self.ip_for(caller, &ip.uuid).await?
            }
        };
        let (me, who) = (self.clone(), caller.clone());
        let uuid = ip.uuid.clone();
        let work = async move {
            if ip.state == "Free" {
                // Not allocated: nothing to release, as CloudStack answers.
                return Ok(success());
            }
            if ip.is_source_nat != 0 {
                return Err(ApiError::internal(
                    "ip address is used for source nat purposes and can not be disassociated.",
                ));
            }
            pips::release(&me.db, ip.id).await?;
            if let Some(network) = ip.network_id {
                me.router_changed(network).await?;
            }
            me.audit(
                &who,
                "NET.IPRELEASE",
                ("IpAddress", &ip.uuid, &ip.ip().to_string()),
                format!("Public IP {} released", ip.ip()),
            )
            .await?;
            Ok(success())
        };
        self.ip_job(caller, cmd, "address.DisassociateIPAddrCmd", &uuid, None, work).await
    }

    async fn update_ip(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
        for_display: Option<bool>,
    ) -> Result<Reply, ApiError> {
        let ip = self.ip_for(caller, id).await?;
        if ip.state == "Free" {
            return Err(invalid(format!("Unable to find ip address by id {id}: it is not allocated")));
        }
        if let Some(d) = for_display {
            pips::set_for_display(&self.db, ip.id, d).await?;
        }
        self.audit(
            caller,
            "NET.IPUPDATE",
            ("IpAddress", &ip.uuid, &ip.ip().to_string()),
            format!("Public IP {} updated", ip.ip()),
        )
        .await?;
        let (me, who, uuid) = (self.clone(), caller.clone(), ip.uuid.clone());
        let work = async move { Ok(wrap("ipaddress", me.ip_reply(&who, &uuid).await?)) };
        self.ip_job(caller, cmd, "address.UpdateIPAddrCmd", &ip.uuid, None, work).await
    }

    // ---------------------------------------------------------------- static NAT

    async fn enable_static_nat(
        &self,
        caller: &Caller,
        ip_id: &str,
        vm_id: &str,
        network_id: Option<&str>,
        vm_guest_ip: Option<String>,
    ) -> Result<Reply, ApiError> {
        let ip = self.ip_for(caller, ip_id).await?;
        let vm = self.vm_for(caller, vm_id).await?;
        let Some(ip_network) = ip.network_id else {
            return Err(invalid(format!(
                "Unable to enable static NAT for the ipAddress id={ip_id} as ip is not associated with any network and \
                 no networkId is passed in"
            )));
        };
        let n = nets::network_by_id(&self.db, ip_network).await?.ok_or_else(|| no_such("network", ip_id))?;
        if let Some(given) = network_id
            && given != n.uuid
        {
            return Err(invalid(format!(
                "Invalid network Id={given}. IP is associated with a different network than passed network id"
            )));
        }
        let f = nets::NicFilter { instance_uuid: Some(vm.uuid.clone()), network_id: Some(n.id), ..Default::default() };
        let nic = nets::list_nics(&self.db, &f, None)
            .await?
            .0
            .into_iter()
            .next()
            .ok_or_else(|| invalid("Vm doesn't belong to the network with specified id"))?;
        if !n.has_service("StaticNat") {
            return Err(invalid(
                "Unable to create static nat rule; StaticNat service is not supported in network with specified id",
            ));
        }
        let Some(vm_ip) = nic.ip_address else {
            return Err(invalid("Vm doesn't belong to the network with specified id"));
        };
        if let Some(g) = &vm_guest_ip
            && ipv4("vmguestip", g).map(ip_to_int)? != vm_ip
        {
            return Err(invalid(format!("VM ip {g} address not belongs to the vm")));
        }
        if ip.is_source_nat != 0 {
            return Err(invalid(format!("Can't enable static, ip address {} is a sourceNat ip address", ip_text(&ip))));
        }
        match ip.static_nat_nic_id {
            None => {
                for purpose in ["PortForwarding", "LoadBalancing"] {
                    if pips::rule_count(&self.db, ip.id, purpose).await? > 0 {
                        return Err(ApiError::rule_conflict(format!(
                            "Failed to enable static nat for the ip address {} as it already has {purpose} rules assigned",
                            ip_text(&ip)
                        )));
                    }
                }
            }
            Some(other) if other != nic.id => {
                return Err(ApiError::rule_conflict(format!(
                    "Failed to enable static for the ip address {} and vm id={} as it's already assigned to antoher vm",
                    ip_text(&ip),
                    vm.uuid
                )));
            }
            // Already this VM's: nothing to do.
            Some(_) => return Ok(Reply::Success { display_text: None }),
        }
        let held = IpFilter { zone_id: Some(ip.zone_id), static_nat: Some(true), ..Default::default() };
        let (taken, _) = pips::list_ips(&self.db, &Default::default(), &held, None).await?;
        if let Some(old) =
            taken.iter().find(|o| o.static_nat_nic_id == Some(nic.id) && o.static_nat_vm_ip == Some(vm_ip))
        {
            return Err(invalid(format!(
                "Failed to enable static nat on the  ip {} with Id {} as the vm {} with Id {} is already associated \
                 with another public ip {} with id {}",
                ip.ip(),
                ip.uuid,
                vm.instance_name,
                vm.uuid,
                old.ip(),
                old.uuid
            )));
        }
        if !pips::set_static_nat(&self.db, ip.id, Some((nic.id, vm_ip))).await? {
            return Err(ApiError::rule_conflict(format!(
                "Failed to enable static for the ip address {} and vm id={} as it's already assigned to antoher vm",
                ip_text(&ip),
                vm.uuid
            )));
        }
        self.router_changed(n.id).await?;
        self.audit(
            caller,
            "STATICNAT.ENABLE",
            ("IpAddress", &ip.uuid, &ip.ip().to_string()),
            format!("Static NAT enabled: {} to VM {} ({})", ip.ip(), vm.name, int_to_ip(vm_ip)),
        )
        .await?;
        Ok(Reply::Success { display_text: None })
    }

    async fn disable_static_nat(&self, caller: &Caller, cmd: &'static Command, ip_id: &str) -> Result<Reply, ApiError> {
        let ip = self.ip_for(caller, ip_id).await?;
        if ip.static_nat_nic_id.is_none() {
            return Err(invalid("Specified IP address id is not associated with any vm Id"));
        }
        let (me, who) = (self.clone(), caller.clone());
        let uuid = ip.uuid.clone();
        let work = async move {
            pips::set_static_nat(&me.db, ip.id, None).await?;
            if let Some(network) = ip.network_id {
                me.router_changed(network).await?;
            }
            me.audit(
                &who,
                "STATICNAT.DISABLE",
                ("IpAddress", &ip.uuid, &ip.ip().to_string()),
                format!("Static NAT disabled on {}", ip.ip()),
            )
            .await?;
            Ok(success())
        };
        self.ip_job(caller, cmd, "nat.DisableStaticNatCmd", &uuid, None, work).await
    }

    // ---------------------------------------------------------------- public ranges

    /// createVlanIpRange for the zone's public addresses: no network, forvirtualnetwork
    /// true (CloudStack's default), tagged with `vlan` or untagged.
    pub(super) async fn create_public_range(&self, caller: &Caller, r: NewIpRangeRequest) -> Result<Reply, ApiError> {
        if r.pod_id.is_some() {
            return Err(invalid("Public IP ranges belong to a zone, not a pod: leave out podid"));
        }
        let physical = match &r.physical_network_id {
            Some(p) => Some(nets::physical(&self.db, p).await?.ok_or_else(|| no_such("physical network", p))?),
            None => None,
        };
        let zone_uuid = match (&r.zone_id, &physical) {
            (Some(z), _) => z.clone(),
            (None, Some(p)) => p.zone_uuid.clone(),
            (None, None) => return Err(ApiError::missing_param("createvlaniprange", "zoneid")),
        };
        let zone = infra::zone(&self.db, &zone_uuid).await?.ok_or_else(|| no_such("zone", &zone_uuid))?;
        let physical = match physical {
            Some(p) if p.zone_id != zone.id => {
                return Err(invalid(format!("Physical network {} is not in zone {}", p.name, zone.name)));
            }
            Some(p) => p,
            None => {
                let f = PhysicalFilter { zone_id: Some(zone.id), ..Default::default() };
                let mut carrying = None;
                for p in nets::list_physical(&self.db, &f, None).await?.0 {
                    let (types, _) = nets::traffic_types(&self.db, Some(p.id), None, None).await?;
                    if types.iter().any(|t| t.traffic_type == "Public") {
                        carrying = Some(p);
                        break;
                    }
                }
                carrying.ok_or_else(|| {
                    invalid("Unable to find the default physical network with traffic=Public in the specified zone id")
                })?
            }
        };
        let vlan = match r.vlan.as_deref() {
            None => None,
            Some(v) if v.eq_ignore_ascii_case("untagged") || v.eq_ignore_ascii_case("vlan://untagged") => None,
            Some(v) => Some(i64::from(super::networks::vlan_id(v)?)),
        };
        let gateway = r.gateway.as_deref().ok_or_else(|| ApiError::missing_param("createvlaniprange", "gateway"))?;
        let netmask = r.netmask.as_deref().ok_or_else(|| ApiError::missing_param("createvlaniprange", "netmask"))?;
        let start = r.start_ip.as_deref().ok_or_else(|| ApiError::missing_param("createvlaniprange", "startip"))?;
        let g = ipv4("gateway", gateway)?;
        let mask = check_netmask("netmask", netmask)?;
        let prefix = i64::from(mask.leading_ones());
        let subnet = (ip_to_int(g) & i64::from(mask), prefix);
        let (s, e) = super::networks::check_range(start, r.end_ip.as_deref(), subnet)?;
        if (s..=e).contains(&ip_to_int(g)) {
            return Err(invalid("The gateway shouldn't overlap start/end ip addresses"));
        }
        if e - s + 1 > MAX_RANGE {
            return Err(invalid(format!(
                "The range {}-{} has {} addresses; a public IP range holds at most {MAX_RANGE}",
                int_to_ip(s),
                int_to_ip(e),
                e - s + 1
            )));
        }
        let f = pips::RangeFilter { zone_id: Some(zone.id), ..Default::default() };
        for other in pips::list_ranges(&self.db, &f).await? {
            let other_mask = check_netmask("netmask", &other.netmask)?;
            let other_g = ip_to_int(ipv4("gateway", &other.gateway)?);
            let other_subnet = (other_g & i64::from(other_mask), i64::from(other_mask.leading_ones()));
            if !super::networks::overlaps(subnet, other_subnet) {
                continue;
            }
            if other.vlan == vlan {
                if other.gateway != g.to_string() || other.netmask != netmask {
                    return Err(invalid(format!(
                        "The IP range has already been added with gateway {} ,and netmask {}, Please specify the \
                         gateway/netmask if you want to extend ip range",
                        other.gateway, other.netmask
                    )));
                }
                if s <= other.end_ip && other.start_ip <= e {
                    return Err(invalid(
                        "The IP range already has IPs that overlap with the new range. Please specify a different start \
                         IP/end IP.",
                    ));
                }
            } else {
                return Err(invalid(format!(
                    "The IP range with tag: {} in zone {} has overlapped with the subnet. Please specify a different \
                     gateway/netmask.",
                    super::networks::vlan_uri(other.vlan),
                    zone.name
                )));
            }
        }
        let new = NewPublicRange {
            zone_id: zone.id,
            physical_network_id: physical.id,
            vlan,
            gateway: g.to_string(),
            netmask: netmask.to_owned(),
            start: s,
            end: e,
        };
        let uuid = pips::create_range(&self.db, &new).await?;
        let f = pips::RangeFilter { uuid: Some(uuid.clone()), ..Default::default() };
        let range =
            pips::list_ranges(&self.db, &f).await?.into_iter().next().ok_or_else(|| no_such("VLAN IP range", &uuid))?;
        let name = format!("{}-{}", int_to_ip(s), int_to_ip(e));
        self.audit(
            caller,
            "VLAN.IP.RANGE.CREATE",
            ("VlanIpRange", &uuid, &name),
            format!("Public IP range {name} added to zone {}", zone.name),
        )
        .await?;
        Ok(object("vlan", public_range_view(&range)))
    }

    /// deleteVlanIpRange of a public range: refused while an account holds one of its addresses.
    pub(super) async fn delete_public_range(&self, caller: &Caller, r: &PublicRangeRow) -> Result<Reply, ApiError> {
        let held = pips::range_in_use(&self.db, r.id).await?;
        if held > 0 || !pips::delete_range(&self.db, r.id).await? {
            let held = pips::range_in_use(&self.db, r.id).await?;
            return Err(invalid(format!("{held}  Ips are in use. Cannot delete this vlan")));
        }
        let name = format!("{}-{}", int_to_ip(r.start_ip), int_to_ip(r.end_ip));
        self.audit(
            caller,
            "VLAN.IP.RANGE.DELETE",
            ("VlanIpRange", &r.uuid, &name),
            format!("Public IP range {name} deleted"),
        )
        .await?;
        Ok(Reply::Success { display_text: None })
    }
}

/// Where associateIpAddress puts an address.
struct Target {
    zone_id: Option<String>,
    network_id: Option<String>,
    vpc_id: Option<String>,
    account: Option<String>,
    domain_id: Option<String>,
    for_display: Option<bool>,
}

fn success() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("success".into(), Value::Bool(true));
    m
}

/// A public address as the API shows it; its range only to root admins, as CloudStack.
pub(super) fn ip_view(caller: &Caller, ip: &PublicIpRow) -> Map<String, Value> {
    let admin = caller.is_root_admin();
    let held = ip.state != "Free";
    views::object(json!({
        "id": ip.uuid,
        "ipaddress": ip.ip().to_string(),
        "allocated": ip.allocated.map(format_time),
        "zoneid": ip.zone_uuid,
        "zonename": ip.zone_name,
        "issourcenat": ip.is_source_nat != 0,
        "isstaticnat": ip.static_nat_nic_id.is_some(),
        "issystem": false,
        "account": if held { ip.account_name.clone() } else { None },
        "domainid": ip.domain_uuid,
        "domain": ip.domain_name,
        "forvirtualnetwork": true,
        "vlanid": if admin { Some(&ip.range_uuid) } else { None },
        "vlanname": if admin { Some(super::networks::vlan_uri(ip.vlan)) } else { None },
        "virtualmachineid": ip.vm_uuid,
        "virtualmachinename": ip.vm_name,
        "virtualmachinedisplayname": ip.vm_display_name,
        "vmipaddress": ip.static_nat_vm_ip.map(|a| int_to_ip(a).to_string()),
        "associatednetworkid": ip.network_uuid,
        "associatednetworkname": ip.network_name,
        "physicalnetworkid": ip.physical_network_uuid,
        "state": ip.state,
        "isportable": false,
        "fordisplay": ip.for_display != 0,
    }))
}

/// A public range as listVlanIpRanges shows it.
pub(super) fn public_range_view(r: &PublicRangeRow) -> Map<String, Value> {
    let prefix = r.netmask.parse::<Ipv4Addr>().map(|m| u32::from(m).leading_ones()).unwrap_or(0);
    let network =
        r.gateway.parse::<Ipv4Addr>().map(|g| u32::from(g) & nets::prefix_mask(i64::from(prefix))).unwrap_or(0);
    views::object(json!({
        "id": r.uuid,
        "forvirtualnetwork": true,
        "zoneid": r.zone_uuid,
        "vlan": super::networks::vlan_uri(r.vlan),
        "account": r.account_name,
        "domainid": r.domain_uuid,
        "domain": r.domain_name,
        "gateway": r.gateway,
        "netmask": r.netmask,
        "cidr": format!("{}/{prefix}", Ipv4Addr::from(network)),
        "startip": int_to_ip(r.start_ip).to_string(),
        "endip": int_to_ip(r.end_ip).to_string(),
        "physicalnetworkid": r.physical_network_uuid,
    }))
}
