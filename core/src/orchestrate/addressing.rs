//! IP forwarding rules (CloudStack's static NAT rules with ports), which wasmstack does
//! not make: the listing is empty; its filters are still checked as any list checks them
//! (clients such as Libcloud call it on every node listing). Public addresses are
//! `public_ips`, port forwarding rules `rules`.

use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::AddressQuery;
use crate::auth::Caller;
use crate::cloud::infra;

use super::{Orchestrator, list, no_such};

impl Orchestrator {
    pub(super) async fn list_addressing(&self, caller: &Caller, q: AddressQuery) -> Result<Reply, ApiError> {
        self.scope(caller, &q.listing).await?;
        if let Some(z) = &q.zone_id {
            infra::zone(&self.db, z).await?.ok_or_else(|| no_such("zone", z))?;
        }
        if let Some(v) = &q.vm_id {
            self.vm_for(caller, v).await?;
        }
        Ok(list(q.object, 0, Vec::new()))
    }
}
