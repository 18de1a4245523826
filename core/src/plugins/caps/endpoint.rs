//! The `endpoint` capability: a placeholder that refuses every request, so that
//! hypervisor drivers built against wasmstack:driver@0.2.0 link. It is replaced by the
//! real capability (grants checked, HTTP/1.1 over a unix socket or TCP).

use crate::plugins::bindings::endpoint::{Host, Request, Response};
use crate::plugins::bindings::types::DriverError;
use crate::plugins::state::CallState;

impl Host for CallState {
    fn send(&mut self, endpoint: String, _req: Request) -> wasmtime::Result<Result<Response, DriverError>> {
        self.check_deadline()?;
        Ok(Err(DriverError::Denied(format!(
            "endpoint access to \"{endpoint}\" is not granted to plugin \"{}\"",
            self.plugin
        ))))
    }
}
