//! The driver plugins, for the console's plugins page (wasmstack's own commands): list them,
//! upload one, change its grants, rescan the folder.

use super::*;

const PLUGIN_FIELDS: &[Field] = &[
    f("name", "string", "the driver's name"),
    f("version", "string", "the driver's version"),
    f("kind", "string", "hypervisor, storage or network"),
    f("description", "string", "what the driver says it does"),
    f("wit", "string", "the driver interface version the component was built against"),
    f("file", "string", "the component's file name in the plugin folder"),
    f("sha256", "string", "the component file's SHA-256"),
    f("loaded", "date", "when the component was loaded"),
    f("asks", "list", "the capabilities the driver asks for"),
    f("granted", "list", "the capabilities the operator granted it"),
    f("missing", "list", "what it asks for and was not granted"),
    f("memorymib", "integer", "the memory limit per call, MiB"),
    f("timeoutms", "integer", "the time limit per call, milliseconds"),
    f("configschema", "object", "the JSON Schema of the driver's settings (details of createStoragePool or addHost)"),
    f("errors", "list", "the latest refusals to load a file of this driver (or, with no name, of any file)"),
];

const UPLOAD_FIELDS: &[Field] = &[
    f("id", "uuid", "the ID of the upload"),
    f("postURL", "url", "where to POST the file (multipart/form-data, field file), on this server"),
    f("metadata", "string", "send as the X-metadata header"),
    f("expires", "string", "when the URL stops working; send as the X-expires header"),
    f("signature", "string", "send as the X-signature header"),
];

pub(super) static PLUGIN_COMMANDS: &[Command] = &[
    Command {
        name: "listPlugins",
        description: "Lists the loaded driver plugins, what each asks for and is granted, and the latest load errors",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[p("name", Str, "only the driver of this name"), PAGE, PAGESIZE],
        object: "plugin",
        shape: Shape::List,
        response: PLUGIN_FIELDS,
        since: "",
    },
    Command {
        name: "getUploadParamsForPlugin",
        description: "Gives a one-use, short-lived signed URL to upload a driver component (.wasm) to the plugin folder",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[long(req("name", Str, "the file name in the plugin folder, ending in .wasm"), 64)],
        object: "getuploadparams",
        shape: Shape::Object,
        response: UPLOAD_FIELDS,
        since: "",
    },
    Command {
        name: "updatePlugin",
        description: "Grants capabilities to a driver or revokes them, and sets its limits; the changes are saved in the server configuration file",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[
            rel(req("name", Str, "the driver's name"), "listPlugins"),
            long(
                p("grant", List, "capabilities to grant, as listPlugins shows them (e.g. \"libvirt test:///default\")"),
                4096,
            ),
            long(p("revoke", List, "capabilities to revoke, as listPlugins shows them in granted"), 4096),
            p("memorymib", Long, "the memory limit per call, MiB (1-1024)"),
            p("timeoutms", Long, "the time limit per call, milliseconds (1-3600000)"),
        ],
        object: "plugin",
        shape: Shape::Object,
        response: PLUGIN_FIELDS,
        since: "",
    },
    Command {
        name: "reloadPlugins",
        description: "Rereads the server configuration file (grants, limits) and rescans the plugin folder now: loads new and changed drivers, unloads removed ones",
        is_async: false,
        roles: Roles::ADMIN,
        params: &[],
        object: "plugin",
        shape: Shape::List,
        response: PLUGIN_FIELDS,
        since: "",
    },
];
