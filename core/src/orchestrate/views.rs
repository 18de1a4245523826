//! How stored rows appear in replies: CloudStack's field names, real JSON types,
//! dates as `yyyy-MM-ddTHH:mm:ss+0000`, absent values left out.

use serde_json::{Map, Value, json};

use crate::auth::{AccountRow, DomainRow, RoleRow, UserRow, display_path};
use crate::db::format_time;
use crate::events::EventRow;
use crate::jobs::JobRow;

/// Builds a JSON object, dropping `null` values.
pub fn object(value: Value) -> Map<String, Value> {
    match value {
        // In place: collecting into a new map would hash every key a second time.
        Value::Object(mut m) => {
            m.retain(|_, v| !v.is_null());
            m
        }
        _ => Map::new(),
    }
}

pub fn user(u: &UserRow) -> Map<String, Value> {
    // Locked after wrong passwords: CloudStack's user state for it.
    let state = if u.state == "enabled" && u.locked_at(crate::db::now_ms()) { "locked" } else { u.state.as_str() };
    object(json!({
        "id": u.uuid,
        "username": u.username,
        "firstname": u.firstname,
        "lastname": u.lastname,
        "email": u.email,
        "state": state,
        "account": u.account_name,
        "accountid": u.account_uuid,
        "accounttype": u.account_type,
        "domain": u.domain_name,
        "domainid": u.domain_uuid,
        "roleid": u.role_uuid,
        "rolename": u.role_name,
        "roletype": u.role_type,
        "timezone": u.timezone,
        "created": format_time(u.created),
        "apikey": u.api_key,
        "isdefault": u.is_default != 0,
        "usersource": "native",
        "is2faenabled": false,
    }))
}

pub fn account(a: &AccountRow, users: &[UserRow]) -> Map<String, Value> {
    let users: Vec<Value> = users.iter().filter(|u| u.account_id == a.id).map(|u| Value::Object(user(u))).collect();
    object(json!({
        "id": a.uuid,
        "name": a.name,
        "accounttype": a.account_type,
        "roleid": a.role_uuid,
        "rolename": a.role_name,
        "roletype": a.role_type,
        "domain": a.domain_name,
        "domainid": a.domain_uuid,
        "domainpath": display_path(&a.domain_path),
        "state": a.state,
        "networkdomain": a.network_domain,
        "created": format_time(a.created),
        "isdefault": a.name == "admin" && a.domain_path == "/",
        "user": users,
    }))
}

pub fn domain(d: &DomainRow, has_child: bool) -> Map<String, Value> {
    object(json!({
        "id": d.uuid,
        "name": d.name,
        "level": d.level,
        "parentdomainid": d.parent_uuid,
        "parentdomainname": d.parent_name,
        "haschild": has_child,
        "path": display_path(&d.path),
        "networkdomain": d.network_domain,
        "state": "Active",
        "created": format_time(d.created),
    }))
}

pub fn role(r: &RoleRow) -> Map<String, Value> {
    object(json!({
        "id": r.uuid,
        "name": r.name,
        "type": r.role_type,
        "description": r.description,
        "isdefault": r.is_default != 0,
    }))
}

pub fn event(e: &EventRow) -> Map<String, Value> {
    object(json!({
        "id": e.uuid,
        "type": e.event_type,
        "level": e.level,
        "state": e.state,
        "description": e.description,
        "username": e.username,
        "account": e.account,
        "domainid": e.domain_uuid,
        "domain": e.domain,
        "resourceid": e.resource_id,
        "resourcetype": e.resource_type,
        "resourcename": e.resource_name,
        "created": format_time(e.created),
    }))
}

/// A job as queryAsyncJobResult and listAsyncJobs show it.
pub fn job(j: &JobRow) -> Map<String, Value> {
    let mut m = object(json!({
        "accountid": j.account_uuid,
        "account": j.account,
        "domainid": j.domain_uuid,
        "domainpath": j.domain_path.as_deref().map(display_path),
        "userid": j.user_uuid,
        "cmd": j.cmd,
        "jobstatus": j.status,
        "jobprocstatus": 0,
        "jobresultcode": j.result_code,
        "jobinstancetype": j.instance_type,
        "jobinstanceid": j.instance_id,
        "managementserverid": j.server,
        "created": format_time(j.created),
    }));
    if j.status != crate::jobs::IN_PROGRESS {
        m.insert("jobresulttype".into(), "object".into());
        let result =
            j.result.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Object(Map::new()));
        m.insert("jobresult".into(), result);
        if let Some(done) = j.completed {
            m.insert("completed".into(), format_time(done).into());
        }
    }
    m.insert("jobid".into(), j.uuid.clone().into());
    m
}
