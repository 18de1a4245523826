//! Queries on domains, accounts, users, roles and sessions.

use sqlx::{Any, FromRow, Transaction};

use super::{RoleType, passwords, secrets};
use crate::db::{Db, DbError, new_uuid, now_ms};

#[derive(Debug, Clone, FromRow)]
pub struct DomainRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub parent_id: Option<i64>,
    pub parent_uuid: Option<String>,
    pub parent_name: Option<String>,
    pub path: String,
    pub level: i64,
    pub network_domain: Option<String>,
    pub created: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct RoleRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub role_type: String,
    pub description: String,
    pub is_default: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct AccountRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub account_type: i64,
    pub state: String,
    pub network_domain: Option<String>,
    pub created: i64,
    pub domain_id: i64,
    pub domain_uuid: String,
    pub domain_name: String,
    pub domain_path: String,
    pub role_uuid: String,
    pub role_name: String,
    pub role_type: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: i64,
    pub uuid: String,
    pub username: String,
    pub password_hash: String,
    pub firstname: String,
    pub lastname: String,
    pub email: String,
    pub timezone: Option<String>,
    pub state: String,
    pub api_key: Option<String>,
    pub secret_key: Option<String>,
    pub password_change_required: i64,
    pub is_default: i64,
    pub created: i64,
    /// Wrong passwords in a row (while locked: logins refused during the lock).
    pub login_failures: i64,
    /// Until when (Unix ms) password logins are refused; none: not locked.
    pub locked_until: Option<i64>,
    /// Locks since the last good login; each lasts twice as long as the one before.
    pub lock_count: i64,
    pub account_id: i64,
    pub account_uuid: String,
    pub account_name: String,
    pub account_type: i64,
    pub account_state: String,
    pub domain_id: i64,
    pub domain_uuid: String,
    pub domain_name: String,
    pub domain_path: String,
    pub role_uuid: String,
    pub role_name: String,
    pub role_type: String,
}

impl UserRow {
    pub fn role(&self) -> RoleType {
        RoleType::parse(&self.role_type).unwrap_or(RoleType::User)
    }

    /// Whether the user may sign in or use keys: user, account (and so domain) enabled.
    pub fn active(&self) -> bool {
        self.state == "enabled" && self.account_state == "enabled"
    }

    /// Whether password logins are refused at `now` (Unix ms) after too many wrong ones.
    pub fn locked_at(&self, now: i64) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }
}

const DOMAIN_SELECT: &str = "SELECT d.id, d.uuid, d.name, d.parent_id, p.uuid AS parent_uuid, p.name AS parent_name, \
     d.path, d.level, d.network_domain, d.created FROM domains d LEFT JOIN domains p ON p.id = d.parent_id \
     WHERE d.removed IS NULL";

const ACCOUNT_SELECT: &str = "SELECT a.id, a.uuid, a.name, a.account_type, a.state, a.network_domain, a.created, \
     d.id AS domain_id, d.uuid AS domain_uuid, d.name AS domain_name, d.path AS domain_path, \
     r.uuid AS role_uuid, r.name AS role_name, r.role_type \
     FROM accounts a JOIN domains d ON d.id = a.domain_id JOIN roles r ON r.id = a.role_id WHERE a.removed IS NULL";

const USER_SELECT: &str = "SELECT u.id, u.uuid, u.username, u.password_hash, u.firstname, u.lastname, u.email, \
     u.timezone, u.state, u.api_key, u.secret_key, u.password_change_required, u.is_default, u.created, \
     u.login_failures, u.locked_until, u.lock_count, a.id AS account_id, a.uuid AS account_uuid, a.name AS account_name, a.account_type, a.state AS account_state, \
     d.id AS domain_id, d.uuid AS domain_uuid, d.name AS domain_name, d.path AS domain_path, \
     r.uuid AS role_uuid, r.name AS role_name, r.role_type \
     FROM users u JOIN accounts a ON a.id = u.account_id JOIN domains d ON d.id = a.domain_id \
     JOIN roles r ON r.id = a.role_id WHERE u.removed IS NULL AND a.removed IS NULL";

/// The default roles, as CloudStack seeds them.
const DEFAULT_ROLES: [(&str, RoleType, &str); 4] = [
    ("Root Admin", RoleType::Admin, "Default root admin role"),
    ("Resource Admin", RoleType::ResourceAdmin, "Default resource admin role"),
    ("Domain Admin", RoleType::DomainAdmin, "Default domain admin role"),
    ("User", RoleType::User, "Default user role"),
];

/// Filters for listings; `None` means no filter.
#[derive(Debug, Default, Clone)]
pub struct Scope {
    /// Only this account.
    pub account_id: Option<i64>,
    /// Only accounts whose domain path starts with this.
    pub domain_prefix: Option<String>,
    /// Only this exact domain.
    pub domain_id: Option<i64>,
    /// Only accounts of these account types: the ones the caller may act on (see
    /// `RoleType::may_act_on`), so no listing shows a more privileged account's things.
    pub account_types: Option<Vec<i64>>,
}

impl Scope {
    /// Adds this scope's conditions to a query: the account, domain subtree and domain
    /// columns are named by the caller, since every listing aliases its tables its own way.
    pub(crate) fn push(
        &self,
        sql: &mut String,
        args: &mut Vec<Arg>,
        account_col: &str,
        path_col: &str,
        domain_col: &str,
    ) {
        if let Some(a) = self.account_id {
            eq(sql, args, account_col, Arg::Int(a));
        }
        if let Some(p) = &self.domain_prefix {
            args.push(Arg::Text(format!("{}%", like_escape(p))));
            sql.push_str(&format!(" AND {path_col} LIKE ${} ESCAPE '\\'", args.len()));
        }
        if let Some(d) = self.domain_id {
            eq(sql, args, domain_col, Arg::Int(d));
        }
        if let Some(types) = &self.account_types {
            // The accounts left out are the few more privileged ones, so the subquery
            // stays small however many rows the listing scans.
            if types.is_empty() {
                sql.push_str(" AND 1 = 0");
            } else {
                let types = types.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
                sql.push_str(&format!(
                    " AND {account_col} NOT IN (SELECT id FROM accounts WHERE account_type NOT IN ({types}))"
                ));
            }
        }
    }
}

/// Adds `AND col = value` to an assembled query.
pub(crate) fn eq(sql: &mut String, args: &mut Vec<Arg>, col: &str, value: Arg) {
    args.push(value);
    sql.push_str(&format!(" AND {col} = ${}", args.len()));
}

/// Adds a case-insensitive substring match of `keyword` on `col`.
pub(crate) fn keyword(sql: &mut String, args: &mut Vec<Arg>, col: &str, keyword: &str) {
    args.push(Arg::Text(format!("%{}%", like_escape(&keyword.to_ascii_lowercase()))));
    sql.push_str(&format!(" AND LOWER({col}) LIKE ${} ESCAPE '\\'", args.len()));
}

/// A bound value of a query assembled at run time.
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Text(String),
}

pub(crate) fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Runs a query assembled with `Arg`s and maps the rows.
pub(crate) async fn fetch_all<T>(db: &Db, sql: &str, args: &[Arg]) -> Result<Vec<T>, DbError>
where
    T: for<'r> FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut q = sqlx::query_as::<_, T>(sql);
    for a in args {
        q = match a {
            Arg::Int(i) => q.bind(*i),
            Arg::Text(t) => q.bind(t.clone()),
        };
    }
    Ok(q.fetch_all(db.pool()).await?)
}

/// One page of an assembled query in `order` and the total number of matches. Without
/// paging the total is the number of rows, so no counting query is needed.
pub(crate) async fn fetch_page<T>(
    db: &Db,
    mut sql: String,
    args: &[Arg],
    order: &str,
    page: Option<(u32, u32)>,
) -> Result<(Vec<T>, i64), DbError>
where
    T: for<'r> FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let total = match page {
        Some(_) => Some(count(db, &sql, args).await?),
        None => None,
    };
    sql.push_str(" ORDER BY ");
    sql.push_str(order);
    push_page(&mut sql, page);
    let rows: Vec<T> = fetch_all(db, &sql, args).await?;
    let total = total.unwrap_or(rows.len() as i64);
    Ok((rows, total))
}

/// Runs a read-only query on `Db::read`'s in-line path, if the database has one.
pub(crate) fn read_rows<T>(
    db: &Db,
    sql: &str,
    args: &[Arg],
    map: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Option<Result<Vec<T>, DbError>> {
    db.read(|conn| {
        let mut stmt = conn.prepare_cached(sql)?;
        for (i, a) in args.iter().enumerate() {
            let name = format!("${}", i + 1);
            let Some(index) = stmt.parameter_index(&name)? else { continue };
            match a {
                Arg::Int(v) => stmt.raw_bind_parameter(index, v)?,
                Arg::Text(v) => stmt.raw_bind_parameter(index, v)?,
            }
        }
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(map(row)?);
        }
        Ok(out)
    })
}

fn domain_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DomainRow> {
    Ok(DomainRow {
        id: r.get("id")?,
        uuid: r.get("uuid")?,
        name: r.get("name")?,
        parent_id: r.get("parent_id")?,
        parent_uuid: r.get("parent_uuid")?,
        parent_name: r.get("parent_name")?,
        path: r.get("path")?,
        level: r.get("level")?,
        network_domain: r.get("network_domain")?,
        created: r.get("created")?,
    })
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get("id")?,
        uuid: r.get("uuid")?,
        username: r.get("username")?,
        password_hash: r.get("password_hash")?,
        firstname: r.get("firstname")?,
        lastname: r.get("lastname")?,
        email: r.get("email")?,
        timezone: r.get("timezone")?,
        state: r.get("state")?,
        api_key: r.get("api_key")?,
        secret_key: r.get("secret_key")?,
        password_change_required: r.get("password_change_required")?,
        is_default: r.get("is_default")?,
        created: r.get("created")?,
        login_failures: r.get("login_failures")?,
        locked_until: r.get("locked_until")?,
        lock_count: r.get("lock_count")?,
        account_id: r.get("account_id")?,
        account_uuid: r.get("account_uuid")?,
        account_name: r.get("account_name")?,
        account_type: r.get("account_type")?,
        account_state: r.get("account_state")?,
        domain_id: r.get("domain_id")?,
        domain_uuid: r.get("domain_uuid")?,
        domain_name: r.get("domain_name")?,
        domain_path: r.get("domain_path")?,
        role_uuid: r.get("role_uuid")?,
        role_name: r.get("role_name")?,
        role_type: r.get("role_type")?,
    })
}

/// Counts the rows an assembled query would return.
pub(crate) async fn count(db: &Db, sql: &str, args: &[Arg]) -> Result<i64, DbError> {
    let wrapped = format!("SELECT COUNT(*) FROM ({sql}) AS counted");
    let mut q = sqlx::query_scalar::<_, i64>(&wrapped);
    for a in args {
        q = match a {
            Arg::Int(i) => q.bind(*i),
            Arg::Text(t) => q.bind(t.clone()),
        };
    }
    Ok(q.fetch_one(db.pool()).await?)
}

/// What the first start created.
pub struct Bootstrap {
    /// The admin password, when it was generated (shown once).
    pub generated_password: Option<String>,
}

/// Creates the ROOT domain, the default roles, and the admin account and user,
/// unless they exist. The admin password comes from `password`, else is generated.
pub async fn bootstrap(db: &Db, password: Option<String>) -> Result<Option<Bootstrap>, DbError> {
    let mut tx = db.begin().await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM domains WHERE parent_id IS NULL AND removed IS NULL")
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_some() {
        return Ok(None);
    }
    let now = now_ms();
    let root: i64 = sqlx::query_scalar(
        "INSERT INTO domains (uuid, name, parent_id, path, level, created) VALUES ($1, 'ROOT', NULL, '/', 0, $2) RETURNING id",
    )
    .bind(new_uuid())
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    for (name, role_type, description) in DEFAULT_ROLES {
        sqlx::query("INSERT INTO roles (uuid, name, role_type, description, is_default) VALUES ($1, $2, $3, $4, 1)")
            .bind(new_uuid())
            .bind(name)
            .bind(role_type.as_str())
            .bind(description)
            .execute(&mut *tx)
            .await?;
    }
    let generated = password.is_none();
    let password = password.unwrap_or_else(passwords::generate);
    let shown = generated.then(|| password.clone());
    let account = insert_account(&mut tx, "admin", root, RoleType::Admin, None).await?;
    let hash = passwords::hash(&password).await;
    insert_user(
        &mut tx,
        account,
        NewUser {
            username: "admin".into(),
            password,
            firstname: "Admin".into(),
            lastname: "User".into(),
            email: "admin@localhost".into(),
            timezone: None,
            is_default: true,
            password_change_required: generated,
        },
        hash,
    )
    .await?;
    tx.commit().await?;
    Ok(Some(Bootstrap { generated_password: shown }))
}

/// A user to create.
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub firstname: String,
    pub lastname: String,
    pub email: String,
    pub timezone: Option<String>,
    pub is_default: bool,
    pub password_change_required: bool,
}

async fn insert_account(
    tx: &mut Transaction<'_, Any>,
    name: &str,
    domain_id: i64,
    role: RoleType,
    network_domain: Option<&str>,
) -> Result<i64, DbError> {
    let role_id: i64 = sqlx::query_scalar("SELECT id FROM roles WHERE role_type = $1 AND is_default = 1")
        .bind(role.as_str())
        .fetch_one(&mut **tx)
        .await?;
    Ok(sqlx::query_scalar(
        "INSERT INTO accounts (uuid, name, domain_id, account_type, role_id, state, network_domain, created) \
         VALUES ($1, $2, $3, $4, $5, 'enabled', $6, $7) RETURNING id",
    )
    .bind(new_uuid())
    .bind(name)
    .bind(domain_id)
    .bind(role.account_type())
    .bind(role_id)
    .bind(network_domain.map(str::to_owned))
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?)
}

/// Inserts a user whose password `hash` was computed beforehand: hashing inside the
/// transaction would hold the database's write lock for the hash's duration.
async fn insert_user(tx: &mut Transaction<'_, Any>, account_id: i64, u: NewUser, hash: String) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO users (uuid, account_id, username, password_hash, firstname, lastname, email, timezone, state, \
         password_change_required, is_default, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'enabled', $9, $10, $11) RETURNING id",
    )
    .bind(new_uuid())
    .bind(account_id)
    .bind(u.username)
    .bind(hash)
    .bind(u.firstname)
    .bind(u.lastname)
    .bind(u.email)
    .bind(u.timezone)
    .bind(u.password_change_required as i64)
    .bind(u.is_default as i64)
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?)
}

// ---- users ----

pub async fn user_by_id(db: &Db, id: i64) -> Result<Option<UserRow>, DbError> {
    let sql = format!("{USER_SELECT} AND u.id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(db.pool()).await?)
}

pub async fn user_by_uuid(db: &Db, uuid: &str) -> Result<Option<UserRow>, DbError> {
    let sql = format!("{USER_SELECT} AND u.uuid = $1");
    Ok(sqlx::query_as(&sql).bind(uuid).fetch_optional(db.pool()).await?)
}

/// The user an API key belongs to; keys are matched case-insensitively, as CloudStack does.
pub async fn user_by_api_key(db: &Db, api_key: &str) -> Result<Option<UserRow>, DbError> {
    let sql = format!("{USER_SELECT} AND LOWER(u.api_key) = LOWER($1)");
    if let Some(found) = read_rows(db, &sql, &[Arg::Text(api_key.to_owned())], user_row) {
        return found.map(|rows| rows.into_iter().next());
    }
    Ok(sqlx::query_as(&sql).bind(api_key).fetch_optional(db.pool()).await?)
}

/// The user signing in with `username` in the domain at `path` ("/" is ROOT).
pub async fn user_by_login(db: &Db, username: &str, path: &str) -> Result<Option<UserRow>, DbError> {
    let sql = format!("{USER_SELECT} AND u.username = $1 AND d.path = $2");
    Ok(sqlx::query_as(&sql).bind(username).bind(path).fetch_optional(db.pool()).await?)
}

/// Users within `scope`, newest last, with optional filters; returns (page, total).
pub async fn list_users(
    db: &Db,
    scope: &Scope,
    filter: &UserFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<UserRow>, i64), DbError> {
    let mut sql = USER_SELECT.to_owned();
    let mut args = Vec::new();
    scope.push(&mut sql, &mut args, "a.id", "d.path", "d.id");
    if let Some(v) = &filter.uuid {
        args.push(Arg::Text(v.clone()));
        sql.push_str(&format!(" AND u.uuid = ${}", args.len()));
    }
    if let Some(v) = &filter.username {
        args.push(Arg::Text(v.clone()));
        sql.push_str(&format!(" AND u.username = ${}", args.len()));
    }
    if let Some(v) = &filter.account {
        args.push(Arg::Text(v.clone()));
        sql.push_str(&format!(" AND a.name = ${}", args.len()));
    }
    if let Some(v) = &filter.state {
        args.push(Arg::Text(v.to_ascii_lowercase()));
        sql.push_str(&format!(" AND u.state = ${}", args.len()));
    }
    if let Some(k) = &filter.keyword {
        args.push(Arg::Text(format!("%{}%", like_escape(&k.to_ascii_lowercase()))));
        let n = args.len();
        sql.push_str(&format!(
            " AND (LOWER(u.username) LIKE ${n} ESCAPE '\\' OR LOWER(u.firstname) LIKE ${n} ESCAPE '\\' OR LOWER(u.lastname) LIKE ${n} ESCAPE '\\')"
        ));
    }
    fetch_page(db, sql, &args, "u.id", page).await
}

/// Filters of listUsers.
#[derive(Debug, Default)]
pub struct UserFilter {
    pub uuid: Option<String>,
    pub username: Option<String>,
    pub account: Option<String>,
    pub state: Option<String>,
    pub keyword: Option<String>,
}

pub(crate) fn push_page(sql: &mut String, page: Option<(u32, u32)>) {
    if let Some((page, size)) = page {
        let offset = (page.max(1) as u64 - 1) * size as u64;
        sql.push_str(&format!(" LIMIT {size} OFFSET {offset}"));
    }
}

pub async fn username_taken(db: &Db, username: &str, domain_id: i64) -> Result<bool, DbError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM users u JOIN accounts a ON a.id = u.account_id \
         WHERE u.username = $1 AND a.domain_id = $2 AND u.removed IS NULL AND a.removed IS NULL",
    )
    .bind(username)
    .bind(domain_id)
    .fetch_one(db.pool())
    .await?;
    Ok(n > 0)
}

pub async fn create_user(db: &Db, account_id: i64, user: NewUser) -> Result<i64, DbError> {
    let hash = passwords::hash(&user.password).await;
    let mut tx = db.begin().await?;
    let id = insert_user(&mut tx, account_id, user, hash).await?;
    tx.commit().await?;
    Ok(id)
}

/// Changes a user's profile fields; `None` leaves a field as it is.
pub async fn update_user(db: &Db, id: i64, changes: &UserChanges) -> Result<(), DbError> {
    let hash = match &changes.password {
        Some(p) => Some(passwords::hash(p).await),
        None => None,
    };
    let mut tx = db.begin().await?;
    let fields: [(&str, &Option<String>); 5] = [
        ("username", &changes.username),
        ("firstname", &changes.firstname),
        ("lastname", &changes.lastname),
        ("email", &changes.email),
        ("timezone", &changes.timezone),
    ];
    for (column, value) in fields {
        if let Some(v) = value {
            sqlx::query(&format!("UPDATE users SET {column} = $1 WHERE id = $2"))
                .bind(v.clone())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
    }
    if let Some(hash) = hash {
        sqlx::query("UPDATE users SET password_hash = $1, password_change_required = 0 WHERE id = $2")
            .bind(hash)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // A new password ends every session of the user.
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Changes to a user.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub username: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub email: Option<String>,
    pub timezone: Option<String>,
    pub password: Option<String>,
}

pub async fn set_user_state(db: &Db, id: i64, state: &str) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE users SET state = $1 WHERE id = $2").bind(state).bind(id).execute(&mut *tx).await?;
    if state == "enabled" {
        // Enabling is also how an administrator lifts a lock from wrong passwords at once.
        clear_login_failures(&mut *tx, id).await?;
    } else {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A good login, or an administrator's enableUser: no failures, no lock.
pub async fn clear_login_failures<'c, E: sqlx::Executor<'c, Database = Any>>(db: E, id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET login_failures = 0, locked_until = NULL, lock_count = 0 WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Counts a wrong password (or, while locked, a refused login); returns the count. A lock
/// that has run out is lifted first, so counting starts again from one.
pub async fn count_login_failure(db: &Db, id: i64, now: i64) -> Result<i64, DbError> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE users SET login_failures = 0, locked_until = NULL WHERE id = $1 AND locked_until <= $2")
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let n = sqlx::query_scalar(
        "UPDATE users SET login_failures = login_failures + 1 WHERE id = $1 RETURNING login_failures",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// Locks password logins until `until`, unless a lock is already on (logins racing each
/// other past the limit lock once). Returns whether this call locked.
pub async fn lock_user(db: &Db, id: i64, now: i64, until: i64) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE users SET locked_until = $1, lock_count = lock_count + 1, login_failures = 0 \
         WHERE id = $2 AND (locked_until IS NULL OR locked_until <= $3)",
    )
    .bind(until)
    .bind(id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_user(db: &Db, id: i64) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE users SET removed = $1, api_key = NULL, secret_key = NULL WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Gives a user a new key pair; the secret is stored sealed. Returns (apikey, secretkey).
pub async fn register_keys(db: &Db, sealer: &secrets::Sealer, id: i64) -> Result<(String, String), DbError> {
    let api_key = secrets::new_key();
    let secret = secrets::new_key();
    sqlx::query("UPDATE users SET api_key = $1, secret_key = $2 WHERE id = $3")
        .bind(&api_key)
        .bind(sealer.seal(&secret))
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok((api_key, secret))
}

// ---- accounts ----

pub async fn account_by_uuid(db: &Db, uuid: &str) -> Result<Option<AccountRow>, DbError> {
    let sql = format!("{ACCOUNT_SELECT} AND a.uuid = $1");
    Ok(sqlx::query_as(&sql).bind(uuid).fetch_optional(db.pool()).await?)
}

pub async fn account_by_id(db: &Db, id: i64) -> Result<Option<AccountRow>, DbError> {
    let sql = format!("{ACCOUNT_SELECT} AND a.id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(db.pool()).await?)
}

pub async fn account_by_name(db: &Db, name: &str, domain_id: i64) -> Result<Option<AccountRow>, DbError> {
    let sql = format!("{ACCOUNT_SELECT} AND a.name = $1 AND a.domain_id = $2");
    Ok(sqlx::query_as(&sql).bind(name).bind(domain_id).fetch_optional(db.pool()).await?)
}

/// Filters of listAccounts.
#[derive(Debug, Default)]
pub struct AccountFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub account_type: Option<i64>,
    pub state: Option<String>,
    pub keyword: Option<String>,
}

pub async fn list_accounts(
    db: &Db,
    scope: &Scope,
    filter: &AccountFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<AccountRow>, i64), DbError> {
    let mut sql = ACCOUNT_SELECT.to_owned();
    let mut args = Vec::new();
    scope.push(&mut sql, &mut args, "a.id", "d.path", "d.id");
    if let Some(v) = &filter.uuid {
        args.push(Arg::Text(v.clone()));
        sql.push_str(&format!(" AND a.uuid = ${}", args.len()));
    }
    if let Some(v) = &filter.name {
        args.push(Arg::Text(v.clone()));
        sql.push_str(&format!(" AND a.name = ${}", args.len()));
    }
    if let Some(v) = filter.account_type {
        args.push(Arg::Int(v));
        sql.push_str(&format!(" AND a.account_type = ${}", args.len()));
    }
    if let Some(v) = &filter.state {
        args.push(Arg::Text(v.to_ascii_lowercase()));
        sql.push_str(&format!(" AND a.state = ${}", args.len()));
    }
    if let Some(k) = &filter.keyword {
        args.push(Arg::Text(format!("%{}%", like_escape(&k.to_ascii_lowercase()))));
        sql.push_str(&format!(" AND LOWER(a.name) LIKE ${} ESCAPE '\\'", args.len()));
    }
    fetch_page(db, sql, &args, "a.id", page).await
}

/// Users of several accounts at once, for the `user` list inside account replies.
pub async fn users_of_accounts(db: &Db, account_ids: &[i64]) -> Result<Vec<UserRow>, DbError> {
    if account_ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = account_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql = format!("{USER_SELECT} AND a.id IN ({list}) ORDER BY u.id");
    Ok(sqlx::query_as(&sql).fetch_all(db.pool()).await?)
}

/// Adds an account and its first user, whose password is already `hash`ed, within `tx`
/// (the caller commits it, with the event that tells of it); returns the account id.
pub async fn create_account(
    tx: &mut Transaction<'_, Any>,
    name: &str,
    domain_id: i64,
    role: RoleType,
    network_domain: Option<&str>,
    user: NewUser,
    hash: String,
) -> Result<i64, DbError> {
    let account = insert_account(tx, name, domain_id, role, network_domain).await?;
    insert_user(tx, account, user, hash).await?;
    Ok(account)
}

pub async fn update_account(
    db: &Db,
    id: i64,
    new_name: Option<&str>,
    network_domain: Option<&str>,
) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    if let Some(n) = new_name {
        sqlx::query("UPDATE accounts SET name = $1 WHERE id = $2").bind(n).bind(id).execute(&mut *tx).await?;
    }
    if let Some(n) = network_domain {
        sqlx::query("UPDATE accounts SET network_domain = $1 WHERE id = $2").bind(n).bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn set_account_state(db: &Db, id: i64, state: &str) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE accounts SET state = $1 WHERE id = $2").bind(state).bind(id).execute(&mut *tx).await?;
    if state != "enabled" {
        sqlx::query("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE account_id = $1)")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Removes an account and all its users.
pub async fn delete_account(db: &Db, id: i64) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    let now = now_ms();
    sqlx::query("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE account_id = $1)")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE users SET removed = $1, api_key = NULL, secret_key = NULL WHERE account_id = $2 AND removed IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE accounts SET removed = $1 WHERE id = $2").bind(now).bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

// ---- domains ----

pub async fn domain_by_uuid(db: &Db, uuid: &str) -> Result<Option<DomainRow>, DbError> {
    let sql = format!("{DOMAIN_SELECT} AND d.uuid = $1");
    Ok(sqlx::query_as(&sql).bind(uuid).fetch_optional(db.pool()).await?)
}

pub async fn domain_by_id(db: &Db, id: i64) -> Result<Option<DomainRow>, DbError> {
    let sql = format!("{DOMAIN_SELECT} AND d.id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(db.pool()).await?)
}

pub async fn domain_by_path(db: &Db, path: &str) -> Result<Option<DomainRow>, DbError> {
    let sql = format!("{DOMAIN_SELECT} AND d.path = $1");
    Ok(sqlx::query_as(&sql).bind(path).fetch_optional(db.pool()).await?)
}

/// Domains whose path starts with `prefix`, optionally filtered by name or level.
pub async fn list_domains(
    db: &Db,
    prefix: &str,
    name: Option<&str>,
    level: Option<i64>,
    page: Option<(u32, u32)>,
) -> Result<(Vec<DomainRow>, i64), DbError> {
    let mut sql = DOMAIN_SELECT.to_owned();
    let mut args = vec![Arg::Text(format!("{}%", like_escape(prefix)))];
    sql.push_str(" AND d.path LIKE $1 ESCAPE '\\'");
    if let Some(n) = name {
        args.push(Arg::Text(n.to_owned()));
        sql.push_str(&format!(" AND d.name = ${}", args.len()));
    }
    if let Some(l) = level {
        args.push(Arg::Int(l));
        sql.push_str(&format!(" AND d.level = ${}", args.len()));
    }
    if page.is_none() {
        sql.push_str(" ORDER BY d.path");
        if let Some(rows) = read_rows(db, &sql, &args, domain_row) {
            return rows.map(|r| {
                let n = r.len() as i64;
                (r, n)
            });
        }
        sql.truncate(sql.len() - " ORDER BY d.path".len());
    }
    fetch_page(db, sql, &args, "d.path", page).await
}

/// Adds a domain within `tx` (the caller commits it, with the event that tells of it).
pub async fn create_domain(
    tx: &mut sqlx::AnyConnection,
    parent: &DomainRow,
    name: &str,
    network_domain: Option<&str>,
) -> Result<i64, DbError> {
    let path = format!("{}{}/", parent.path, name);
    Ok(sqlx::query_scalar(
        "INSERT INTO domains (uuid, name, parent_id, path, level, network_domain, created) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(new_uuid())
    .bind(name)
    .bind(parent.id)
    .bind(path)
    .bind(parent.level + 1)
    .bind(network_domain.map(str::to_owned))
    .bind(now_ms())
    .fetch_one(tx)
    .await?)
}

// ---- roles ----

pub async fn list_roles(db: &Db) -> Result<Vec<RoleRow>, DbError> {
    Ok(sqlx::query_as("SELECT id, uuid, name, role_type, description, is_default FROM roles ORDER BY id")
        .fetch_all(db.pool())
        .await?)
}

// ---- sessions ----

/// Starts a session; returns (session id for JSESSIONID, session key).
pub async fn create_session(db: &Db, user_id: i64) -> Result<(String, String), DbError> {
    let session_id = secrets::new_session_key().replace(['-', '_'], "x");
    let key = secrets::new_session_key();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO sessions (session_key, session_id, user_id, created, last_seen) VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(&key)
    .bind(&session_id)
    .bind(user_id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok((session_id, key))
}

/// The user of a live session, checked against both the session id and key; an idle
/// session older than `idle_ms` is ended instead.
pub async fn session_user(db: &Db, session_id: &str, key: &str, idle_ms: i64) -> Result<Option<i64>, DbError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT user_id, last_seen FROM sessions WHERE session_key = $1 AND session_id = $2")
            .bind(key)
            .bind(session_id)
            .fetch_optional(db.pool())
            .await?;
    let now = now_ms();
    match row {
        Some((user, last)) if now - last <= idle_ms => {
            // Touching on every request would make each call a write; once a minute is enough.
            if now - last > 60_000 {
                sqlx::query("UPDATE sessions SET last_seen = $1 WHERE session_key = $2")
                    .bind(now)
                    .bind(key)
                    .execute(db.pool())
                    .await?;
            }
            Ok(Some(user))
        }
        Some(_) => {
            end_session(db, session_id).await?;
            Ok(None)
        }
        None => Ok(None),
    }
}

pub async fn end_session(db: &Db, session_id: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM sessions WHERE session_id = $1").bind(session_id).execute(db.pool()).await?;
    Ok(())
}
