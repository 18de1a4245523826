//! Data volumes on primary storage and their snapshots, made through the storage
//! driver of the volume's pool.
//!
//! A row is written only once the driver has made the file (and removed only once the
//! driver has deleted it), so a failed call leaves nothing behind. While an operation
//! works on a volume's file the volume is in a transient state (Resizing,
//! Snapshotting…); a second operation is refused rather than run on the same file.

use serde_json::{Map, Value, json};

use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{NewVolumeRequest, SnapshotQuery, VolumeQuery};
use crate::auth::Caller;
use crate::auth::store;
use crate::cloud::infra;
use crate::cloud::offerings::{self, DiskOfferingRow, OfferingFilter};
use crate::cloud::storage::{self as pools, PoolRow, StorageFilter};
use crate::cloud::volumes::{self, NewSnapshot, NewVolume, SnapshotFilter, SnapshotRow, VolumeFilter, VolumeRow};
use crate::db::format_time;
use crate::jobs::{JobSpec, Outcome};
use crate::plugins::{DriverError, PluginError, StorageDriver};

use super::{Orchestrator, list, no_such, not_yours, views};

const GIB: i64 = 1 << 30;

/// How far a pool may be promised beyond its size: volumes are thin qcow2 files. The
/// same factor listStoragePools reports as `overprovisionfactor`.
pub(super) const OVERPROVISION: i64 = 2;

/// A driver failure as an API error: what the driver said, with a code for its kind.
pub(super) fn driver_failure(what: String, e: PluginError) -> ApiError {
    let text = format!("{what}: {e}");
    match &e {
        PluginError::Driver { error: DriverError::InvalidSpec(_), .. } => ApiError::invalid_param(text),
        PluginError::Driver { error: DriverError::Denied(_), .. } => ApiError::permission_denied(text),
        PluginError::Driver { error: DriverError::Unavailable(_), .. }
        | PluginError::Timeout { .. }
        | PluginError::NotLoaded { .. } => ApiError::unavailable(text),
        _ => ApiError::internal(text),
    }
}

pub(super) fn wrap(name: &str, value: Map<String, Value>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(name.into(), Value::Object(value));
    m
}

fn gb(bytes: i64) -> String {
    if bytes % GIB == 0 { format!("{} GB", bytes / GIB) } else { format!("{bytes} bytes") }
}

/// A size in GB as given by a client, in bytes.
fn size_param(gb_value: i64) -> Result<i64, ApiError> {
    if gb_value <= 0 {
        return Err(ApiError::invalid_param(format!(
            "Invalid value of parameter size: {gb_value}; it must be at least 1 (GB)"
        )));
    }
    gb_value
        .checked_mul(GIB)
        .ok_or_else(|| ApiError::invalid_param(format!("Invalid value of parameter size: {gb_value} GB is too large")))
}

/// The size a disk offering gives, with `size` (GB) for a customized one.
fn offered_size(o: &DiskOfferingRow, size_gb: Option<i64>) -> Result<i64, ApiError> {
    match (o.customized != 0, size_gb) {
        (true, Some(s)) => size_param(s),
        (true, None) => Err(ApiError::invalid_param(format!(
            "Disk offering {} is customized: give the volume's size in GB with size",
            o.name
        ))),
        (false, Some(s)) if s != o.disk_size_gb => Err(ApiError::invalid_param(format!(
            "Disk offering {} has a fixed size of {} GB; size applies only to customized offerings",
            o.name, o.disk_size_gb
        ))),
        (false, _) => size_param(o.disk_size_gb),
    }
}

/// Whether a pool carries every tag of an offering (comma-separated, as CloudStack).
pub(super) fn has_tags(pool: &PoolRow, wanted: Option<&str>) -> bool {
    let have: Vec<&str> = pool.tags.as_deref().unwrap_or("").split(',').map(str::trim).collect();
    wanted.unwrap_or("").split(',').map(str::trim).filter(|t| !t.is_empty()).all(|t| have.contains(&t))
}

impl Orchestrator {
    pub(super) fn storage_of(&self, driver: &str) -> Result<StorageDriver, ApiError> {
        self.plugins.storage(driver).map_err(|e| ApiError::unavailable(e.to_string()))
    }

    /// Runs one blocking driver call off the async runtime.
    pub(super) async fn on_driver<T: Send + 'static>(
        &self,
        driver: &str,
        what: String,
        call: impl FnOnce(&StorageDriver) -> Result<T, PluginError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let storage = self.storage_of(driver)?;
        tokio::task::spawn_blocking(move || call(&storage).map_err(|e| driver_failure(what, e)))
            .await
            .map_err(|e| ApiError::internal(format!("a storage driver call crashed: {e}")))?
    }

    async fn disk_offering(&self, uuid: &str) -> Result<DiskOfferingRow, ApiError> {
        let f = OfferingFilter { uuid: Some(uuid.into()), ..Default::default() };
        offerings::list_disk(&self.db, &f, None)
            .await?
            .0
            .into_iter()
            .next()
            .ok_or_else(|| no_such("disk offering", uuid))
    }

    /// A volume the caller may act on.
    pub(super) async fn volume_for(&self, caller: &Caller, id: &str) -> Result<VolumeRow, ApiError> {
        let v = volumes::volume(&self.db, id).await?.ok_or_else(|| no_such("volume", id))?;
        if !caller.can_reach(&v) {
            return Err(not_yours("volume", id));
        }
        Ok(v)
    }

    /// A snapshot the caller may act on, with its volume.
    async fn snapshot_for(&self, caller: &Caller, id: &str) -> Result<(SnapshotRow, VolumeRow), ApiError> {
        let s = volumes::snapshot(&self.db, id).await?.ok_or_else(|| no_such("snapshot", id))?;
        if !caller.can_reach(&s) {
            return Err(not_yours("snapshot", id));
        }
        let v = volumes::volume(&self.db, &s.volume_uuid)
            .await?
            .ok_or_else(|| ApiError::internal(format!("the volume of snapshot {id} is gone")))?;
        Ok((s, v))
    }

    /// Takes a Ready volume for an operation on its file (state `busy` until released).
    async fn hold(&self, v: &VolumeRow, busy: &str) -> Result<(), ApiError> {
        if volumes::transition(&self.db, v.id, "Ready", busy).await? {
            return Ok(());
        }
        let now = volumes::volume(&self.db, &v.uuid).await?.map_or_else(|| "removed".to_owned(), |v| v.state);
        Err(ApiError::in_use(format!("Volume {} is busy ({now}); retry when it is Ready", v.name)))
    }

    async fn release(&self, v: &VolumeRow, busy: &str) {
        if let Err(e) = volumes::transition(&self.db, v.id, busy, "Ready").await {
            tracing::error!(volume = %v.uuid, "returning the volume to Ready failed: {e}");
        }
    }

    /// The account a new volume belongs to: the caller's, or one an admin names.
    pub(super) async fn owner(
        &self,
        caller: &Caller,
        account: Option<&str>,
        domain_id: Option<&str>,
    ) -> Result<(i64, i64), ApiError> {
        let Some(name) = account else {
            return Ok((caller.user.account_id, caller.user.domain_id));
        };
        let domain = match domain_id {
            Some(id) => store::domain_by_uuid(&self.db, id).await?.ok_or_else(|| no_such("domain", id))?.id,
            None => caller.user.domain_id,
        };
        let a = store::account_by_name(&self.db, name, domain).await?.ok_or_else(|| no_such("account", name))?;
        if !caller.can_reach(&a) {
            return Err(not_yours("account", name));
        }
        Ok((a.id, a.domain_id))
    }

    pub(super) async fn create_volume(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        r: NewVolumeRequest,
    ) -> Result<Reply, ApiError> {
        if r.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(ApiError::invalid_param("The volume name cannot be empty"));
        }
        if let Some(s) = &r.snapshot_id {
            // Snapshots live inside their volume's qcow2 file; the drivers cannot yet
            // copy one out into a new volume on a pool.
            return Err(ApiError::invalid_param(format!(
                "Creating a volume from snapshot {s} is not supported: snapshots stay inside their volume; \
                 use revertSnapshot on it instead"
            )));
        }
        let zone_id = r.zone_id.as_deref().ok_or_else(|| ApiError::missing_param("createvolume", "zoneid"))?;
        let zone = infra::zone(&self.db, zone_id).await?.ok_or_else(|| no_such("zone", zone_id))?;
        let template = match &r.template_id {
            Some(id) => Some(self.volume_template(caller, id, &zone).await?),
            None => None,
        };
        let (offering, size) = match (&r.disk_offering_id, r.size_gb) {
            // A volume on a template is as big as the template unless told otherwise.
            (None, None) if template.is_some() => (None, template.as_ref().map_or(0, |t| t.size)),
            (None, None) => {
                return Err(ApiError::invalid_param(
                    "Give diskofferingid (with size for a customized offering), or size in GB",
                ));
            }
            (Some(id), size_gb) => {
                let o = self.disk_offering(id).await?;
                let size = offered_size(&o, size_gb)?;
                (Some(o), size)
            }
            (None, Some(s)) => (None, size_param(s)?),
        };
        if let Some(t) = &template
            && size < t.size
        {
            return Err(ApiError::invalid_param(format!(
                "A volume on template {} needs at least {} (the template's size)",
                t.name,
                gb(t.size)
            )));
        }
        let (account_id, domain_id) = self.owner(caller, r.account.as_deref(), r.domain_id.as_deref()).await?;

        let f = StorageFilter { zone_id: Some(zone.id), ..Default::default() };
        let (candidates, _) = pools::list_pools(&self.db, &f, None).await?;
        let tags = offering.as_ref().and_then(|o| o.tags.as_deref());
        let pool = candidates
            .into_iter()
            .filter(|p| p.state == "Up" && has_tags(p, tags))
            .filter(|p| p.allocated_bytes.saturating_add(size) <= p.capacity_bytes.saturating_mul(OVERPROVISION))
            .max_by_key(|p| (p.capacity_bytes - p.used_bytes, -p.allocated_bytes))
            .ok_or_else(|| {
                ApiError::insufficient_capacity(format!(
                    "Zone {} has no primary storage with room for a {} volume{}",
                    zone.name,
                    gb(size),
                    tags.map(|t| format!(" tagged {t}")).unwrap_or_default()
                ))
            })?;

        let uuid = volumes::next_uuid();
        let name = r.name.clone().unwrap_or_else(|| uuid.clone());
        let me = self.clone();
        let who = caller.clone();
        let id = uuid.clone();
        let work = async move {
            let what = format!("Creating volume {name} on storage pool {}", pool.name);
            let base = match &template {
                Some(t) => Some(me.template_on_pool(t, &pool).await?),
                None => None,
            };
            let (url, vol_name) = (pool.url.clone(), id.clone());
            let made = me
                .on_driver(&pool.driver, what, move |d| d.create_volume(&url, &vol_name, size as u64, base.as_deref()))
                .await?;
            if let Err(e) = me.check_locator(&pool.driver, &pool.name, &pool.url, &made.locator) {
                // Refused, it is stored nowhere; the driver removes what it says it made.
                let (url, path) = (pool.url.clone(), made.path.clone());
                let undo = me
                    .on_driver(&pool.driver, "Removing a refused volume".into(), move |d| d.delete_volume(&url, &path));
                if let Err(u) = undo.await {
                    tracing::error!("{u}");
                }
                return Err(e);
            }
            let new = NewVolume {
                uuid: id.clone(),
                name: name.clone(),
                account_id,
                domain_id,
                zone_id: zone.id,
                pool_id: pool.id,
                disk_offering_id: offering.as_ref().map(|o| o.id),
                template_id: template.as_ref().map(|t| t.id),
                size_bytes: made.virtual_size as i64,
                physical_bytes: made.physical_size as i64,
                path: made.path.clone(),
                provisioning_type: offering.as_ref().map_or_else(|| "thin".to_owned(), |o| o.provisioning_type.clone()),
            };
            if let Err(e) = volumes::create_volume(&me.db, new).await {
                // Unrecorded, the file would be lost space nobody can delete.
                let (url, path) = (pool.url.clone(), made.path.clone());
                let undo = me.on_driver(&pool.driver, "Removing an unrecorded volume".into(), move |d| {
                    d.delete_volume(&url, &path)
                });
                if let Err(u) = undo.await {
                    tracing::error!("{u}");
                }
                return Err(e.into());
            }
            let v = volumes::volume(&me.db, &id).await.map_err(ApiError::from)?;
            let v = v.ok_or_else(|| ApiError::internal("the new volume is gone"))?;
            me.audit(
                &who,
                "VOLUME.CREATE",
                ("Volume", &v.uuid, &v.name),
                format!("Volume {} of {} created on storage pool {}", v.name, gb(v.size_bytes), v.pool_name),
            )
            .await
            .map_err(ApiError::from)?;
            Ok(wrap("volume", volume_view(&v)))
        };
        let job = self
            .jobs
            .submit(
                caller,
                JobSpec {
                    cmd: "org.apache.cloudstack.api.command.user.volume.CreateVolumeCmd",
                    command: cmd.name,
                    instance: Some(("Volume", uuid.clone())),
                },
                work,
            )
            .await?;
        Ok(Reply::AsyncJob { job_id: job, id: Some(uuid) })
    }

    pub(super) async fn list_volumes(&self, caller: &Caller, q: VolumeQuery) -> Result<Reply, ApiError> {
        if let Some(id) = &q.id
            && let Some(v) = volumes::volume(&self.db, id).await?
            && !caller.can_reach(&v)
        {
            return Err(not_yours("volume", id));
        }
        let scope = self.scope(caller, &q.listing).await?;
        let zone_id = self.zone_id(q.zone_id.as_deref()).await?;
        let pool_id = match &q.storage_id {
            Some(s) => Some(pools::pool(&self.db, s).await?.ok_or_else(|| no_such("storage pool", s))?.id),
            None => None,
        };
        let disk_offering_id = match &q.disk_offering_id {
            Some(o) => Some(self.disk_offering(o).await?.id),
            None => None,
        };
        let instance_id = match &q.vm_id {
            Some(i) => Some(self.vm_for(caller, i).await?.id),
            None => None,
        };
        let f = VolumeFilter {
            uuid: q.id,
            name: q.name,
            volume_type: q.volume_type.map(|t| t.to_ascii_uppercase()),
            state: q.state,
            zone_id,
            pool_id,
            disk_offering_id,
            instance_id,
            keyword: q.listing.keyword.clone(),
        };
        let (rows, total) = volumes::list_volumes(&self.db, &scope, &f, q.listing.page).await?;
        Ok(list("volume", total, rows.iter().map(volume_view).collect()))
    }

    pub(super) async fn resize_volume(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
        size_gb: Option<i64>,
        disk_offering_id: Option<String>,
        shrink_ok: bool,
    ) -> Result<Reply, ApiError> {
        let v = self.volume_for(caller, id).await?;
        let (offering, size) = match (&disk_offering_id, size_gb) {
            (None, None) => {
                return Err(ApiError::invalid_param("Give the new size in GB with size, or diskofferingid"));
            }
            (Some(o), size_gb) => {
                let o = self.disk_offering(o).await?;
                let size = offered_size(&o, size_gb)?;
                (Some(o), size)
            }
            (None, Some(s)) => (None, size_param(s)?),
        };
        if size < v.size_bytes && !shrink_ok {
            return Err(ApiError::invalid_param(format!(
                "Volume {} is {}; shrinking it to {} would lose data. Pass shrinkok=true to try \
                 (the storage driver may still refuse)",
                v.name,
                gb(v.size_bytes),
                gb(size)
            )));
        }
        self.hold(&v, "Resizing").await?;
        let me = self.clone();
        let who = caller.clone();
        let vol = v.clone();
        let work = async move {
            let result: Result<Map<String, Value>, ApiError> = async {
                let what = format!("Resizing volume {} to {}", vol.name, gb(size));
                let (url, path) = (vol.pool_url.clone(), vol.path.clone());
                let done =
                    me.on_driver(&vol.pool_driver, what, move |d| d.resize_volume(&url, &path, size as u64)).await?;
                let offering_id = offering.as_ref().map(|o| o.id).or(vol.disk_offering_id);
                volumes::resized(&me.db, &vol, done.virtual_size as i64, done.physical_size as i64, offering_id)
                    .await?;
                me.audit(
                    &who,
                    "VOLUME.RESIZE",
                    ("Volume", &vol.uuid, &vol.name),
                    format!(
                        "Volume {} resized from {} to {}",
                        vol.name,
                        gb(vol.size_bytes),
                        gb(done.virtual_size as i64)
                    ),
                )
                .await?;
                let v = volumes::volume(&me.db, &vol.uuid).await?.ok_or_else(|| no_such("volume", &vol.uuid))?;
                Ok(wrap("volume", volume_view(&v)))
            }
            .await;
            if result.is_err() {
                me.release(&vol, "Resizing").await;
            }
            result
        };
        self.submit_held(caller, cmd, "volume.ResizeVolumeCmd", ("Volume", &v.uuid), &v, "Resizing", work).await
    }

    async fn submit(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        class: &str,
        (kind, uuid): (&str, &str),
        work: impl Future<Output = Outcome> + Send + 'static,
    ) -> Result<Reply, ApiError> {
        let class = format!("org.apache.cloudstack.api.command.user.{class}");
        let spec = JobSpec { cmd: &class, command: cmd.name, instance: Some((kind, uuid.to_owned())) };
        let job = self.jobs.submit(caller, spec, work).await?;
        Ok(Reply::AsyncJob { job_id: job, id: None })
    }

    pub(super) async fn delete_volume(&self, caller: &Caller, id: &str) -> Result<Reply, ApiError> {
        let v = self.volume_for(caller, id).await?;
        if v.volume_type == "ROOT" {
            return Err(ApiError::in_use(format!(
                "Volume {} is a VM's root disk; it goes when the VM is expunged",
                v.name
            )));
        }
        if let Some(vm) = &v.vm_name {
            return Err(ApiError::in_use(format!("Volume {} is attached to VM {vm}; detach it first", v.name)));
        }
        self.hold(&v, "Destroying").await?;
        let result = async {
            let snapshots = volumes::snapshots_of(&self.db, v.id).await?;
            let (url, path) = (v.pool_url.clone(), v.path.clone());
            let what = format!("Deleting volume {}", v.name);
            self.on_driver(&v.pool_driver, what, move |d| d.delete_volume(&url, &path)).await?;
            Ok::<_, ApiError>(snapshots)
        }
        .await;
        let snapshots = match result {
            Ok(s) => s,
            Err(e) => {
                self.release(&v, "Destroying").await;
                return Err(e);
            }
        };
        volumes::remove_volume(&self.db, &v).await?;
        for s in &snapshots {
            self.audit(
                caller,
                "SNAPSHOT.DELETE",
                ("Snapshot", &s.uuid, &s.name),
                format!("Snapshot {} deleted with its volume {}", s.name, v.name),
            )
            .await?;
        }
        let text = match snapshots.len() {
            0 => None,
            n => Some(format!(
                "Volume {} deleted with its {n} snapshot{}, which were stored inside it",
                v.name,
                if n == 1 { "" } else { "s" }
            )),
        };
        let description = text.clone().unwrap_or_else(|| format!("Volume {} deleted", v.name));
        self.audit(caller, "VOLUME.DELETE", ("Volume", &v.uuid, &v.name), description).await?;
        Ok(Reply::Success { display_text: text })
    }

    pub(super) async fn create_snapshot(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        volume_id: &str,
        name: Option<String>,
        location_type: Option<String>,
    ) -> Result<Reply, ApiError> {
        if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(ApiError::invalid_param("The snapshot name cannot be empty"));
        }
        let secondary = match location_type.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("PRIMARY") => false,
            Some("SECONDARY") => true,
            Some(other) => {
                return Err(ApiError::invalid_param(format!(
                    "Invalid value of parameter locationtype: {other}; use PRIMARY or SECONDARY"
                )));
            }
        };
        let v = self.volume_for(caller, volume_id).await?;
        // The backup goes to the image store of the volume's zone; without one, refuse now.
        let backup_store = if secondary { Some(self.zone_store(&v.zone_uuid).await?) } else { None };
        self.hold(&v, "Snapshotting").await?;
        let uuid = volumes::next_uuid();
        let name = name.unwrap_or_else(|| format!("{}_{}", v.name, chrono::Utc::now().format("%Y%m%d%H%M%S")));
        let me = self.clone();
        let who = caller.clone();
        let (vol, id) = (v.clone(), uuid.clone());
        let work = async move {
            let result: Result<Map<String, Value>, ApiError> = async {
                // The qcow2 snapshot is named by the snapshot's UUID: unique, and a
                // valid snapshot name whatever the user called it.
                let (url, path, tag) = (vol.pool_url.clone(), vol.path.clone(), id.clone());
                let what = format!("Snapshotting volume {}", vol.name);
                me.on_driver(&vol.pool_driver, what, move |d| d.create_snapshot(&url, &path, &tag)).await?;
                let new = NewSnapshot {
                    uuid: id.clone(),
                    name: name.clone(),
                    volume_id: vol.id,
                    account_id: vol.account_id,
                    domain_id: vol.domain_id,
                    zone_id: vol.zone_id,
                    virtual_bytes: vol.size_bytes,
                    // Internal snapshots share the volume's file; its size is the best
                    // figure there is for what the snapshot holds.
                    physical_bytes: vol.physical_bytes,
                };
                if let Err(e) = volumes::create_snapshot(&me.db, new).await {
                    let (url, path, tag) = (vol.pool_url.clone(), vol.path.clone(), id.clone());
                    let undo = me.on_driver(&vol.pool_driver, "Removing an unrecorded snapshot".into(), move |d| {
                        d.delete_snapshot(&url, &path, &tag)
                    });
                    if let Err(u) = undo.await {
                        tracing::error!("{u}");
                    }
                    return Err(e.into());
                }
                if let Some(store) = &backup_store {
                    me.back_up_snapshot(&vol, &id, store).await?;
                }
                me.audit(
                    &who,
                    "SNAPSHOT.CREATE",
                    ("Snapshot", &id, &name),
                    format!("Snapshot {name} of volume {} created", vol.name),
                )
                .await?;
                let s = volumes::snapshot(&me.db, &id).await?.ok_or_else(|| no_such("snapshot", &id))?;
                Ok(wrap("snapshot", snapshot_view(&s)))
            }
            .await;
            me.release(&vol, "Snapshotting").await;
            result
        };
        let spec = JobSpec {
            cmd: "org.apache.cloudstack.api.command.user.snapshot.CreateSnapshotCmd",
            command: cmd.name,
            instance: Some(("Snapshot", uuid.clone())),
        };
        let job = match self.jobs.submit(caller, spec, work).await {
            Ok(j) => j,
            Err(e) => {
                self.release(&v, "Snapshotting").await;
                return Err(e.into());
            }
        };
        Ok(Reply::AsyncJob { job_id: job, id: Some(uuid) })
    }

    pub(super) async fn list_snapshots(&self, caller: &Caller, q: SnapshotQuery) -> Result<Reply, ApiError> {
        if let Some(id) = &q.id
            && let Some(s) = volumes::snapshot(&self.db, id).await?
            && !caller.can_reach(&s)
        {
            return Err(not_yours("snapshot", id));
        }
        // Every snapshot here is a manual one kept on primary storage.
        let manual = |v: &Option<String>| v.as_deref().is_none_or(|t| t.eq_ignore_ascii_case("MANUAL"));
        // Every snapshot stays on primary storage; SECONDARY lists those also backed up.
        let secondary_only = match q.location_type.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("PRIMARY") => false,
            Some("SECONDARY") => true,
            Some(_) => return Ok(list("snapshot", 0, Vec::new())),
        };
        if !manual(&q.snapshot_type) || !manual(&q.interval_type) {
            return Ok(list("snapshot", 0, Vec::new()));
        }
        let scope = self.scope(caller, &q.listing).await?;
        let zone_id = self.zone_id(q.zone_id.as_deref()).await?;
        let volume_id = match &q.volume_id {
            Some(v) => Some(self.volume_for(caller, v).await?.id),
            None => None,
        };
        let f = SnapshotFilter {
            uuid: q.id,
            name: q.name,
            volume_id,
            zone_id,
            keyword: q.listing.keyword.clone(),
            secondary_only,
        };
        let (rows, total) = volumes::list_snapshots(&self.db, &scope, &f, q.listing.page).await?;
        Ok(list("snapshot", total, rows.iter().map(snapshot_view).collect()))
    }

    pub(super) async fn revert_snapshot(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
    ) -> Result<Reply, ApiError> {
        let (s, v) = self.snapshot_for(caller, id).await?;
        // A running guest has the disk open: reverting under it would corrupt what it sees.
        if let (Some(vm), Some(state)) = (&v.vm_name, &v.vm_state)
            && state != "Stopped"
        {
            return Err(ApiError::invalid_param(format!(
                "Volume {} is attached to VM {vm}, which is {state}; stop it before reverting the volume",
                v.name
            )));
        }
        self.hold(&v, "RevertSnapshotting").await?;
        let me = self.clone();
        let who = caller.clone();
        let (snap, vol) = (s.clone(), v.clone());
        let work = async move {
            let result: Result<Map<String, Value>, ApiError> = async {
                let (url, path, tag) = (vol.pool_url.clone(), vol.path.clone(), snap.uuid.clone());
                let what = format!("Reverting volume {} to snapshot {}", vol.name, snap.name);
                me.on_driver(&vol.pool_driver, what, move |d| d.revert_snapshot(&url, &path, &tag)).await?;
                // A qcow2 snapshot keeps the disk size it was taken at; reverting
                // restores it, so the volume is that size again.
                volumes::resized(&me.db, &vol, snap.virtual_bytes, vol.physical_bytes, vol.disk_offering_id).await?;
                me.audit(
                    &who,
                    "SNAPSHOT.REVERT",
                    ("Snapshot", &snap.uuid, &snap.name),
                    format!("Volume {} reverted to snapshot {}", vol.name, snap.name),
                )
                .await?;
                Ok(wrap("snapshot", snapshot_view(&snap)))
            }
            .await;
            if result.is_err() {
                me.release(&vol, "RevertSnapshotting").await;
            }
            result
        };
        self.submit_held(
            caller,
            cmd,
            "snapshot.RevertSnapshotCmd",
            ("Snapshot", &s.uuid),
            &v,
            "RevertSnapshotting",
            work,
        )
        .await
    }

    pub(super) async fn delete_snapshot(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
    ) -> Result<Reply, ApiError> {
        let (s, v) = self.snapshot_for(caller, id).await?;
        // Deleting an internal snapshot rewrites the volume's file.
        self.hold(&v, "Snapshotting").await?;
        let me = self.clone();
        let who = caller.clone();
        let (snap, vol) = (s.clone(), v.clone());
        let work = async move {
            let result: Result<Map<String, Value>, ApiError> = async {
                let (url, path, tag) = (vol.pool_url.clone(), vol.path.clone(), snap.uuid.clone());
                let what = format!("Deleting snapshot {} of volume {}", snap.name, vol.name);
                me.on_driver(&vol.pool_driver, what, move |d| d.delete_snapshot(&url, &path, &tag)).await?;
                if let (Some(store), Some(driver), Some(copy)) = (&snap.store_url, &snap.store_driver, &snap.store_path)
                {
                    let (store, copy) = (store.clone(), copy.clone());
                    let what = format!("Deleting the backup of snapshot {}", snap.name);
                    me.on_driver(driver, what, move |d| d.delete_image(&store, &copy)).await?;
                }
                volumes::remove_snapshot(&me.db, snap.id).await?;
                me.audit(
                    &who,
                    "SNAPSHOT.DELETE",
                    ("Snapshot", &snap.uuid, &snap.name),
                    format!("Snapshot {} of volume {} deleted", snap.name, vol.name),
                )
                .await?;
                let mut m = Map::new();
                m.insert("success".into(), true.into());
                Ok(m)
            }
            .await;
            me.release(&vol, "Snapshotting").await;
            result
        };
        self.submit_held(caller, cmd, "snapshot.DeleteSnapshotCmd", ("Snapshot", &s.uuid), &v, "Snapshotting", work)
            .await
    }

    /// The image store of a zone: (id, URL, driver).
    async fn zone_store(&self, zone_uuid: &str) -> Result<(i64, String, String), ApiError> {
        let zone = infra::zone(&self.db, zone_uuid).await?.ok_or_else(|| no_such("zone", zone_uuid))?;
        let (stores, _) = pools::list_stores(&self.db, &StorageFilter::default(), None).await?;
        let store = stores
            .iter()
            .find(|s| s.zone_id == Some(zone.id))
            .or_else(|| stores.iter().find(|s| s.zone_id.is_none()))
            .ok_or_else(|| {
                ApiError::invalid_param(format!("Zone {} has no image store to back snapshots up to", zone.name))
            })?;
        Ok((store.id, store.url.clone(), store.driver.clone()))
    }

    /// Copies a snapshot out of its volume into an image store as a standalone image.
    /// On failure the snapshot itself is removed too: nothing is left half-made.
    async fn back_up_snapshot(
        &self,
        vol: &VolumeRow,
        snapshot: &str,
        store: &(i64, String, String),
    ) -> Result<(), ApiError> {
        let (store_id, store_url, _) = store.clone();
        let (pool, path, tag, name) =
            (vol.pool_url.clone(), vol.path.clone(), snapshot.to_owned(), snapshot.to_owned());
        let what = format!("Backing up snapshot {snapshot} of volume {}", vol.name);
        let copied = self
            .on_driver(&vol.pool_driver, what, move |d| d.export_image(&pool, &path, Some(&tag), &store_url, &name))
            .await;
        let made = match copied {
            Ok(m) => m,
            Err(e) => {
                let (url, path, tag) = (vol.pool_url.clone(), vol.path.clone(), snapshot.to_owned());
                let undo = self.on_driver(&vol.pool_driver, "Removing an unbacked snapshot".into(), move |d| {
                    d.delete_snapshot(&url, &path, &tag)
                });
                if let Err(u) = undo.await {
                    tracing::error!("{u}");
                }
                if let Some(row) = volumes::snapshot(&self.db, snapshot).await? {
                    volumes::remove_snapshot(&self.db, row.id).await?;
                }
                return Err(e);
            }
        };
        let row = volumes::snapshot(&self.db, snapshot).await?.ok_or_else(|| no_such("snapshot", snapshot))?;
        volumes::backed_up(&self.db, row.id, store_id, &made.path).await?;
        Ok(())
    }

    /// Submits a job on a volume held in `busy` (or on its snapshot), releasing the
    /// volume if the job cannot even be recorded.
    #[allow(clippy::too_many_arguments)]
    async fn submit_held(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        class: &str,
        instance: (&str, &str),
        v: &VolumeRow,
        busy: &str,
        work: impl Future<Output = Outcome> + Send + 'static,
    ) -> Result<Reply, ApiError> {
        let submitted = self.submit(caller, cmd, class, instance, work).await;
        if submitted.is_err() {
            self.release(v, busy).await;
        }
        submitted
    }
}

pub(super) fn volume_view(v: &VolumeRow) -> Map<String, Value> {
    views::object(json!({
        "id": v.uuid,
        "name": v.name,
        "type": v.volume_type,
        "state": v.state,
        "size": v.size_bytes,
        "physicalsize": v.physical_bytes,
        "zoneid": v.zone_uuid,
        "zonename": v.zone_name,
        "diskofferingid": v.offering_uuid,
        "diskofferingname": v.offering_name,
        "storage": v.pool_name,
        "storageid": v.pool_uuid,
        "storagetype": v.offering_storage_type.as_deref().unwrap_or("shared"),
        "provisioningtype": v.provisioning_type,
        "created": format_time(v.created),
        "path": v.path,
        "hypervisor": v.pool_hypervisor,
        "account": v.account_name,
        "domain": v.domain_name,
        "domainid": v.domain_uuid,
        "destroyed": false,
        "isextractable": true,
        "virtualmachineid": v.vm_uuid,
        "vmname": v.vm_name,
        "vmdisplayname": v.vm_display_name,
        "vmstate": v.vm_state,
        "deviceid": v.device_id,
    }))
}

fn snapshot_view(s: &SnapshotRow) -> Map<String, Value> {
    views::object(json!({
        "id": s.uuid,
        "name": s.name,
        "volumeid": s.volume_uuid,
        "volumename": s.volume_name,
        "volumetype": s.volume_type,
        "snapshottype": "MANUAL",
        "intervaltype": "MANUAL",
        "state": s.state,
        "created": format_time(s.created),
        "zoneid": s.zone_uuid,
        "physicalsize": s.physical_bytes,
        "virtualsize": s.virtual_bytes,
        "revertable": true,
        "locationtype": s.location_type,
        "account": s.account_name,
        "domain": s.domain_name,
        "domainid": s.domain_uuid,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offering(customized: bool, size_gb: i64) -> DiskOfferingRow {
        DiskOfferingRow {
            id: 1,
            uuid: "u".into(),
            name: "o".into(),
            display_text: "o".into(),
            disk_size_gb: size_gb,
            customized: customized as i64,
            storage_type: "shared".into(),
            tags: None,
            provisioning_type: "thin".into(),
            created: 0,
        }
    }

    #[test]
    fn sizes_come_from_offerings_or_the_request() {
        assert_eq!(offered_size(&offering(false, 5), None).unwrap(), 5 * GIB);
        assert_eq!(offered_size(&offering(false, 5), Some(5)).unwrap(), 5 * GIB);
        assert!(offered_size(&offering(false, 5), Some(6)).unwrap_err().text.contains("fixed size"));
        assert!(offered_size(&offering(true, 0), None).unwrap_err().text.contains("customized"));
        assert_eq!(offered_size(&offering(true, 0), Some(2)).unwrap(), 2 * GIB);
        assert!(size_param(0).is_err() && size_param(-1).is_err() && size_param(i64::MAX).is_err());
    }

    #[test]
    fn pools_need_every_offering_tag() {
        let mut p: PoolRow = PoolRow {
            id: 1,
            uuid: "p".into(),
            name: "p".into(),
            zone_id: 1,
            zone_uuid: "z".into(),
            zone_name: "z".into(),
            pod_id: None,
            pod_uuid: None,
            pod_name: None,
            cluster_id: None,
            cluster_uuid: None,
            cluster_name: None,
            host_id: None,
            scope: "ZONE".into(),
            url: "nfs://h/x".into(),
            driver: "nfs".into(),
            driver_version: "0.1.0".into(),
            pool_type: "NetworkFilesystem".into(),
            address: "h".into(),
            path: "/x".into(),
            hypervisor: None,
            state: "Up".into(),
            capacity_bytes: 0,
            used_bytes: 0,
            allocated_bytes: 0,
            tags: Some("ssd, fast".into()),
            created: 0,
        };
        assert!(has_tags(&p, None) && has_tags(&p, Some("ssd")) && has_tags(&p, Some("fast,ssd")));
        assert!(!has_tags(&p, Some("ssd,slow")));
        p.tags = None;
        assert!(has_tags(&p, Some("")) && !has_tags(&p, Some("ssd")));
    }
}
