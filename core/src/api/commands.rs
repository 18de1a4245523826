//! The command table: the single source of truth for every API command's name,
//! parameters (type, required, length), mode (sync or async), the roles allowed and
//! the response fields. Parameter validation, `listApis` and the docs all read it.

mod capacity;
mod console;
mod instance;
mod network;
mod plugins;

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

const ACCOUNT_FIELDS: &[Field] = &[
    f("id", "string", "the id of the account"),
    f("name", "string", "the name of the account"),
    f("accounttype", "integer", "account type (admin, domain-admin, user)"),
    f("roleid", "string", "the ID of the role"),
    f("rolename", "string", "the name of the role"),
    f("roletype", "string", "the type of the role (Admin, ResourceAdmin, DomainAdmin, User)"),
    f("domain", "string", "name of the Domain the account belongs to"),
    f("domainid", "string", "id of the Domain the account belongs to"),
    f("domainpath", "string", "path of the Domain the account belongs to"),
    f("state", "string", "the state of the account"),
    f("networkdomain", "string", "the network domain"),
    f("created", "date", "the date when this account was created"),
    f("isdefault", "boolean", "true if account is default, false otherwise"),
    nested("user", "list", "the list of users associated with account", USER_FIELDS),
];

const DOMAIN_FIELDS: &[Field] = &[
    f("id", "string", "the ID of the domain"),
    f("name", "string", "the name of the domain"),
    f("level", "integer", "the level of the domain"),
    f("parentdomainid", "string", "the domain ID of the parent domain"),
    f("parentdomainname", "string", "the domain name of the parent domain"),
    f("haschild", "boolean", "whether the domain has one or more sub-domains"),
    f("path", "string", "the path of the domain"),
    f("networkdomain", "string", "the network domain"),
    f("state", "string", "the state of the domain"),
    f("created", "date", "the date when this domain was created"),
];

const ROLE_FIELDS: &[Field] = &[
    f("id", "string", "the ID of the role"),
    f("name", "string", "the name of the role"),
    f("type", "string", "the type of the role"),
    f("description", "string", "the description of the role"),
    f("isdefault", "boolean", "true if role is default, false otherwise"),
];

const KEYS_FIELDS: &[Field] = &[
    f("apikey", "string", "the api key of the registered user"),
    f("secretkey", "string", "the secret key of the registered user"),
];

const SUCCESS_FIELDS: &[Field] = &[
    f("success", "boolean", "true if operation is executed successfully"),
    f("displaytext", "string", "any text associated with the success or failure"),
];

const EVENT_FIELDS: &[Field] = &[
    f("id", "string", "the ID of the event"),
    f("type", "string", "the type of the event (see event types)"),
    f("level", "string", "the event level (INFO, WARN, ERROR)"),
    f("state", "string", "the state of the event"),
    f("description", "string", "a brief description of the event"),
    f("username", "string", "the name of the user who performed the action"),
    f("account", "string", "the account name for the account that owns the object being acted on"),
    f("domainid", "string", "the id of the account's domain"),
    f("domain", "string", "the name of the account's domain"),
    f("resourceid", "string", "the id of the resource"),
    f("resourcetype", "string", "the type of the resource"),
    f("resourcename", "string", "the name of the resource"),
    f("created", "date", "the date the event was created"),
];

const JOB_FIELDS: &[Field] = &[
    f("jobid", "string", "the ID of the async job"),
    f("accountid", "string", "the account ID that executed the async command"),
    f("account", "string", "the account that executed the async command"),
    f("domainid", "string", "the domain ID that the job belongs to"),
    f("domainpath", "string", "the domain path that the job belongs to"),
    f("userid", "string", "the user that executed the async command"),
    f("cmd", "string", "the async command executed"),
    f("jobstatus", "integer", "the current job status: 0 pending, 1 succeeded, 2 failed"),
    f("jobprocstatus", "integer", "the progress information of the PENDING job"),
    f("jobresultcode", "integer", "the result code for the job"),
    f("jobresulttype", "string", "the result type"),
    f("jobresult", "object", "the result reason"),
    f("jobinstancetype", "string", "the instance/entity object related to the job"),
    f("jobinstanceid", "string", "the unique ID of the instance/entity object related to the job"),
    f("managementserverid", "string", "the management server that ran the job"),
    f("created", "date", "the created date of the job"),
    f("completed", "date", "the completed date of the job"),
];

const ZONE_FIELDS: &[Field] = &[
    f("id", "string", "Zone id"),
    f("name", "string", "Zone name"),
    f("description", "string", "Zone description"),
    f("networktype", "string", "the network type of the zone; can be Basic or Advanced"),
    f("allocationstate", "string", "the allocation state of the cluster"),
    f("dns1", "string", "the first DNS for the Zone"),
    f("dns2", "string", "the second DNS for the Zone"),
    f("internaldns1", "string", "the first internal DNS for the Zone"),
    f("internaldns2", "string", "the second internal DNS for the Zone"),
    f("guestcidraddress", "string", "the guest CIDR address for the Zone"),
    f("localstorageenabled", "boolean", "true if local storage offering enabled, false otherwise"),
    f("securitygroupsenabled", "boolean", "true if security groups support is enabled, false otherwise"),
    f("type", "string", "The type of the zone; can be Core or Edge"),
    f("zonetoken", "string", "Zone Token"),
    f("dhcpprovider", "string", "the dhcp Provider for the Zone"),
    f("created", "date", "the date this zone was created"),
];

const POD_FIELDS: &[Field] = &[
    f("id", "string", "the ID of the Pod"),
    f("name", "string", "the name of the Pod"),
    f("zoneid", "string", "the Zone ID of the Pod"),
    f("zonename", "string", "the Zone name of the Pod"),
    f("gateway", "string", "the gateway of the Pod"),
    f("netmask", "string", "the netmask of the Pod"),
    f("startip", "list", "the starting IP for the Pod"),
    f("endip", "list", "the ending IP for the Pod"),
    f("allocationstate", "string", "the allocation state of the Pod"),
];

const CLUSTER_FIELDS: &[Field] = &[
    f("id", "string", "the cluster ID"),
    f("name", "string", "the cluster name"),
    f("podid", "string", "the Pod ID of the cluster"),
    f("podname", "string", "the Pod name of the cluster"),
    f("zoneid", "string", "the Zone ID of the cluster"),
    f("zonename", "string", "the Zone name of the cluster"),
    f("hypervisortype", "string", "the hypervisor type of the cluster"),
    f("clustertype", "string", "the type of the cluster"),
    f("allocationstate", "string", "the allocation state of the cluster"),
    f("managedstate", "string", "Whether this cluster is managed by cloudstack"),
    f("cpuovercommitratio", "string", "The cpu overcommit ratio of the cluster"),
    f("memoryovercommitratio", "string", "The memory overcommit ratio of the cluster"),
    f("arch", "string", "CPU Arch of the hosts in the cluster"),
    f("accel", "string", "How guests run on this cluster's hosts: auto, kvm or tcg (wasmstack)"),
];

const HOST_FIELDS: &[Field] = &[
    f("id", "string", "the ID of the host"),
    f("name", "string", "the name of the host"),
    f("type", "string", "the host type"),
    f("state", "string", "the state of the host"),
    f("resourcestate", "string", "the resource state of the host"),
    f("ipaddress", "string", "the IP address of the host"),
    f("hypervisor", "string", "the host hypervisor"),
    f("hypervisorversion", "string", "the hypervisor version"),
    f("zoneid", "string", "the Zone ID of the host"),
    f("zonename", "string", "the Zone name of the host"),
    f("podid", "string", "the Pod ID of the host"),
    f("podname", "string", "the Pod name of the host"),
    f("clusterid", "string", "the cluster ID of the host"),
    f("clustername", "string", "the cluster name of the host"),
    f("clustertype", "string", "the cluster type of the cluster that host belongs to"),
    f("cpunumber", "integer", "the CPU number of the host"),
    f("cpuspeed", "long", "the CPU speed of the host"),
    f("cpuallocated", "string", "the amount of the host's CPU currently allocated"),
    f(
        "memorytotal",
        "long",
        "the memory total of the host, this parameter is deprecated use memorywithoverprovisioning",
    ),
    f("memoryallocated", "long", "the amount of the host's memory currently allocated"),
    f("memoryused", "long", "the amount of the host's memory currently used"),
    f("lastpinged", "date", "the date and time the host was last pinged"),
    f("created", "date", "the date and time the host was created"),
    f("hosttags", "string", "comma-separated list of tags for the host"),
    f("version", "string", "the host version"),
    f("arch", "string", "CPU Arch of the host"),
    f("hardwareaccel", "boolean", "whether the host offers hardware virtualisation (wasmstack)"),
    f("driver", "string", "the hypervisor driver plugin that manages the host (wasmstack)"),
];

const SERVICE_OFFERING_FIELDS: &[Field] = &[
    f("id", "string", "the id of the service offering"),
    f("name", "string", "the name of the service offering"),
    f("displaytext", "string", "an alternate display text of the service offering."),
    f("cpunumber", "integer", "the number of CPU"),
    f("cpuspeed", "integer", "the clock rate CPU speed in Mhz"),
    f("memory", "integer", "the memory in MB"),
    f("storagetype", "string", "the storage type for this service offering"),
    f("offerha", "boolean", "the ha support in the service offering"),
    f("limitcpuuse", "boolean", "restrict the CPU usage to committed service offering"),
    f("iscustomized", "boolean", "is true if the offering is customized"),
    f("issystem", "boolean", "is this a system vm offering"),
    f("hosttags", "string", "the host tag for the service offering"),
    f("storagetags", "string", "the tags for the service offering"),
    f("rootdisksize", "long", "Root disk size in GB"),
    f("state", "string", "state of the service offering"),
    f("created", "date", "the date this service offering was created"),
];

const DISK_OFFERING_FIELDS: &[Field] = &[
    f("id", "string", "unique ID of the disk offering"),
    f("name", "string", "the name of the disk offering"),
    f("displaytext", "string", "an alternate display text of the disk offering."),
    f("disksize", "long", "the size of the disk offering in GB"),
    f("iscustomized", "boolean", "true if disk offering uses custom size, false otherwise"),
    f("storagetype", "string", "the storage type for this disk offering"),
    f("tags", "string", "the tags for the disk offering"),
    f("provisioningtype", "string", "provisioning type used to create volumes."),
    f("state", "string", "state of the disk offering"),
    f("created", "date", "the date this disk offering was created"),
];

const OS_TYPE_FIELDS: &[Field] = &[
    f("id", "string", "the ID of the OS type"),
    f("description", "string", "the name/description of the OS type"),
    f("name", "string", "the name of the OS type"),
    f("oscategoryid", "string", "the ID of the OS category"),
    f("oscategoryname", "string", "the name of the OS category"),
    f("isuserdefined", "boolean", "is the guest OS user defined"),
];

const POOL_FIELDS: &[Field] = &[
    f("id", "string", "the ID of the storage pool"),
    f("name", "string", "the name of the storage pool"),
    f("type", "string", "the storage pool type"),
    f("scope", "string", "the scope of the storage pool"),
    f("state", "string", "the state of the storage pool"),
    f("path", "string", "the storage pool path"),
    f("ipaddress", "string", "the IP address of the storage pool"),
    f("zoneid", "string", "the Zone ID of the storage pool"),
    f("zonename", "string", "the Zone name of the storage pool"),
    f("podid", "string", "the Pod ID of the storage pool"),
    f("podname", "string", "the Pod name of the storage pool"),
    f("clusterid", "string", "the ID of the cluster for the storage pool"),
    f("clustername", "string", "the name of the cluster for the storage pool"),
    f("hypervisor", "string", "the hypervisor type of the storage pool"),
    f("provider", "string", "Storage provider for this pool"),
    f("driver", "string", "the storage driver plugin that serves the pool (wasmstack)"),
    f("tags", "string", "the tags for the storage pool"),
    f("disksizetotal", "long", "the total disk size of the storage pool"),
    f("disksizeallocated", "long", "the host's currently allocated disk size"),
    f("disksizeused", "long", "the host's currently used disk size"),
    f("overprovisionfactor", "string", "the overprovisionfactor for the storage pool"),
    f("managed", "boolean", "whether this pool is managed or not"),
    f("created", "date", "the date and time the storage pool was created"),
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

const SNAPSHOT_FIELDS: &[Field] = &[
    f("id", "string", "ID of the snapshot"),
    f("name", "string", "name of the snapshot"),
    f("volumeid", "string", "ID of the disk volume"),
    f("volumename", "string", "name of the disk volume"),
    f("volumetype", "string", "type of the disk volume"),
    f("snapshottype", "string", "the type of the snapshot"),
    f("intervaltype", "string", "valid types are hourly, daily, weekly, monthy, template, and none."),
    f("state", "string", "the state of the snapshot. BackedUp means that snapshot is ready to be used"),
    f("created", "date", "the date the snapshot was created"),
    f("zoneid", "string", "id of the availability zone"),
    f("physicalsize", "long", "physical size of backedup snapshot on image store"),
    f("virtualsize", "long", "virtual size of backedup snapshot on image store"),
    f("revertable", "boolean", "whether the storage can revert the volume to this snapshot"),
    f("locationtype", "string", "valid location types are primary and secondary."),
    f("account", "string", "the account associated with the snapshot"),
    f("domain", "string", "the domain name of the snapshot's account"),
    f("domainid", "string", "the domain ID of the snapshot's account"),
];

const IMAGE_STORE_FIELDS: &[Field] = &[
    f("id", "string", "the ID of the image store"),
    f("name", "string", "the name of the image store"),
    f("url", "string", "the url of the image store"),
    f("protocol", "string", "the protocol of the image store"),
    f("providername", "string", "the provider name of the image store"),
    f("scope", "string", "the scope of the image store"),
    f("zoneid", "string", "the Zone ID of the image store"),
    f("zonename", "string", "the Zone name of the image store"),
    f("readonly", "boolean", "defines if store is read-only"),
    f("disksizetotal", "long", "the total disk size of the host"),
    f("disksizeused", "long", "the host's currently used disk size"),
];

const TEMPLATE_FIELDS: &[Field] = &[
    f("id", "string", "the template ID"),
    f("name", "string", "the template name"),
    f("displaytext", "string", "the template display text"),
    f("format", "string", "the format of the template."),
    f("hypervisor", "string", "the hypervisor on which the template runs"),
    f("ostypeid", "string", "the ID of the OS type for this template."),
    f("ostypename", "string", "the name of the OS type for this template."),
    f("isready", "boolean", "true if the template is ready to be deployed from, false otherwise."),
    f("status", "string", "the status of the template"),
    f("ispublic", "boolean", "true if this template is a public template, false otherwise"),
    f("isfeatured", "boolean", "true if this template is a featured template, false otherwise"),
    f("isextractable", "boolean", "true if the template is extractable, false otherwise"),
    f("passwordenabled", "boolean", "true if the reset password feature is enabled, false otherwise"),
    f("sshkeyenabled", "boolean", "true if template is sshkey enabled, false otherwise"),
    f("bootable", "boolean", "true if the ISO is bootable, false otherwise"),
    f("size", "long", "the size of the template"),
    f("physicalsize", "long", "the physical size of the template"),
    f("zoneid", "string", "the ID of the zone for this template"),
    f("zonename", "string", "the name of the zone for this template"),
    f("templatetype", "string", "the type of the template"),
    f("crossZones", "boolean", "true if the template is managed across all Zones, false otherwise"),
    f("account", "string", "the account name to which the template belongs"),
    f("accountid", "string", "the account id to which the template belongs"),
    f("domain", "string", "the name of the domain to which the template belongs"),
    f("domainid", "string", "the ID of the domain to which the template belongs"),
    f("checksum", "string", "checksum of the template"),
    f("url", "string", "the URL which the template/iso is registered from"),
    f("created", "date", "the date this template was created"),
];

const CAPABILITY_FIELDS: &[Field] = &[
    f("cloudstackversion", "string", "version of the cloud stack"),
    f("securitygroupsenabled", "boolean", "true if security groups support is enabled, false otherwise"),
    f("userpublictemplateenabled", "boolean", "true if user and domain admins can set templates to be shared"),
    f("supportELB", "string", "true if region supports elastic load balancer on basic zones"),
    f("projectinviterequired", "boolean", "If invitation confirmation is required when add account to project"),
    f("allowusercreateprojects", "boolean", "true if regular user is allowed to create projects"),
    f(
        "customdiskofferingminsize",
        "long",
        "minimum size that can be specified when create disk from disk offering with custom size",
    ),
    f(
        "customdiskofferingmaxsize",
        "long",
        "maximum size that can be specified when create disk from disk offering with custom size",
    ),
    f("kvmsnapshotenabled", "boolean", "true if snapshot is supported for KVM host, false otherwise"),
    f("regionsecondaryenabled", "boolean", "true if region wide secondary is enabled, false otherwise"),
    f("apilimitinterval", "integer", "time interval (in seconds) to reset api count"),
    f("apilimitmax", "integer", "Max allowed number of api requests within the specified interval"),
    f("allowuserviewdestroyedvm", "boolean", "true if the user is allowed to view destroyed virtualmachines"),
    f("allowuserexpungerecovervm", "boolean", "true if the user can recover and expunge virtualmachines"),
    f("allowuserexpungerecovervolume", "boolean", "true if the user can recover and expunge volumes"),
    f("allowuserforcestopvm", "boolean", "true if the user can force stop a virtualmachine"),
    f("dynamicrolesenabled", "boolean", "true if dynamic role-based api checker is enabled"),
    f("kubernetesserviceenabled", "boolean", "true if Kubernetes Service plugin is enabled"),
    f("defaultuipagesize", "long", "default page size in the UI for various views"),
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

const API_FIELDS: &[Field] = &[
    f("name", "string", "the name of the api command"),
    f("description", "string", "description of the api"),
    f("isasync", "boolean", "true if api is asynchronous"),
    f("since", "string", "version of CloudStack the api was introduced in"),
    f("related", "string", "comma separated related apis"),
    f("type", "string", "response field type"),
    nested("params", "set", "the list params the api accepts", PARAM_FIELDS),
    nested("response", "set", "api response fields", RESPONSE_FIELDS),
];

const LOGIN_FIELDS: &[Field] = &[
    f("username", "string", "Username"),
    f("userid", "string", "User ID"),
    f("domainid", "string", "Domain ID that the user belongs to"),
    f("timeout", "integer", "the time period before the session has expired"),
    f("account", "string", "the account name the user belongs to"),
    f("firstname", "string", "first name of the user"),
    f("lastname", "string", "last name of the user"),
    f("type", "string", "the account type (admin, domain-admin, read-only-admin, user)"),
    f("timezone", "string", "user time zone"),
    f("timezoneoffset", "string", "user time zoneoffset"),
    f("registered", "string", "Is user registered"),
    f("sessionkey", "string", "Session key that can be passed in subsequent Query command calls"),
    f("passwordchangerequired", "boolean", "Whether the user must change the password"),
];

const LOGOUT_FIELDS: &[Field] = &[f("description", "string", "Response description")];

/// Every command the server knows.
pub static COMMANDS: &[Command] = &[
    Command {
        name: "createTemplate",
        description: "Creates a template of a virtual machine's volume or of a volume snapshot, in the image store of the volume's zone.",
        is_async: true,
        roles: Roles::ALL,
        params: &[
            req("name", Str, "the name of the template"),
            p("displaytext", Str, "the display text of the template, defaults to name"),
            rel(
                p("ostypeid", Uuid, "the ID of the OS Type that best represents the OS of this template."),
                "listOsTypes",
            ),
            rel(
                p(
                    "snapshotid",
                    Uuid,
                    "the ID of the snapshot the template is being created from. Either this parameter, or volumeId has to be passed in",
                ),
                "listSnapshots",
            ),
            rel(
                p(
                    "volumeid",
                    Uuid,
                    "the ID of the disk volume the template is being created from. Either this parameter, or snapshotId has to be passed in",
                ),
                "listVolumes",
            ),
            p("ispublic", Boolean, "true if this template is a public template, false otherwise"),
            p("isfeatured", Boolean, "true if this template is a featured template, false otherwise"),
            p("passwordenabled", Boolean, "true if the template supports the password reset feature; default is false"),
        ],
        object: "template",
        shape: Shape::Object,
        response: TEMPLATE_FIELDS,
        since: "",
    },
    Command {
        name: "registerTemplate",
        description: "Registers an existing template into the CloudStack cloud.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            req("name", Str, "the name of the template"),
            long(req("url", Str, "the URL of where the template is hosted (http or https)"), 2048),
            p("displaytext", Str, "the display text of the template, defaults to name"),
            rel(
                p(
                    "zoneid",
                    Str,
                    "the ID of the zone the template is to be hosted on, or -1 for every zone with an image store",
                ),
                "listZones",
            ),
            rel(p("zoneids", List, "a list of IDs of the zones in which the template will be available"), "listZones"),
            rel(
                p("ostypeid", Uuid, "the ID of the OS Type that best represents the OS of this template."),
                "listOsTypes",
            ),
            p("checksum", Str, "the SHA-256 checksum of the image, as hex or {SHA-256}hex"),
            p(
                "ispublic",
                Boolean,
                "true if the template is available to all accounts; default is true for admins and false for users",
            ),
            p("isfeatured", Boolean, "true if this template is a featured template, false otherwise"),
            p("isextractable", Boolean, "true if the template or its derivatives are extractable; default is false"),
            p("passwordenabled", Boolean, "true if the template supports the password reset feature; default is false"),
            p("account", Str, "an optional accountName. Must be used with domainId."),
            rel(
                p(
                    "domainid",
                    Uuid,
                    "an optional domainId. If the account parameter is used, domainId must also be used.",
                ),
                "listDomains",
            ),
            req("format", Str, "the format for the template: QCOW2 or RAW"),
            req("hypervisor", Str, "the target hypervisor for the template: KVM or Simulator"),
            p("bits", Integer, "32 or 64 bits support. 64 by default"),
            p("requireshvm", Boolean, "true if this template requires HVM"),
            p("details", Map, "Template details in key/value pairs."),
        ],
        object: "template",
        shape: Shape::List,
        response: TEMPLATE_FIELDS,
        since: "",
    },
    Command {
        name: "registerIso",
        description: "Registers an existing ISO into the CloudStack Cloud.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            req("name", Str, "the name of the ISO"),
            long(req("url", Str, "the URL of where the ISO is hosted (http or https)"), 2048),
            p("displaytext", Str, "the display text of the ISO, defaults to name"),
            rel(
                p(
                    "zoneid",
                    Str,
                    "the ID of the zone the ISO is to be hosted on, or -1 for every zone with an image store",
                ),
                "listZones",
            ),
            rel(p("zoneids", List, "a list of IDs of the zones in which the ISO will be available"), "listZones"),
            rel(p("ostypeid", Uuid, "the ID of the OS Type that best represents the OS of this ISO."), "listOsTypes"),
            p("checksum", Str, "the SHA-256 checksum of the image, as hex or {SHA-256}hex"),
            p(
                "ispublic",
                Boolean,
                "true if the ISO is available to all accounts; default is true for admins and false for users",
            ),
            p("isfeatured", Boolean, "true if this ISO is a featured template, false otherwise"),
            p("isextractable", Boolean, "true if the ISO or its derivatives are extractable; default is false"),
            p("passwordenabled", Boolean, "true if the ISO supports the password reset feature; default is false"),
            p("account", Str, "an optional accountName. Must be used with domainId."),
            rel(
                p(
                    "domainid",
                    Uuid,
                    "an optional domainId. If the account parameter is used, domainId must also be used.",
                ),
                "listDomains",
            ),
            p("bootable", Boolean, "true if this ISO is bootable. If not passed explicitly its assumed to be true"),
        ],
        object: "iso",
        shape: Shape::List,
        response: TEMPLATE_FIELDS,
        since: "",
    },
    Command {
        name: "listTemplates",
        description: "List all public, private, and privileged templates.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            req(
                "templatefilter",
                Str,
                "possible values are featured, self, selfexecutable, sharedexecutable, executable, community and all (admins only)",
            ),
            rel(p("id", Uuid, "the template ID"), "listTemplates"),
            p("name", Str, "the template name"),
            rel(p("zoneid", Uuid, "list templates by zoneId"), "listZones"),
            p("hypervisor", Str, "the hypervisor for which to restrict the search"),
            p("isready", Boolean, "list templates that are ready to be deployed"),
            p("showremoved", Boolean, "show removed templates as well"),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "template",
        shape: Shape::List,
        response: TEMPLATE_FIELDS,
        since: "",
    },
    Command {
        name: "listIsos",
        description: "Lists all available ISO files.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            p(
                "isofilter",
                Str,
                "possible values are featured, self, selfexecutable, sharedexecutable, executable, community and all; default executable",
            ),
            p("bootable", Boolean, "true if the ISO is bootable, false otherwise"),
            p("ispublic", Boolean, "true if the ISO is publicly available to all users, false otherwise."),
            rel(p("id", Uuid, "the ISO ID"), "listIsos"),
            p("name", Str, "the ISO name"),
            rel(p("zoneid", Uuid, "list ISOs by zoneId"), "listZones"),
            p("hypervisor", Str, "the hypervisor for which to restrict the search"),
            p("isready", Boolean, "list ISOs that are ready to be deployed"),
            p("showremoved", Boolean, "show removed templates as well"),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "iso",
        shape: Shape::List,
        response: TEMPLATE_FIELDS,
        since: "",
    },
    Command {
        name: "deleteTemplate",
        description: "Deletes a template from the system. All virtual machines using the deleted template will not be affected.",
        is_async: true,
        roles: Roles::ALL,
        params: &[
            rel(req("id", Uuid, "the ID of the template"), "listTemplates"),
            rel(p("zoneid", Uuid, "the ID of zone of the template"), "listZones"),
            p("forced", Boolean, "Force delete a template."),
        ],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "deleteIso",
        description: "Deletes an ISO file.",
        is_async: true,
        roles: Roles::ALL,
        params: &[
            rel(req("id", Uuid, "the ID of the ISO file"), "listIsos"),
            rel(
                p(
                    "zoneid",
                    Uuid,
                    "the ID of the zone of the ISO file. If not specified, the ISO will be deleted from all the zones",
                ),
                "listZones",
            ),
        ],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "createStoragePool",
        description: "Creates a storage pool.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            req("name", Str, "the name for the storage pool"),
            long(req("url", Str, "the URL of the storage pool: nfs://server/export/path or file:///path"), 2048),
            rel(req("zoneid", Uuid, "the Zone ID for the storage pool"), "listZones"),
            rel(p("podid", Uuid, "the Pod ID for the storage pool"), "listPods"),
            rel(p("clusterid", Uuid, "the cluster ID for the storage pool"), "listClusters"),
            p("scope", Str, "the scope of the storage: cluster or zone"),
            p(
                "hypervisor",
                Str,
                "hypervisor type of the hosts in zone that will be attached to this storage pool. KVM, Simulator supported as of now.",
            ),
            p(
                "provider",
                Str,
                "the storage provider: the name of a loaded storage driver (default: by the URL's scheme)",
            ),
            p("tags", Str, "the tags for the storage pool"),
            p("capacitybytes", Long, "bytes CloudStack can provision from this storage pool"),
            p("managed", Boolean, "whether the storage should be managed by CloudStack"),
            p("details", Map, "settings for the storage driver, as its listPlugins configschema describes them"),
        ],
        object: "storagepool",
        shape: Shape::Object,
        response: POOL_FIELDS,
        since: "",
    },
    Command {
        name: "listStoragePools",
        description: "Lists storage pools.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            rel(p("id", Uuid, "the ID of the storage pool"), "listStoragePools"),
            p("name", Str, "the name of the storage pool"),
            rel(p("zoneid", Uuid, "the Zone ID for the storage pool"), "listZones"),
            rel(p("podid", Uuid, "the Pod ID for the storage pool"), "listPods"),
            rel(p("clusterid", Uuid, "list storage pools belongig to the specific cluster"), "listClusters"),
            p("scope", Str, "the scope of the storage pool"),
            p("path", Str, "the storage pool path"),
            p("ipaddress", Str, "the IP address for the storage pool"),
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "storagepool",
        shape: Shape::List,
        response: POOL_FIELDS,
        since: "",
    },
    Command {
        name: "deleteStoragePool",
        description: "Deletes a storage pool.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            rel(req("id", Uuid, "Storage pool id"), "listStoragePools"),
            p(
                "forced",
                Boolean,
                "Force destroy storage pool (force expunge volumes in Destroyed state as a part of pool removal)",
            ),
        ],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "createVolume",
        description: "Creates a disk volume from a disk offering. This disk volume must still be attached to a virtual machine to make use of it.",
        is_async: true,
        roles: Roles::ALL,
        params: &[
            p("name", Str, "the name of the disk volume"),
            rel(p("diskofferingid", Uuid, "the ID of the disk offering (or give size)"), "listDiskOfferings"),
            p("size", Long, "Arbitrary volume size in GB (for customized disk offerings)"),
            rel(p("snapshotid", Uuid, "not supported: snapshots stay inside their volume"), "listSnapshots"),
            rel(
                p(
                    "templateid",
                    Uuid,
                    "make the volume a copy-on-write volume on this template, copied to the pool once (wasmstack)",
                ),
                "listTemplates",
            ),
            rel(p("zoneid", Uuid, "the ID of the availability zone"), "listZones"),
            p("account", Str, "the account associated with the disk volume. Must be used with the domainId parameter."),
            rel(p("domainid", Uuid, "the domain ID associated with the disk offering."), "listDomains"),
        ],
        object: "volume",
        shape: Shape::Object,
        response: VOLUME_FIELDS,
        since: "",
    },
    Command {
        name: "listVolumes",
        description: "Lists all volumes.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(p("id", Uuid, "the ID of the disk volume"), "listVolumes"),
            p("name", Str, "the name of the disk volume"),
            p("type", Str, "the type of disk volume"),
            p("state", Str, "state of the volume, e.g. Ready"),
            rel(p("zoneid", Uuid, "the ID of the availability zone"), "listZones"),
            rel(p("storageid", Uuid, "the ID of the storage pool, available to ROOT admin only"), "listStoragePools"),
            rel(p("diskofferingid", Uuid, "list volumes by disk offering"), "listDiskOfferings"),
            rel(p("virtualmachineid", Uuid, "the ID of the virtual machine"), "listVirtualMachines"),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "volume",
        shape: Shape::List,
        response: VOLUME_FIELDS,
        since: "",
    },
    Command {
        name: "resizeVolume",
        description: "Resizes a volume",
        is_async: true,
        roles: Roles::ALL,
        params: &[
            rel(req("id", Uuid, "the ID of the disk volume"), "listVolumes"),
            p("size", Long, "New volume size in GB"),
            rel(p("diskofferingid", Uuid, "new disk offering id"), "listDiskOfferings"),
            p("shrinkok", Boolean, "Verify OK to Shrink"),
        ],
        object: "volume",
        shape: Shape::Object,
        response: VOLUME_FIELDS,
        since: "",
    },
    Command {
        name: "deleteVolume",
        description: "Deletes a detached disk volume, and its snapshots.",
        is_async: false,
        roles: Roles::ALL,
        params: &[rel(req("id", Uuid, "The ID of the disk volume"), "listVolumes")],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "createSnapshot",
        description: "Creates an instant snapshot of a volume, kept on primary storage.",
        is_async: true,
        roles: Roles::ALL,
        params: &[
            rel(req("volumeid", Uuid, "The ID of the disk volume"), "listVolumes"),
            p("name", Str, "the name of the snapshot"),
            p(
                "locationtype",
                Str,
                "PRIMARY (default) keeps the snapshot on primary storage; SECONDARY also backs it up to the zone's image store",
            ),
        ],
        object: "snapshot",
        shape: Shape::Object,
        response: SNAPSHOT_FIELDS,
        since: "",
    },
    Command {
        name: "listSnapshots",
        description: "Lists all available snapshots for the account.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(p("id", Uuid, "lists snapshot by snapshot ID"), "listSnapshots"),
            p("name", Str, "lists snapshot by snapshot name"),
            rel(p("volumeid", Uuid, "the ID of the disk volume"), "listVolumes"),
            rel(p("zoneid", Uuid, "list snapshots by zone id"), "listZones"),
            p("snapshottype", Str, "valid values are MANUAL or RECURRING."),
            p("intervaltype", Str, "valid values are HOURLY, DAILY, WEEKLY, and MONTHLY."),
            p("locationtype", Str, "valid values are PRIMARY and SECONDARY."),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "snapshot",
        shape: Shape::List,
        response: SNAPSHOT_FIELDS,
        since: "",
    },
    Command {
        name: "revertSnapshot",
        description: "This is supposed to revert a volume snapshot. This command is only supported with KVM so far",
        is_async: true,
        roles: Roles::ALL,
        params: &[rel(req("id", Uuid, "The ID of the snapshot"), "listSnapshots")],
        object: "snapshot",
        shape: Shape::Object,
        response: SNAPSHOT_FIELDS,
        since: "4.2.0",
    },
    Command {
        name: "deleteSnapshot",
        description: "Deletes a snapshot of a disk volume.",
        is_async: true,
        roles: Roles::ALL,
        params: &[rel(req("id", Uuid, "The ID of the snapshot"), "listSnapshots")],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "addImageStore",
        description: "Adds backup image store.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            req("provider", Str, "the image store provider name: NFS"),
            long(p("url", Str, "the URL for the image store: nfs://server/export/path"), 2048),
            p("name", Str, "the name for the image store"),
            rel(p("zoneid", Uuid, "the Zone ID for the image store"), "listZones"),
            p("details", Map, "the details for the image store"),
        ],
        object: "imagestore",
        shape: Shape::Object,
        response: IMAGE_STORE_FIELDS,
        since: "4.2.0",
    },
    Command {
        name: "addSecondaryStorage",
        description: "Adds secondary storage.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            long(req("url", Str, "the URL for the secondary storage: nfs://server/export/path"), 2048),
            rel(p("zoneid", Uuid, "the Zone ID for the secondary storage"), "listZones"),
            p("details", Map, "the details for the image store"),
        ],
        object: "secondarystorage",
        shape: Shape::Object,
        response: IMAGE_STORE_FIELDS,
        since: "",
    },
    Command {
        name: "listImageStores",
        description: "Lists image stores.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            rel(p("id", Uuid, "the ID of the storage pool"), "listImageStores"),
            p("name", Str, "the name of the image store"),
            rel(p("zoneid", Uuid, "the Zone ID for the image store"), "listZones"),
            p("protocol", Str, "the image store protocol"),
            p("provider", Str, "the image store provider"),
            p("readonly", Boolean, "read-only status of the image store"),
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "imagestore",
        shape: Shape::List,
        response: IMAGE_STORE_FIELDS,
        since: "4.2.0",
    },
    Command {
        name: "deleteImageStore",
        description: "Deletes an image store or Secondary Storage.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[rel(req("id", Uuid, "The image store ID or Secondary Storage ID."), "listImageStores")],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "4.2.0",
    },
    Command {
        name: "createServiceOffering",
        description: "Creates a service offering.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            req("name", Str, "the name of the service offering"),
            p("displaytext", Str, "The display text of the service offering, defaults to 'name'."),
            p("cpunumber", Integer, "the CPU number of the service offering"),
            p("cpuspeed", Integer, "the CPU speed of the service offering in MHz."),
            p("memory", Integer, "the total memory of the service offering in MB"),
            p("storagetype", Str, "the storage type of the service offering. Values are local and shared."),
            p("offerha", Boolean, "the HA for the service offering"),
            p("limitcpuuse", Boolean, "restrict the CPU usage to committed service offering"),
            p("hosttags", Str, "the host tag for this service offering."),
            p("tags", Str, "the tags for this service offering."),
            p("rootdisksize", Long, "the Root disk size in GB."),
            p("customized", Boolean, "Whether service offering size is custom or not"),
        ],
        object: "serviceoffering",
        shape: Shape::Object,
        response: SERVICE_OFFERING_FIELDS,
        since: "",
    },
    Command {
        name: "listServiceOfferings",
        description: "Lists all available service offerings.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(p("id", Uuid, "ID of the service offering"), "listServiceOfferings"),
            p("name", Str, "name of the service offering"),
            rel(p("zoneid", Uuid, "id of zone disk offering is associated with"), "listZones"),
            p(
                "virtualmachineid",
                Uuid,
                "the ID of the virtual machine. Pass this in if you want to see the available service offering that a virtual machine can be changed to.",
            ),
            p("issystem", Boolean, "is this a system vm offering"),
            p("systemvmtype", Str, "the system VM type."),
            rel(p("domainid", Uuid, "the ID of the domain"), "listDomains"),
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "serviceoffering",
        shape: Shape::List,
        response: SERVICE_OFFERING_FIELDS,
        since: "",
    },
    Command {
        name: "deleteServiceOffering",
        description: "Deletes a service offering.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[rel(req("id", Uuid, "the ID of the service offering"), "listServiceOfferings")],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "createDiskOffering",
        description: "Creates a disk offering.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            req("name", Str, "name of the disk offering"),
            p("displaytext", Str, "An alternate display text of the disk offering, defaults to 'name'."),
            p("disksize", Long, "size of the disk offering in GB (1GB = 1,073,741,824 bytes)"),
            p("customized", Boolean, "whether disk offering size is custom or not"),
            p("storagetype", Str, "the storage type of the disk offering. Values are local and shared."),
            p("tags", Str, "tags for the disk offering"),
            p("provisioningtype", Str, "provisioning type used to create volumes. Valid values are thin, sparse, fat."),
        ],
        object: "diskoffering",
        shape: Shape::Object,
        response: DISK_OFFERING_FIELDS,
        since: "",
    },
    Command {
        name: "listDiskOfferings",
        description: "Lists all available disk offerings.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(p("id", Uuid, "ID of the disk offering"), "listDiskOfferings"),
            p("name", Str, "name of the disk offering"),
            rel(p("zoneid", Uuid, "id of zone disk offering is associated with"), "listZones"),
            rel(p("domainid", Uuid, "the ID of the domain of the disk offering."), "listDomains"),
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "diskoffering",
        shape: Shape::List,
        response: DISK_OFFERING_FIELDS,
        since: "",
    },
    Command {
        name: "deleteDiskOffering",
        description: "Deletes a disk offering.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[rel(req("id", Uuid, "ID of the disk offering"), "listDiskOfferings")],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "listOsTypes",
        description: "Lists all supported OS types for this cloud.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(p("id", Uuid, "list by Os type Id"), "listOsTypes"),
            p("description", Str, "list os by description"),
            p("oscategoryid", Uuid, "list by Os Category id"),
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "ostype",
        shape: Shape::List,
        response: OS_TYPE_FIELDS,
        since: "",
    },
    Command {
        name: "createZone",
        description: "Creates a Zone.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            req("name", Str, "the name of the Zone"),
            req("networktype", Str, "network type of the zone, can be Basic or Advanced"),
            req("dns1", Str, "the first DNS for the Zone"),
            req("internaldns1", Str, "the first internal DNS for the Zone"),
            p("dns2", Str, "the second DNS for the Zone"),
            p("internaldns2", Str, "the second internal DNS for the Zone"),
            p("guestcidraddress", Str, "the guest CIDR address for the Zone"),
            p("description", Str, "the description of the Zone"),
            p("localstorageenabled", Boolean, "true if local storage offering enabled, false otherwise"),
            p("securitygroupenabled", Boolean, "true if network is security group enabled, false otherwise"),
            p("allocationstate", Str, "Allocation state of this Zone for allocation of new resources"),
            p("isedge", Boolean, "true if the zone is an edge zone, false otherwise"),
            rel(p("domainid", Uuid, "the ID of the containing domain, null for public zones"), "listDomains"),
        ],
        object: "zone",
        shape: Shape::Object,
        response: ZONE_FIELDS,
        since: "",
    },
    Command {
        name: "listZones",
        description: "Lists zones",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(p("id", Uuid, "the ID of the zone"), "listZones"),
            p("name", Str, "the name of the zone"),
            p(
                "available",
                Boolean,
                "true if you want to retrieve all available Zones. False if you only want to return the Zones from which you have at least one VM.",
            ),
            p("networktype", Str, "the network type of the zone that the virtual machine belongs to"),
            p("showcapacities", Boolean, "flag to display the capacity of the zones"),
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "zone",
        shape: Shape::List,
        response: ZONE_FIELDS,
        since: "",
    },
    Command {
        name: "updateZone",
        description: "Updates a Zone.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            rel(req("id", Uuid, "the ID of the Zone"), "listZones"),
            p("name", Str, "the name of the Zone"),
            p("dns1", Str, "the first DNS for the Zone"),
            p("dns2", Str, "the second DNS for the Zone"),
            p("internaldns1", Str, "the first internal DNS for the Zone"),
            p("internaldns2", Str, "the second internal DNS for the Zone"),
            p("guestcidraddress", Str, "the guest CIDR address for the Zone"),
            p("description", Str, "the description of the Zone"),
            p("allocationstate", Str, "Allocation state of this cluster for allocation of new resources"),
        ],
        object: "zone",
        shape: Shape::Object,
        response: ZONE_FIELDS,
        since: "",
    },
    Command {
        name: "deleteZone",
        description: "Deletes a Zone.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[rel(req("id", Uuid, "the ID of the Zone"), "listZones")],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "createPod",
        description: "Creates a new Pod.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            req("name", Str, "the name of the Pod"),
            rel(req("zoneid", Uuid, "the Zone ID in which the Pod will be created"), "listZones"),
            p("gateway", Str, "the gateway for the Pod"),
            p("netmask", Str, "the netmask for the Pod"),
            p("startip", Str, "the starting IP address for the Pod"),
            p("endip", Str, "the ending IP address for the Pod"),
            p("allocationstate", Str, "Allocation state of this Pod for allocation of new resources"),
        ],
        object: "pod",
        shape: Shape::Object,
        response: POD_FIELDS,
        since: "",
    },
    Command {
        name: "listPods",
        description: "Lists all Pods.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            rel(p("id", Uuid, "list Pods by ID"), "listPods"),
            p("name", Str, "list Pods by name"),
            rel(p("zoneid", Uuid, "list Pods by Zone ID"), "listZones"),
            p("allocationstate", Str, "list pods by allocation state"),
            p("showcapacities", Boolean, "flag to display the capacity of the pods"),
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "pod",
        shape: Shape::List,
        response: POD_FIELDS,
        since: "",
    },
    Command {
        name: "updatePod",
        description: "Updates a Pod.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            rel(req("id", Uuid, "the ID of the Pod"), "listPods"),
            p("name", Str, "the name of the Pod"),
            p("gateway", Str, "the gateway for the Pod"),
            p("netmask", Str, "the netmask of the Pod"),
            p("startip", Str, "the starting IP address for the Pod"),
            p("endip", Str, "the ending IP address for the Pod"),
            p("allocationstate", Str, "Allocation state of this cluster for allocation of new resources"),
        ],
        object: "pod",
        shape: Shape::Object,
        response: POD_FIELDS,
        since: "",
    },
    Command {
        name: "deletePod",
        description: "Deletes a Pod.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[rel(req("id", Uuid, "the ID of the Pod"), "listPods")],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "addCluster",
        description: "Adds a new cluster",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            req("clustername", Str, "the cluster name"),
            req("clustertype", Str, "type of the cluster: CloudManaged, ExternalManaged"),
            req("hypervisor", Str, "hypervisor type of the cluster: KVM, Simulator"),
            rel(req("podid", Uuid, "the Pod ID for the host"), "listPods"),
            rel(req("zoneid", Uuid, "the Zone ID for the cluster"), "listZones"),
            p("allocationstate", Str, "Allocation state of this cluster for allocation of new resources"),
            p("url", Str, "the URL"),
            p("username", Str, "the username for the cluster"),
            p("password", Str, "the password for the host"),
            p("arch", Str, "the CPU arch of the cluster. Valid options are: x86_64, aarch64"),
            p(
                "accel",
                Str,
                "how guests run on the cluster's hosts: auto (KVM where libvirt offers it), kvm or tcg (emulation) (wasmstack)",
            ),
        ],
        object: "cluster",
        shape: Shape::ListOfOne,
        response: CLUSTER_FIELDS,
        since: "",
    },
    Command {
        name: "listClusters",
        description: "Lists clusters.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            rel(p("id", Uuid, "lists clusters by the cluster ID"), "listClusters"),
            p("name", Str, "lists clusters by the cluster name"),
            rel(p("podid", Uuid, "lists clusters by Pod ID"), "listPods"),
            rel(p("zoneid", Uuid, "lists clusters by Zone ID"), "listZones"),
            p("hypervisor", Str, "lists clusters by hypervisor type"),
            p("clustertype", Str, "lists clusters by cluster type"),
            p("allocationstate", Str, "lists clusters by allocation state"),
            p("managedstate", Str, "whether this cluster is managed by cloudstack"),
            p("showcapacities", Boolean, "flag to display the capacity of the clusters"),
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "cluster",
        shape: Shape::List,
        response: CLUSTER_FIELDS,
        since: "",
    },
    Command {
        name: "deleteCluster",
        description: "Deletes a cluster.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[rel(req("id", Uuid, "the cluster ID"), "listClusters")],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "addHost",
        description: "Adds a new host.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            req(
                "hypervisor",
                Str,
                "hypervisor type of the host: KVM (url is a libvirt URI such as qemu:///system or qemu+ssh://host/system) or Simulator (libvirt's test driver)",
            ),
            rel(req("podid", Uuid, "the Pod ID for the host"), "listPods"),
            long(req("url", Str, "the host URL"), 2048),
            rel(req("zoneid", Uuid, "the Zone ID for the host"), "listZones"),
            rel(p("clusterid", Uuid, "the cluster ID for the host"), "listClusters"),
            p("clustername", Str, "the cluster name for the host"),
            p("username", Str, "the username for the host; required to be passed for hypervisors other than VMWare"),
            p("password", Str, "the password for the host; required to be passed for hypervisors other than VMWare"),
            p("hosttags", List, "list of tags to be added to the host"),
            p("allocationstate", Str, "Allocation state of this Host for allocation of new resources"),
            p("details", Map, "settings for the hypervisor driver, as its listPlugins configschema describes them"),
        ],
        object: "host",
        shape: Shape::ListOfOne,
        response: HOST_FIELDS,
        since: "",
    },
    Command {
        name: "listHosts",
        description: "Lists hosts.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            rel(p("id", Uuid, "the id of the host"), "listHosts"),
            p("name", Str, "the name of the host"),
            rel(p("zoneid", Uuid, "the Zone ID for the host"), "listZones"),
            rel(p("podid", Uuid, "the Pod ID for the host"), "listPods"),
            rel(p("clusterid", Uuid, "lists hosts existing in particular cluster"), "listClusters"),
            p("type", Str, "the host type"),
            p("state", Str, "the state of the host"),
            p("resourcestate", Str, "list hosts by resource state."),
            p("hypervisor", Str, "hypervisor type of host: KVM, Simulator"),
            p("details", List, "comma separated list of host details requested"),
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "host",
        shape: Shape::List,
        response: HOST_FIELDS,
        since: "",
    },
    Command {
        name: "updateHost",
        description: "Updates a host.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            rel(req("id", Uuid, "the ID of the host to update"), "listHosts"),
            p("name", Str, "the new name of the host"),
            p("allocationstate", Str, "Change resource state of host, valid values are [Enable, Disable]."),
            p("hosttags", List, "list of tags to be added to the host"),
        ],
        object: "host",
        shape: Shape::Object,
        response: HOST_FIELDS,
        since: "",
    },
    Command {
        name: "deleteHost",
        description: "Deletes a host.",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            rel(req("id", Uuid, "the host ID"), "listHosts"),
            p("forced", Boolean, "Force delete the host. All HA enabled vms running on the host will be put to HA."),
        ],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "login",
        description: "Logs a user into the CloudStack. A successful login attempt will generate a JSESSIONID cookie value that can be passed in subsequent Query command calls until the \"logout\" command has been issued or the session has expired.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            long(req("username", Str, "Username"), 255),
            long(req("password", Str, "Password"), 255),
            p(
                "domain",
                Str,
                "Path of the domain that the user belongs to. Example: domain=/com/cloud/internal. If no domain is passed in, the ROOT (/) domain is assumed.",
            ),
            rel(
                p(
                    "domainId",
                    Str,
                    "The id (UUID) of the domain that the user belongs to; takes precedence over domain",
                ),
                "listDomains",
            ),
        ],
        object: "login",
        shape: Shape::Flat,
        response: LOGIN_FIELDS,
        since: "",
    },
    Command {
        name: "logout",
        description: "Logs out the user",
        is_async: false,
        roles: Roles::ALL,
        params: &[],
        object: "logout",
        shape: Shape::Flat,
        response: LOGOUT_FIELDS,
        since: "",
    },
    Command {
        name: "listApis",
        description: "lists all available apis on the server, provided by the Api Discovery plugin",
        is_async: false,
        roles: Roles::ALL,
        params: &[p("name", Str, "API name")],
        object: "api",
        shape: Shape::List,
        response: API_FIELDS,
        since: "4.1.0",
    },
    Command {
        name: "listCapabilities",
        description: "Lists capabilities",
        is_async: false,
        roles: Roles::ALL,
        params: &[],
        object: "capability",
        shape: Shape::Object,
        response: CAPABILITY_FIELDS,
        since: "",
    },
    Command {
        name: "createDomain",
        description: "Creates a domain",
        is_async: false,
        roles: Roles::ADMINS,
        params: &[
            req("name", Str, "creates domain with this name"),
            rel(
                p(
                    "parentdomainid",
                    Uuid,
                    "assigns new domain a parent domain by domain ID of the parent. If no parent domain is specified, the ROOT domain is assumed.",
                ),
                "listDomains",
            ),
            p("networkdomain", Str, "Network domain for networks in the domain"),
            p("domainid", Str, "Domain UUID, required for adding domain from another Region"),
        ],
        object: "domain",
        shape: Shape::Object,
        response: DOMAIN_FIELDS,
        since: "",
    },
    Command {
        name: "listDomains",
        description: "Lists domains and provides detailed information for listed domains",
        is_async: false,
        roles: Roles::ADMINS,
        params: &[
            rel(p("id", Uuid, "List domain by domain ID."), "listDomains"),
            p("name", Str, "List domain by domain name."),
            p("level", Integer, "List domains by domain level."),
            LISTALL,
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "domain",
        shape: Shape::List,
        response: DOMAIN_FIELDS,
        since: "",
    },
    Command {
        name: "listRoles",
        description: "Lists dynamic roles in CloudStack",
        is_async: false,
        roles: Roles::ADMINS,
        params: &[
            rel(p("id", Uuid, "List role by role ID."), "listRoles"),
            p("name", Str, "List role by role name."),
            p("type", Str, "List role by role type."),
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "role",
        shape: Shape::List,
        response: ROLE_FIELDS,
        since: "4.9.0",
    },
    Command {
        name: "createAccount",
        description: "Creates an account",
        is_async: false,
        roles: Roles::ADMINS,
        params: &[
            req("username", Str, "Unique username."),
            long(req("password", Str, "Clear text password (Default hashed to SHA256SALT)."), 255),
            req("email", Str, "email"),
            req("firstname", Str, "firstname"),
            req("lastname", Str, "lastname"),
            p(
                "accounttype",
                Integer,
                "Type of the account. Specify 0 for user, 1 for root admin, and 2 for domain admin",
            ),
            rel(p("roleid", Uuid, "Creates the account under the specified role."), "listRoles"),
            p(
                "account",
                Str,
                "Name of the account to be created. The user will be added to this newly created account. If no account is specified, the username will be used as the account name.",
            ),
            rel(p("domainid", Uuid, "Creates the user under the specified domain."), "listDomains"),
            p("timezone", Str, "Specifies a timezone for this command."),
            p("networkdomain", Str, "Network domain for the account's networks"),
            p("accountdetails", Map, "details for account used to store specific parameters"),
            p("accountid", Str, "Account UUID, required for adding account from external provisioning system"),
            p("userid", Str, "User UUID, required for adding account from external provisioning system"),
        ],
        object: "account",
        shape: Shape::Object,
        response: ACCOUNT_FIELDS,
        since: "",
    },
    Command {
        name: "listAccounts",
        description: "Lists accounts and provides detailed account information for listed accounts",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(p("id", Uuid, "list account by account ID"), "listAccounts"),
            p("name", Str, "list account by account name"),
            p("accounttype", Integer, "list accounts by account type."),
            p("state", Str, "list accounts by state. Valid states are enabled, disabled, and locked."),
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "account",
        shape: Shape::List,
        response: ACCOUNT_FIELDS,
        since: "",
    },
    Command {
        name: "updateAccount",
        description: "Updates account information for the authenticated user",
        is_async: false,
        roles: Roles::ADMINS,
        params: &[
            rel(p("id", Uuid, "Account UUID"), "listAccounts"),
            p("account", Str, "the current account name"),
            rel(p("domainid", Uuid, "the ID of the domain where the account exists"), "listDomains"),
            p("newname", Str, "new name for the account"),
            p("networkdomain", Str, "Network domain for the account's networks"),
            p("accountdetails", Map, "Details for the account used to store specific parameters"),
        ],
        object: "account",
        shape: Shape::Object,
        response: ACCOUNT_FIELDS,
        since: "",
    },
    Command {
        name: "disableAccount",
        description: "Disables an account",
        is_async: true,
        roles: Roles::ADMINS,
        params: &[
            rel(p("id", Uuid, "Account id"), "listAccounts"),
            p("account", Str, "Disables specified account."),
            rel(p("domainid", Uuid, "Disables specified account in this domain."), "listDomains"),
            req("lock", Boolean, "If true, only lock the account; else disable the account"),
        ],
        object: "account",
        shape: Shape::Object,
        response: ACCOUNT_FIELDS,
        since: "",
    },
    Command {
        name: "enableAccount",
        description: "Enables an account",
        is_async: false,
        roles: Roles::ADMINS,
        params: &[
            rel(p("id", Uuid, "Account id"), "listAccounts"),
            p("account", Str, "Enables specified account."),
            rel(p("domainid", Uuid, "Enables specified account in this domain."), "listDomains"),
        ],
        object: "account",
        shape: Shape::Object,
        response: ACCOUNT_FIELDS,
        since: "",
    },
    Command {
        name: "deleteAccount",
        description: "Deletes an account and all its users",
        is_async: true,
        roles: Roles::ADMINS,
        params: &[rel(req("id", Uuid, "Account id"), "listAccounts")],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "createUser",
        description: "Creates a user for an account that already exists",
        is_async: false,
        roles: Roles::ADMINS,
        params: &[
            rel(
                req(
                    "account",
                    Str,
                    "Creates the user under the specified account. If no account is specified, the username will be used as the account name.",
                ),
                "listAccounts",
            ),
            req("username", Str, "Unique username."),
            long(req("password", Str, "Clear text password."), 255),
            req("email", Str, "email"),
            req("firstname", Str, "firstname"),
            req("lastname", Str, "lastname"),
            rel(
                p(
                    "domainid",
                    Uuid,
                    "Creates the user under the specified domain. Has to be accompanied with the account parameter",
                ),
                "listDomains",
            ),
            p("timezone", Str, "Specifies a timezone for this command."),
            p("userid", Str, "User UUID, required for adding account from external provisioning system"),
        ],
        object: "user",
        shape: Shape::Object,
        response: USER_FIELDS,
        since: "",
    },
    Command {
        name: "listUsers",
        description: "Lists user accounts",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(p("id", Uuid, "List user by ID."), "listUsers"),
            p("username", Str, "List user by the username"),
            ACCOUNT,
            p("accounttype", Integer, "List users by account type."),
            p("state", Str, "List users by state of the user account."),
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "user",
        shape: Shape::List,
        response: USER_FIELDS,
        since: "",
    },
    Command {
        name: "updateUser",
        description: "Updates a user account",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(req("id", Uuid, "User uuid"), "listUsers"),
            p("username", Str, "Unique username"),
            p("firstname", Str, "first name"),
            p("lastname", Str, "last name"),
            p("email", Str, "email"),
            p("timezone", Str, "Specifies a timezone for this command."),
            long(p("password", Str, "Clear text password (default hashed to SHA256SALT)."), 255),
            long(
                p(
                    "currentpassword",
                    Str,
                    "Current password that was being used by the user. You must inform the current password when updating the password.",
                ),
                255,
            ),
        ],
        object: "user",
        shape: Shape::Object,
        response: USER_FIELDS,
        since: "",
    },
    Command {
        name: "disableUser",
        description: "Disables a user account",
        is_async: true,
        roles: Roles::ADMINS,
        params: &[rel(req("id", Uuid, "Disables user by user ID."), "listUsers")],
        object: "user",
        shape: Shape::Object,
        response: USER_FIELDS,
        since: "",
    },
    Command {
        name: "enableUser",
        description: "Enables a user account",
        is_async: false,
        roles: Roles::ADMINS,
        params: &[rel(req("id", Uuid, "Enables user by user ID."), "listUsers")],
        object: "user",
        shape: Shape::Object,
        response: USER_FIELDS,
        since: "",
    },
    Command {
        name: "deleteUser",
        description: "Deletes a user for an account",
        is_async: false,
        roles: Roles::ADMINS,
        params: &[rel(req("id", Uuid, "id of the user to be deleted"), "listUsers")],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "registerUserKeys",
        description: "This command allows a user to register for the developer API, returning a secret key and an API key. This request is made through the integration API port, so it is a privileged command and must be made on behalf of a user. It is up to the implementer just how the username and password are entered, and then how that translates to an integration API request. Both secret key and API key should be returned to the user",
        is_async: false,
        roles: Roles::ALL,
        params: &[rel(req("id", Uuid, "User id"), "listUsers")],
        object: "userkeys",
        shape: Shape::Object,
        response: KEYS_FIELDS,
        since: "",
    },
    Command {
        name: "getUserKeys",
        description: "This command allows the user to query the secret and API keys for the account",
        is_async: false,
        roles: Roles::ALL,
        params: &[rel(req("id", Uuid, "ID of the user whose keys are required"), "listUsers")],
        object: "userkeys",
        shape: Shape::Object,
        response: KEYS_FIELDS,
        since: "4.10.0",
    },
    Command {
        name: "listEvents",
        description: "A command to list events.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(p("id", Uuid, "the ID of the event"), "listEvents"),
            p("type", Str, "the event type (see event types)"),
            p("level", Str, "the event level (INFO, WARN, ERROR)"),
            p(
                "startdate",
                Date,
                "the start date range of the list you want to retrieve (use format \"yyyy-MM-dd\" or the new format \"yyyy-MM-dd HH:mm:ss\")",
            ),
            p(
                "enddate",
                Date,
                "the end date range of the list you want to retrieve (use format \"yyyy-MM-dd\" or the new format \"yyyy-MM-dd HH:mm:ss\")",
            ),
            p("resourceid", Str, "the parent resource ID"),
            p("resourcetype", Str, "the type of the resource associated with the event"),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "event",
        shape: Shape::List,
        response: EVENT_FIELDS,
        since: "",
    },
    Command {
        name: "queryAsyncJobResult",
        description: "Retrieves the current status of asynchronous job.",
        is_async: false,
        roles: Roles::ALL,
        params: &[rel(req("jobid", Uuid, "the ID of the asynchronous job"), "listAsyncJobs")],
        object: "asyncjobs",
        shape: Shape::Flat,
        response: JOB_FIELDS,
        since: "",
    },
    Command {
        name: "listAsyncJobs",
        description: "Lists all pending asynchronous jobs for the account.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            p("startdate", Date, "The start date of the async job (use format \"yyyy-MM-dd'T'HH:mm:ss'+'SSSS\")"),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "asyncjobs",
        shape: Shape::List,
        response: JOB_FIELDS,
        since: "",
    },
];

/// Every command, in table order.
pub fn all() -> impl Iterator<Item = &'static Command> + Clone {
    COMMANDS
        .iter()
        .chain(network::NETWORK_COMMANDS)
        .chain(instance::INSTANCE_COMMANDS)
        .chain(console::CONSOLE_COMMANDS)
        .chain(plugins::PLUGIN_COMMANDS)
        .chain(capacity::CAPACITY_COMMANDS)
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
            if c.name.starts_with("list") && c.shape == Shape::List && c.name != "listApis" {
                assert!(c.params.iter().any(|p| p.name == "pagesize"), "{} lacks paging", c.name);
            }
        }
    }
}
