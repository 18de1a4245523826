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

    /// Whether the caller may see and change things owned by an account in the
    /// domain with `domain_path`: root admins everything, domain admins their domain
    /// and its children, everyone else only their own account.
    pub fn can_reach(&self, account_id: i64, domain_path: &str) -> bool {
        match self.role {
            RoleType::Admin => true,
            RoleType::DomainAdmin | RoleType::ResourceAdmin => domain_path.starts_with(&self.user.domain_path),
            RoleType::User => account_id == self.user.account_id,
        }
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

/// The domain path CloudStack shows: "ROOT" or "ROOT/child".
pub fn display_path(path: &str) -> String {
    let inner = path.trim_matches('/');
    if inner.is_empty() { "ROOT".to_owned() } else { format!("ROOT/{inner}") }
}
