//! Executes typed requests: checks who may do what, changes the database, records
//! events, and runs long work as async jobs. Knows nothing of HTTP.

mod addressing;
mod capacity;
pub mod config_drive;
pub mod consoles;
mod discovery;
pub(crate) mod drivers;
pub mod guest_access;
mod identity;
mod infra;
mod instance_changes;
mod instance_volumes;
mod instances;
pub mod locators;
mod logins;
pub mod networks;
mod offerings;
pub mod plugins_api;
mod public_ips;
pub mod reconcile;
pub mod router_plane;
pub mod routers;
pub mod rules;
pub mod security_groups;
mod storage;
mod templates;
pub mod views;
mod volumes;

use serde_json::{Map, Value};

use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{Listing, Request};
use crate::auth::secrets::Sealer;
use crate::auth::store::{self, Scope};
use crate::auth::{Caller, RoleType};
use crate::db::{Db, DbError};
use crate::jobs::Jobs;
use crate::plugins::PluginHost;

/// Everything a request may need.
#[derive(Clone)]
pub struct Orchestrator {
    pub db: Db,
    pub jobs: Jobs,
    pub sealer: Sealer,
    pub plugins: PluginHost,
    /// Recently verified API keys (see `auth::cache`).
    pub keys: std::sync::Arc<crate::auth::cache::KeyCache>,
    /// Console tickets handed out by createConsoleEndpoint.
    pub consoles: std::sync::Arc<consoles::ConsoleTickets>,
    /// Plugin uploads handed out by getUploadParamsForPlugin, and the lock plugin changes take.
    pub plugin_uploads: std::sync::Arc<plugins_api::PluginUploads>,
    /// When wrong passwords lock a user (see `logins`).
    pub login: crate::config::LoginPolicy,
}

/// The version this server reports as CloudStack's.
pub const CLOUDSTACK_VERSION: &str = "4.20.0.0";

impl Orchestrator {
    /// Runs one request for `caller`.
    ///
    /// Each workflow's future is boxed: unboxed, this future would be as large as the
    /// largest workflow's (tens of KiB), and every request would copy that much around.
    pub async fn execute(&self, caller: &Caller, cmd: &'static Command, request: Request) -> Result<Reply, ApiError> {
        use Request::*;
        match request {
            Template(r) => Box::pin(self.execute_template(caller, cmd, r)).await,
            Storage(r) => Box::pin(self.execute_storage(caller, cmd, r)).await,
            Offering(r) => Box::pin(self.execute_offering(caller, r)).await,
            Infra(r) => Box::pin(self.execute_infra(caller, r)).await,
            Network(r) => Box::pin(self.execute_network(caller, cmd, r)).await,
            Instance(r) => Box::pin(self.execute_instance(caller, cmd, r)).await,
            Plugin(r) => Box::pin(self.execute_plugin(caller, r)).await,
            Rules(r) => Box::pin(self.execute_rules(caller, cmd, r)).await,
            PublicIp(r) => Box::pin(self.execute_public_ip(caller, cmd, r)).await,
            GuestAccess(r) => Box::pin(self.execute_guest_access(caller, cmd, r)).await,
            SecurityGroup(r) => Box::pin(self.execute_security_group(caller, cmd, r)).await,
            ListApis { name } => discovery::list_apis(caller, name.as_deref()),
            ListCapabilities => Ok(discovery::capabilities()),
            Identity(r) => Box::pin(self.execute_identity(caller, cmd, r)).await,
            ListEvents { id, kind, level, start, end, resource_id, resource_type, listing } => {
                let filter = crate::events::EventFilter {
                    uuid: id,
                    kind,
                    level,
                    resource_id,
                    resource_type,
                    keyword: listing.keyword.clone(),
                    since_ms: start,
                    until_ms: end,
                };
                let scope = Box::pin(self.scope(caller, &listing)).await?;
                let (rows, total) = crate::events::list(&self.db, &scope, &filter, listing.page).await?;
                Ok(list("event", total, rows.iter().map(views::event).collect()))
            }
            QueryAsyncJobResult { job_id } => {
                let job = Box::pin(self.jobs.get(&job_id)).await?.ok_or_else(|| no_such("job", &job_id))?;
                if !caller.can_reach(&job) {
                    return Err(not_yours("job", &job_id));
                }
                Ok(Reply::Flat(views::job(&job)))
            }
            ListAsyncJobs { start, listing } => {
                let scope = Box::pin(self.scope(caller, &listing)).await?;
                let (rows, total) = Box::pin(self.jobs.list(&scope, start, listing.page)).await?;
                Ok(list("asyncjobs", total, rows.iter().map(views::job).collect()))
            }
            CreateConsoleEndpoint { vm_id } => Box::pin(self.create_console_endpoint(caller, &vm_id)).await,
            ListPlugins { name, page } => Ok(self.list_plugins(name.as_deref(), page)),
            ListCapacity { query, kind, sort_by } => {
                Box::pin(self.list_capacity(query, kind, sort_by.as_deref())).await
            }
        }
    }

    /// What a list command may see: everything for root admins, a domain subtree's
    /// accounts of no higher role for domain and resource admins, one's own account for
    /// users; narrowed by domainid and account.
    async fn scope(&self, caller: &Caller, listing: &Listing) -> Result<Scope, ApiError> {
        let mut scope = match caller.role {
            RoleType::Admin => Scope::default(),
            RoleType::DomainAdmin | RoleType::ResourceAdmin => Scope {
                domain_prefix: Some(caller.user.domain_path.clone()),
                // Not a more privileged account's things, even within the caller's domain.
                account_types: Some(caller.role.reachable_account_types()),
                ..Scope::default()
            },
            RoleType::User => Scope { account_id: Some(caller.user.account_id), ..Scope::default() },
        };
        let mut domain = None;
        if let Some(id) = &listing.domain_id {
            let d = store::domain_by_uuid(&self.db, id).await?.ok_or_else(|| no_such("domain", id))?;
            if !caller.can_reach_domain(&d.path) {
                return Err(not_yours("domain", id));
            }
            if listing.is_recursive || listing.list_all {
                scope.domain_prefix = Some(d.path.clone());
            } else {
                scope.domain_id = Some(d.id);
            }
            domain = Some(d);
        }
        if let Some(name) = &listing.account {
            let domain_id = domain.as_ref().map_or(caller.user.domain_id, |d| d.id);
            let a = store::account_by_name(&self.db, name, domain_id).await?.ok_or_else(|| no_such("account", name))?;
            if !caller.can_reach(&a) {
                return Err(not_yours("account", name));
            }
            scope.account_id = Some(a.id);
        }
        Ok(scope)
    }
}

impl Orchestrator {
    /// Records a completed action of `caller` on a resource: (type, UUID, name).
    ///
    /// The change it tells of is committed by then, so the reply must say it happened: an
    /// event that cannot be stored is written to the server's log instead (in full, so that
    /// nothing of the audit trail is lost), and the request still succeeds. Changes that
    /// must not exist without their event use `audit_in` within their transaction.
    pub(crate) async fn audit(
        &self,
        caller: &Caller,
        kind: &str,
        (resource_type, uuid, name): (&str, &str, &str),
        description: String,
    ) -> Result<(), DbError> {
        let event = crate::events::Event::info(kind, description.clone()).on(resource_type, uuid, name);
        if let Err(e) = crate::events::record(&self.db, Some(caller), event).await {
            tracing::error!(
                event = kind,
                resource_type,
                resource = uuid,
                user = caller.user.uuid.as_str(),
                "an event of a committed change could not be stored ({e}): {description}"
            );
        }
        Ok(())
    }

    /// `audit` within the transaction that makes the change.
    pub(crate) async fn audit_in(
        tx: &mut sqlx::AnyConnection,
        caller: &Caller,
        kind: &str,
        (resource_type, uuid, name): (&str, &str, &str),
        description: String,
    ) -> Result<(), DbError> {
        let event = crate::events::Event::info(kind, description).on(resource_type, uuid, name);
        crate::events::record_in(tx, Some(caller), event).await
    }
}

/// A list reply.
pub(crate) fn list(object: &str, total: i64, items: Vec<Map<String, Value>>) -> Reply {
    Reply::List { object: object.to_owned(), count: total.max(0) as u64, items }
}

pub(crate) fn object(object: &str, value: Map<String, Value>) -> Reply {
    Reply::Object { object: object.to_owned(), value }
}

/// 431 for an id that names nothing (CloudStack's wording).
pub(crate) fn no_such(what: &str, id: &str) -> ApiError {
    ApiError::invalid_param(format!("Unable to find {what} by id or name {id}"))
}

/// 531 for something that exists but is not the caller's to see.
pub(crate) fn not_yours(what: &str, id: &str) -> ApiError {
    ApiError::permission_denied(format!("The caller does not have permission to access {what} {id}"))
}
