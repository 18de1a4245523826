//! Typed requests of domains, roles, accounts and users.

use super::*;

/// Picks an account by UUID, or by name within a domain.
#[derive(Debug, Clone)]
pub enum AccountRef {
    Id(String),
    Named { name: String, domain_id: Option<String> },
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

/// An identity command: domains, roles, accounts, users, keys, parsed.
#[derive(Debug, Clone)]
pub enum IdentityRequest {
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
}

pub(super) fn parse(cmd: &'static Command, p: &Params) -> Result<Option<IdentityRequest>, ApiError> {
    Ok(Some(match cmd.name {
        "createDomain" => IdentityRequest::CreateDomain {
            name: must(p, cmd, "name")?,
            parent: uuid(p, "parentdomainid")?,
            network_domain: s(p, "networkdomain"),
        },
        "listDomains" => IdentityRequest::ListDomains {
            id: uuid(p, "id")?,
            name: s(p, "name"),
            level: p.long("level")?,
            listing: listing(p)?,
        },
        "listRoles" => IdentityRequest::ListRoles {
            id: uuid(p, "id")?,
            name: s(p, "name"),
            role_type: s(p, "type"),
            listing: listing(p)?,
        },
        "createAccount" => IdentityRequest::CreateAccount(NewAccount {
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
        "listAccounts" => IdentityRequest::ListAccounts {
            id: uuid(p, "id")?,
            name: s(p, "name"),
            account_type: p.long("accounttype")?,
            state: s(p, "state"),
            listing: listing(p)?,
        },
        "updateAccount" => IdentityRequest::UpdateAccount {
            account: account_ref(p, cmd)?,
            new_name: s(p, "newname"),
            network_domain: s(p, "networkdomain"),
        },
        "disableAccount" => {
            IdentityRequest::DisableAccount { account: account_ref(p, cmd)?, lock: p.bool("lock")?.unwrap_or(false) }
        }
        "enableAccount" => IdentityRequest::EnableAccount { account: account_ref(p, cmd)? },
        "deleteAccount" => IdentityRequest::DeleteAccount { id: must_uuid(p, cmd, "id")? },
        "createUser" => IdentityRequest::CreateUser(NewUserRequest {
            account: must(p, cmd, "account")?,
            username: must(p, cmd, "username")?,
            password: must(p, cmd, "password")?,
            email: must(p, cmd, "email")?,
            firstname: must(p, cmd, "firstname")?,
            lastname: must(p, cmd, "lastname")?,
            domain_id: uuid(p, "domainid")?,
            timezone: s(p, "timezone"),
        }),
        "listUsers" => IdentityRequest::ListUsers {
            id: uuid(p, "id")?,
            username: s(p, "username"),
            state: s(p, "state"),
            listing: listing(p)?,
        },
        "updateUser" => IdentityRequest::UpdateUser(UserUpdate {
            id: must_uuid(p, cmd, "id")?,
            username: s(p, "username"),
            firstname: s(p, "firstname"),
            lastname: s(p, "lastname"),
            email: s(p, "email"),
            timezone: s(p, "timezone"),
            password: s(p, "password"),
            current_password: s(p, "currentpassword"),
        }),
        "disableUser" => IdentityRequest::DisableUser { id: must_uuid(p, cmd, "id")? },
        "enableUser" => IdentityRequest::EnableUser { id: must_uuid(p, cmd, "id")? },
        "deleteUser" => IdentityRequest::DeleteUser { id: must_uuid(p, cmd, "id")? },
        "registerUserKeys" => IdentityRequest::RegisterUserKeys { id: must_uuid(p, cmd, "id")? },
        "getUserKeys" => IdentityRequest::GetUserKeys { id: must_uuid(p, cmd, "id")? },
        _ => return Ok(None),
    }))
}
