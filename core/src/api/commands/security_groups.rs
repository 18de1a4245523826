//! Security groups: named sets of ingress and egress rules that the network driver enforces
//! on the NICs of their member instances, on networks whose offering has the SecurityGroup
//! service. Users manage their own account's groups.

use super::*;

const TAG_FIELDS: &[Field] = &[
    f("key", "string", "tag key name"),
    f("value", "string", "tag value"),
    f("resourcetype", "string", "resource type"),
    f("resourceid", "string", "id of the resource"),
];

pub(super) const RULE_FIELDS: &[Field] = &[
    f("ruleid", "string", "the id of the security group rule"),
    f("protocol", "string", "the protocol of the security group rule"),
    f("icmptype", "integer", "the type of the ICMP message response"),
    f("icmpcode", "integer", "the code for the ICMP message response"),
    f("startport", "integer", "the starting IP of the security group rule"),
    f("endport", "integer", "the ending IP of the security group rule "),
    f("securitygroupname", "string", "security group name"),
    f("account", "string", "account owning the security group rule"),
    f("cidr", "string", "the CIDR notation for the base IP address of the security group rule"),
    nested("tags", "list", "the list of resource tags associated with the rule", TAG_FIELDS),
];

pub(crate) const SECURITY_GROUP_FIELDS: &[Field] = &[
    f("id", "string", "the ID of the security group"),
    f("name", "string", "the name of the security group"),
    f("description", "string", "the description of the security group"),
    f("account", "string", "the account owning the security group"),
    f("domainid", "string", "the domain ID of the security group"),
    f("domain", "string", "the domain name of the security group"),
    f("domainpath", "string", "the domain path of the security group"),
    nested("ingressrule", "list", "the list of ingress rules associated with the security group", RULE_FIELDS),
    nested("egressrule", "list", "the list of egress rules associated with the security group", RULE_FIELDS),
    nested("tags", "list", "the list of resource tags associated with the rule", TAG_FIELDS),
    f("virtualmachinecount", "integer", "the number of virtualmachines associated with this securitygroup"),
    f("virtualmachineids", "set", "the list of virtualmachine ids associated with this securitygroup"),
];

const OWNER_ACCOUNT: Param =
    rel(p("account", Str, "an optional account for the security group. Must be used with domainId."), "listAccounts");
const OWNER_DOMAIN: Param = rel(
    p(
        "domainid",
        Uuid,
        "an optional domainId for the security group. If the account parameter is used, domainId must also be used.",
    ),
    "listDomains",
);

/// The parameters authorizeSecurityGroupIngress and …Egress share.
const AUTHORIZE_PARAMS: &[Param] = &[
    rel(
        p("securitygroupid", Uuid, "The ID of the security group. Mutually exclusive with securityGroupName parameter"),
        "listSecurityGroups",
    ),
    p("securitygroupname", Str, "The name of the security group. Mutually exclusive with securityGroupId parameter"),
    p("protocol", Str, "TCP is default. UDP is the other supported protocol"),
    p("startport", Integer, "start port for this rule"),
    p("endport", Integer, "end port for this rule"),
    p("icmptype", Integer, "type of the icmp message being sent"),
    p("icmpcode", Integer, "error code for this icmp message"),
    p(
        "cidrlist",
        List,
        "the cidr list associated. Multiple entries must be separated by a single comma character (,).",
    ),
    p("usersecuritygrouplist", Map, "user to security group mapping"),
    OWNER_ACCOUNT,
    OWNER_DOMAIN,
];

pub(super) const SECURITY_GROUP_IDS: Param = rel(
    p(
        "securitygroupids",
        List,
        "comma separated list of security groups id that going to be applied to the virtual machine. \
         Should be passed only when vm is created from a zone with Basic Network support. \
         Mutually exclusive with securitygroupnames parameter",
    ),
    "listSecurityGroups",
);
pub(super) const SECURITY_GROUP_NAMES: Param = rel(
    p(
        "securitygroupnames",
        List,
        "comma separated list of security groups names that going to be applied to the virtual machine. \
         Should be passed only when vm is created from a zone with Basic Network support. \
         Mutually exclusive with securitygroupids parameter",
    ),
    "listSecurityGroups",
);

const RULE_ID: Param = req("id", Uuid, "The ID of the rule");

pub(super) static SECURITY_GROUP_COMMANDS: &[Command] = &[
    Command {
        name: "createSecurityGroup",
        description: "Creates a security group",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            req("name", Str, "name of the security group"),
            p("description", Str, "the description of the security group"),
            OWNER_ACCOUNT,
            OWNER_DOMAIN,
        ],
        object: "securitygroup",
        shape: Shape::Object,
        response: SECURITY_GROUP_FIELDS,
        since: "",
    },
    Command {
        name: "deleteSecurityGroup",
        description: "Deletes security group",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(
                p("id", Uuid, "The ID of the security group. Mutually exclusive with name parameter"),
                "listSecurityGroups",
            ),
            p("name", Str, "The ID of the security group. Mutually exclusive with id parameter"),
            OWNER_ACCOUNT,
            OWNER_DOMAIN,
        ],
        object: "",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "listSecurityGroups",
        description: "Lists security groups",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(p("id", Uuid, "list the security group by the id provided"), "listSecurityGroups"),
            p("securitygroupname", Str, "lists security groups by name"),
            rel(p("virtualmachineid", Uuid, "lists security groups by virtual machine id"), "listVirtualMachines"),
            p("tags", Map, "List resources by tags (key/value pairs)"),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "securitygroup",
        shape: Shape::List,
        response: SECURITY_GROUP_FIELDS,
        since: "",
    },
    Command {
        name: "authorizeSecurityGroupIngress",
        description: "Authorizes a particular ingress rule for this security group",
        is_async: true,
        roles: Roles::ALL,
        params: AUTHORIZE_PARAMS,
        object: "securitygroup",
        shape: Shape::Object,
        response: SECURITY_GROUP_FIELDS,
        since: "",
    },
    Command {
        name: "authorizeSecurityGroupEgress",
        description: "Authorizes a particular egress rule for this security group",
        is_async: true,
        roles: Roles::ALL,
        params: AUTHORIZE_PARAMS,
        object: "securitygroup",
        shape: Shape::Object,
        response: SECURITY_GROUP_FIELDS,
        since: "3.0.0",
    },
    Command {
        name: "revokeSecurityGroupIngress",
        description: "Deletes a particular ingress rule from this security group",
        is_async: true,
        roles: Roles::ALL,
        params: &[RULE_ID],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "revokeSecurityGroupEgress",
        description: "Deletes a particular egress rule from this security group",
        is_async: true,
        roles: Roles::ALL,
        params: &[RULE_ID],
        object: "success",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "3.0.0",
    },
];
