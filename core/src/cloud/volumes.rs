//! Queries on volumes and their snapshots. Both belong to an account; listings are
//! narrowed by the caller's `Scope`.

use sqlx::FromRow;

use crate::auth::store::{Arg, Scope, eq, fetch_page, keyword};
use crate::db::{Db, DbError, new_uuid, now_ms};

#[derive(Debug, Clone, FromRow)]
pub struct VolumeRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub account_id: i64,
    pub account_name: String,
    /// The owning account's type, for who may reach the volume.
    pub account_type: i64,
    pub domain_id: i64,
    pub domain_uuid: String,
    pub domain_name: String,
    pub domain_path: String,
    pub zone_id: i64,
    pub zone_uuid: String,
    pub zone_name: String,
    pub pool_id: i64,
    pub pool_uuid: String,
    pub pool_name: String,
    pub pool_url: String,
    pub pool_driver: String,
    pub pool_hypervisor: Option<String>,
    pub disk_offering_id: Option<i64>,
    pub offering_uuid: Option<String>,
    pub offering_name: Option<String>,
    pub offering_storage_type: Option<String>,
    pub template_id: Option<i64>,
    pub volume_type: String,
    pub state: String,
    pub size_bytes: i64,
    pub physical_bytes: i64,
    pub path: String,
    pub provisioning_type: String,
    pub created: i64,
    /// The VM it is attached to, and as which device.
    pub instance_id: Option<i64>,
    pub device_id: Option<i64>,
    pub vm_uuid: Option<String>,
    pub vm_name: Option<String>,
    pub vm_display_name: Option<String>,
    pub vm_state: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct SnapshotRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub volume_id: i64,
    pub volume_uuid: String,
    pub volume_name: String,
    pub volume_type: String,
    pub account_id: i64,
    pub account_name: String,
    /// The owning account's type, for who may reach the snapshot.
    pub account_type: i64,
    pub domain_uuid: String,
    pub domain_name: String,
    pub domain_path: String,
    pub zone_uuid: String,
    pub state: String,
    pub virtual_bytes: i64,
    pub physical_bytes: i64,
    /// PRIMARY, or SECONDARY once a copy sits in an image store.
    pub location_type: String,
    pub store_url: Option<String>,
    pub store_driver: Option<String>,
    pub store_path: Option<String>,
    pub created: i64,
}

impl crate::auth::Owned for VolumeRow {
    fn owner(&self) -> crate::auth::Owner<'_> {
        crate::auth::Owner {
            account_id: self.account_id,
            account_type: self.account_type,
            domain_path: &self.domain_path,
        }
    }
}

impl crate::auth::Owned for SnapshotRow {
    fn owner(&self) -> crate::auth::Owner<'_> {
        crate::auth::Owner {
            account_id: self.account_id,
            account_type: self.account_type,
            domain_path: &self.domain_path,
        }
    }
}

const VOLUME_SELECT: &str = "SELECT v.id, v.uuid, v.name, v.account_id, a.name AS account_name, a.account_type, v.domain_id, \
     d.uuid AS domain_uuid, d.name AS domain_name, d.path AS domain_path, v.zone_id, z.uuid AS zone_uuid, \
     z.name AS zone_name, v.pool_id, s.uuid AS pool_uuid, s.name AS pool_name, s.url AS pool_url, \
     s.driver AS pool_driver, s.hypervisor AS pool_hypervisor, v.disk_offering_id, o.uuid AS offering_uuid, \
     o.name AS offering_name, o.storage_type AS offering_storage_type, v.template_id, v.volume_type, v.state, \
     v.size_bytes, v.physical_bytes, v.path, v.provisioning_type, v.created, v.instance_id, v.device_id, \
     vm.uuid AS vm_uuid, vm.name AS vm_name, vm.display_name AS vm_display_name, vm.state AS vm_state \
     FROM volumes v JOIN accounts a ON a.id = v.account_id JOIN domains d ON d.id = v.domain_id \
     JOIN zones z ON z.id = v.zone_id JOIN storage_pools s ON s.id = v.pool_id \
     LEFT JOIN disk_offerings o ON o.id = v.disk_offering_id \
     LEFT JOIN instances vm ON vm.id = v.instance_id WHERE v.removed IS NULL";

const SNAPSHOT_SELECT: &str = "SELECT n.id, n.uuid, n.name, n.volume_id, v.uuid AS volume_uuid, \
     v.name AS volume_name, v.volume_type, n.account_id, a.name AS account_name, a.account_type, \
     d.uuid AS domain_uuid, \
     d.name AS domain_name, d.path AS domain_path, z.uuid AS zone_uuid, n.state, n.virtual_bytes, \
     n.physical_bytes, n.location_type, i.url AS store_url, i.driver AS store_driver, n.store_path, n.created \
     FROM snapshots n JOIN volumes v ON v.id = n.volume_id \
     JOIN accounts a ON a.id = n.account_id JOIN domains d ON d.id = n.domain_id JOIN zones z ON z.id = n.zone_id \
     LEFT JOIN image_stores i ON i.id = n.store_id WHERE n.removed IS NULL";

/// Filters of listVolumes.
#[derive(Debug, Default, Clone)]
pub struct VolumeFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub volume_type: Option<String>,
    pub state: Option<String>,
    pub zone_id: Option<i64>,
    pub pool_id: Option<i64>,
    pub disk_offering_id: Option<i64>,
    pub instance_id: Option<i64>,
    pub keyword: Option<String>,
}

/// Filters of listSnapshots.
#[derive(Debug, Default, Clone)]
pub struct SnapshotFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub volume_id: Option<i64>,
    pub zone_id: Option<i64>,
    pub keyword: Option<String>,
    /// Only snapshots with a copy in an image store.
    pub secondary_only: bool,
}

pub async fn list_volumes(
    db: &Db,
    scope: &Scope,
    f: &VolumeFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<VolumeRow>, i64), DbError> {
    let mut sql = VOLUME_SELECT.to_owned();
    let mut args = Vec::new();
    scope.push(&mut sql, &mut args, "v.account_id", "d.path", "v.domain_id");
    for (col, v) in [("v.uuid", &f.uuid), ("v.name", &f.name), ("v.volume_type", &f.volume_type), ("v.state", &f.state)]
    {
        if let Some(v) = v {
            eq(&mut sql, &mut args, col, Arg::Text(v.clone()));
        }
    }
    for (col, v) in [
        ("v.zone_id", f.zone_id),
        ("v.pool_id", f.pool_id),
        ("v.disk_offering_id", f.disk_offering_id),
        ("v.instance_id", f.instance_id),
    ] {
        if let Some(v) = v {
            eq(&mut sql, &mut args, col, Arg::Int(v));
        }
    }
    if let Some(k) = &f.keyword {
        keyword(&mut sql, &mut args, "v.name", k);
    }
    fetch_page(db, sql, &args, "v.id", page).await
}

/// A live volume by UUID, whoever owns it (callers check access).
pub async fn volume(db: &Db, uuid: &str) -> Result<Option<VolumeRow>, DbError> {
    let f = VolumeFilter { uuid: Some(uuid.into()), ..Default::default() };
    Ok(list_volumes(db, &Scope::default(), &f, None).await?.0.into_iter().next())
}

pub async fn list_snapshots(
    db: &Db,
    scope: &Scope,
    f: &SnapshotFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<SnapshotRow>, i64), DbError> {
    let mut sql = SNAPSHOT_SELECT.to_owned();
    let mut args = Vec::new();
    scope.push(&mut sql, &mut args, "n.account_id", "d.path", "n.domain_id");
    for (col, v) in [("n.uuid", &f.uuid), ("n.name", &f.name)] {
        if let Some(v) = v {
            eq(&mut sql, &mut args, col, Arg::Text(v.clone()));
        }
    }
    for (col, v) in [("n.volume_id", f.volume_id), ("n.zone_id", f.zone_id)] {
        if let Some(v) = v {
            eq(&mut sql, &mut args, col, Arg::Int(v));
        }
    }
    if let Some(k) = &f.keyword {
        keyword(&mut sql, &mut args, "n.name", k);
    }
    if f.secondary_only {
        sql.push_str(" AND n.location_type = 'SECONDARY'");
    }
    fetch_page(db, sql, &args, "n.id", page).await
}

pub async fn snapshot(db: &Db, uuid: &str) -> Result<Option<SnapshotRow>, DbError> {
    let f = SnapshotFilter { uuid: Some(uuid.into()), ..Default::default() };
    Ok(list_snapshots(db, &Scope::default(), &f, None).await?.0.into_iter().next())
}

/// The live snapshots of a volume.
pub async fn snapshots_of(db: &Db, volume_id: i64) -> Result<Vec<SnapshotRow>, DbError> {
    let f = SnapshotFilter { volume_id: Some(volume_id), ..Default::default() };
    Ok(list_snapshots(db, &Scope::default(), &f, None).await?.0)
}

/// A volume the driver has made, to record.
pub struct NewVolume {
    pub uuid: String,
    pub name: String,
    pub account_id: i64,
    pub domain_id: i64,
    pub zone_id: i64,
    pub pool_id: i64,
    pub disk_offering_id: Option<i64>,
    pub template_id: Option<i64>,
    pub size_bytes: i64,
    pub physical_bytes: i64,
    pub path: String,
    pub provisioning_type: String,
}

/// Records a new data disk and counts its size as allocated on its pool, together.
pub async fn create_volume(db: &Db, v: NewVolume) -> Result<(), DbError> {
    insert_volume(db, v, "Ready").await
}

/// Records a volume about to be made (state Creating, no path yet), so that a server
/// stopped while its driver makes it still knows of it; `volume_made` completes it.
pub async fn plan_volume(db: &Db, v: NewVolume) -> Result<(), DbError> {
    insert_volume(db, v, "Creating").await
}

/// Completes a planned volume with what its driver made, its size allocated anew.
pub async fn volume_made(db: &Db, uuid: &str, path: &str, size_bytes: i64, physical_bytes: i64) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    let (pool_id, planned): (i64, i64) = sqlx::query_as("SELECT pool_id, size_bytes FROM volumes WHERE uuid = $1")
        .bind(uuid)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query("UPDATE volumes SET path = $1, size_bytes = $2, physical_bytes = $3, state = 'Ready' WHERE uuid = $4")
        .bind(path)
        .bind(size_bytes)
        .bind(physical_bytes)
        .bind(uuid)
        .execute(&mut *tx)
        .await?;
    allocate(&mut tx, pool_id, size_bytes - planned).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_volume(db: &Db, v: NewVolume, state: &str) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO volumes (uuid, name, account_id, domain_id, zone_id, pool_id, disk_offering_id, \
         volume_type, state, size_bytes, physical_bytes, path, provisioning_type, created, template_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'DATADISK', $14, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&v.uuid)
    .bind(&v.name)
    .bind(v.account_id)
    .bind(v.domain_id)
    .bind(v.zone_id)
    .bind(v.pool_id)
    .bind(v.disk_offering_id)
    .bind(v.size_bytes)
    .bind(v.physical_bytes)
    .bind(&v.path)
    .bind(&v.provisioning_type)
    .bind(now_ms())
    .bind(v.template_id)
    .bind(state)
    .execute(&mut *tx)
    .await?;
    allocate(&mut tx, v.pool_id, v.size_bytes).await?;
    tx.commit().await?;
    Ok(())
}

async fn allocate(tx: &mut sqlx::Transaction<'static, sqlx::Any>, pool_id: i64, delta: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE storage_pools SET allocated_bytes = allocated_bytes + $1 WHERE id = $2")
        .bind(delta)
        .bind(pool_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Moves a volume from state `from` to `to`; false when it was not in `from` (another
/// operation holds it), so two operations never work on one file at once.
pub async fn transition(db: &Db, id: i64, from: &str, to: &str) -> Result<bool, DbError> {
    let done = sqlx::query("UPDATE volumes SET state = $1 WHERE id = $2 AND state = $3 AND removed IS NULL")
        .bind(to)
        .bind(id)
        .bind(from)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a volume's new size (and offering), adjusting its pool's allocation.
pub async fn resized(
    db: &Db,
    v: &VolumeRow,
    size_bytes: i64,
    physical_bytes: i64,
    disk_offering_id: Option<i64>,
) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE volumes SET size_bytes = $1, physical_bytes = $2, disk_offering_id = $3, state = 'Ready' WHERE id = $4",
    )
    .bind(size_bytes)
    .bind(physical_bytes)
    .bind(disk_offering_id)
    .bind(v.id)
    .execute(&mut *tx)
    .await?;
    allocate(&mut tx, v.pool_id, size_bytes - v.size_bytes).await?;
    tx.commit().await?;
    Ok(())
}

/// Marks a volume and its snapshots removed and frees its pool allocation.
pub async fn remove_volume(db: &Db, v: &VolumeRow) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    let now = now_ms();
    sqlx::query("UPDATE snapshots SET removed = $1, state = 'Destroyed' WHERE volume_id = $2 AND removed IS NULL")
        .bind(now)
        .bind(v.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE volumes SET removed = $1, state = 'Expunged' WHERE id = $2")
        .bind(now)
        .bind(v.id)
        .execute(&mut *tx)
        .await?;
    allocate(&mut tx, v.pool_id, -v.size_bytes).await?;
    tx.commit().await?;
    Ok(())
}

/// A snapshot the driver has taken, to record.
pub struct NewSnapshot {
    pub uuid: String,
    pub name: String,
    pub volume_id: i64,
    pub account_id: i64,
    pub domain_id: i64,
    pub zone_id: i64,
    pub virtual_bytes: i64,
    pub physical_bytes: i64,
}

pub async fn create_snapshot(db: &Db, s: NewSnapshot) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO snapshots (uuid, name, volume_id, account_id, domain_id, zone_id, state, virtual_bytes, \
         physical_bytes, created) VALUES ($1, $2, $3, $4, $5, $6, 'CreatedOnPrimary', $7, $8, $9)",
    )
    .bind(s.uuid)
    .bind(s.name)
    .bind(s.volume_id)
    .bind(s.account_id)
    .bind(s.domain_id)
    .bind(s.zone_id)
    .bind(s.virtual_bytes)
    .bind(s.physical_bytes)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Records that a snapshot now also has a copy in an image store.
pub async fn backed_up(db: &Db, id: i64, store_id: i64, path: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE snapshots SET location_type = 'SECONDARY', state = 'BackedUp', store_id = $1, store_path = $2 WHERE id = $3",
    )
    .bind(store_id)
    .bind(path)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn remove_snapshot(db: &Db, id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE snapshots SET removed = $1, state = 'Destroyed' WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// A fresh UUID for a volume or snapshot: known before the driver makes the file, so
/// the async-create reply can name it and the driver can use it as the file name.
pub fn next_uuid() -> String {
    new_uuid()
}
