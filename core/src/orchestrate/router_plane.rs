//! The data plane of routers: a network's recorded router state, applied whole through
//! the network's driver on the router's host.
//!
//! The database is the truth; the host follows it. Every recorded change is applied at
//! once (`router_changed` calls `apply_router`), and the reconciler asks the driver for
//! each running router's status, applying the recorded state again when the router is
//! missing or degraded (a host reboot, a deleted namespace, a load balancer that died).
//! Routers on simulated hosts, and those of zones without public traffic, have nothing
//! to build: their state is recorded only.

use std::net::Ipv4Addr;

use crate::api::error::ApiError;
use crate::auth::store::Scope;
use crate::cloud::infra;
use crate::cloud::networks::{self as nets, NetworkRow, PhysicalFilter, TrafficTypeRow};
use crate::cloud::public_ips::{self as pips, RouterFilter, RouterRow};
use crate::events::{self, Event};
use crate::plugins::{
    self, EgressPolicy, EgressRule, FirewallRule, LbAlgorithm, LbMember, LoadBalancer, NetworkDriver, NetworkSpec,
    PortForward, PortRange, Protocol as WireProtocol, PublicIp, RouterSpec, Serves, StaticNat,
};

use super::Orchestrator;
use super::instances::blocking;
use super::networks::spec_with_dhcp;
use super::routers::{RouterState, router_state};
use super::rules::{Algorithm, Protocol};

/// The services a network driver declares when it builds routers.
const ROUTER_SERVICES: &[&str] = &["SourceNat", "StaticNat", "PortForwarding", "Firewall", "Lb"];

/// Where and through what a router is built.
struct Plane {
    driver: NetworkDriver,
    host: String,
    net: NetworkSpec,
    public_label: String,
}

impl Orchestrator {
    /// The zone's Public traffic type, if one of its physical networks carries it.
    pub(super) async fn public_traffic(&self, zone_id: i64) -> Result<Option<TrafficTypeRow>, ApiError> {
        let f = PhysicalFilter { zone_id: Some(zone_id), ..Default::default() };
        for p in nets::list_physical(&self.db, &f, None).await?.0 {
            let (types, _) = nets::traffic_types(&self.db, Some(p.id), None, None).await?;
            if let Some(t) = types.into_iter().find(|t| t.traffic_type == "Public") {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    /// The label of the zone's Public traffic type: the host bridge public IPs live on.
    async fn public_label(&self, zone_id: i64) -> Result<Option<String>, ApiError> {
        Ok(self.public_traffic(zone_id).await?.and_then(|t| t.kvm_label))
    }

    /// The driver and host that build a router, or None when it has no data plane: no
    /// host, a simulated host, or a zone without public traffic.
    async fn plane(&self, n: &NetworkRow, r: &RouterRow) -> Result<Option<Plane>, ApiError> {
        let Some(host_uuid) = &r.host_uuid else { return Ok(None) };
        let Some(host) = infra::host(&self.db, host_uuid).await? else { return Ok(None) };
        if self.features_of(&host)?.simulated {
            return Ok(None);
        }
        let Some(public_label) = self.public_label(n.zone_id).await? else { return Ok(None) };
        let driver = self.network_driver(n)?;
        let builds_routers = match &driver.plugin().info.serves {
            Serves::Network(f) => f.services.iter().any(|s| ROUTER_SERVICES.iter().any(|r| r.eq_ignore_ascii_case(s))),
            _ => false,
        };
        if !builds_routers {
            return Err(ApiError::unsupported(format!(
                "Network driver {} provides none of the router services ({}) that network {} needs",
                driver.plugin().info.name,
                ROUTER_SERVICES.join(", "),
                n.name
            )));
        }
        let net = spec_with_dhcp(&self.db, n).await?;
        Ok(Some(Plane { driver, host: host.name, net, public_label }))
    }

    /// Makes the router's host hold `state`: applies it when the router runs, removes
    /// it when the router is stopped.
    pub(super) async fn apply_router(
        &self,
        n: &NetworkRow,
        r: &RouterRow,
        state: &RouterState,
    ) -> Result<(), ApiError> {
        let Some(p) = self.plane(n, r).await? else { return Ok(()) };
        if !state.running {
            return self.remove_router(n, r).await;
        }
        let spec = router_spec(state, &p.public_label)?;
        let what = format!("Applying router {} of network {} on host {}", state.name, n.name, p.host);
        // A router stands on its network: the first deploy records the router before its
        // NICs build the network on the host, so build it here (idempotent).
        blocking(what, move || {
            p.driver.implement(&p.host, &p.net)?;
            p.driver.apply_router(&p.host, &p.net, &spec)
        })
        .await
    }

    /// Removes a router from its host (stop, destroy, network deleted). Removing one the
    /// host does not have succeeds.
    pub(super) async fn remove_router(&self, n: &NetworkRow, r: &RouterRow) -> Result<(), ApiError> {
        let Some(p) = self.plane(n, r).await? else { return Ok(()) };
        let what = format!("Removing router {} of network {} from host {}", r.name, n.name, p.host);
        blocking(what, move || p.driver.destroy_router(&p.host, &p.net)).await
    }

    /// One reconciler pass over running routers: those their host lost or broke are
    /// applied again from the database. Returns how many were rebuilt.
    pub(crate) async fn repair_routers(&self) -> Result<usize, ApiError> {
        let f = RouterFilter { state: Some("Running".into()), ..Default::default() };
        let (routers, _) = pips::list_routers(&self.db, &Scope::default(), &f, None).await?;
        let mut repaired = 0;
        for r in routers {
            let Some(n) = nets::network_by_id(&self.db, r.network_id).await? else { continue };
            let p = match self.plane(&n, &r).await {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(router = r.name.as_str(), "router not checked: {}", e.text);
                    continue;
                }
            };
            let what = format!("Asking host {} for router {}", p.host, r.name);
            let (d, h, s) = (p.driver.clone(), p.host.clone(), p.net.clone());
            let status = match blocking(what, move || d.router_status(&h, &s)).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(router = r.name.as_str(), "router status unknown: {}", e.text);
                    continue;
                }
            };
            if matches!(status, plugins::RouterState::Running) {
                continue;
            }
            let state = router_state(&self.db, &n, &r).await?;
            match self.apply_router(&n, &r, &state).await {
                Ok(()) => {
                    repaired += 1;
                    let text = format!("Router {} was {status:?} on host {}; applied again", r.name, p.host);
                    tracing::warn!("{text}");
                    let ev = Event { kind: "ROUTER.SYNC", level: "WARN", description: text, resource: None }.on(
                        "DomainRouter",
                        &r.uuid,
                        &r.name,
                    );
                    events::record_for_account(&self.db, r.account_id, r.domain_id, ev).await?;
                }
                Err(e) => tracing::error!(router = r.name.as_str(), "rebuilding the router: {}", e.text),
            }
        }
        Ok(repaired)
    }
}

fn ports(p: Option<(u16, u16)>) -> Option<PortRange> {
    p.map(|(start, end)| PortRange { start, end })
}

fn wire(p: Protocol) -> WireProtocol {
    match p {
        Protocol::Tcp => WireProtocol::Tcp,
        Protocol::Udp => WireProtocol::Udp,
        Protocol::Icmp => WireProtocol::Icmp,
        Protocol::All => WireProtocol::All,
    }
}

/// A balancer's name on the wire: short, unique per router, from the rule's UUID.
fn balancer_name(id: &str) -> String {
    let mut name = String::from("lb-");
    name.extend(id.chars().filter(|c| c.is_ascii_alphanumeric()).take(28));
    name
}

/// The whole router state in the contract's terms.
pub(super) fn router_spec(state: &RouterState, public_label: &str) -> Result<RouterSpec, ApiError> {
    let gateway = state
        .guest
        .gateway
        .ok_or_else(|| ApiError::internal(format!("network {} has no gateway for its router", state.guest.network)))?;
    let prefix = state.guest.cidr.split_once('/').map(|(_, p)| p).unwrap_or("24");
    let rules = &state.rules;
    let public_ips = state
        .public
        .iter()
        .map(|ip| PublicIp {
            address: ip.address.to_string(),
            prefix: ip.prefix.min(32) as u8,
            gateway: ip.gateway.to_string(),
            vlan: ip.vlan.and_then(|v| u16::try_from(v).ok()),
            source_nat: ip.source_nat,
            firewall: rules
                .ingress
                .iter()
                .filter(|f| f.public_ip == Some(ip.address))
                .map(|f| FirewallRule { protocol: wire(f.protocol), ports: ports(f.ports), cidrs: f.sources.clone() })
                .collect(),
        })
        .collect();
    let egress = rules
        .egress
        .iter()
        .map(|f| EgressRule {
            protocol: wire(f.protocol),
            ports: ports(f.ports),
            source_cidrs: f.sources.clone(),
            destination_cidrs: f.destinations.clone(),
        })
        .collect();
    let port_forwards = rules
        .forwards
        .iter()
        .map(|f| PortForward {
            public_ip: f.public_ip.to_string(),
            protocol: wire(f.protocol),
            public_ports: PortRange { start: f.public_ports.0, end: f.public_ports.1 },
            private_ip: f.guest_ip.to_string(),
            private_ports: PortRange { start: f.private_ports.0, end: f.private_ports.1 },
        })
        .collect();
    let static_nats = state
        .public
        .iter()
        .filter_map(|ip| {
            ip.static_nat
                .map(|vm: Ipv4Addr| StaticNat { public_ip: ip.address.to_string(), private_ip: vm.to_string() })
        })
        .collect();
    let load_balancers = rules
        .balancers
        .iter()
        .map(|b| LoadBalancer {
            name: balancer_name(&b.id),
            public_ip: b.public_ip.to_string(),
            public_port: b.public_port,
            algorithm: match b.algorithm {
                Algorithm::RoundRobin => LbAlgorithm::RoundRobin,
                Algorithm::LeastConn => LbAlgorithm::LeastConnections,
                Algorithm::Source => LbAlgorithm::Source,
            },
            members: b.members.iter().map(|m| LbMember { ip: m.to_string(), port: b.private_port }).collect(),
        })
        .collect();
    Ok(RouterSpec {
        guest_gateway: format!("{gateway}/{prefix}"),
        public_label: public_label.to_owned(),
        public_ips,
        egress_default: if rules.egress_default_allow { EgressPolicy::Allow } else { EgressPolicy::Deny },
        egress,
        port_forwards,
        static_nats,
        load_balancers,
    })
}
