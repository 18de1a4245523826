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

pub(super) fn parse(cmd: &'static Command, p: &Params) -> Result<Option<Request>, ApiError> {
    Ok(Some(match cmd.name {
        "createZone" => Request::CreateZone(NewZoneRequest {
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
        "listZones" => Request::ListZones(infra_query(p)?),
        "updateZone" => Request::UpdateZone(updates(
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
        "deleteZone" => Request::DeleteZone { id: must_uuid(p, cmd, "id")? },
        "createPod" => Request::CreatePod(NewPodRequest {
            name: must(p, cmd, "name")?,
            zone_id: must_uuid(p, cmd, "zoneid")?,
            gateway: s(p, "gateway"),
            netmask: s(p, "netmask"),
            start_ip: s(p, "startip"),
            end_ip: s(p, "endip"),
            allocation_state: s(p, "allocationstate"),
        }),
        "listPods" => Request::ListPods(infra_query(p)?),
        "updatePod" => {
            Request::UpdatePod(updates(p, cmd, &["name", "gateway", "netmask", "startip", "endip", "allocationstate"])?)
        }
        "deletePod" => Request::DeletePod { id: must_uuid(p, cmd, "id")? },
        "addCluster" => Request::AddCluster(NewClusterRequest {
            name: must(p, cmd, "clustername")?,
            cluster_type: must(p, cmd, "clustertype")?,
            hypervisor: must(p, cmd, "hypervisor")?,
            pod_id: must_uuid(p, cmd, "podid")?,
            zone_id: must_uuid(p, cmd, "zoneid")?,
            allocation_state: s(p, "allocationstate"),
            accel: s(p, "accel"),
        }),
        "listClusters" => Request::ListClusters(infra_query(p)?),
        "deleteCluster" => Request::DeleteCluster { id: must_uuid(p, cmd, "id")? },
        "addHost" => Request::AddHost(NewHostRequest {
            hypervisor: must(p, cmd, "hypervisor")?,
            pod_id: must_uuid(p, cmd, "podid")?,
            zone_id: must_uuid(p, cmd, "zoneid")?,
            url: must(p, cmd, "url")?,
            cluster_id: uuid(p, "clusterid")?,
            cluster_name: s(p, "clustername"),
            host_tags: s(p, "hosttags"),
            details: details(p)?,
        }),
        "listHosts" => Request::ListHosts(infra_query(p)?),
        "listHypervisors" => Request::ListHypervisors { zone_id: uuid(p, "zoneid")? },
        "updateHost" => Request::UpdateHost(updates(p, cmd, &["name", "allocationstate", "hosttags"])?),
        "deleteHost" => {
            Request::DeleteHost { id: must_uuid(p, cmd, "id")?, forced: p.bool("forced")?.unwrap_or(false) }
        }
        _ => return Ok(None),
    }))
}
