//! Queries on templates and ISOs and their copies on primary pools.

use sqlx::FromRow;

use crate::auth::store::{Arg, fetch_page, like_escape};
use crate::db::{Db, DbError, now_ms};

#[derive(Debug, Clone, FromRow)]
pub struct TemplateRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub display_text: String,
    pub format: String,
    pub is_iso: i64,
    pub hypervisor: String,
    pub os_type_uuid: Option<String>,
    pub os_type_name: Option<String>,
    pub account_id: i64,
    pub account_uuid: String,
    pub account_name: String,
    /// The owning account's type, for who may reach the template.
    pub account_type: i64,
    pub domain_uuid: String,
    pub domain_name: String,
    pub domain_path: String,
    pub is_public: i64,
    pub is_featured: i64,
    pub is_extractable: i64,
    pub password_enabled: i64,
    pub bootable: i64,
    pub url: String,
    pub checksum: Option<String>,
    pub template_type: String,
    pub zone_id: i64,
    pub zone_uuid: String,
    pub zone_name: String,
    pub store_id: i64,
    pub store_url: String,
    pub store_driver: String,
    pub path: Option<String>,
    pub state: String,
    pub status: String,
    pub size: i64,
    pub physical_size: i64,
    pub created: i64,
    /// The stored userdata linked to the template (linkUserDataToTemplate), if any.
    pub user_data_uuid: Option<String>,
    pub user_data_name: Option<String>,
    /// The linked userdata's declared parameters, comma-separated ("" when none).
    pub user_data_params: Option<String>,
    pub user_data_policy: Option<String>,
}

impl crate::auth::Owned for TemplateRow {
    fn owner(&self) -> crate::auth::Owner<'_> {
        crate::auth::Owner {
            account_id: self.account_id,
            account_type: self.account_type,
            domain_path: &self.domain_path,
        }
    }
}

const SELECT: &str = "SELECT t.id, t.uuid, t.name, t.display_text, t.format, t.is_iso, t.hypervisor, \
     o.uuid AS os_type_uuid, o.description AS os_type_name, t.account_id, a.uuid AS account_uuid, a.name AS account_name, \
     a.account_type, \
     d.uuid AS domain_uuid, d.name AS domain_name, d.path AS domain_path, t.is_public, t.is_featured, t.is_extractable, \
     t.password_enabled, t.bootable, t.url, t.checksum, t.template_type, t.zone_id, z.uuid AS zone_uuid, \
     z.name AS zone_name, t.store_id, s.url AS store_url, s.driver AS store_driver, t.path, t.state, t.status, t.size, \
     t.physical_size, t.created, ud.uuid AS user_data_uuid, ud.name AS user_data_name, \
     ud.params AS user_data_params, t.user_data_policy \
     FROM templates t JOIN accounts a ON a.id = t.account_id JOIN domains d ON d.id = a.domain_id \
     JOIN zones z ON z.id = t.zone_id JOIN image_stores s ON s.id = t.store_id \
     LEFT JOIN os_types o ON o.id = t.os_type_id LEFT JOIN user_data ud ON ud.id = t.user_data_id \
     WHERE t.removed IS NULL";

/// Which templates a listing shows.
#[derive(Debug, Default, Clone)]
pub struct TemplateFilter {
    pub iso: bool,
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub zone_id: Option<i64>,
    pub keyword: Option<String>,
    pub hypervisor: Option<String>,
    /// Only these owners' templates (plus public ones when `public` is set).
    pub owner: Option<i64>,
    /// Owners in a domain subtree (plus public ones when `public` is set).
    pub domain_prefix: Option<String>,
    /// Owners of these account types only (plus public ones when `public` is set).
    pub account_types: Option<Vec<i64>>,
    /// Include other accounts' public templates.
    pub public: bool,
    pub only_public: bool,
    pub featured: Option<bool>,
    pub ready_only: bool,
}

pub async fn list(db: &Db, f: &TemplateFilter, page: Option<(u32, u32)>) -> Result<(Vec<TemplateRow>, i64), DbError> {
    let mut sql = SELECT.to_owned();
    let mut args = Vec::new();
    sql.push_str(if f.iso { " AND t.is_iso = 1" } else { " AND t.is_iso = 0" });
    for (col, v) in [("t.uuid", &f.uuid), ("t.name", &f.name)] {
        if let Some(v) = v {
            args.push(Arg::Text(v.clone()));
            sql.push_str(&format!(" AND {col} = ${}", args.len()));
        }
    }
    if let Some(z) = f.zone_id {
        args.push(Arg::Int(z));
        sql.push_str(&format!(" AND t.zone_id = ${}", args.len()));
    }
    if let Some(h) = &f.hypervisor {
        args.push(Arg::Text(h.to_ascii_lowercase()));
        sql.push_str(&format!(" AND LOWER(t.hypervisor) = ${}", args.len()));
    }
    if let Some(k) = &f.keyword {
        args.push(Arg::Text(format!("%{}%", like_escape(&k.to_ascii_lowercase()))));
        sql.push_str(&format!(" AND LOWER(t.name) LIKE ${} ESCAPE '\\'", args.len()));
    }
    let mut owned = Vec::new();
    if let Some(o) = f.owner {
        args.push(Arg::Int(o));
        owned.push(format!("t.account_id = ${}", args.len()));
    }
    if let Some(p) = &f.domain_prefix {
        args.push(Arg::Text(format!("{}%", like_escape(p))));
        owned.push(format!("d.path LIKE ${} ESCAPE '\\'", args.len()));
    }
    if let Some(types) = &f.account_types {
        let types = types.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        owned.push(format!("a.account_type IN ({types})"));
    }
    let mine = if owned.is_empty() { None } else { Some(owned.join(" AND ")) };
    match (mine, f.public, f.only_public) {
        (_, _, true) => sql.push_str(" AND t.is_public = 1"),
        (Some(m), true, _) => sql.push_str(&format!(" AND (({m}) OR t.is_public = 1)")),
        (Some(m), false, _) => sql.push_str(&format!(" AND {m}")),
        (None, _, _) => {}
    }
    if let Some(featured) = f.featured {
        sql.push_str(if featured { " AND t.is_featured = 1" } else { " AND t.is_featured = 0" });
    }
    if f.ready_only {
        sql.push_str(" AND t.state = 'Ready'");
    }
    fetch_page(db, sql, &args, "t.id", page).await
}

/// Every zone row of a template (or ISO) id.
pub async fn by_uuid(db: &Db, uuid: &str, iso: bool) -> Result<Vec<TemplateRow>, DbError> {
    let f = TemplateFilter { iso, uuid: Some(uuid.into()), ..Default::default() };
    Ok(list(db, &f, None).await?.0)
}

/// A template to register in one zone.
pub struct NewTemplate {
    pub uuid: String,
    pub name: String,
    pub display_text: String,
    pub format: String,
    pub is_iso: bool,
    pub hypervisor: String,
    pub os_type_id: Option<i64>,
    pub account_id: i64,
    pub is_public: bool,
    pub is_featured: bool,
    pub is_extractable: bool,
    pub password_enabled: bool,
    pub bootable: bool,
    pub url: String,
    pub checksum: Option<String>,
    pub zone_id: i64,
    pub store_id: i64,
}

/// Adds a template row within `tx` (the caller commits it, with the event or job that
/// goes with it).
pub async fn create(tx: &mut sqlx::AnyConnection, t: &NewTemplate) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO templates (uuid, name, display_text, format, is_iso, hypervisor, os_type_id, account_id, is_public, \
         is_featured, is_extractable, password_enabled, bootable, url, checksum, template_type, zone_id, store_id, \
         state, status, size, physical_size, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, 'USER', $16, $17, 'Downloading', 'Downloading', 0, 0, $18) RETURNING id",
    )
    .bind(&t.uuid)
    .bind(&t.name)
    .bind(&t.display_text)
    .bind(&t.format)
    .bind(t.is_iso as i64)
    .bind(&t.hypervisor)
    .bind(t.os_type_id)
    .bind(t.account_id)
    .bind(t.is_public as i64)
    .bind(t.is_featured as i64)
    .bind(t.is_extractable as i64)
    .bind(t.password_enabled as i64)
    .bind(t.bootable as i64)
    .bind(&t.url)
    .bind(&t.checksum)
    .bind(t.zone_id)
    .bind(t.store_id)
    .bind(now_ms())
    .fetch_one(tx)
    .await?)
}

/// Records the end of a download: ready with its path and sizes, or failed with why.
pub async fn finish(db: &Db, id: i64, outcome: Result<(String, i64, i64), String>) -> Result<(), DbError> {
    match outcome {
        Ok((path, size, physical)) => {
            sqlx::query(
                "UPDATE templates SET state = 'Ready', status = 'Download Complete', path = $1, size = $2, \
                 physical_size = $3 WHERE id = $4",
            )
            .bind(path)
            .bind(size)
            .bind(physical)
            .bind(id)
            .execute(db.pool())
            .await?;
        }
        Err(why) => {
            sqlx::query("UPDATE templates SET state = 'Error', status = $1 WHERE id = $2")
                .bind(why)
                .bind(id)
                .execute(db.pool())
                .await?;
        }
    }
    Ok(())
}

/// Downloads a stopped server left unfinished are failed at the next start.
pub async fn fail_interrupted(db: &Db) -> Result<u64, DbError> {
    let done = sqlx::query(
        "UPDATE templates SET state = 'Error', status = 'The download was interrupted by a server restart; register it again' \
         WHERE state = 'Downloading' AND removed IS NULL",
    )
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

/// Where a template already sits on a pool, if it was installed there.
pub async fn on_pool(db: &Db, template_id: i64, pool_id: i64) -> Result<Option<String>, DbError> {
    Ok(sqlx::query_scalar("SELECT path FROM template_pools WHERE template_id = $1 AND pool_id = $2")
        .bind(template_id)
        .bind(pool_id)
        .fetch_optional(db.pool())
        .await?)
}

/// Records a pool copy; a concurrent install of the same copy is not an error.
pub async fn record_on_pool(db: &Db, template_id: i64, pool_id: i64, path: &str) -> Result<(), DbError> {
    let sql = match db.backend() {
        crate::db::Backend::Sqlite => {
            "INSERT OR IGNORE INTO template_pools (template_id, pool_id, path, created) VALUES ($1, $2, $3, $4)"
        }
        crate::db::Backend::Postgres => {
            "INSERT INTO template_pools (template_id, pool_id, path, created) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
        }
    };
    sqlx::query(sql).bind(template_id).bind(pool_id).bind(path).bind(now_ms()).execute(db.pool()).await?;
    Ok(())
}

/// Pool copies of a template: (pool URL, pool driver, path).
pub async fn pool_copies(db: &Db, template_id: i64) -> Result<Vec<(String, String, String)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT s.url, s.driver, tp.path FROM template_pools tp JOIN storage_pools s ON s.id = tp.pool_id WHERE tp.template_id = $1",
    )
    .bind(template_id)
    .fetch_all(db.pool())
    .await?)
}

/// Removes a template's zone row and its pool-copy records.
pub async fn remove(db: &Db, id: i64) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM template_pools WHERE template_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("UPDATE templates SET removed = $1 WHERE id = $2").bind(now_ms()).bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Changes the given attributes of every zone's row of a template.
pub async fn update(
    db: &Db,
    uuid: &str,
    name: Option<&str>,
    display_text: Option<&str>,
    password_enabled: Option<bool>,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE templates SET name = COALESCE($1, name), display_text = COALESCE($2, display_text), \
         password_enabled = COALESCE($3, password_enabled) WHERE uuid = $4 AND removed IS NULL",
    )
    .bind(name)
    .bind(display_text)
    .bind(password_enabled.map(i64::from))
    .bind(uuid)
    .execute(db.pool())
    .await?;
    Ok(())
}
