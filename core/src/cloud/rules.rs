//! The rules a network's router holds, as stored: ingress firewall rules on public IPs,
//! the network's egress rules, port forwarding and load-balancing rules with their
//! members; and CloudStack's conflict rules between them.
//!
//! Every change runs in one transaction that first takes the network's row lock, judges
//! the new rule against the live ones and writes it, so two concurrent requests can
//! never both add overlapping rules.

use sqlx::FromRow;

use crate::auth::store::{Arg, Scope, eq, fetch_all, fetch_page, keyword};
use crate::db::{Db, DbError, new_uuid, now_ms};

/// Rule states as CloudStack names them: `Add` until applied, `Active` once applied,
/// `Revoke` while being removed.
pub const ADD: &str = "Add";
pub const ACTIVE: &str = "Active";
pub const REVOKE: &str = "Revoke";

/// Why a rule change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// The new rule conflicts with a live one (CloudStack's NetworkRuleConflictException).
    #[error("{0}")]
    Conflict(String),
    /// The new rule repeats a live ICMP rule (an InvalidParameterValueException there).
    #[error("{0}")]
    Duplicate(String),
    #[error("network {0} is gone")]
    Gone(i64),
}

impl From<sqlx::Error> for RuleError {
    fn from(e: sqlx::Error) -> Self {
        RuleError::Db(DbError::from(e))
    }
}

// ------------------------------------------------------------------ public IPs

/// A public IP as the rules need it.
#[derive(Debug, Clone, FromRow)]
pub struct IpRow {
    pub id: i64,
    pub uuid: String,
    pub address: i64,
    pub state: String,
    pub zone_id: i64,
    pub zone_uuid: String,
    pub account_id: Option<i64>,
    pub account_type: Option<i64>,
    pub domain_id: Option<i64>,
    pub domain_path: Option<String>,
    pub network_id: Option<i64>,
    pub is_source_nat: i64,
    pub static_nat_nic_id: Option<i64>,
}

impl IpRow {
    pub fn ip(&self) -> std::net::Ipv4Addr {
        super::networks::int_to_ip(self.address)
    }
}

impl crate::auth::Owned for IpRow {
    fn owner(&self) -> crate::auth::Owner<'_> {
        // A free address is nobody's: only root admins reach it.
        crate::auth::Owner {
            account_id: self.account_id.unwrap_or(-1),
            account_type: self.account_type.unwrap_or(crate::auth::RoleType::Admin.account_type()),
            domain_path: self.domain_path.as_deref().unwrap_or("/"),
        }
    }
}

const IP_SELECT: &str = "SELECT i.id, i.uuid, i.address, i.state, i.zone_id, z.uuid AS zone_uuid, i.account_id, \
     a.account_type, i.domain_id, d.path AS domain_path, i.network_id, i.is_source_nat, i.static_nat_nic_id \
     FROM public_ips i JOIN zones z ON z.id = i.zone_id LEFT JOIN accounts a ON a.id = i.account_id \
     LEFT JOIN domains d ON d.id = i.domain_id";

pub async fn ip(db: &Db, uuid: &str) -> Result<Option<IpRow>, DbError> {
    let sql = format!("{IP_SELECT} WHERE i.uuid = $1");
    Ok(sqlx::query_as(&sql).bind(uuid).fetch_optional(db.pool()).await?)
}

// ------------------------------------------------------------------ conflicts

/// What a rule is for, as CloudStack's `FirewallRule.Purpose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Firewall,
    PortForwarding,
    LoadBalancing,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Firewall => "Firewall",
            Purpose::PortForwarding => "PortForwarding",
            Purpose::LoadBalancing => "LoadBalancing",
        }
    }
}

/// One rule as conflicts are judged: the purpose, protocol, source port range, CIDRs
/// and ICMP type/code.
#[derive(Debug, Clone)]
pub struct Shape {
    pub uuid: String,
    pub purpose: Purpose,
    pub protocol: String,
    pub ports: Option<(i64, i64)>,
    pub sources: Vec<String>,
    pub destinations: Vec<String>,
    pub icmp: Option<(i64, i64)>,
    pub state: String,
}

impl Shape {
    /// How CloudStack names a rule in its messages.
    fn describe(&self) -> String {
        format!("Rule[{}-{}-{}]", self.uuid, self.purpose.as_str(), self.state)
    }
}

/// Whether two CIDR lists share an entry (two empty lists count as the same).
fn same_cidrs(a: &[String], b: &[String]) -> bool {
    (a.is_empty() && b.is_empty()) || a.iter().any(|c| b.contains(c))
}

/// CloudStack's `detectRulesConflict`: the new rule against every live rule on the same
/// public IP (or, for egress, of the same network).
pub fn detect_conflict(new: &Shape, existing: &[Shape]) -> Result<(), RuleError> {
    for rule in existing.iter().filter(|r| r.state != REVOKE && r.uuid != new.uuid) {
        let same_protocol = rule.protocol.eq_ignore_ascii_case(&new.protocol);
        let one_is_firewall = (rule.purpose == Purpose::Firewall || new.purpose == Purpose::Firewall)
            && (rule.purpose != new.purpose || !same_protocol);
        let both_firewall = rule.purpose == Purpose::Firewall && new.purpose == Purpose::Firewall;
        let both_forwarding = rule.purpose == Purpose::PortForwarding && new.purpose == Purpose::PortForwarding;
        let duplicated = if both_firewall {
            same_cidrs(&rule.sources, &new.sources) && same_cidrs(&rule.destinations, &new.destinations)
        } else {
            both_forwarding && same_cidrs(&rule.sources, &new.sources)
        };
        if new.protocol == "icmp" && same_protocol && rule.icmp == new.icmp && duplicated {
            return Err(RuleError::Duplicate(format!("New rule conflicts with existing rule: {}", rule.describe())));
        }
        match (new.ports, rule.ports) {
            (None, None) if duplicated && same_protocol && new.protocol != "icmp" => {
                return Err(RuleError::Conflict(format!(
                    "There is already a firewall rule specified with protocol = {} and no ports",
                    new.protocol
                )));
            }
            (Some((ns, ne)), Some((rs, re))) => {
                let ranges_matter = !one_is_firewall && (!(both_firewall || both_forwarding) || duplicated);
                // Port forwarding rules of different protocols may share ports.
                let allowed = both_forwarding && !same_protocol;
                if ranges_matter && ns <= re && rs <= ne && !allowed {
                    return Err(RuleError::Conflict(format!(
                        "The range specified, {ns}-{ne}, conflicts with rule {} which has {rs}-{re}",
                        rule.describe()
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn cidr_list(text: &str) -> Vec<String> {
    text.split([',', ' ']).map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

/// A live firewall rule's fields that conflicts are judged on.
#[derive(FromRow)]
struct FirewallShape {
    uuid: String,
    protocol: String,
    start_port: Option<i64>,
    end_port: Option<i64>,
    cidr_list: String,
    dest_cidr_list: String,
    icmp_type: Option<i64>,
    icmp_code: Option<i64>,
    state: String,
}

/// Live firewall rules by `column = id`: an IP's ingress rules or a network's egress rules.
async fn firewall_shapes(
    tx: &mut sqlx::AnyConnection,
    column: &str,
    purpose: &str,
    id: i64,
) -> Result<Vec<Shape>, DbError> {
    let rows: Vec<FirewallShape> = sqlx::query_as(&format!(
        "SELECT uuid, protocol, start_port, end_port, cidr_list, dest_cidr_list, icmp_type, icmp_code, state \
         FROM firewall_rules WHERE {column} = $1 AND purpose = $2 AND state <> 'Revoke'"
    ))
    .bind(id)
    .bind(purpose)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Shape {
            uuid: r.uuid,
            purpose: Purpose::Firewall,
            protocol: r.protocol,
            ports: r.start_port.zip(r.end_port),
            sources: cidr_list(&r.cidr_list),
            destinations: cidr_list(&r.dest_cidr_list),
            icmp: r.icmp_type.zip(r.icmp_code),
            state: r.state,
        })
        .collect())
}

/// The live rules on one public IP: ingress firewall, port forwarding, load balancing.
async fn shapes_on_ip(tx: &mut sqlx::AnyConnection, ip_id: i64) -> Result<Vec<Shape>, DbError> {
    let mut out = firewall_shapes(tx, "ip_id", "Firewall", ip_id).await?;
    let forwards: Vec<(String, String, i64, i64, String)> = sqlx::query_as(
        "SELECT uuid, protocol, public_start_port, public_end_port, state FROM port_forwarding_rules \
         WHERE ip_id = $1 AND state <> 'Revoke'",
    )
    .bind(ip_id)
    .fetch_all(&mut *tx)
    .await?;
    out.extend(forwards.into_iter().map(|(uuid, protocol, s, e, state)| Shape {
        uuid,
        purpose: Purpose::PortForwarding,
        protocol,
        ports: Some((s, e)),
        sources: vec![],
        destinations: vec![],
        icmp: None,
        state,
    }));
    let balancers: Vec<(String, String, i64, String)> = sqlx::query_as(
        "SELECT uuid, protocol, public_port, state FROM load_balancer_rules WHERE ip_id = $1 AND state <> 'Revoke'",
    )
    .bind(ip_id)
    .fetch_all(&mut *tx)
    .await?;
    out.extend(balancers.into_iter().map(|(uuid, protocol, p, state)| Shape {
        uuid,
        purpose: Purpose::LoadBalancing,
        protocol,
        ports: Some((p, p)),
        sources: vec![],
        destinations: vec![],
        icmp: None,
        state,
    }));
    Ok(out)
}

/// The live egress rules of a network.
async fn egress_shapes(tx: &mut sqlx::AnyConnection, network_id: i64) -> Result<Vec<Shape>, DbError> {
    firewall_shapes(tx, "network_id", "Egress", network_id).await
}

// ------------------------------------------------------------------ transactions

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Opens a transaction holding the network's row lock: rule changes on one network run
/// one after another, each judged against what the last one left.
async fn begin(db: &Db, network_id: i64) -> Result<Tx, RuleError> {
    let mut tx = db.begin().await?;
    let done = sqlx::query("UPDATE networks SET alloc_seq = alloc_seq + 1 WHERE id = $1 AND removed IS NULL")
        .bind(network_id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Err(RuleError::Gone(network_id));
    }
    Ok(tx)
}

/// A new firewall rule: ingress on a public IP (`ip_id`) or the network's egress.
#[derive(Debug, Clone)]
pub struct NewFirewall {
    pub network_id: i64,
    pub ip_id: Option<i64>,
    pub protocol: String,
    pub ports: Option<(i64, i64)>,
    pub icmp: Option<(i64, i64)>,
    pub sources: Vec<String>,
    pub destinations: Vec<String>,
    pub account_id: i64,
    pub domain_id: i64,
    pub for_display: bool,
}

impl NewFirewall {
    fn shape(&self, uuid: &str) -> Shape {
        Shape {
            uuid: uuid.to_owned(),
            purpose: Purpose::Firewall,
            protocol: self.protocol.clone(),
            ports: self.ports,
            sources: self.sources.clone(),
            destinations: self.destinations.clone(),
            icmp: self.icmp,
            state: ADD.into(),
        }
    }
}

async fn insert_firewall(tx: &mut sqlx::AnyConnection, r: &NewFirewall, uuid: &str) -> Result<i64, DbError> {
    let purpose = if r.ip_id.is_some() { "Firewall" } else { "Egress" };
    Ok(sqlx::query_scalar(
        "INSERT INTO firewall_rules (uuid, purpose, network_id, ip_id, protocol, start_port, end_port, icmp_type, \
         icmp_code, cidr_list, dest_cidr_list, state, account_id, domain_id, for_display, created) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'Add', $12, $13, $14, $15) RETURNING id",
    )
    .bind(uuid)
    .bind(purpose)
    .bind(r.network_id)
    .bind(r.ip_id)
    .bind(&r.protocol)
    .bind(r.ports.map(|p| p.0))
    .bind(r.ports.map(|p| p.1))
    .bind(r.icmp.map(|i| i.0))
    .bind(r.icmp.map(|i| i.1))
    .bind(r.sources.join(","))
    .bind(r.destinations.join(","))
    .bind(r.account_id)
    .bind(r.domain_id)
    .bind(i64::from(r.for_display))
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?)
}

/// Stores a firewall rule once it conflicts with no live one; its uuid.
pub async fn create_firewall(db: &Db, r: &NewFirewall) -> Result<String, RuleError> {
    let uuid = new_uuid();
    let mut tx = begin(db, r.network_id).await?;
    let existing = match r.ip_id {
        Some(ip) => shapes_on_ip(&mut tx, ip).await?,
        None => egress_shapes(&mut tx, r.network_id).await?,
    };
    detect_conflict(&r.shape(&uuid), &existing)?;
    insert_firewall(&mut tx, r, &uuid).await?;
    tx.commit().await?;
    Ok(uuid)
}

/// The ingress rule openfirewall makes for a forwarding or balancing rule: reused when
/// one with the same ports and protocol is live, else a new one for 0.0.0.0/0.
async fn open_firewall(
    tx: &mut sqlx::AnyConnection,
    r: &NewFirewall,
    existing: &[Shape],
) -> Result<Option<i64>, RuleError> {
    let (start, end) = r.ports.unwrap_or_default();
    let same: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM firewall_rules WHERE ip_id = $1 AND purpose = 'Firewall' AND state <> 'Revoke' \
         AND protocol = $2 AND start_port = $3 AND end_port = $4",
    )
    .bind(r.ip_id)
    .bind(&r.protocol)
    .bind(start)
    .bind(end)
    .fetch_optional(&mut *tx)
    .await?;
    if same.is_some() {
        return Ok(None);
    }
    let uuid = new_uuid();
    detect_conflict(&r.shape(&uuid), existing)?;
    Ok(Some(insert_firewall(tx, r, &uuid).await?))
}

/// A new port forwarding rule.
#[derive(Debug, Clone)]
pub struct NewForward {
    pub network_id: i64,
    pub ip_id: i64,
    pub protocol: String,
    pub public: (i64, i64),
    pub private: (i64, i64),
    pub nic_id: i64,
    pub vm_ip: i64,
    pub account_id: i64,
    pub domain_id: i64,
    pub for_display: bool,
    pub open_firewall: bool,
}

/// The firewall rule that opens `ports` of `protocol` on an IP to everyone.
fn opening(network_id: i64, ip_id: i64, protocol: &str, ports: (i64, i64), owner: (i64, i64)) -> NewFirewall {
    NewFirewall {
        network_id,
        ip_id: Some(ip_id),
        protocol: protocol.to_owned(),
        ports: Some(ports),
        icmp: None,
        sources: vec!["0.0.0.0/0".into()],
        destinations: vec![],
        account_id: owner.0,
        domain_id: owner.1,
        for_display: true,
    }
}

pub async fn create_forward(db: &Db, r: &NewForward) -> Result<String, RuleError> {
    let uuid = new_uuid();
    let mut tx = begin(db, r.network_id).await?;
    let existing = shapes_on_ip(&mut tx, r.ip_id).await?;
    let firewall = match r.open_firewall {
        true => {
            let open = opening(r.network_id, r.ip_id, &r.protocol, r.public, (r.account_id, r.domain_id));
            open_firewall(&mut tx, &open, &existing).await?
        }
        false => None,
    };
    let shape = Shape {
        uuid: uuid.clone(),
        purpose: Purpose::PortForwarding,
        protocol: r.protocol.clone(),
        ports: Some(r.public),
        sources: vec![],
        destinations: vec![],
        icmp: None,
        state: ADD.into(),
    };
    detect_conflict(&shape, &existing)?;
    sqlx::query(
        "INSERT INTO port_forwarding_rules (uuid, network_id, ip_id, protocol, public_start_port, public_end_port, \
         private_start_port, private_end_port, nic_id, vm_ip, state, account_id, domain_id, for_display, \
         firewall_rule_id, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'Add', $11, $12, $13, $14, $15)",
    )
    .bind(&uuid)
    .bind(r.network_id)
    .bind(r.ip_id)
    .bind(&r.protocol)
    .bind(r.public.0)
    .bind(r.public.1)
    .bind(r.private.0)
    .bind(r.private.1)
    .bind(r.nic_id)
    .bind(r.vm_ip)
    .bind(r.account_id)
    .bind(r.domain_id)
    .bind(i64::from(r.for_display))
    .bind(firewall)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(uuid)
}

/// A new load-balancing rule.
#[derive(Debug, Clone)]
pub struct NewBalancer {
    pub name: String,
    pub description: Option<String>,
    pub network_id: i64,
    pub ip_id: i64,
    pub protocol: String,
    pub public_port: i64,
    pub private_port: i64,
    pub algorithm: String,
    pub cidrs: Vec<String>,
    pub account_id: i64,
    pub domain_id: i64,
    pub for_display: bool,
    pub open_firewall: bool,
}

pub async fn create_balancer(db: &Db, r: &NewBalancer) -> Result<String, RuleError> {
    let uuid = new_uuid();
    let mut tx = begin(db, r.network_id).await?;
    let existing = shapes_on_ip(&mut tx, r.ip_id).await?;
    // A TCP proxy rule is TCP on the wire.
    let wire = if r.protocol == "udp" { "udp" } else { "tcp" };
    let ports = (r.public_port, r.public_port);
    let firewall = match r.open_firewall {
        true => {
            let open = opening(r.network_id, r.ip_id, wire, ports, (r.account_id, r.domain_id));
            open_firewall(&mut tx, &open, &existing).await?
        }
        false => None,
    };
    let shape = Shape {
        uuid: uuid.clone(),
        purpose: Purpose::LoadBalancing,
        protocol: r.protocol.clone(),
        ports: Some(ports),
        sources: vec![],
        destinations: vec![],
        icmp: None,
        state: ADD.into(),
    };
    detect_conflict(&shape, &existing)?;
    sqlx::query(
        "INSERT INTO load_balancer_rules (uuid, name, description, network_id, ip_id, protocol, public_port, \
         private_port, algorithm, cidr_list, state, account_id, domain_id, for_display, firewall_rule_id, created) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'Add', $11, $12, $13, $14, $15)",
    )
    .bind(&uuid)
    .bind(&r.name)
    .bind(&r.description)
    .bind(r.network_id)
    .bind(r.ip_id)
    .bind(&r.protocol)
    .bind(r.public_port)
    .bind(r.private_port)
    .bind(&r.algorithm)
    .bind(r.cidrs.join(" "))
    .bind(r.account_id)
    .bind(r.domain_id)
    .bind(i64::from(r.for_display))
    .bind(firewall)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(uuid)
}

/// Marks a firewall rule for removal.
pub async fn revoke_firewall(db: &Db, network_id: i64, id: i64) -> Result<(), RuleError> {
    let mut tx = begin(db, network_id).await?;
    sqlx::query("UPDATE firewall_rules SET state = 'Revoke' WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Marks a forwarding rule for removal, with the firewall rule opened for it.
pub async fn revoke_forward(db: &Db, network_id: i64, id: i64) -> Result<(), RuleError> {
    let mut tx = begin(db, network_id).await?;
    sqlx::query(
        "UPDATE firewall_rules SET state = 'Revoke' WHERE id = (SELECT firewall_rule_id FROM port_forwarding_rules \
         WHERE id = $1)",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE port_forwarding_rules SET state = 'Revoke' WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Marks a balancing rule for removal, with its members and the firewall rule opened for it.
pub async fn revoke_balancer(db: &Db, network_id: i64, id: i64) -> Result<(), RuleError> {
    let mut tx = begin(db, network_id).await?;
    sqlx::query(
        "UPDATE firewall_rules SET state = 'Revoke' WHERE id = (SELECT firewall_rule_id FROM load_balancer_rules \
         WHERE id = $1)",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE load_balancer_members SET state = 'Revoke' WHERE rule_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE load_balancer_rules SET state = 'Revoke' WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Marks the forwarding rules and balancer memberships of a NIC that goes away for
/// removal, as CloudStack does when a VM is expunged; whether there were any.
pub async fn revoke_for_nic(db: &Db, network_id: i64, nic_id: i64) -> Result<bool, RuleError> {
    let mut tx = begin(db, network_id).await?;
    sqlx::query(
        "UPDATE firewall_rules SET state = 'Revoke' WHERE id IN (SELECT firewall_rule_id FROM port_forwarding_rules \
         WHERE nic_id = $1)",
    )
    .bind(nic_id)
    .execute(&mut *tx)
    .await?;
    let forwards = sqlx::query("UPDATE port_forwarding_rules SET state = 'Revoke' WHERE nic_id = $1")
        .bind(nic_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let members = sqlx::query("UPDATE load_balancer_members SET state = 'Revoke' WHERE nic_id = $1")
        .bind(nic_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if forwards + members == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Changes a forwarding rule's target: private ports, NIC and guest address.
pub async fn retarget_forward(
    db: &Db,
    network_id: i64,
    id: i64,
    private: (i64, i64),
    nic_id: i64,
    vm_ip: i64,
) -> Result<(), RuleError> {
    let mut tx = begin(db, network_id).await?;
    sqlx::query(
        "UPDATE port_forwarding_rules SET private_start_port = $1, private_end_port = $2, nic_id = $3, vm_ip = $4, \
         state = 'Add' WHERE id = $5",
    )
    .bind(private.0)
    .bind(private.1)
    .bind(nic_id)
    .bind(vm_ip)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Changes a balancing rule's name, description and algorithm.
pub async fn update_balancer(
    db: &Db,
    network_id: i64,
    id: i64,
    name: Option<&str>,
    description: Option<&str>,
    algorithm: Option<&str>,
) -> Result<(), RuleError> {
    let mut tx = begin(db, network_id).await?;
    sqlx::query(
        "UPDATE load_balancer_rules SET name = COALESCE($1, name), description = COALESCE($2, description), \
         algorithm = COALESCE($3, algorithm), state = CASE WHEN $3 IS NULL THEN state ELSE 'Add' END WHERE id = $4",
    )
    .bind(name)
    .bind(description)
    .bind(algorithm)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Adds members (NIC, guest address) to a balancing rule.
pub async fn add_members(db: &Db, network_id: i64, rule_id: i64, members: &[(i64, i64)]) -> Result<(), RuleError> {
    let mut tx = begin(db, network_id).await?;
    for (nic, ip) in members {
        sqlx::query(
            "INSERT INTO load_balancer_members (rule_id, nic_id, vm_ip, state, created) VALUES ($1, $2, $3, 'Add', $4)",
        )
        .bind(rule_id)
        .bind(nic)
        .bind(ip)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Marks members of a balancing rule for removal.
pub async fn revoke_members(db: &Db, network_id: i64, member_ids: &[i64]) -> Result<(), RuleError> {
    let mut tx = begin(db, network_id).await?;
    for id in member_ids {
        sqlx::query("UPDATE load_balancer_members SET state = 'Revoke' WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The rules in transit when a network's router state was gathered: those being added
/// become Active once it is applied, those being revoked are removed.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    pub firewall: Vec<(i64, String)>,
    pub forwards: Vec<(i64, String)>,
    pub balancers: Vec<(i64, String)>,
    pub members: Vec<(i64, String)>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.firewall.is_empty() && self.forwards.is_empty() && self.balancers.is_empty() && self.members.is_empty()
    }
}

/// Settles exactly the rules gathered: a rule added meanwhile stays `Add` for the next
/// application to take.
pub async fn settle(db: &Db, p: &Pending) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    // Members of revoked rules go first; then the rules; firewall rules last, once
    // nothing names them.
    for (id, state) in &p.members {
        let sql = match state.as_str() {
            REVOKE => "DELETE FROM load_balancer_members WHERE id = $1 AND state = 'Revoke'",
            _ => "UPDATE load_balancer_members SET state = 'Active' WHERE id = $1 AND state = 'Add'",
        };
        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
    }
    for (table, rows) in [("port_forwarding_rules", &p.forwards), ("load_balancer_rules", &p.balancers)] {
        for (id, state) in rows {
            if state == REVOKE {
                if table == "load_balancer_rules" {
                    sqlx::query("DELETE FROM load_balancer_members WHERE rule_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(&format!("DELETE FROM {table} WHERE id = $1 AND state = 'Revoke'"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            } else {
                sqlx::query(&format!("UPDATE {table} SET state = 'Active' WHERE id = $1 AND state = 'Add'"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    for (id, state) in &p.firewall {
        if state == REVOKE {
            for table in ["port_forwarding_rules", "load_balancer_rules"] {
                sqlx::query(&format!("UPDATE {table} SET firewall_rule_id = NULL WHERE firewall_rule_id = $1"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM firewall_rules WHERE id = $1 AND state = 'Revoke'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query("UPDATE firewall_rules SET state = 'Active' WHERE id = $1 AND state = 'Add'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

// ------------------------------------------------------------------ listings

/// A firewall rule (ingress or egress) as listings show it.
#[derive(Debug, Clone, FromRow)]
pub struct FirewallRow {
    pub id: i64,
    pub uuid: String,
    pub purpose: String,
    pub network_id: i64,
    pub network_uuid: String,
    pub ip_id: Option<i64>,
    pub ip_uuid: Option<String>,
    pub ip_address: Option<i64>,
    pub protocol: String,
    pub start_port: Option<i64>,
    pub end_port: Option<i64>,
    pub icmp_type: Option<i64>,
    pub icmp_code: Option<i64>,
    pub cidr_list: String,
    pub dest_cidr_list: String,
    pub state: String,
    pub account_id: i64,
    pub account_type: i64,
    pub domain_path: String,
    pub for_display: i64,
    pub created: i64,
}

impl crate::auth::Owned for FirewallRow {
    fn owner(&self) -> crate::auth::Owner<'_> {
        crate::auth::Owner {
            account_id: self.account_id,
            account_type: self.account_type,
            domain_path: &self.domain_path,
        }
    }
}

const FIREWALL_SELECT: &str = "SELECT f.id, f.uuid, f.purpose, f.network_id, n.uuid AS network_uuid, f.ip_id, \
     i.uuid AS ip_uuid, i.address AS ip_address, f.protocol, f.start_port, f.end_port, f.icmp_type, f.icmp_code, \
     f.cidr_list, f.dest_cidr_list, f.state, f.account_id, a.account_type, d.path AS domain_path, f.for_display, \
     f.created FROM firewall_rules f JOIN networks n ON n.id = f.network_id LEFT JOIN public_ips i ON i.id = f.ip_id \
     JOIN accounts a ON a.id = f.account_id JOIN domains d ON d.id = f.domain_id WHERE 1 = 1";

#[derive(Debug, Default, Clone)]
pub struct RuleFilter {
    pub uuid: Option<String>,
    pub ip_id: Option<i64>,
    pub network_id: Option<i64>,
    pub vm_uuid: Option<String>,
    pub name: Option<String>,
    pub zone_id: Option<i64>,
    pub keyword: Option<String>,
}

/// Firewall rules of one purpose ("Firewall" or "Egress").
pub async fn list_firewall(
    db: &Db,
    scope: &Scope,
    purpose: &str,
    f: &RuleFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<FirewallRow>, i64), DbError> {
    let mut sql = FIREWALL_SELECT.to_owned();
    let mut args = Vec::new();
    eq(&mut sql, &mut args, "f.purpose", Arg::Text(purpose.into()));
    scope.push(&mut sql, &mut args, "f.account_id", "d.path", "f.domain_id");
    if let Some(v) = &f.uuid {
        eq(&mut sql, &mut args, "f.uuid", Arg::Text(v.clone()));
    }
    if let Some(v) = f.ip_id {
        eq(&mut sql, &mut args, "f.ip_id", Arg::Int(v));
    }
    if let Some(v) = f.network_id {
        eq(&mut sql, &mut args, "f.network_id", Arg::Int(v));
    }
    fetch_page(db, sql, &args, "f.id", page).await
}

/// A port forwarding rule as listings show it.
#[derive(Debug, Clone, FromRow)]
pub struct ForwardRow {
    pub id: i64,
    pub uuid: String,
    pub network_id: i64,
    pub network_uuid: String,
    pub ip_id: i64,
    pub ip_uuid: String,
    pub ip_address: i64,
    pub protocol: String,
    pub public_start_port: i64,
    pub public_end_port: i64,
    pub private_start_port: i64,
    pub private_end_port: i64,
    pub nic_id: i64,
    pub vm_uuid: Option<String>,
    pub vm_name: Option<String>,
    pub vm_display_name: Option<String>,
    pub vm_ip: i64,
    pub state: String,
    pub account_id: i64,
    pub account_type: i64,
    pub domain_path: String,
    pub for_display: i64,
    pub created: i64,
}

impl crate::auth::Owned for ForwardRow {
    fn owner(&self) -> crate::auth::Owner<'_> {
        crate::auth::Owner {
            account_id: self.account_id,
            account_type: self.account_type,
            domain_path: &self.domain_path,
        }
    }
}

const FORWARD_SELECT: &str = "SELECT r.id, r.uuid, r.network_id, n.uuid AS network_uuid, r.ip_id, i.uuid AS ip_uuid, \
     i.address AS ip_address, r.protocol, r.public_start_port, r.public_end_port, r.private_start_port, \
     r.private_end_port, r.nic_id, c.instance_uuid AS vm_uuid, v.name AS vm_name, v.display_name AS vm_display_name, \
     r.vm_ip, r.state, r.account_id, a.account_type, d.path AS domain_path, r.for_display, r.created \
     FROM port_forwarding_rules r JOIN networks n ON n.id = r.network_id JOIN public_ips i ON i.id = r.ip_id \
     JOIN nics c ON c.id = r.nic_id LEFT JOIN instances v ON v.uuid = c.instance_uuid \
     JOIN accounts a ON a.id = r.account_id JOIN domains d ON d.id = r.domain_id WHERE 1 = 1";

pub async fn list_forwards(
    db: &Db,
    scope: &Scope,
    f: &RuleFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<ForwardRow>, i64), DbError> {
    let mut sql = FORWARD_SELECT.to_owned();
    let mut args = Vec::new();
    scope.push(&mut sql, &mut args, "r.account_id", "d.path", "r.domain_id");
    if let Some(v) = &f.uuid {
        eq(&mut sql, &mut args, "r.uuid", Arg::Text(v.clone()));
    }
    if let Some(v) = f.ip_id {
        eq(&mut sql, &mut args, "r.ip_id", Arg::Int(v));
    }
    if let Some(v) = f.network_id {
        eq(&mut sql, &mut args, "r.network_id", Arg::Int(v));
    }
    if let Some(v) = &f.vm_uuid {
        eq(&mut sql, &mut args, "c.instance_uuid", Arg::Text(v.clone()));
    }
    fetch_page(db, sql, &args, "r.id", page).await
}

/// A load-balancing rule as listings show it.
#[derive(Debug, Clone, FromRow)]
pub struct BalancerRow {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub description: Option<String>,
    pub network_id: i64,
    pub network_uuid: String,
    pub ip_id: i64,
    pub ip_uuid: String,
    pub ip_address: i64,
    pub zone_uuid: String,
    pub zone_name: String,
    pub protocol: String,
    pub public_port: i64,
    pub private_port: i64,
    pub algorithm: String,
    pub cidr_list: String,
    pub state: String,
    pub account_id: i64,
    pub account_name: String,
    pub account_type: i64,
    pub domain_uuid: String,
    pub domain_name: String,
    pub domain_path: String,
    pub for_display: i64,
    pub created: i64,
}

impl crate::auth::Owned for BalancerRow {
    fn owner(&self) -> crate::auth::Owner<'_> {
        crate::auth::Owner {
            account_id: self.account_id,
            account_type: self.account_type,
            domain_path: &self.domain_path,
        }
    }
}

const BALANCER_SELECT: &str = "SELECT r.id, r.uuid, r.name, r.description, r.network_id, n.uuid AS network_uuid, \
     r.ip_id, i.uuid AS ip_uuid, i.address AS ip_address, z.uuid AS zone_uuid, z.name AS zone_name, r.protocol, \
     r.public_port, r.private_port, r.algorithm, r.cidr_list, r.state, r.account_id, a.name AS account_name, \
     a.account_type, d.uuid AS domain_uuid, d.name AS domain_name, d.path AS domain_path, r.for_display, r.created \
     FROM load_balancer_rules r JOIN networks n ON n.id = r.network_id JOIN public_ips i ON i.id = r.ip_id \
     JOIN zones z ON z.id = i.zone_id JOIN accounts a ON a.id = r.account_id JOIN domains d ON d.id = r.domain_id \
     WHERE 1 = 1";

pub async fn list_balancers(
    db: &Db,
    scope: &Scope,
    f: &RuleFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<BalancerRow>, i64), DbError> {
    let mut sql = BALANCER_SELECT.to_owned();
    let mut args = Vec::new();
    scope.push(&mut sql, &mut args, "r.account_id", "d.path", "r.domain_id");
    if let Some(v) = &f.uuid {
        eq(&mut sql, &mut args, "r.uuid", Arg::Text(v.clone()));
    }
    if let Some(v) = &f.name {
        eq(&mut sql, &mut args, "r.name", Arg::Text(v.clone()));
    }
    if let Some(v) = f.ip_id {
        eq(&mut sql, &mut args, "r.ip_id", Arg::Int(v));
    }
    if let Some(v) = f.network_id {
        eq(&mut sql, &mut args, "r.network_id", Arg::Int(v));
    }
    if let Some(v) = f.zone_id {
        eq(&mut sql, &mut args, "i.zone_id", Arg::Int(v));
    }
    if let Some(v) = &f.vm_uuid {
        args.push(Arg::Text(v.clone()));
        sql.push_str(&format!(
            " AND r.id IN (SELECT m.rule_id FROM load_balancer_members m JOIN nics c ON c.id = m.nic_id \
             WHERE c.instance_uuid = ${})",
            args.len()
        ));
    }
    if let Some(k) = &f.keyword {
        keyword(&mut sql, &mut args, "r.name", k);
    }
    fetch_page(db, sql, &args, "r.id", page).await
}

/// One member of a balancing rule: a VM's NIC and the guest address traffic goes to.
#[derive(Debug, Clone, FromRow)]
pub struct MemberRow {
    pub id: i64,
    pub rule_id: i64,
    pub nic_id: i64,
    pub vm_uuid: Option<String>,
    pub vm_ip: i64,
    pub state: String,
}

/// The members of some balancing rules, revoked ones included.
pub async fn members(db: &Db, rule_ids: &[i64]) -> Result<Vec<MemberRow>, DbError> {
    if rule_ids.is_empty() {
        return Ok(vec![]);
    }
    let marks: Vec<String> = (1..=rule_ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT m.id, m.rule_id, m.nic_id, c.instance_uuid AS vm_uuid, m.vm_ip, m.state FROM load_balancer_members m \
         JOIN nics c ON c.id = m.nic_id WHERE m.rule_id IN ({}) ORDER BY m.id",
        marks.join(", ")
    );
    let args: Vec<Arg> = rule_ids.iter().map(|i| Arg::Int(*i)).collect();
    fetch_all(db, &sql, &args).await
}

/// Every rule of one network, revoked ones included: what its router state is built from.
pub async fn network_rules(
    db: &Db,
    network_id: i64,
) -> Result<(Vec<FirewallRow>, Vec<ForwardRow>, Vec<BalancerRow>, Vec<MemberRow>), DbError> {
    let f = RuleFilter { network_id: Some(network_id), ..Default::default() };
    let all = Scope::default();
    let (mut firewall, _) = list_firewall(db, &all, "Firewall", &f, None).await?;
    firewall.extend(list_firewall(db, &all, "Egress", &f, None).await?.0);
    let (forwards, _) = list_forwards(db, &all, &f, None).await?;
    let (balancers, _) = list_balancers(db, &all, &f, None).await?;
    let ids: Vec<i64> = balancers.iter().map(|b| b.id).collect();
    let members = members(db, &ids).await?;
    Ok((firewall, forwards, balancers, members))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(purpose: Purpose, protocol: &str, ports: Option<(i64, i64)>, sources: &[&str]) -> Shape {
        Shape {
            uuid: new_uuid(),
            purpose,
            protocol: protocol.into(),
            ports,
            sources: sources.iter().map(|s| s.to_string()).collect(),
            destinations: vec![],
            icmp: (protocol == "icmp").then_some((-1, -1)),
            state: ACTIVE.into(),
        }
    }

    #[test]
    fn overlapping_ranges_conflict_as_cloudstack_judges_them() {
        use Purpose::*;
        let pf = shape(PortForwarding, "tcp", Some((8000, 8010)), &[]);
        let conflict = |new: Shape, old: &Shape| detect_conflict(&new, std::slice::from_ref(old));
        // Port forwarding over port forwarding of the same protocol.
        let e = conflict(shape(PortForwarding, "tcp", Some((8010, 8020)), &[]), &pf).unwrap_err();
        assert!(
            matches!(&e, RuleError::Conflict(t) if t.starts_with("The range specified, 8010-8020, conflicts with rule Rule[")
                && t.ends_with("-PortForwarding-Active] which has 8000-8010")),
            "{e}"
        );
        // Another protocol, or ports next to it, are fine.
        conflict(shape(PortForwarding, "udp", Some((8000, 8010)), &[]), &pf).unwrap();
        conflict(shape(PortForwarding, "tcp", Some((8011, 8011)), &[]), &pf).unwrap();
        // Load balancing over port forwarding conflicts whatever the protocol.
        assert!(conflict(shape(LoadBalancing, "udp", Some((8005, 8005)), &[]), &pf).is_err());
        // A firewall rule and a forwarding rule on the same port coexist.
        conflict(shape(Firewall, "tcp", Some((8000, 8000)), &["0.0.0.0/0"]), &pf).unwrap();
        // Firewall rules conflict only when a CIDR is shared.
        let fw = shape(Firewall, "tcp", Some((20, 30)), &["10.0.0.0/8", "0.0.0.0/0"]);
        assert!(conflict(shape(Firewall, "tcp", Some((25, 25)), &["0.0.0.0/0"]), &fw).is_err());
        conflict(shape(Firewall, "tcp", Some((25, 25)), &["192.168.0.0/16"]), &fw).unwrap();
        conflict(shape(Firewall, "udp", Some((25, 25)), &["0.0.0.0/0"]), &fw).unwrap();
        // No ports on both, same protocol and CIDRs.
        let all = shape(Firewall, "all", None, &["10.1.1.0/24"]);
        let e = conflict(shape(Firewall, "all", None, &["10.1.1.0/24"]), &all).unwrap_err();
        assert_eq!(e.to_string(), "There is already a firewall rule specified with protocol = all and no ports");
        // The same ICMP rule twice.
        let icmp = shape(Firewall, "icmp", None, &["0.0.0.0/0"]);
        let e = conflict(shape(Firewall, "icmp", None, &["0.0.0.0/0"]), &icmp).unwrap_err();
        assert!(matches!(e, RuleError::Duplicate(t) if t.starts_with("New rule conflicts with existing rule: Rule[")));
        // Revoked rules no longer count.
        let mut gone = pf.clone();
        gone.state = REVOKE.into();
        conflict(shape(PortForwarding, "tcp", Some((8000, 8000)), &[]), &gone).unwrap();
    }
}
