//! Typed requests: what a validated parameter set means, one variant per command.
//! The HTTP layer only builds these; the orchestrator executes them.

mod instance;
mod network;
mod plugins;

pub use instance::{AddressQuery, DeployRequest, InstanceQuery, InstanceRequest};
pub use network::*;
pub use plugins::PluginRequest;

use std::collections::BTreeMap;

use super::commands::Command;
use super::error::ApiError;
use super::params::Params;

/// Where a list command looks and which page it wants.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub keyword: Option<String>,
    pub page: Option<(u32, u32)>,
    pub domain_id: Option<String>,
    pub account: Option<String>,
    pub is_recursive: bool,
    pub list_all: bool,
}

#[derive(Debug, Clone)]
pub struct NewVolumeRequest {
    pub name: Option<String>,
    pub disk_offering_id: Option<String>,
    /// GB, for customized offerings.
    pub size_gb: Option<i64>,
    pub snapshot_id: Option<String>,
    /// Make the volume a copy-on-write overlay of this template (wasmstack).
    pub template_id: Option<String>,
    pub zone_id: Option<String>,
    pub account: Option<String>,
    pub domain_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct VolumeQuery {
    pub id: Option<String>,
    pub name: Option<String>,
    pub volume_type: Option<String>,
    pub state: Option<String>,
    pub zone_id: Option<String>,
    pub storage_id: Option<String>,
    pub disk_offering_id: Option<String>,
    pub vm_id: Option<String>,
    pub listing: Listing,
}

#[derive(Debug, Clone)]
pub struct SnapshotQuery {
    pub id: Option<String>,
    pub name: Option<String>,
    pub volume_id: Option<String>,
    pub zone_id: Option<String>,
    pub snapshot_type: Option<String>,
    pub interval_type: Option<String>,
    pub location_type: Option<String>,
    pub listing: Listing,
}

/// Picks an account by UUID, or by name within a domain.
#[derive(Debug, Clone)]
pub enum AccountRef {
    Id(String),
    Named { name: String, domain_id: Option<String> },
}

/// Filters shared by the infrastructure listings.
#[derive(Debug, Clone, Default)]
pub struct InfraQuery {
    pub id: Option<String>,
    pub name: Option<String>,
    pub zone_id: Option<String>,
    pub pod_id: Option<String>,
    pub cluster_id: Option<String>,
    pub hypervisor: Option<String>,
    pub allocation_state: Option<String>,
    pub state: Option<String>,
    pub keyword: Option<String>,
    pub page: Option<(u32, u32)>,
}

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

#[derive(Debug, Clone)]
pub struct NewServiceOfferingRequest {
    pub name: String,
    pub display_text: Option<String>,
    pub cpu_number: Option<i64>,
    pub cpu_speed: Option<i64>,
    pub memory: Option<i64>,
    pub storage_type: Option<String>,
    pub offer_ha: bool,
    pub limit_cpu_use: bool,
    pub host_tags: Option<String>,
    pub tags: Option<String>,
    pub root_disk_gb: Option<i64>,
    pub customized: bool,
}

#[derive(Debug, Clone)]
pub struct NewDiskOfferingRequest {
    pub name: String,
    pub display_text: Option<String>,
    pub disk_size_gb: Option<i64>,
    pub customized: bool,
    pub storage_type: Option<String>,
    pub tags: Option<String>,
    pub provisioning_type: Option<String>,
}

/// Filters of the offering and OS type listings.
#[derive(Debug, Clone, Default)]
pub struct OfferingQuery {
    pub id: Option<String>,
    pub name: Option<String>,
    pub keyword: Option<String>,
    pub page: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
pub struct NewPoolRequest {
    pub name: String,
    pub url: String,
    pub zone_id: String,
    pub pod_id: Option<String>,
    pub cluster_id: Option<String>,
    pub scope: Option<String>,
    pub hypervisor: Option<String>,
    pub tags: Option<String>,
    /// The storage driver to use, by name; none: chosen by the URL's scheme.
    pub provider: Option<String>,
    /// Settings for the storage driver, checked against its config-schema.
    pub details: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct NewStoreRequest {
    /// Whether the reply says `secondarystorage` (addSecondaryStorage) or `imagestore`.
    pub legacy: bool,
    pub provider: String,
    pub url: Option<String>,
    pub name: Option<String>,
    pub zone_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewTemplateRequest {
    pub iso: bool,
    pub name: String,
    pub url: String,
    pub display_text: Option<String>,
    /// Zone UUIDs, or `["-1"]` for every zone with an image store.
    pub zones: Vec<String>,
    pub os_type_id: Option<String>,
    pub checksum: Option<String>,
    pub format: Option<String>,
    pub hypervisor: Option<String>,
    pub is_public: Option<bool>,
    pub is_featured: bool,
    pub is_extractable: bool,
    pub password_enabled: bool,
    pub bootable: bool,
}

/// createTemplate: a template from a volume or one of its snapshots.
#[derive(Debug, Clone)]
pub struct TemplateFromVolume {
    pub name: String,
    pub display_text: Option<String>,
    pub os_type_id: Option<String>,
    pub snapshot_id: Option<String>,
    pub volume_id: Option<String>,
    pub is_public: bool,
    pub is_featured: bool,
    pub password_enabled: bool,
}

#[derive(Debug, Clone)]
pub struct TemplateQuery {
    pub iso: bool,
    pub filter: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub zone_id: Option<String>,
    pub hypervisor: Option<String>,
    pub is_ready: Option<bool>,
    pub listing: Listing,
}

#[derive(Debug, Clone)]
pub enum Request {
    RegisterTemplate(NewTemplateRequest),
    CreateTemplate(TemplateFromVolume),
    ListTemplates(TemplateQuery),
    DeleteTemplate {
        iso: bool,
        id: String,
        zone_id: Option<String>,
    },
    CreateStoragePool(NewPoolRequest),
    ListStoragePools {
        query: InfraQuery,
        scope: Option<String>,
    },
    DeleteStoragePool {
        id: String,
    },
    AddImageStore(NewStoreRequest),
    ListImageStores(InfraQuery),
    DeleteImageStore {
        id: String,
    },
    CreateServiceOffering(NewServiceOfferingRequest),
    ListServiceOfferings(OfferingQuery),
    DeleteServiceOffering {
        id: String,
    },
    CreateDiskOffering(NewDiskOfferingRequest),
    ListDiskOfferings(OfferingQuery),
    DeleteDiskOffering {
        id: String,
    },
    ListOsTypes(OfferingQuery),
    CreateZone(NewZoneRequest),
    ListZones(InfraQuery),
    UpdateZone(InfraUpdate),
    DeleteZone {
        id: String,
    },
    /// A networking command (see `request::network`).
    Network(NetworkRequest),
    /// A virtual machine command (see `request::instance`).
    Instance(InstanceRequest),
    /// A plugin management command (see `request::plugins`).
    Plugin(PluginRequest),
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
    UpdateHost(InfraUpdate),
    DeleteHost {
        id: String,
        forced: bool,
    },
    ListApis {
        name: Option<String>,
    },
    ListCapabilities,
    CreateDomain {
        name: String,
        parent: Option<String>,
        network_domain: Option<String>,
    },
    ListDomains {
        id: Option<String>,
        name: Option<String>,
        level: Option<i64>,
        listing: Listing,
    },
    ListRoles {
        id: Option<String>,
        name: Option<String>,
        role_type: Option<String>,
        listing: Listing,
    },
    CreateAccount(NewAccount),
    ListAccounts {
        id: Option<String>,
        name: Option<String>,
        account_type: Option<i64>,
        state: Option<String>,
        listing: Listing,
    },
    UpdateAccount {
        account: AccountRef,
        new_name: Option<String>,
        network_domain: Option<String>,
    },
    DisableAccount {
        account: AccountRef,
        lock: bool,
    },
    EnableAccount {
        account: AccountRef,
    },
    DeleteAccount {
        id: String,
    },
    CreateUser(NewUserRequest),
    ListUsers {
        id: Option<String>,
        username: Option<String>,
        state: Option<String>,
        listing: Listing,
    },
    UpdateUser(UserUpdate),
    DisableUser {
        id: String,
    },
    EnableUser {
        id: String,
    },
    DeleteUser {
        id: String,
    },
    RegisterUserKeys {
        id: String,
    },
    GetUserKeys {
        id: String,
    },
    ListEvents {
        id: Option<String>,
        kind: Option<String>,
        level: Option<String>,
        start: Option<i64>,
        end: Option<i64>,
        resource_id: Option<String>,
        resource_type: Option<String>,
        listing: Listing,
    },
    QueryAsyncJobResult {
        job_id: String,
    },
    ListAsyncJobs {
        start: Option<i64>,
        listing: Listing,
    },
    CreateVolume(NewVolumeRequest),
    ListVolumes(VolumeQuery),
    ResizeVolume {
        id: String,
        size_gb: Option<i64>,
        disk_offering_id: Option<String>,
        shrink_ok: bool,
    },
    DeleteVolume {
        id: String,
    },
    CreateSnapshot {
        volume_id: String,
        name: Option<String>,
        /// PRIMARY (default) or SECONDARY: also copy the snapshot to the zone's image store.
        location_type: Option<String>,
    },
    ListSnapshots(SnapshotQuery),
    RevertSnapshot {
        id: String,
    },
    DeleteSnapshot {
        id: String,
    },
    CreateConsoleEndpoint {
        vm_id: String,
    },
    ListPlugins {
        name: Option<String>,
        page: Option<(u32, u32)>,
    },
    ListCapacity {
        query: InfraQuery,
        kind: Option<i32>,
        sort_by: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub password: String,
    pub email: String,
    pub firstname: String,
    pub lastname: String,
    pub account_type: Option<i64>,
    pub role_id: Option<String>,
    pub account: Option<String>,
    pub domain_id: Option<String>,
    pub timezone: Option<String>,
    pub network_domain: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewUserRequest {
    pub account: String,
    pub username: String,
    pub password: String,
    pub email: String,
    pub firstname: String,
    pub lastname: String,
    pub domain_id: Option<String>,
    pub timezone: Option<String>,
}

#[derive(Debug, Clone)]
pub struct UserUpdate {
    pub id: String,
    pub username: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub email: Option<String>,
    pub timezone: Option<String>,
    pub password: Option<String>,
    pub current_password: Option<String>,
}

fn s(params: &Params, name: &str) -> Option<String> {
    params.get(name).map(str::to_owned)
}

/// A `details` map as key/value pairs. Both of CloudStack's forms are read:
/// `details[0].key=k&details[0].value=v`, and `details[0].k=v` (a field per key).
fn details(params: &Params) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for entry in params.map("details")?.into_iter().flat_map(|m| m.values()) {
        let field = |f: &str| entry.iter().find(|(k, _)| k.eq_ignore_ascii_case(f)).map(|(_, v)| v.clone());
        match (field("key"), field("value")) {
            (Some(k), Some(v)) if entry.len() == 2 => {
                out.insert(k, v);
            }
            _ => out.extend(entry.iter().map(|(k, v)| (k.clone(), v.clone()))),
        }
    }
    Ok(out)
}

fn must(params: &Params, cmd: &Command, name: &str) -> Result<String, ApiError> {
    s(params, name).ok_or_else(|| ApiError::missing_param(&cmd.name.to_ascii_lowercase(), name))
}

fn uuid(params: &Params, name: &str) -> Result<Option<String>, ApiError> {
    params.uuid(name)
}

fn must_uuid(params: &Params, cmd: &Command, name: &str) -> Result<String, ApiError> {
    uuid(params, name)?.ok_or_else(|| ApiError::missing_param(&cmd.name.to_ascii_lowercase(), name))
}

fn listing(params: &Params) -> Result<Listing, ApiError> {
    Ok(Listing {
        keyword: s(params, "keyword").filter(|k| !k.is_empty()),
        page: params.page()?,
        domain_id: uuid(params, "domainid")?,
        account: s(params, "account"),
        is_recursive: params.bool("isrecursive")?.unwrap_or(false),
        list_all: params.bool("listall")?.unwrap_or(false),
    })
}

/// A date given as yyyy-MM-dd or yyyy-MM-dd HH:mm:ss (UTC), in Unix milliseconds.
fn date(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    Ok(params.date_time(name)?.map(|d| d.and_utc().timestamp_millis()))
}

fn infra_query(params: &Params) -> Result<InfraQuery, ApiError> {
    Ok(InfraQuery {
        id: uuid(params, "id")?,
        name: s(params, "name"),
        zone_id: uuid(params, "zoneid")?,
        pod_id: uuid(params, "podid")?,
        cluster_id: uuid(params, "clusterid")?,
        hypervisor: s(params, "hypervisor"),
        allocation_state: s(params, "allocationstate"),
        state: s(params, "state"),
        keyword: s(params, "keyword").filter(|k| !k.is_empty()),
        page: params.page()?,
    })
}

/// The given subset of `names`, in order, as (name, value) pairs.
fn updates(params: &Params, cmd: &Command, names: &[&'static str]) -> Result<InfraUpdate, ApiError> {
    let fields = names.iter().filter_map(|n| params.get(n).map(|v| (*n, v.to_owned()))).collect();
    Ok(InfraUpdate { id: must_uuid(params, cmd, "id")?, fields })
}

fn account_ref(params: &Params, cmd: &Command) -> Result<AccountRef, ApiError> {
    if let Some(id) = uuid(params, "id")? {
        return Ok(AccountRef::Id(id));
    }
    match s(params, "account") {
        Some(name) => Ok(AccountRef::Named { name, domain_id: uuid(params, "domainid")? }),
        None => Err(ApiError::missing_param(&cmd.name.to_ascii_lowercase(), "id")),
    }
}

impl Request {
    /// Builds the typed request of `cmd` from parameters `cmd.validate` accepted.
    pub fn parse(cmd: &'static Command, params: &Params) -> Result<Request, ApiError> {
        let p = params;
        let offering_query = |name_param: &str| -> Result<OfferingQuery, ApiError> {
            Ok(OfferingQuery {
                id: uuid(p, "id")?,
                name: s(p, name_param),
                keyword: s(p, "keyword").filter(|k| !k.is_empty()),
                page: p.page()?,
            })
        };
        let register = |iso: bool| -> Result<NewTemplateRequest, ApiError> {
            let mut zones = p.list("zoneids")?.unwrap_or_default();
            if let Some(z) = s(p, "zoneid") {
                zones.push(z);
            }
            Ok(NewTemplateRequest {
                iso,
                name: must(p, cmd, "name")?,
                url: must(p, cmd, "url")?,
                display_text: s(p, "displaytext"),
                zones,
                os_type_id: uuid(p, "ostypeid")?,
                checksum: s(p, "checksum"),
                format: s(p, "format"),
                hypervisor: s(p, "hypervisor"),
                is_public: p.bool("ispublic")?,
                is_featured: p.bool("isfeatured")?.unwrap_or(false),
                is_extractable: p.bool("isextractable")?.unwrap_or(false),
                password_enabled: p.bool("passwordenabled")?.unwrap_or(false),
                bootable: p.bool("bootable")?.unwrap_or(true),
            })
        };
        let template_query = |iso: bool, filter: String| -> Result<TemplateQuery, ApiError> {
            Ok(TemplateQuery {
                iso,
                filter,
                id: uuid(p, "id")?,
                name: s(p, "name"),
                zone_id: uuid(p, "zoneid")?,
                hypervisor: s(p, "hypervisor"),
                is_ready: p.bool("isready")?,
                listing: listing(p)?,
            })
        };
        Ok(match cmd.name {
            "getUploadParamsForPlugin" | "updatePlugin" | "reloadPlugins" => Request::Plugin(plugins::parse(cmd, p)?),
            "createTemplate" => Request::CreateTemplate(TemplateFromVolume {
                name: must(p, cmd, "name")?,
                display_text: s(p, "displaytext"),
                os_type_id: uuid(p, "ostypeid")?,
                snapshot_id: uuid(p, "snapshotid")?,
                volume_id: uuid(p, "volumeid")?,
                is_public: p.bool("ispublic")?.unwrap_or(false),
                is_featured: p.bool("isfeatured")?.unwrap_or(false),
                password_enabled: p.bool("passwordenabled")?.unwrap_or(false),
            }),
            "registerTemplate" => Request::RegisterTemplate(register(false)?),
            "registerIso" => Request::RegisterTemplate(register(true)?),
            "listTemplates" => Request::ListTemplates(template_query(false, must(p, cmd, "templatefilter")?)?),
            "listIsos" => {
                Request::ListTemplates(template_query(true, s(p, "isofilter").unwrap_or_else(|| "executable".into()))?)
            }
            "deleteTemplate" => {
                Request::DeleteTemplate { iso: false, id: must_uuid(p, cmd, "id")?, zone_id: uuid(p, "zoneid")? }
            }
            "deleteIso" => {
                Request::DeleteTemplate { iso: true, id: must_uuid(p, cmd, "id")?, zone_id: uuid(p, "zoneid")? }
            }
            "createStoragePool" => Request::CreateStoragePool(NewPoolRequest {
                name: must(p, cmd, "name")?,
                url: must(p, cmd, "url")?,
                zone_id: must_uuid(p, cmd, "zoneid")?,
                pod_id: uuid(p, "podid")?,
                cluster_id: uuid(p, "clusterid")?,
                scope: s(p, "scope"),
                hypervisor: s(p, "hypervisor"),
                tags: s(p, "tags"),
                provider: s(p, "provider"),
                details: details(p)?,
            }),
            "listStoragePools" => Request::ListStoragePools { query: infra_query(p)?, scope: s(p, "scope") },
            "deleteStoragePool" => Request::DeleteStoragePool { id: must_uuid(p, cmd, "id")? },
            "addImageStore" => Request::AddImageStore(NewStoreRequest {
                legacy: false,
                provider: must(p, cmd, "provider")?,
                url: s(p, "url"),
                name: s(p, "name"),
                zone_id: uuid(p, "zoneid")?,
            }),
            "addSecondaryStorage" => Request::AddImageStore(NewStoreRequest {
                legacy: true,
                provider: "NFS".into(),
                url: Some(must(p, cmd, "url")?),
                name: None,
                zone_id: uuid(p, "zoneid")?,
            }),
            "listImageStores" => Request::ListImageStores(infra_query(p)?),
            "deleteImageStore" => Request::DeleteImageStore { id: must_uuid(p, cmd, "id")? },
            "createServiceOffering" => Request::CreateServiceOffering(NewServiceOfferingRequest {
                name: must(p, cmd, "name")?,
                display_text: s(p, "displaytext"),
                cpu_number: p.long("cpunumber")?,
                cpu_speed: p.long("cpuspeed")?,
                memory: p.long("memory")?,
                storage_type: s(p, "storagetype"),
                offer_ha: p.bool("offerha")?.unwrap_or(false),
                limit_cpu_use: p.bool("limitcpuuse")?.unwrap_or(false),
                host_tags: s(p, "hosttags"),
                tags: s(p, "tags"),
                root_disk_gb: p.long("rootdisksize")?,
                customized: p.bool("customized")?.unwrap_or(false),
            }),
            "listServiceOfferings" => Request::ListServiceOfferings(offering_query("name")?),
            "deleteServiceOffering" => Request::DeleteServiceOffering { id: must_uuid(p, cmd, "id")? },
            "createDiskOffering" => Request::CreateDiskOffering(NewDiskOfferingRequest {
                name: must(p, cmd, "name")?,
                display_text: s(p, "displaytext"),
                disk_size_gb: p.long("disksize")?,
                customized: p.bool("customized")?.unwrap_or(false),
                storage_type: s(p, "storagetype"),
                tags: s(p, "tags"),
                provisioning_type: s(p, "provisioningtype"),
            }),
            "listDiskOfferings" => Request::ListDiskOfferings(offering_query("name")?),
            "deleteDiskOffering" => Request::DeleteDiskOffering { id: must_uuid(p, cmd, "id")? },
            "listOsTypes" => Request::ListOsTypes(offering_query("description")?),
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
            "updatePod" => Request::UpdatePod(updates(
                p,
                cmd,
                &["name", "gateway", "netmask", "startip", "endip", "allocationstate"],
            )?),
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
            "updateHost" => Request::UpdateHost(updates(p, cmd, &["name", "allocationstate", "hosttags"])?),
            "deleteHost" => {
                Request::DeleteHost { id: must_uuid(p, cmd, "id")?, forced: p.bool("forced")?.unwrap_or(false) }
            }
            "listApis" => Request::ListApis { name: s(p, "name") },
            "listCapabilities" => Request::ListCapabilities,
            "createDomain" => Request::CreateDomain {
                name: must(p, cmd, "name")?,
                parent: uuid(p, "parentdomainid")?,
                network_domain: s(p, "networkdomain"),
            },
            "listDomains" => Request::ListDomains {
                id: uuid(p, "id")?,
                name: s(p, "name"),
                level: p.long("level")?,
                listing: listing(p)?,
            },
            "listRoles" => Request::ListRoles {
                id: uuid(p, "id")?,
                name: s(p, "name"),
                role_type: s(p, "type"),
                listing: listing(p)?,
            },
            "createAccount" => Request::CreateAccount(NewAccount {
                username: must(p, cmd, "username")?,
                password: must(p, cmd, "password")?,
                email: must(p, cmd, "email")?,
                firstname: must(p, cmd, "firstname")?,
                lastname: must(p, cmd, "lastname")?,
                account_type: p.long("accounttype")?,
                role_id: uuid(p, "roleid")?,
                account: s(p, "account"),
                domain_id: uuid(p, "domainid")?,
                timezone: s(p, "timezone"),
                network_domain: s(p, "networkdomain"),
            }),
            "listAccounts" => Request::ListAccounts {
                id: uuid(p, "id")?,
                name: s(p, "name"),
                account_type: p.long("accounttype")?,
                state: s(p, "state"),
                listing: listing(p)?,
            },
            "updateAccount" => Request::UpdateAccount {
                account: account_ref(p, cmd)?,
                new_name: s(p, "newname"),
                network_domain: s(p, "networkdomain"),
            },
            "disableAccount" => {
                Request::DisableAccount { account: account_ref(p, cmd)?, lock: p.bool("lock")?.unwrap_or(false) }
            }
            "enableAccount" => Request::EnableAccount { account: account_ref(p, cmd)? },
            "deleteAccount" => Request::DeleteAccount { id: must_uuid(p, cmd, "id")? },
            "createUser" => Request::CreateUser(NewUserRequest {
                account: must(p, cmd, "account")?,
                username: must(p, cmd, "username")?,
                password: must(p, cmd, "password")?,
                email: must(p, cmd, "email")?,
                firstname: must(p, cmd, "firstname")?,
                lastname: must(p, cmd, "lastname")?,
                domain_id: uuid(p, "domainid")?,
                timezone: s(p, "timezone"),
            }),
            "listUsers" => Request::ListUsers {
                id: uuid(p, "id")?,
                username: s(p, "username"),
                state: s(p, "state"),
                listing: listing(p)?,
            },
            "updateUser" => Request::UpdateUser(UserUpdate {
                id: must_uuid(p, cmd, "id")?,
                username: s(p, "username"),
                firstname: s(p, "firstname"),
                lastname: s(p, "lastname"),
                email: s(p, "email"),
                timezone: s(p, "timezone"),
                password: s(p, "password"),
                current_password: s(p, "currentpassword"),
            }),
            "disableUser" => Request::DisableUser { id: must_uuid(p, cmd, "id")? },
            "enableUser" => Request::EnableUser { id: must_uuid(p, cmd, "id")? },
            "deleteUser" => Request::DeleteUser { id: must_uuid(p, cmd, "id")? },
            "registerUserKeys" => Request::RegisterUserKeys { id: must_uuid(p, cmd, "id")? },
            "getUserKeys" => Request::GetUserKeys { id: must_uuid(p, cmd, "id")? },
            "listEvents" => Request::ListEvents {
                id: uuid(p, "id")?,
                kind: s(p, "type"),
                level: s(p, "level"),
                start: date(p, "startdate")?,
                end: date(p, "enddate")?,
                resource_id: s(p, "resourceid"),
                resource_type: s(p, "resourcetype"),
                listing: listing(p)?,
            },
            "queryAsyncJobResult" => Request::QueryAsyncJobResult { job_id: must_uuid(p, cmd, "jobid")? },
            "listAsyncJobs" => Request::ListAsyncJobs { start: date(p, "startdate")?, listing: listing(p)? },
            "createVolume" => Request::CreateVolume(NewVolumeRequest {
                name: s(p, "name"),
                disk_offering_id: uuid(p, "diskofferingid")?,
                size_gb: p.long("size")?,
                snapshot_id: uuid(p, "snapshotid")?,
                template_id: uuid(p, "templateid")?,
                zone_id: uuid(p, "zoneid")?,
                account: s(p, "account"),
                domain_id: uuid(p, "domainid")?,
            }),
            "listVolumes" => Request::ListVolumes(VolumeQuery {
                id: uuid(p, "id")?,
                name: s(p, "name"),
                volume_type: s(p, "type"),
                state: s(p, "state"),
                zone_id: uuid(p, "zoneid")?,
                storage_id: uuid(p, "storageid")?,
                disk_offering_id: uuid(p, "diskofferingid")?,
                vm_id: uuid(p, "virtualmachineid")?,
                listing: listing(p)?,
            }),
            "resizeVolume" => Request::ResizeVolume {
                id: must_uuid(p, cmd, "id")?,
                size_gb: p.long("size")?,
                disk_offering_id: uuid(p, "diskofferingid")?,
                shrink_ok: p.bool("shrinkok")?.unwrap_or(false),
            },
            "deleteVolume" => Request::DeleteVolume { id: must_uuid(p, cmd, "id")? },
            "createSnapshot" => Request::CreateSnapshot {
                volume_id: must_uuid(p, cmd, "volumeid")?,
                name: s(p, "name"),
                location_type: s(p, "locationtype"),
            },
            "listSnapshots" => Request::ListSnapshots(SnapshotQuery {
                id: uuid(p, "id")?,
                name: s(p, "name"),
                volume_id: uuid(p, "volumeid")?,
                zone_id: uuid(p, "zoneid")?,
                snapshot_type: s(p, "snapshottype"),
                interval_type: s(p, "intervaltype"),
                location_type: s(p, "locationtype"),
                listing: listing(p)?,
            }),
            "revertSnapshot" => Request::RevertSnapshot { id: must_uuid(p, cmd, "id")? },
            "deleteSnapshot" => Request::DeleteSnapshot { id: must_uuid(p, cmd, "id")? },
            "createConsoleEndpoint" => Request::CreateConsoleEndpoint { vm_id: must_uuid(p, cmd, "virtualmachineid")? },
            "listPlugins" => Request::ListPlugins { name: s(p, "name"), page: listing(p)?.page },
            "listCapacity" => {
                Request::ListCapacity { query: infra_query(p)?, kind: p.int("type")?, sort_by: s(p, "sortby") }
            }
            other => match (network::parse(cmd, p)?, instance::parse(cmd, p)?) {
                (Some(r), _) => Request::Network(r),
                (None, Some(r)) => Request::Instance(r),
                (None, None) => return Err(ApiError::unsupported(format!("The command {other} has no handler"))),
            },
        })
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;
    use crate::api::commands::{self, ParamType};
    use crate::api::error::ErrorCode;

    /// A value of the right type for a required parameter.
    fn sample(ty: ParamType) -> &'static str {
        match ty {
            ParamType::Boolean => "true",
            ParamType::Date => "2026-01-02",
            ParamType::Integer | ParamType::Long => "1",
            ParamType::Uuid => "9b1c4a52-5d1e-4a8e-9a3c-2f7f4a1b2c3d",
            ParamType::TzDate => "2026-01-02T03:04:05+0000",
            ParamType::List | ParamType::Map | ParamType::String => "x",
        }
    }

    /// Every command in the table reaches a typed request: none falls through to "no
    /// handler". A value may still be refused (431); login and logout are answered by
    /// the HTTP layer itself.
    #[test]
    fn every_command_in_the_table_parses() {
        for cmd in commands::all().filter(|c| !matches!(c.name, "login" | "logout")) {
            let mut pairs = vec![("command".to_owned(), cmd.name.to_owned())];
            for p in cmd.params.iter().filter(|p| p.required) {
                let (key, value) = match p.ty {
                    ParamType::Map => (format!("{}[0].key", p.name), sample(p.ty)),
                    ty => (p.name.to_owned(), sample(ty)),
                };
                pairs.push((key, value.to_owned()));
            }
            let params = Params::from_pairs(pairs);
            cmd.validate(&params)
                .unwrap_or_else(|e| panic!("{}: the sample values fail validation: {}", cmd.name, e.text));
            if let Err(e) = Request::parse(cmd, &params) {
                assert_ne!(e.code, ErrorCode::UnsupportedAction, "{}: {}", cmd.name, e.text);
            }
        }
    }
}
