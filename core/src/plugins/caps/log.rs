//! The `log` capability: always granted; lines go to the server's log, tagged with the plugin.

use crate::plugins::bindings::log::{Host, Level};
use crate::plugins::state::CallState;

impl Host for CallState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let plugin = &*self.plugin;
        // A driver's line is bounded like its error texts, so that it cannot flood the log.
        let message = crate::plugins::driver::cut(&message);
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
        Ok(())
    }
}

impl crate::plugins::bindings::types::Host for CallState {}
