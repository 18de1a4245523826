//! The router's rules: ingress firewall rules on public IPs, a network's egress rules,
//! port forwarding and load balancing, with CloudStack's checks, texts and codes.
//!
//! A create checks its input and stores the rule (state `Add`) before it answers, so
//! every refusal is synchronous and leaves the database as it was; conflicts are judged
//! inside the storing transaction (`cloud::rules`). The job then gathers the network's
//! whole router state and settles the rules it held: added ones become `Active`,
//! revoked ones are removed.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::{Map, Value, json};

use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{
    BalancerUpdate, ForwardUpdate, Members, NewBalancerRequest, NewFirewallRequest, NewForwardRequest, RuleQuery,
    RulesRequest,
};
use crate::auth::Caller;
use crate::cloud::instances::{self, InstanceRow, VmState};
use crate::cloud::networks::{self as nets, NetworkRow, NicFilter, NicRow, int_to_ip, ip_to_int, prefix_mask};
use crate::cloud::rules::{
    self, BalancerRow, FirewallRow, ForwardRow, IpRow, MemberRow, NewBalancer, NewFirewall, NewForward, Pending,
    RuleError, RuleFilter,
};
use crate::db::format_time;
use crate::jobs::Outcome;

use super::volumes::wrap;
use super::{Orchestrator, list, no_such, not_yours, views};

impl From<RuleError> for ApiError {
    fn from(e: RuleError) -> Self {
        match e {
            RuleError::Db(e) => e.into(),
            RuleError::Conflict(t) => ApiError::rule_conflict(t),
            RuleError::Duplicate(t) => ApiError::invalid_param(t),
            RuleError::Gone(_) => ApiError::invalid_param("The network of the rule is gone"),
        }
    }
}

fn invalid(text: impl Into<String>) -> ApiError {
    ApiError::invalid_param(text)
}

/// A rule's protocol on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    /// Every protocol (egress rules only).
    All,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "icmp" => Some(Protocol::Icmp),
            "all" => Some(Protocol::All),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::All => "all",
        }
    }
}

/// How a load balancer picks a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    LeastConn,
    Source,
}

impl Algorithm {
    pub fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_lowercase().as_str() {
            "roundrobin" => Some(Algorithm::RoundRobin),
            "leastconn" => Some(Algorithm::LeastConn),
            "source" => Some(Algorithm::Source),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "roundrobin",
            Algorithm::LeastConn => "leastconn",
            Algorithm::Source => "source",
        }
    }
}

/// A firewall rule as the router applies it: ingress to a public IP, or egress from
/// the guest network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallEntry {
    pub id: String,
    /// The public IP of an ingress rule; None for egress.
    pub public_ip: Option<Ipv4Addr>,
    pub protocol: Protocol,
    pub ports: Option<(u16, u16)>,
    /// ICMP (type, code), -1 meaning any.
    pub icmp: Option<(i32, i32)>,
    /// Source CIDRs.
    pub sources: Vec<String>,
    /// Destination CIDRs (egress; empty: anywhere).
    pub destinations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardEntry {
    pub id: String,
    pub public_ip: Ipv4Addr,
    pub protocol: Protocol,
    pub public_ports: (u16, u16),
    pub guest_ip: Ipv4Addr,
    pub private_ports: (u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalancerEntry {
    pub id: String,
    pub public_ip: Ipv4Addr,
    /// "tcp", "udp" or "tcp-proxy" (TCP with the PROXY protocol towards members).
    pub protocol: String,
    pub public_port: u16,
    pub private_port: u16,
    pub algorithm: Algorithm,
    /// Who may connect; empty: everyone the firewall lets in.
    pub sources: Vec<String>,
    pub members: Vec<Ipv4Addr>,
}

/// The rules part of a network's router state: what its router must hold, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterRules {
    /// The offering's default egress policy: true lets guests out unless an egress rule
    /// matches (egress rules deny), false keeps them in unless one matches (they allow).
    pub egress_default_allow: bool,
    pub ingress: Vec<FirewallEntry>,
    pub egress: Vec<FirewallEntry>,
    pub forwards: Vec<ForwardEntry>,
    pub balancers: Vec<BalancerEntry>,
}

fn port(v: i64) -> Result<u16, ApiError> {
    u16::try_from(v).map_err(|_| ApiError::internal(format!("a stored port is out of range: {v}")))
}

fn stored_protocol(p: &str) -> Result<Protocol, ApiError> {
    Protocol::parse(p).ok_or_else(|| ApiError::internal(format!("a stored rule has protocol {p}")))
}

fn cidrs(text: &str) -> Vec<String> {
    text.split([',', ' ']).map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

/// The network's rules as its router must hold them (revoked ones left out), and the
/// rules in transit this state settles once applied.
pub async fn router_rules(db: &crate::db::Db, n: &NetworkRow) -> Result<(RouterRules, Pending), ApiError> {
    let (firewall, forwards, balancers, members) = rules::network_rules(db, n.id).await?;
    let mut pending = Pending::default();
    let note = |list: &mut Vec<(i64, String)>, id: i64, state: &str| {
        if state != rules::ACTIVE {
            list.push((id, state.to_owned()));
        }
    };
    let mut state = RouterRules {
        egress_default_allow: n.offering_egress_default_policy != 0,
        ingress: vec![],
        egress: vec![],
        forwards: vec![],
        balancers: vec![],
    };
    for f in &firewall {
        note(&mut pending.firewall, f.id, &f.state);
        if f.state == rules::REVOKE {
            continue;
        }
        let entry = FirewallEntry {
            id: f.uuid.clone(),
            public_ip: f.ip_address.map(int_to_ip),
            protocol: stored_protocol(&f.protocol)?,
            ports: match (f.start_port, f.end_port) {
                (Some(s), Some(e)) => Some((port(s)?, port(e)?)),
                _ => None,
            },
            icmp: f.icmp_type.zip(f.icmp_code).map(|(t, c)| (t as i32, c as i32)),
            sources: cidrs(&f.cidr_list),
            destinations: cidrs(&f.dest_cidr_list),
        };
        if f.purpose == "Egress" { state.egress.push(entry) } else { state.ingress.push(entry) }
    }
    for r in &forwards {
        note(&mut pending.forwards, r.id, &r.state);
        if r.state == rules::REVOKE {
            continue;
        }
        state.forwards.push(ForwardEntry {
            id: r.uuid.clone(),
            public_ip: int_to_ip(r.ip_address),
            protocol: stored_protocol(&r.protocol)?,
            public_ports: (port(r.public_start_port)?, port(r.public_end_port)?),
            guest_ip: int_to_ip(r.vm_ip),
            private_ports: (port(r.private_start_port)?, port(r.private_end_port)?),
        });
    }
    for m in &members {
        note(&mut pending.members, m.id, &m.state);
    }
    for b in &balancers {
        note(&mut pending.balancers, b.id, &b.state);
        if b.state == rules::REVOKE {
            continue;
        }
        let live = members.iter().filter(|m| m.rule_id == b.id && m.state != rules::REVOKE);
        state.balancers.push(BalancerEntry {
            id: b.uuid.clone(),
            public_ip: int_to_ip(b.ip_address),
            protocol: b.protocol.clone(),
            public_port: port(b.public_port)?,
            private_port: port(b.private_port)?,
            algorithm: Algorithm::parse(&b.algorithm)
                .ok_or_else(|| ApiError::internal(format!("a stored rule has algorithm {}", b.algorithm)))?,
            sources: cidrs(&b.cidr_list),
            members: live.map(|m| int_to_ip(m.vm_ip)).collect(),
        });
    }
    Ok((state, pending))
}

/// One lock per network: the router state is gathered and settled by one job at a time.
fn network_gate(network_id: i64) -> Arc<tokio::sync::Mutex<()>> {
    static GATES: LazyLock<Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>> = LazyLock::new(Default::default);
    let mut gates = GATES.lock().unwrap_or_else(|e| e.into_inner());
    gates.entry(network_id).or_default().clone()
}

/// A port as CloudStack validates it (`NetUtils.isValidPort`).
fn valid_port(p: i32) -> bool {
    (1..=65535).contains(&p)
}

/// The public (source) port range of a rule: each end in 1-65535, start ≤ end; the end
/// defaults to the start.
fn public_ports(start: Option<i32>, end: Option<i32>) -> Result<Option<(i64, i64)>, ApiError> {
    if let Some(s) = start
        && !valid_port(s)
    {
        return Err(invalid(format!("publicPort is an invalid value: {s}")));
    }
    let end = end.or(start);
    if let Some(e) = end
        && !valid_port(e)
    {
        return Err(invalid(format!("Public port range is an invalid value: {e}")));
    }
    match (start, end) {
        (Some(s), Some(e)) if s > e => Err(invalid("Start port can't be bigger than end port")),
        (Some(s), Some(e)) => Ok(Some((i64::from(s), i64::from(e)))),
        _ => Ok(None),
    }
}

/// An IPv4 CIDR ("10.0.0.0/8") as CloudStack's `isValidIp4Cidr` accepts it.
fn valid_cidr(c: &str) -> Option<(u32, u32)> {
    let (addr, prefix) = c.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let prefix: u32 = prefix.parse().ok().filter(|p| *p <= 32)?;
    Some((u32::from(addr), prefix))
}

fn within(inner: (u32, u32), outer: (u32, u32)) -> bool {
    let mask = prefix_mask(i64::from(outer.1));
    inner.1 >= outer.1 && inner.0 & mask == outer.0 & mask
}

fn state_view(state: &str) -> &str {
    // CloudStack shows a rule being revoked as Deleting.
    if state == rules::REVOKE { "Deleting" } else { state }
}

fn firewall_view(f: &FirewallRow) -> Map<String, Value> {
    let egress = f.purpose == "Egress";
    views::object(json!({
        "id": f.uuid,
        "protocol": f.protocol,
        "startport": f.start_port,
        "endport": f.end_port,
        "ipaddressid": f.ip_uuid,
        "ipaddress": f.ip_address.map(|a| int_to_ip(a).to_string()),
        "networkid": f.network_uuid,
        "state": state_view(&f.state),
        "cidrlist": f.cidr_list,
        "destcidrlist": if egress { Some(&f.dest_cidr_list) } else { None },
        "icmptype": f.icmp_type,
        "icmpcode": f.icmp_code,
        "traffictype": if egress { "Egress" } else { "Ingress" },
        "fordisplay": f.for_display != 0,
        "tags": [],
    }))
}

fn forward_view(r: &ForwardRow) -> Map<String, Value> {
    views::object(json!({
        "id": r.uuid,
        "privateport": r.private_start_port.to_string(),
        "privateendport": r.private_end_port.to_string(),
        "publicport": r.public_start_port.to_string(),
        "publicendport": r.public_end_port.to_string(),
        "protocol": r.protocol,
        "virtualmachineid": r.vm_uuid,
        "virtualmachinename": r.vm_name,
        "virtualmachinedisplayname": r.vm_display_name,
        "ipaddressid": r.ip_uuid,
        "ipaddress": int_to_ip(r.ip_address).to_string(),
        "vmguestip": int_to_ip(r.vm_ip).to_string(),
        "state": state_view(&r.state),
        "cidrlist": "",
        "networkid": r.network_uuid,
        "fordisplay": r.for_display != 0,
        "tags": [],
    }))
}

fn balancer_view(b: &BalancerRow) -> Map<String, Value> {
    views::object(json!({
        "id": b.uuid,
        "name": b.name,
        "description": b.description,
        "publicipid": b.ip_uuid,
        "publicip": int_to_ip(b.ip_address).to_string(),
        "publicport": b.public_port.to_string(),
        "privateport": b.private_port.to_string(),
        "algorithm": b.algorithm,
        "protocol": b.protocol,
        "networkid": b.network_uuid,
        "cidrlist": b.cidr_list,
        "account": b.account_name,
        "domainid": b.domain_uuid,
        "domain": b.domain_name,
        "state": state_view(&b.state),
        "zoneid": b.zone_uuid,
        "zonename": b.zone_name,
        "fordisplay": b.for_display != 0,
        "tags": [],
        "created": format_time(b.created),
    }))
}

fn success() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("success".into(), Value::Bool(true));
    m
}

/// How CloudStack names a rule in its messages.
fn rule_name(uuid: &str, purpose: &str, state: &str) -> String {
    format!("Rule[{uuid}-{purpose}-{state}]")
}

impl Orchestrator {
    pub(super) async fn execute_rules(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        request: RulesRequest,
    ) -> Result<Reply, ApiError> {
        use RulesRequest::*;
        match request {
            CreateFirewall(r) => Box::pin(self.create_ingress(caller, cmd, r)).await,
            DeleteFirewall { id } => Box::pin(self.delete_firewall(caller, cmd, &id, false)).await,
            ListFirewall(q) => Box::pin(self.list_firewall(caller, q, false)).await,
            CreateEgress(r) => Box::pin(self.create_egress(caller, cmd, r)).await,
            DeleteEgress { id } => Box::pin(self.delete_firewall(caller, cmd, &id, true)).await,
            ListEgress(q) => Box::pin(self.list_firewall(caller, q, true)).await,
            CreateForward(r) => Box::pin(self.create_forward(caller, cmd, r)).await,
            DeleteForward { id } => Box::pin(self.delete_forward(caller, cmd, &id)).await,
            ListForwards(q) => Box::pin(self.list_forwards(caller, q)).await,
            UpdateForward(u) => Box::pin(self.update_forward(caller, cmd, u)).await,
            CreateBalancer(r) => Box::pin(self.create_balancer(caller, cmd, r)).await,
            DeleteBalancer { id } => Box::pin(self.delete_balancer(caller, cmd, &id)).await,
            ListBalancers(q) => Box::pin(self.list_balancers(caller, q)).await,
            UpdateBalancer(u) => Box::pin(self.update_balancer(caller, cmd, u)).await,
            Assign { id, members } => Box::pin(self.assign_members(caller, cmd, &id, members)).await,
            Remove { id, members } => Box::pin(self.remove_members(caller, cmd, &id, members)).await,
            ListInstances { id, applied, vm_ips, page } => {
                Box::pin(self.balancer_instances(caller, &id, applied, vm_ips, page)).await
            }
        }
    }

    /// After a rule change: records the network's whole router state (its rules with
    /// the rest, see `routers::router_state`) as a new generation, then settles the
    /// rules that were in transit: added ones become Active, revoked ones are removed.
    /// The router's data plane applies the recorded state.
    pub(crate) async fn rules_changed(&self, network_id: i64) -> Result<(), ApiError> {
        let gate = network_gate(network_id);
        let _held = gate.lock().await;
        let n = nets::network_by_id(&self.db, network_id)
            .await?
            .ok_or_else(|| ApiError::internal("the network of the rule is gone"))?;
        // What is in transit now is in the state recorded next: only settling changes a
        // rule's state back, and that happens under the gate.
        let (_, pending) = router_rules(&self.db, &n).await?;
        self.router_changed(network_id).await?;
        if !pending.is_empty() {
            rules::settle(&self.db, &pending).await?;
        }
        Ok(())
    }

    /// Runs a rule change's job: the router state, then the result `then` builds.
    #[allow(clippy::too_many_arguments)]
    async fn rules_job<F, Fut>(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        class: &str,
        instance: (&str, &str),
        id: Option<String>,
        network_id: i64,
        then: F,
    ) -> Result<Reply, ApiError>
    where
        F: FnOnce(Orchestrator) -> Fut + Send + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let class = format!("org.apache.cloudstack.api.command.{class}");
        let spec =
            crate::jobs::JobSpec { cmd: &class, command: cmd.name, instance: Some((instance.0, instance.1.into())) };
        let me = self.clone();
        let work = async move {
            me.rules_changed(network_id).await?;
            then(me).await
        };
        let job = self.jobs.submit(caller, spec, work).await?;
        Ok(Reply::AsyncJob { job_id: job, id })
    }

    /// A public IP by id.
    async fn public_ip(&self, id: &str) -> Result<IpRow, ApiError> {
        rules::ip(&self.db, id).await?.ok_or_else(|| no_such("IP address", id))
    }

    /// 431 unless the network's offering has `service`.
    fn require_service(n: &NetworkRow, service: &str, text: &str) -> Result<(), ApiError> {
        if n.has_service(service) { Ok(()) } else { Err(invalid(text)) }
    }

    async fn network_of(&self, id: i64) -> Result<NetworkRow, ApiError> {
        nets::network_by_id(&self.db, id).await?.ok_or_else(|| ApiError::internal("the IP's network is gone"))
    }

    async fn firewall_row(&self, id: &str, egress: bool) -> Result<FirewallRow, ApiError> {
        let f = RuleFilter { uuid: Some(id.into()), ..Default::default() };
        let purpose = if egress { "Egress" } else { "Firewall" };
        let (rows, _) = rules::list_firewall(&self.db, &Default::default(), purpose, &f, None).await?;
        rows.into_iter().next().ok_or_else(|| no_such("firewall rule", id))
    }

    async fn forward_row(&self, id: &str) -> Result<ForwardRow, ApiError> {
        let f = RuleFilter { uuid: Some(id.into()), ..Default::default() };
        let (rows, _) = rules::list_forwards(&self.db, &Default::default(), &f, None).await?;
        rows.into_iter().next().ok_or_else(|| no_such("port forwarding rule", id))
    }

    async fn balancer_row(&self, id: &str) -> Result<BalancerRow, ApiError> {
        let f = RuleFilter { uuid: Some(id.into()), ..Default::default() };
        let (rows, _) = rules::list_balancers(&self.db, &Default::default(), &f, None).await?;
        rows.into_iter().next().ok_or_else(|| no_such("load balancer rule", id))
    }

    /// The VM's NIC in a network, with its address.
    async fn nic_in(&self, vm: &InstanceRow, network_id: i64) -> Result<Option<(NicRow, Ipv4Addr)>, ApiError> {
        let f = NicFilter { instance_uuid: Some(vm.uuid.clone()), network_id: Some(network_id), ..Default::default() };
        let (nics, _) = nets::list_nics(&self.db, &f, None).await?;
        Ok(nics.into_iter().find_map(|n| n.ip().map(|ip| (n, ip))))
    }

    // ---------------------------------------------------------------- firewall

    /// ICMP type and code only for ICMP, ports never for it; (type, code) -1 for any.
    fn icmp_of(protocol: Protocol, r: &NewFirewallRequest) -> Result<Option<(i64, i64)>, ApiError> {
        if protocol != Protocol::Icmp && (r.icmp_type.is_some() || r.icmp_code.is_some()) {
            return Err(invalid("Can specify icmpCode and icmpType for ICMP protocol only"));
        }
        if protocol == Protocol::Icmp && (r.start_port.is_some() || r.end_port.is_some()) {
            return Err(invalid("Can't specify start/end port when protocol is ICMP"));
        }
        Ok((protocol == Protocol::Icmp)
            .then(|| (i64::from(r.icmp_type.unwrap_or(-1)), i64::from(r.icmp_code.unwrap_or(-1)))))
    }

    async fn create_ingress(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        r: NewFirewallRequest,
    ) -> Result<Reply, ApiError> {
        let sources: Vec<String> = match &r.cidrs {
            Some(c) => c.iter().map(|c| c.trim().to_owned()).collect(),
            None => vec!["0.0.0.0/0".into()],
        };
        if let Some(bad) = sources.iter().find(|c| valid_cidr(c).is_none()) {
            return Err(invalid(format!("Source CIDRs formatting error {bad}")));
        }
        let ip_id = r.ip_id.clone().unwrap_or_default();
        let ip = self.public_ip(&ip_id).await?;
        let Some(network_id) = ip.network_id.filter(|_| ip.state == "Allocated") else {
            return Err(invalid(format!(
                "Unable to create firewall rule for the IP address ID={ip_id} as IP is not associated with any network \
                 and no networkId is passed in"
            )));
        };
        let ports = public_ports(r.start_port, r.end_port)?;
        if !caller.can_reach(&ip) {
            return Err(not_yours("IP address", &ip_id));
        }
        let n = self.network_of(network_id).await?;
        Self::require_service(&n, "Firewall", "Firewall service is not supported in specified network id")?;
        let protocol = match Protocol::parse(&r.protocol) {
            Some(p @ (Protocol::Tcp | Protocol::Udp | Protocol::Icmp)) => p,
            _ => return Err(invalid(format!("Protocol {} is not supported in zone {}", r.protocol, n.zone_uuid))),
        };
        let icmp = Self::icmp_of(protocol, &r)?;
        let new = NewFirewall {
            network_id,
            ip_id: Some(ip.id),
            protocol: protocol.as_str().into(),
            ports,
            icmp,
            sources,
            destinations: vec![],
            account_id: ip.account_id.unwrap_or(n.account_id),
            domain_id: ip.domain_id.unwrap_or(n.domain_id),
            for_display: r.for_display.unwrap_or(true),
        };
        let uuid = rules::create_firewall(&self.db, &new).await?;
        self.audit(
            caller,
            "FIREWALL.OPEN",
            ("FirewallRule", &uuid, &uuid),
            format!("Firewall rule {uuid} opened {} on {}", describe_ports(protocol, ports), ip.ip()),
        )
        .await?;
        let id = uuid.clone();
        self.rules_job(
            caller,
            cmd,
            "user.firewall.CreateFirewallRuleCmd",
            ("FirewallRule", &uuid),
            Some(uuid.clone()),
            network_id,
            move |me: Orchestrator| async move {
                Ok(wrap("firewallrule", firewall_view(&me.firewall_row(&id, false).await?)))
            },
        )
        .await
    }

    async fn create_egress(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        r: NewFirewallRequest,
    ) -> Result<Reply, ApiError> {
        let network_uuid = r.network_id.clone().unwrap_or_default();
        let n = self.network_to_change(caller, &network_uuid).await?;
        if n.guest_type == "Shared" {
            return Err(invalid("Egress firewall rules are not supported for Shared  networks"));
        }
        let guest = n.cidr().unwrap_or_default();
        let guest_net = valid_cidr(&guest);
        let mut sources: Vec<String> = match &r.cidrs {
            Some(c) => c.iter().map(|c| c.trim().to_owned()).collect(),
            None => vec![guest.clone()],
        };
        for c in &sources {
            let Some(parsed) = valid_cidr(c) else {
                return Err(invalid(format!("Source CIDRs formatting error [{c}].")));
            };
            if c != "0.0.0.0/0" && !guest_net.is_some_and(|g| within(parsed, g)) {
                return Err(invalid(format!("[{c}] is not within the guest CIDR [{guest}]. ")));
            }
        }
        let destinations: Vec<String> = r.dest_cidrs.iter().flatten().map(|c| c.trim().to_owned()).collect();
        if let Some(bad) = destinations.iter().find(|c| valid_cidr(c).is_none()) {
            return Err(invalid(format!("Destination CIDRs formatting error [{bad}].")));
        }
        let protocol_all = r.protocol.eq_ignore_ascii_case("all");
        if protocol_all && r.start_port.is_some() {
            return Err(invalid(format!(
                "Unable to create firewall rule for the network id=[{}] due to: ports must not be informed to protocol \
                 ALL, as it does not require them.",
                n.uuid
            )));
        }
        // The whole network stands for "everyone in it".
        for c in &mut sources {
            if c == "0.0.0.0/0" {
                *c = guest.clone();
            }
        }
        let ports = public_ports(r.start_port, r.end_port)?;
        Self::require_service(&n, "Firewall", "Firewall service is not supported in specified network id")?;
        let Some(protocol) = Protocol::parse(&r.protocol) else {
            return Err(invalid(format!("Protocol {} is not supported in zone {}", r.protocol, n.zone_uuid)));
        };
        let icmp = Self::icmp_of(protocol, &r)?;
        let new = NewFirewall {
            network_id: n.id,
            ip_id: None,
            protocol: protocol.as_str().into(),
            ports,
            icmp,
            sources,
            destinations,
            account_id: n.account_id,
            domain_id: n.domain_id,
            for_display: r.for_display.unwrap_or(true),
        };
        let uuid = rules::create_firewall(&self.db, &new).await?;
        self.audit(
            caller,
            "FIREWALL.EGRESS.OPEN",
            ("FirewallRule", &uuid, &uuid),
            format!("Egress rule {uuid} on {} of network {}", describe_ports(protocol, ports), n.name),
        )
        .await?;
        let id = uuid.clone();
        self.rules_job(
            caller,
            cmd,
            "user.firewall.CreateEgressFirewallRuleCmd",
            ("FirewallRule", &uuid),
            Some(uuid.clone()),
            n.id,
            move |me: Orchestrator| async move {
                Ok(wrap("firewallrule", firewall_view(&me.firewall_row(&id, true).await?)))
            },
        )
        .await
    }

    async fn delete_firewall(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
        egress: bool,
    ) -> Result<Reply, ApiError> {
        let f = self.firewall_row(id, egress).await?;
        if !caller.can_reach(&f) {
            return Err(not_yours("firewall rule", id));
        }
        rules::revoke_firewall(&self.db, f.network_id, f.id).await?;
        let (kind, class) = match egress {
            true => ("FIREWALL.EGRESS.CLOSE", "user.firewall.DeleteEgressFirewallRuleCmd"),
            false => ("FIREWALL.CLOSE", "user.firewall.DeleteFirewallRuleCmd"),
        };
        self.audit(caller, kind, ("FirewallRule", &f.uuid, &f.uuid), format!("Firewall rule {} deleted", f.uuid))
            .await?;
        self.rules_job(caller, cmd, class, ("FirewallRule", id), None, f.network_id, |_| async { Ok(success()) }).await
    }

    async fn list_firewall(&self, caller: &Caller, q: RuleQuery, egress: bool) -> Result<Reply, ApiError> {
        let scope = self.scope(caller, &q.listing).await?;
        let ip_id = match &q.ip_id {
            Some(id) if !egress => Some(self.listed_ip(caller, id, "firewall").await?),
            _ => None,
        };
        let network_id = match &q.network_id {
            Some(id) => Some(self.network_for(caller, id).await?.id),
            None => None,
        };
        let f = RuleFilter { uuid: q.id, ip_id, network_id, ..Default::default() };
        let purpose = if egress { "Egress" } else { "Firewall" };
        let (rows, total) = rules::list_firewall(&self.db, &scope, purpose, &f, q.listing.page).await?;
        Ok(list("firewallrule", total, rows.iter().map(firewall_view).collect()))
    }

    /// The public IP a listing filters by: ready and the caller's.
    async fn listed_ip(&self, caller: &Caller, id: &str, what: &str) -> Result<i64, ApiError> {
        let ip = rules::ip(&self.db, id).await?.filter(|ip| ip.state == "Allocated");
        let Some(ip) = ip else {
            return Err(invalid(format!("Ip address id={id} not ready for {what} rules yet")));
        };
        if !caller.can_reach(&ip) {
            return Err(not_yours("IP address", id));
        }
        Ok(ip.id)
    }

    // ---------------------------------------------------------------- port forwarding

    /// A VM rules may point at: not destroyed, and the caller's.
    async fn rule_vm(&self, caller: &Caller, id: &str) -> Result<InstanceRow, ApiError> {
        let vm = instances::instance(&self.db, id).await?.ok_or_else(|| no_such("virtual machine", id))?;
        if matches!(vm.state, VmState::Destroyed | VmState::Expunging | VmState::Expunged | VmState::Error) {
            return Err(invalid(format!("Invalid user vm: {id}")));
        }
        if !caller.can_reach(&vm) {
            return Err(not_yours("virtual machine", id));
        }
        Ok(vm)
    }

    /// The guest address a forwarding rule goes to: the VM's address in the network, or
    /// `given` when it is that one.
    async fn forward_target(
        &self,
        vm: &InstanceRow,
        network_id: i64,
        given: Option<Ipv4Addr>,
    ) -> Result<(NicRow, Ipv4Addr), ApiError> {
        let Some((nic, ip)) = self.nic_in(vm, network_id).await? else {
            return Err(invalid("Vm doesn't belong to network associated with ipAddress"));
        };
        if given.is_some_and(|g| g != ip) {
            // wasmstack NICs have no secondary addresses.
            return Err(invalid("IP Address is not in the VM nic's network "));
        }
        Ok((nic, ip))
    }

    async fn create_forward(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        r: NewForwardRequest,
    ) -> Result<Reply, ApiError> {
        if r.cidrs_given {
            return Err(invalid(
                "Parameter cidrList is deprecated; if you need to open firewall rule for the specific cidr, please refer \
                 to createFirewallRule command",
            ));
        }
        let guest_ip = match &r.vm_guest_ip {
            Some(g) => Some(g.parse::<Ipv4Addr>().map_err(|_| invalid("Invalid vm ip address"))?),
            None => None,
        };
        let ip = rules::ip(&self.db, &r.ip_id).await?.filter(|ip| ip.state == "Allocated");
        let Some(ip) = ip else {
            return Err(invalid(format!("Unable to create PF rule, invalid IP address id {}", r.ip_id)));
        };
        if ip.static_nat_nic_id.is_some() {
            return Err(invalid(format!(
                "Unable to create port forwarding rule; ip id={} has static nat enabled",
                r.ip_id
            )));
        }
        let network_id = match (ip.network_id, &r.network_id) {
            (Some(n), _) => n,
            (None, Some(given)) => {
                let n = nets::network(&self.db, given).await?.ok_or_else(|| no_such("network", given))?;
                return Err(invalid(format!("Ip address {} is not assigned to the network {}", ip.ip(), n.name)));
            }
            (None, None) => {
                return Err(invalid(format!(
                    "Unable to create port forwarding rule for the ipAddress id={} as ip is not associated with any \
                     network and no networkId is passed in",
                    r.ip_id
                )));
            }
        };
        let public = public_ports(Some(r.public_port), r.public_end_port)?.unwrap_or_default();
        if !caller.can_reach(&ip) {
            return Err(not_yours("IP address", &r.ip_id));
        }
        let n = self.network_of(network_id).await?;
        Self::require_service(&n, "PortForwarding", "PortForwarding service is not supported in specified network id")?;
        let protocol = match Protocol::parse(&r.protocol) {
            Some(p @ (Protocol::Tcp | Protocol::Udp)) => p,
            Some(Protocol::Icmp) => {
                return Err(invalid("Protocol icmp is currently supported only for rules with purpose Firewall"));
            }
            _ => return Err(invalid(format!("Protocol {} is not supported in zone {}", r.protocol, n.zone_uuid))),
        };
        let private_end = r.private_end_port.unwrap_or(r.private_port);
        if !valid_port(r.private_port) {
            return Err(invalid(format!("privatePort is an invalid value: {}", r.private_port)));
        }
        if !valid_port(private_end) {
            return Err(invalid(format!("PrivateEndPort has an invalid value: {private_end}")));
        }
        if r.private_port > private_end {
            return Err(invalid("Start port can't be bigger than end port"));
        }
        let private = (i64::from(r.private_port), i64::from(private_end));
        if private.1 - private.0 != public.1 - public.0 {
            return Err(invalid("Source port and destination port ranges should be of equal sizes."));
        }
        let vm = self.rule_vm(caller, &r.vm_id).await?;
        let (nic, target) = self.forward_target(&vm, n.id, guest_ip).await?;
        // A range maps onto the same range, as CloudStack requires.
        if public.0 != public.1 || private.0 != private.1 {
            if public.0 != private.0 {
                return Err(invalid("Private port start should be equal to public port start"));
            }
            if public.1 != private.1 {
                return Err(invalid("Private port end should be equal to public port end"));
            }
        }
        let new = NewForward {
            network_id,
            ip_id: ip.id,
            protocol: protocol.as_str().into(),
            public,
            private,
            nic_id: nic.id,
            vm_ip: ip_to_int(target),
            account_id: ip.account_id.unwrap_or(n.account_id),
            domain_id: ip.domain_id.unwrap_or(n.domain_id),
            for_display: r.for_display.unwrap_or(true),
            open_firewall: r.open_firewall.unwrap_or(true),
        };
        let uuid = rules::create_forward(&self.db, &new).await?;
        self.audit(
            caller,
            "NET.RULEADD",
            ("FirewallRule", &uuid, &uuid),
            format!(
                "Port forwarding rule {uuid}: {} {}:{}-{} to {} {target}:{}-{}",
                protocol.as_str(),
                ip.ip(),
                public.0,
                public.1,
                vm.name,
                private.0,
                private.1
            ),
        )
        .await?;
        let id = uuid.clone();
        self.rules_job(
            caller,
            cmd,
            "user.firewall.CreatePortForwardingRuleCmd",
            ("FirewallRule", &uuid),
            Some(uuid.clone()),
            network_id,
            move |me: Orchestrator| async move { Ok(wrap("portforwardingrule", forward_view(&me.forward_row(&id).await?))) },
        )
        .await
    }

    async fn delete_forward(&self, caller: &Caller, cmd: &'static Command, id: &str) -> Result<Reply, ApiError> {
        let r = self.forward_row(id).await?;
        if !caller.can_reach(&r) {
            return Err(not_yours("port forwarding rule", id));
        }
        rules::revoke_forward(&self.db, r.network_id, r.id).await?;
        self.audit(
            caller,
            "NET.RULEDELETE",
            ("FirewallRule", &r.uuid, &r.uuid),
            format!("Port forwarding rule {} deleted", r.uuid),
        )
        .await?;
        let class = "user.firewall.DeletePortForwardingRuleCmd";
        self.rules_job(caller, cmd, class, ("FirewallRule", id), None, r.network_id, |_| async { Ok(success()) }).await
    }

    async fn list_forwards(&self, caller: &Caller, q: RuleQuery) -> Result<Reply, ApiError> {
        let scope = self.scope(caller, &q.listing).await?;
        let ip_id = match &q.ip_id {
            Some(id) => Some(self.listed_ip(caller, id, "port forwarding").await?),
            None => None,
        };
        let network_id = match &q.network_id {
            Some(id) => Some(self.network_for(caller, id).await?.id),
            None => None,
        };
        if let Some(v) = &q.vm_id {
            self.vm_for(caller, v).await?;
        }
        let f = RuleFilter { uuid: q.id, ip_id, network_id, vm_uuid: q.vm_id, ..Default::default() };
        let (rows, total) = rules::list_forwards(&self.db, &scope, &f, q.listing.page).await?;
        Ok(list("portforwardingrule", total, rows.iter().map(forward_view).collect()))
    }

    async fn update_forward(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        u: ForwardUpdate,
    ) -> Result<Reply, ApiError> {
        let r = self.forward_row(&u.id).await?;
        if !caller.can_reach(&r) {
            return Err(not_yours("port forwarding rule", &u.id));
        }
        if let Some(p) = u.private_port
            && !valid_port(p)
        {
            return Err(invalid(format!("privatePort is an invalid value: {p}")));
        }
        if let Some(p) = u.private_end_port
            && !valid_port(p)
        {
            return Err(invalid(format!("PrivateEndPort has an invalid value: {p}")));
        }
        let inconsistent = || {
            invalid(format!(
                "Unable to update the private port range of port forwarding rule as  the provided port range is not \
                 consistent with the port range : {} to {}",
                r.public_start_port, r.public_end_port
            ))
        };
        let width = r.public_end_port - r.public_start_port;
        if let (Some(s), Some(e)) = (u.private_port, u.private_end_port)
            && i64::from(e) - i64::from(s) != width
        {
            return Err(inconsistent());
        }
        if width != 0 && u.private_port.is_some() != u.private_end_port.is_some() {
            return Err(inconsistent());
        }
        if u.vm_id.is_none() && u.vm_guest_ip.is_some() {
            return Err(invalid("vmguestip should be set along with virtualmachineid"));
        }
        let (nic_id, target) = match &u.vm_id {
            Some(vm) => {
                let given = match &u.vm_guest_ip {
                    Some(g) => Some(g.parse::<Ipv4Addr>().map_err(|_| invalid("Invalid vm ip address"))?),
                    None => None,
                };
                let vm = self.rule_vm(caller, vm).await?;
                let (nic, ip) = self.forward_target(&vm, r.network_id, given).await?;
                (nic.id, ip_to_int(ip))
            }
            None => (r.nic_id, r.vm_ip),
        };
        let private = match (u.private_port, u.private_end_port) {
            (Some(s), e) => (i64::from(s), i64::from(e.unwrap_or(s))),
            (None, Some(e)) => (i64::from(e), i64::from(e)),
            (None, None) => (r.private_start_port, r.private_end_port),
        };
        rules::retarget_forward(&self.db, r.network_id, r.id, private, nic_id, target).await?;
        self.audit(
            caller,
            "NET.RULEMODIFY",
            ("FirewallRule", &r.uuid, &r.uuid),
            format!("Port forwarding rule {} now goes to {}:{}-{}", r.uuid, int_to_ip(target), private.0, private.1),
        )
        .await?;
        let id = r.uuid.clone();
        self.rules_job(
            caller,
            cmd,
            "user.firewall.UpdatePortForwardingRuleCmd",
            ("FirewallRule", &r.uuid),
            None,
            r.network_id,
            move |me: Orchestrator| async move { Ok(wrap("portforwardingrule", forward_view(&me.forward_row(&id).await?))) },
        )
        .await
    }

    // ---------------------------------------------------------------- load balancing

    async fn create_balancer(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        r: NewBalancerRequest,
    ) -> Result<Reply, ApiError> {
        let Some(ip_id) = &r.public_ip_id else {
            return Err(invalid("Unable to create load balance rule; can't find/allocate source IP"));
        };
        let ip = self.public_ip(ip_id).await?;
        if ip.static_nat_nic_id.is_some() {
            return Err(ApiError::rule_conflict(format!("Can't do load balance on ip address: {}", ip.ip())));
        }
        let Some(network_id) = ip.network_id else {
            return Err(invalid(
                "Unable to create load balancer rule ; specified sourceip id is not associated with any network",
            ));
        };
        let n = self.network_of(network_id).await?;
        if let Some(given) = &r.network_id
            && *given != n.uuid
        {
            let other = nets::network(&self.db, given).await?.ok_or_else(|| no_such("network", given))?;
            return Err(invalid(format!("Ip address {} is not assigned to the network {}", ip.ip(), other.name)));
        }
        if let Some(z) = &r.zone_id
            && *z != ip.zone_uuid
        {
            return Err(invalid(format!("Ip address {} is not in zone {z}", ip.ip())));
        }
        if !valid_port(r.private_port) {
            return Err(invalid(format!("privatePort is an invalid value: {}", r.private_port)));
        }
        let Some(algorithm) = Algorithm::parse(&r.algorithm) else {
            return Err(invalid(format!("Invalid algorithm: {}", r.algorithm)));
        };
        if ip.state != "Allocated" {
            return Err(invalid("Unable to create load balancer rule, invalid IP address id specified"));
        }
        if !caller.can_reach(&ip) {
            return Err(not_yours("IP address", ip_id));
        }
        Self::require_service(&n, "Lb", "LB service is not supported in specified network id")?;
        if !valid_port(r.public_port) {
            return Err(invalid(format!("publicPort is an invalid value: {}", r.public_port)));
        }
        let protocol = r.protocol.as_deref().unwrap_or("tcp").trim().to_ascii_lowercase();
        if !["tcp", "udp", "tcp-proxy"].contains(&protocol.as_str()) {
            let shown = r.protocol.as_deref().unwrap_or_default();
            return Err(invalid(format!("Protocol {shown} is not supported in zone {}", n.zone_uuid)));
        }
        if r.public_port == 53 && ip.is_source_nat != 0 && n.has_service("Dns") {
            return Err(invalid(
                "Error adding load balancer rule, cannot add port 53 with network service offering having DNS service \
                 and Source NAT.",
            ));
        }
        let cidrs: Vec<String> = r.cidrs.iter().flatten().map(|c| c.trim().to_owned()).collect();
        if let Some(bad) = cidrs.iter().find(|c| valid_cidr(c).is_none() && c.parse::<Ipv4Addr>().is_err()) {
            return Err(invalid(format!("CIDR [{bad}] is invalid.")));
        }
        let new = NewBalancer {
            name: r.name.clone(),
            description: r.description.clone(),
            network_id,
            ip_id: ip.id,
            protocol,
            public_port: i64::from(r.public_port),
            private_port: i64::from(r.private_port),
            algorithm: algorithm.as_str().into(),
            cidrs,
            account_id: ip.account_id.unwrap_or(n.account_id),
            domain_id: ip.domain_id.unwrap_or(n.domain_id),
            for_display: r.for_display.unwrap_or(true),
            open_firewall: r.open_firewall.unwrap_or(true),
        };
        let uuid = rules::create_balancer(&self.db, &new).await?;
        self.audit(
            caller,
            "LB.CREATE",
            ("LoadBalancerRule", &uuid, &r.name),
            format!("Load balancer {} on {}:{} ({})", r.name, ip.ip(), r.public_port, algorithm.as_str()),
        )
        .await?;
        let id = uuid.clone();
        self.rules_job(
            caller,
            cmd,
            "user.loadbalancer.CreateLoadBalancerRuleCmd",
            ("LoadBalancerRule", &uuid),
            Some(uuid.clone()),
            network_id,
            move |me: Orchestrator| async move { Ok(wrap("loadbalancer", balancer_view(&me.balancer_row(&id).await?))) },
        )
        .await
    }

    /// A balancing rule the caller may change.
    async fn balancer_to_change(&self, caller: &Caller, id: &str) -> Result<BalancerRow, ApiError> {
        let b = self.balancer_row(id).await?;
        if !caller.can_reach(&b) {
            return Err(not_yours("load balancer rule", id));
        }
        Ok(b)
    }

    async fn delete_balancer(&self, caller: &Caller, cmd: &'static Command, id: &str) -> Result<Reply, ApiError> {
        let b = self.balancer_to_change(caller, id).await?;
        rules::revoke_balancer(&self.db, b.network_id, b.id).await?;
        self.audit(
            caller,
            "LB.DELETE",
            ("LoadBalancerRule", &b.uuid, &b.name),
            format!("Load balancer {} deleted", b.name),
        )
        .await?;
        let class = "user.loadbalancer.DeleteLoadBalancerRuleCmd";
        self.rules_job(caller, cmd, class, ("LoadBalancerRule", id), None, b.network_id, |_| async { Ok(success()) })
            .await
    }

    async fn list_balancers(&self, caller: &Caller, q: RuleQuery) -> Result<Reply, ApiError> {
        let scope = self.scope(caller, &q.listing).await?;
        let ip_id = match &q.ip_id {
            Some(id) => {
                let ip = self.public_ip(id).await?;
                if !caller.can_reach(&ip) {
                    return Err(not_yours("IP address", id));
                }
                Some(ip.id)
            }
            None => None,
        };
        let network_id = match &q.network_id {
            Some(id) => Some(self.network_for(caller, id).await?.id),
            None => None,
        };
        let zone_id = match &q.zone_id {
            Some(z) => Some(crate::cloud::infra::zone(&self.db, z).await?.ok_or_else(|| no_such("zone", z))?.id),
            None => None,
        };
        if let Some(v) = &q.vm_id {
            self.vm_for(caller, v).await?;
        }
        let f = RuleFilter {
            uuid: q.id,
            ip_id,
            network_id,
            vm_uuid: q.vm_id,
            name: q.name,
            zone_id,
            keyword: q.listing.keyword.clone(),
        };
        let (rows, total) = rules::list_balancers(&self.db, &scope, &f, q.listing.page).await?;
        Ok(list("loadbalancerrule", total, rows.iter().map(balancer_view).collect()))
    }

    async fn update_balancer(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        u: BalancerUpdate,
    ) -> Result<Reply, ApiError> {
        let b = self.balancer_to_change(caller, &u.id).await?;
        let algorithm = match &u.algorithm {
            Some(a) => Some(Algorithm::parse(a).ok_or_else(|| invalid(format!("Invalid algorithm: {a}")))?),
            None => None,
        };
        if u.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(invalid("The load balancer rule name cannot be empty"));
        }
        rules::update_balancer(
            &self.db,
            b.network_id,
            b.id,
            u.name.as_deref(),
            u.description.as_deref(),
            algorithm.map(Algorithm::as_str),
        )
        .await?;
        self.audit(
            caller,
            "LB.UPDATE",
            ("LoadBalancerRule", &b.uuid, &b.name),
            format!("Load balancer {} updated", b.name),
        )
        .await?;
        let id = b.uuid.clone();
        self.rules_job(
            caller,
            cmd,
            "user.loadbalancer.UpdateLoadBalancerRuleCmd",
            ("LoadBalancerRule", &b.uuid),
            None,
            b.network_id,
            move |me: Orchestrator| async move { Ok(wrap("loadbalancer", balancer_view(&me.balancer_row(&id).await?))) },
        )
        .await
    }

    /// The VMs named by `virtualmachineids` and `vmidipmap`, each with the addresses
    /// given for it (None: its address in the network), in request order.
    fn member_request(members: &Members) -> Result<BTreeMap<String, Option<Vec<String>>>, ApiError> {
        if members.vm_ids.is_none() && members.vm_ips.is_empty() {
            return Err(invalid("Both instanceids and vmidipmap  can't be null"));
        }
        let mut wanted: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
        for (vm, ip) in &members.vm_ips {
            wanted.entry(vm.clone()).or_insert_with(|| Some(vec![])).get_or_insert_with(Vec::new).push(ip.clone());
        }
        for vm in members.vm_ids.iter().flatten() {
            wanted.entry(vm.clone()).or_insert(None);
        }
        Ok(wanted)
    }

    async fn assign_members(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
        members: Members,
    ) -> Result<Reply, ApiError> {
        let b = self.balancer_to_change(caller, id).await?;
        let wanted = Self::member_request(&members)?;
        let existing: Vec<MemberRow> = rules::members(&self.db, &[b.id]).await?;
        let mut add: Vec<(i64, i64)> = Vec::new();
        for (vm_id, ips) in &wanted {
            let vm = instances::instance(&self.db, vm_id).await?;
            let Some(vm) = vm.filter(|v| {
                !matches!(v.state, VmState::Destroyed | VmState::Expunging | VmState::Expunged | VmState::Error)
            }) else {
                return Err(invalid("Invalid instance id specified"));
            };
            if !caller.can_reach(&vm) {
                return Err(not_yours("virtual machine", vm_id));
            }
            if vm.account_id != b.account_id {
                return Err(invalid(format!(
                    "New rule {} and vm id={vm_id} belong to different accounts",
                    rule_name(&b.uuid, "LoadBalancing", &b.state)
                )));
            }
            let Some((nic, primary)) = self.nic_in(&vm, b.network_id).await? else {
                return Err(invalid(
                    "VM with id specified cannot be added because it doesn't belong in the same network.",
                ));
            };
            let mut addresses: Vec<Ipv4Addr> = Vec::new();
            let given = ips.clone().unwrap_or_default();
            for ip in &given {
                let parsed = ip.parse::<Ipv4Addr>().ok().filter(|p| *p == primary);
                let Some(parsed) = parsed else {
                    return Err(invalid(format!(
                        "VM ip {ip} specified does not belong to nic in network {}",
                        b.network_uuid
                    )));
                };
                addresses.push(parsed);
            }
            if ips.is_none() || members.vm_ids.iter().flatten().any(|v| v == vm_id) {
                addresses.push(primary);
            }
            addresses.dedup();
            for a in addresses {
                let mapped =
                    existing.iter().any(|m| m.nic_id == nic.id && m.vm_ip == ip_to_int(a) && m.state != rules::REVOKE);
                if mapped {
                    return Err(invalid(format!("VM {vm_id} with {a} is already mapped to load balancer.")));
                }
                if !add.contains(&(nic.id, ip_to_int(a))) {
                    add.push((nic.id, ip_to_int(a)));
                }
            }
        }
        rules::add_members(&self.db, b.network_id, b.id, &add).await?;
        self.audit(
            caller,
            "LB.ASSIGN.TO.RULE",
            ("LoadBalancerRule", &b.uuid, &b.name),
            format!("{} VM(s) assigned to load balancer {}", wanted.len(), b.name),
        )
        .await?;
        let class = "user.loadbalancer.AssignToLoadBalancerRuleCmd";
        self.rules_job(caller, cmd, class, ("LoadBalancerRule", id), None, b.network_id, |_| async { Ok(success()) })
            .await
    }

    async fn remove_members(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
        members: Members,
    ) -> Result<Reply, ApiError> {
        let b = self.balancer_to_change(caller, id).await?;
        let wanted = Self::member_request(&members)?;
        let existing: Vec<MemberRow> = rules::members(&self.db, &[b.id]).await?;
        let mut gone: Vec<i64> = Vec::new();
        for (vm_id, ips) in &wanted {
            let not_configured =
                || invalid(format!("The instance id: {vm_id} is not configured  for LB rule id {}", b.uuid));
            let of_vm: Vec<&MemberRow> = existing
                .iter()
                .filter(|m| m.vm_uuid.as_deref() == Some(vm_id.as_str()) && m.state != rules::REVOKE)
                .collect();
            match ips {
                None => {
                    if of_vm.is_empty() {
                        return Err(not_configured());
                    }
                    gone.extend(of_vm.iter().map(|m| m.id));
                }
                Some(ips) => {
                    for ip in ips {
                        let at = ip.parse::<Ipv4Addr>().ok().map(ip_to_int);
                        let m = of_vm.iter().find(|m| Some(m.vm_ip) == at).ok_or_else(not_configured)?;
                        gone.push(m.id);
                    }
                }
            }
        }
        rules::revoke_members(&self.db, b.network_id, &gone).await?;
        self.audit(
            caller,
            "LB.REMOVE.FROM.RULE",
            ("LoadBalancerRule", &b.uuid, &b.name),
            format!("{} VM(s) removed from load balancer {}", wanted.len(), b.name),
        )
        .await?;
        let class = "user.loadbalancer.RemoveFromLoadBalancerRuleCmd";
        self.rules_job(caller, cmd, class, ("LoadBalancerRule", id), None, b.network_id, |_| async { Ok(success()) })
            .await
    }

    /// The VMs of the rule's account in its network, assigned to it (`applied`) or not.
    async fn balancer_instances(
        &self,
        caller: &Caller,
        id: &str,
        applied: bool,
        vm_ips: bool,
        page: Option<(u32, u32)>,
    ) -> Result<Reply, ApiError> {
        let b = self.balancer_to_change(caller, id).await?;
        let members: Vec<MemberRow> =
            rules::members(&self.db, &[b.id]).await?.into_iter().filter(|m| m.state != rules::REVOKE).collect();
        let f = NicFilter { network_id: Some(b.network_id), ..Default::default() };
        let (nics, _) = nets::list_nics(&self.db, &f, None).await?;
        let mut items = Vec::new();
        for nic in nics {
            let Some(vm_uuid) = &nic.instance_uuid else { continue };
            let Some(vm) = instances::instance(&self.db, vm_uuid).await? else { continue };
            if vm.account_id != b.account_id
                || matches!(vm.state, VmState::Destroyed | VmState::Expunging | VmState::Expunged | VmState::Error)
            {
                continue;
            }
            let ips: Vec<String> =
                members.iter().filter(|m| m.nic_id == nic.id).map(|m| int_to_ip(m.vm_ip).to_string()).collect();
            if ips.is_empty() == applied {
                continue;
            }
            let view = self.vm_view(caller, &vm).await?;
            items.push(match vm_ips {
                true => {
                    let mut m = Map::new();
                    m.insert("loadbalancerruleinstance".into(), Value::Object(view));
                    m.insert("lbvmipaddresses".into(), json!(ips));
                    m
                }
                false => view,
            });
        }
        let total = items.len() as i64;
        let items = match page {
            Some((page, size)) => items.into_iter().skip(((page - 1) * size) as usize).take(size as usize).collect(),
            None => items,
        };
        Ok(list(if vm_ips { "lbrulevmidip" } else { "loadbalancerruleinstance" }, total, items))
    }
}

fn describe_ports(protocol: Protocol, ports: Option<(i64, i64)>) -> String {
    match ports {
        Some((s, e)) if s == e => format!("{} {s}", protocol.as_str()),
        Some((s, e)) => format!("{} {s}-{e}", protocol.as_str()),
        None => protocol.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_checked_as_cloudstack_checks_them() {
        assert_eq!(public_ports(Some(22), None).unwrap(), Some((22, 22)));
        assert_eq!(public_ports(None, None).unwrap(), None);
        assert_eq!(public_ports(Some(0), None).unwrap_err().text, "publicPort is an invalid value: 0");
        assert_eq!(
            public_ports(Some(80), Some(65536)).unwrap_err().text,
            "Public port range is an invalid value: 65536"
        );
        assert_eq!(public_ports(Some(90), Some(80)).unwrap_err().text, "Start port can't be bigger than end port");
    }

    #[test]
    fn cidrs_parse_and_nest() {
        let guest = valid_cidr("10.1.1.0/24").unwrap();
        assert!(within(valid_cidr("10.1.1.128/25").unwrap(), guest));
        assert!(!within(valid_cidr("10.1.0.0/16").unwrap(), guest));
        assert!(!within(valid_cidr("10.2.1.0/24").unwrap(), guest));
        assert!(valid_cidr("10.1.1.0/33").is_none());
        assert!(valid_cidr("10.1.1.0").is_none());
        assert!(valid_cidr("nonsense/8").is_none());
    }
}
