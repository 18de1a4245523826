//! listApis and listCapabilities, generated from the command table.

use serde_json::{Map, Value, json};

use super::{CLOUDSTACK_VERSION, list, object};
use crate::api::commands::{self, Command, Field};
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::auth::Caller;

fn field(f: &Field) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), f.name.into());
    m.insert("description".into(), f.description.into());
    m.insert("type".into(), f.ty.into());
    if !f.children.is_empty() {
        m.insert("response".into(), Value::Array(f.children.iter().map(field).collect()));
    }
    Value::Object(m)
}

fn api(c: &Command) -> Map<String, Value> {
    let params: Vec<Value> = c
        .params
        .iter()
        .map(|p| {
            let mut m = Map::new();
            m.insert("name".into(), p.name.to_ascii_lowercase().into());
            m.insert("description".into(), p.description.into());
            m.insert("type".into(), p.ty.as_str().into());
            m.insert("length".into(), p.length.into());
            m.insert("required".into(), p.required.into());
            if !p.related.is_empty() {
                m.insert("related".into(), p.related.into());
            }
            Value::Object(m)
        })
        .collect();
    let mut m = Map::new();
    m.insert("name".into(), c.name.into());
    m.insert("description".into(), c.description.into());
    m.insert("isasync".into(), c.is_async.into());
    if !c.since.is_empty() {
        m.insert("since".into(), c.since.into());
    }
    m.insert("related".into(), related(c).into());
    m.insert("params".into(), Value::Array(params));
    m.insert("response".into(), Value::Array(c.response.iter().map(field).collect()));
    m
}

/// The commands that return the same kind of object, as CloudStack's `related`.
fn related(c: &Command) -> String {
    commands::all()
        .filter(|o| o.name != c.name && o.object == c.object && o.object != "success")
        .map(|o| o.name)
        .collect::<Vec<_>>()
        .join(",")
}

pub fn list_apis(caller: &Caller, name: Option<&str>) -> Result<Reply, ApiError> {
    let allowed = commands::all().filter(|c| c.roles.allows(caller.role));
    let items: Vec<_> = match name {
        Some(n) => {
            let c = allowed.clone().find(|c| c.name == n).ok_or_else(|| {
                ApiError::invalid_param(format!("The API {n} does not exist or is not available for this account"))
            })?;
            vec![api(c)]
        }
        None => allowed.map(api).collect(),
    };
    Ok(list("api", items.len() as i64, items))
}

pub fn capabilities() -> Reply {
    let caps = json!({
        "cloudstackversion": CLOUDSTACK_VERSION,
        "securitygroupsenabled": false,
        "userpublictemplateenabled": true,
        "supportELB": "false",
        "projectinviterequired": false,
        "allowusercreateprojects": true,
        "customdiskofferingminsize": 1,
        "customdiskofferingmaxsize": 1024,
        "kvmsnapshotenabled": true,
        "regionsecondaryenabled": false,
        "apilimitinterval": 1,
        "apilimitmax": 0,
        "allowuserviewdestroyedvm": true,
        "allowuserexpungerecovervm": true,
        "allowuserexpungerecovervolume": true,
        "allowuserforcestopvm": true,
        "dynamicrolesenabled": true,
        "kubernetesserviceenabled": false,
        "defaultuipagesize": 20,
    });
    object("capability", super::views::object(caps))
}
