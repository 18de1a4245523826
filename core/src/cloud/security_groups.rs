//! Security groups in the database: the groups, their ingress and egress rules, which
//! instances are in which group, and what the resolution of per-NIC rule sets reads.

use sqlx::FromRow;

use crate::auth::store::{Arg, Scope, eq, fetch_page};
use crate::db::{Db, DbError, new_uuid, now_ms};

/// The name of the group every account has.
pub const DEFAULT_GROUP: &str = "default";
pub const DEFAULT_DESCRIPTION: &str = "Default Security Group";

#[derive(Debug, thiserror::Error)]
pub enum SecurityGroupError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// The account already has a group of this name.
    #[error("name {0} is taken")]
    NameTaken(String),
    /// Instances are in the group.
    #[error("group is in use by instances")]
    HasMembers,
    /// Rules of other groups name this group.
    #[error("rules of other groups allow this group")]
    Referenced,
}

impl From<sqlx::Error> for SecurityGroupError {
    fn from(e: sqlx::Error) -> Self {
        SecurityGroupError::Db(e.into())
    }
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[derive(Debug, Clone, FromRow)]
pub struct GroupRow {
    pub id: i64,
    pub uuid: String,
    pub account_id: i64,
    pub domain_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub created: i64,
    pub account_name: String,
    pub account_type: i64,
    pub domain_uuid: String,
    pub domain_name: String,
    pub domain_path: String,
}

impl crate::auth::Owned for GroupRow {
    fn owner(&self) -> crate::auth::Owner<'_> {
        crate::auth::Owner {
            account_id: self.account_id,
            account_type: self.account_type,
            domain_path: &self.domain_path,
        }
    }
}

const GROUP_SELECT: &str = "SELECT g.id, g.uuid, g.account_id, g.domain_id, g.name, g.description, g.created, \
     a.name AS account_name, a.account_type, d.uuid AS domain_uuid, d.name AS domain_name, d.path AS domain_path \
     FROM security_groups g JOIN accounts a ON a.id = g.account_id JOIN domains d ON d.id = g.domain_id WHERE 1 = 1";

/// One rule, with the group it allows (for a group-to-group rule) named.
#[derive(Debug, Clone, FromRow)]
pub struct RuleRow {
    pub id: i64,
    pub uuid: String,
    pub group_id: i64,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `tcp`, `udp`, `icmp`, `all`, or an IP protocol number.
    pub protocol: String,
    pub start_port: Option<i64>,
    pub end_port: Option<i64>,
    pub icmp_type: Option<i64>,
    pub icmp_code: Option<i64>,
    pub cidr: Option<String>,
    pub ref_group_id: Option<i64>,
    pub ref_group_name: Option<String>,
    pub ref_account_name: Option<String>,
}

const RULE_SELECT: &str = "SELECT r.id, r.uuid, r.group_id, r.direction, r.protocol, r.start_port, r.end_port, \
     r.icmp_type, r.icmp_code, r.cidr, r.ref_group_id, rg.name AS ref_group_name, ra.name AS ref_account_name \
     FROM security_group_rules r LEFT JOIN security_groups rg ON rg.id = r.ref_group_id \
     LEFT JOIN accounts ra ON ra.id = rg.account_id";

#[derive(Debug, Default, Clone)]
pub struct GroupFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    /// Only the groups of this instance.
    pub instance_id: Option<i64>,
    pub keyword: Option<String>,
}

/// The groups a scope sees, filtered; returns (page, total).
pub async fn list_groups(
    db: &Db,
    scope: &Scope,
    f: &GroupFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<GroupRow>, i64), DbError> {
    let mut sql = GROUP_SELECT.to_owned();
    let mut args = Vec::new();
    scope.push(&mut sql, &mut args, "g.account_id", "d.path", "g.domain_id");
    if let Some(u) = &f.uuid {
        eq(&mut sql, &mut args, "g.uuid", Arg::Text(u.clone()));
    }
    if let Some(n) = &f.name {
        eq(&mut sql, &mut args, "g.name", Arg::Text(n.clone()));
    }
    if let Some(i) = f.instance_id {
        args.push(Arg::Int(i));
        sql.push_str(&format!(
            " AND g.id IN (SELECT group_id FROM instance_security_groups WHERE instance_id = ${})",
            args.len()
        ));
    }
    if let Some(k) = &f.keyword {
        crate::auth::store::keyword(&mut sql, &mut args, "g.name", k);
    }
    fetch_page(db, sql, &args, "g.id", page).await
}

pub async fn group(db: &Db, uuid: &str) -> Result<Option<GroupRow>, DbError> {
    let sql = format!("{GROUP_SELECT} AND g.uuid = $1");
    Ok(sqlx::query_as::<_, GroupRow>(&sql).bind(uuid).fetch_optional(db.pool()).await?)
}

pub async fn group_by_id(db: &Db, id: i64) -> Result<Option<GroupRow>, DbError> {
    let sql = format!("{GROUP_SELECT} AND g.id = $1");
    Ok(sqlx::query_as::<_, GroupRow>(&sql).bind(id).fetch_optional(db.pool()).await?)
}

pub async fn group_named(db: &Db, account_id: i64, name: &str) -> Result<Option<GroupRow>, DbError> {
    let sql = format!("{GROUP_SELECT} AND g.account_id = $1 AND g.name = $2");
    Ok(sqlx::query_as::<_, GroupRow>(&sql).bind(account_id).bind(name).fetch_optional(db.pool()).await?)
}

/// Records a group; returns its uuid.
pub async fn insert_group(
    db: &Db,
    account_id: i64,
    domain_id: i64,
    name: &str,
    description: Option<&str>,
) -> Result<String, SecurityGroupError> {
    let uuid = new_uuid();
    let done = sqlx::query(
        "INSERT INTO security_groups (uuid, account_id, domain_id, name, description, created) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&uuid)
    .bind(account_id)
    .bind(domain_id)
    .bind(name)
    .bind(description)
    .bind(now_ms())
    .execute(db.pool())
    .await;
    match done {
        Ok(_) => Ok(uuid),
        Err(e) if unique_violation(&e) => Err(SecurityGroupError::NameTaken(name.to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// The account's `default` group, made now if it has none yet (two callers racing both
/// get the one that was made).
pub async fn ensure_default(db: &Db, account_id: i64, domain_id: i64) -> Result<GroupRow, DbError> {
    if let Some(g) = group_named(db, account_id, DEFAULT_GROUP).await? {
        return Ok(g);
    }
    // Made meanwhile by another caller (the name is taken): that one is the group.
    if let Err(SecurityGroupError::Db(e)) =
        insert_group(db, account_id, domain_id, DEFAULT_GROUP, Some(DEFAULT_DESCRIPTION)).await
    {
        return Err(e);
    }
    group_named(db, account_id, DEFAULT_GROUP).await?.ok_or(DbError::Sql(sqlx::Error::RowNotFound))
}

/// Deletes a group and its rules, unless instances are in it or other groups' rules
/// allow it (checked in the same transaction).
pub async fn delete_group(db: &Db, id: i64) -> Result<(), SecurityGroupError> {
    let mut tx = db.begin().await?;
    // An expunged instance's memberships no longer count; they go with the group.
    let members: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM instance_security_groups m JOIN instances i ON i.id = m.instance_id \
         WHERE m.group_id = $1 AND i.removed IS NULL",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let referenced: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM security_group_rules WHERE ref_group_id = $1 AND group_id <> $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if referenced > 0 {
        return Err(SecurityGroupError::Referenced);
    }
    if members > 0 {
        return Err(SecurityGroupError::HasMembers);
    }
    sqlx::query("DELETE FROM instance_security_groups WHERE group_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM security_group_rules WHERE group_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM security_groups WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The rules of these groups, oldest first.
pub async fn rules_of(db: &Db, group_ids: &[i64]) -> Result<Vec<RuleRow>, DbError> {
    if group_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = group_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let sql = format!("{RULE_SELECT} WHERE r.group_id IN ({ids}) ORDER BY r.id");
    Ok(sqlx::query_as::<_, RuleRow>(&sql).fetch_all(db.pool()).await?)
}

pub async fn rule(db: &Db, uuid: &str) -> Result<Option<RuleRow>, DbError> {
    let sql = format!("{RULE_SELECT} WHERE r.uuid = $1");
    Ok(sqlx::query_as::<_, RuleRow>(&sql).bind(uuid).fetch_optional(db.pool()).await?)
}

/// A rule to record: one source or destination, a CIDR or a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    pub direction: &'static str,
    pub protocol: String,
    pub start_port: Option<i64>,
    pub end_port: Option<i64>,
    pub icmp_type: Option<i64>,
    pub icmp_code: Option<i64>,
    pub cidr: Option<String>,
    pub ref_group_id: Option<i64>,
}

/// Records the rules a group does not have yet (an identical rule is kept, as CloudStack
/// does); returns the ids of the new ones.
pub async fn insert_rules(db: &Db, group_id: i64, rules: &[NewRule]) -> Result<Vec<i64>, DbError> {
    let mut tx = db.begin().await?;
    let mut made = Vec::new();
    for r in rules {
        // NULLs compare equal here: `IS` on SQLite, `IS NOT DISTINCT FROM` on PostgreSQL;
        // COALESCE with a value no column holds works on both.
        let same: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM security_group_rules WHERE group_id = $1 AND direction = $2 AND protocol = $3 \
             AND COALESCE(start_port, -2) = $4 AND COALESCE(end_port, -2) = $5 \
             AND COALESCE(icmp_type, -2) = $6 AND COALESCE(icmp_code, -2) = $7 \
             AND COALESCE(cidr, '') = $8 AND COALESCE(ref_group_id, -2) = $9",
        )
        .bind(group_id)
        .bind(r.direction)
        .bind(&r.protocol)
        .bind(r.start_port.unwrap_or(-2))
        .bind(r.end_port.unwrap_or(-2))
        .bind(r.icmp_type.unwrap_or(-2))
        .bind(r.icmp_code.unwrap_or(-2))
        .bind(r.cidr.clone().unwrap_or_default())
        .bind(r.ref_group_id.unwrap_or(-2))
        .fetch_optional(&mut *tx)
        .await?;
        if same.is_some() {
            continue;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO security_group_rules (uuid, group_id, direction, protocol, start_port, end_port, \
             icmp_type, icmp_code, cidr, ref_group_id, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(new_uuid())
        .bind(group_id)
        .bind(r.direction)
        .bind(&r.protocol)
        .bind(r.start_port)
        .bind(r.end_port)
        .bind(r.icmp_type)
        .bind(r.icmp_code)
        .bind(r.cidr.clone())
        .bind(r.ref_group_id)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        made.push(id);
    }
    tx.commit().await?;
    Ok(made)
}

pub async fn delete_rule(db: &Db, id: i64) -> Result<(), DbError> {
    sqlx::query("DELETE FROM security_group_rules WHERE id = $1").bind(id).execute(db.pool()).await?;
    Ok(())
}

/// The live instances in each group, as (group id, instance uuid).
pub async fn members(db: &Db, group_ids: &[i64]) -> Result<Vec<(i64, String)>, DbError> {
    if group_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = group_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT m.group_id, i.uuid FROM instance_security_groups m JOIN instances i ON i.id = m.instance_id \
         WHERE m.group_id IN ({ids}) AND i.removed IS NULL ORDER BY i.id"
    );
    Ok(sqlx::query_as::<_, (i64, String)>(&sql).fetch_all(db.pool()).await?)
}

/// The groups of an instance, in the order they were given.
pub async fn instance_groups(db: &Db, instance_id: i64) -> Result<Vec<GroupRow>, DbError> {
    let sql = format!(
        "{GROUP_SELECT} AND g.id IN (SELECT group_id FROM instance_security_groups WHERE instance_id = $1) \
         ORDER BY g.id"
    );
    Ok(sqlx::query_as::<_, GroupRow>(&sql).bind(instance_id).fetch_all(db.pool()).await?)
}

/// Puts an instance in exactly these groups.
pub async fn set_instance_groups(
    tx: &mut sqlx::AnyConnection,
    instance_id: i64,
    group_ids: &[i64],
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM instance_security_groups WHERE instance_id = $1")
        .bind(instance_id)
        .execute(&mut *tx)
        .await?;
    for g in group_ids {
        sqlx::query("INSERT INTO instance_security_groups (instance_id, group_id) VALUES ($1, $2)")
            .bind(instance_id)
            .bind(g)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// One NIC of a security group member on a host, with its instance's groups.
#[derive(Debug, Clone, FromRow)]
pub struct MemberNic {
    pub nic_uuid: String,
    pub network_id: i64,
    pub mac: String,
    pub ip_address: Option<i64>,
    pub instance_id: i64,
    pub instance_uuid: String,
    pub group_id: i64,
}

/// The states in which an instance is (or is about to be) on a host, so its NICs are
/// filtered and its addresses count as its groups' members.
pub const ON_HOST_STATES: &str = "'Starting', 'Running', 'Stopping', 'Migrating'";

/// The NICs of instances on a host, one row per (NIC, group of its instance): on one
/// network, or (with `None`) of the members of these groups.
pub async fn member_nics(db: &Db, network_id: Option<i64>, group_ids: &[i64]) -> Result<Vec<MemberNic>, DbError> {
    let mut sql = format!(
        "SELECT c.uuid AS nic_uuid, c.network_id, c.mac, c.ip_address, i.id AS instance_id, \
         i.uuid AS instance_uuid, m.group_id FROM nics c JOIN instances i ON i.uuid = c.instance_uuid \
         JOIN instance_security_groups m ON m.instance_id = i.id \
         WHERE c.removed IS NULL AND i.removed IS NULL AND i.state IN ({ON_HOST_STATES})"
    );
    if let Some(n) = network_id {
        sql.push_str(&format!(" AND c.network_id = {n}"));
    }
    if !group_ids.is_empty() {
        let ids = group_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        sql.push_str(&format!(" AND m.group_id IN ({ids})"));
    }
    sql.push_str(" ORDER BY c.id, m.group_id");
    Ok(sqlx::query_as::<_, MemberNic>(&sql).fetch_all(db.pool()).await?)
}

/// The networks a change of group `group_id` reaches: those of its members' NICs, and
/// those of the members of every group whose rules name it.
pub async fn networks_affected_by(db: &Db, group_id: i64) -> Result<Vec<i64>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT c.network_id FROM nics c JOIN instances i ON i.uuid = c.instance_uuid \
         JOIN instance_security_groups m ON m.instance_id = i.id \
         WHERE c.removed IS NULL AND i.removed IS NULL AND (m.group_id = $1 OR m.group_id IN \
         (SELECT group_id FROM security_group_rules WHERE ref_group_id = $1)) ORDER BY c.network_id",
    )
    .bind(group_id)
    .fetch_all(db.pool())
    .await?)
}

/// The networks of an instance's NICs.
pub async fn instance_networks(db: &Db, instance_uuid: &str) -> Result<Vec<i64>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT network_id FROM nics WHERE instance_uuid = $1 AND removed IS NULL ORDER BY network_id",
    )
    .bind(instance_uuid)
    .fetch_all(db.pool())
    .await?)
}

/// The groups of these instances, as (instance id, group).
pub async fn groups_of_instances(db: &Db, instance_ids: &[i64]) -> Result<Vec<(i64, GroupRow)>, DbError> {
    if instance_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = instance_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let pairs: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "SELECT instance_id, group_id FROM instance_security_groups WHERE instance_id IN ({ids}) \
         ORDER BY instance_id, group_id"
    ))
    .fetch_all(db.pool())
    .await?;
    let mut group_ids: Vec<i64> = pairs.iter().map(|p| p.1).collect();
    group_ids.sort_unstable();
    group_ids.dedup();
    if group_ids.is_empty() {
        return Ok(Vec::new());
    }
    let gids = group_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let groups: Vec<GroupRow> =
        sqlx::query_as(&format!("{GROUP_SELECT} AND g.id IN ({gids})")).fetch_all(db.pool()).await?;
    Ok(pairs
        .into_iter()
        .filter_map(|(vm, g)| groups.iter().find(|row| row.id == g).map(|row| (vm, row.clone())))
        .collect())
}
