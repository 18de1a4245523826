//! Typed requests: what a validated parameter set means, one variant per command.
//! The HTTP layer only builds these; the orchestrator executes them.

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

/// Picks an account by UUID, or by name within a domain.
#[derive(Debug, Clone)]
pub enum AccountRef {
    Id(String),
    Named { name: String, domain_id: Option<String> },
}

#[derive(Debug, Clone)]
pub enum Request {
    ListApis {
        name: Option<String>,
    },
    ListCapabilities,
    CreateDomain {
        name: String,
        parent: Option<String>,
        network_domain: Option<String>,
    },
    ListDomains {
        id: Option<String>,
        name: Option<String>,
        level: Option<i64>,
        listing: Listing,
    },
    ListRoles {
        id: Option<String>,
        name: Option<String>,
        role_type: Option<String>,
        listing: Listing,
    },
    CreateAccount(NewAccount),
    ListAccounts {
        id: Option<String>,
        name: Option<String>,
        account_type: Option<i64>,
        state: Option<String>,
        listing: Listing,
    },
    UpdateAccount {
        account: AccountRef,
        new_name: Option<String>,
        network_domain: Option<String>,
    },
    DisableAccount {
        account: AccountRef,
        lock: bool,
    },
    EnableAccount {
        account: AccountRef,
    },
    DeleteAccount {
        id: String,
    },
    CreateUser(NewUserRequest),
    ListUsers {
        id: Option<String>,
        username: Option<String>,
        state: Option<String>,
        listing: Listing,
    },
    UpdateUser(UserUpdate),
    DisableUser {
        id: String,
    },
    EnableUser {
        id: String,
    },
    DeleteUser {
        id: String,
    },
    RegisterUserKeys {
        id: String,
    },
    GetUserKeys {
        id: String,
    },
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
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub password: String,
    pub email: String,
    pub firstname: String,
    pub lastname: String,
    pub account_type: Option<i64>,
    pub role_id: Option<String>,
    pub account: Option<String>,
    pub domain_id: Option<String>,
    pub timezone: Option<String>,
    pub network_domain: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewUserRequest {
    pub account: String,
    pub username: String,
    pub password: String,
    pub email: String,
    pub firstname: String,
    pub lastname: String,
    pub domain_id: Option<String>,
    pub timezone: Option<String>,
}

#[derive(Debug, Clone)]
pub struct UserUpdate {
    pub id: String,
    pub username: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub email: Option<String>,
    pub timezone: Option<String>,
    pub password: Option<String>,
    pub current_password: Option<String>,
}

fn s(params: &Params, name: &str) -> Option<String> {
    params.get(name).map(str::to_owned)
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
        Ok(match cmd.name {
            "listApis" => Request::ListApis { name: s(p, "name") },
            "listCapabilities" => Request::ListCapabilities,
            "createDomain" => Request::CreateDomain {
                name: must(p, cmd, "name")?,
                parent: uuid(p, "parentdomainid")?,
                network_domain: s(p, "networkdomain"),
            },
            "listDomains" => Request::ListDomains {
                id: uuid(p, "id")?,
                name: s(p, "name"),
                level: p.long("level")?,
                listing: listing(p)?,
            },
            "listRoles" => Request::ListRoles {
                id: uuid(p, "id")?,
                name: s(p, "name"),
                role_type: s(p, "type"),
                listing: listing(p)?,
            },
            "createAccount" => Request::CreateAccount(NewAccount {
                username: must(p, cmd, "username")?,
                password: must(p, cmd, "password")?,
                email: must(p, cmd, "email")?,
                firstname: must(p, cmd, "firstname")?,
                lastname: must(p, cmd, "lastname")?,
                account_type: p.long("accounttype")?,
                role_id: uuid(p, "roleid")?,
                account: s(p, "account"),
                domain_id: uuid(p, "domainid")?,
                timezone: s(p, "timezone"),
                network_domain: s(p, "networkdomain"),
            }),
            "listAccounts" => Request::ListAccounts {
                id: uuid(p, "id")?,
                name: s(p, "name"),
                account_type: p.long("accounttype")?,
                state: s(p, "state"),
                listing: listing(p)?,
            },
            "updateAccount" => Request::UpdateAccount {
                account: account_ref(p, cmd)?,
                new_name: s(p, "newname"),
                network_domain: s(p, "networkdomain"),
            },
            "disableAccount" => {
                Request::DisableAccount { account: account_ref(p, cmd)?, lock: p.bool("lock")?.unwrap_or(false) }
            }
            "enableAccount" => Request::EnableAccount { account: account_ref(p, cmd)? },
            "deleteAccount" => Request::DeleteAccount { id: must_uuid(p, cmd, "id")? },
            "createUser" => Request::CreateUser(NewUserRequest {
                account: must(p, cmd, "account")?,
                username: must(p, cmd, "username")?,
                password: must(p, cmd, "password")?,
                email: must(p, cmd, "email")?,
                firstname: must(p, cmd, "firstname")?,
                lastname: must(p, cmd, "lastname")?,
                domain_id: uuid(p, "domainid")?,
                timezone: s(p, "timezone"),
            }),
            "listUsers" => Request::ListUsers {
                id: uuid(p, "id")?,
                username: s(p, "username"),
                state: s(p, "state"),
                listing: listing(p)?,
            },
            "updateUser" => Request::UpdateUser(UserUpdate {
                id: must_uuid(p, cmd, "id")?,
                username: s(p, "username"),
                firstname: s(p, "firstname"),
                lastname: s(p, "lastname"),
                email: s(p, "email"),
                timezone: s(p, "timezone"),
                password: s(p, "password"),
                current_password: s(p, "currentpassword"),
            }),
            "disableUser" => Request::DisableUser { id: must_uuid(p, cmd, "id")? },
            "enableUser" => Request::EnableUser { id: must_uuid(p, cmd, "id")? },
            "deleteUser" => Request::DeleteUser { id: must_uuid(p, cmd, "id")? },
            "registerUserKeys" => Request::RegisterUserKeys { id: must_uuid(p, cmd, "id")? },
            "getUserKeys" => Request::GetUserKeys { id: must_uuid(p, cmd, "id")? },
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
            other => {
                return Err(ApiError::unsupported(format!("The command {other} has no handler")));
            }
        })
    }
}
