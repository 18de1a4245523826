//! Typed requests: what a validated parameter set means, one variant per command.
//! The HTTP layer only builds these; the orchestrator executes them.

mod guest_access;
mod identity;
mod infra;
mod instance;
mod network;
mod offerings;
mod plugins;
mod public_ip;
mod rules;
mod security_groups;
mod storage;
mod templates;

pub use guest_access::{GuestAccessRequest, OwnerRef, UserDataInput};
pub use identity::{AccountRef, IdentityRequest, NewAccount, NewUserRequest, UserUpdate};
pub use infra::{InfraRequest, InfraUpdate, NewClusterRequest, NewHostRequest, NewPodRequest, NewZoneRequest};
pub use instance::{AddressQuery, DeployRequest, InstanceQuery, InstanceRequest};
pub use network::*;
pub use offerings::{NewDiskOfferingRequest, NewServiceOfferingRequest, OfferingQuery, OfferingRequest};
pub use plugins::PluginRequest;
pub use public_ip::{PublicIpQuery, PublicIpRequest, RouterAction, RouterQuery};
pub use rules::{
    BalancerUpdate, ForwardUpdate, Members, NewBalancerRequest, NewFirewallRequest, NewForwardRequest, RuleQuery,
    RulesRequest,
};
pub use security_groups::{AuthorizeRequest, Direction, GroupChoice, SecurityGroupRequest};
pub use storage::{NewPoolRequest, NewStoreRequest, NewVolumeRequest, SnapshotQuery, StorageRequest, VolumeQuery};
pub use templates::{NewTemplateRequest, TemplateFromVolume, TemplateQuery, TemplateRequest};

use std::collections::BTreeMap;

use super::commands::Command;
use super::error::ApiError;
use super::params::Params;

/// Where a list command looks and which page it wants.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub keyword: Option<String>,
    pub page: Option<(u32, u32)>,
    pub domain_id: Option<String>,
    pub account: Option<String>,
    pub is_recursive: bool,
    pub list_all: bool,
}

/// Filters shared by the infrastructure listings.
#[derive(Debug, Clone, Default)]
pub struct InfraQuery {
    pub id: Option<String>,
    pub name: Option<String>,
    pub zone_id: Option<String>,
    pub pod_id: Option<String>,
    pub cluster_id: Option<String>,
    pub hypervisor: Option<String>,
    pub allocation_state: Option<String>,
    pub state: Option<String>,
    pub keyword: Option<String>,
    pub page: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
pub enum Request {
    /// A template or ISO command (see `request::templates`).
    Template(TemplateRequest),
    /// A storage command: pools, image stores, volumes, snapshots (see `request::storage`).
    Storage(StorageRequest),
    /// An offering or OS type command (see `request::offerings`).
    Offering(OfferingRequest),
    /// An infrastructure command: zones, pods, clusters, hosts (see `request::infra`).
    Infra(InfraRequest),
    /// A networking command (see `request::network`).
    Network(NetworkRequest),
    /// A virtual machine command (see `request::instance`).
    Instance(InstanceRequest),
    /// A plugin management command (see `request::plugins`).
    Plugin(PluginRequest),
    /// A firewall, port forwarding or load-balancing command (see `request::rules`).
    Rules(RulesRequest),
    /// A public IP, static NAT or router command (see `request::public_ip`).
    PublicIp(PublicIpRequest),
    /// An SSH key pair, userdata or password command (see `request::guest_access`).
    GuestAccess(GuestAccessRequest),
    /// A security group command (see `request::security_groups`).
    SecurityGroup(SecurityGroupRequest),
    ListApis {
        name: Option<String>,
    },
    ListCapabilities,
    /// An identity command: domains, roles, accounts, users, keys (see `request::identity`).
    Identity(IdentityRequest),
    ListEvents {
        id: Option<String>,
        kind: Option<String>,
        level: Option<String>,
        start: Option<i64>,
        end: Option<i64>,
        resource_id: Option<String>,
        resource_type: Option<String>,
        listing: Listing,
    },
    QueryAsyncJobResult {
        job_id: String,
    },
    ListAsyncJobs {
        start: Option<i64>,
        listing: Listing,
    },
    CreateConsoleEndpoint {
        vm_id: String,
    },
    ListPlugins {
        name: Option<String>,
        page: Option<(u32, u32)>,
    },
    ListCapacity {
        query: InfraQuery,
        kind: Option<i32>,
        sort_by: Option<String>,
    },
}

fn s(params: &Params, name: &str) -> Option<String> {
    params.get(name).map(str::to_owned)
}

/// A `details` map as key/value pairs. Both of CloudStack's forms are read:
/// `details[0].key=k&details[0].value=v`, and `details[0].k=v` (a field per key).
fn details(params: &Params) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for entry in params.map("details")?.into_iter().flat_map(|m| m.values()) {
        let field = |f: &str| entry.iter().find(|(k, _)| k.eq_ignore_ascii_case(f)).map(|(_, v)| v.clone());
        match (field("key"), field("value")) {
            (Some(k), Some(v)) if entry.len() == 2 => {
                out.insert(k, v);
            }
            _ => out.extend(entry.iter().map(|(k, v)| (k.clone(), v.clone()))),
        }
    }
    Ok(out)
}

fn must(params: &Params, cmd: &Command, name: &str) -> Result<String, ApiError> {
    s(params, name).ok_or_else(|| ApiError::missing_param(&cmd.name.to_ascii_lowercase(), name))
}

fn uuid(params: &Params, name: &str) -> Result<Option<String>, ApiError> {
    params.uuid(name)
}

fn must_uuid(params: &Params, cmd: &Command, name: &str) -> Result<String, ApiError> {
    uuid(params, name)?.ok_or_else(|| ApiError::missing_param(&cmd.name.to_ascii_lowercase(), name))
}

fn listing(params: &Params) -> Result<Listing, ApiError> {
    Ok(Listing {
        keyword: s(params, "keyword").filter(|k| !k.is_empty()),
        page: params.page()?,
        domain_id: uuid(params, "domainid")?,
        account: s(params, "account"),
        is_recursive: params.bool("isrecursive")?.unwrap_or(false),
        list_all: params.bool("listall")?.unwrap_or(false),
    })
}

/// A date given as yyyy-MM-dd or yyyy-MM-dd HH:mm:ss (UTC), in Unix milliseconds.
fn date(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    Ok(params.date_time(name)?.map(|d| d.and_utc().timestamp_millis()))
}

fn infra_query(params: &Params) -> Result<InfraQuery, ApiError> {
    Ok(InfraQuery {
        id: uuid(params, "id")?,
        name: s(params, "name"),
        zone_id: uuid(params, "zoneid")?,
        pod_id: uuid(params, "podid")?,
        cluster_id: uuid(params, "clusterid")?,
        hypervisor: s(params, "hypervisor"),
        allocation_state: s(params, "allocationstate"),
        state: s(params, "state"),
        keyword: s(params, "keyword").filter(|k| !k.is_empty()),
        page: params.page()?,
    })
}

/// The given subset of `names`, in order, as (name, value) pairs.
fn updates(params: &Params, cmd: &Command, names: &[&'static str]) -> Result<InfraUpdate, ApiError> {
    let fields = names.iter().filter_map(|n| params.get(n).map(|v| (*n, v.to_owned()))).collect();
    Ok(InfraUpdate { id: must_uuid(params, cmd, "id")?, fields })
}

fn account_ref(params: &Params, cmd: &Command) -> Result<AccountRef, ApiError> {
    if let Some(id) = uuid(params, "id")? {
        return Ok(AccountRef::Id(id));
    }
    match s(params, "account") {
        Some(name) => Ok(AccountRef::Named { name, domain_id: uuid(params, "domainid")? }),
        None => Err(ApiError::missing_param(&cmd.name.to_ascii_lowercase(), "id")),
    }
}

impl Request {
    /// Builds the typed request of `cmd` from parameters `cmd.validate` accepted.
    pub fn parse(cmd: &'static Command, params: &Params) -> Result<Request, ApiError> {
        let p = params;
        // Each family of commands parses its own; the rest are parsed here.
        type Family = fn(&'static Command, &Params) -> Result<Option<Request>, ApiError>;
        let families: [Family; 7] = [
            |c, p| Ok(templates::parse(c, p)?.map(Request::Template)),
            |c, p| Ok(storage::parse(c, p)?.map(Request::Storage)),
            |c, p| Ok(offerings::parse(c, p)?.map(Request::Offering)),
            |c, p| Ok(infra::parse(c, p)?.map(Request::Infra)),
            |c, p| Ok(identity::parse(c, p)?.map(Request::Identity)),
            |c, p| Ok(guest_access::parse(c, p)?.map(Request::GuestAccess)),
            |c, p| Ok(security_groups::parse(c, p)?.map(Request::SecurityGroup)),
        ];
        for family in families {
            if let Some(r) = family(cmd, p)? {
                return Ok(r);
            }
        }
        if let Some(r) = rules::parse(cmd, p)? {
            return Ok(Request::Rules(r));
        }
        Ok(match cmd.name {
            "getUploadParamsForPlugin" | "updatePlugin" | "reloadPlugins" => Request::Plugin(plugins::parse(cmd, p)?),
            "listApis" => Request::ListApis { name: s(p, "name") },
            "listCapabilities" => Request::ListCapabilities,
            "listEvents" => Request::ListEvents {
                id: uuid(p, "id")?,
                kind: s(p, "type"),
                level: s(p, "level"),
                start: date(p, "startdate")?,
                end: date(p, "enddate")?,
                resource_id: s(p, "resourceid"),
                resource_type: s(p, "resourcetype"),
                listing: listing(p)?,
            },
            "queryAsyncJobResult" => Request::QueryAsyncJobResult { job_id: must_uuid(p, cmd, "jobid")? },
            "listAsyncJobs" => Request::ListAsyncJobs { start: date(p, "startdate")?, listing: listing(p)? },
            "createConsoleEndpoint" => Request::CreateConsoleEndpoint { vm_id: must_uuid(p, cmd, "virtualmachineid")? },
            "listPlugins" => Request::ListPlugins { name: s(p, "name"), page: listing(p)?.page },
            "listCapacity" => {
                Request::ListCapacity { query: infra_query(p)?, kind: p.int("type")?, sort_by: s(p, "sortby") }
            }
            other => match (network::parse(cmd, p)?, instance::parse(cmd, p)?, public_ip::parse(cmd, p)?) {
                (Some(r), _, _) => Request::Network(r),
                (None, Some(r), _) => Request::Instance(r),
                (None, None, Some(r)) => Request::PublicIp(r),
                (None, None, None) => {
                    return Err(ApiError::unsupported(format!("The command {other} has no handler")));
                }
            },
        })
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;
    use crate::api::commands::{self, ParamType};
    use crate::api::error::ErrorCode;

    /// A value of the right type for a required parameter.
    fn sample(ty: ParamType) -> &'static str {
        match ty {
            ParamType::Boolean => "true",
            ParamType::Date => "2026-01-02",
            ParamType::Integer | ParamType::Long => "1",
            ParamType::Uuid => "9b1c4a52-5d1e-4a8e-9a3c-2f7f4a1b2c3d",
            ParamType::TzDate => "2026-01-02T03:04:05+0000",
            ParamType::List | ParamType::Map | ParamType::String => "x",
        }
    }

    /// The command with a sample value for each required parameter, as validated.
    fn sample_params(cmd: &Command) -> Params {
        let mut pairs = vec![("command".to_owned(), cmd.name.to_owned())];
        for p in cmd.params.iter().filter(|p| p.required) {
            let (key, value) = match p.ty {
                ParamType::Map => (format!("{}[0].key", p.name), sample(p.ty)),
                ty => (p.name.to_owned(), sample(ty)),
            };
            pairs.push((key, value.to_owned()));
        }
        let params = Params::from_pairs(pairs);
        cmd.validate(&params).unwrap_or_else(|e| panic!("{}: the sample values fail validation: {}", cmd.name, e.text));
        params
    }

    /// Every command in the table reaches a typed request: none falls through to "no
    /// handler". A value may still be refused (431); login and logout are answered by
    /// the HTTP layer itself.
    #[test]
    fn every_command_in_the_table_parses() {
        for cmd in commands::all().filter(|c| !matches!(c.name, "login" | "logout")) {
            if let Err(e) = Request::parse(cmd, &sample_params(cmd)) {
                assert_ne!(e.code, ErrorCode::UnsupportedAction, "{}: {}", cmd.name, e.text);
            }
        }
    }

    /// Each command of a family's table (`commands/<family>.rs`) becomes that family's
    /// request (`request/<family>.rs`), which its `execute_<family>` runs: so a new command
    /// touches those three files, and neither `Request` nor `Orchestrator::execute`.
    #[test]
    fn each_family_table_parses_into_its_own_request() {
        for (family, table) in commands::family_tables() {
            for cmd in table {
                let parsed = match Request::parse(cmd, &sample_params(cmd)) {
                    Ok(r) => r,
                    // A sample value refused (431) by the family's own parser still got there.
                    Err(e) if e.code != ErrorCode::UnsupportedAction => continue,
                    Err(e) => panic!("{}: {}", cmd.name, e.text),
                };
                let got = match parsed {
                    Request::Template(_) => "templates",
                    Request::Storage(_) => "storage",
                    Request::Offering(_) => "offerings",
                    Request::Infra(_) => "infra",
                    Request::Identity(_) => "identity",
                    Request::Network(_) => "network",
                    Request::Instance(_) => "instance",
                    Request::GuestAccess(_) => "guest_access",
                    Request::SecurityGroup(_) => "security_groups",
                    other => panic!("{}: parsed outside its family: {other:?}", cmd.name),
                };
                assert_eq!(got, family, "{} is in the {family} table", cmd.name);
            }
        }
    }
}
