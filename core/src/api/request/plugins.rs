//! Typed requests of the driver-plugin management commands (admins only).

use super::{must, s};
use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::params::Params;

/// Managing the loaded drivers: uploads, grants, reloads.
#[derive(Debug, Clone)]
pub enum PluginRequest {
    /// getUploadParamsForPlugin: a one-use, signed URL to POST a `.wasm` to.
    GetUploadParams { file_name: String },
    /// updatePlugin: capabilities to add to and take from a driver's grants, as listPlugins
    /// prints them, and new limits (each `None`: left as it is).
    Update { name: String, grant: Vec<String>, revoke: Vec<String>, memory_mib: Option<i64>, timeout_ms: Option<i64> },
    /// reloadPlugins: rescan the plugin folder now.
    Reload,
}

pub fn parse(cmd: &'static Command, p: &Params) -> Result<PluginRequest, ApiError> {
    Ok(match cmd.name {
        "getUploadParamsForPlugin" => PluginRequest::GetUploadParams { file_name: must(p, cmd, "name")? },
        "updatePlugin" => PluginRequest::Update {
            name: must(p, cmd, "name")?,
            grant: list(p, "grant"),
            revoke: list(p, "revoke"),
            memory_mib: p.long("memorymib")?,
            timeout_ms: p.long("timeoutms")?,
        },
        "reloadPlugins" => PluginRequest::Reload,
        other => return Err(ApiError::unsupported(format!("The command {other} has no handler"))),
    })
}

/// A comma-separated list; capabilities contain spaces, so items are trimmed, not split on them.
fn list(p: &Params, name: &str) -> Vec<String> {
    s(p, name)
        .map(|v| v.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}
