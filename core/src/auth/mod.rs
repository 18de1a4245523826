//! Domains, accounts, users, roles and API keys, and who may see what.

pub mod cache;
pub mod passwords;
pub mod secrets;
pub mod store;

pub use store::{AccountRow, DomainRow, RoleRow, UserRow};

/// The four role types of CloudStack's role-based access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleType {
    Admin,
    ResourceAdmin,
    DomainAdmin,
    User,
}

impl RoleType {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleType::Admin => "Admin",
            RoleType::ResourceAdmin => "ResourceAdmin",
            RoleType::DomainAdmin => "DomainAdmin",
            RoleType::User => "User",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [RoleType::Admin, RoleType::ResourceAdmin, RoleType::DomainAdmin, RoleType::User]
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
    }

    /// CloudStack's account type number for accounts of this role.
    pub fn account_type(self) -> i64 {
        match self {
            RoleType::User => 0,
            RoleType::Admin => 1,
            RoleType::DomainAdmin => 2,
            RoleType::ResourceAdmin => 3,
        }
    }

    pub fn from_account_type(t: i64) -> Option<Self> {
        match t {
            0 => Some(RoleType::User),
            1 => Some(RoleType::Admin),
            2 => Some(RoleType::DomainAdmin),
            3 => Some(RoleType::ResourceAdmin),
            _ => None,
        }
    }

    /// The role of an account of CloudStack account type `t`; a type this server does not
    /// know counts as a root admin's, so only root admins reach such an account.
    pub fn of_account_type(t: i64) -> Self {
        Self::from_account_type(t).unwrap_or(RoleType::Admin)
    }

    /// Whether a caller of this role may act on an account of role `target`: never on a
    /// more privileged one. The order is CloudStack's: Admin, then ResourceAdmin, then
    /// DomainAdmin, then User; each acts on its own level and those below.
    pub fn may_act_on(self, target: RoleType) -> bool {
        target >= self
    }

    /// The account types a caller of this role may act on (see `may_act_on`).
    pub fn reachable_account_types(self) -> Vec<i64> {
        [RoleType::Admin, RoleType::ResourceAdmin, RoleType::DomainAdmin, RoleType::User]
            .into_iter()
            .filter(|t| self.may_act_on(*t))
            .map(RoleType::account_type)
            .collect()
    }
}

/// Who is making a request, once authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Shared with the API-key cache: a signed request copies no user record.
    pub user: std::sync::Arc<UserRow>,
    pub role: RoleType,
    /// The login session the request came with; none for signed requests.
    pub session: Option<String>,
}

impl Caller {
    pub fn is_root_admin(&self) -> bool {
        self.role == RoleType::Admin
    }

    /// Whether the caller may see and change `target`, something owned by an account
    /// (see `reaches`). Every row type a caller acts on is `Owned`, so the owner's role
    /// is always part of the check.
    pub fn can_reach(&self, target: &impl Owned) -> bool {
        reaches(self.role, self.user.account_id, &self.user.domain_path, target.owner())
    }

    /// Whether the caller may manage the domain at `domain_path`.
    pub fn can_reach_domain(&self, domain_path: &str) -> bool {
        match self.role {
            RoleType::Admin => true,
            RoleType::DomainAdmin | RoleType::ResourceAdmin => domain_path.starts_with(&self.user.domain_path),
            RoleType::User => domain_path == self.user.domain_path,
        }
    }
}

/// The account that owns something, as far as reach is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner<'a> {
    pub account_id: i64,
    /// The owning account's CloudStack account type (0 user, 1 root admin, 2 domain
    /// admin, 3 resource admin).
    pub account_type: i64,
    /// The domain the thing belongs to.
    pub domain_path: &'a str,
}

/// Something owned by an account: an account or user itself, or a resource.
pub trait Owned {
    fn owner(&self) -> Owner<'_>;
}

impl<T: Owned + ?Sized> Owned for &T {
    fn owner(&self) -> Owner<'_> {
        (**self).owner()
    }
}

impl Owned for Owner<'_> {
    fn owner(&self) -> Owner<'_> {
        *self
    }
}

impl Owned for AccountRow {
    fn owner(&self) -> Owner<'_> {
        Owner { account_id: self.id, account_type: self.account_type, domain_path: &self.domain_path }
    }
}

impl Owned for UserRow {
    fn owner(&self) -> Owner<'_> {
        Owner { account_id: self.account_id, account_type: self.account_type, domain_path: &self.domain_path }
    }
}

/// Whether a caller (its role, account and domain path) may see and change what `owner`
/// owns. Two conditions, both needed:
/// - where: root admins reach every domain, domain and resource admins their domain and
///   the domains below it, users only their own account;
/// - who: the owning account's role is not more privileged than the caller's
///   (`RoleType::may_act_on`), so no one below a root admin reaches a root admin's
///   account, user, keys, password or resources, even in the caller's own domain.
pub fn reaches(role: RoleType, account_id: i64, domain_path: &str, owner: Owner<'_>) -> bool {
    let where_ok = match role {
        RoleType::Admin => true,
        RoleType::DomainAdmin | RoleType::ResourceAdmin => owner.domain_path.starts_with(domain_path),
        RoleType::User => owner.account_id == account_id,
    };
    where_ok && role.may_act_on(RoleType::of_account_type(owner.account_type))
}

/// The domain path CloudStack shows: "ROOT" or "ROOT/child".
pub fn display_path(path: &str) -> String {
    let inner = path.trim_matches('/');
    if inner.is_empty() { "ROOT".to_owned() } else { format!("ROOT/{inner}") }
}

#[cfg(test)]
mod tests {
    use super::RoleType::{self, Admin, DomainAdmin, ResourceAdmin, User};
    use super::{Owner, reaches};

    const ROLES: [RoleType; 4] = [Admin, ResourceAdmin, DomainAdmin, User];

    #[test]
    fn the_ladder() {
        // caller -> may it act on an account of [Admin, ResourceAdmin, DomainAdmin, User]
        let table = [
            (Admin, [true, true, true, true]),
            (ResourceAdmin, [false, true, true, true]),
            (DomainAdmin, [false, false, true, true]),
            (User, [false, false, false, true]),
        ];
        for (caller, row) in table {
            for (target, want) in ROLES.into_iter().zip(row) {
                assert_eq!(caller.may_act_on(target), want, "{caller:?} on {target:?}");
            }
        }
        assert_eq!(Admin.reachable_account_types(), vec![1, 3, 2, 0]);
        assert_eq!(ResourceAdmin.reachable_account_types(), vec![3, 2, 0]);
        assert_eq!(DomainAdmin.reachable_account_types(), vec![2, 0]);
        assert_eq!(User.reachable_account_types(), vec![0]);
    }

    #[test]
    fn unknown_account_types_count_as_root_admin() {
        for t in [-1, 4, 99] {
            assert_eq!(RoleType::of_account_type(t), Admin);
        }
        for role in ROLES {
            assert_eq!(RoleType::of_account_type(role.account_type()), role);
        }
    }

    /// Every caller role against every kind of target, as (own account, domain path) of
    /// the caller `7` in "/a/".
    #[test]
    fn reach_table() {
        struct Target {
            what: &'static str,
            account_id: i64,
            path: &'static str,
        }
        let targets = [
            Target { what: "own account", account_id: 7, path: "/a/" },
            Target { what: "same domain", account_id: 8, path: "/a/" },
            Target { what: "subdomain", account_id: 9, path: "/a/b/" },
            Target { what: "parent domain", account_id: 10, path: "/" },
            Target { what: "other domain", account_id: 11, path: "/c/" },
            // A sibling whose name starts like the caller's must not pass as a subdomain.
            Target { what: "look-alike domain", account_id: 12, path: "/ab/" },
        ];
        // (caller, target role) -> reach of [own, same, sub, parent, other, look-alike]
        let table: [(RoleType, RoleType, [bool; 6]); 16] = [
            (Admin, Admin, [true; 6]),
            (Admin, ResourceAdmin, [true; 6]),
            (Admin, DomainAdmin, [true; 6]),
            (Admin, User, [true; 6]),
            (ResourceAdmin, Admin, [false; 6]),
            (ResourceAdmin, ResourceAdmin, [true, true, true, false, false, false]),
            (ResourceAdmin, DomainAdmin, [true, true, true, false, false, false]),
            (ResourceAdmin, User, [true, true, true, false, false, false]),
            (DomainAdmin, Admin, [false; 6]),
            (DomainAdmin, ResourceAdmin, [false; 6]),
            (DomainAdmin, DomainAdmin, [true, true, true, false, false, false]),
            (DomainAdmin, User, [true, true, true, false, false, false]),
            (User, Admin, [false; 6]),
            (User, ResourceAdmin, [false; 6]),
            (User, DomainAdmin, [false; 6]),
            (User, User, [true, false, false, false, false, false]),
        ];
        for (caller, target_role, row) in table {
            for (t, want) in targets.iter().zip(row) {
                let owner =
                    Owner { account_id: t.account_id, account_type: target_role.account_type(), domain_path: t.path };
                assert_eq!(
                    reaches(caller, 7, "/a/", owner),
                    want,
                    "{caller:?} caller on a {target_role:?} account in the {}",
                    t.what
                );
            }
        }
    }

    /// The case that was open: a domain admin of ROOT and the built-in root admin.
    #[test]
    fn a_root_domain_admin_does_not_reach_root_admins() {
        let admin = Owner { account_id: 1, account_type: Admin.account_type(), domain_path: "/" };
        assert!(!reaches(DomainAdmin, 5, "/", admin));
        assert!(!reaches(ResourceAdmin, 5, "/", admin));
        assert!(reaches(Admin, 6, "/", admin));
        let user = Owner { account_id: 2, account_type: User.account_type(), domain_path: "/" };
        assert!(reaches(DomainAdmin, 5, "/", user));
    }
}
