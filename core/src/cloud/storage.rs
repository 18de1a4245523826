//! Queries on primary storage pools and image stores.

use sqlx::FromRow;

use crate::auth::store::{Arg, fetch_page, like_escape};
use crate::db::{Db, DbError, new_uuid, now_ms};

#[derive(Debug, Clone, FromRow)]
pub struct PoolRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub zone_id: i64,
    pub zone_uuid: String,
    pub zone_name: String,
    pub pod_id: Option<i64>,
    pub pod_uuid: Option<String>,
    pub pod_name: Option<String>,
    pub cluster_id: Option<i64>,
    pub cluster_uuid: Option<String>,
    pub cluster_name: Option<String>,
    pub host_id: Option<i64>,
    pub scope: String,
    pub url: String,
    pub driver: String,
    pub driver_version: String,
    pub pool_type: String,
    pub address: String,
    pub path: String,
    pub hypervisor: Option<String>,
    pub state: String,
    pub capacity_bytes: i64,
    pub used_bytes: i64,
    pub allocated_bytes: i64,
    pub tags: Option<String>,
    pub created: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct StoreRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub zone_id: Option<i64>,
    pub zone_uuid: Option<String>,
    pub zone_name: Option<String>,
    pub url: String,
    pub protocol: String,
    pub provider: String,
    pub driver: String,
    pub scope: String,
    pub read_only: i64,
    pub capacity_bytes: i64,
    pub used_bytes: i64,
    pub created: i64,
}

const POOL_SELECT: &str = "SELECT s.id, s.uuid, s.name, s.zone_id, z.uuid AS zone_uuid, z.name AS zone_name, \
     s.pod_id, p.uuid AS pod_uuid, p.name AS pod_name, s.cluster_id, c.uuid AS cluster_uuid, c.name AS cluster_name, \
     s.host_id, s.scope, s.url, s.driver, s.driver_version, s.pool_type, s.address, s.path, s.hypervisor, s.state, s.capacity_bytes, \
     s.used_bytes, s.allocated_bytes, s.tags, s.created FROM storage_pools s JOIN zones z ON z.id = s.zone_id \
     LEFT JOIN pods p ON p.id = s.pod_id LEFT JOIN clusters c ON c.id = s.cluster_id WHERE s.removed IS NULL";

const STORE_SELECT: &str = "SELECT i.id, i.uuid, i.name, i.zone_id, z.uuid AS zone_uuid, z.name AS zone_name, i.url, \
     i.protocol, i.provider, i.driver, i.scope, i.read_only, i.capacity_bytes, i.used_bytes, i.created \
     FROM image_stores i LEFT JOIN zones z ON z.id = i.zone_id WHERE i.removed IS NULL";

/// Filters of the storage listings.
#[derive(Debug, Default, Clone)]
pub struct StorageFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub zone_id: Option<i64>,
    pub pod_id: Option<i64>,
    pub cluster_id: Option<i64>,
    pub scope: Option<String>,
    pub keyword: Option<String>,
}

fn apply(f: &StorageFilter, sql: &mut String, args: &mut Vec<Arg>, alias: &str, pool: bool) {
    for (col, v) in [("uuid", &f.uuid), ("name", &f.name)] {
        if let Some(v) = v {
            args.push(Arg::Text(v.clone()));
            sql.push_str(&format!(" AND {alias}.{col} = ${}", args.len()));
        }
    }
    let ints =
        [("zone_id", f.zone_id), ("pod_id", f.pod_id.filter(|_| pool)), ("cluster_id", f.cluster_id.filter(|_| pool))];
    for (col, v) in ints {
        if let Some(v) = v {
            args.push(Arg::Int(v));
            sql.push_str(&format!(" AND {alias}.{col} = ${}", args.len()));
        }
    }
    if let Some(s) = &f.scope {
        args.push(Arg::Text(s.to_ascii_uppercase()));
        sql.push_str(&format!(" AND {alias}.scope = ${}", args.len()));
    }
    if let Some(k) = &f.keyword {
        args.push(Arg::Text(format!("%{}%", like_escape(&k.to_ascii_lowercase()))));
        sql.push_str(&format!(" AND LOWER({alias}.name) LIKE ${} ESCAPE '\\'", args.len()));
    }
}

pub async fn list_pools(db: &Db, f: &StorageFilter, page: Option<(u32, u32)>) -> Result<(Vec<PoolRow>, i64), DbError> {
    let mut sql = POOL_SELECT.to_owned();
    let mut args = Vec::new();
    apply(f, &mut sql, &mut args, "s", true);
    fetch_page(db, sql, &args, "s.id", page).await
}

pub async fn list_stores(
    db: &Db,
    f: &StorageFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<StoreRow>, i64), DbError> {
    let mut sql = STORE_SELECT.to_owned();
    let mut args = Vec::new();
    apply(f, &mut sql, &mut args, "i", false);
    fetch_page(db, sql, &args, "i.id", page).await
}

pub async fn pool(db: &Db, uuid: &str) -> Result<Option<PoolRow>, DbError> {
    Ok(list_pools(db, &StorageFilter { uuid: Some(uuid.into()), ..Default::default() }, None)
        .await?
        .0
        .into_iter()
        .next())
}

pub async fn store(db: &Db, uuid: &str) -> Result<Option<StoreRow>, DbError> {
    Ok(list_stores(db, &StorageFilter { uuid: Some(uuid.into()), ..Default::default() }, None)
        .await?
        .0
        .into_iter()
        .next())
}

/// A pool to create.
pub struct NewPool {
    pub name: String,
    pub zone_id: i64,
    pub pod_id: Option<i64>,
    pub cluster_id: Option<i64>,
    pub host_id: Option<i64>,
    pub scope: String,
    pub url: String,
    pub driver: String,
    pub driver_version: String,
    pub pool_type: String,
    pub address: String,
    pub path: String,
    pub hypervisor: Option<String>,
    pub capacity_bytes: i64,
    pub used_bytes: i64,
    pub tags: Option<String>,
}

/// Renames a pool and/or sets its tags (`Some(None)`: no tags); `None` leaves a field as it is.
pub async fn update_pool(db: &Db, id: i64, name: Option<&str>, tags: Option<Option<String>>) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    if let Some(name) = name {
        sqlx::query("UPDATE storage_pools SET name = $1 WHERE id = $2").bind(name).bind(id).execute(&mut *tx).await?;
    }
    if let Some(tags) = tags {
        sqlx::query("UPDATE storage_pools SET tags = $1 WHERE id = $2").bind(tags).bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn create_pool(db: &Db, p: NewPool) -> Result<String, DbError> {
    let uuid = new_uuid();
    sqlx::query(
        "INSERT INTO storage_pools (uuid, name, zone_id, pod_id, cluster_id, host_id, scope, url, driver, pool_type, \
         address, path, hypervisor, state, capacity_bytes, used_bytes, allocated_bytes, tags, created, driver_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'Up', $14, $15, 0, $16, $17, $18)",
    )
    .bind(&uuid)
    .bind(p.name)
    .bind(p.zone_id)
    .bind(p.pod_id)
    .bind(p.cluster_id)
    .bind(p.host_id)
    .bind(p.scope)
    .bind(p.url)
    .bind(p.driver)
    .bind(p.pool_type)
    .bind(p.address)
    .bind(p.path)
    .bind(p.hypervisor)
    .bind(p.capacity_bytes)
    .bind(p.used_bytes)
    .bind(p.tags)
    .bind(now_ms())
    .bind(p.driver_version)
    .execute(db.pool())
    .await?;
    Ok(uuid)
}

/// An image store to create.
pub struct NewStore {
    pub name: String,
    pub zone_id: Option<i64>,
    pub url: String,
    pub protocol: String,
    pub provider: String,
    pub driver: String,
    pub capacity_bytes: i64,
    pub used_bytes: i64,
}

pub async fn create_store(db: &Db, s: NewStore) -> Result<String, DbError> {
    let uuid = new_uuid();
    let scope = if s.zone_id.is_some() { "ZONE" } else { "REGION" };
    sqlx::query(
        "INSERT INTO image_stores (uuid, name, zone_id, url, protocol, provider, driver, scope, read_only, \
         capacity_bytes, used_bytes, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11)",
    )
    .bind(&uuid)
    .bind(s.name)
    .bind(s.zone_id)
    .bind(s.url)
    .bind(s.protocol)
    .bind(s.provider)
    .bind(s.driver)
    .bind(scope)
    .bind(s.capacity_bytes)
    .bind(s.used_bytes)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(uuid)
}

/// Records fresh capacity figures for a pool or store (`table` from the code only).
pub async fn set_capacity(db: &Db, table: &str, id: i64, capacity: i64, used: i64) -> Result<(), DbError> {
    sqlx::query(&format!("UPDATE {table} SET capacity_bytes = $1, used_bytes = $2 WHERE id = $3"))
        .bind(capacity)
        .bind(used)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}
