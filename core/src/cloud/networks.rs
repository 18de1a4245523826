//! Queries on physical networks, traffic types, network offerings, guest networks and
//! their IP ranges, and the address management: VLAN IDs, IP and MAC addresses handed
//! out inside transactions so that none is ever given twice.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use sqlx::FromRow;

use crate::auth::store::{Arg, Scope, eq, fetch_page, keyword, read_rows};
use crate::db::{Backend, Db, DbError, new_uuid, now_ms};

/// Why an allocation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("no free address left in network {0}")]
    NoFreeAddress(String),
    #[error("address {address} is not free in network {network}")]
    AddressTaken { network: String, address: String },
    #[error("address {address} is outside the address ranges of network {network}")]
    AddressOutside { network: String, address: String },
    #[error("network {0} has no addresses to give: it is an L2 network or has no IP range")]
    NoAddresses(String),
    #[error("no free VLAN left in the range {range} of physical network {physical}")]
    NoFreeVlan { physical: String, range: String },
    #[error("VLAN {vlan} is already used by network {user}")]
    VlanTaken { vlan: u16, user: String },
    #[error("network {0} is gone")]
    Gone(String),
}

impl From<sqlx::Error> for NetworkError {
    fn from(e: sqlx::Error) -> Self {
        NetworkError::Db(DbError::from(e))
    }
}

// ------------------------------------------------------------------ address math

/// An IPv4 address as the integer stored in the database.
pub fn ip_to_int(ip: Ipv4Addr) -> i64 {
    i64::from(u32::from(ip))
}

pub fn int_to_ip(v: i64) -> Ipv4Addr {
    Ipv4Addr::from(v as u32)
}

pub fn prefix_mask(prefix: i64) -> u32 {
    if prefix <= 0 { 0 } else { u32::MAX << (32 - prefix.min(32)) }
}

/// The usable host addresses of a subnet: without network and broadcast address
/// (a /31 or /32 has none to spare).
pub fn host_range(network: i64, prefix: i64) -> (i64, i64) {
    let size = 1i64 << (32 - prefix.clamp(0, 32));
    if size <= 2 { (network, network + size - 1) } else { (network + 1, network + size - 2) }
}

/// Parses "100-199,300,400-410" into inclusive ranges.
pub fn parse_vlan_ranges(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| s.trim().parse::<u16>().ok().filter(|v| (1..=4094).contains(v));
        match (parse(a), parse(b)) {
            (Some(a), Some(b)) if a <= b => out.push((a, b)),
            _ => return Err(format!("\"{part}\" is not a VLAN range such as 100-199 (VLAN IDs are 1-4094)")),
        }
    }
    if out.is_empty() {
        return Err("the VLAN range is empty".into());
    }
    Ok(out)
}

pub fn vlan_in_ranges(vlan: u16, ranges: &[(u16, u16)]) -> bool {
    ranges.iter().any(|(a, b)| (*a..=*b).contains(&vlan))
}

/// A locally administered unicast MAC, as CloudStack gives guest NICs (02:00:…).
fn random_mac() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

// ------------------------------------------------------------------ physical networks

#[derive(Debug, Clone, FromRow)]
pub struct PhysicalNetworkRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub zone_id: i64,
    pub zone_uuid: String,
    pub zone_name: String,
    pub vlan: Option<String>,
    pub isolation_method: String,
    pub broadcast_domain_range: String,
    pub tags: Option<String>,
    pub network_speed: Option<String>,
    pub state: String,
    pub domain_uuid: Option<String>,
    pub guest_label: Option<String>,
    pub created: i64,
}

const PHYSICAL_SELECT: &str = "SELECT p.id, p.uuid, p.name, p.zone_id, z.uuid AS zone_uuid, z.name AS zone_name, \
     p.vlan, p.isolation_method, p.broadcast_domain_range, p.tags, p.network_speed, p.state, d.uuid AS domain_uuid, \
     (SELECT t.kvm_label FROM traffic_types t WHERE t.physical_network_id = p.id AND t.traffic_type = 'Guest') \
     AS guest_label, p.created \
     FROM physical_networks p JOIN zones z ON z.id = p.zone_id LEFT JOIN domains d ON d.id = p.domain_id \
     WHERE p.removed IS NULL";

#[derive(Debug, Default, Clone)]
pub struct PhysicalFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub zone_id: Option<i64>,
    pub keyword: Option<String>,
}

pub async fn list_physical(
    db: &Db,
    f: &PhysicalFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<PhysicalNetworkRow>, i64), DbError> {
    let mut sql = PHYSICAL_SELECT.to_owned();
    let mut args = Vec::new();
    if let Some(v) = &f.uuid {
        eq(&mut sql, &mut args, "p.uuid", Arg::Text(v.clone()));
    }
    if let Some(v) = &f.name {
        eq(&mut sql, &mut args, "p.name", Arg::Text(v.clone()));
    }
    if let Some(v) = f.zone_id {
        eq(&mut sql, &mut args, "p.zone_id", Arg::Int(v));
    }
    if let Some(k) = &f.keyword {
        keyword(&mut sql, &mut args, "p.name", k);
    }
    fetch_page(db, sql, &args, "p.id", page).await
}

pub async fn physical(db: &Db, uuid: &str) -> Result<Option<PhysicalNetworkRow>, DbError> {
    let f = PhysicalFilter { uuid: Some(uuid.into()), ..Default::default() };
    Ok(list_physical(db, &f, None).await?.0.into_iter().next())
}

pub struct NewPhysical {
    pub name: String,
    pub zone_id: i64,
    pub vlan: Option<String>,
    pub isolation_method: String,
    pub broadcast_domain_range: String,
    pub tags: Option<String>,
    pub network_speed: Option<String>,
    pub domain_id: Option<i64>,
}

pub async fn create_physical(db: &Db, p: NewPhysical) -> Result<String, DbError> {
    let uuid = new_uuid();
    sqlx::query(
        "INSERT INTO physical_networks (uuid, name, zone_id, vlan, isolation_method, broadcast_domain_range, tags, \
         network_speed, state, domain_id, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'Disabled', $9, $10)",
    )
    .bind(&uuid)
    .bind(p.name)
    .bind(p.zone_id)
    .bind(p.vlan)
    .bind(p.isolation_method)
    .bind(p.broadcast_domain_range)
    .bind(p.tags)
    .bind(p.network_speed)
    .bind(p.domain_id)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(uuid)
}

pub async fn remove_physical(db: &Db, id: i64) -> Result<(), DbError> {
    let mut tx = db.begin().await.map_err(DbError::from)?;
    sqlx::query("DELETE FROM traffic_types WHERE physical_network_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("UPDATE physical_networks SET removed = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// (VLAN, network name) of the live networks on a physical network that hold a VLAN.
pub async fn vlans_in_use(db: &Db, physical_id: i64) -> Result<Vec<(i64, String)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT vlan, name FROM networks WHERE physical_network_id = $1 AND removed IS NULL AND vlan IS NOT NULL \
         ORDER BY vlan",
    )
    .bind(physical_id)
    .fetch_all(db.pool())
    .await?)
}

// ------------------------------------------------------------------ traffic types

#[derive(Debug, Clone, FromRow)]
pub struct TrafficTypeRow {
    pub id: i64,
    pub uuid: String,
    pub physical_network_id: i64,
    pub physical_network_uuid: String,
    pub traffic_type: String,
    pub kvm_label: Option<String>,
}

const TRAFFIC_SELECT: &str = "SELECT t.id, t.uuid, t.physical_network_id, p.uuid AS physical_network_uuid, \
     t.traffic_type, t.kvm_label FROM traffic_types t JOIN physical_networks p ON p.id = t.physical_network_id \
     WHERE p.removed IS NULL";

pub async fn traffic_types(
    db: &Db,
    physical_id: Option<i64>,
    uuid: Option<&str>,
    page: Option<(u32, u32)>,
) -> Result<(Vec<TrafficTypeRow>, i64), DbError> {
    let mut sql = TRAFFIC_SELECT.to_owned();
    let mut args = Vec::new();
    if let Some(p) = physical_id {
        eq(&mut sql, &mut args, "t.physical_network_id", Arg::Int(p));
    }
    if let Some(u) = uuid {
        eq(&mut sql, &mut args, "t.uuid", Arg::Text(u.to_owned()));
    }
    fetch_page(db, sql, &args, "t.id", page).await
}

pub async fn add_traffic_type(
    db: &Db,
    physical_id: i64,
    traffic_type: &str,
    kvm_label: Option<String>,
) -> Result<String, DbError> {
    let uuid = new_uuid();
    sqlx::query(
        "INSERT INTO traffic_types (uuid, physical_network_id, traffic_type, kvm_label, created) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&uuid)
    .bind(physical_id)
    .bind(traffic_type)
    .bind(kvm_label)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(uuid)
}

pub async fn delete_traffic_type(db: &Db, id: i64) -> Result<(), DbError> {
    sqlx::query("DELETE FROM traffic_types WHERE id = $1").bind(id).execute(db.pool()).await?;
    Ok(())
}

// ------------------------------------------------------------------ offerings

#[derive(Debug, Clone, FromRow)]
pub struct OfferingRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub display_text: String,
    pub guest_ip_type: String,
    pub traffic_type: String,
    pub specify_vlan: i64,
    pub specify_ip_ranges: i64,
    pub services: String,
    pub availability: String,
    pub state: String,
    pub is_default: i64,
    pub conserve_mode: i64,
    /// 1: guests may go out unless an egress rule denies it; 0: only where one allows it.
    pub egress_default_policy: i64,
    pub created: i64,
    /// "Service:Provider" pairs for the services the virtual router does not provide.
    pub service_providers: String,
}

impl OfferingRow {
    pub fn services(&self) -> Vec<&str> {
        self.services.split(',').filter(|s| !s.is_empty()).collect()
    }
}

/// The provider CloudStack names for services nothing else is recorded for.
pub const DEFAULT_PROVIDER: &str = "VirtualRouter";
/// The provider that hands guests their userdata, keys and password on a config drive.
pub const CONFIG_DRIVE: &str = "ConfigDrive";

/// Who provides `service`, from an offering's "Service:Provider" pairs.
pub fn provider_of<'a>(providers: &'a str, service: &str) -> &'a str {
    providers
        .split(',')
        .filter_map(|pair| pair.split_once(':'))
        .find(|(s, _)| s.eq_ignore_ascii_case(service))
        .map_or(DEFAULT_PROVIDER, |(_, p)| p)
}

#[derive(Debug, Default, Clone)]
pub struct OfferingFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub guest_ip_type: Option<String>,
    pub traffic_type: Option<String>,
    pub state: Option<String>,
    pub is_default: Option<bool>,
    pub specify_vlan: Option<bool>,
    pub keyword: Option<String>,
}

pub async fn list_offerings(
    db: &Db,
    f: &OfferingFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<OfferingRow>, i64), DbError> {
    let mut sql = "SELECT o.id, o.uuid, o.name, o.display_text, o.guest_ip_type, o.traffic_type, o.specify_vlan, \
                   o.specify_ip_ranges, o.services, o.availability, o.state, o.is_default, o.conserve_mode, \
                   o.egress_default_policy, o.created, o.service_providers \
                   FROM network_offerings o WHERE o.removed IS NULL"
        .to_owned();
    let mut args = Vec::new();
    let text = [("o.uuid", &f.uuid), ("o.name", &f.name), ("o.state", &f.state)];
    for (col, v) in text {
        if let Some(v) = v {
            eq(&mut sql, &mut args, col, Arg::Text(v.clone()));
        }
    }
    for (col, v) in [("LOWER(o.guest_ip_type)", &f.guest_ip_type), ("LOWER(o.traffic_type)", &f.traffic_type)] {
        if let Some(v) = v {
            eq(&mut sql, &mut args, col, Arg::Text(v.to_ascii_lowercase()));
        }
    }
    for (col, v) in [("o.is_default", f.is_default), ("o.specify_vlan", f.specify_vlan)] {
        if let Some(v) = v {
            eq(&mut sql, &mut args, col, Arg::Int(v as i64));
        }
    }
    if let Some(k) = &f.keyword {
        keyword(&mut sql, &mut args, "o.name", k);
    }
    fetch_page(db, sql, &args, "o.id", page).await
}

pub async fn offering(db: &Db, uuid: &str) -> Result<Option<OfferingRow>, DbError> {
    let f = OfferingFilter { uuid: Some(uuid.into()), ..Default::default() };
    Ok(list_offerings(db, &f, None).await?.0.into_iter().next())
}

// ------------------------------------------------------------------ networks

#[derive(Debug, Clone, FromRow)]
pub struct NetworkRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub display_text: String,
    pub zone_id: i64,
    pub zone_uuid: String,
    pub zone_name: String,
    pub zone_dns1: String,
    pub zone_dns2: Option<String>,
    pub physical_network_id: i64,
    pub physical_network_uuid: String,
    pub isolation_method: String,
    pub guest_label: Option<String>,
    pub offering_id: i64,
    pub offering_uuid: String,
    pub offering_name: String,
    pub offering_display_text: String,
    pub offering_services: String,
    pub offering_availability: String,
    pub offering_conserve_mode: i64,
    /// The offering's default egress policy (1 allow, 0 deny).
    pub offering_egress_default_policy: i64,
    /// The offering's "Service:Provider" pairs (see [`provider_of`]).
    pub offering_service_providers: String,
    pub specify_ip_ranges: i64,
    pub account_id: i64,
    pub account_name: String,
    /// The owning account's type, for who may reach the network.
    pub account_type: i64,
    pub domain_id: i64,
    pub domain_uuid: String,
    pub domain_name: String,
    pub domain_path: String,
    pub guest_type: String,
    pub acl_type: String,
    pub cidr_address: Option<i64>,
    pub cidr_prefix: Option<i64>,
    pub gateway: Option<String>,
    pub vlan: Option<i64>,
    pub dns1: Option<String>,
    pub dns2: Option<String>,
    pub network_domain: Option<String>,
    pub dhcp_server: Option<String>,
    pub state: String,
    pub created: i64,
    /// The network driver chosen when the network was created; empty for networks from
    /// before drivers were recorded (the driver serving the isolation method serves them).
    pub driver: String,
    pub driver_version: String,
}

impl NetworkRow {
    /// "10.1.1.0/24", when the network has addresses.
    pub fn cidr(&self) -> Option<String> {
        Some(format!("{}/{}", int_to_ip(self.cidr_address?), self.cidr_prefix?))
    }

    pub fn netmask(&self) -> Option<String> {
        Some(Ipv4Addr::from(prefix_mask(self.cidr_prefix?)).to_string())
    }

    pub fn has_service(&self, service: &str) -> bool {
        self.offering_services.split(',').any(|s| s == service)
    }

    /// Whether guests get their userdata, keys and password on a config drive.
    pub fn config_drive(&self) -> bool {
        self.has_service("UserData") && provider_of(&self.offering_service_providers, "UserData") == CONFIG_DRIVE
    }

    /// DNS servers for guests: the network's own, else the zone's.
    pub fn dns(&self) -> Vec<String> {
        match (&self.dns1, &self.dns2) {
            (Some(a), b) => std::iter::once(a.clone()).chain(b.clone()).collect(),
            (None, _) => std::iter::once(self.zone_dns1.clone()).chain(self.zone_dns2.clone()).collect(),
        }
    }
}

impl crate::auth::Owned for NetworkRow {
    fn owner(&self) -> crate::auth::Owner<'_> {
        crate::auth::Owner {
            account_id: self.account_id,
            account_type: self.account_type,
            domain_path: &self.domain_path,
        }
    }
}

const NETWORK_SELECT: &str = "SELECT n.id, n.uuid, n.name, n.display_text, n.zone_id, z.uuid AS zone_uuid, \
     z.name AS zone_name, z.dns1 AS zone_dns1, z.dns2 AS zone_dns2, n.physical_network_id, \
     p.uuid AS physical_network_uuid, p.isolation_method, \
     (SELECT t.kvm_label FROM traffic_types t WHERE t.physical_network_id = p.id AND t.traffic_type = 'Guest') \
     AS guest_label, n.network_offering_id AS offering_id, o.uuid AS offering_uuid, o.name AS offering_name, \
     o.display_text AS offering_display_text, o.services AS offering_services, \
     o.availability AS offering_availability, o.conserve_mode AS offering_conserve_mode, \
     o.egress_default_policy AS offering_egress_default_policy, \
     o.service_providers AS offering_service_providers, o.specify_ip_ranges, \
     n.account_id, a.name AS account_name, a.account_type, n.domain_id, d.uuid AS domain_uuid, d.name AS domain_name, \
     d.path AS domain_path, n.guest_type, n.acl_type, n.cidr_address, n.cidr_prefix, n.gateway, n.vlan, n.dns1, \
     n.dns2, n.network_domain, n.dhcp_server, n.state, n.created, n.driver, n.driver_version \
     FROM networks n JOIN zones z ON z.id = n.zone_id JOIN physical_networks p ON p.id = n.physical_network_id \
     JOIN network_offerings o ON o.id = n.network_offering_id JOIN accounts a ON a.id = n.account_id \
     JOIN domains d ON d.id = n.domain_id WHERE n.removed IS NULL";

#[derive(Debug, Default, Clone)]
pub struct NetworkFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub zone_id: Option<i64>,
    pub physical_network_id: Option<i64>,
    pub guest_type: Option<String>,
    pub keyword: Option<String>,
}

/// Networks a scope sees: its accounts' own, plus the Shared networks of the domains
/// above them (a ROOT-domain Shared network is everyone's).
pub async fn list_networks(
    db: &Db,
    scope: &Scope,
    visible_shared: Option<&str>,
    f: &NetworkFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<NetworkRow>, i64), DbError> {
    let mut sql = NETWORK_SELECT.to_owned();
    let mut args = Vec::new();
    match visible_shared {
        // A domain path: also Domain-wide networks of it and the domains above it.
        Some(path) => {
            let mut own = String::new();
            scope.push(&mut own, &mut args, "n.account_id", "d.path", "n.domain_id");
            args.push(Arg::Text(path.to_owned()));
            let own = own.strip_prefix(" AND ").unwrap_or("1 = 1").to_owned();
            sql.push_str(&format!(
                " AND (({own}) OR (n.acl_type = 'Domain' AND SUBSTR(${n}, 1, LENGTH(d.path)) = d.path))",
                n = args.len()
            ));
        }
        None => scope.push(&mut sql, &mut args, "n.account_id", "d.path", "n.domain_id"),
    }
    if let Some(v) = &f.uuid {
        eq(&mut sql, &mut args, "n.uuid", Arg::Text(v.clone()));
    }
    if let Some(v) = &f.name {
        eq(&mut sql, &mut args, "n.name", Arg::Text(v.clone()));
    }
    if let Some(v) = f.zone_id {
        eq(&mut sql, &mut args, "n.zone_id", Arg::Int(v));
    }
    if let Some(v) = f.physical_network_id {
        eq(&mut sql, &mut args, "n.physical_network_id", Arg::Int(v));
    }
    if let Some(v) = &f.guest_type {
        eq(&mut sql, &mut args, "LOWER(n.guest_type)", Arg::Text(v.to_ascii_lowercase()));
    }
    if let Some(k) = &f.keyword {
        keyword(&mut sql, &mut args, "n.name", k);
    }
    fetch_page(db, sql, &args, "n.id", page).await
}

pub async fn network(db: &Db, uuid: &str) -> Result<Option<NetworkRow>, DbError> {
    let f = NetworkFilter { uuid: Some(uuid.into()), ..Default::default() };
    Ok(list_networks(db, &Scope::default(), None, &f, None).await?.0.into_iter().next())
}

pub async fn network_by_id(db: &Db, id: i64) -> Result<Option<NetworkRow>, DbError> {
    let sql = format!("{NETWORK_SELECT} AND n.id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(db.pool()).await?)
}

/// How a new network gets its VLAN.
#[derive(Debug, Clone)]
pub enum VlanChoice {
    None,
    /// This one, refused when another live network on the physical network has it.
    Given(u16),
    /// The lowest free one in the physical network's ranges.
    FromRange(Vec<(u16, u16)>, String),
}

pub struct NewNetwork {
    pub name: String,
    pub display_text: String,
    pub zone_id: i64,
    pub physical_network_id: i64,
    pub offering_id: i64,
    pub account_id: i64,
    pub domain_id: i64,
    pub guest_type: String,
    pub acl_type: String,
    pub cidr: Option<(i64, i64)>,
    pub gateway: Option<String>,
    pub vlan: VlanChoice,
    pub dns1: Option<String>,
    pub dns2: Option<String>,
    pub network_domain: Option<String>,
    pub state: String,
    /// The network driver serving it: (name, version).
    pub driver: (String, String),
    /// A first address range: (start, end, gateway, netmask, pod).
    pub range: Option<NewRange>,
}

#[derive(Debug, Clone)]
pub struct NewRange {
    pub zone_id: i64,
    pub pod_id: Option<i64>,
    pub physical_network_id: i64,
    pub vlan: Option<i64>,
    pub gateway: String,
    pub netmask: String,
    pub start: i64,
    pub end: i64,
    pub for_virtual_network: bool,
}

/// Bumps a row's allocation counter first thing in a transaction: on PostgreSQL that
/// takes the row's lock, so allocations on the same network (or physical network)
/// run one after another; SQLite's BEGIN IMMEDIATE already did that.
async fn lock_row(tx: &mut sqlx::Transaction<'static, sqlx::Any>, table: &str, id: i64) -> Result<bool, DbError> {
    let done = sqlx::query(&format!("UPDATE {table} SET alloc_seq = alloc_seq + 1 WHERE id = $1 AND removed IS NULL"))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Creates a network, picking its VLAN in the same transaction.
pub async fn create_network(db: &Db, n: NewNetwork) -> Result<String, NetworkError> {
    let uuid = new_uuid();
    let mut tx = db.begin().await?;
    if !lock_row(&mut tx, "physical_networks", n.physical_network_id).await? {
        return Err(NetworkError::Gone(format!("physical network {}", n.physical_network_id)));
    }
    let used: Vec<(i64, String)> = sqlx::query_as(
        "SELECT vlan, name FROM networks WHERE physical_network_id = $1 AND removed IS NULL AND vlan IS NOT NULL",
    )
    .bind(n.physical_network_id)
    .fetch_all(&mut *tx)
    .await?;
    let vlan = match &n.vlan {
        VlanChoice::None => None,
        VlanChoice::Given(v) => {
            if let Some((_, user)) = used.iter().find(|(u, _)| *u == i64::from(*v)) {
                return Err(NetworkError::VlanTaken { vlan: *v, user: user.clone() });
            }
            Some(i64::from(*v))
        }
        VlanChoice::FromRange(ranges, text) => {
            let taken: HashSet<i64> = used.iter().map(|(v, _)| *v).collect();
            let free = ranges.iter().flat_map(|(a, b)| *a..=*b).map(i64::from).find(|v| !taken.contains(v));
            Some(free.ok_or_else(|| NetworkError::NoFreeVlan {
                physical: n.physical_network_id.to_string(),
                range: text.clone(),
            })?)
        }
    };
    let (cidr_address, cidr_prefix) = n.cidr.map_or((None, None), |(a, p)| (Some(a), Some(p)));
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO networks (uuid, name, display_text, zone_id, physical_network_id, network_offering_id, \
         account_id, domain_id, guest_type, acl_type, cidr_address, cidr_prefix, gateway, vlan, dns1, dns2, \
         network_domain, state, created, driver, driver_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
         $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) RETURNING id",
    )
    .bind(&uuid)
    .bind(n.name)
    .bind(n.display_text)
    .bind(n.zone_id)
    .bind(n.physical_network_id)
    .bind(n.offering_id)
    .bind(n.account_id)
    .bind(n.domain_id)
    .bind(n.guest_type)
    .bind(n.acl_type)
    .bind(cidr_address)
    .bind(cidr_prefix)
    .bind(n.gateway)
    .bind(vlan)
    .bind(n.dns1)
    .bind(n.dns2)
    .bind(n.network_domain)
    .bind(n.state)
    .bind(now_ms())
    .bind(n.driver.0)
    .bind(n.driver.1)
    .fetch_one(&mut *tx)
    .await?;
    if let Some(r) = n.range {
        insert_range(&mut tx, id, &r).await?;
    }
    tx.commit().await?;
    Ok(uuid)
}

/// Removes a network with its ranges and reserved addresses; its VLAN is free again.
pub async fn remove_network(db: &Db, id: i64) -> Result<(), DbError> {
    let mut tx = db.begin().await.map_err(DbError::from)?;
    sqlx::query("DELETE FROM guest_ips WHERE network_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM ip_ranges WHERE network_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("UPDATE networks SET removed = $1, vlan = NULL WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Live networks in a zone whose address space is explicit, for overlap checks:
/// (uuid, name, cidr address, prefix, guest type, account).
pub async fn networks_with_cidr(
    db: &Db,
    zone_id: i64,
) -> Result<Vec<(String, String, i64, i64, String, i64)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT uuid, name, cidr_address, cidr_prefix, guest_type, account_id FROM networks \
         WHERE zone_id = $1 AND removed IS NULL AND cidr_address IS NOT NULL",
    )
    .bind(zone_id)
    .fetch_all(db.pool())
    .await?)
}

// ------------------------------------------------------------------ IP ranges

#[derive(Debug, Clone, FromRow)]
pub struct RangeRow {
    pub id: i64,
    pub uuid: String,
    pub zone_uuid: String,
    pub pod_uuid: Option<String>,
    pub pod_name: Option<String>,
    pub physical_network_uuid: String,
    pub network_id: i64,
    pub network_uuid: String,
    pub vlan: Option<i64>,
    pub gateway: String,
    pub netmask: String,
    pub start_ip: i64,
    pub end_ip: i64,
    pub for_virtual_network: i64,
    pub account_name: String,
    pub domain_uuid: String,
    pub domain_name: String,
    pub acl_type: String,
}

const RANGE_SELECT: &str = "SELECT r.id, r.uuid, z.uuid AS zone_uuid, po.uuid AS pod_uuid, po.name AS pod_name, \
     p.uuid AS physical_network_uuid, r.network_id, n.uuid AS network_uuid, r.vlan, r.gateway, r.netmask, r.start_ip, \
     r.end_ip, r.for_virtual_network, a.name AS account_name, d.uuid AS domain_uuid, d.name AS domain_name, \
     n.acl_type FROM ip_ranges r JOIN zones z ON z.id = r.zone_id LEFT JOIN pods po ON po.id = r.pod_id \
     JOIN physical_networks p ON p.id = r.physical_network_id JOIN networks n ON n.id = r.network_id \
     JOIN accounts a ON a.id = n.account_id JOIN domains d ON d.id = n.domain_id WHERE n.removed IS NULL";

#[derive(Debug, Default, Clone)]
pub struct RangeFilter {
    pub uuid: Option<String>,
    pub zone_id: Option<i64>,
    pub pod_id: Option<i64>,
    pub network_id: Option<i64>,
    pub physical_network_id: Option<i64>,
    pub vlan: Option<i64>,
    pub for_virtual_network: Option<bool>,
}

pub async fn list_ranges(db: &Db, f: &RangeFilter, page: Option<(u32, u32)>) -> Result<(Vec<RangeRow>, i64), DbError> {
    let mut sql = RANGE_SELECT.to_owned();
    let mut args = Vec::new();
    if let Some(v) = &f.uuid {
        eq(&mut sql, &mut args, "r.uuid", Arg::Text(v.clone()));
    }
    let ints = [
        ("r.zone_id", f.zone_id),
        ("r.pod_id", f.pod_id),
        ("r.network_id", f.network_id),
        ("r.physical_network_id", f.physical_network_id),
        ("r.vlan", f.vlan),
        ("r.for_virtual_network", f.for_virtual_network.map(i64::from)),
    ];
    for (col, v) in ints {
        if let Some(v) = v {
            eq(&mut sql, &mut args, col, Arg::Int(v));
        }
    }
    fetch_page(db, sql, &args, "r.id", page).await
}

async fn insert_range(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    network_id: i64,
    r: &NewRange,
) -> Result<String, DbError> {
    let uuid = new_uuid();
    sqlx::query(
        "INSERT INTO ip_ranges (uuid, zone_id, pod_id, physical_network_id, network_id, vlan, gateway, netmask, \
         start_ip, end_ip, for_virtual_network, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&uuid)
    .bind(r.zone_id)
    .bind(r.pod_id)
    .bind(r.physical_network_id)
    .bind(network_id)
    .bind(r.vlan)
    .bind(&r.gateway)
    .bind(&r.netmask)
    .bind(r.start)
    .bind(r.end)
    .bind(r.for_virtual_network as i64)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(uuid)
}

/// Adds a range to a network.
pub async fn add_range(db: &Db, network_id: i64, r: &NewRange) -> Result<String, NetworkError> {
    let mut tx = db.begin().await?;
    if !lock_row(&mut tx, "networks", network_id).await? {
        return Err(NetworkError::Gone(network_id.to_string()));
    }
    let uuid = insert_range(&mut tx, network_id, r).await?;
    tx.commit().await?;
    Ok(uuid)
}

/// How many addresses of a range are in use.
pub async fn range_use(db: &Db, r: &RangeRow) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM guest_ips WHERE network_id = $1 AND address >= $2 AND address <= $3 AND nic_id IS NOT NULL",
    )
    .bind(r.network_id)
    .bind(r.start_ip)
    .bind(r.end_ip)
    .fetch_one(db.pool())
    .await?)
}

/// Deletes a range and any service address reserved in it.
pub async fn delete_range(db: &Db, r: &RangeRow) -> Result<(), DbError> {
    let mut tx = db.begin().await.map_err(DbError::from)?;
    let dhcp: Option<String> = sqlx::query_scalar("SELECT dhcp_server FROM networks WHERE id = $1")
        .bind(r.network_id)
        .fetch_one(&mut *tx)
        .await?;
    if let Some(ip) = dhcp.and_then(|d| d.parse::<Ipv4Addr>().ok()).map(ip_to_int)
        && (r.start_ip..=r.end_ip).contains(&ip)
    {
        sqlx::query("UPDATE networks SET dhcp_server = NULL WHERE id = $1")
            .bind(r.network_id)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DELETE FROM guest_ips WHERE network_id = $1 AND address >= $2 AND address <= $3")
        .bind(r.network_id)
        .bind(r.start_ip)
        .bind(r.end_ip)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM ip_ranges WHERE id = $1").bind(r.id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

// ------------------------------------------------------------------ addresses and NICs

/// The address pools of a network: its ranges, or for an Isolated network without
/// ranges its whole subnet; the gateway is never handed out.
async fn pools(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    n: &NetworkRow,
) -> Result<Vec<(i64, i64)>, NetworkError> {
    let ranges: Vec<(i64, i64)> =
        sqlx::query_as("SELECT start_ip, end_ip FROM ip_ranges WHERE network_id = $1 ORDER BY start_ip")
            .bind(n.id)
            .fetch_all(&mut **tx)
            .await?;
    if !ranges.is_empty() {
        return Ok(ranges);
    }
    match (n.guest_type.as_str(), n.cidr_address, n.cidr_prefix) {
        ("Isolated", Some(a), Some(p)) => Ok(vec![host_range(a, p)]),
        _ => Ok(vec![]),
    }
}

/// Picks a free address (the requested one, or the lowest free) and records it for
/// `nic_id` (None: the DHCP service), inside the caller's transaction.
async fn take_address(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    n: &NetworkRow,
    requested: Option<Ipv4Addr>,
    nic_id: Option<i64>,
    purpose: &str,
) -> Result<i64, NetworkError> {
    let pools = pools(tx, n).await?;
    if pools.is_empty() {
        return Err(NetworkError::NoAddresses(n.name.clone()));
    }
    let taken: HashSet<i64> = sqlx::query_scalar::<_, i64>("SELECT address FROM guest_ips WHERE network_id = $1")
        .bind(n.id)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    let gateway = n.gateway.as_deref().and_then(|g| g.parse::<Ipv4Addr>().ok()).map(ip_to_int);
    let usable = |a: i64| Some(a) != gateway && !taken.contains(&a);
    let address = match requested {
        Some(ip) => {
            let a = ip_to_int(ip);
            if !pools.iter().any(|(s, e)| (*s..=*e).contains(&a)) {
                return Err(NetworkError::AddressOutside { network: n.name.clone(), address: ip.to_string() });
            }
            if !usable(a) {
                return Err(NetworkError::AddressTaken { network: n.name.clone(), address: ip.to_string() });
            }
            a
        }
        None => pools
            .iter()
            .flat_map(|(s, e)| *s..=*e)
            .find(|a| usable(*a))
            .ok_or_else(|| NetworkError::NoFreeAddress(n.name.clone()))?,
    };
    sqlx::query("INSERT INTO guest_ips (network_id, address, nic_id, purpose, created) VALUES ($1, $2, $3, $4, $5)")
        .bind(n.id)
        .bind(address)
        .bind(nic_id)
        .bind(purpose)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(address)
}

/// The DHCP service's address in a network, reserved on first use: an Isolated
/// network's gateway (the service is its router, as CloudStack's virtual router),
/// otherwise an address of its ranges. None when the network offers no DHCP.
pub async fn dhcp_address(db: &Db, n: &NetworkRow) -> Result<Option<String>, NetworkError> {
    if !n.has_service("Dhcp") || n.cidr_prefix.is_none() {
        return Ok(None);
    }
    if let Some(d) = &n.dhcp_server {
        return Ok(Some(d.clone()));
    }
    let mut tx = db.begin().await?;
    if !lock_row(&mut tx, "networks", n.id).await? {
        return Err(NetworkError::Gone(n.uuid.clone()));
    }
    // Another caller may have reserved it meanwhile.
    let now: Option<String> =
        sqlx::query_scalar("SELECT dhcp_server FROM networks WHERE id = $1").bind(n.id).fetch_one(&mut *tx).await?;
    if let Some(d) = now {
        return Ok(Some(d));
    }
    // An Isolated network's DHCP service holds its gateway address, unless the zone carries
    // public traffic: then the network's router holds the gateway, and DHCP gets an address
    // of its own.
    let public: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM traffic_types t JOIN physical_networks p ON p.id = t.physical_network_id \
         WHERE p.zone_id = $1 AND t.traffic_type = 'Public'",
    )
    .bind(n.zone_id)
    .fetch_one(&mut *tx)
    .await?;
    let address = match (n.guest_type.as_str(), &n.gateway) {
        ("Isolated", Some(gw)) if public == 0 => gw.clone(),
        _ => int_to_ip(take_address(&mut tx, n, None, None, "dhcp").await?).to_string(),
    };
    sqlx::query("UPDATE networks SET dhcp_server = $1 WHERE id = $2")
        .bind(&address)
        .bind(n.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(address))
}

#[derive(Debug, Clone, FromRow)]
pub struct NicRow {
    pub id: i64,
    pub uuid: String,
    pub network_id: i64,
    pub network_uuid: String,
    pub network_name: String,
    pub instance_uuid: Option<String>,
    pub mac: String,
    pub ip_address: Option<i64>,
    pub is_default: i64,
    pub device_id: i64,
    pub state: String,
    pub guest_type: String,
    pub gateway: Option<String>,
    pub cidr_prefix: Option<i64>,
    pub vlan: Option<i64>,
    pub created: i64,
}

impl NicRow {
    pub fn ip(&self) -> Option<Ipv4Addr> {
        self.ip_address.map(int_to_ip)
    }
}

const NIC_SELECT: &str = "SELECT c.id, c.uuid, c.network_id, n.uuid AS network_uuid, n.name AS network_name, \
     c.instance_uuid, c.mac, c.ip_address, c.is_default, c.device_id, c.state, n.guest_type, n.gateway, n.cidr_prefix, \
     n.vlan, c.created FROM nics c JOIN networks n ON n.id = c.network_id WHERE c.removed IS NULL";

#[derive(Debug, Default, Clone)]
pub struct NicFilter {
    pub uuid: Option<String>,
    pub instance_uuid: Option<String>,
    pub network_id: Option<i64>,
}

pub async fn list_nics(db: &Db, f: &NicFilter, page: Option<(u32, u32)>) -> Result<(Vec<NicRow>, i64), DbError> {
    let mut sql = NIC_SELECT.to_owned();
    let mut args = Vec::new();
    if let Some(v) = &f.uuid {
        eq(&mut sql, &mut args, "c.uuid", Arg::Text(v.clone()));
    }
    if let Some(v) = &f.instance_uuid {
        eq(&mut sql, &mut args, "c.instance_uuid", Arg::Text(v.clone()));
    }
    if let Some(v) = f.network_id {
        eq(&mut sql, &mut args, "c.network_id", Arg::Int(v));
    }
    fetch_page(db, sql, &args, "c.device_id, c.id", page).await
}

/// The live NICs of several instances in one query (a listing's page), by device order.
pub async fn nics_of_instances(db: &Db, instance_uuids: &[&str]) -> Result<Vec<NicRow>, DbError> {
    if instance_uuids.is_empty() {
        return Ok(vec![]);
    }
    let marks: Vec<String> = (1..=instance_uuids.len()).map(|i| format!("${i}")).collect();
    let sql = format!("{NIC_SELECT} AND c.instance_uuid IN ({}) ORDER BY c.device_id, c.id", marks.join(", "));
    let args: Vec<Arg> = instance_uuids.iter().map(|u| Arg::Text((*u).to_owned())).collect();
    if let Some(rows) = read_rows(db, &sql, &args, nic_row) {
        return rows;
    }
    let mut q = sqlx::query_as::<_, NicRow>(&sql);
    for u in instance_uuids {
        q = q.bind(*u);
    }
    Ok(q.fetch_all(db.pool()).await?)
}

fn nic_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NicRow> {
    Ok(NicRow {
        id: r.get("id")?,
        uuid: r.get("uuid")?,
        network_id: r.get("network_id")?,
        network_uuid: r.get("network_uuid")?,
        network_name: r.get("network_name")?,
        instance_uuid: r.get("instance_uuid")?,
        mac: r.get("mac")?,
        ip_address: r.get("ip_address")?,
        is_default: r.get("is_default")?,
        device_id: r.get("device_id")?,
        state: r.get("state")?,
        guest_type: r.get("guest_type")?,
        gateway: r.get("gateway")?,
        cidr_prefix: r.get("cidr_prefix")?,
        vlan: r.get("vlan")?,
        created: r.get("created")?,
    })
}

/// How many live NICs a network has.
pub async fn nic_count(db: &Db, network_id: i64) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM nics WHERE network_id = $1 AND removed IS NULL")
        .bind(network_id)
        .fetch_one(db.pool())
        .await?)
}

/// A NIC to allocate.
#[derive(Debug, Clone, Default)]
pub struct NewNic {
    pub instance_uuid: Option<String>,
    /// A specific address, refused when taken or outside the network's ranges.
    pub ip: Option<Ipv4Addr>,
    pub is_default: bool,
    pub device_id: i64,
}

/// Allocates a NIC in a network: a MAC no live NIC has and, when the network has
/// addresses, an IP no one else holds, in one transaction.
pub async fn allocate_nic(db: &Db, network: &NetworkRow, nic: NewNic) -> Result<NicRow, NetworkError> {
    // On PostgreSQL two transactions can still race for one MAC of another network;
    // the unique index refuses the loser, which simply tries again.
    for attempt in 0.. {
        match try_allocate_nic(db, network, &nic).await {
            Err(NetworkError::Db(DbError::Sql(e)))
                if attempt < 5 && db.backend() == Backend::Postgres && is_unique(&e) =>
            {
                continue;
            }
            other => return other,
        }
    }
    unreachable!("the loop returns")
}

fn is_unique(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

async fn try_allocate_nic(db: &Db, n: &NetworkRow, nic: &NewNic) -> Result<NicRow, NetworkError> {
    let uuid = new_uuid();
    let mut tx = db.begin().await?;
    if !lock_row(&mut tx, "networks", n.id).await? {
        return Err(NetworkError::Gone(n.uuid.clone()));
    }
    let mut mac = random_mac();
    loop {
        let used: Option<i64> = sqlx::query_scalar("SELECT id FROM nics WHERE mac = $1 AND removed IS NULL")
            .bind(&mac)
            .fetch_optional(&mut *tx)
            .await?;
        if used.is_none() {
            break;
        }
        mac = random_mac();
    }
    let nic_id: i64 = sqlx::query_scalar(
        "INSERT INTO nics (uuid, network_id, instance_uuid, mac, is_default, device_id, state, created) \
         VALUES ($1, $2, $3, $4, $5, $6, 'Reserved', $7) RETURNING id",
    )
    .bind(&uuid)
    .bind(n.id)
    .bind(&nic.instance_uuid)
    .bind(&mac)
    .bind(nic.is_default as i64)
    .bind(nic.device_id)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    let wants_ip = n.cidr_prefix.is_some();
    if wants_ip {
        let address = take_address(&mut tx, n, nic.ip, Some(nic_id), "nic").await?;
        sqlx::query("UPDATE nics SET ip_address = $1 WHERE id = $2")
            .bind(address)
            .bind(nic_id)
            .execute(&mut *tx)
            .await?;
    } else if let Some(ip) = nic.ip {
        return Err(NetworkError::AddressOutside { network: n.name.clone(), address: ip.to_string() });
    }
    tx.commit().await?;
    let f = NicFilter { uuid: Some(uuid), ..Default::default() };
    list_nics(db, &f, None).await?.0.into_iter().next().ok_or_else(|| NetworkError::Gone(n.uuid.clone()))
}

/// Releases a NIC: its address returns to the pool and its MAC may be reused.
pub async fn release_nic(db: &Db, nic_id: i64) -> Result<(), DbError> {
    let mut tx = db.begin().await.map_err(DbError::from)?;
    sqlx::query("DELETE FROM guest_ips WHERE nic_id = $1").bind(nic_id).execute(&mut *tx).await?;
    // A public address mapped to it by static NAT is mapped to nothing now.
    sqlx::query("UPDATE public_ips SET static_nat_nic_id = NULL, static_nat_vm_ip = NULL WHERE static_nat_nic_id = $1")
        .bind(nic_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE nics SET removed = $1, state = 'Deallocated' WHERE id = $2")
        .bind(now_ms())
        .bind(nic_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_ranges_parse_and_refuse() {
        assert_eq!(parse_vlan_ranges("100-199, 300").unwrap(), vec![(100, 199), (300, 300)]);
        assert!(parse_vlan_ranges("200-100").is_err());
        assert!(parse_vlan_ranges("0-10").is_err());
        assert!(parse_vlan_ranges("4000-5000").is_err());
        assert!(parse_vlan_ranges("x").is_err());
        assert!(vlan_in_ranges(150, &[(100, 199)]));
        assert!(!vlan_in_ranges(200, &[(100, 199)]));
    }

    #[test]
    fn host_ranges_skip_network_and_broadcast() {
        let net = ip_to_int("10.1.1.0".parse().unwrap());
        let (a, b) = host_range(net, 24);
        assert_eq!(int_to_ip(a).to_string(), "10.1.1.1");
        assert_eq!(int_to_ip(b).to_string(), "10.1.1.254");
        assert_eq!(host_range(net, 32), (net, net));
    }

    #[test]
    fn macs_are_local_unicast() {
        let m = random_mac();
        assert!(m.starts_with("02:00:"), "{m}");
        assert_eq!(m.len(), 17);
    }
}
