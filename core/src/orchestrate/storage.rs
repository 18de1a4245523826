//! Primary storage pools and image (secondary) stores, each attached through its
//! storage driver, which also reports their capacity.

use std::sync::Arc;

use serde_json::json;

use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{InfraQuery, NewPoolRequest, NewStoreRequest, StorageRequest};
use crate::auth::Caller;
use crate::cloud::infra;
use crate::cloud::storage::{self, PoolRow, StorageFilter, StoreRow};
use crate::db::format_time;
use crate::plugins::{DriverKind, LoadedPlugin, Serves, Usage, settings};

use super::{Orchestrator, list, no_such, object, views};

/// The parts of a storage URL: the CloudStack pool type, address and path.
#[derive(Debug)]
struct Target {
    scheme: String,
    pool_type: &'static str,
    address: String,
    path: String,
}

/// A URL form the core checks before any driver sees the URL: CloudStack's pool type for
/// the scheme, whether the URL names a server, and the form errors show. A data format,
/// not a driver choice: the driver is the one that declares it serves the scheme.
struct UrlForm {
    scheme: &'static str,
    pool_type: &'static str,
    remote: bool,
    form: &'static str,
}

const URL_FORMS: &[UrlForm] = &[
    UrlForm { scheme: "nfs", pool_type: "NetworkFilesystem", remote: true, form: "nfs://server/path" },
    UrlForm { scheme: "file", pool_type: "Filesystem", remote: false, form: "file:///path" },
];

/// The form of URLs of `scheme`, for error texts.
fn form_of(scheme: &str) -> String {
    URL_FORMS
        .iter()
        .find(|f| f.scheme.eq_ignore_ascii_case(scheme))
        .map_or_else(|| format!("{scheme}://address/path"), |f| f.form.to_owned())
}

/// Splits and checks a storage URL. Schemes of a known form must have it; others take
/// scheme://address/path, as their driver reads them.
fn target(url: &str) -> Result<Target, ApiError> {
    let bad = |form: &str| ApiError::invalid_param(format!("Invalid value of parameter url: {url}; give {form}"));
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(s, r)| !s.is_empty() && !r.is_empty())
        .ok_or_else(|| bad("scheme://address/path, e.g. nfs://server/path or file:///path"))?;
    let (address, path) = match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    };
    let scheme = scheme.to_ascii_lowercase();
    let Some(form) = URL_FORMS.iter().find(|f| f.scheme == scheme) else {
        return Ok(Target { scheme, pool_type: "PreSetup", address, path });
    };
    if path.len() <= 1 || address.is_empty() == form.remote {
        return Err(bad(form.form));
    }
    let address = if form.remote { address } else { "127.0.0.1".to_owned() };
    Ok(Target { scheme, pool_type: form.pool_type, address, path })
}

/// CloudStack's default primary storage provider: the URL's scheme picks the driver.
fn named_provider(provider: Option<&str>) -> Option<&str> {
    provider.map(str::trim).filter(|p| !p.is_empty() && !p.eq_ignore_ascii_case("DefaultPrimary"))
}

/// The provider names a storage driver declares, as it spells them.
fn providers_of(p: &LoadedPlugin) -> Vec<String> {
    match &p.info.serves {
        Serves::Storage(f) => f.providers.clone(),
        _ => vec![],
    }
}

fn schemes_of(p: &LoadedPlugin) -> Vec<String> {
    match &p.info.serves {
        Serves::Storage(f) => f.schemes.clone(),
        _ => vec![],
    }
}

impl Orchestrator {
    /// Runs one storage command: pools, image stores, volumes, snapshots.
    pub(super) async fn execute_storage(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        request: StorageRequest,
    ) -> Result<Reply, ApiError> {
        use StorageRequest::*;
        match request {
            CreateStoragePool(r) => Box::pin(self.create_pool(caller, r)).await,
            ListStoragePools { query, scope } => Box::pin(self.list_pools(query, scope)).await,
            UpdateStoragePool { id, name, tags } => Box::pin(self.update_pool(caller, &id, name, tags)).await,
            DeleteStoragePool { id } => Box::pin(self.delete_pool(caller, &id)).await,
            AddImageStore(r) => Box::pin(self.add_store(caller, r)).await,
            ListImageStores(q) => Box::pin(self.list_stores(q)).await,
            DeleteImageStore { id } => Box::pin(self.delete_store(caller, &id)).await,
            CreateVolume(r) => Box::pin(self.create_volume(caller, cmd, r)).await,
            ListVolumes(q) => Box::pin(self.list_volumes(caller, q)).await,
            ResizeVolume { id, size_gb, disk_offering_id, shrink_ok } => {
                Box::pin(self.resize_volume(caller, cmd, &id, size_gb, disk_offering_id, shrink_ok)).await
            }
            DeleteVolume { id } => Box::pin(self.delete_volume(caller, &id)).await,
            CreateSnapshot { volume_id, name, location_type } => {
                Box::pin(self.create_snapshot(caller, cmd, &volume_id, name, location_type)).await
            }
            ListSnapshots(q) => Box::pin(self.list_snapshots(caller, q)).await,
            RevertSnapshot { id } => Box::pin(self.revert_snapshot(caller, cmd, &id)).await,
            DeleteSnapshot { id } => Box::pin(self.delete_snapshot(caller, cmd, &id)).await,
        }
    }

    /// What the loaded storage drivers serve: (providers, schemes), for error texts.
    fn served_storage(&self) -> (Vec<String>, Vec<String>) {
        let mut out = (Vec::new(), Vec::new());
        for p in self.plugins.list().iter().filter(|p| p.info.kind == DriverKind::Storage) {
            out.0.extend(providers_of(p));
            out.1.extend(schemes_of(p).into_iter().map(|s| format!("{s}://")));
        }
        out
    }

    /// The storage driver of a new pool: the one serving its `provider`, or without one
    /// (or with CloudStack's default), the one serving its URL's scheme.
    fn pool_driver(&self, t: &Target, provider: Option<&str>) -> Result<Arc<LoadedPlugin>, ApiError> {
        match named_provider(provider) {
            Some(p) => self.plugins.storage_for_provider(p).ok_or_else(|| {
                ApiError::invalid_param(format!(
                    "Storage provider {p} is not a loaded storage driver; see wasmstack plugins list (served: {})",
                    self.served_storage().0.join(", ")
                ))
            }),
            None => self.plugins.storage_for_scheme(&t.scheme).ok_or_else(|| {
                ApiError::invalid_param(format!(
                    "Storage URL scheme {}:// is not supported; the loaded storage drivers serve {}",
                    t.scheme,
                    self.served_storage().1.join(", ")
                ))
            }),
        }
    }

    /// Attaches a pool or store through its driver and returns its capacity.
    async fn attach(&self, driver: &str, url: &str) -> Result<Usage, ApiError> {
        let storage = self.plugins.storage(driver).map_err(|e| ApiError::unavailable(e.to_string()))?;
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || storage.attach(&url).map_err(|e| (url, e)))
            .await
            .map_err(|e| ApiError::internal(format!("attaching storage crashed: {e}")))?
            .map_err(|(url, e)| ApiError::unavailable(format!("Cannot attach storage {url}: {e}")))
    }

    pub(super) async fn create_pool(&self, caller: &Caller, r: NewPoolRequest) -> Result<Reply, ApiError> {
        let t = target(&r.url)?;
        let plugin = self.pool_driver(&t, r.provider.as_deref())?;
        let driver = plugin.info.name.clone();
        let zone = infra::zone(&self.db, &r.zone_id).await?.ok_or_else(|| no_such("zone", &r.zone_id))?;
        let scope = match (r.scope.as_deref().map(str::to_ascii_lowercase).as_deref(), &r.cluster_id) {
            (None, Some(_)) | (Some("cluster"), _) => "CLUSTER",
            (None, None) | (Some("zone"), _) => "ZONE",
            (Some(other), _) => {
                return Err(ApiError::invalid_param(format!(
                    "Invalid value of parameter scope: {other}; use cluster or zone"
                )));
            }
        };
        let (pod, cluster) = if scope == "CLUSTER" {
            let cid = r
                .cluster_id
                .as_deref()
                .ok_or_else(|| ApiError::invalid_param("A cluster-wide pool needs clusterid"))?;
            let cluster = infra::cluster(&self.db, cid).await?.ok_or_else(|| no_such("cluster", cid))?;
            if cluster.zone_id != zone.id {
                return Err(ApiError::invalid_param(format!("Cluster {} is not in zone {}", cluster.name, zone.name)));
            }
            (Some(cluster.pod_id), Some(cluster))
        } else {
            (None, None)
        };
        let hypervisor = match (&cluster, &r.hypervisor) {
            (Some(c), _) => Some(c.hypervisor.clone()),
            (None, Some(h)) => Some(h.clone()),
            (None, None) => return Err(ApiError::invalid_param("A zone-wide pool needs hypervisor")),
        };
        if r.name.trim().is_empty() {
            return Err(ApiError::invalid_param("The storage pool name cannot be empty"));
        }
        // The driver's settings travel in the URL's query string (see wit/plugin.wit).
        let url = settings::apply(&driver, &plugin.info.config_schema, &r.url, &r.details)
            .map_err(|e| ApiError::invalid_param(e.to_string()))?;
        let (existing, _) = storage::list_pools(&self.db, &StorageFilter::default(), None).await?;
        let base = |u: &str| u.split('?').next().unwrap_or_default().to_owned();
        if let Some(other) = existing.iter().find(|p| base(&p.url) == base(&url)) {
            return Err(ApiError::invalid_param(format!("Storage pool {} already uses {}", other.name, base(&url))));
        }
        let usage = self.attach(&driver, &url).await?;
        let new = storage::NewPool {
            name: r.name,
            zone_id: zone.id,
            pod_id: pod,
            cluster_id: cluster.as_ref().map(|c| c.id),
            host_id: None,
            scope: scope.into(),
            url,
            driver,
            driver_version: plugin.info.version.clone(),
            pool_type: t.pool_type.into(),
            address: t.address,
            path: t.path,
            hypervisor,
            capacity_bytes: usage.total_bytes as i64,
            used_bytes: usage.used_bytes as i64,
            tags: r.tags,
        };
        let uuid = storage::create_pool(&self.db, new).await?;
        let pool = storage::pool(&self.db, &uuid).await?.ok_or_else(|| ApiError::internal("the new pool is gone"))?;
        self.audit(
            caller,
            "STORAGE.POOL.CREATE",
            ("StoragePool", &pool.uuid, &pool.name),
            format!("Storage pool {} created", pool.name),
        )
        .await?;
        Ok(object("storagepool", pool_view(&pool)))
    }

    pub(super) async fn list_pools(&self, q: InfraQuery, scope: Option<String>) -> Result<Reply, ApiError> {
        let zone_id = self.zone_id(q.zone_id.as_deref()).await?;
        let cluster_id = self.cluster_id(q.cluster_id.as_deref()).await?;
        let f = StorageFilter {
            uuid: q.id,
            name: q.name,
            zone_id,
            cluster_id,
            scope,
            keyword: q.keyword,
            ..Default::default()
        };
        let (rows, total) = storage::list_pools(&self.db, &f, q.page).await?;
        Ok(list("storagepool", total, rows.iter().map(pool_view).collect()))
    }

    pub(super) async fn update_pool(
        &self,
        caller: &Caller,
        id: &str,
        name: Option<String>,
        tags: Option<String>,
    ) -> Result<Reply, ApiError> {
        let pool = storage::pool(&self.db, id).await?.ok_or_else(|| no_such("storage pool", id))?;
        let name = match name.map(|n| n.trim().to_owned()) {
            Some(n) if n.is_empty() => return Err(ApiError::invalid_param("The storage pool name cannot be empty")),
            other => other,
        };
        // Stored as placement reads them: trimmed, without empty items; none at all is no tags.
        let tags = tags.map(|t| {
            let list: Vec<&str> = t.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
            (!list.is_empty()).then(|| list.join(","))
        });
        storage::update_pool(&self.db, pool.id, name.as_deref(), tags).await?;
        let pool = storage::pool(&self.db, id).await?.ok_or_else(|| no_such("storage pool", id))?;
        self.audit(
            caller,
            "STORAGE.POOL.UPDATE",
            ("StoragePool", &pool.uuid, &pool.name),
            format!("Storage pool {} updated", pool.name),
        )
        .await?;
        Ok(object("storagepool", pool_view(&pool)))
    }

    pub(super) async fn delete_pool(&self, caller: &Caller, id: &str) -> Result<Reply, ApiError> {
        let pool = storage::pool(&self.db, id).await?.ok_or_else(|| no_such("storage pool", id))?;
        // Forgetting a pool would strand its volumes' files and rows.
        let volumes = infra::users_of(&self.db, "volumes", "pool_id", pool.id).await?;
        if volumes > 0 {
            return Err(ApiError::in_use(format!(
                "Storage pool {} still holds {volumes} volume(s); delete them first",
                pool.name
            )));
        }
        infra::remove(&self.db, "storage_pools", pool.id).await?;
        self.audit(
            caller,
            "STORAGE.POOL.DELETE",
            ("StoragePool", &pool.uuid, &pool.name),
            format!("Storage pool {} deleted", pool.name),
        )
        .await?;
        Ok(Reply::Success { display_text: None })
    }

    pub(super) async fn add_store(&self, caller: &Caller, r: NewStoreRequest) -> Result<Reply, ApiError> {
        // The driver declaring the provider serves the store (NFS is CloudStack's; the local
        // driver's Local, a folder on this server's host, serves single-machine clouds).
        let plugin = self.plugins.storage_for_provider(&r.provider).ok_or_else(|| {
            ApiError::invalid_param(format!(
                "Image store provider {} is not supported; the loaded storage drivers serve {}",
                r.provider,
                self.served_storage().0.join(", ")
            ))
        })?;
        let provider = providers_of(&plugin)
            .into_iter()
            .find(|p| p.eq_ignore_ascii_case(&r.provider))
            .unwrap_or_else(|| r.provider.clone());
        let url = r.url.ok_or_else(|| ApiError::missing_param("addimagestore", "url"))?;
        let schemes = schemes_of(&plugin);
        let scheme_ok = url.split_once("://").is_some_and(|(s, _)| schemes.iter().any(|x| x.eq_ignore_ascii_case(s)));
        if !scheme_ok {
            let forms: Vec<String> = schemes.iter().map(|s| form_of(s)).collect();
            return Err(ApiError::invalid_param(format!(
                "Invalid value of parameter url: {url}; {provider} stores need {}",
                forms.join(" or ")
            )));
        }
        let t = target(&url)?;
        let driver = plugin.info.name.clone();
        let zone = match &r.zone_id {
            Some(z) => Some(infra::zone(&self.db, z).await?.ok_or_else(|| no_such("zone", z))?),
            None => None,
        };
        let (existing, _) = storage::list_stores(&self.db, &StorageFilter::default(), None).await?;
        if let Some(other) = existing.iter().find(|s| s.url == url) {
            return Err(ApiError::invalid_param(format!("Image store {} already uses {url}", other.name)));
        }
        let usage = self.attach(&driver, &url).await?;
        let new = storage::NewStore {
            name: r.name.unwrap_or_else(|| url.clone()),
            zone_id: zone.as_ref().map(|z| z.id),
            url,
            protocol: t.scheme,
            provider,
            driver,
            capacity_bytes: usage.total_bytes as i64,
            used_bytes: usage.used_bytes as i64,
        };
        let uuid = storage::create_store(&self.db, new).await?;
        let store =
            storage::store(&self.db, &uuid).await?.ok_or_else(|| ApiError::internal("the new store is gone"))?;
        self.audit(
            caller,
            "IMAGE.STORE.CREATE",
            ("ImageStore", &store.uuid, &store.name),
            format!("Image store {} added", store.name),
        )
        .await?;
        Ok(object(if r.legacy { "secondarystorage" } else { "imagestore" }, store_view(&store)))
    }

    pub(super) async fn list_stores(&self, q: InfraQuery) -> Result<Reply, ApiError> {
        let zone_id = self.zone_id(q.zone_id.as_deref()).await?;
        let f = StorageFilter { uuid: q.id, name: q.name, zone_id, keyword: q.keyword, ..Default::default() };
        let (rows, total) = storage::list_stores(&self.db, &f, q.page).await?;
        Ok(list("imagestore", total, rows.iter().map(store_view).collect()))
    }

    pub(super) async fn delete_store(&self, caller: &Caller, id: &str) -> Result<Reply, ApiError> {
        let store = storage::store(&self.db, id).await?.ok_or_else(|| no_such("image store", id))?;
        infra::remove(&self.db, "image_stores", store.id).await?;
        self.audit(
            caller,
            "IMAGE.STORE.DELETE",
            ("ImageStore", &store.uuid, &store.name),
            format!("Image store {} deleted", store.name),
        )
        .await?;
        Ok(Reply::Success { display_text: None })
    }
}

fn pool_view(p: &PoolRow) -> serde_json::Map<String, serde_json::Value> {
    views::object(json!({
        "id": p.uuid,
        "name": p.name,
        "type": p.pool_type,
        "scope": p.scope,
        "state": p.state,
        "path": p.path,
        "ipaddress": p.address,
        "zoneid": p.zone_uuid,
        "zonename": p.zone_name,
        "podid": p.pod_uuid,
        "podname": p.pod_name,
        "clusterid": p.cluster_uuid,
        "clustername": p.cluster_name,
        "hypervisor": p.hypervisor,
        // The driver that serves the pool, as given to createStoragePool's `provider`.
        "provider": p.driver,
        "driver": p.driver,
        "driverversion": p.driver_version,
        "tags": p.tags,
        "disksizetotal": p.capacity_bytes,
        "disksizeallocated": p.allocated_bytes,
        "disksizeused": p.used_bytes,
        "overprovisionfactor": "2.0",
        "managed": false,
        "created": format_time(p.created),
    }))
}

fn store_view(s: &StoreRow) -> serde_json::Map<String, serde_json::Value> {
    views::object(json!({
        "id": s.uuid,
        "name": s.name,
        "url": s.url,
        "protocol": s.protocol,
        "providername": s.provider,
        "scope": s.scope,
        "zoneid": s.zone_uuid,
        "zonename": s.zone_name,
        "readonly": s.read_only != 0,
        "disksizetotal": s.capacity_bytes,
        "disksizeused": s.used_bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::target;

    #[test]
    fn storage_urls() {
        let t = target("nfs://10.0.0.5/export/primary").unwrap();
        assert_eq!(
            (t.scheme.as_str(), t.pool_type, t.address.as_str(), t.path.as_str()),
            ("nfs", "NetworkFilesystem", "10.0.0.5", "/export/primary")
        );
        let t = target("file:///var/lib/pool").unwrap();
        assert_eq!((t.pool_type, t.address.as_str(), t.path.as_str()), ("Filesystem", "127.0.0.1", "/var/lib/pool"));
        let t = target("ceph://mon1/rbd").unwrap();
        assert_eq!((t.scheme.as_str(), t.pool_type, t.address.as_str()), ("ceph", "PreSetup", "mon1"));
        assert!(target("nfs://host").unwrap_err().text.contains("give nfs://server/path"));
        assert!(target("file://host/x").unwrap_err().text.contains("give file:///path"));
        assert!(target("no-scheme").is_err());
    }
}
