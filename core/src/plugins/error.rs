use std::path::PathBuf;

use super::bindings::types::DriverError;

/// Why a plugin could not be loaded or a driver call failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// No plugin of that name (and kind) is loaded.
    #[error("no {kind} driver named \"{name}\" is loaded")]
    NotLoaded { name: String, kind: &'static str },
    /// The file is not a usable driver; the text says why.
    #[error("{}: {reason}", file.display())]
    Invalid { file: PathBuf, reason: String },
    /// The driver ran and returned an error of its own.
    #[error("{plugin}: {}", driver_error_text(error))]
    Driver { plugin: String, error: DriverError },
    /// The driver panicked; the call failed, the next call gets a fresh instance.
    #[error("{plugin} panicked in {op}: {message}")]
    Panicked { plugin: String, op: &'static str, message: String },
    /// The call ran past the plugin's deadline.
    #[error("{plugin} timed out in {op} after {limit_ms} ms")]
    Timeout { plugin: String, op: &'static str, limit_ms: u64 },
    /// The driver tried to grow its memory past its cap.
    #[error("{plugin} ran out of memory in {op}: its limit is {limit_mib} MiB{detail}")]
    OutOfMemory { plugin: String, op: &'static str, limit_mib: u64, detail: String },
    /// The driver answered with more than the host takes (see the bounds in `driver.rs`).
    #[error("{plugin} gave an oversized answer to {op}: {detail}")]
    Oversized { plugin: String, op: &'static str, detail: String },
    /// Any other trap.
    #[error("{plugin} crashed in {op}: {message}")]
    Trapped { plugin: String, op: &'static str, message: String },
    /// The server configuration is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// Reading the plugin folder or a file failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// A driver error as the operator reads it: "not found: no VM i-2-3-VM".
pub fn driver_error_text(error: &DriverError) -> String {
    let (kind, text) = match error {
        DriverError::InvalidSpec(t) => ("invalid request", t),
        DriverError::NotFound(t) => ("not found", t),
        DriverError::Unavailable(t) => ("unavailable", t),
        DriverError::Denied(t) => ("permission denied", t),
        DriverError::Unsupported(t) => ("not supported", t),
        DriverError::Failed(t) => ("failed", t),
    };
    format!("{kind}: {text}")
}
