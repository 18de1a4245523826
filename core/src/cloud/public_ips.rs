//! Public traffic as stored: a zone's public IP ranges and their addresses, which
//! account and guest network holds each, static NAT targets, and the routers of guest
//! networks. Addresses are handed out inside transactions that hold the zone's row, so
//! none is given twice and exhaustion is the database's answer.

use sqlx::FromRow;

use crate::auth::store::{Arg, Scope, eq, fetch_all, fetch_page};
use crate::db::{Db, DbError, new_uuid, now_ms};

/// Why an address could not be handed out.
#[derive(Debug, thiserror::Error)]
pub enum PublicIpError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// Every address of the zone's ranges is taken; the ranges as (start, end).
    #[error("no free public IP address")]
    Exhausted { ranges: Vec<(i64, i64)> },
    #[error("{0} is gone")]
    Gone(String),
}

impl From<sqlx::Error> for PublicIpError {
    fn from(e: sqlx::Error) -> Self {
        PublicIpError::Db(DbError::from(e))
    }
}

// ------------------------------------------------------------------ ranges

#[derive(Debug, Clone, FromRow)]
pub struct PublicRangeRow {
    pub id: i64,
    pub uuid: String,
    pub zone_id: i64,
    pub zone_uuid: String,
    pub zone_name: String,
    pub physical_network_id: i64,
    pub physical_network_uuid: String,
    pub vlan: Option<i64>,
    pub gateway: String,
    pub netmask: String,
    pub start_ip: i64,
    pub end_ip: i64,
    pub account_name: Option<String>,
    pub domain_uuid: Option<String>,
    pub domain_name: Option<String>,
    pub created: i64,
}

const RANGE_SELECT: &str = "SELECT r.id, r.uuid, r.zone_id, z.uuid AS zone_uuid, z.name AS zone_name, \
     r.physical_network_id, p.uuid AS physical_network_uuid, r.vlan, r.gateway, r.netmask, r.start_ip, r.end_ip, \
     a.name AS account_name, d.uuid AS domain_uuid, d.name AS domain_name, r.created \
     FROM public_ranges r JOIN zones z ON z.id = r.zone_id JOIN physical_networks p ON p.id = r.physical_network_id \
     LEFT JOIN accounts a ON a.id = r.account_id LEFT JOIN domains d ON d.id = r.domain_id WHERE r.removed IS NULL";

#[derive(Debug, Default, Clone)]
pub struct RangeFilter {
    pub uuid: Option<String>,
    pub zone_id: Option<i64>,
    pub physical_network_id: Option<i64>,
    pub vlan: Option<i64>,
}

/// The live public ranges matching `f`, in creation order.
pub async fn list_ranges(db: &Db, f: &RangeFilter) -> Result<Vec<PublicRangeRow>, DbError> {
    let mut sql = RANGE_SELECT.to_owned();
    let mut args = Vec::new();
    if let Some(v) = &f.uuid {
        eq(&mut sql, &mut args, "r.uuid", Arg::Text(v.clone()));
    }
    for (col, v) in [("r.zone_id", f.zone_id), ("r.physical_network_id", f.physical_network_id), ("r.vlan", f.vlan)] {
        if let Some(v) = v {
            eq(&mut sql, &mut args, col, Arg::Int(v));
        }
    }
    sql.push_str(" ORDER BY r.id");
    fetch_all(db, &sql, &args).await
}

pub struct NewPublicRange {
    pub zone_id: i64,
    pub physical_network_id: i64,
    pub vlan: Option<i64>,
    pub gateway: String,
    pub netmask: String,
    pub start: i64,
    pub end: i64,
}

/// Addresses inserted per statement when a range is created.
const INSERT_BATCH: i64 = 400;

/// Creates a range with one free address row per address, in one transaction.
pub async fn create_range(db: &Db, r: &NewPublicRange) -> Result<String, DbError> {
    let uuid = new_uuid();
    let now = now_ms();
    let mut tx = db.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO public_ranges (uuid, zone_id, physical_network_id, vlan, gateway, netmask, start_ip, end_ip, \
         created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(&uuid)
    .bind(r.zone_id)
    .bind(r.physical_network_id)
    .bind(r.vlan)
    .bind(&r.gateway)
    .bind(&r.netmask)
    .bind(r.start)
    .bind(r.end)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let mut first = r.start;
    while first <= r.end {
        let last = (first + INSERT_BATCH - 1).min(r.end);
        let rows: Vec<String> =
            (first..=last).map(|a| format!("('{}', {id}, {}, {a}, 'Free')", new_uuid(), r.zone_id)).collect();
        let sql =
            format!("INSERT INTO public_ips (uuid, range_id, zone_id, address, state) VALUES {}", rows.join(", "));
        sqlx::query(&sql).execute(&mut *tx).await?;
        first = last + 1;
    }
    tx.commit().await?;
    Ok(uuid)
}

/// How many addresses of a range are held by an account.
pub async fn range_in_use(db: &Db, range_id: i64) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM public_ips WHERE range_id = $1 AND state <> 'Free'")
        .bind(range_id)
        .fetch_one(db.pool())
        .await?)
}

/// Deletes a range and its addresses, unless one was taken meanwhile (then false).
pub async fn delete_range(db: &Db, range_id: i64) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM public_ips WHERE range_id = $1 AND state <> 'Free'")
        .bind(range_id)
        .fetch_one(&mut *tx)
        .await?;
    if held > 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM public_ips WHERE range_id = $1").bind(range_id).execute(&mut *tx).await?;
    sqlx::query("UPDATE public_ranges SET removed = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(range_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

// ------------------------------------------------------------------ addresses

#[derive(Debug, Clone, FromRow)]
pub struct PublicIpRow {
    pub id: i64,
    pub uuid: String,
    pub range_id: i64,
    pub range_uuid: String,
    pub vlan: Option<i64>,
    pub gateway: String,
    pub netmask: String,
    pub physical_network_uuid: String,
    pub zone_id: i64,
    pub zone_uuid: String,
    pub zone_name: String,
    pub address: i64,
    pub state: String,
    pub account_id: Option<i64>,
    pub account_name: Option<String>,
    pub account_type: Option<i64>,
    pub domain_id: Option<i64>,
    pub domain_uuid: Option<String>,
    pub domain_name: Option<String>,
    pub domain_path: Option<String>,
    pub network_id: Option<i64>,
    pub network_uuid: Option<String>,
    pub network_name: Option<String>,
    pub is_source_nat: i64,
    pub static_nat_nic_id: Option<i64>,
    pub static_nat_vm_ip: Option<i64>,
    pub vm_uuid: Option<String>,
    pub vm_name: Option<String>,
    pub vm_display_name: Option<String>,
    pub for_display: i64,
    pub allocated: Option<i64>,
}

impl PublicIpRow {
    /// The account holding the address; a free address is no one's.
    pub fn owner(&self) -> Option<crate::auth::Owner<'_>> {
        Some(crate::auth::Owner {
            account_id: self.account_id?,
            account_type: self.account_type?,
            domain_path: self.domain_path.as_deref()?,
        })
    }

    pub fn ip(&self) -> std::net::Ipv4Addr {
        super::networks::int_to_ip(self.address)
    }
}

const IP_SELECT: &str = "SELECT i.id, i.uuid, i.range_id, r.uuid AS range_uuid, r.vlan, r.gateway, r.netmask, \
     p.uuid AS physical_network_uuid, i.zone_id, z.uuid AS zone_uuid, z.name AS zone_name, i.address, i.state, \
     i.account_id, a.name AS account_name, a.account_type, i.domain_id, d.uuid AS domain_uuid, d.name AS domain_name, \
     d.path AS domain_path, i.network_id, n.uuid AS network_uuid, n.name AS network_name, i.is_source_nat, \
     i.static_nat_nic_id, i.static_nat_vm_ip, c.instance_uuid AS vm_uuid, vm.name AS vm_name, \
     vm.display_name AS vm_display_name, i.for_display, i.allocated \
     FROM public_ips i JOIN public_ranges r ON r.id = i.range_id JOIN physical_networks p ON p.id = r.physical_network_id \
     JOIN zones z ON z.id = i.zone_id LEFT JOIN accounts a ON a.id = i.account_id \
     LEFT JOIN domains d ON d.id = i.domain_id LEFT JOIN networks n ON n.id = i.network_id \
     LEFT JOIN nics c ON c.id = i.static_nat_nic_id LEFT JOIN instances vm ON vm.uuid = c.instance_uuid \
     WHERE r.removed IS NULL";

#[derive(Debug, Default, Clone)]
pub struct IpFilter {
    pub uuid: Option<String>,
    pub address: Option<i64>,
    pub zone_id: Option<i64>,
    pub range_uuid: Option<String>,
    pub physical_network_uuid: Option<String>,
    pub network_id: Option<i64>,
    pub state: Option<String>,
    pub source_nat: Option<bool>,
    pub static_nat: Option<bool>,
    pub for_display: Option<bool>,
    /// Only addresses some account holds (CloudStack's allocatedonly, its default).
    pub allocated_only: bool,
}

/// Addresses matching `f`: those the scope's accounts hold, plus, unless
/// `allocated_only`, the free ones (no one's, so everyone may see them).
pub async fn list_ips(
    db: &Db,
    scope: &Scope,
    f: &IpFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<PublicIpRow>, i64), DbError> {
    let mut sql = IP_SELECT.to_owned();
    let mut args = Vec::new();
    let mut held = String::new();
    scope.push(&mut held, &mut args, "i.account_id", "d.path", "i.domain_id");
    let held = held.strip_prefix(" AND ").unwrap_or("1 = 1").to_owned();
    if f.allocated_only {
        sql.push_str(&format!(" AND i.state <> 'Free' AND ({held})"));
    } else {
        sql.push_str(&format!(" AND (i.state = 'Free' OR ({held}))"));
    }
    if let Some(v) = &f.uuid {
        eq(&mut sql, &mut args, "i.uuid", Arg::Text(v.clone()));
    }
    if let Some(v) = &f.range_uuid {
        eq(&mut sql, &mut args, "r.uuid", Arg::Text(v.clone()));
    }
    if let Some(v) = &f.physical_network_uuid {
        eq(&mut sql, &mut args, "p.uuid", Arg::Text(v.clone()));
    }
    if let Some(v) = &f.state {
        eq(&mut sql, &mut args, "LOWER(i.state)", Arg::Text(v.to_ascii_lowercase()));
    }
    let ints = [
        ("i.address", f.address),
        ("i.zone_id", f.zone_id),
        ("i.network_id", f.network_id),
        ("i.is_source_nat", f.source_nat.map(i64::from)),
        ("i.for_display", f.for_display.map(i64::from)),
    ];
    for (col, v) in ints {
        if let Some(v) = v {
            eq(&mut sql, &mut args, col, Arg::Int(v));
        }
    }
    match f.static_nat {
        Some(true) => sql.push_str(" AND i.static_nat_nic_id IS NOT NULL"),
        Some(false) => sql.push_str(" AND i.static_nat_nic_id IS NULL"),
        None => {}
    }
    fetch_page(db, sql, &args, "i.address", page).await
}

/// One address by uuid, whoever holds it.
pub async fn ip(db: &Db, uuid: &str) -> Result<Option<PublicIpRow>, DbError> {
    let f = IpFilter { uuid: Some(uuid.into()), ..Default::default() };
    Ok(list_ips(db, &Scope::default(), &f, None).await?.0.into_iter().next())
}

/// One address by its zone and value, whoever holds it.
pub async fn ip_at(db: &Db, zone_id: Option<i64>, address: i64) -> Result<Vec<PublicIpRow>, DbError> {
    let f = IpFilter { address: Some(address), zone_id, ..Default::default() };
    Ok(list_ips(db, &Scope::default(), &f, None).await?.0)
}

/// The addresses a guest network holds, source NAT first.
pub async fn ips_of_network(db: &Db, network_id: i64) -> Result<Vec<PublicIpRow>, DbError> {
    let sql = format!("{IP_SELECT} AND i.network_id = $1 ORDER BY i.is_source_nat DESC, i.address");
    Ok(sqlx::query_as(&sql).bind(network_id).fetch_all(db.pool()).await?)
}

/// Who an address is handed to.
#[derive(Debug, Clone)]
pub struct Holder {
    pub zone_id: i64,
    pub account_id: i64,
    pub domain_id: i64,
    pub network_id: i64,
}

/// Takes the zone's row (on PostgreSQL its lock serialises allocations in the zone;
/// SQLite's BEGIN IMMEDIATE already did) and the network's.
async fn lock(tx: &mut sqlx::Transaction<'static, sqlx::Any>, h: &Holder) -> Result<(), PublicIpError> {
    sqlx::query("UPDATE zones SET alloc_seq = alloc_seq + 1 WHERE id = $1").bind(h.zone_id).execute(&mut **tx).await?;
    let live = sqlx::query("UPDATE networks SET alloc_seq = alloc_seq + 1 WHERE id = $1 AND removed IS NULL")
        .bind(h.network_id)
        .execute(&mut **tx)
        .await?;
    if live.rows_affected() != 1 {
        return Err(PublicIpError::Gone(format!("network {}", h.network_id)));
    }
    Ok(())
}

async fn source_nat_of(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    network_id: i64,
) -> Result<Option<i64>, PublicIpError> {
    Ok(sqlx::query_scalar("SELECT id FROM public_ips WHERE network_id = $1 AND is_source_nat = 1")
        .bind(network_id)
        .fetch_optional(&mut **tx)
        .await?)
}

/// Hands the lowest free address of the zone (ranges dedicated to the account first)
/// to `h`. It becomes the network's source NAT address when `source_nat_if_none` and
/// the network has none yet, as CloudStack makes the first address of an Isolated
/// network its source NAT.
async fn take(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    h: &Holder,
    source_nat: bool,
) -> Result<i64, PublicIpError> {
    let free: Option<i64> = sqlx::query_scalar(
        "SELECT i.id FROM public_ips i JOIN public_ranges r ON r.id = i.range_id \
         WHERE i.zone_id = $1 AND i.state = 'Free' AND r.removed IS NULL AND (r.account_id IS NULL OR r.account_id = $2) \
         ORDER BY CASE WHEN r.account_id IS NULL THEN 1 ELSE 0 END, i.address LIMIT 1",
    )
    .bind(h.zone_id)
    .bind(h.account_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = free else {
        let ranges: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT start_ip, end_ip FROM public_ranges WHERE zone_id = $1 AND removed IS NULL \
             AND (account_id IS NULL OR account_id = $2) ORDER BY start_ip",
        )
        .bind(h.zone_id)
        .bind(h.account_id)
        .fetch_all(&mut **tx)
        .await?;
        return Err(PublicIpError::Exhausted { ranges });
    };
    sqlx::query(
        "UPDATE public_ips SET state = 'Allocated', account_id = $1, domain_id = $2, network_id = $3, \
         is_source_nat = $4, allocated = $5, for_display = 1 WHERE id = $6",
    )
    .bind(h.account_id)
    .bind(h.domain_id)
    .bind(h.network_id)
    .bind(i64::from(source_nat))
    .bind(now_ms())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Allocates an address to a guest network (associateIpAddress). With
/// `source_nat_if_none`, the network's first address becomes its source NAT address.
pub async fn allocate(db: &Db, h: &Holder, source_nat_if_none: bool) -> Result<String, PublicIpError> {
    let mut tx = db.begin().await?;
    lock(&mut tx, h).await?;
    let source_nat = source_nat_if_none && source_nat_of(&mut tx, h.network_id).await?.is_none();
    let id = take(&mut tx, h, source_nat).await?;
    let uuid: String =
        sqlx::query_scalar("SELECT uuid FROM public_ips WHERE id = $1").bind(id).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(uuid)
}

/// The network's source NAT address, allocated now if it has none; its uuid and
/// whether it was allocated by this call.
pub async fn ensure_source_nat(db: &Db, h: &Holder) -> Result<(String, bool), PublicIpError> {
    let mut tx = db.begin().await?;
    lock(&mut tx, h).await?;
    let (id, new) = match source_nat_of(&mut tx, h.network_id).await? {
        Some(id) => (id, false),
        None => (take(&mut tx, h, true).await?, true),
    };
    let uuid: String =
        sqlx::query_scalar("SELECT uuid FROM public_ips WHERE id = $1").bind(id).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok((uuid, new))
}

/// Deletes the rules on addresses `WHERE <cond>` (bound to `$1`), inside `tx`.
async fn drop_rules_of(tx: &mut sqlx::Transaction<'static, sqlx::Any>, cond: &str, value: i64) -> Result<(), DbError> {
    let ips = format!("SELECT id FROM public_ips WHERE {cond}");
    let statements = [
        format!(
            "DELETE FROM load_balancer_members WHERE rule_id IN (SELECT id FROM load_balancer_rules WHERE ip_id IN ({ips}))"
        ),
        format!("DELETE FROM load_balancer_rules WHERE ip_id IN ({ips})"),
        format!("DELETE FROM port_forwarding_rules WHERE ip_id IN ({ips})"),
        format!("DELETE FROM firewall_rules WHERE ip_id IN ({ips})"),
    ];
    for sql in statements {
        sqlx::query(&sql).bind(value).execute(&mut **tx).await?;
    }
    Ok(())
}

const FREE: &str = "state = 'Free', account_id = NULL, domain_id = NULL, network_id = NULL, is_source_nat = 0, \
     static_nat_nic_id = NULL, static_nat_vm_ip = NULL, for_display = 1, allocated = NULL";

/// Returns an address to the free pool with its rules and static NAT.
pub async fn release(db: &Db, ip_id: i64) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    drop_rules_of(&mut tx, "id = $1", ip_id).await?;
    sqlx::query(&format!("UPDATE public_ips SET {FREE} WHERE id = $1")).bind(ip_id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Everything public of a network that is going away: its addresses (source NAT too)
/// with their rules, its egress rules and its router.
pub async fn release_network(db: &Db, network_id: i64) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    drop_rules_of(&mut tx, "network_id = $1", network_id).await?;
    sqlx::query("DELETE FROM firewall_rules WHERE network_id = $1").bind(network_id).execute(&mut *tx).await?;
    sqlx::query(&format!("UPDATE public_ips SET {FREE} WHERE network_id = $1"))
        .bind(network_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE routers SET removed = $1, state = 'Destroyed', host_id = NULL WHERE network_id = $2 AND removed IS NULL")
        .bind(now_ms())
        .bind(network_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Static NATs of the addresses bound to a NIC that is going away are dropped.
pub async fn drop_static_nat_of_nic(db: &Db, nic_id: i64) -> Result<Vec<i64>, DbError> {
    let mut tx = db.begin().await?;
    let networks: Vec<i64> =
        sqlx::query_scalar("SELECT network_id FROM public_ips WHERE static_nat_nic_id = $1 AND network_id IS NOT NULL")
            .bind(nic_id)
            .fetch_all(&mut *tx)
            .await?;
    sqlx::query("UPDATE public_ips SET static_nat_nic_id = NULL, static_nat_vm_ip = NULL WHERE static_nat_nic_id = $1")
        .bind(nic_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(networks)
}

/// Sets (or with None clears) an address's static NAT target. Setting only succeeds
/// on an address without one (false otherwise: someone else set it meanwhile).
pub async fn set_static_nat(db: &Db, ip_id: i64, target: Option<(i64, i64)>) -> Result<bool, DbError> {
    let done = match target {
        Some((nic, vm_ip)) => {
            sqlx::query(
                "UPDATE public_ips SET static_nat_nic_id = $1, static_nat_vm_ip = $2 \
             WHERE id = $3 AND static_nat_nic_id IS NULL AND is_source_nat = 0",
            )
            .bind(nic)
            .bind(vm_ip)
            .bind(ip_id)
            .execute(db.pool())
            .await?
        }
        None => {
            sqlx::query("UPDATE public_ips SET static_nat_nic_id = NULL, static_nat_vm_ip = NULL WHERE id = $1")
                .bind(ip_id)
                .execute(db.pool())
                .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

pub async fn set_for_display(db: &Db, ip_id: i64, display: bool) -> Result<(), DbError> {
    sqlx::query("UPDATE public_ips SET for_display = $1 WHERE id = $2")
        .bind(i64::from(display))
        .bind(ip_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// How many live (not revoked) rules of a purpose an address has: "PortForwarding",
/// "LoadBalancing" or "Firewall".
pub async fn rule_count(db: &Db, ip_id: i64, purpose: &str) -> Result<i64, DbError> {
    let sql = match purpose {
        "PortForwarding" => "SELECT COUNT(*) FROM port_forwarding_rules WHERE ip_id = $1 AND state <> 'Revoke'",
        "LoadBalancing" => "SELECT COUNT(*) FROM load_balancer_rules WHERE ip_id = $1 AND state <> 'Revoke'",
        _ => "SELECT COUNT(*) FROM firewall_rules WHERE ip_id = $1 AND state <> 'Revoke'",
    };
    Ok(sqlx::query_scalar(sql).bind(ip_id).fetch_one(db.pool()).await?)
}

// ------------------------------------------------------------------ routers

#[derive(Debug, Clone, FromRow)]
pub struct RouterRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub network_id: i64,
    pub network_uuid: String,
    pub network_name: String,
    pub network_domain: Option<String>,
    pub zone_id: i64,
    pub zone_uuid: String,
    pub zone_name: String,
    pub host_id: Option<i64>,
    pub host_uuid: Option<String>,
    pub host_name: Option<String>,
    pub hypervisor: Option<String>,
    pub state: String,
    pub account_id: i64,
    pub account_name: String,
    pub account_type: i64,
    pub domain_id: i64,
    pub domain_uuid: String,
    pub domain_name: String,
    pub domain_path: String,
    pub generation: i64,
    pub created: i64,
}

impl crate::auth::Owned for RouterRow {
    fn owner(&self) -> crate::auth::Owner<'_> {
        crate::auth::Owner {
            account_id: self.account_id,
            account_type: self.account_type,
            domain_path: &self.domain_path,
        }
    }
}

const ROUTER_SELECT: &str = "SELECT r.id, r.uuid, r.name, r.network_id, n.uuid AS network_uuid, \
     n.name AS network_name, n.network_domain, r.zone_id, z.uuid AS zone_uuid, z.name AS zone_name, r.host_id, \
     h.uuid AS host_uuid, h.name AS host_name, h.hypervisor, r.state, r.account_id, a.name AS account_name, \
     a.account_type, r.domain_id, d.uuid AS domain_uuid, d.name AS domain_name, d.path AS domain_path, \
     r.generation, r.created \
     FROM routers r JOIN networks n ON n.id = r.network_id JOIN zones z ON z.id = r.zone_id \
     LEFT JOIN hosts h ON h.id = r.host_id JOIN accounts a ON a.id = r.account_id \
     JOIN domains d ON d.id = r.domain_id WHERE r.removed IS NULL";

#[derive(Debug, Default, Clone)]
pub struct RouterFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub state: Option<String>,
    pub zone_id: Option<i64>,
    pub host_id: Option<i64>,
    pub network_id: Option<i64>,
}

pub async fn list_routers(
    db: &Db,
    scope: &Scope,
    f: &RouterFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<RouterRow>, i64), DbError> {
    let mut sql = ROUTER_SELECT.to_owned();
    let mut args = Vec::new();
    scope.push(&mut sql, &mut args, "r.account_id", "d.path", "r.domain_id");
    for (col, v) in [("r.uuid", &f.uuid), ("r.name", &f.name)] {
        if let Some(v) = v {
            eq(&mut sql, &mut args, col, Arg::Text(v.clone()));
        }
    }
    if let Some(v) = &f.state {
        eq(&mut sql, &mut args, "LOWER(r.state)", Arg::Text(v.to_ascii_lowercase()));
    }
    for (col, v) in [("r.zone_id", f.zone_id), ("r.host_id", f.host_id), ("r.network_id", f.network_id)] {
        if let Some(v) = v {
            eq(&mut sql, &mut args, col, Arg::Int(v));
        }
    }
    fetch_page(db, sql, &args, "r.id", page).await
}

pub async fn router(db: &Db, uuid: &str) -> Result<Option<RouterRow>, DbError> {
    let f = RouterFilter { uuid: Some(uuid.into()), ..Default::default() };
    Ok(list_routers(db, &Scope::default(), &f, None).await?.0.into_iter().next())
}

pub async fn router_of_network(db: &Db, network_id: i64) -> Result<Option<RouterRow>, DbError> {
    let f = RouterFilter { network_id: Some(network_id), ..Default::default() };
    Ok(list_routers(db, &Scope::default(), &f, None).await?.0.into_iter().next())
}

/// The network's live router, created (Running on `host_id`) if it has none. Named as
/// CloudStack names its routers, r-<id>-VM.
pub async fn ensure_router(db: &Db, network_id: i64, host_id: Option<i64>) -> Result<(RouterRow, bool), PublicIpError> {
    if let Some(r) = router_of_network(db, network_id).await? {
        return Ok((r, false));
    }
    let mut tx = db.begin().await?;
    let owner: Option<(i64, i64, i64)> =
        sqlx::query_as("SELECT zone_id, account_id, domain_id FROM networks WHERE id = $1 AND removed IS NULL")
            .bind(network_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((zone_id, account_id, domain_id)) = owner else {
        return Err(PublicIpError::Gone(format!("network {network_id}")));
    };
    sqlx::query("UPDATE networks SET alloc_seq = alloc_seq + 1 WHERE id = $1")
        .bind(network_id)
        .execute(&mut *tx)
        .await?;
    let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM routers WHERE network_id = $1 AND removed IS NULL")
        .bind(network_id)
        .fetch_optional(&mut *tx)
        .await?;
    let created = existing.is_none();
    if created {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO routers (uuid, name, network_id, zone_id, host_id, state, account_id, domain_id, created) \
             VALUES ($1, '', $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(new_uuid())
        .bind(network_id)
        .bind(zone_id)
        .bind(host_id)
        .bind(if host_id.is_some() { "Running" } else { "Stopped" })
        .bind(account_id)
        .bind(domain_id)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE routers SET name = $1 WHERE id = $2")
            .bind(format!("r-{id}-VM"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let r = router_of_network(db, network_id).await?.ok_or_else(|| PublicIpError::Gone("router".into()))?;
    Ok((r, created))
}

/// Sets a router's state and host (None while it is stopped).
pub async fn set_router(db: &Db, id: i64, state: &str, host_id: Option<i64>) -> Result<(), DbError> {
    sqlx::query("UPDATE routers SET state = $1, host_id = $2 WHERE id = $3")
        .bind(state)
        .bind(host_id)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn remove_router(db: &Db, id: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE routers SET removed = $1, state = 'Destroyed', host_id = NULL WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Bumps a router's generation: a new whole state to apply. Returns it.
pub async fn next_generation(db: &Db, id: i64) -> Result<i64, DbError> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE routers SET generation = generation + 1 WHERE id = $1").bind(id).execute(&mut *tx).await?;
    let g: i64 =
        sqlx::query_scalar("SELECT generation FROM routers WHERE id = $1").bind(id).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(g)
}
