//! Typed requests of zones, pods, clusters and hosts.

use super::*;

/// Changes to a zone, pod or host; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct InfraUpdate {
    pub id: String,
    pub fields: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone)]
pub struct NewZoneRequest {
    pub name: String,
    pub network_type: String,
    pub dns1: String,
    pub internal_dns1: String,
    pub dns2: Option<String>,
    pub internal_dns2: Option<String>,
    pub guest_cidr: Option<String>,
    pub description: Option<String>,
    pub local_storage_enabled: bool,
    pub security_groups_enabled: bool,
    pub allocation_state: Option<String>,
    pub is_edge: bool,
}

#[derive(Debug, Clone)]
pub struct NewPodRequest {
    pub name: String,
    pub zone_id: String,
    pub gateway: Option<String>,
    pub netmask: Option<String>,
    pub start_ip: Option<String>,
    pub end_ip: Option<String>,
    pub allocation_state: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewClusterRequest {
    pub name: String,
    pub cluster_type: String,
    pub hypervisor: String,
    pub pod_id: String,
    pub zone_id: String,
    pub allocation_state: Option<String>,
    pub accel: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewHostRequest {
    pub hypervisor: String,
    pub pod_id: String,
    pub zone_id: String,
    pub url: String,
    pub cluster_id: Option<String>,
    pub cluster_name: Option<String>,
    pub host_tags: Option<String>,
    /// Settings for the hypervisor driver, checked against its config-schema.
    pub details: BTreeMap<String, String>,
}

/// An infrastructure command: zones, pods, clusters, hosts, parsed.
#[derive(Debug, Clone)]
pub enum InfraRequest {
    CreateZone(NewZoneRequest),
    ListZones(InfraQuery),
    UpdateZone(InfraUpdate),
    DeleteZone {
        id: String,
    },
    CreatePod(NewPodRequest),
    ListPods(InfraQuery),
    UpdatePod(InfraUpdate),
    DeletePod {
        id: String,
    },
    AddCluster(NewClusterRequest),
    ListClusters(InfraQuery),
    DeleteCluster {
        id: String,
    },
    AddHost(NewHostRequest),
    ListHosts(InfraQuery),
    /// The hypervisor types the loaded drivers serve.
    ListHypervisors {
        zone_id: Option<String>,
    },
    UpdateHost(InfraUpdate),
    DeleteHost {
        id: String,
        forced: bool,
    },
}

pub(super) fn parse(cmd: &'static Command, p: &Params) -> Result<Option<InfraRequest>, ApiError> {
    Ok(Some(match cmd.name {
        "createZone" => InfraRequest::CreateZone(NewZoneRequest {
            name: must(p, cmd, "name")?,
            network_type: must(p, cmd, "networktype")?,
            dns1: must(p, cmd, "dns1")?,
            internal_dns1: must(p, cmd, "internaldns1")?,
            dns2: s(p, "dns2"),
            internal_dns2: s(p, "internaldns2"),
            guest_cidr: s(p, "guestcidraddress"),
            description: s(p, "description"),
            local_storage_enabled: p.bool("localstorageenabled")?.unwrap_or(false),
            security_groups_enabled: p.bool("securitygroupenabled")?.unwrap_or(false),
            allocation_state: s(p, "allocationstate"),
            is_edge: p.bool("isedge")?.unwrap_or(false),
        }),
        "listZones" => InfraRequest::ListZones(infra_query(p)?),
        "updateZone" => InfraRequest::UpdateZone(updates(
            p,
            cmd,
            &[
                "name",
                "dns1",
                "dns2",
                "internaldns1",
                "internaldns2",
                "guestcidraddress",
                "description",
                "allocationstate",
            ],
        )?),
        "deleteZone" => InfraRequest::DeleteZone { id: must_uuid(p, cmd, "id")? },
        "createPod" => InfraRequest::CreatePod(NewPodRequest {
            name: must(p, cmd, "name")?,
            zone_id: must_uuid(p, cmd, "zoneid")?,
            gateway: s(p, "gateway"),
            netmask: s(p, "netmask"),
            start_ip: s(p, "startip"),
            end_ip: s(p, "endip"),
            allocation_state: s(p, "allocationstate"),
        }),
        "listPods" => InfraRequest::ListPods(infra_query(p)?),
        "updatePod" => InfraRequest::UpdatePod(updates(
            p,
            cmd,
            &["name", "gateway", "netmask", "startip", "endip", "allocationstate"],
        )?),
        "deletePod" => InfraRequest::DeletePod { id: must_uuid(p, cmd, "id")? },
        "addCluster" => InfraRequest::AddCluster(NewClusterRequest {
            name: must(p, cmd, "clustername")?,
            cluster_type: must(p, cmd, "clustertype")?,
            hypervisor: must(p, cmd, "hypervisor")?,
            pod_id: must_uuid(p, cmd, "podid")?,
            zone_id: must_uuid(p, cmd, "zoneid")?,
            allocation_state: s(p, "allocationstate"),
            accel: s(p, "accel"),
        }),
        "listClusters" => InfraRequest::ListClusters(infra_query(p)?),
        "deleteCluster" => InfraRequest::DeleteCluster { id: must_uuid(p, cmd, "id")? },
        "addHost" => InfraRequest::AddHost(NewHostRequest {
            hypervisor: must(p, cmd, "hypervisor")?,
            pod_id: must_uuid(p, cmd, "podid")?,
            zone_id: must_uuid(p, cmd, "zoneid")?,
            url: must(p, cmd, "url")?,
            cluster_id: uuid(p, "clusterid")?,
            cluster_name: s(p, "clustername"),
            host_tags: s(p, "hosttags"),
            details: details(p)?,
        }),
        "listHosts" => InfraRequest::ListHosts(infra_query(p)?),
        "listHypervisors" => InfraRequest::ListHypervisors { zone_id: uuid(p, "zoneid")? },
        "updateHost" => InfraRequest::UpdateHost(updates(p, cmd, &["name", "allocationstate", "hosttags"])?),
        "deleteHost" => {
            InfraRequest::DeleteHost { id: must_uuid(p, cmd, "id")?, forced: p.bool("forced")?.unwrap_or(false) }
        }
        _ => return Ok(None),
    }))
}
