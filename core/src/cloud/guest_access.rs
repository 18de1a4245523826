//! What a guest is given to let its owner in: accounts' SSH key pairs, stored userdata,
//! the keys, userdata and one-time password each instance holds, and templates' linked
//! userdata. The metadata and password services and the config drive read these.

use sqlx::FromRow;

use crate::auth::store::{Arg, Scope, fetch_page, like_escape};
use crate::db::{Db, DbError, new_uuid, now_ms};

#[derive(Debug, thiserror::Error)]
pub enum GuestAccessError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// The account already has a key pair (or userdata) of this name.
    #[error("name {0} is taken")]
    NameTaken(String),
    /// The account already has a key pair with this public key (the other pair's name).
    #[error("key is registered as {0}")]
    KeyTaken(String),
}

impl From<sqlx::Error> for GuestAccessError {
    fn from(e: sqlx::Error) -> Self {
        GuestAccessError::Db(e.into())
    }
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

const OWNER_COLUMNS: &str = "a.name AS account_name, a.uuid AS account_uuid, a.account_type, \
     d.uuid AS domain_uuid, d.name AS domain_name, d.path AS domain_path";

#[derive(Debug, Clone, FromRow)]
pub struct KeyPairRow {
    pub id: i64,
    pub uuid: String,
    pub account_id: i64,
    pub domain_id: i64,
    pub name: String,
    pub fingerprint: String,
    pub public_key: String,
    pub created: i64,
    pub account_name: String,
    pub account_uuid: String,
    pub account_type: i64,
    pub domain_uuid: String,
    pub domain_name: String,
    pub domain_path: String,
}

impl crate::auth::Owned for KeyPairRow {
    fn owner(&self) -> crate::auth::Owner<'_> {
        crate::auth::Owner {
            account_id: self.account_id,
            account_type: self.account_type,
            domain_path: &self.domain_path,
        }
    }
}

fn keypair_select() -> String {
    format!(
        "SELECT k.id, k.uuid, k.account_id, k.domain_id, k.name, k.fingerprint, k.public_key, k.created, \
         {OWNER_COLUMNS} FROM ssh_keypairs k JOIN accounts a ON a.id = k.account_id \
         JOIN domains d ON d.id = k.domain_id WHERE k.removed IS NULL"
    )
}

#[derive(Debug, Default, Clone)]
pub struct KeyPairFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub fingerprint: Option<String>,
    pub keyword: Option<String>,
}

/// The key pairs a scope sees, filtered; returns (page, total).
pub async fn list_keypairs(
    db: &Db,
    scope: &Scope,
    f: &KeyPairFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<KeyPairRow>, i64), DbError> {
    let mut sql = keypair_select();
    let mut args = Vec::new();
    scope.push(&mut sql, &mut args, "k.account_id", "d.path", "k.domain_id");
    let mut eq = |col: &str, v: &Option<String>| {
        if let Some(v) = v {
            args.push(Arg::Text(v.clone()));
            sql.push_str(&format!(" AND {col} = ${}", args.len()));
        }
    };
    eq("k.uuid", &f.uuid);
    eq("k.name", &f.name);
    eq("k.fingerprint", &f.fingerprint);
    if let Some(k) = &f.keyword {
        args.push(Arg::Text(format!("%{}%", like_escape(&k.to_ascii_lowercase()))));
        sql.push_str(&format!(" AND LOWER(k.name) LIKE ${} ESCAPE '\\'", args.len()));
    }
    fetch_page(db, sql, &args, "k.id", page).await
}

/// An account's key pairs of these names (those that exist).
pub async fn keypairs_named(db: &Db, account_id: i64, names: &[String]) -> Result<Vec<KeyPairRow>, DbError> {
    let mut out = Vec::new();
    for name in names {
        let sql = format!("{} AND k.account_id = $1 AND k.name = $2", keypair_select());
        if let Some(k) =
            sqlx::query_as::<_, KeyPairRow>(&sql).bind(account_id).bind(name).fetch_optional(db.pool()).await?
        {
            out.push(k);
        }
    }
    Ok(out)
}

/// A key pair to record.
pub struct NewKeyPair<'a> {
    pub account_id: i64,
    pub domain_id: i64,
    pub name: &'a str,
    pub fingerprint: &'a str,
    pub public_key: &'a str,
}

/// Records a key pair unless the account has one of that name or with that key; returns its uuid.
pub async fn insert_keypair(db: &Db, k: &NewKeyPair<'_>) -> Result<String, GuestAccessError> {
    let mut tx = db.begin().await?;
    let same_key: Option<String> = sqlx::query_scalar(
        "SELECT name FROM ssh_keypairs WHERE account_id = $1 AND public_key = $2 AND removed IS NULL",
    )
    .bind(k.account_id)
    .bind(k.public_key)
    .fetch_optional(&mut *tx)
    .await?;
    let same_name: Option<i64> =
        sqlx::query_scalar("SELECT id FROM ssh_keypairs WHERE account_id = $1 AND name = $2 AND removed IS NULL")
            .bind(k.account_id)
            .bind(k.name)
            .fetch_optional(&mut *tx)
            .await?;
    if same_name.is_some() {
        return Err(GuestAccessError::NameTaken(k.name.to_owned()));
    }
    if let Some(other) = same_key {
        return Err(GuestAccessError::KeyTaken(other));
    }
    let uuid = new_uuid();
    let inserted = sqlx::query(
        "INSERT INTO ssh_keypairs (uuid, account_id, domain_id, name, fingerprint, public_key, created) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&uuid)
    .bind(k.account_id)
    .bind(k.domain_id)
    .bind(k.name)
    .bind(k.fingerprint)
    .bind(k.public_key)
    .bind(now_ms())
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        // A concurrent register of the same name won.
        Err(e) if unique_violation(&e) => return Err(GuestAccessError::NameTaken(k.name.to_owned())),
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(uuid)
}

pub async fn remove_keypair(db: &Db, id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE ssh_keypairs SET removed = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Gives an instance these keys (name, public key), replacing those it had, within `tx`.
pub async fn set_instance_keys(
    tx: &mut sqlx::AnyConnection,
    instance_id: i64,
    keys: &[(String, String)],
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM instance_ssh_keys WHERE instance_id = $1").bind(instance_id).execute(&mut *tx).await?;
    for (name, key) in keys {
        sqlx::query("INSERT INTO instance_ssh_keys (instance_id, name, public_key) VALUES ($1, $2, $3)")
            .bind(instance_id)
            .bind(name)
            .bind(key)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// The keys of these instances: (instance id, key name, public key), by instance and name.
pub async fn instance_keys(db: &Db, instance_ids: &[i64]) -> Result<Vec<(i64, String, String)>, DbError> {
    if instance_ids.is_empty() {
        return Ok(vec![]);
    }
    let list: Vec<String> = instance_ids.iter().map(i64::to_string).collect();
    let sql = format!(
        "SELECT instance_id, name, public_key FROM instance_ssh_keys WHERE instance_id IN ({}) \
         ORDER BY instance_id, name",
        list.join(", ")
    );
    Ok(sqlx::query_as(&sql).fetch_all(db.pool()).await?)
}

// ------------------------------------------------------------------ stored userdata

#[derive(Debug, Clone, FromRow)]
pub struct UserDataRow {
    pub id: i64,
    pub uuid: String,
    pub account_id: i64,
    pub domain_id: i64,
    pub name: String,
    pub data: String,
    pub params: String,
    pub created: i64,
    pub account_name: String,
    pub account_uuid: String,
    pub account_type: i64,
    pub domain_uuid: String,
    pub domain_name: String,
    pub domain_path: String,
}

impl UserDataRow {
    /// The names of the variables it expects.
    pub fn param_names(&self) -> Vec<String> {
        self.params.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
    }
}

impl crate::auth::Owned for UserDataRow {
    fn owner(&self) -> crate::auth::Owner<'_> {
        crate::auth::Owner {
            account_id: self.account_id,
            account_type: self.account_type,
            domain_path: &self.domain_path,
        }
    }
}

fn user_data_select() -> String {
    format!(
        "SELECT u.id, u.uuid, u.account_id, u.domain_id, u.name, u.data, u.params, u.created, {OWNER_COLUMNS} \
         FROM user_data u JOIN accounts a ON a.id = u.account_id JOIN domains d ON d.id = u.domain_id \
         WHERE u.removed IS NULL"
    )
}

#[derive(Debug, Default, Clone)]
pub struct UserDataFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub keyword: Option<String>,
}

pub async fn list_user_data(
    db: &Db,
    scope: &Scope,
    f: &UserDataFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<UserDataRow>, i64), DbError> {
    let mut sql = user_data_select();
    let mut args = Vec::new();
    scope.push(&mut sql, &mut args, "u.account_id", "d.path", "u.domain_id");
    if let Some(v) = &f.uuid {
        args.push(Arg::Text(v.clone()));
        sql.push_str(&format!(" AND u.uuid = ${}", args.len()));
    }
    if let Some(v) = &f.name {
        args.push(Arg::Text(v.clone()));
        sql.push_str(&format!(" AND u.name = ${}", args.len()));
    }
    if let Some(k) = &f.keyword {
        args.push(Arg::Text(format!("%{}%", like_escape(&k.to_ascii_lowercase()))));
        sql.push_str(&format!(" AND LOWER(u.name) LIKE ${} ESCAPE '\\'", args.len()));
    }
    fetch_page(db, sql, &args, "u.id", page).await
}

pub async fn user_data(db: &Db, uuid: &str) -> Result<Option<UserDataRow>, DbError> {
    let sql = format!("{} AND u.uuid = $1", user_data_select());
    Ok(sqlx::query_as(&sql).bind(uuid).fetch_optional(db.pool()).await?)
}

pub async fn user_data_by_id(db: &Db, id: i64) -> Result<Option<UserDataRow>, DbError> {
    let sql = format!("{} AND u.id = $1", user_data_select());
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(db.pool()).await?)
}

pub struct NewUserData<'a> {
    pub account_id: i64,
    pub domain_id: i64,
    pub name: &'a str,
    pub data: &'a str,
    pub params: &'a str,
}

/// Records stored userdata unless the account has some of that name, or with the same
/// content (`KeyTaken` then names the other); returns its uuid.
pub async fn insert_user_data(db: &Db, u: &NewUserData<'_>) -> Result<String, GuestAccessError> {
    let mut tx = db.begin().await?;
    let same_name: Option<i64> =
        sqlx::query_scalar("SELECT id FROM user_data WHERE account_id = $1 AND name = $2 AND removed IS NULL")
            .bind(u.account_id)
            .bind(u.name)
            .fetch_optional(&mut *tx)
            .await?;
    if same_name.is_some() {
        return Err(GuestAccessError::NameTaken(u.name.to_owned()));
    }
    let same_data: Option<String> =
        sqlx::query_scalar("SELECT name FROM user_data WHERE account_id = $1 AND data = $2 AND removed IS NULL")
            .bind(u.account_id)
            .bind(u.data)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(other) = same_data {
        return Err(GuestAccessError::KeyTaken(other));
    }
    let uuid = new_uuid();
    let inserted = sqlx::query(
        "INSERT INTO user_data (uuid, account_id, domain_id, name, data, params, created) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&uuid)
    .bind(u.account_id)
    .bind(u.domain_id)
    .bind(u.name)
    .bind(u.data)
    .bind(u.params)
    .bind(now_ms())
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if unique_violation(&e) => return Err(GuestAccessError::NameTaken(u.name.to_owned())),
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(uuid)
}

/// What still uses stored userdata: (templates linked to it, live instances made from it).
pub async fn user_data_uses(db: &Db, id: i64) -> Result<(i64, i64), DbError> {
    let templates: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM templates WHERE user_data_id = $1 AND removed IS NULL")
            .bind(id)
            .fetch_one(db.pool())
            .await?;
    let instances: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM instances WHERE user_data_id = $1 AND removed IS NULL")
            .bind(id)
            .fetch_one(db.pool())
            .await?;
    Ok((templates, instances))
}

pub async fn remove_user_data(db: &Db, id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE user_data SET removed = $1 WHERE id = $2").bind(now_ms()).bind(id).execute(db.pool()).await?;
    Ok(())
}

/// Links stored userdata to every zone's row of a template (or unlinks it with `None`).
pub async fn link_template(db: &Db, template_uuid: &str, link: Option<(i64, &str)>) -> Result<(), DbError> {
    sqlx::query("UPDATE templates SET user_data_id = $1, user_data_policy = $2 WHERE uuid = $3 AND removed IS NULL")
        .bind(link.map(|(id, _)| id))
        .bind(link.map(|(_, policy)| policy.to_owned()))
        .bind(template_uuid)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// A template's linked userdata and its override policy.
pub async fn template_link(db: &Db, template_id: i64) -> Result<Option<(i64, String)>, DbError> {
    let row: Option<(Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT user_data_id, user_data_policy FROM templates WHERE id = $1")
            .bind(template_id)
            .fetch_optional(db.pool())
            .await?;
    Ok(row.and_then(|(id, policy)| id.map(|id| (id, policy.unwrap_or_else(|| "ALLOWOVERRIDE".into())))))
}

// ------------------------------------------------------------------ an instance's own

/// The userdata an instance holds: (base64 text, stored userdata it came from, the
/// variables' values as a JSON object).
#[derive(Debug, Clone, Default, FromRow)]
pub struct InstanceUserData {
    pub user_data: Option<String>,
    pub user_data_id: Option<i64>,
    pub user_data_details: Option<String>,
}

pub async fn instance_user_data(db: &Db, instance_id: i64) -> Result<InstanceUserData, DbError> {
    let row: Option<InstanceUserData> =
        sqlx::query_as("SELECT user_data, user_data_id, user_data_details FROM instances WHERE id = $1")
            .bind(instance_id)
            .fetch_optional(db.pool())
            .await?;
    Ok(row.unwrap_or_default())
}

/// Records an instance's userdata, within `tx`.
pub async fn set_instance_user_data(
    tx: &mut sqlx::AnyConnection,
    instance_id: i64,
    u: &InstanceUserData,
) -> Result<(), DbError> {
    sqlx::query("UPDATE instances SET user_data = $1, user_data_id = $2, user_data_details = $3 WHERE id = $4")
        .bind(&u.user_data)
        .bind(u.user_data_id)
        .bind(&u.user_data_details)
        .bind(instance_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Sets the one-time password the password service hands to the guest, within `tx`.
pub async fn set_password_pending(
    tx: &mut sqlx::AnyConnection,
    instance_id: i64,
    password: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query("UPDATE instances SET password_pending = $1 WHERE id = $2")
        .bind(password)
        .bind(instance_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The password still waiting for the guest to fetch it, if any.
pub async fn password_pending(db: &Db, instance_id: i64) -> Result<Option<String>, DbError> {
    let row: Option<Option<String>> = sqlx::query_scalar("SELECT password_pending FROM instances WHERE id = $1")
        .bind(instance_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.flatten())
}

/// Renames an instance for display, within `tx`.
pub async fn set_display_name(tx: &mut sqlx::AnyConnection, instance_id: i64, name: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE instances SET display_name = $1 WHERE id = $2")
        .bind(name)
        .bind(instance_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
