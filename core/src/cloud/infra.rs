//! Queries on zones, pods, clusters and hosts.

use sqlx::FromRow;

use crate::auth::store::{Arg, fetch_page, like_escape};
use crate::db::{Db, DbError, new_uuid, now_ms};

#[derive(Debug, Clone, FromRow)]
pub struct ZoneRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub description: Option<String>,
    pub network_type: String,
    pub allocation_state: String,
    pub dns1: String,
    pub dns2: Option<String>,
    pub internal_dns1: String,
    pub internal_dns2: Option<String>,
    pub guest_cidr: Option<String>,
    pub local_storage_enabled: i64,
    pub security_groups_enabled: i64,
    pub is_edge: i64,
    pub created: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct PodRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub zone_id: i64,
    pub zone_uuid: String,
    pub zone_name: String,
    pub gateway: Option<String>,
    pub netmask: Option<String>,
    pub start_ip: Option<String>,
    pub end_ip: Option<String>,
    pub allocation_state: String,
    pub created: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ClusterRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub pod_id: i64,
    pub pod_uuid: String,
    pub pod_name: String,
    pub zone_id: i64,
    pub zone_uuid: String,
    pub zone_name: String,
    pub hypervisor: String,
    pub cluster_type: String,
    pub allocation_state: String,
    pub cpu_overcommit: f64,
    pub memory_overcommit: f64,
    pub accel: String,
    pub created: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct HostRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub zone_id: i64,
    pub zone_uuid: String,
    pub zone_name: String,
    pub pod_id: i64,
    pub pod_uuid: String,
    pub pod_name: String,
    pub cluster_id: i64,
    pub cluster_uuid: String,
    pub cluster_name: String,
    pub hypervisor: String,
    pub driver: String,
    pub driver_version: String,
    pub url: String,
    pub libvirt_uri: String,
    pub ip_address: String,
    pub state: String,
    pub resource_state: String,
    pub cpus: i64,
    pub cpu_mhz: i64,
    pub cpu_model: String,
    pub memory_bytes: i64,
    pub hypervisor_version: String,
    pub hardware_accel: i64,
    pub host_tags: Option<String>,
    pub last_pinged: i64,
    pub created: i64,
}

const ZONE_SELECT: &str = "SELECT z.id, z.uuid, z.name, z.description, z.network_type, z.allocation_state, z.dns1, \
     z.dns2, z.internal_dns1, z.internal_dns2, z.guest_cidr, z.local_storage_enabled, z.security_groups_enabled, \
     z.is_edge, z.created FROM zones z WHERE z.removed IS NULL";

const POD_SELECT: &str = "SELECT p.id, p.uuid, p.name, p.zone_id, z.uuid AS zone_uuid, z.name AS zone_name, \
     p.gateway, p.netmask, p.start_ip, p.end_ip, p.allocation_state, p.created \
     FROM pods p JOIN zones z ON z.id = p.zone_id WHERE p.removed IS NULL";

const CLUSTER_SELECT: &str = "SELECT c.id, c.uuid, c.name, c.pod_id, p.uuid AS pod_uuid, p.name AS pod_name, \
     c.zone_id, z.uuid AS zone_uuid, z.name AS zone_name, c.hypervisor, c.cluster_type, c.allocation_state, \
     c.cpu_overcommit, c.memory_overcommit, c.accel, c.created \
     FROM clusters c JOIN pods p ON p.id = c.pod_id JOIN zones z ON z.id = c.zone_id WHERE c.removed IS NULL";

const HOST_SELECT: &str = "SELECT h.id, h.uuid, h.name, h.zone_id, z.uuid AS zone_uuid, z.name AS zone_name, \
     h.pod_id, p.uuid AS pod_uuid, p.name AS pod_name, h.cluster_id, c.uuid AS cluster_uuid, c.name AS cluster_name, \
     h.hypervisor, h.driver, h.driver_version, h.url, h.libvirt_uri, h.ip_address, h.state, h.resource_state, h.cpus, h.cpu_mhz, \
     h.cpu_model, h.memory_bytes, h.hypervisor_version, h.hardware_accel, h.host_tags, h.last_pinged, h.created \
     FROM hosts h JOIN zones z ON z.id = h.zone_id JOIN pods p ON p.id = h.pod_id JOIN clusters c ON c.id = h.cluster_id \
     WHERE h.removed IS NULL";

/// Common filters of the infrastructure listings.
#[derive(Debug, Default, Clone)]
pub struct InfraFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub zone_id: Option<i64>,
    pub pod_id: Option<i64>,
    pub cluster_id: Option<i64>,
    pub hypervisor: Option<String>,
    pub allocation_state: Option<String>,
    pub keyword: Option<String>,
}

impl InfraFilter {
    fn apply(&self, sql: &mut String, args: &mut Vec<Arg>, alias: &str, has: &[&str]) {
        let text = [("uuid", &self.uuid), ("name", &self.name)];
        for (col, v) in text {
            if let Some(v) = v {
                args.push(Arg::Text(v.clone()));
                sql.push_str(&format!(" AND {alias}.{col} = ${}", args.len()));
            }
        }
        let ints = [("zone_id", self.zone_id), ("pod_id", self.pod_id), ("cluster_id", self.cluster_id)];
        for (col, v) in ints {
            if let Some(v) = v
                && has.contains(&col)
            {
                args.push(Arg::Int(v));
                sql.push_str(&format!(" AND {alias}.{col} = ${}", args.len()));
            }
        }
        if let Some(h) = &self.hypervisor
            && has.contains(&"hypervisor")
        {
            args.push(Arg::Text(h.to_ascii_lowercase()));
            sql.push_str(&format!(" AND LOWER({alias}.hypervisor) = ${}", args.len()));
        }
        if let Some(s) = &self.allocation_state
            && has.contains(&"allocation_state")
        {
            args.push(Arg::Text(s.clone()));
            sql.push_str(&format!(" AND {alias}.allocation_state = ${}", args.len()));
        }
        if let Some(k) = &self.keyword {
            args.push(Arg::Text(format!("%{}%", like_escape(&k.to_ascii_lowercase()))));
            sql.push_str(&format!(" AND LOWER({alias}.name) LIKE ${} ESCAPE '\\'", args.len()));
        }
    }
}

pub async fn list_zones(db: &Db, f: &InfraFilter, page: Option<(u32, u32)>) -> Result<(Vec<ZoneRow>, i64), DbError> {
    let mut sql = ZONE_SELECT.to_owned();
    let mut args = Vec::new();
    f.apply(&mut sql, &mut args, "z", &["allocation_state"]);
    fetch_page(db, sql, &args, "z.id", page).await
}

pub async fn list_pods(db: &Db, f: &InfraFilter, page: Option<(u32, u32)>) -> Result<(Vec<PodRow>, i64), DbError> {
    let mut sql = POD_SELECT.to_owned();
    let mut args = Vec::new();
    f.apply(&mut sql, &mut args, "p", &["zone_id", "allocation_state"]);
    fetch_page(db, sql, &args, "p.id", page).await
}

pub async fn list_clusters(
    db: &Db,
    f: &InfraFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<ClusterRow>, i64), DbError> {
    let mut sql = CLUSTER_SELECT.to_owned();
    let mut args = Vec::new();
    f.apply(&mut sql, &mut args, "c", &["zone_id", "pod_id", "hypervisor", "allocation_state"]);
    fetch_page(db, sql, &args, "c.id", page).await
}

pub async fn list_hosts(
    db: &Db,
    f: &InfraFilter,
    state: Option<&str>,
    page: Option<(u32, u32)>,
) -> Result<(Vec<HostRow>, i64), DbError> {
    let mut sql = HOST_SELECT.to_owned();
    let mut args = Vec::new();
    f.apply(&mut sql, &mut args, "h", &["zone_id", "pod_id", "cluster_id", "hypervisor"]);
    if let Some(s) = state {
        args.push(Arg::Text(s.to_owned()));
        sql.push_str(&format!(" AND h.state = ${}", args.len()));
    }
    fetch_page(db, sql, &args, "h.id", page).await
}

async fn one<T>(rows: Result<(Vec<T>, i64), DbError>) -> Result<Option<T>, DbError> {
    Ok(rows?.0.into_iter().next())
}

pub async fn zone(db: &Db, uuid: &str) -> Result<Option<ZoneRow>, DbError> {
    one(list_zones(db, &InfraFilter { uuid: Some(uuid.into()), ..Default::default() }, None).await).await
}

pub async fn zone_by_name(db: &Db, name: &str) -> Result<Option<ZoneRow>, DbError> {
    one(list_zones(db, &InfraFilter { name: Some(name.into()), ..Default::default() }, None).await).await
}

pub async fn pod(db: &Db, uuid: &str) -> Result<Option<PodRow>, DbError> {
    one(list_pods(db, &InfraFilter { uuid: Some(uuid.into()), ..Default::default() }, None).await).await
}

pub async fn cluster(db: &Db, uuid: &str) -> Result<Option<ClusterRow>, DbError> {
    one(list_clusters(db, &InfraFilter { uuid: Some(uuid.into()), ..Default::default() }, None).await).await
}

pub async fn host(db: &Db, uuid: &str) -> Result<Option<HostRow>, DbError> {
    one(list_hosts(db, &InfraFilter { uuid: Some(uuid.into()), ..Default::default() }, None, None).await).await
}

/// A zone to create.
pub struct NewZone {
    pub name: String,
    pub description: Option<String>,
    pub network_type: String,
    pub allocation_state: String,
    pub dns1: String,
    pub dns2: Option<String>,
    pub internal_dns1: String,
    pub internal_dns2: Option<String>,
    pub guest_cidr: Option<String>,
    pub local_storage_enabled: bool,
    pub security_groups_enabled: bool,
    pub is_edge: bool,
}

pub async fn create_zone(db: &Db, z: NewZone) -> Result<String, DbError> {
    create_zone_in(db.pool(), z).await
}

/// `create_zone` on an executor of the caller's: a pool, or the transaction that also
/// records the event.
pub async fn create_zone_in<'c, E>(ex: E, z: NewZone) -> Result<String, DbError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let uuid = new_uuid();
    sqlx::query(
        "INSERT INTO zones (uuid, name, description, network_type, allocation_state, dns1, dns2, internal_dns1, \
         internal_dns2, guest_cidr, local_storage_enabled, security_groups_enabled, is_edge, created) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&uuid)
    .bind(z.name)
    .bind(z.description)
    .bind(z.network_type)
    .bind(z.allocation_state)
    .bind(z.dns1)
    .bind(z.dns2)
    .bind(z.internal_dns1)
    .bind(z.internal_dns2)
    .bind(z.guest_cidr)
    .bind(z.local_storage_enabled as i64)
    .bind(z.security_groups_enabled as i64)
    .bind(z.is_edge as i64)
    .bind(now_ms())
    .execute(ex)
    .await?;
    Ok(uuid)
}

/// Sets one text column of a row (zones, pods, clusters, networks…); `table` and `column` come from
/// the code, never from a request.
pub async fn set_text(db: &Db, table: &str, id: i64, column: &str, value: Option<String>) -> Result<(), DbError> {
    sqlx::query(&format!("UPDATE {table} SET {column} = $1 WHERE id = $2"))
        .bind(value)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Marks a zone, pod, cluster or host removed.
pub async fn remove(db: &Db, table: &str, id: i64) -> Result<(), DbError> {
    sqlx::query(&format!("UPDATE {table} SET removed = $1 WHERE id = $2"))
        .bind(now_ms())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// How many live rows of `table` point at `id` through `column` (for "in use" refusals).
pub async fn users_of(db: &Db, table: &str, column: &str, id: i64) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1 AND removed IS NULL"))
        .bind(id)
        .fetch_one(db.pool())
        .await?)
}

pub struct NewPod {
    pub name: String,
    pub zone_id: i64,
    pub gateway: Option<String>,
    pub netmask: Option<String>,
    pub start_ip: Option<String>,
    pub end_ip: Option<String>,
    pub allocation_state: String,
}

pub async fn create_pod(db: &Db, p: NewPod) -> Result<String, DbError> {
    let uuid = new_uuid();
    sqlx::query(
        "INSERT INTO pods (uuid, name, zone_id, gateway, netmask, start_ip, end_ip, allocation_state, created) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&uuid)
    .bind(p.name)
    .bind(p.zone_id)
    .bind(p.gateway)
    .bind(p.netmask)
    .bind(p.start_ip)
    .bind(p.end_ip)
    .bind(p.allocation_state)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(uuid)
}

pub struct NewCluster {
    pub name: String,
    pub pod_id: i64,
    pub zone_id: i64,
    pub hypervisor: String,
    pub cluster_type: String,
    pub allocation_state: String,
    pub accel: String,
}

pub async fn create_cluster(db: &Db, c: NewCluster) -> Result<String, DbError> {
    let uuid = new_uuid();
    sqlx::query(
        "INSERT INTO clusters (uuid, name, pod_id, zone_id, hypervisor, cluster_type, allocation_state, \
         cpu_overcommit, memory_overcommit, accel, created) VALUES ($1, $2, $3, $4, $5, $6, $7, 1.0, 1.0, $8, $9)",
    )
    .bind(&uuid)
    .bind(c.name)
    .bind(c.pod_id)
    .bind(c.zone_id)
    .bind(c.hypervisor)
    .bind(c.cluster_type)
    .bind(c.allocation_state)
    .bind(c.accel)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(uuid)
}

pub struct NewHost {
    pub name: String,
    pub zone_id: i64,
    pub pod_id: i64,
    pub cluster_id: i64,
    pub hypervisor: String,
    pub driver: String,
    pub driver_version: String,
    pub url: String,
    pub libvirt_uri: String,
    pub ip_address: String,
    pub cpus: i64,
    pub cpu_mhz: i64,
    pub cpu_model: String,
    pub memory_bytes: i64,
    pub hypervisor_version: String,
    pub hardware_accel: bool,
    pub host_tags: Option<String>,
}

pub async fn create_host(db: &Db, h: NewHost) -> Result<String, DbError> {
    let uuid = new_uuid();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO hosts (uuid, name, zone_id, pod_id, cluster_id, hypervisor, driver, url, libvirt_uri, ip_address, \
         state, resource_state, cpus, cpu_mhz, cpu_model, memory_bytes, hypervisor_version, hardware_accel, host_tags, \
         last_pinged, created, driver_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'Up', 'Enabled', $11, \
         $12, $13, $14, $15, $16, $17, $18, $18, $19)",
    )
    .bind(&uuid)
    .bind(h.name)
    .bind(h.zone_id)
    .bind(h.pod_id)
    .bind(h.cluster_id)
    .bind(h.hypervisor)
    .bind(h.driver)
    .bind(h.url)
    .bind(h.libvirt_uri)
    .bind(h.ip_address)
    .bind(h.cpus)
    .bind(h.cpu_mhz)
    .bind(h.cpu_model)
    .bind(h.memory_bytes)
    .bind(h.hypervisor_version)
    .bind(h.hardware_accel as i64)
    .bind(h.host_tags)
    .bind(now)
    .bind(h.driver_version)
    .execute(db.pool())
    .await?;
    Ok(uuid)
}
