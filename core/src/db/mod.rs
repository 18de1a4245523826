//! The database: one connection pool over SQLite or PostgreSQL, and the migrations.
//!
//! Queries are written once, in SQL both backends accept (`$1` placeholders, BIGINT
//! columns, 0/1 booleans, Unix-millisecond times), and run through sqlx's `Any` driver.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL {0:?} is neither sqlite:// nor postgres://")]
    UnknownBackend(String),
    /// A write was refused: the SQLite file (or its folder) cannot be written, or the
    /// PostgreSQL transaction is read-only (a standby, or `default_transaction_read_only`).
    #[error("the database is read-only: {0}")]
    ReadOnly(String),
    /// Another writer held the lock past the wait (SQLite busy/locked), PostgreSQL gave
    /// up on a lock or a serialization conflict, or no connection was free in time.
    #[error("the database is busy: {0}")]
    Busy(String),
    #[error("database: {0}")]
    Sql(sqlx::Error),
    #[error("migration {name}: {source}")]
    Migration { name: &'static str, source: sqlx::Error },
    #[error("database: {0}")]
    Read(rusqlite::Error),
}

/// What kind of refusal a database error is, when it is one a caller can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    ReadOnly,
    Busy,
}

/// SQLite's primary result codes (the low byte of an extended code).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_READONLY: i32 = 8;

fn sqlite_refusal(code: i32) -> Option<Refusal> {
    match code & 0xff {
        SQLITE_READONLY => Some(Refusal::ReadOnly),
        SQLITE_BUSY | SQLITE_LOCKED => Some(Refusal::Busy),
        _ => None,
    }
}

/// PostgreSQL SQLSTATEs: 25006 read_only_sql_transaction; 40001 serialization_failure,
/// 40P01 deadlock_detected, 55P03 lock_not_available (lock_timeout), 57014
/// query_canceled (statement_timeout).
fn postgres_refusal(sqlstate: &str) -> Option<Refusal> {
    match sqlstate {
        "25006" => Some(Refusal::ReadOnly),
        "40001" | "40P01" | "55P03" | "57014" => Some(Refusal::Busy),
        _ => None,
    }
}

fn refusal(e: &sqlx::Error) -> Option<Refusal> {
    match e {
        sqlx::Error::Database(d) => {
            if let Some(s) = d.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                return sqlite_refusal(sqlx::error::DatabaseError::code(s)?.parse().ok()?);
            }
            if let Some(p) = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                return postgres_refusal(p.code());
            }
            None
        }
        sqlx::Error::PoolTimedOut => Some(Refusal::Busy),
        _ => None,
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match refusal(&e) {
            Some(Refusal::ReadOnly) => DbError::ReadOnly(e.to_string()),
            Some(Refusal::Busy) => DbError::Busy(e.to_string()),
            None => DbError::Sql(e),
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error().and_then(|f| sqlite_refusal(f.extended_code)) {
            Some(Refusal::ReadOnly) => DbError::ReadOnly(e.to_string()),
            Some(Refusal::Busy) => DbError::Busy(e.to_string()),
            None => DbError::Read(e),
        }
    }
}

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The connection pool.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite files only: connections for `Db::read`.
    readers: Option<Arc<Readers>>,
}

/// Read-only connections to a SQLite file, used in-line by the caller. sqlx runs each
/// SQLite statement on a worker thread of its own and each hand-off costs tens of µs,
/// more than a small read itself; in WAL mode a read never waits for the writer, so it
/// may run on the calling thread.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

/// Idle read connections kept; more are opened under load and dropped after.
const MAX_IDLE_READERS: usize = 8;

impl Readers {
    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = rusqlite::Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.set_prepared_statement_cache_capacity(64);
        // Without the planner stability guarantee a statement whose LIKE pattern is a
        // parameter is compiled again on every run (the pattern might allow an index),
        // which costs more than the read itself. Results are the same either way.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        Ok(conn)
    }

    fn with<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let taken = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match taken {
            Some(c) => c,
            None => self.open()?,
        };
        let out = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        out
    }
}

/// The file behind a `sqlite:` URL, unless the database lives in memory.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path.starts_with(":memory:") || url.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_identity", include_str!("migrations/0001_identity.sql")),
    ("0002_infrastructure", include_str!("migrations/0002_infrastructure.sql")),
    ("0003_offerings", include_str!("migrations/0003_offerings.sql")),
    ("0004_storage", include_str!("migrations/0004_storage.sql")),
    ("0005_templates", include_str!("migrations/0005_templates.sql")),
    ("0006_volumes", include_str!("migrations/0006_volumes.sql")),
    ("0007_networks", include_str!("migrations/0007_networks.sql")),
    ("0008_instances", include_str!("migrations/0008_instances.sql")),
    ("0009_volume_attachments", include_str!("migrations/0009_volume_attachments.sql")),
    ("0010_instance_iso", include_str!("migrations/0010_instance_iso.sql")),
    ("0011_instance_listing", include_str!("migrations/0011_instance_listing.sql")),
    ("0012_login_attempts", include_str!("migrations/0012_login_attempts.sql")),
    ("0013_driver_versions", include_str!("migrations/0013_driver_versions.sql")),
    ("0014_public_ips", include_str!("migrations/0014_public_ips.sql")),
    ("0015_guest_access", include_str!("migrations/0015_guest_access.sql")),
    ("0016_config_drive", include_str!("migrations/0016_config_drive.sql")),
    ("0017_security_groups", include_str!("migrations/0017_security_groups.sql")),
];

impl Db {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DbError::UnknownBackend(url.to_owned()));
        };
        // Each pooled connection to a bare `:memory:` would get its own empty database;
        // a named in-memory database with a shared cache is one database for the pool.
        let memory;
        let url = if matches!(url, "sqlite::memory:" | "sqlite://:memory:") {
            memory = format!("sqlite:file:wasmstack-{}?mode=memory&cache=shared", new_uuid());
            memory.as_str()
        } else {
            url
        };
        let options = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            // A ping before each use is one more hand-off to SQLite's worker thread, and a
            // local file has no connection to lose.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; the busy timeout
                        // makes concurrent writers wait instead of failing.
                        conn.execute("PRAGMA journal_mode=WAL").await?;
                        conn.execute("PRAGMA busy_timeout=10000").await?;
                        conn.execute("PRAGMA foreign_keys=ON").await?;
                        conn.execute("PRAGMA synchronous=NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let readers = match backend {
            Backend::Sqlite => sqlite_file(url).map(|path| Arc::new(Readers { path, idle: Mutex::new(Vec::new()) })),
            Backend::Postgres => None,
        };
        let db = Db { pool, backend, readers };
        db.migrate().await?;
        Ok(db)
    }

    /// The SQLite URL of a file, created if missing.
    pub fn sqlite_url(path: &Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    /// Starts a transaction that may write. SQLite takes the write lock at the start
    /// (BEGIN IMMEDIATE): a transaction that reads first and upgrades later would fail
    /// at once with "database is locked" under concurrent writers, busy timeout or not.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs a read-only query on the calling thread when the database is a SQLite file
    /// (`None` otherwise: use the pool). It sees every committed change, as the pool does.
    /// Statements use `$1`-style parameters; bind them by name.
    pub fn read<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>) -> Option<Result<T, DbError>> {
        self.readers.as_ref().map(|r| r.with(f).map_err(DbError::from))
    }

    async fn migrate(&self) -> Result<(), DbError> {
        self.pool
            .execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied BIGINT NOT NULL)")
            .await?;
        let id = match self.backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        for (name, sql) in MIGRATIONS {
            let mut tx = self.begin().await?;
            let done: Option<(String,)> = sqlx::query_as("SELECT name FROM schema_migrations WHERE name = $1")
                .bind(*name)
                .fetch_optional(&mut *tx)
                .await?;
            if done.is_some() {
                continue;
            }
            let sql = sql.replace("{{id}}", id);
            for statement in sql
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty() && !s.lines().all(|l| l.trim_start().starts_with("--")))
            {
                tx.execute(statement).await.map_err(|source| DbError::Migration { name, source })?;
            }
            sqlx::query("INSERT INTO schema_migrations (name, applied) VALUES ($1, $2)")
                .bind(*name)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

/// Now, in Unix milliseconds: how every time is stored.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A stored time in CloudStack's reply format, `2024-05-01T10:20:30+0000`.
pub fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%z").to_string()
}

/// A new lowercase UUID.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_by_code() {
        // Primary and extended SQLite codes: BUSY_SNAPSHOT, LOCKED_SHAREDCACHE, READONLY_DBMOVED.
        assert_eq!(sqlite_refusal(5), Some(Refusal::Busy));
        assert_eq!(sqlite_refusal(517), Some(Refusal::Busy));
        assert_eq!(sqlite_refusal(262), Some(Refusal::Busy));
        assert_eq!(sqlite_refusal(8), Some(Refusal::ReadOnly));
        assert_eq!(sqlite_refusal(1032), Some(Refusal::ReadOnly));
        assert_eq!(sqlite_refusal(2067), None); // UNIQUE constraint
        assert_eq!(postgres_refusal("25006"), Some(Refusal::ReadOnly));
        assert_eq!(postgres_refusal("40001"), Some(Refusal::Busy));
        assert_eq!(postgres_refusal("55P03"), Some(Refusal::Busy));
        assert_eq!(postgres_refusal("23505"), None);
        assert!(matches!(DbError::from(sqlx::Error::PoolTimedOut), DbError::Busy(_)));
        assert!(matches!(DbError::from(sqlx::Error::RowNotFound), DbError::Sql(_)));
    }

    #[tokio::test]
    async fn a_held_write_lock_is_busy_and_a_write_refused_is_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::open(&Db::sqlite_url(&path)).await.unwrap();
        // Another connection holds the write lock; its wait is cut short for the test.
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut conn = db.pool().acquire().await.unwrap();
        conn.execute("PRAGMA busy_timeout=50").await.unwrap();
        let e = conn.execute("INSERT INTO schema_migrations (name, applied) VALUES ('x', 0)").await.unwrap_err();
        assert!(matches!(DbError::from(e), DbError::Busy(_)));
        holder.execute_batch("ROLLBACK").unwrap();
        // A connection that may not write (as a read-only file or folder gives).
        conn.execute("PRAGMA query_only=1").await.unwrap();
        let e = conn.execute("INSERT INTO schema_migrations (name, applied) VALUES ('x', 0)").await.unwrap_err();
        let e = DbError::from(e);
        assert!(matches!(e, DbError::ReadOnly(_)), "{e}");
        conn.execute("PRAGMA query_only=0").await.unwrap();
        conn.execute("PRAGMA busy_timeout=10000").await.unwrap();
    }
}
