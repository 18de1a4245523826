//! Opening a VM's graphical console from the API, as CloudStack 4.18 and later do.

use super::*;

const WEBSOCKET_FIELDS: &[Field] = &[
    f("token", "string", "the token that opens one connection to the console proxy"),
    f("path", "string", "the console proxy's WebSocket path on this server"),
    f("extra", "string", "the query string to add to the WebSocket URL"),
];

const ENDPOINT_FIELDS: &[Field] = &[
    f("success", "boolean", "true if the console endpoint is generated properly"),
    f("details", "string", "details in case of an error, or how long the token lasts"),
    f("url", "string", "the console page for this VM on this server"),
    nested("websocket", "consoleendpointwebsocketresponse", "the console websocket options", WEBSOCKET_FIELDS),
];

pub(super) static CONSOLE_COMMANDS: &[Command] = &[Command {
    name: "createConsoleEndpoint",
    description: "Create a console endpoint to connect to a VM console",
    is_async: false,
    roles: Roles::ALL,
    params: &[
        rel(req("virtualmachineid", Uuid, "ID of the VM"), "listVirtualMachines"),
        p("token", ParamType::String, "(optional) extra security token, valid when the extra validation is enabled"),
    ],
    object: "consoleendpoint",
    shape: Shape::Object,
    response: ENDPOINT_FIELDS,
    since: "4.18.0",
}];
