//! The guest access commands: SSH key pairs, userdata (inline and stored) and passwords,
//! what lets an owner into a guest.

use super::instance::VM_FIELDS;
use super::templates::TEMPLATE_FIELDS;
use super::*;

const KEYPAIR_FIELDS: &[Field] = &[
    f("id", "string", "ID of the ssh keypair"),
    f("name", "string", "Name of the keypair"),
    f("fingerprint", "string", "Fingerprint of the public key"),
    f("privatekey", "string", "Private key (createSSHKeyPair only; shown once, never stored)"),
    f("account", "string", "the owner of the keypair"),
    f("accountid", "string", "the owner id of the keypair"),
    f("domainid", "string", "the domain id of the keypair owner"),
    f("domain", "string", "the domain name of the keypair owner"),
];

const USERDATA_FIELDS: &[Field] = &[
    f("id", "string", "ID of the user data"),
    f("name", "string", "Name of the user data"),
    f("account", "string", "the owner of the user data"),
    f("accountid", "string", "the owner id of the user data"),
    f("domainid", "string", "the domain id of the user data owner"),
    f("domain", "string", "the domain name of the user data owner"),
    f("userdata", "string", "base64 encoded user data content"),
    f(
        "params",
        "string",
        "list of parameters which contains the list of keys or string parameters that are needed to be passed for any variables declared in the user data",
    ),
];

const VM_USERDATA_FIELDS: &[Field] = &[
    f("virtualmachineid", "string", "the ID of the virtual machine"),
    f("userdata", "string", "Base 64 encoded VM user data"),
    f("userdataid", "string", "the id of userdata used for the VM"),
    f("userdataname", "string", "the name of userdata used for the VM"),
];

const OWNER_ACCOUNT: Param =
    rel(p("account", Str, "an optional account for the resource. Must be used with domainId."), "listAccounts");
const OWNER_DOMAIN: Param = rel(p("domainid", Uuid, "an optional domainId for the resource."), "listDomains");
const VM_ID: Param = rel(req("id", Uuid, "The ID of the virtual machine"), "listVirtualMachines");

pub(super) const USERDATA: Param = long(
    p(
        "userdata",
        Str,
        "an optional binary data that can be sent to the virtual machine upon a successful deployment, base64-encoded; \
         at most 4 KB by GET, 32 KB by POST",
    ),
    1_048_576,
);
pub(super) const USERDATA_ID: Param = rel(p("userdataid", Uuid, "the ID of the stored userdata"), "listUserData");
pub(super) const USERDATA_DETAILS: Param =
    p("userdatadetails", Map, "used to specify the parameters values for the variables in userdata");
pub(super) const KEYPAIR: Param =
    rel(p("keypair", Str, "name of the ssh key pair used to login to the virtual machine"), "listSSHKeyPairs");
pub(super) const KEYPAIRS: Param =
    rel(p("keypairs", List, "names of the ssh key pairs used to login to the virtual machine"), "listSSHKeyPairs");

pub(super) static GUEST_ACCESS_COMMANDS: &[Command] = &[
    Command {
        name: "createSSHKeyPair",
        description: "Create a new keypair and returns the private key",
        is_async: false,
        roles: Roles::ALL,
        params: &[req("name", Str, "Name of the keypair"), OWNER_ACCOUNT, OWNER_DOMAIN],
        object: "keypair",
        shape: Shape::Object,
        response: KEYPAIR_FIELDS,
        since: "",
    },
    Command {
        name: "registerSSHKeyPair",
        description: "Register a public key in a keypair under a certain name",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            req("name", Str, "Name of the keypair"),
            long(req("publickey", Str, "Public key material of the keypair"), 5120),
            OWNER_ACCOUNT,
            OWNER_DOMAIN,
        ],
        object: "keypair",
        shape: Shape::Object,
        response: KEYPAIR_FIELDS,
        since: "",
    },
    Command {
        name: "listSSHKeyPairs",
        description: "List registered keypairs",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(p("id", Uuid, "the ID of the ssh keypair"), "listSSHKeyPairs"),
            p("name", Str, "A key pair name to look for"),
            p("fingerprint", Str, "A public key fingerprint to look for"),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "sshkeypair",
        shape: Shape::List,
        response: KEYPAIR_FIELDS,
        since: "",
    },
    Command {
        name: "deleteSSHKeyPair",
        description: "Deletes a keypair by name",
        is_async: false,
        roles: Roles::ALL,
        params: &[req("name", Str, "Name of the keypair"), OWNER_ACCOUNT, OWNER_DOMAIN],
        object: "",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "",
    },
    Command {
        name: "resetSSHKeyForVirtualMachine",
        description: "Resets the SSH Key for virtual machine. The virtual machine must be in a \"Stopped\" state.",
        is_async: true,
        roles: Roles::ALL,
        params: &[VM_ID, KEYPAIR, KEYPAIRS, OWNER_ACCOUNT, OWNER_DOMAIN],
        object: "virtualmachine",
        shape: Shape::Object,
        response: VM_FIELDS,
        since: "",
    },
    Command {
        name: "resetPasswordForVirtualMachine",
        description: "Resets the password for virtual machine. The virtual machine must be in a \"Stopped\" state and the \
                      template must already support this feature for this command to take effect.",
        is_async: true,
        roles: Roles::ALL,
        params: &[VM_ID],
        object: "virtualmachine",
        shape: Shape::Object,
        response: VM_FIELDS,
        since: "",
    },
    Command {
        name: "updateVirtualMachine",
        description: "Updates properties of a virtual machine. The VM may be stopped or running; a new userdata reaches \
                      the guest through the metadata service or its config drive.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            VM_ID,
            p("displayname", Str, "user generated name"),
            USERDATA,
            USERDATA_ID,
            USERDATA_DETAILS,
            super::security_groups::SECURITY_GROUP_IDS,
            super::security_groups::SECURITY_GROUP_NAMES,
        ],
        object: "virtualmachine",
        shape: Shape::Object,
        response: VM_FIELDS,
        since: "",
    },
    Command {
        name: "getVirtualMachineUserData",
        description: "Returns user data associated with the VM",
        is_async: false,
        roles: Roles::ALL,
        params: &[rel(req("virtualmachineid", Uuid, "The ID of the virtual machine"), "listVirtualMachines")],
        object: "virtualmachineuserdata",
        shape: Shape::Object,
        response: VM_USERDATA_FIELDS,
        since: "4.4",
    },
    Command {
        name: "registerUserData",
        description: "Register a new userdata.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            req("name", Str, "Name of the userdata"),
            long(req("userdata", Str, "Base64 encoded userdata content"), 1_048_576),
            p("params", Str, "comma separated list of variables declared in userdata content"),
            OWNER_ACCOUNT,
            OWNER_DOMAIN,
        ],
        object: "userdata",
        shape: Shape::Object,
        response: USERDATA_FIELDS,
        since: "4.18",
    },
    Command {
        name: "listUserData",
        description: "List registered userdatas",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(p("id", Uuid, "the ID of the Userdata"), "listUserData"),
            p("name", Str, "Userdata name to look for"),
            ACCOUNT,
            DOMAINID,
            ISRECURSIVE,
            LISTALL,
            KEYWORD,
            PAGE,
            PAGESIZE,
        ],
        object: "userdata",
        shape: Shape::List,
        response: USERDATA_FIELDS,
        since: "4.18",
    },
    Command {
        name: "deleteUserData",
        description: "Deletes a userdata",
        is_async: false,
        roles: Roles::ALL,
        params: &[rel(req("id", Uuid, "the ID of the Userdata"), "listUserData"), OWNER_ACCOUNT, OWNER_DOMAIN],
        object: "",
        shape: Shape::Success,
        response: SUCCESS_FIELDS,
        since: "4.18",
    },
    Command {
        name: "linkUserDataToTemplate",
        description: "Link or unlink a userdata to a template.",
        is_async: false,
        roles: Roles::ALL,
        params: &[
            rel(p("templateid", Uuid, "the ID of the template for the virtual machine"), "listTemplates"),
            rel(p("isoid", Uuid, "the ID of the ISO for the virtual machine"), "listIsos"),
            rel(
                p(
                    "userdataid",
                    Uuid,
                    "the ID of the userdata that has to be linked to template/ISO. If not provided \
                   existing userdata will be unlinked from the template/ISO",
                ),
                "listUserData",
            ),
            p(
                "userdatapolicy",
                Str,
                "an optional override policy of the userdata: ALLOWOVERRIDE (default), APPEND or DENYOVERRIDE",
            ),
        ],
        object: "template",
        shape: Shape::Object,
        response: TEMPLATE_FIELDS,
        since: "4.18",
    },
];
