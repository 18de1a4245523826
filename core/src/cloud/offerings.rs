//! Queries on service offerings, disk offerings and guest OS types.

use sqlx::FromRow;

use crate::auth::store::{Arg, fetch_page, like_escape};
use crate::db::{Db, DbError, new_uuid, now_ms};

#[derive(Debug, Clone, FromRow)]
pub struct ServiceOfferingRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub display_text: String,
    pub cpu_number: Option<i64>,
    pub cpu_speed: Option<i64>,
    pub memory_mb: Option<i64>,
    pub storage_type: String,
    pub offer_ha: i64,
    pub limit_cpu_use: i64,
    pub host_tags: Option<String>,
    pub storage_tags: Option<String>,
    pub root_disk_gb: Option<i64>,
    pub is_system: i64,
    pub created: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct DiskOfferingRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub display_text: String,
    pub disk_size_gb: i64,
    pub customized: i64,
    pub storage_type: String,
    pub tags: Option<String>,
    pub provisioning_type: String,
    pub created: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct OsTypeRow {
    pub id: i64,
    pub uuid: String,
    pub description: String,
    pub category: String,
    pub category_uuid: String,
}

/// Filters of the offering listings.
#[derive(Debug, Default)]
pub struct OfferingFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub keyword: Option<String>,
}

fn filter(sql: &mut String, args: &mut Vec<Arg>, f: &OfferingFilter, text_col: &str) {
    if let Some(v) = &f.uuid {
        args.push(Arg::Text(v.clone()));
        sql.push_str(&format!(" AND uuid = ${}", args.len()));
    }
    if let Some(v) = &f.name {
        args.push(Arg::Text(v.clone()));
        sql.push_str(&format!(" AND name = ${}", args.len()));
    }
    if let Some(k) = &f.keyword {
        args.push(Arg::Text(format!("%{}%", like_escape(&k.to_ascii_lowercase()))));
        sql.push_str(&format!(" AND LOWER({text_col}) LIKE ${} ESCAPE '\\'", args.len()));
    }
}

pub async fn list_service(
    db: &Db,
    f: &OfferingFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<ServiceOfferingRow>, i64), DbError> {
    let mut sql = "SELECT id, uuid, name, display_text, cpu_number, cpu_speed, memory_mb, storage_type, offer_ha, \
                   limit_cpu_use, host_tags, storage_tags, root_disk_gb, is_system, created FROM service_offerings \
                   WHERE removed IS NULL"
        .to_owned();
    let mut args = Vec::new();
    filter(&mut sql, &mut args, f, "name");
    fetch_page(db, sql, &args, "id", page).await
}

pub async fn list_disk(
    db: &Db,
    f: &OfferingFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<DiskOfferingRow>, i64), DbError> {
    let mut sql =
        "SELECT id, uuid, name, display_text, disk_size_gb, customized, storage_type, tags, provisioning_type, \
                   created FROM disk_offerings WHERE removed IS NULL"
            .to_owned();
    let mut args = Vec::new();
    filter(&mut sql, &mut args, f, "name");
    fetch_page(db, sql, &args, "id", page).await
}

pub async fn list_os_types(
    db: &Db,
    f: &OfferingFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<OsTypeRow>, i64), DbError> {
    let mut sql = "SELECT t.id, t.uuid, t.description, t.category, c.uuid AS category_uuid \
                   FROM os_types t JOIN os_categories c ON c.name = t.category WHERE 1 = 1"
        .to_owned();
    let mut args = Vec::new();
    if let Some(v) = &f.uuid {
        args.push(Arg::Text(v.clone()));
        sql.push_str(&format!(" AND t.uuid = ${}", args.len()));
    }
    if let Some(v) = &f.name {
        args.push(Arg::Text(v.clone()));
        sql.push_str(&format!(" AND t.description = ${}", args.len()));
    }
    if let Some(k) = &f.keyword {
        args.push(Arg::Text(format!("%{}%", like_escape(&k.to_ascii_lowercase()))));
        sql.push_str(&format!(" AND LOWER(t.description) LIKE ${} ESCAPE '\\'", args.len()));
    }
    fetch_page(db, sql, &args, "t.id", page).await
}

/// A service offering to create.
pub struct NewServiceOffering {
    pub name: String,
    pub display_text: String,
    pub cpu_number: Option<i64>,
    pub cpu_speed: Option<i64>,
    pub memory_mb: Option<i64>,
    pub storage_type: String,
    pub offer_ha: bool,
    pub limit_cpu_use: bool,
    pub host_tags: Option<String>,
    pub storage_tags: Option<String>,
    pub root_disk_gb: Option<i64>,
}

pub async fn create_service(db: &Db, o: NewServiceOffering) -> Result<String, DbError> {
    let uuid = new_uuid();
    sqlx::query(
        "INSERT INTO service_offerings (uuid, name, display_text, cpu_number, cpu_speed, memory_mb, storage_type, \
         offer_ha, limit_cpu_use, host_tags, storage_tags, root_disk_gb, is_system, created) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13)",
    )
    .bind(&uuid)
    .bind(o.name)
    .bind(o.display_text)
    .bind(o.cpu_number)
    .bind(o.cpu_speed)
    .bind(o.memory_mb)
    .bind(o.storage_type)
    .bind(o.offer_ha as i64)
    .bind(o.limit_cpu_use as i64)
    .bind(o.host_tags)
    .bind(o.storage_tags)
    .bind(o.root_disk_gb)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(uuid)
}

/// A disk offering to create.
pub struct NewDiskOffering {
    pub name: String,
    pub display_text: String,
    pub disk_size_gb: i64,
    pub customized: bool,
    pub storage_type: String,
    pub tags: Option<String>,
    pub provisioning_type: String,
}

pub async fn create_disk(db: &Db, o: NewDiskOffering) -> Result<String, DbError> {
    let uuid = new_uuid();
    sqlx::query(
        "INSERT INTO disk_offerings (uuid, name, display_text, disk_size_gb, customized, storage_type, tags, \
         provisioning_type, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&uuid)
    .bind(o.name)
    .bind(o.display_text)
    .bind(o.disk_size_gb)
    .bind(o.customized as i64)
    .bind(o.storage_type)
    .bind(o.tags)
    .bind(o.provisioning_type)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(uuid)
}
