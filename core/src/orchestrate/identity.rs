//! Domains, roles, accounts, users and API keys.

use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{AccountRef, IdentityRequest, Listing, NewAccount, NewUserRequest, UserUpdate};
use crate::auth::store::{self, AccountFilter, AccountRow, NewUser, UserChanges, UserFilter, UserRow};
use crate::auth::{Caller, RoleType, passwords};
use crate::db::DbError;
use crate::jobs::JobSpec;

use super::{Orchestrator, list, no_such, not_yours, object, views};

fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid_param(format!("The {what} name cannot be empty")));
    }
    Ok(())
}

impl Orchestrator {
    /// Runs one identity command: domains, roles, accounts, users, keys.
    pub(super) async fn execute_identity(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        request: IdentityRequest,
    ) -> Result<Reply, ApiError> {
        use IdentityRequest::*;
        match request {
            CreateDomain { name, parent, network_domain } => {
                Box::pin(self.create_domain(caller, &name, parent.as_deref(), network_domain.as_deref())).await
            }
            ListDomains { id, name, level, listing } => {
                Box::pin(self.list_domains(caller, id.as_deref(), name.as_deref(), level, &listing)).await
            }
            ListRoles { id, name, role_type, listing } => {
                Box::pin(self.list_roles(id.as_deref(), name.as_deref(), role_type.as_deref(), &listing)).await
            }
            CreateAccount(a) => Box::pin(self.create_account(caller, a)).await,
            ListAccounts { id, name, account_type, state, listing } => {
                Box::pin(self.list_accounts(caller, id, name, account_type, state, &listing)).await
            }
            UpdateAccount { account, new_name, network_domain } => {
                Box::pin(self.update_account(caller, &account, new_name.as_deref(), network_domain.as_deref())).await
            }
            DisableAccount { account, lock } => Box::pin(self.disable_account(caller, cmd, &account, lock)).await,
            EnableAccount { account } => Box::pin(self.enable_account(caller, &account)).await,
            DeleteAccount { id } => Box::pin(self.delete_account(caller, cmd, &id)).await,
            CreateUser(u) => Box::pin(self.create_user(caller, u)).await,
            ListUsers { id, username, state, listing } => {
                Box::pin(self.list_users(caller, id, username, state, &listing)).await
            }
            UpdateUser(u) => Box::pin(self.update_user(caller, u)).await,
            DisableUser { id } => Box::pin(self.disable_user(caller, cmd, &id)).await,
            EnableUser { id } => Box::pin(self.enable_user(caller, &id)).await,
            DeleteUser { id } => Box::pin(self.delete_user(caller, &id)).await,
            RegisterUserKeys { id } => Box::pin(self.register_keys(caller, &id)).await,
            GetUserKeys { id } => Box::pin(self.get_keys(caller, &id)).await,
        }
    }

    pub(super) async fn create_domain(
        &self,
        caller: &Caller,
        name: &str,
        parent: Option<&str>,
        network_domain: Option<&str>,
    ) -> Result<Reply, ApiError> {
        check_name("domain", name)?;
        if name.contains('/') {
            return Err(ApiError::invalid_param("The domain name cannot contain '/'"));
        }
        let parent = match parent {
            Some(id) => store::domain_by_uuid(&self.db, id).await?.ok_or_else(|| no_such("domain", id))?,
            None => store::domain_by_id(&self.db, caller.user.domain_id)
                .await?
                .ok_or_else(|| ApiError::internal("the caller's domain is gone"))?,
        };
        if !caller.can_reach_domain(&parent.path) {
            return Err(not_yours("domain", &parent.uuid));
        }
        let path = format!("{}{}/", parent.path, name);
        if store::domain_by_path(&self.db, &path).await?.is_some() {
            return Err(ApiError::invalid_param(format!(
                "Domain with name {name} already exists for the parent id={}",
                parent.uuid
            )));
        }
        // The domain and its event are committed together, or neither is.
        let mut tx = self.db.begin().await.map_err(DbError::from)?;
        let id = store::create_domain(&mut tx, &parent, name, network_domain).await?;
        let uuid: String = sqlx::query_scalar("SELECT uuid FROM domains WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(DbError::from)?;
        Self::audit_in(&mut tx, caller, "DOMAIN.CREATE", ("Domain", &uuid, name), format!("Domain {name} created"))
            .await?;
        tx.commit().await.map_err(DbError::from)?;
        let d = store::domain_by_id(&self.db, id).await?.ok_or_else(|| ApiError::internal("the new domain is gone"))?;
        Ok(object("domain", views::domain(&d, false)))
    }

    pub(super) async fn list_domains(
        &self,
        caller: &Caller,
        id: Option<&str>,
        name: Option<&str>,
        level: Option<i64>,
        listing: &Listing,
    ) -> Result<Reply, ApiError> {
        let prefix = if caller.is_root_admin() { "/".to_owned() } else { caller.user.domain_path.clone() };
        let (rows, total) = store::list_domains(&self.db, &prefix, name, level, None).await?;
        let (rows, total) = match id {
            Some(id) => {
                let d = store::domain_by_uuid(&self.db, id).await?.ok_or_else(|| no_such("domain", id))?;
                if !caller.can_reach_domain(&d.path) {
                    return Err(not_yours("domain", id));
                }
                let rows: Vec<_> = rows.into_iter().filter(|r| r.id == d.id).collect();
                let n = rows.len() as i64;
                (rows, n)
            }
            None => (rows, total),
        };
        let keyword = listing.keyword.as_deref().map(str::to_ascii_lowercase);
        let parents: std::collections::HashSet<i64> = rows.iter().filter_map(|r| r.parent_id).collect();
        let matching: Vec<_> =
            rows.iter().filter(|r| keyword.as_ref().is_none_or(|k| r.name.to_ascii_lowercase().contains(k))).collect();
        let total = if keyword.is_some() { matching.len() as i64 } else { total };
        let page = paginate(matching, listing.page);
        Ok(list("domain", total, page.into_iter().map(|d| views::domain(d, parents.contains(&d.id))).collect()))
    }

    pub(super) async fn list_roles(
        &self,
        id: Option<&str>,
        name: Option<&str>,
        role_type: Option<&str>,
        listing: &Listing,
    ) -> Result<Reply, ApiError> {
        let keyword = listing.keyword.as_deref().map(str::to_ascii_lowercase);
        let roles: Vec<_> = store::list_roles(&self.db)
            .await?
            .into_iter()
            .filter(|r| id.is_none_or(|i| r.uuid == i))
            .filter(|r| name.is_none_or(|n| r.name.eq_ignore_ascii_case(n)))
            .filter(|r| role_type.is_none_or(|t| r.role_type.eq_ignore_ascii_case(t)))
            .filter(|r| keyword.as_ref().is_none_or(|k| r.name.to_ascii_lowercase().contains(k)))
            .collect();
        let total = roles.len() as i64;
        Ok(list("role", total, paginate(roles.iter().collect(), listing.page).into_iter().map(views::role).collect()))
    }

    async fn domain_for(&self, caller: &Caller, domain_id: Option<&str>) -> Result<store::DomainRow, ApiError> {
        let d = match domain_id {
            Some(id) => store::domain_by_uuid(&self.db, id).await?.ok_or_else(|| no_such("domain", id))?,
            None => store::domain_by_id(&self.db, caller.user.domain_id)
                .await?
                .ok_or_else(|| ApiError::internal("the caller's domain is gone"))?,
        };
        if !caller.can_reach_domain(&d.path) {
            return Err(not_yours("domain", &d.uuid));
        }
        Ok(d)
    }

    pub(super) async fn create_account(&self, caller: &Caller, a: NewAccount) -> Result<Reply, ApiError> {
        check_name("user", &a.username)?;
        if a.password.is_empty() {
            return Err(ApiError::invalid_param("The password cannot be empty"));
        }
        let domain = self.domain_for(caller, a.domain_id.as_deref()).await?;
        let role = match (&a.role_id, a.account_type) {
            (Some(rid), _) => {
                let roles = store::list_roles(&self.db).await?;
                let r = roles.iter().find(|r| &r.uuid == rid).ok_or_else(|| no_such("role", rid))?;
                RoleType::parse(&r.role_type).unwrap_or(RoleType::User)
            }
            (None, Some(t)) => RoleType::from_account_type(t).ok_or_else(|| {
                ApiError::invalid_param(format!(
                    "Invalid account type {t}; use 0 (user), 1 (root admin), 2 (domain admin) or 3 (resource admin)"
                ))
            })?,
            (None, None) => return Err(ApiError::invalid_param("Either accounttype or roleid must be given")),
        };
        // The same ladder as for acting on accounts: no one creates an account above
        // their own role (only root admins create root admins).
        if !caller.role.may_act_on(role) {
            return Err(ApiError::permission_denied(format!(
                "A {} cannot create an account of role type {}",
                caller.role.as_str(),
                role.as_str()
            )));
        }
        let name = a.account.clone().unwrap_or_else(|| a.username.clone());
        check_name("account", &name)?;
        if store::account_by_name(&self.db, &name, domain.id).await?.is_some() {
            return Err(ApiError::invalid_param(format!("The specified account: {name} already exists")));
        }
        if store::username_taken(&self.db, &a.username, domain.id).await? {
            return Err(ApiError::invalid_param(format!(
                "The user {} already exists in domain {}",
                a.username, domain.name
            )));
        }
        let user = NewUser {
            username: a.username,
            password: a.password,
            firstname: a.firstname,
            lastname: a.lastname,
            email: a.email,
            timezone: a.timezone,
            is_default: false,
            password_change_required: false,
        };
        // Hashed before the transaction opens, so a wait for a hashing slot holds no lock.
        let hash = passwords::hash(&user.password).await;
        // The account, its user and the event are committed together, or none is.
        let mut tx = self.db.begin().await.map_err(DbError::from)?;
        let id =
            store::create_account(&mut tx, &name, domain.id, role, a.network_domain.as_deref(), user, hash).await?;
        let uuid: String = sqlx::query_scalar("SELECT uuid FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(DbError::from)?;
        Self::audit_in(&mut tx, caller, "ACCOUNT.CREATE", ("Account", &uuid, &name), format!("Account {name} created"))
            .await?;
        tx.commit().await.map_err(DbError::from)?;
        let account =
            store::account_by_id(&self.db, id).await?.ok_or_else(|| ApiError::internal("the new account is gone"))?;
        let users = store::users_of_accounts(&self.db, &[id]).await?;
        Ok(object("account", views::account(&account, &users)))
    }

    pub(super) async fn list_accounts(
        &self,
        caller: &Caller,
        id: Option<String>,
        name: Option<String>,
        account_type: Option<i64>,
        state: Option<String>,
        listing: &Listing,
    ) -> Result<Reply, ApiError> {
        if let Some(id) = &id {
            let a = store::account_by_uuid(&self.db, id).await?.ok_or_else(|| no_such("account", id))?;
            if !caller.can_reach(&a) {
                return Err(not_yours("account", id));
            }
        }
        let scope = self.scope(caller, listing).await?;
        let filter = AccountFilter { uuid: id, name, account_type, state, keyword: listing.keyword.clone() };
        let (rows, total) = store::list_accounts(&self.db, &scope, &filter, listing.page).await?;
        let ids: Vec<i64> = rows.iter().map(|a| a.id).collect();
        let users = store::users_of_accounts(&self.db, &ids).await?;
        Ok(list("account", total, rows.iter().map(|a| views::account(a, &users)).collect()))
    }

    async fn account(&self, caller: &Caller, r: &AccountRef) -> Result<AccountRow, ApiError> {
        let a = match r {
            AccountRef::Id(id) => store::account_by_uuid(&self.db, id).await?.ok_or_else(|| no_such("account", id))?,
            AccountRef::Named { name, domain_id } => {
                let d = self.domain_for(caller, domain_id.as_deref()).await?;
                store::account_by_name(&self.db, name, d.id).await?.ok_or_else(|| no_such("account", name))?
            }
        };
        if !caller.can_reach(&a) {
            return Err(not_yours("account", &a.uuid));
        }
        Ok(a)
    }

    async fn account_reply(&self, id: i64) -> Result<Reply, ApiError> {
        let a = store::account_by_id(&self.db, id).await?.ok_or_else(|| ApiError::internal("the account is gone"))?;
        let users = store::users_of_accounts(&self.db, &[id]).await?;
        Ok(object("account", views::account(&a, &users)))
    }

    pub(super) async fn update_account(
        &self,
        caller: &Caller,
        r: &AccountRef,
        new_name: Option<&str>,
        network_domain: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let a = self.account(caller, r).await?;
        if let Some(n) = new_name {
            check_name("account", n)?;
            if n != a.name && store::account_by_name(&self.db, n, a.domain_id).await?.is_some() {
                return Err(ApiError::invalid_param(format!("The specified account: {n} already exists")));
            }
        }
        store::update_account(&self.db, a.id, new_name, network_domain).await?;
        self.keys.clear();
        self.audit(caller, "ACCOUNT.UPDATE", ("Account", &a.uuid, &a.name), format!("Account {} updated", a.name))
            .await?;
        self.account_reply(a.id).await
    }

    fn protect_self(caller: &Caller, a: &AccountRow) -> Result<(), ApiError> {
        if a.id == caller.user.account_id {
            return Err(ApiError::invalid_param("An account cannot disable or delete itself"));
        }
        if a.name == "admin" && a.domain_path == "/" {
            return Err(ApiError::invalid_param("The system's admin account cannot be disabled or deleted"));
        }
        Ok(())
    }

    pub(super) async fn disable_account(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        r: &AccountRef,
        lock: bool,
    ) -> Result<Reply, ApiError> {
        let a = self.account(caller, r).await?;
        Self::protect_self(caller, &a)?;
        let me = self.clone();
        let who = caller.clone();
        let state = if lock { "locked" } else { "disabled" };
        let job = self
            .jobs
            .submit(
                caller,
                JobSpec {
                    cmd: "org.apache.cloudstack.api.command.admin.account.DisableAccountCmd",
                    command: cmd.name,
                    instance: Some(("Account", a.uuid.clone())),
                },
                async move {
                    store::set_account_state(&me.db, a.id, state).await.map_err(ApiError::from)?;
                    me.keys.clear();
                    me.audit(
                        &who,
                        "ACCOUNT.DISABLE",
                        ("Account", &a.uuid, &a.name),
                        format!("Account {} {state}", a.name),
                    )
                    .await
                    .map_err(ApiError::from)?;
                    match me.account_reply(a.id).await {
                        Ok(Reply::Object { value, .. }) => Ok(wrap("account", value)),
                        _ => Err(ApiError::internal("the account is gone")),
                    }
                },
            )
            .await?;
        Ok(Reply::AsyncJob { job_id: job, id: None })
    }

    pub(super) async fn enable_account(&self, caller: &Caller, r: &AccountRef) -> Result<Reply, ApiError> {
        let a = self.account(caller, r).await?;
        store::set_account_state(&self.db, a.id, "enabled").await?;
        self.keys.clear();
        self.audit(caller, "ACCOUNT.ENABLE", ("Account", &a.uuid, &a.name), format!("Account {} enabled", a.name))
            .await?;
        self.account_reply(a.id).await
    }

    pub(super) async fn delete_account(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
    ) -> Result<Reply, ApiError> {
        let a = self.account(caller, &AccountRef::Id(id.to_owned())).await?;
        Self::protect_self(caller, &a)?;
        // Deleting an account must not orphan what it owns on storage; until the
        // account's resources are cleaned up with it, they are named and kept.
        let owned = self.owned_resources(a.id).await?;
        if !owned.is_empty() {
            return Err(ApiError::in_use(format!(
                "Account {} still owns {}; delete them first",
                a.name,
                owned.join(" and ")
            )));
        }
        let me = self.clone();
        let who = caller.clone();
        let job = self
            .jobs
            .submit(
                caller,
                JobSpec {
                    cmd: "org.apache.cloudstack.api.command.admin.account.DeleteAccountCmd",
                    command: cmd.name,
                    instance: Some(("Account", a.uuid.clone())),
                },
                async move {
                    store::delete_account(&me.db, a.id).await.map_err(ApiError::from)?;
                    me.keys.clear();
                    me.audit(
                        &who,
                        "ACCOUNT.DELETE",
                        ("Account", &a.uuid, &a.name),
                        format!("Account {} deleted", a.name),
                    )
                    .await
                    .map_err(ApiError::from)?;
                    Ok(success())
                },
            )
            .await?;
        Ok(Reply::AsyncJob { job_id: job, id: None })
    }

    /// What an account still owns on storage, as "volume(s) a, b" phrases.
    async fn owned_resources(&self, account_id: i64) -> Result<Vec<String>, ApiError> {
        let mut owned = Vec::new();
        for (table, label) in [("volumes", "volume(s)"), ("templates", "template(s)/ISO(s)")] {
            let names: Vec<(String,)> = sqlx::query_as(&format!(
                "SELECT name FROM {table} WHERE account_id = $1 AND removed IS NULL ORDER BY id"
            ))
            .bind(account_id)
            .fetch_all(self.db.pool())
            .await
            .map_err(crate::db::DbError::from)?;
            if !names.is_empty() {
                owned.push(format!("{label} {}", names.into_iter().map(|(n,)| n).collect::<Vec<_>>().join(", ")));
            }
        }
        Ok(owned)
    }

    pub(super) async fn create_user(&self, caller: &Caller, u: NewUserRequest) -> Result<Reply, ApiError> {
        check_name("user", &u.username)?;
        if u.password.is_empty() {
            return Err(ApiError::invalid_param("The password cannot be empty"));
        }
        let a = self
            .account(caller, &AccountRef::Named { name: u.account.clone(), domain_id: u.domain_id.clone() })
            .await?;
        if store::username_taken(&self.db, &u.username, a.domain_id).await? {
            return Err(ApiError::invalid_param(format!(
                "The user {} already exists in domain {}",
                u.username, a.domain_name
            )));
        }
        let new = NewUser {
            username: u.username.clone(),
            password: u.password,
            firstname: u.firstname,
            lastname: u.lastname,
            email: u.email,
            timezone: u.timezone,
            is_default: false,
            password_change_required: false,
        };
        let id = store::create_user(&self.db, a.id, new).await?;
        let user = store::user_by_id(&self.db, id).await?.ok_or_else(|| ApiError::internal("the new user is gone"))?;
        self.audit(
            caller,
            "USER.CREATE",
            ("User", &user.uuid, &user.username),
            format!("User {} created in account {}", u.username, a.name),
        )
        .await?;
        Ok(object("user", views::user(&user)))
    }

    pub(super) async fn list_users(
        &self,
        caller: &Caller,
        id: Option<String>,
        username: Option<String>,
        state: Option<String>,
        listing: &Listing,
    ) -> Result<Reply, ApiError> {
        if let Some(id) = &id {
            self.user(caller, id).await?;
        }
        let scope = self.scope(caller, listing).await?;
        let filter = UserFilter { uuid: id, username, account: None, state, keyword: listing.keyword.clone() };
        let (rows, total) = store::list_users(&self.db, &scope, &filter, listing.page).await?;
        Ok(list("user", total, rows.iter().map(views::user).collect()))
    }

    /// A user the caller may act on.
    async fn user(&self, caller: &Caller, id: &str) -> Result<UserRow, ApiError> {
        let u = store::user_by_uuid(&self.db, id).await?.ok_or_else(|| no_such("user", id))?;
        if !caller.can_reach(&u) {
            return Err(not_yours("user", id));
        }
        Ok(u)
    }

    async fn user_reply(&self, id: i64) -> Result<Reply, ApiError> {
        let u = store::user_by_id(&self.db, id).await?.ok_or_else(|| ApiError::internal("the user is gone"))?;
        Ok(object("user", views::user(&u)))
    }

    pub(super) async fn update_user(&self, caller: &Caller, u: UserUpdate) -> Result<Reply, ApiError> {
        let target = self.user(caller, &u.id).await?;
        if caller.role == RoleType::User && target.id != caller.user.id {
            return Err(not_yours("user", &u.id));
        }
        if let Some(new) = &u.password {
            if new.is_empty() {
                return Err(ApiError::invalid_param("The password cannot be empty"));
            }
            // Changing one's own password needs the current one, so a stolen session
            // cannot lock the owner out.
            if target.id == caller.user.id {
                match &u.current_password {
                    None => {
                        return Err(ApiError::invalid_param(
                            "To change your own password, give the current one in currentpassword",
                        ));
                    }
                    Some(cur) if !passwords::verify(cur, &target.password_hash).await => {
                        return Err(ApiError::invalid_param("The current password is incorrect"));
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some(name) = &u.username {
            check_name("user", name)?;
            if name != &target.username && store::username_taken(&self.db, name, target.domain_id).await? {
                return Err(ApiError::invalid_param(format!(
                    "The user {name} already exists in domain {}",
                    target.domain_name
                )));
            }
        }
        let changes = UserChanges {
            username: u.username,
            firstname: u.firstname,
            lastname: u.lastname,
            email: u.email,
            timezone: u.timezone,
            password: u.password,
        };
        store::update_user(&self.db, target.id, &changes).await?;
        self.keys.clear();
        self.audit(
            caller,
            "USER.UPDATE",
            ("User", &target.uuid, &target.username),
            format!("User {} updated", target.username),
        )
        .await?;
        self.user_reply(target.id).await
    }

    fn protect_own_user(caller: &Caller, u: &UserRow) -> Result<(), ApiError> {
        if u.id == caller.user.id {
            return Err(ApiError::invalid_param("A user cannot disable or delete itself"));
        }
        Ok(())
    }

    pub(super) async fn disable_user(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
    ) -> Result<Reply, ApiError> {
        let u = self.user(caller, id).await?;
        Self::protect_own_user(caller, &u)?;
        let me = self.clone();
        let who = caller.clone();
        let job = self
            .jobs
            .submit(
                caller,
                JobSpec {
                    cmd: "org.apache.cloudstack.api.command.admin.user.DisableUserCmd",
                    command: cmd.name,
                    instance: Some(("User", u.uuid.clone())),
                },
                async move {
                    store::set_user_state(&me.db, u.id, "disabled").await.map_err(ApiError::from)?;
                    me.keys.clear();
                    me.audit(
                        &who,
                        "USER.DISABLE",
                        ("User", &u.uuid, &u.username),
                        format!("User {} disabled", u.username),
                    )
                    .await
                    .map_err(ApiError::from)?;
                    match me.user_reply(u.id).await {
                        Ok(Reply::Object { value, .. }) => Ok(wrap("user", value)),
                        _ => Err(ApiError::internal("the user is gone")),
                    }
                },
            )
            .await?;
        Ok(Reply::AsyncJob { job_id: job, id: None })
    }

    pub(super) async fn enable_user(&self, caller: &Caller, id: &str) -> Result<Reply, ApiError> {
        let u = self.user(caller, id).await?;
        store::set_user_state(&self.db, u.id, "enabled").await?;
        self.keys.clear();
        self.audit(caller, "USER.ENABLE", ("User", &u.uuid, &u.username), format!("User {} enabled", u.username))
            .await?;
        self.user_reply(u.id).await
    }

    pub(super) async fn delete_user(&self, caller: &Caller, id: &str) -> Result<Reply, ApiError> {
        let u = self.user(caller, id).await?;
        Self::protect_own_user(caller, &u)?;
        store::delete_user(&self.db, u.id).await?;
        self.keys.clear();
        self.audit(caller, "USER.DELETE", ("User", &u.uuid, &u.username), format!("User {} deleted", u.username))
            .await?;
        Ok(Reply::Success { display_text: None })
    }

    pub(super) async fn register_keys(&self, caller: &Caller, id: &str) -> Result<Reply, ApiError> {
        let u = self.user(caller, id).await?;
        if caller.role == RoleType::User && u.id != caller.user.id {
            return Err(not_yours("user", id));
        }
        let (api_key, secret) = store::register_keys(&self.db, &self.sealer, u.id).await?;
        self.keys.clear();
        self.audit(
            caller,
            "REGISTER.USER.KEY",
            ("User", &u.uuid, &u.username),
            format!("Keys registered for user {}", u.username),
        )
        .await?;
        Ok(object("userkeys", keys(&api_key, &secret)))
    }

    pub(super) async fn get_keys(&self, caller: &Caller, id: &str) -> Result<Reply, ApiError> {
        let u = self.user(caller, id).await?;
        if caller.role == RoleType::User && u.id != caller.user.id {
            return Err(not_yours("user", id));
        }
        let secret = u.secret_key.as_deref().and_then(|s| self.sealer.open(s));
        match (u.api_key.as_deref(), secret) {
            (Some(k), Some(s)) => Ok(object("userkeys", keys(k, &s))),
            _ => Ok(object("userkeys", Default::default())),
        }
    }
}

fn keys(api_key: &str, secret: &str) -> serde_json::Map<String, serde_json::Value> {
    views::object(serde_json::json!({ "apikey": api_key, "secretkey": secret }))
}

fn wrap(name: &str, value: serde_json::Map<String, serde_json::Value>) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert(name.into(), serde_json::Value::Object(value));
    m
}

fn success() -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("success".into(), true.into());
    m
}

fn paginate<T>(items: Vec<T>, page: Option<(u32, u32)>) -> Vec<T> {
    match page {
        Some((page, size)) => {
            items.into_iter().skip((page.max(1) as usize - 1) * size as usize).take(size as usize).collect()
        }
        None => items,
    }
}
