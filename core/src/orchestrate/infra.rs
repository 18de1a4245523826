//! Zones, pods, clusters and hosts: the zone wizard's commands.

use std::net::IpAddr;

use serde_json::json;

use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{
    InfraQuery, InfraRequest, InfraUpdate, NewClusterRequest, NewHostRequest, NewPodRequest, NewZoneRequest,
};
use crate::auth::Caller;
use crate::cloud::infra::{self, ClusterRow, HostRow, InfraFilter, PodRow, ZoneRow};
use crate::cloud::storage::{self, StorageFilter};
use crate::db::format_time;
use crate::plugins::Accel;

use super::{Orchestrator, capacity, list, no_such, object, views};

/// Picks one of `allowed` case-insensitively and returns it as spelled there.
pub(crate) fn one_of(param: &str, value: &str, allowed: &[&'static str]) -> Result<&'static str, ApiError> {
    allowed.iter().copied().find(|a| a.eq_ignore_ascii_case(value)).ok_or_else(|| {
        ApiError::invalid_param(format!(
            "Invalid value of parameter {param}: {value}; use one of {}",
            allowed.join(", ")
        ))
    })
}

/// How a cluster's guests run (`accel`): QEMU's accelerators, a setting of the cluster
/// (not a hypervisor type or driver).
const ACCELS: [(&str, Accel); 3] = [("auto", Accel::Auto), ("kvm", Accel::Kvm), ("tcg", Accel::Tcg)];

/// The accelerator a cluster's `accel` names.
pub(super) fn accel(value: &str) -> Accel {
    ACCELS.iter().find(|(name, _)| name.eq_ignore_ascii_case(value)).map_or(Accel::Auto, |(_, a)| *a)
}

fn ip(param: &str, value: &str) -> Result<IpAddr, ApiError> {
    value.parse().map_err(|_| {
        ApiError::invalid_param(format!("Invalid value of parameter {param}: {value} is not an IP address"))
    })
}

fn ipv4(param: &str, value: &str) -> Result<u32, ApiError> {
    match ip(param, value)? {
        IpAddr::V4(v) => Ok(u32::from(v)),
        IpAddr::V6(_) => {
            Err(ApiError::invalid_param(format!("Invalid value of parameter {param}: {value} is not an IPv4 address")))
        }
    }
}

/// A CIDR such as 10.1.1.0/24: the address and prefix must agree.
pub(crate) fn check_cidr(param: &str, value: &str) -> Result<(u32, u32), ApiError> {
    let bad = || {
        ApiError::invalid_param(format!(
            "Invalid value of parameter {param}: {value} is not a CIDR such as 10.1.1.0/24"
        ))
    };
    let (addr, prefix) = value.split_once('/').ok_or_else(bad)?;
    let addr = ipv4(param, addr).map_err(|_| bad())?;
    let prefix: u32 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(bad)?;
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    if addr & !mask != 0 {
        return Err(ApiError::invalid_param(format!("Invalid value of parameter {param}: {value} has host bits set")));
    }
    Ok((addr, mask))
}

/// A netmask such as 255.255.255.0: contiguous ones.
pub(crate) fn check_netmask(param: &str, value: &str) -> Result<u32, ApiError> {
    let m = ipv4(param, value)?;
    if m.leading_ones() + m.trailing_zeros() != 32 {
        return Err(ApiError::invalid_param(format!("Invalid value of parameter {param}: {value} is not a netmask")));
    }
    Ok(m)
}

fn allocation_state(value: Option<&str>, default: &'static str) -> Result<String, ApiError> {
    Ok(match value {
        Some(v) => one_of("allocationstate", v, &["Enabled", "Disabled"])?.to_owned(),
        None => default.to_owned(),
    })
}

/// Checks a pod's optional address range: all IPv4, start ≤ end, inside gateway/netmask.
fn check_pod_range(
    gateway: Option<&str>,
    netmask: Option<&str>,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<(), ApiError> {
    let gw = gateway.map(|g| ipv4("gateway", g)).transpose()?;
    let mask = netmask.map(|m| check_netmask("netmask", m)).transpose()?;
    let start = start.map(|s| ipv4("startip", s)).transpose()?;
    let end = end.map(|e| ipv4("endip", e)).transpose()?;
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(ApiError::invalid_param("The start IP address must not be after the end IP address"));
    }
    if let (Some(gw), Some(mask)) = (gw, mask) {
        for (name, addr) in [("startip", start), ("endip", end)] {
            if let Some(a) = addr
                && a & mask != gw & mask
            {
                return Err(ApiError::invalid_param(format!(
                    "The {name} is not in the subnet of the pod's gateway and netmask"
                )));
            }
        }
    }
    Ok(())
}

impl Orchestrator {
    /// Runs one infrastructure command: zones, pods, clusters, hosts.
    pub(super) async fn execute_infra(&self, caller: &Caller, request: InfraRequest) -> Result<Reply, ApiError> {
        use InfraRequest::*;
        match request {
            CreateZone(z) => Box::pin(self.create_zone(caller, z)).await,
            ListZones(q) => Box::pin(self.list_zones(q)).await,
            UpdateZone(u) => Box::pin(self.update_zone(caller, u)).await,
            DeleteZone { id } => Box::pin(self.delete_zone(caller, &id)).await,
            CreatePod(p) => Box::pin(self.create_pod(caller, p)).await,
            ListPods(q) => Box::pin(self.list_pods(q)).await,
            UpdatePod(u) => Box::pin(self.update_pod(caller, u)).await,
            DeletePod { id } => Box::pin(self.delete_pod(caller, &id)).await,
            AddCluster(c) => Box::pin(self.add_cluster(caller, c)).await,
            ListClusters(q) => Box::pin(self.list_clusters(q)).await,
            DeleteCluster { id } => Box::pin(self.delete_cluster(caller, &id)).await,
            AddHost(h) => Box::pin(self.add_host(caller, h)).await,
            ListHosts(q) => Box::pin(self.list_hosts(q)).await,
            ListHypervisors { zone_id } => Box::pin(self.list_hypervisors(zone_id.as_deref())).await,
            UpdateHost(u) => Box::pin(self.update_host(caller, u)).await,
            DeleteHost { id, .. } => Box::pin(self.delete_host(caller, &id)).await,
        }
    }

    pub(super) async fn create_zone(&self, caller: &Caller, z: NewZoneRequest) -> Result<Reply, ApiError> {
        let network_type = one_of("networktype", &z.network_type, &["Basic", "Advanced"])?;
        for (param, value) in [
            ("dns1", Some(&z.dns1)),
            ("internaldns1", Some(&z.internal_dns1)),
            ("dns2", z.dns2.as_ref()),
            ("internaldns2", z.internal_dns2.as_ref()),
        ] {
            if let Some(v) = value {
                ip(param, v)?;
            }
        }
        if let Some(c) = &z.guest_cidr {
            check_cidr("guestcidraddress", c)?;
        }
        if z.name.trim().is_empty() {
            return Err(ApiError::invalid_param("The zone name cannot be empty"));
        }
        if infra::zone_by_name(&self.db, &z.name).await?.is_some() {
            return Err(ApiError::invalid_param(format!("A zone with name {} already exists", z.name)));
        }
        let new = infra::NewZone {
            name: z.name.clone(),
            description: z.description,
            network_type: network_type.into(),
            allocation_state: allocation_state(z.allocation_state.as_deref(), "Disabled")?,
            dns1: z.dns1,
            dns2: z.dns2,
            internal_dns1: z.internal_dns1,
            internal_dns2: z.internal_dns2,
            guest_cidr: z.guest_cidr,
            local_storage_enabled: z.local_storage_enabled,
            security_groups_enabled: z.security_groups_enabled,
            is_edge: z.is_edge,
        };
        // The zone and its event are committed together, or neither is.
        let name = new.name.clone();
        let mut tx = self.db.begin().await.map_err(crate::db::DbError::from)?;
        let uuid = infra::create_zone_in(&mut *tx, new).await?;
        Self::audit_in(&mut tx, caller, "ZONE.CREATE", ("Zone", &uuid, &name), format!("Zone {name} created")).await?;
        tx.commit().await.map_err(crate::db::DbError::from)?;
        let zone = infra::zone(&self.db, &uuid).await?.ok_or_else(|| ApiError::internal("the new zone is gone"))?;
        Ok(object("zone", zone_view(&zone)))
    }

    pub(super) async fn list_zones(&self, q: InfraQuery) -> Result<Reply, ApiError> {
        let f = InfraFilter { uuid: q.id, name: q.name, keyword: q.keyword, ..Default::default() };
        let (rows, total) = infra::list_zones(&self.db, &f, q.page).await?;
        Ok(list("zone", total, rows.iter().map(zone_view).collect()))
    }

    pub(super) async fn update_zone(&self, caller: &Caller, u: InfraUpdate) -> Result<Reply, ApiError> {
        let zone = infra::zone(&self.db, &u.id).await?.ok_or_else(|| no_such("zone", &u.id))?;
        for (name, value) in &u.fields {
            let (column, value) = match *name {
                "name" => {
                    if value != &zone.name && infra::zone_by_name(&self.db, value).await?.is_some() {
                        return Err(ApiError::invalid_param(format!("A zone with name {value} already exists")));
                    }
                    ("name", value.clone())
                }
                "dns1" | "dns2" | "internaldns1" | "internaldns2" => {
                    ip(name, value)?;
                    (
                        match *name {
                            "dns1" => "dns1",
                            "dns2" => "dns2",
                            "internaldns1" => "internal_dns1",
                            _ => "internal_dns2",
                        },
                        value.clone(),
                    )
                }
                "guestcidraddress" => {
                    check_cidr(name, value)?;
                    ("guest_cidr", value.clone())
                }
                "description" => ("description", value.clone()),
                _ => ("allocation_state", allocation_state(Some(value), "Disabled")?),
            };
            infra::set_text(&self.db, "zones", zone.id, column, Some(value)).await?;
        }
        let zone = infra::zone(&self.db, &u.id).await?.ok_or_else(|| no_such("zone", &u.id))?;
        self.audit(caller, "ZONE.EDIT", ("Zone", &zone.uuid, &zone.name), format!("Zone {} updated", zone.name))
            .await?;
        Ok(object("zone", zone_view(&zone)))
    }

    pub(super) async fn delete_zone(&self, caller: &Caller, id: &str) -> Result<Reply, ApiError> {
        let zone = infra::zone(&self.db, id).await?.ok_or_else(|| no_such("zone", id))?;
        let (pods, _) =
            infra::list_pods(&self.db, &InfraFilter { zone_id: Some(zone.id), ..Default::default() }, None).await?;
        let in_zone = StorageFilter { zone_id: Some(zone.id), ..Default::default() };
        let (pools, _) = storage::list_pools(&self.db, &in_zone, None).await?;
        let (stores, _) = storage::list_stores(&self.db, &in_zone, None).await?;
        refuse_if_used(
            &format!("Zone {}", zone.name),
            &[
                ("pod(s)", pods.iter().map(|p| p.name.as_str()).collect()),
                ("storage pool(s)", pools.iter().map(|p| p.name.as_str()).collect()),
                ("image store(s)", stores.iter().map(|s| s.name.as_str()).collect()),
            ],
        )?;
        infra::remove(&self.db, "zones", zone.id).await?;
        self.audit(caller, "ZONE.DELETE", ("Zone", &zone.uuid, &zone.name), format!("Zone {} deleted", zone.name))
            .await?;
        Ok(Reply::Success { display_text: None })
    }

    pub(super) async fn create_pod(&self, caller: &Caller, p: NewPodRequest) -> Result<Reply, ApiError> {
        let zone = infra::zone(&self.db, &p.zone_id).await?.ok_or_else(|| no_such("zone", &p.zone_id))?;
        if p.name.trim().is_empty() {
            return Err(ApiError::invalid_param("The pod name cannot be empty"));
        }
        check_pod_range(p.gateway.as_deref(), p.netmask.as_deref(), p.start_ip.as_deref(), p.end_ip.as_deref())?;
        let (same, _) = infra::list_pods(
            &self.db,
            &InfraFilter { zone_id: Some(zone.id), name: Some(p.name.clone()), ..Default::default() },
            None,
        )
        .await?;
        if !same.is_empty() {
            return Err(ApiError::invalid_param(format!(
                "A pod with name {} already exists in zone {}",
                p.name, zone.name
            )));
        }
        let new = infra::NewPod {
            name: p.name,
            zone_id: zone.id,
            gateway: p.gateway,
            netmask: p.netmask,
            start_ip: p.start_ip,
            end_ip: p.end_ip,
            allocation_state: allocation_state(p.allocation_state.as_deref(), "Enabled")?,
        };
        let uuid = infra::create_pod(&self.db, new).await?;
        let pod = infra::pod(&self.db, &uuid).await?.ok_or_else(|| ApiError::internal("the new pod is gone"))?;
        self.audit(
            caller,
            "POD.CREATE",
            ("Pod", &pod.uuid, &pod.name),
            format!("Pod {} created in zone {}", pod.name, zone.name),
        )
        .await?;
        Ok(object("pod", pod_view(&pod)))
    }

    pub(super) async fn list_pods(&self, q: InfraQuery) -> Result<Reply, ApiError> {
        let zone_id = self.zone_id(q.zone_id.as_deref()).await?;
        let f = InfraFilter {
            uuid: q.id,
            name: q.name,
            zone_id,
            allocation_state: q.allocation_state,
            keyword: q.keyword,
            ..Default::default()
        };
        let (rows, total) = infra::list_pods(&self.db, &f, q.page).await?;
        Ok(list("pod", total, rows.iter().map(pod_view).collect()))
    }

    pub(super) async fn update_pod(&self, caller: &Caller, u: InfraUpdate) -> Result<Reply, ApiError> {
        let pod = infra::pod(&self.db, &u.id).await?.ok_or_else(|| no_such("pod", &u.id))?;
        let get = |n: &str, old: &Option<String>| {
            u.fields.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone()).or_else(|| old.clone())
        };
        check_pod_range(
            get("gateway", &pod.gateway).as_deref(),
            get("netmask", &pod.netmask).as_deref(),
            get("startip", &pod.start_ip).as_deref(),
            get("endip", &pod.end_ip).as_deref(),
        )?;
        for (name, value) in &u.fields {
            let (column, value) = match *name {
                "name" => ("name", value.clone()),
                "gateway" => ("gateway", value.clone()),
                "netmask" => ("netmask", value.clone()),
                "startip" => ("start_ip", value.clone()),
                "endip" => ("end_ip", value.clone()),
                _ => ("allocation_state", allocation_state(Some(value), "Enabled")?),
            };
            infra::set_text(&self.db, "pods", pod.id, column, Some(value)).await?;
        }
        let pod = infra::pod(&self.db, &u.id).await?.ok_or_else(|| no_such("pod", &u.id))?;
        self.audit(caller, "POD.EDIT", ("Pod", &pod.uuid, &pod.name), format!("Pod {} updated", pod.name)).await?;
        Ok(object("pod", pod_view(&pod)))
    }

    pub(super) async fn delete_pod(&self, caller: &Caller, id: &str) -> Result<Reply, ApiError> {
        let pod = infra::pod(&self.db, id).await?.ok_or_else(|| no_such("pod", id))?;
        let (clusters, _) =
            infra::list_clusters(&self.db, &InfraFilter { pod_id: Some(pod.id), ..Default::default() }, None).await?;
        refuse_if_used(
            &format!("Pod {}", pod.name),
            &[("cluster(s)", clusters.iter().map(|c| c.name.as_str()).collect())],
        )?;
        infra::remove(&self.db, "pods", pod.id).await?;
        self.audit(caller, "POD.DELETE", ("Pod", &pod.uuid, &pod.name), format!("Pod {} deleted", pod.name)).await?;
        Ok(Reply::Success { display_text: None })
    }

    pub(super) async fn zone_id(&self, uuid: Option<&str>) -> Result<Option<i64>, ApiError> {
        match uuid {
            Some(u) => Ok(Some(infra::zone(&self.db, u).await?.ok_or_else(|| no_such("zone", u))?.id)),
            None => Ok(None),
        }
    }

    /// The id of the pod a filter names, if it names one that exists.
    pub(super) async fn pod_id(&self, uuid: Option<&str>) -> Result<Option<i64>, ApiError> {
        match uuid {
            Some(u) => Ok(Some(infra::pod(&self.db, u).await?.ok_or_else(|| no_such("pod", u))?.id)),
            None => Ok(None),
        }
    }

    /// The id of the cluster a filter names, if it names one that exists.
    pub(super) async fn cluster_id(&self, uuid: Option<&str>) -> Result<Option<i64>, ApiError> {
        match uuid {
            Some(u) => Ok(Some(infra::cluster(&self.db, u).await?.ok_or_else(|| no_such("cluster", u))?.id)),
            None => Ok(None),
        }
    }

    async fn pod_in_zone(&self, pod_id: &str, zone_id: &str) -> Result<PodRow, ApiError> {
        let pod = infra::pod(&self.db, pod_id).await?.ok_or_else(|| no_such("pod", pod_id))?;
        if pod.zone_uuid != zone_id {
            return Err(ApiError::invalid_param(format!("Pod {} does not belong to zone {zone_id}", pod.name)));
        }
        Ok(pod)
    }

    pub(super) async fn add_cluster(&self, caller: &Caller, c: NewClusterRequest) -> Result<Reply, ApiError> {
        let pod = self.pod_in_zone(&c.pod_id, &c.zone_id).await?;
        let cluster = self
            .create_cluster(
                caller,
                &pod,
                &c.name,
                &c.hypervisor,
                &c.cluster_type,
                c.allocation_state.as_deref(),
                c.accel.as_deref(),
            )
            .await?;
        Ok(Reply::List { object: "cluster".into(), count: 1, items: vec![cluster_view(&cluster)] })
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_cluster(
        &self,
        caller: &Caller,
        pod: &PodRow,
        name: &str,
        hypervisor: &str,
        cluster_type: &str,
        allocation: Option<&str>,
        accel: Option<&str>,
    ) -> Result<ClusterRow, ApiError> {
        let (_, served) = self.hypervisor_serving("hypervisor", hypervisor)?;
        let hypervisor = served.name.as_str();
        let cluster_type = one_of("clustertype", cluster_type, &["CloudManaged", "ExternalManaged"])?;
        let accel = one_of("accel", accel.unwrap_or(ACCELS[0].0), &ACCELS.map(|(name, _)| name))?;
        if name.trim().is_empty() {
            return Err(ApiError::invalid_param("The cluster name cannot be empty"));
        }
        let (same, _) = infra::list_clusters(
            &self.db,
            &InfraFilter { pod_id: Some(pod.id), name: Some(name.into()), ..Default::default() },
            None,
        )
        .await?;
        if !same.is_empty() {
            return Err(ApiError::invalid_param(format!(
                "A cluster with name {name} already exists in pod {}",
                pod.name
            )));
        }
        let new = infra::NewCluster {
            name: name.into(),
            pod_id: pod.id,
            zone_id: pod.zone_id,
            hypervisor: hypervisor.into(),
            cluster_type: cluster_type.into(),
            allocation_state: allocation_state(allocation, "Enabled")?,
            accel: accel.into(),
        };
        let uuid = infra::create_cluster(&self.db, new).await?;
        let cluster =
            infra::cluster(&self.db, &uuid).await?.ok_or_else(|| ApiError::internal("the new cluster is gone"))?;
        self.audit(
            caller,
            "CLUSTER.CREATE",
            ("Cluster", &cluster.uuid, &cluster.name),
            format!("Cluster {name} created"),
        )
        .await?;
        Ok(cluster)
    }

    pub(super) async fn list_clusters(&self, q: InfraQuery) -> Result<Reply, ApiError> {
        let zone_id = self.zone_id(q.zone_id.as_deref()).await?;
        let pod_id = self.pod_id(q.pod_id.as_deref()).await?;
        let f = InfraFilter {
            uuid: q.id,
            name: q.name,
            zone_id,
            pod_id,
            hypervisor: q.hypervisor,
            allocation_state: q.allocation_state,
            keyword: q.keyword,
            ..Default::default()
        };
        let (rows, total) = infra::list_clusters(&self.db, &f, q.page).await?;
        Ok(list("cluster", total, rows.iter().map(cluster_view).collect()))
    }

    pub(super) async fn delete_cluster(&self, caller: &Caller, id: &str) -> Result<Reply, ApiError> {
        let cluster = infra::cluster(&self.db, id).await?.ok_or_else(|| no_such("cluster", id))?;
        let (hosts, _) = infra::list_hosts(
            &self.db,
            &InfraFilter { cluster_id: Some(cluster.id), ..Default::default() },
            None,
            None,
        )
        .await?;
        let (pools, _) =
            storage::list_pools(&self.db, &StorageFilter { cluster_id: Some(cluster.id), ..Default::default() }, None)
                .await?;
        refuse_if_used(
            &format!("Cluster {}", cluster.name),
            &[
                ("host(s)", hosts.iter().map(|h| h.name.as_str()).collect()),
                ("storage pool(s)", pools.iter().map(|p| p.name.as_str()).collect()),
            ],
        )?;
        infra::remove(&self.db, "clusters", cluster.id).await?;
        self.audit(
            caller,
            "CLUSTER.DELETE",
            ("Cluster", &cluster.uuid, &cluster.name),
            format!("Cluster {} deleted", cluster.name),
        )
        .await?;
        Ok(Reply::Success { display_text: None })
    }

    pub(super) async fn add_host(&self, caller: &Caller, h: NewHostRequest) -> Result<Reply, ApiError> {
        let pod = self.pod_in_zone(&h.pod_id, &h.zone_id).await?;
        let (plugin, served) = self.hypervisor_serving("hypervisor", &h.hypervisor)?;
        let hypervisor = served.name.as_str();
        let cluster = match (&h.cluster_id, &h.cluster_name) {
            (Some(id), _) => infra::cluster(&self.db, id).await?.ok_or_else(|| no_such("cluster", id))?,
            (None, Some(name)) => {
                let (found, _) = infra::list_clusters(
                    &self.db,
                    &InfraFilter { pod_id: Some(pod.id), name: Some(name.clone()), ..Default::default() },
                    None,
                )
                .await?;
                match found.into_iter().next() {
                    Some(c) => c,
                    // As CloudStack does, a cluster named but not found is created.
                    None => self.create_cluster(caller, &pod, name, hypervisor, "CloudManaged", None, None).await?,
                }
            }
            (None, None) => return Err(ApiError::invalid_param("Either clusterid or clustername must be given")),
        };
        if cluster.pod_id != pod.id {
            return Err(ApiError::invalid_param(format!(
                "Cluster {} does not belong to pod {}",
                cluster.name, pod.name
            )));
        }
        if !cluster.hypervisor.eq_ignore_ascii_case(hypervisor) {
            return Err(ApiError::invalid_param(format!(
                "Cluster {} runs {}, not {hypervisor}",
                cluster.name, cluster.hypervisor
            )));
        }
        let driver_name = plugin.info.name.clone();
        let driver = self.plugins.hypervisor(&driver_name).map_err(|e| ApiError::unavailable(e.to_string()))?;
        // The driver turns the operator's URL into the one it is called with (pure: the
        // host is reached only by probe_host below).
        let (d, ty, url) = (driver.clone(), hypervisor.to_owned(), h.url.clone());
        let what = format!("Invalid value of parameter url: {}", h.url);
        let target = super::instances::blocking(what, move || d.connect_host(&ty, &url)).await?;
        // The driver's settings travel in the URI's query string (see wit/plugin.wit).
        let uri = crate::plugins::settings::apply(&driver_name, &plugin.info.config_schema, &target.url, &h.details)
            .map_err(|e| ApiError::invalid_param(e.to_string()))?;
        // Several simulated hosts may share one URL; real ones are one host each.
        if !served.features.simulated {
            let (all, _) = infra::list_hosts(&self.db, &InfraFilter::default(), None, None).await?;
            if let Some(other) = all.iter().find(|o| o.libvirt_uri == uri) {
                return Err(ApiError::invalid_param(format!("Host {} already has the URL {uri}", other.name)));
            }
        }
        let probe_uri = uri.clone();
        let facts = tokio::task::spawn_blocking(move || driver.probe_host(&probe_uri))
            .await
            .map_err(|e| ApiError::internal(format!("probing the host crashed: {e}")))?
            .map_err(|e| ApiError::unavailable(format!("Cannot add host {uri}: {e}")))?;
        let address = target.address;
        let name = if served.features.simulated {
            // Simulated hosts share their URL and address: a suffix tells them apart.
            format!("sim-{}-{}", cluster.name, &crate::db::new_uuid()[..8])
        } else if address == "127.0.0.1" {
            local_hostname()
        } else {
            address.clone()
        };
        let new = infra::NewHost {
            name,
            zone_id: pod.zone_id,
            pod_id: pod.id,
            cluster_id: cluster.id,
            hypervisor: hypervisor.into(),
            driver: driver_name,
            driver_version: plugin.info.version.clone(),
            url: h.url,
            libvirt_uri: uri,
            ip_address: address,
            cpus: facts.cpus as i64,
            cpu_mhz: facts.cpu_mhz as i64,
            cpu_model: facts.cpu_model,
            memory_bytes: facts.memory_bytes as i64,
            hypervisor_version: facts.hypervisor_version,
            hardware_accel: facts.hardware_accel,
            host_tags: h.host_tags,
        };
        let uuid = infra::create_host(&self.db, new).await?;
        let host = infra::host(&self.db, &uuid).await?.ok_or_else(|| ApiError::internal("the new host is gone"))?;
        self.audit(caller, "HOST.CREATE", ("Host", &host.uuid, &host.name), format!("Host {} added", host.name))
            .await?;
        Ok(Reply::List { object: "host".into(), count: 1, items: vec![self.host_view(&host)] })
    }

    /// A host as the API shows it, in Alert when its driver cannot serve it now.
    pub(super) fn host_view(&self, h: &HostRow) -> serde_json::Map<String, serde_json::Value> {
        host_view(h, self.host_problem(h))
    }

    /// listHypervisors: the hypervisor types the loaded drivers serve, with the driver
    /// serving each and what its hosts can do.
    pub(super) async fn list_hypervisors(&self, zone_id: Option<&str>) -> Result<Reply, ApiError> {
        if let Some(z) = zone_id {
            infra::zone(&self.db, z).await?.ok_or_else(|| no_such("zone", z))?;
        }
        let items: Vec<_> = self
            .plugins
            .hypervisor_types()
            .into_iter()
            .map(|(p, t)| {
                views::object(json!({
                    "name": t.name,
                    "driver": p.info.name,
                    "driverversion": p.info.version,
                    "features": t.features.names(),
                }))
            })
            .collect();
        Ok(list("hypervisor", items.len() as i64, items))
    }

    pub(super) async fn list_hosts(&self, q: InfraQuery) -> Result<Reply, ApiError> {
        let zone_id = self.zone_id(q.zone_id.as_deref()).await?;
        let pod_id = self.pod_id(q.pod_id.as_deref()).await?;
        let cluster_id = self.cluster_id(q.cluster_id.as_deref()).await?;
        let f = InfraFilter {
            uuid: q.id,
            name: q.name,
            zone_id,
            pod_id,
            cluster_id,
            hypervisor: q.hypervisor,
            keyword: q.keyword,
            ..Default::default()
        };
        let (rows, total) = infra::list_hosts(&self.db, &f, q.state.as_deref(), q.page).await?;
        let loads = self.host_loads(&rows).await?;
        Ok(list("host", total, rows.iter().map(|h| capacity::with_load(self.host_view(h), loads.get(&h.id))).collect()))
    }

    pub(super) async fn update_host(&self, caller: &Caller, u: InfraUpdate) -> Result<Reply, ApiError> {
        let host = infra::host(&self.db, &u.id).await?.ok_or_else(|| no_such("host", &u.id))?;
        for (name, value) in &u.fields {
            let (column, value) = match *name {
                "name" => ("name", value.clone()),
                "hosttags" => ("host_tags", value.clone()),
                _ => {
                    let state = one_of("allocationstate", value, &["Enable", "Disable"])?;
                    ("resource_state", format!("{state}d"))
                }
            };
            infra::set_text(&self.db, "hosts", host.id, column, Some(value)).await?;
        }
        let host = infra::host(&self.db, &u.id).await?.ok_or_else(|| no_such("host", &u.id))?;
        self.audit(caller, "HOST.UPDATE", ("Host", &host.uuid, &host.name), format!("Host {} updated", host.name))
            .await?;
        let loads = self.host_loads(std::slice::from_ref(&host)).await?;
        Ok(object("host", capacity::with_load(self.host_view(&host), loads.get(&host.id))))
    }

    pub(super) async fn delete_host(&self, caller: &Caller, id: &str) -> Result<Reply, ApiError> {
        let host = infra::host(&self.db, id).await?.ok_or_else(|| no_such("host", id))?;
        let vms = infra::users_of(&self.db, "instances", "host_id", host.id).await?;
        if vms > 0 {
            return Err(ApiError::in_use(format!("Host {} still has {vms} VM(s); expunge them first", host.name)));
        }
        infra::remove(&self.db, "hosts", host.id).await?;
        self.audit(caller, "HOST.DELETE", ("Host", &host.uuid, &host.name), format!("Host {} deleted", host.name))
            .await?;
        Ok(Reply::Success { display_text: None })
    }
}

/// 536 naming what still uses `what`, when anything does.
fn refuse_if_used(what: &str, users: &[(&str, Vec<&str>)]) -> Result<(), ApiError> {
    let used: Vec<String> = users
        .iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(kind, names)| format!("{kind} {}", names.join(", ")))
        .collect();
    if used.is_empty() {
        return Ok(());
    }
    Err(ApiError::in_use(format!("{what} is in use by {}; delete them first", used.join(" and "))))
}

fn local_hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn zone_view(z: &ZoneRow) -> serde_json::Map<String, serde_json::Value> {
    views::object(json!({
        "id": z.uuid,
        "name": z.name,
        "description": z.description,
        "networktype": z.network_type,
        "allocationstate": z.allocation_state,
        "dns1": z.dns1,
        "dns2": z.dns2,
        "internaldns1": z.internal_dns1,
        "internaldns2": z.internal_dns2,
        "guestcidraddress": z.guest_cidr,
        "localstorageenabled": z.local_storage_enabled != 0,
        "securitygroupsenabled": z.security_groups_enabled != 0,
        "type": if z.is_edge != 0 { "Edge" } else { "Core" },
        "zonetoken": z.uuid,
        "dhcpprovider": "VirtualRouter",
        "created": format_time(z.created),
    }))
}

fn pod_view(p: &PodRow) -> serde_json::Map<String, serde_json::Value> {
    views::object(json!({
        "id": p.uuid,
        "name": p.name,
        "zoneid": p.zone_uuid,
        "zonename": p.zone_name,
        "gateway": p.gateway,
        "netmask": p.netmask,
        "startip": p.start_ip.iter().collect::<Vec<_>>(),
        "endip": p.end_ip.iter().collect::<Vec<_>>(),
        "allocationstate": p.allocation_state,
    }))
}

fn cluster_view(c: &ClusterRow) -> serde_json::Map<String, serde_json::Value> {
    views::object(json!({
        "id": c.uuid,
        "name": c.name,
        "podid": c.pod_uuid,
        "podname": c.pod_name,
        "zoneid": c.zone_uuid,
        "zonename": c.zone_name,
        "hypervisortype": c.hypervisor,
        "clustertype": c.cluster_type,
        "allocationstate": c.allocation_state,
        "managedstate": "Managed",
        "cpuovercommitratio": format!("{}", c.cpu_overcommit),
        "memoryovercommitratio": format!("{}", c.memory_overcommit),
        "arch": "x86_64",
        "accel": c.accel,
    }))
}

fn host_view(h: &HostRow, problem: Option<String>) -> serde_json::Map<String, serde_json::Value> {
    views::object(json!({
        "id": h.uuid,
        "name": h.name,
        "type": "Routing",
        // A host whose driver is gone (or no longer serves its type) cannot be used: it
        // shows as CloudStack shows a host it cannot manage, with the reason.
        "state": if problem.is_some() { "Alert" } else { h.state.as_str() },
        "details": problem.map(|p| json!({ "reason": p })),
        "resourcestate": h.resource_state,
        "ipaddress": h.ip_address,
        "hypervisor": h.hypervisor,
        "hypervisorversion": h.hypervisor_version,
        "zoneid": h.zone_uuid,
        "zonename": h.zone_name,
        "podid": h.pod_uuid,
        "podname": h.pod_name,
        "clusterid": h.cluster_uuid,
        "clustername": h.cluster_name,
        "clustertype": "CloudManaged",
        "cpunumber": h.cpus,
        "cpuspeed": h.cpu_mhz,
        "cpuallocated": "0%",
        "memorytotal": h.memory_bytes,
        "memoryallocated": 0,
        "memoryused": 0,
        "lastpinged": format_time(h.last_pinged),
        "created": format_time(h.created),
        "hosttags": h.host_tags,
        "version": env!("CARGO_PKG_VERSION"),
        "arch": h.cpu_model,
        "hardwareaccel": h.hardware_accel != 0,
        "driver": h.driver,
        "driverversion": h.driver_version,
    }))
}
