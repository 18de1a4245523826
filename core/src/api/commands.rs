//! The command table: the single source of truth for every API command's name,
//! parameters (type, required, length), mode (sync or async), the roles allowed and
//! the response fields. Parameter validation, `listApis` and the docs all read it.

mod capacity;
mod console;
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
mod session;
mod storage;
mod templates;

use super::error::ApiError;
use super::params::Params;
use crate::auth::RoleType;

/// A parameter's type, as `listApis` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Boolean,
    Date,
    Integer,
    Long,
    List,
    Map,
    String,
    Uuid,
    TzDate,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::Boolean => "boolean",
            ParamType::Date => "date",
            ParamType::Integer => "integer",
            ParamType::Long => "long",
            ParamType::List => "list",
            ParamType::Map => "map",
            ParamType::String => "string",
            ParamType::Uuid => "uuid",
            ParamType::TzDate => "tzdate",
        }
    }
}

/// One request parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
    pub length: u32,
    pub description: &'static str,
    /// Commands that list what this parameter names (CSV), for CloudMonkey's completer.
    pub related: &'static str,
}

/// One response field; `children` for nested objects and lists.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: &'static str,
    pub description: &'static str,
    pub children: &'static [Field],
}

/// Which roles may call a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    pub const ADMIN: Roles = Roles(1);
    pub const ADMINS: Roles = Roles(1 | 2 | 4);
    pub const ALL: Roles = Roles(1 | 2 | 4 | 8);

    pub fn allows(self, role: RoleType) -> bool {
        let bit = match role {
            RoleType::Admin => 1,
            RoleType::ResourceAdmin => 2,
            RoleType::DomainAdmin => 4,
            RoleType::User => 8,
        };
        self.0 & bit != 0
    }
}

/// How the reply is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"count":N,"<object>":[…]}`.
    List,
    /// `{"<object>":{…}}`.
    Object,
    /// A list of one (CloudStack's add* commands do this).
    ListOfOne,
    /// `{"success":true}`.
    Success,
    /// Fields straight under the wrapper.
    Flat,
}

/// One API command.
#[derive(Debug)]
pub struct Command {
    pub name: &'static str,
    pub description: &'static str,
    pub is_async: bool,
    pub roles: Roles,
    pub params: &'static [Param],
    /// The response object's name, e.g. "account".
    pub object: &'static str,
    pub shape: Shape,
    pub response: &'static [Field],
    pub since: &'static str,
}

const fn p(name: &'static str, ty: ParamType, description: &'static str) -> Param {
    Param { name, ty, required: false, length: 255, description, related: "" }
}

const fn req(name: &'static str, ty: ParamType, description: &'static str) -> Param {
    Param { name, ty, required: true, length: 255, description, related: "" }
}

const fn rel(mut param: Param, related: &'static str) -> Param {
    param.related = related;
    param
}

const fn long(mut param: Param, length: u32) -> Param {
    param.length = length;
    param
}

const fn f(name: &'static str, ty: &'static str, description: &'static str) -> Field {
    Field { name, ty, description, children: &[] }
}

const fn nested(name: &'static str, ty: &'static str, description: &'static str, children: &'static [Field]) -> Field {
    Field { name, ty, description, children }
}

use ParamType::{Boolean, Date, Integer, List, Long, Map, String as Str, Uuid};

const KEYWORD: Param = p("keyword", Str, "List by keyword");
const PAGE: Param = p("page", Integer, "The page to return, from 1");
const PAGESIZE: Param = p("pagesize", Integer, "Items per page (at most 500)");
const LISTALL: Param = p("listall", Boolean, "If true, list everything the caller may see, not only its own");
const ISRECURSIVE: Param = p("isrecursive", Boolean, "With domainid, also list resources of child domains");
const DOMAINID: Param = rel(p("domainid", Uuid, "List only resources of this domain"), "listDomains");
const ACCOUNT: Param = rel(p("account", Str, "List only resources of this account (with domainid)"), "listAccounts");

const USER_FIELDS: &[Field] = &[
    f("id", "string", "the user ID"),
    f("username", "string", "the user name"),
    f("firstname", "string", "the user's first name"),
    f("lastname", "string", "the user's last name"),
    f("email", "string", "the user's email address"),
    f("state", "string", "the user state"),
    f("account", "string", "the account name of the user"),
    f("accountid", "string", "the account ID of the user"),
    f("accounttype", "integer", "the account type of the user"),
    f("domain", "string", "the domain name of the user"),
    f("domainid", "string", "the domain ID of the user"),
    f("roleid", "string", "the ID of the role"),
    f("rolename", "string", "the name of the role"),
    f("roletype", "string", "the type of the role"),
    f("timezone", "string", "the timezone user was created in"),
    f("created", "date", "the date and time the user account was created"),
    f("apikey", "string", "the api key of the user"),
    f("isdefault", "boolean", "true if user is default, false otherwise"),
    f("usersource", "string", "the source type of the user: native"),
    f("is2faenabled", "boolean", "true if user has two factor authentication enabled"),
];

const SUCCESS_FIELDS: &[Field] = &[
    f("success", "boolean", "true if operation is executed successfully"),
    f("displaytext", "string", "any text associated with the success or failure"),
];

const VOLUME_FIELDS: &[Field] = &[
    f("id", "string", "ID of the disk volume"),
    f("name", "string", "name of the disk volume"),
    f("type", "string", "type of the disk volume (ROOT or DATADISK)"),
    f("state", "string", "the state of the disk volume"),
    f("size", "long", "size of the disk volume in bytes"),
    f("physicalsize", "long", "the bytes actually consumed on disk"),
    f("zoneid", "string", "ID of the availability zone"),
    f("zonename", "string", "name of the availability zone"),
    f("diskofferingid", "string", "ID of the disk offering"),
    f("diskofferingname", "string", "name of the disk offering"),
    f("storage", "string", "name of the primary storage hosting the disk volume"),
    f("storageid", "string", "id of the primary storage hosting the disk volume"),
    f("storagetype", "string", "shared or local storage"),
    f("provisioningtype", "string", "provisioning type used to create volumes."),
    f("created", "date", "the date the disk volume was created"),
    f("path", "string", "the path of the volume, relative to its storage pool"),
    f("hypervisor", "string", "Hypervisor the volume belongs to"),
    f("account", "string", "the account associated with the disk volume"),
    f("domain", "string", "the domain associated with the disk volume"),
    f("domainid", "string", "the ID of the domain associated with the disk volume"),
    f("destroyed", "boolean", "the boolean state of whether the volume is destroyed or not"),
    f("isextractable", "boolean", "true if the volume is extractable, false otherwise"),
    f("virtualmachineid", "string", "id of the virtual machine"),
    f("vmname", "string", "name of the virtual machine"),
    f("vmdisplayname", "string", "display name of the virtual machine"),
    f("vmstate", "string", "state of the virtual machine"),
    f("deviceid", "long", "the ID of the device on user vm the volume is attached to; absent when detached"),
];

const PARAM_FIELDS: &[Field] = &[
    f("name", "string", "the name of the api parameter"),
    f("description", "string", "description of the api parameter"),
    f("type", "string", "parameter type"),
    f("length", "integer", "length of the parameter"),
    f("required", "boolean", "true if this parameter is required for the api request"),
    f("since", "string", "version of CloudStack the api was introduced in"),
    f("related", "string", "comma separated related apis to get the parameter"),
];

const RESPONSE_FIELDS: &[Field] = &[
    f("name", "string", "the name of the api response field"),
    f("description", "string", "description of the api response field"),
    f("type", "string", "response field type"),
];

const LOGOUT_FIELDS: &[Field] = &[f("description", "string", "Response description")];

/// Every command, in table order.
pub fn all() -> impl Iterator<Item = &'static Command> + Clone {
    templates::TEMPLATES_COMMANDS
        .iter()
        .chain(storage::STORAGE_COMMANDS)
        .chain(offerings::OFFERINGS_COMMANDS)
        .chain(infra::INFRA_COMMANDS)
        .chain(session::SESSION_COMMANDS)
        .chain(identity::IDENTITY_COMMANDS)
        .chain(network::NETWORK_COMMANDS)
        .chain(public_ip::PUBLIC_IP_COMMANDS)
        .chain(instance::INSTANCE_COMMANDS)
        .chain(rules::RULES_COMMANDS)
        .chain(console::CONSOLE_COMMANDS)
        .chain(plugins::PLUGIN_COMMANDS)
        .chain(capacity::CAPACITY_COMMANDS)
        .chain(guest_access::GUEST_ACCESS_COMMANDS)
        .chain(security_groups::SECURITY_GROUP_COMMANDS)
}

/// Each family's own table, by the name of its module (for tests).
#[cfg(test)]
pub(crate) fn family_tables() -> [(&'static str, &'static [Command]); 9] {
    [
        ("templates", templates::TEMPLATES_COMMANDS),
        ("storage", storage::STORAGE_COMMANDS),
        ("offerings", offerings::OFFERINGS_COMMANDS),
        ("infra", infra::INFRA_COMMANDS),
        ("identity", identity::IDENTITY_COMMANDS),
        ("network", network::NETWORK_COMMANDS),
        ("instance", instance::INSTANCE_COMMANDS),
        ("guest_access", guest_access::GUEST_ACCESS_COMMANDS),
        ("security_groups", security_groups::SECURITY_GROUP_COMMANDS),
    ]
}

/// A command by its exact (case-sensitive) name.
pub fn find(name: &str) -> Option<&'static Command> {
    all().find(|c| c.name == name)
}

impl Command {
    /// `lower(name) + "response"`, the reply's wrapper key.
    pub fn response_name(&self) -> String {
        format!("{}response", self.name.to_ascii_lowercase())
    }

    /// Checks every declared parameter against its type, requiredness and length;
    /// parameters the command does not declare are ignored, as CloudStack does.
    pub fn validate(&self, params: &Params) -> Result<(), ApiError> {
        let lower = self.name.to_ascii_lowercase();
        for param in self.params {
            let name = param.name.to_ascii_lowercase();
            if param.ty == ParamType::Map {
                if param.required && !params.maps()?.contains_key(&name) {
                    return Err(ApiError::missing_param(&lower, param.name));
                }
                continue;
            }
            let Some(value) = params.get(&name) else {
                if param.required {
                    return Err(ApiError::missing_param(&lower, param.name));
                }
                continue;
            };
            match param.ty {
                ParamType::Uuid => {
                    params.uuid(&name)?;
                }
                ParamType::Integer => {
                    params.int(&name)?;
                }
                ParamType::Long => {
                    params.long(&name)?;
                }
                ParamType::Date => {
                    params.date_time(&name)?;
                }
                ParamType::TzDate => {
                    params.tz_date(&name)?;
                }
                ParamType::String => {
                    if value.chars().count() > param.length as usize {
                        return Err(ApiError::invalid_param(format!(
                            "Invalid value of parameter {}: it is longer than the maximum of {} characters",
                            param.name, param.length
                        )));
                    }
                }
                ParamType::Boolean | ParamType::List | ParamType::Map => {}
            }
        }
        if self.params.iter().any(|p| p.name == "pagesize") {
            params.page()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lists_page() {
        let mut names: Vec<_> = all().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all().count());
        for c in all() {
            // CloudStack pages neither: both answer one short, whole list.
            if c.name.starts_with("list")
                && c.shape == Shape::List
                && !["listApis", "listHypervisors"].contains(&c.name)
            {
                assert!(c.params.iter().any(|p| p.name == "pagesize"), "{} lacks paging", c.name);
            }
        }
    }
}
