//! Keeps the recorded state of each VM in step with what its host reports.
//!
//! A pass asks every Up host's hypervisor driver for its domains and compares them with
//! the instances recorded on that host. It runs once when the server starts (after the
//! jobs a stopped server left are failed) and then at a fixed interval. A VM that a job
//! is working on is left alone: the job owns its state.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::auth::store::Scope;
use crate::cloud::infra::{self, HostRow};
use crate::cloud::instances::{self, InstanceFilter, InstanceRow};
use crate::db::DbError;
use crate::events::{self, Event};
use crate::plugins::VmPower;

use super::Orchestrator;

/// The interval between passes unless `WASMSTACK_RECONCILE_SECS` says otherwise.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// States a job moves a VM through; only a crash leaves a VM in one with no job.
const BUSY: [&str; 2] = ["Starting", "Stopping"];

/// The interval between passes.
pub fn interval() -> Duration {
    std::env::var("WASMSTACK_RECONCILE_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_INTERVAL, Duration::from_secs_f64)
}

pub struct Reconciler {
    orch: Orchestrator,
    /// Busy VMs no job can own any more, whose state the next pass may settle.
    orphans: HashSet<i64>,
}

impl Reconciler {
    /// Call after the jobs a stopped server left are failed: every busy VM that no live
    /// job holds was then left by a crash.
    pub async fn new(orch: Orchestrator) -> Result<Self, DbError> {
        let held = held_by_jobs(&orch).await?;
        let mut orphans = HashSet::new();
        for state in BUSY {
            let f = InstanceFilter { state: Some(state.into()), ..Default::default() };
            let (rows, _) = instances::list_instances(&orch.db, &Scope::default(), &f, None).await?;
            orphans.extend(rows.into_iter().filter(|i| !held.contains(&i.uuid)).map(|i| i.id));
        }
        Ok(Reconciler { orch, orphans })
    }

    /// Runs a pass now and then one every `every`, for the life of the server.
    pub fn spawn(mut self, every: Duration) {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.pass().await {
                    tracing::error!("reconciling VM states: {e}");
                }
                tokio::time::sleep(every).await;
            }
        });
    }

    /// One pass over all Up hosts; returns how many VMs changed state.
    pub async fn pass(&mut self) -> Result<usize, DbError> {
        let held = held_by_jobs(&self.orch).await?;
        let (hosts, _) = infra::list_hosts(&self.orch.db, &Default::default(), Some("Up"), None).await?;
        let mut busy_now = HashSet::new();
        let mut changed = 0;
        for h in hosts {
            let f = InstanceFilter { host_id: Some(h.id), ..Default::default() };
            let (rows, _) = instances::list_instances(&self.orch.db, &Scope::default(), &f, None).await?;
            let rows: Vec<_> = rows
                .into_iter()
                .filter(|i| !held.contains(&i.uuid))
                .filter(|i| BUSY.contains(&i.state.as_str()) || i.state == "Running" || i.state == "Stopped")
                .collect();
            if rows.is_empty() {
                continue;
            }
            let Some(report) = self.report(&h).await else { continue };
            for i in rows {
                let power = report.get(&i.uuid.to_ascii_lowercase()).copied().unwrap_or(VmPower::Missing);
                // A busy VM seen for the first time may belong to a job about to be
                // submitted (a deploy records the VM first): wait for the next pass.
                if BUSY.contains(&i.state.as_str()) && !self.orphans.contains(&i.id) {
                    busy_now.insert(i.id);
                    continue;
                }
                if self.settle(&h, &i, power).await? {
                    changed += 1;
                }
            }
        }
        self.orphans = busy_now;
        Ok(changed)
    }

    /// The host's domains by lowercase uuid; none when the host cannot answer.
    async fn report(&self, h: &HostRow) -> Option<HashMap<String, VmPower>> {
        let hv = match self.orch.plugins.hypervisor(&h.driver) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("reconciling host {}: {e}", h.name);
                return None;
            }
        };
        let uri = h.libvirt_uri.clone();
        match tokio::task::spawn_blocking(move || hv.list_vms(&uri)).await {
            Ok(Ok(vms)) => Some(vms.into_iter().map(|v| (v.uuid.to_ascii_lowercase(), v.power)).collect()),
            Ok(Err(e)) => {
                tracing::warn!("reconciling host {}: listing its VMs failed: {e}", h.name);
                None
            }
            Err(e) => {
                tracing::error!("reconciling host {}: the driver call crashed: {e}", h.name);
                None
            }
        }
    }

    /// Moves one VM to the state its host reports, with an event; false when nothing changed.
    async fn settle(&self, h: &HostRow, i: &InstanceRow, power: VmPower) -> Result<bool, DbError> {
        let up = matches!(power, VmPower::Running | VmPower::Paused);
        // A VM its host no longer knows becomes Stopped, not Error: that is how CloudStack
        // reports a VM missing from its host's power report, and users expect to start it
        // again rather than only destroy it.
        let to = if up { "Running" } else { "Stopped" };
        if i.state == to {
            return Ok(false);
        }
        // Only from the state just read: a job that took the VM meanwhile wins.
        if !instances::transition(&self.orch.db, i.id, &[i.state.as_str()], to).await? {
            return Ok(false);
        }
        let seen = match power {
            VmPower::Missing => format!("host {} does not know it", h.name),
            VmPower::Crashed => format!("host {} reports it crashed", h.name),
            _ if up => format!("host {} reports it running", h.name),
            _ => format!("host {} reports it stopped", h.name),
        };
        let (level, text) = if BUSY.contains(&i.state.as_str()) {
            ("INFO", format!("VM {} was left {} by a stopped management server; {seen}: now {to}", i.name, i.state))
        } else {
            ("WARN", format!("VM {} changed outside wasmstack; {seen}: now {to}", i.name))
        };
        tracing::warn!("{text}");
        let ev =
            Event { kind: "VM.SYNC", level, description: text, resource: None }.on("VirtualMachine", &i.uuid, &i.name);
        events::record_for_account(&self.orch.db, i.account_id, i.domain_id, ev).await?;
        Ok(true)
    }
}

/// The uuids of the VMs a job in progress works on.
async fn held_by_jobs(orch: &Orchestrator) -> Result<HashSet<String>, DbError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT instance_id FROM async_jobs WHERE status = 0 AND instance_type = 'VirtualMachine' \
         AND instance_id IS NOT NULL",
    )
    .fetch_all(orch.db.pool())
    .await?;
    Ok(ids.into_iter().collect())
}
