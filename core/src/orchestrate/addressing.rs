//! The rules that forward public addresses to VMs, listed before they exist: every
//! listing is empty; the filters are still checked as any list checks them (clients such
//! as Libcloud call these on every node listing). Public addresses are `public_ips`.

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
