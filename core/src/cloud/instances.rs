//! Queries on virtual machine instances, and the allocator that places them on hosts.
//!
//! Placement happens in one transaction that first bumps the zone's allocation counter:
//! on PostgreSQL that takes the zone row's lock, on SQLite BEGIN IMMEDIATE already
//! serialises writers. Two deploys can therefore never both see the same free room.

use sqlx::FromRow;

use crate::auth::store::{Arg, Scope, count, eq, fetch_all, keyword, like_escape, push_page, read_rows};
use crate::db::{Backend, Db, DbError, now_ms};

/// A VM's state, as CloudStack names it. Stored as its name; every change goes through
/// `transition` (or one of the writes below), which refuses a change this table forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VmState {
    /// Being made or started: a job owns it.
    Starting,
    Running,
    /// Being stopped: a job owns it.
    Stopping,
    Stopped,
    /// Moving to another host: a job owns it.
    Migrating,
    /// Destroyed but recoverable until expunged.
    Destroyed,
    /// Being removed for good: a job owns it.
    Expunging,
    /// Removed for good (the row is kept, marked removed).
    Expunged,
    /// A deploy that failed; the row is kept, marked removed.
    Error,
}

impl VmState {
    pub const ALL: [VmState; 9] = [
        VmState::Starting,
        VmState::Running,
        VmState::Stopping,
        VmState::Stopped,
        VmState::Migrating,
        VmState::Destroyed,
        VmState::Expunging,
        VmState::Expunged,
        VmState::Error,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            VmState::Starting => "Starting",
            VmState::Running => "Running",
            VmState::Stopping => "Stopping",
            VmState::Stopped => "Stopped",
            VmState::Migrating => "Migrating",
            VmState::Destroyed => "Destroyed",
            VmState::Expunging => "Expunging",
            VmState::Expunged => "Expunged",
            VmState::Error => "Error",
        }
    }

    /// Whether a VM in this state may be put in `next`. The jobs' own states (Starting,
    /// Stopping, Migrating, Expunging) end in one of the settled states, or back where
    /// the job began when it fails; the reconciler may settle a VM its host reports
    /// otherwise.
    pub fn can_become(self, next: VmState) -> bool {
        use VmState::*;
        match (self, next) {
            (a, b) if a == b => true,
            (Starting, Running | Stopped | Error | Expunging) => true,
            (Running, Stopping | Stopped | Starting | Migrating | Destroyed | Expunging) => true,
            (Stopping, Running | Stopped | Destroyed) => true,
            (Stopped, Starting | Running | Stopping | Migrating | Destroyed | Expunging) => true,
            (Migrating, Running | Stopped) => true,
            (Destroyed, Stopped | Expunging) => true,
            (Expunging, Expunged | Destroyed | Running | Stopped | Error) => true,
            _ => false,
        }
    }

    /// Whether the VM holds none of its host's capacity in this state.
    pub fn is_idle(self) -> bool {
        matches!(self, VmState::Stopped | VmState::Destroyed | VmState::Expunged | VmState::Error)
    }
}

impl serde::Serialize for VmState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for VmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of `VmState`'s.
#[derive(Debug, thiserror::Error)]
#[error("unknown VM state {0:?}")]
pub struct UnknownState(String);

impl std::str::FromStr for VmState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VmState::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| UnknownState(s.to_owned()))
    }
}

impl sqlx::Type<sqlx::Any> for VmState {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <String as sqlx::Type<sqlx::Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for VmState {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(<String as sqlx::Decode<'r, sqlx::Any>>::decode(value)?.parse()?)
    }
}

impl rusqlite::types::FromSql for VmState {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        value.as_str()?.parse().map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

/// States in which an instance holds none of its host's capacity, for SQL.
const IDLE_STATES: &str = "'Stopped', 'Destroyed', 'Expunged', 'Error'";

#[derive(Debug, Clone, FromRow)]
pub struct InstanceRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub instance_name: String,
    pub display_name: String,
    pub account_id: i64,
    pub account_name: String,
    /// The owning account's type, for who may reach the instance.
    pub account_type: i64,
    pub domain_id: i64,
    pub domain_uuid: String,
    pub domain_name: String,
    pub domain_path: String,
    pub zone_id: i64,
    pub zone_uuid: String,
    pub zone_name: String,
    pub host_id: Option<i64>,
    pub host_uuid: Option<String>,
    pub host_name: Option<String>,
    pub host_uri: Option<String>,
    pub host_driver: Option<String>,
    pub offering_id: i64,
    pub offering_uuid: String,
    pub offering_name: String,
    pub template_id: i64,
    pub template_uuid: String,
    pub template_name: String,
    pub template_display_text: String,
    pub template_password_enabled: i64,
    pub os_type_uuid: Option<String>,
    pub os_type_name: Option<String>,
    pub root_volume_id: Option<i64>,
    pub hypervisor: String,
    pub state: VmState,
    pub cpus: i64,
    pub cpu_mhz: i64,
    pub memory_mb: i64,
    pub created: i64,
    pub iso_id: Option<i64>,
    pub iso_uuid: Option<String>,
    pub iso_name: Option<String>,
    pub iso_display_text: Option<String>,
    /// The stored userdata the instance's userdata came from.
    pub user_data_uuid: Option<String>,
    pub user_data_name: Option<String>,
}

impl crate::auth::Owned for InstanceRow {
    fn owner(&self) -> crate::auth::Owner<'_> {
        crate::auth::Owner {
            account_id: self.account_id,
            account_type: self.account_type,
            domain_path: &self.domain_path,
        }
    }
}

const SELECT: &str = "SELECT i.id, i.uuid, i.name, i.instance_name, i.display_name, i.account_id, \
     a.name AS account_name, a.account_type, i.domain_id, d.uuid AS domain_uuid, d.name AS domain_name, d.path AS domain_path, \
     i.zone_id, z.uuid AS zone_uuid, z.name AS zone_name, i.host_id, h.uuid AS host_uuid, h.name AS host_name, \
     h.libvirt_uri AS host_uri, h.driver AS host_driver, i.service_offering_id AS offering_id, \
     o.uuid AS offering_uuid, o.name AS offering_name, i.template_id, t.uuid AS template_uuid, \
     t.name AS template_name, t.display_text AS template_display_text, \
     t.password_enabled AS template_password_enabled, ot.uuid AS os_type_uuid, ot.description AS os_type_name, \
     i.root_volume_id, i.hypervisor, i.state, i.cpus, i.cpu_mhz, i.memory_mb, i.created, i.iso_id, \
     iso.uuid AS iso_uuid, iso.name AS iso_name, iso.display_text AS iso_display_text, \
     ud.uuid AS user_data_uuid, ud.name AS user_data_name \
     FROM instances i JOIN accounts a ON a.id = i.account_id JOIN domains d ON d.id = i.domain_id \
     JOIN zones z ON z.id = i.zone_id LEFT JOIN hosts h ON h.id = i.host_id \
     JOIN service_offerings o ON o.id = i.service_offering_id JOIN templates t ON t.id = i.template_id \
     LEFT JOIN os_types ot ON ot.id = t.os_type_id LEFT JOIN templates iso ON iso.id = i.iso_id \
     LEFT JOIN user_data ud ON ud.id = i.user_data_id \
     WHERE i.removed IS NULL";

#[derive(Debug, Default, Clone)]
pub struct InstanceFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub state: Option<String>,
    pub zone_id: Option<i64>,
    pub host_id: Option<i64>,
    pub keyword: Option<String>,
}

/// The instances a scope sees, filtered; returns (page, total).
///
/// With 100,000 VMs the joins of the full row are what costs: the page's ids (and the
/// total) come from `instances` and `domains` alone, and only those rows are joined.
pub async fn list_instances(
    db: &Db,
    scope: &Scope,
    f: &InstanceFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<InstanceRow>, i64), DbError> {
    let mut cond = String::new();
    let mut args = Vec::new();
    scope.push(&mut cond, &mut args, "i.account_id", "d.path", "i.domain_id");
    if let Some(v) = &f.uuid {
        eq(&mut cond, &mut args, "i.uuid", Arg::Text(v.clone()));
    }
    if let Some(v) = &f.name {
        eq(&mut cond, &mut args, "i.name", Arg::Text(v.clone()));
    }
    if let Some(v) = &f.state {
        eq(&mut cond, &mut args, "LOWER(i.state)", Arg::Text(v.to_ascii_lowercase()));
    }
    if let Some(v) = f.zone_id {
        eq(&mut cond, &mut args, "i.zone_id", Arg::Int(v));
    }
    if let Some(v) = f.host_id {
        eq(&mut cond, &mut args, "i.host_id", Arg::Int(v));
    }
    if let Some(k) = &f.keyword {
        if db.backend() == Backend::Sqlite {
            // SQLite's LIKE ignores ASCII case by itself, and matching each column keeps
            // the match inside the listing index; LOWER() of a concatenation would not.
            args.push(Arg::Text(format!("%{}%", like_escape(k))));
            let n = args.len();
            cond.push_str(&format!(" AND (i.display_name LIKE ${n} ESCAPE '\\' OR i.name LIKE ${n} ESCAPE '\\')"));
        } else {
            keyword(&mut cond, &mut args, "i.display_name || ' ' || i.name", k);
        }
    }
    // Domains are joined only when the scope asks for a domain subtree.
    let join = if scope.domain_prefix.is_some() { " JOIN domains d ON d.id = i.domain_id" } else { "" };
    let light = format!("SELECT i.id FROM instances i{join} WHERE i.removed IS NULL{cond}");
    if let Some(found) = list_on_reader(db, &light, &args, page) {
        return found;
    }
    let total = match page {
        Some(_) => Some(count(db, &light, &args).await?),
        None => None,
    };
    let mut ids_sql = format!("{light} ORDER BY i.id");
    push_page(&mut ids_sql, page);
    let ids: Vec<(i64,)> = fetch_all(db, &ids_sql, &args).await?;
    let rows: Vec<InstanceRow> = if ids.is_empty() {
        vec![]
    } else {
        let list: Vec<String> = ids.iter().map(|(id,)| id.to_string()).collect();
        let sql = format!("{SELECT} AND i.id IN ({}) ORDER BY i.id", list.join(", "));
        fetch_all(db, &sql, &[]).await?
    };
    let total = total.unwrap_or(rows.len() as i64);
    Ok((rows, total))
}

/// The SQLite path of `list_instances`: one pass over the listing index yields both the
/// total and the page (a count and then a page would scan twice), and the page's full
/// rows are read in-line. `None` when the database has no in-line reader.
fn list_on_reader(
    db: &Db,
    light: &str,
    args: &[Arg],
    page: Option<(u32, u32)>,
) -> Option<Result<(Vec<InstanceRow>, i64), DbError>> {
    let ids = read_rows(db, light, args, |r| r.get::<_, i64>(0))?;
    Some(ids.and_then(|mut ids| {
        let total = ids.len() as i64;
        // Unordered from the index; sorting the ids here is cheaper than asking SQLite to.
        ids.sort_unstable();
        let shown = match page {
            Some((p, size)) => {
                let start = ((p.max(1) - 1) as usize).saturating_mul(size as usize).min(ids.len());
                let end = start.saturating_add(size as usize).min(ids.len());
                &ids[start..end]
            }
            None => &ids[..],
        };
        if shown.is_empty() {
            return Ok((vec![], total));
        }
        let list: Vec<String> = shown.iter().map(i64::to_string).collect();
        let sql = format!("{SELECT} AND i.id IN ({}) ORDER BY i.id", list.join(", "));
        let rows = read_rows(db, &sql, &[], instance_row).unwrap_or_else(|| Ok(vec![]))?;
        Ok((rows, total))
    }))
}

fn instance_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InstanceRow> {
    Ok(InstanceRow {
        id: r.get("id")?,
        uuid: r.get("uuid")?,
        name: r.get("name")?,
        instance_name: r.get("instance_name")?,
        display_name: r.get("display_name")?,
        account_id: r.get("account_id")?,
        account_name: r.get("account_name")?,
        account_type: r.get("account_type")?,
        domain_id: r.get("domain_id")?,
        domain_uuid: r.get("domain_uuid")?,
        domain_name: r.get("domain_name")?,
        domain_path: r.get("domain_path")?,
        zone_id: r.get("zone_id")?,
        zone_uuid: r.get("zone_uuid")?,
        zone_name: r.get("zone_name")?,
        host_id: r.get("host_id")?,
        host_uuid: r.get("host_uuid")?,
        host_name: r.get("host_name")?,
        host_uri: r.get("host_uri")?,
        host_driver: r.get("host_driver")?,
        offering_id: r.get("offering_id")?,
        offering_uuid: r.get("offering_uuid")?,
        offering_name: r.get("offering_name")?,
        template_id: r.get("template_id")?,
        template_uuid: r.get("template_uuid")?,
        template_name: r.get("template_name")?,
        template_display_text: r.get("template_display_text")?,
        template_password_enabled: r.get("template_password_enabled")?,
        os_type_uuid: r.get("os_type_uuid")?,
        os_type_name: r.get("os_type_name")?,
        root_volume_id: r.get("root_volume_id")?,
        hypervisor: r.get("hypervisor")?,
        state: r.get("state")?,
        cpus: r.get("cpus")?,
        cpu_mhz: r.get("cpu_mhz")?,
        memory_mb: r.get("memory_mb")?,
        created: r.get("created")?,
        iso_id: r.get("iso_id")?,
        iso_uuid: r.get("iso_uuid")?,
        iso_name: r.get("iso_name")?,
        iso_display_text: r.get("iso_display_text")?,
        user_data_uuid: r.get("user_data_uuid")?,
        user_data_name: r.get("user_data_name")?,
    })
}

pub async fn instance(db: &Db, uuid: &str) -> Result<Option<InstanceRow>, DbError> {
    let f = InstanceFilter { uuid: Some(uuid.into()), ..Default::default() };
    Ok(list_instances(db, &Scope::default(), &f, None).await?.0.into_iter().next())
}

/// A host that could run an instance, with what its instances already hold.
#[derive(Debug, Clone, FromRow)]
pub struct Candidate {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub cpus: i64,
    pub cpu_mhz: i64,
    pub memory_bytes: i64,
    pub cpu_overcommit: f64,
    pub memory_overcommit: f64,
    pub used_mhz: i64,
    pub used_mb: i64,
}

impl Candidate {
    /// The CPU the allocator may hand out on this host: its MHz times the cluster's overcommit.
    pub fn total_mhz(&self) -> i64 {
        ((self.cpus * self.cpu_mhz) as f64 * self.cpu_overcommit) as i64
    }

    /// The memory the allocator may hand out on this host, in MB, overcommit included.
    pub fn total_mb(&self) -> i64 {
        ((self.memory_bytes >> 20) as f64 * self.memory_overcommit) as i64
    }

    pub fn free_mhz(&self) -> i64 {
        self.total_mhz() - self.used_mhz
    }

    pub fn free_mb(&self) -> i64 {
        self.total_mb() - self.used_mb
    }
}

/// Hosts with what their instances hold; `cond` narrows which hosts.
fn load_sql(cond: &str) -> String {
    format!(
        "SELECT h.id, h.uuid, h.name, h.cpus, h.cpu_mhz, h.memory_bytes, c.cpu_overcommit, c.memory_overcommit, \
         CAST(COALESCE((SELECT SUM(i.cpus * i.cpu_mhz) FROM instances i WHERE i.host_id = h.id \
           AND i.removed IS NULL AND i.state NOT IN ({IDLE_STATES})), 0) AS BIGINT) AS used_mhz, \
         CAST(COALESCE((SELECT SUM(i.memory_mb) FROM instances i WHERE i.host_id = h.id \
           AND i.removed IS NULL AND i.state NOT IN ({IDLE_STATES})), 0) AS BIGINT) AS used_mb \
         FROM hosts h JOIN clusters c ON c.id = h.cluster_id JOIN pods p ON p.id = h.pod_id \
         WHERE h.removed IS NULL {cond} ORDER BY h.id"
    )
}

fn candidates_sql(extra: &str) -> String {
    load_sql(&format!(
        "AND h.state = 'Up' AND h.resource_state = 'Enabled' \
         AND c.allocation_state = 'Enabled' AND p.allocation_state = 'Enabled' {extra}"
    ))
}

/// The hosts `ids`, whatever their state, with what their instances hold as the allocator
/// counts it: the numbers capacity reports and listHosts show.
pub async fn host_loads(db: &Db, ids: &[i64]) -> Result<Vec<Candidate>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // Ids from the database's own rows: numbers, safe to write into the statement.
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    let sql = load_sql(&format!("AND h.id IN ({})", list.join(", ")));
    sqlx::query_as(&sql).fetch_all(db.pool()).await.map_err(DbError::from)
}

/// What an instance needs of a host.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub cpus: i64,
    pub cpu_mhz: i64,
    pub memory_mb: i64,
}

impl Need {
    pub fn fits(&self, c: &Candidate) -> bool {
        c.free_mhz() >= self.cpus * self.cpu_mhz && c.free_mb() >= self.memory_mb
    }
}

/// Why nothing was placed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    NoHost(String),
    #[error("{0}")]
    NoRoom(String),
    #[error("instance {0} is not in a state to start")]
    Busy(String),
}

impl From<sqlx::Error> for PlaceError {
    fn from(e: sqlx::Error) -> Self {
        PlaceError::Db(DbError::from(e))
    }
}

fn no_room(need: &Need, hosts: &[Candidate], place: &str) -> PlaceError {
    let best_cpu = hosts.iter().map(Candidate::free_mhz).max().unwrap_or(0).max(0);
    let best_mem = hosts.iter().map(Candidate::free_mb).max().unwrap_or(0).max(0);
    let cpu_short = hosts.iter().all(|h| h.free_mhz() < need.cpus * need.cpu_mhz);
    let mem_short = hosts.iter().all(|h| h.free_mb() < need.memory_mb);
    let what = match (cpu_short, mem_short) {
        (true, true) => "CPU and memory",
        (true, false) => "CPU",
        (false, true) => "memory",
        (false, false) => "CPU and memory together",
    };
    PlaceError::NoRoom(format!(
        "Insufficient capacity: {place} has no host with enough free {what} for {} CPU x {} MHz and {} MB \
         (the most free on one host: {best_cpu} MHz of CPU, {best_mem} MB of memory)",
        need.cpus, need.cpu_mhz, need.memory_mb
    ))
}

/// A new instance to record.
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub uuid: String,
    pub name: String,
    pub display_name: String,
    pub account_id: i64,
    pub domain_id: i64,
    pub zone_id: i64,
    pub zone_name: String,
    pub service_offering_id: i64,
    pub template_id: i64,
    pub hypervisor: String,
    pub need: Need,
    pub user_data: Option<String>,
    /// Whether it starts at once, holding capacity (state Starting), or stays Stopped.
    pub start: bool,
}

async fn lock_zone(tx: &mut sqlx::Transaction<'static, sqlx::Any>, zone_id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE zones SET alloc_seq = alloc_seq + 1 WHERE id = $1").bind(zone_id).execute(&mut **tx).await?;
    Ok(())
}

/// Picks a host for a new instance and records the instance on it, within `tx` (which
/// also records the job that builds it); the zone stays locked until `tx` ends. Returns
/// the host's id.
pub async fn place(tx: &mut sqlx::Transaction<'static, sqlx::Any>, n: &NewInstance) -> Result<i64, PlaceError> {
    lock_zone(tx, n.zone_id).await?;
    let sql = candidates_sql("AND h.zone_id = $1 AND c.hypervisor = $2");
    let hosts: Vec<Candidate> =
        sqlx::query_as(&sql).bind(n.zone_id).bind(&n.hypervisor).fetch_all(&mut **tx).await.map_err(DbError::from)?;
    if hosts.is_empty() {
        return Err(PlaceError::NoHost(format!(
            "Zone {} has no Up and Enabled {} host to run the instance on",
            n.zone_name, n.hypervisor
        )));
    }
    // The host with the most free memory spreads instances; a stopped one needs no room.
    let host = hosts
        .iter()
        .filter(|h| !n.start || n.need.fits(h))
        .max_by_key(|h| (h.free_mb(), -h.id))
        .ok_or_else(|| no_room(&n.need, &hosts, &format!("zone {}", n.zone_name)))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO instances (uuid, name, instance_name, display_name, account_id, domain_id, zone_id, host_id, \
         service_offering_id, template_id, hypervisor, state, cpus, cpu_mhz, memory_mb, user_data, created) \
         VALUES ($1, $2, '', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
    )
    .bind(&n.uuid)
    .bind(&n.name)
    .bind(&n.display_name)
    .bind(n.account_id)
    .bind(n.domain_id)
    .bind(n.zone_id)
    .bind(host.id)
    .bind(n.service_offering_id)
    .bind(n.template_id)
    .bind(&n.hypervisor)
    .bind(if n.start { VmState::Starting } else { VmState::Stopped }.as_str())
    .bind(n.need.cpus)
    .bind(n.need.cpu_mhz)
    .bind(n.need.memory_mb)
    .bind(&n.user_data)
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("UPDATE instances SET instance_name = $1 WHERE id = $2")
        .bind(format!("i-{}-{id}-VM", n.account_id))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(host.id)
}

/// Takes the room a Stopped instance needs on its own host again (Stopped → Starting).
pub async fn reserve_start(db: &Db, i: &InstanceRow) -> Result<(), PlaceError> {
    let host_id = i.host_id.ok_or_else(|| PlaceError::NoHost(format!("Instance {} has no host", i.name)))?;
    let mut tx = db.begin().await?;
    lock_zone(&mut tx, i.zone_id).await?;
    let sql = candidates_sql("AND h.id = $1");
    let hosts: Vec<Candidate> = sqlx::query_as(&sql).bind(host_id).fetch_all(&mut *tx).await.map_err(DbError::from)?;
    let Some(host) = hosts.first() else {
        return Err(PlaceError::NoHost(format!("The host of instance {} is not Up and Enabled", i.name)));
    };
    let need = Need { cpus: i.cpus, cpu_mhz: i.cpu_mhz, memory_mb: i.memory_mb };
    if !need.fits(host) {
        return Err(no_room(&need, &hosts, &format!("host {}", host.name)));
    }
    let done = sqlx::query("UPDATE instances SET state = $1 WHERE id = $2 AND state = $3")
        .bind(VmState::Starting.as_str())
        .bind(i.id)
        .bind(VmState::Stopped.as_str())
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Err(PlaceError::Busy(i.uuid.clone()));
    }
    tx.commit().await?;
    Ok(())
}

/// The Up and Enabled host `host_id` with what its instances hold, after locking the zone.
async fn locked_host(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    zone_id: i64,
    host_id: i64,
) -> Result<Option<Candidate>, PlaceError> {
    lock_zone(tx, zone_id).await?;
    let sql = candidates_sql("AND h.id = $1");
    let hosts: Vec<Candidate> = sqlx::query_as(&sql).bind(host_id).fetch_all(&mut **tx).await.map_err(DbError::from)?;
    Ok(hosts.into_iter().next())
}

/// Records a new offering for a Stopped instance if its host has room for what the
/// offering needs (checked as a start would, so the instance can still start there).
pub async fn resize(db: &Db, i: &InstanceRow, offering_id: i64, need: Need) -> Result<(), PlaceError> {
    let host_id = i.host_id.ok_or_else(|| PlaceError::NoHost(format!("Instance {} has no host", i.name)))?;
    let mut tx = db.begin().await?;
    let Some(host) = locked_host(&mut tx, i.zone_id, host_id).await? else {
        return Err(PlaceError::NoHost(format!("The host of instance {} is not Up and Enabled", i.name)));
    };
    if !need.fits(&host) {
        return Err(no_room(&need, std::slice::from_ref(&host), &format!("host {}", host.name)));
    }
    let done = sqlx::query(
        "UPDATE instances SET service_offering_id = $1, cpus = $2, cpu_mhz = $3, memory_mb = $4 \
         WHERE id = $5 AND state = 'Stopped' AND removed IS NULL",
    )
    .bind(offering_id)
    .bind(need.cpus)
    .bind(need.cpu_mhz)
    .bind(need.memory_mb)
    .bind(i.id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(PlaceError::Busy(i.uuid.clone()));
    }
    tx.commit().await?;
    Ok(())
}

/// Puts an instance's recorded offering back (after a failed resize).
pub async fn set_offering(db: &Db, i: &InstanceRow) -> Result<(), DbError> {
    sqlx::query("UPDATE instances SET service_offering_id = $1, cpus = $2, cpu_mhz = $3, memory_mb = $4 WHERE id = $5")
        .bind(i.offering_id)
        .bind(i.cpus)
        .bind(i.cpu_mhz)
        .bind(i.memory_mb)
        .bind(i.id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Records an instance on host `to` in state Migrating, if `to` is Up and Enabled and,
/// for a Running instance, has room for it: from then on `to` holds its share.
pub async fn begin_move(db: &Db, i: &InstanceRow, to: i64) -> Result<(), PlaceError> {
    let mut tx = db.begin().await?;
    let Some(host) = locked_host(&mut tx, i.zone_id, to).await? else {
        return Err(PlaceError::NoHost("The destination host is not Up and Enabled".into()));
    };
    let need = Need { cpus: i.cpus, cpu_mhz: i.cpu_mhz, memory_mb: i.memory_mb };
    if i.state == VmState::Running && !need.fits(&host) {
        return Err(no_room(&need, std::slice::from_ref(&host), &format!("host {}", host.name)));
    }
    let done = sqlx::query(
        "UPDATE instances SET host_id = $1, state = 'Migrating' WHERE id = $2 AND state = $3 AND host_id = $4 \
         AND removed IS NULL",
    )
    .bind(to)
    .bind(i.id)
    .bind(i.state.as_str())
    .bind(i.host_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(PlaceError::Busy(i.uuid.clone()));
    }
    tx.commit().await?;
    Ok(())
}

/// Ends a move: the instance is on `host_id` in `state`.
pub async fn end_move(db: &Db, id: i64, host_id: i64, state: VmState) -> Result<(), DbError> {
    sqlx::query("UPDATE instances SET host_id = $1, state = $2 WHERE id = $3")
        .bind(host_id)
        .bind(state.as_str())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The other Up and Enabled hosts of a cluster, with what their instances hold.
pub async fn cluster_hosts(db: &Db, cluster_id: i64, except: i64) -> Result<Vec<Candidate>, DbError> {
    let sql = candidates_sql("AND h.cluster_id = $1 AND h.id <> $2");
    Ok(sqlx::query_as(&sql).bind(cluster_id).bind(except).fetch_all(db.pool()).await?)
}

/// Puts an ISO (a template row id) in an instance's CD-ROM drive, or takes it out (None).
/// With `expect` the change happens only if the drive holds that now; false if not.
pub async fn set_iso(db: &Db, id: i64, iso: Option<i64>, expect: Option<i64>) -> Result<bool, DbError> {
    let done = match expect {
        Some(e) => {
            sqlx::query("UPDATE instances SET iso_id = $1 WHERE id = $2 AND iso_id = $3")
                .bind(iso)
                .bind(id)
                .bind(e)
                .execute(db.pool())
                .await?
        }
        None => {
            sqlx::query("UPDATE instances SET iso_id = $1 WHERE id = $2 AND iso_id IS NULL")
                .bind(iso)
                .bind(id)
                .execute(db.pool())
                .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// Moves an instance from one state to another; false when it was not in `from`.
pub async fn transition(db: &Db, id: i64, from: &[VmState], to: VmState) -> Result<bool, DbError> {
    if let Some(bad) = from.iter().find(|f| !f.can_become(to)) {
        // A workflow asked for a change the state table forbids: refuse it as a conflict.
        tracing::error!(instance = id, "refused a VM state change from {bad} to {to}");
        return Ok(false);
    }
    let list = from.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ");
    let done = sqlx::query(&format!(
        "UPDATE instances SET state = $1 WHERE id = $2 AND removed IS NULL AND state IN ({list})"
    ))
    .bind(to.as_str())
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_state(db: &Db, id: i64, state: VmState) -> Result<(), DbError> {
    sqlx::query("UPDATE instances SET state = $1 WHERE id = $2")
        .bind(state.as_str())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn set_root_volume(db: &Db, id: i64, volume_uuid: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE volumes SET volume_type = 'ROOT', instance_id = $1, device_id = 0 WHERE uuid = $2")
        .bind(id)
        .bind(volume_uuid)
        .execute(db.pool())
        .await?;
    sqlx::query("UPDATE instances SET root_volume_id = (SELECT id FROM volumes WHERE uuid = $1) WHERE id = $2")
        .bind(volume_uuid)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The uuid of an instance's root volume.
pub async fn root_volume_uuid(db: &Db, i: &InstanceRow) -> Result<Option<String>, DbError> {
    let Some(id) = i.root_volume_id else { return Ok(None) };
    Ok(sqlx::query_scalar("SELECT uuid FROM volumes WHERE id = $1 AND removed IS NULL")
        .bind(id)
        .fetch_optional(db.pool())
        .await?)
}

/// Removes an instance for good: it holds nothing any more.
pub async fn remove(db: &Db, id: i64, state: VmState) -> Result<(), DbError> {
    // Its data disks outlive it, free to attach elsewhere.
    sqlx::query(
        "UPDATE volumes SET instance_id = NULL, device_id = NULL WHERE instance_id = $1 AND volume_type <> 'ROOT'",
    )
    .bind(id)
    .execute(db.pool())
    .await?;
    sqlx::query("UPDATE instances SET state = $1, removed = $2 WHERE id = $3")
        .bind(state.as_str())
        .bind(now_ms())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::VmState;

    #[test]
    fn vm_states_read_back_and_move_only_as_the_table_says() {
        for s in VmState::ALL {
            assert_eq!(s.as_str().parse::<VmState>().unwrap(), s);
            assert!(s.can_become(s), "{s} to itself");
        }
        assert!("running".parse::<VmState>().is_err(), "names are exact");
        // Removed for good: nothing comes after.
        for end in [VmState::Expunged, VmState::Error] {
            assert!(VmState::ALL.iter().all(|&to| to == end || !end.can_become(to)), "{end} is final");
        }
        // Every job's own state has a way out both forwards and back.
        for busy in [VmState::Starting, VmState::Stopping, VmState::Migrating, VmState::Expunging] {
            assert!(busy.can_become(VmState::Running) || busy.can_become(VmState::Stopped), "{busy} has no exit");
        }
        assert!(!VmState::Destroyed.can_become(VmState::Running), "a destroyed VM is recovered Stopped");
        assert!(!VmState::Migrating.can_become(VmState::Destroyed));
        // The SQL list of idle states is the enum's.
        let idle: Vec<String> = VmState::ALL.iter().filter(|s| s.is_idle()).map(|s| format!("'{s}'")).collect();
        assert_eq!(super::IDLE_STATES, idle.join(", "));
    }

    use super::*;

    fn host(cpus: i64, mhz: i64, mem_mb: i64, used_mhz: i64, used_mb: i64, over: f64) -> Candidate {
        Candidate {
            id: 1,
            uuid: "u".into(),
            name: "h".into(),
            cpus,
            cpu_mhz: mhz,
            memory_bytes: mem_mb << 20,
            cpu_overcommit: over,
            memory_overcommit: 1.0,
            used_mhz,
            used_mb,
        }
    }

    #[test]
    fn room_counts_overcommit_and_what_is_used() {
        let need = Need { cpus: 2, cpu_mhz: 1000, memory_mb: 512 };
        assert!(need.fits(&host(2, 1000, 512, 0, 0, 1.0)));
        assert!(!need.fits(&host(2, 1000, 512, 1, 0, 1.0)));
        assert!(need.fits(&host(1, 1000, 512, 0, 0, 2.0)));
        assert!(!need.fits(&host(4, 1000, 1024, 0, 600, 1.0)));
        let e = no_room(&need, &[host(1, 1000, 4096, 0, 0, 1.0)], "zone z").to_string();
        assert!(e.contains("enough free CPU for 2 CPU x 1000 MHz"), "{e}");
        let e = no_room(&need, &[host(4, 1000, 256, 0, 0, 1.0)], "zone z").to_string();
        assert!(e.contains("free memory"), "{e}");
    }
}
