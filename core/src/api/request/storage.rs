//! Typed requests of primary storage pools, image stores, volumes and snapshots.

use super::*;

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

/// A storage command: pools, image stores, volumes, snapshots, parsed.
#[derive(Debug, Clone)]
pub enum StorageRequest {
    CreateStoragePool(NewPoolRequest),
    ListStoragePools {
        query: InfraQuery,
        scope: Option<String>,
    },
    /// updateStoragePool: `tags` `Some("")` removes them all.
    UpdateStoragePool {
        id: String,
        name: Option<String>,
        tags: Option<String>,
    },
    DeleteStoragePool {
        id: String,
    },
    AddImageStore(NewStoreRequest),
    ListImageStores(InfraQuery),
    DeleteImageStore {
        id: String,
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
}

pub(super) fn parse(cmd: &'static Command, p: &Params) -> Result<Option<StorageRequest>, ApiError> {
    Ok(Some(match cmd.name {
        "createStoragePool" => StorageRequest::CreateStoragePool(NewPoolRequest {
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
        "listStoragePools" => StorageRequest::ListStoragePools { query: infra_query(p)?, scope: s(p, "scope") },
        "updateStoragePool" => StorageRequest::UpdateStoragePool {
            id: must_uuid(p, cmd, "id")?,
            name: s(p, "name"),
            tags: p.get("tags").map(str::to_owned),
        },
        "deleteStoragePool" => StorageRequest::DeleteStoragePool { id: must_uuid(p, cmd, "id")? },
        "addImageStore" => StorageRequest::AddImageStore(NewStoreRequest {
            legacy: false,
            provider: must(p, cmd, "provider")?,
            url: s(p, "url"),
            name: s(p, "name"),
            zone_id: uuid(p, "zoneid")?,
        }),
        "addSecondaryStorage" => StorageRequest::AddImageStore(NewStoreRequest {
            legacy: true,
            provider: "NFS".into(),
            url: Some(must(p, cmd, "url")?),
            name: None,
            zone_id: uuid(p, "zoneid")?,
        }),
        "listImageStores" => StorageRequest::ListImageStores(infra_query(p)?),
        "deleteImageStore" => StorageRequest::DeleteImageStore { id: must_uuid(p, cmd, "id")? },
        "createVolume" => StorageRequest::CreateVolume(NewVolumeRequest {
            name: s(p, "name"),
            disk_offering_id: uuid(p, "diskofferingid")?,
            size_gb: p.long("size")?,
            snapshot_id: uuid(p, "snapshotid")?,
            template_id: uuid(p, "templateid")?,
            zone_id: uuid(p, "zoneid")?,
            account: s(p, "account"),
            domain_id: uuid(p, "domainid")?,
        }),
        "listVolumes" => StorageRequest::ListVolumes(VolumeQuery {
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
        "resizeVolume" => StorageRequest::ResizeVolume {
            id: must_uuid(p, cmd, "id")?,
            size_gb: p.long("size")?,
            disk_offering_id: uuid(p, "diskofferingid")?,
            shrink_ok: p.bool("shrinkok")?.unwrap_or(false),
        },
        "deleteVolume" => StorageRequest::DeleteVolume { id: must_uuid(p, cmd, "id")? },
        "createSnapshot" => StorageRequest::CreateSnapshot {
            volume_id: must_uuid(p, cmd, "volumeid")?,
            name: s(p, "name"),
            location_type: s(p, "locationtype"),
        },
        "listSnapshots" => StorageRequest::ListSnapshots(SnapshotQuery {
            id: uuid(p, "id")?,
            name: s(p, "name"),
            volume_id: uuid(p, "volumeid")?,
            zone_id: uuid(p, "zoneid")?,
            snapshot_type: s(p, "snapshottype"),
            interval_type: s(p, "intervaltype"),
            location_type: s(p, "locationtype"),
            listing: listing(p)?,
        }),
        "revertSnapshot" => StorageRequest::RevertSnapshot { id: must_uuid(p, cmd, "id")? },
        "deleteSnapshot" => StorageRequest::DeleteSnapshot { id: must_uuid(p, cmd, "id")? },
        _ => return Ok(None),
    }))
}
