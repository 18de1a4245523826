//! The loaded driver plugins, for the console's plugins page (wasmstack's own command).

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
    f("errors", "list", "the latest refusals to load a file of this driver (or, with no name, of any file)"),
];

pub(super) static PLUGIN_COMMANDS: &[Command] = &[Command {
    name: "listPlugins",
    description: "Lists the loaded driver plugins, what each asks for and is granted, and the latest load errors",
    is_async: false,
    roles: Roles::ADMIN,
    params: &[p("name", Str, "only the driver of this name"), PAGE, PAGESIZE],
    object: "plugin",
    shape: Shape::List,
    response: PLUGIN_FIELDS,
    since: "",
}];
