//! Primary storage pools and image (secondary) stores, each attached through its
//! storage driver, which also reports their capacity.

use serde_json::json;

use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{InfraQuery, NewPoolRequest, NewStoreRequest};
use crate::auth::Caller;
use crate::cloud::infra;
use crate::cloud::storage::{self, PoolRow, StorageFilter, StoreRow};
use crate::db::format_time;
use crate::plugins::{Usage, settings};

use super::infra::one_of;
use super::{Orchestrator, list, no_such, object, views};

/// Which driver serves a storage URL, the CloudStack pool type, and the URL's address
/// and path parts.
#[derive(Debug)]
struct Target {
    driver: String,
    pool_type: &'static str,
    address: String,
    path: String,
}

fn target(url: &str) -> Result<Target, ApiError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        ApiError::invalid_param(format!(
            "Invalid value of parameter url: {url}; give nfs://server/path or file:///path"
        ))
    })?;
    let (address, path) = match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    };
    match scheme.to_ascii_lowercase().as_str() {
        "nfs" if !address.is_empty() && path.len() > 1 => {
            Ok(Target { driver: "nfs".into(), pool_type: "NetworkFilesystem", address, path })
        }
        "file" if address.is_empty() && path.len() > 1 => {
            Ok(Target { driver: "local".into(), pool_type: "Filesystem", address: "127.0.0.1".into(), path })
        }
        "nfs" | "file" => Err(ApiError::invalid_param(format!(
            "Invalid value of parameter url: {url}; give nfs://server/path or file:///path"
        ))),
        other => Err(ApiError::invalid_param(format!(
            "Storage URL scheme {other}:// is not supported; use nfs:// (NFS) or file:// (local)"
        ))),
    }
}

/// With a `provider` naming a storage driver, that driver serves the pool, whatever the
/// URL's scheme (so a dropped-in driver can be used); without one, or with CloudStack's
/// default "DefaultPrimary", the scheme picks the driver.
fn pool_target(url: &str, provider: Option<&str>) -> Result<Target, ApiError> {
    let provider = provider.map(str::trim).filter(|p| !p.is_empty() && !p.eq_ignore_ascii_case("DefaultPrimary"));
    let Some(driver) = provider else {
        return target(url);
    };
    let (scheme, rest) = url.split_once("://").filter(|(s, r)| !s.is_empty() && !r.is_empty()).ok_or_else(|| {
        ApiError::invalid_param(format!("Invalid value of parameter url: {url}; give scheme://address/path"))
    })?;
    let (address, path) = match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    };
    let (pool_type, address) = match scheme.to_ascii_lowercase().as_str() {
        "nfs" => ("NetworkFilesystem", address),
        "file" => ("Filesystem", "127.0.0.1".to_owned()),
        _ => ("PreSetup", address),
    };
    Ok(Target { driver: driver.to_owned(), pool_type, address, path })
}

impl Orchestrator {
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
        let t = pool_target(&r.url, r.provider.as_deref())?;
        if self.plugins.storage(&t.driver).is_err() {
            return Err(ApiError::invalid_param(format!(
                "Storage provider {} is not a loaded storage driver; see wasmstack plugins list",
                t.driver
            )));
        }
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
        let schema = self.plugins.get(&t.driver).map(|p| p.info.config_schema.clone()).unwrap_or_default();
        let url = settings::apply(&t.driver, &schema, &r.url, &r.details)
            .map_err(|e| ApiError::invalid_param(e.to_string()))?;
        let (existing, _) = storage::list_pools(&self.db, &StorageFilter::default(), None).await?;
        let base = |u: &str| u.split('?').next().unwrap_or_default().to_owned();
        if let Some(other) = existing.iter().find(|p| base(&p.url) == base(&url)) {
            return Err(ApiError::invalid_param(format!("Storage pool {} already uses {}", other.name, base(&url))));
        }
        let usage = self.attach(&t.driver, &url).await?;
        let new = storage::NewPool {
            name: r.name,
            zone_id: zone.id,
            pod_id: pod,
            cluster_id: cluster.as_ref().map(|c| c.id),
            host_id: None,
            scope: scope.into(),
            url,
            driver: t.driver,
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
        // NFS is CloudStack's store; Local (a folder on the management server's host)
        // serves single-machine clouds such as the demo.
        let provider = one_of("provider", &r.provider, &["NFS", "Local"]).map_err(|_| {
            ApiError::invalid_param(format!("Image store provider {} is not supported; use NFS or Local", r.provider))
        })?;
        let url = r.url.ok_or_else(|| ApiError::missing_param("addimagestore", "url"))?;
        let t = target(&url)?;
        let (want, protocol) = if provider == "NFS" { ("nfs", "nfs") } else { ("local", "file") };
        if t.driver != want {
            let form =
                if want == "nfs" { "an NFS store needs nfs://server/path" } else { "a Local store needs file:///path" };
            return Err(ApiError::invalid_param(format!("Invalid value of parameter url: {url}; {form}")));
        }
        let zone = match &r.zone_id {
            Some(z) => Some(infra::zone(&self.db, z).await?.ok_or_else(|| no_such("zone", z))?),
            None => None,
        };
        let (existing, _) = storage::list_stores(&self.db, &StorageFilter::default(), None).await?;
        if let Some(other) = existing.iter().find(|s| s.url == url) {
            return Err(ApiError::invalid_param(format!("Image store {} already uses {url}", other.name)));
        }
        let usage = self.attach(&t.driver, &url).await?;
        let new = storage::NewStore {
            name: r.name.unwrap_or_else(|| url.clone()),
            zone_id: zone.as_ref().map(|z| z.id),
            url,
            protocol: protocol.into(),
            provider: provider.into(),
            driver: t.driver,
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
    use super::{pool_target, target};

    #[test]
    fn storage_urls() {
        let t = target("nfs://10.0.0.5/export/primary").unwrap();
        assert_eq!(
            (t.driver.as_str(), t.pool_type, t.address.as_str(), t.path.as_str()),
            ("nfs", "NetworkFilesystem", "10.0.0.5", "/export/primary")
        );
        let t = target("file:///var/lib/pool").unwrap();
        assert_eq!((t.driver.as_str(), t.path.as_str()), ("local", "/var/lib/pool"));
        assert!(target("iscsi://x/y").unwrap_err().text.contains("iscsi:// is not supported"));
        assert!(target("nfs://host").is_err());
        assert!(target("no-scheme").is_err());
    }

    #[test]
    fn a_provider_names_the_driver() {
        let t = pool_target("file:///srv/p", Some("dirpool")).unwrap();
        assert_eq!((t.driver.as_str(), t.pool_type, t.path.as_str()), ("dirpool", "Filesystem", "/srv/p"));
        let t = pool_target("ceph://mon1/rbd", Some("ceph")).unwrap();
        assert_eq!((t.driver.as_str(), t.pool_type, t.address.as_str()), ("ceph", "PreSetup", "mon1"));
        assert_eq!(pool_target("nfs://h/e", Some("DefaultPrimary")).unwrap().driver, "nfs");
        assert_eq!(pool_target("file:///x", None).unwrap().driver, "local");
        assert!(pool_target("no-scheme", Some("ceph")).is_err());
    }
}
