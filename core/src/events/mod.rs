//! The event log: every state change is recorded, for listEvents and the console.

use sqlx::FromRow;

use crate::auth::Caller;
use crate::auth::store::{Arg, Scope, fetch_page, like_escape};
use crate::db::{Db, DbError, new_uuid, now_ms};

/// An event to record.
pub struct Event<'a> {
    /// CloudStack's event type, e.g. "ACCOUNT.CREATE".
    pub kind: &'a str,
    /// "INFO", "WARN" or "ERROR".
    pub level: &'a str,
    pub description: String,
    /// e.g. "Account", and the resource's UUID and name.
    pub resource: Option<(&'a str, &'a str, &'a str)>,
}

impl<'a> Event<'a> {
    pub fn info(kind: &'a str, description: String) -> Self {
        Event { kind, level: "INFO", description, resource: None }
    }

    pub fn on(mut self, resource_type: &'a str, uuid: &'a str, name: &'a str) -> Self {
        self.resource = Some((resource_type, uuid, name));
        self
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub id: i64,
    pub uuid: String,
    pub event_type: String,
    pub level: String,
    pub state: String,
    pub description: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub created: i64,
    pub username: Option<String>,
    pub account: Option<String>,
    pub domain_uuid: Option<String>,
    pub domain: Option<String>,
}

/// Records a completed event on behalf of `caller` (or the system).
pub async fn record(db: &Db, caller: Option<&Caller>, ev: Event<'_>) -> Result<(), DbError> {
    insert(db.pool(), caller.map(|c| c.user.id), caller.map(|c| (c.user.account_id, c.user.domain_id)), ev).await
}

/// Records an event within the transaction that makes the change it tells of, so that
/// the change and its event are stored together or not at all.
pub async fn record_in(tx: &mut sqlx::AnyConnection, caller: Option<&Caller>, ev: Event<'_>) -> Result<(), DbError> {
    insert(tx, caller.map(|c| c.user.id), caller.map(|c| (c.user.account_id, c.user.domain_id)), ev).await
}

/// Records an event the system made about something an account owns, so that the
/// account sees it in listEvents.
pub async fn record_for_account(db: &Db, account_id: i64, domain_id: i64, ev: Event<'_>) -> Result<(), DbError> {
    insert(db.pool(), None, Some((account_id, domain_id)), ev).await
}

async fn insert<'c, E>(ex: E, user_id: Option<i64>, owner: Option<(i64, i64)>, ev: Event<'_>) -> Result<(), DbError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let (rtype, rid, rname) = ev.resource.map_or((None, None, None), |(t, i, n)| (Some(t), Some(i), Some(n)));
    sqlx::query(
        "INSERT INTO events (uuid, event_type, level, state, description, user_id, account_id, domain_id, \
         resource_type, resource_id, resource_name, created) VALUES ($1, $2, $3, 'Completed', $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(new_uuid())
    .bind(ev.kind)
    .bind(ev.level)
    .bind(ev.description)
    .bind(user_id)
    .bind(owner.map(|o| o.0))
    .bind(owner.map(|o| o.1))
    .bind(rtype.map(str::to_owned))
    .bind(rid.map(str::to_owned))
    .bind(rname.map(str::to_owned))
    .bind(now_ms())
    .execute(ex)
    .await?;
    Ok(())
}

/// Filters of listEvents.
#[derive(Debug, Default)]
pub struct EventFilter {
    pub uuid: Option<String>,
    pub kind: Option<String>,
    pub level: Option<String>,
    pub resource_id: Option<String>,
    pub resource_type: Option<String>,
    pub keyword: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

/// Events within `scope`, newest first; returns (page, total).
pub async fn list(
    db: &Db,
    scope: &Scope,
    filter: &EventFilter,
    page: Option<(u32, u32)>,
) -> Result<(Vec<EventRow>, i64), DbError> {
    let mut sql =
        "SELECT e.id, e.uuid, e.event_type, e.level, e.state, e.description, e.resource_type, e.resource_id, \
         e.resource_name, e.created, u.username, a.name AS account, d.uuid AS domain_uuid, d.name AS domain \
         FROM events e LEFT JOIN users u ON u.id = e.user_id LEFT JOIN accounts a ON a.id = e.account_id \
         LEFT JOIN domains d ON d.id = e.domain_id WHERE 1 = 1"
            .to_owned();
    let mut args = Vec::new();
    scope.push(&mut sql, &mut args, "e.account_id", "d.path", "e.domain_id");
    let text_filters = [
        ("e.uuid", &filter.uuid),
        ("e.event_type", &filter.kind),
        ("e.level", &filter.level),
        ("e.resource_id", &filter.resource_id),
        ("e.resource_type", &filter.resource_type),
    ];
    for (column, value) in text_filters {
        if let Some(v) = value {
            args.push(Arg::Text(v.clone()));
            sql.push_str(&format!(" AND {column} = ${}", args.len()));
        }
    }
    if let Some(k) = &filter.keyword {
        args.push(Arg::Text(format!("%{}%", like_escape(&k.to_ascii_lowercase()))));
        let n = args.len();
        sql.push_str(&format!(
            " AND (LOWER(e.description) LIKE ${n} ESCAPE '\\' OR LOWER(e.event_type) LIKE ${n} ESCAPE '\\')"
        ));
    }
    if let Some(t) = filter.since_ms {
        args.push(Arg::Int(t));
        sql.push_str(&format!(" AND e.created >= ${}", args.len()));
    }
    if let Some(t) = filter.until_ms {
        args.push(Arg::Int(t));
        sql.push_str(&format!(" AND e.created <= ${}", args.len()));
    }
    fetch_page(db, sql, &args, "e.id DESC", page).await
}
