//! Keeps the recorded state of each VM in step with what its host reports.
//!
//! A pass asks every Up host's hypervisor driver for its domains and compares them with
//! the instances recorded on that host. It runs once when the server starts (after the
//! jobs a stopped server left are failed) and then at a fixed interval. A VM that a job
//! is working on is left alone: the job owns its state.
//!
//! A VM whose deploy job the stop failed is half-made: if its host has the domain, every
//! step before it was recorded and the VM is settled like any other; if not, what the
//! deploy made (root disk, NICs and their addresses) is undone, as a failed job would have.

use crate::cloud::instances::VmState;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::api::error::ApiError;
use crate::auth::store::Scope;
use crate::cloud::infra::{self, HostRow};
use crate::cloud::instances::{self, InstanceFilter, InstanceRow};
use crate::cloud::networks::{self as nets, NicFilter};
use crate::cloud::volumes;
use crate::db::DbError;
use crate::events::{self, Event};
use crate::plugins::{NicSpec, VmPower};

use super::Orchestrator;
use super::instances::blocking;

/// The interval between passes unless `WASMSTACK_RECONCILE_SECS` says otherwise.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// States a job moves a VM through; only a crash leaves a VM in one with no job. A
/// migration left so is settled by what its recorded (destination) host reports.
const BUSY: [VmState; 3] = [VmState::Starting, VmState::Stopping, VmState::Migrating];

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
    /// VMs whose deploy job failed with the VM still there: a stop cut the deploy short.
    unfinished: HashSet<i64>,
}

impl Reconciler {
    /// Call after the jobs a stopped server left are failed: every busy VM that no live
    /// job holds was then left by a crash.
    pub async fn new(orch: Orchestrator) -> Result<Self, DbError> {
        let held = held_by_jobs(&orch).await?;
        let mut orphans = HashSet::new();
        for state in BUSY {
            let f = InstanceFilter { state: Some(state.as_str().into()), ..Default::default() };
            let (rows, _) = instances::list_instances(&orch.db, &Scope::default(), &f, None).await?;
            orphans.extend(rows.into_iter().filter(|i| !held.contains(&i.uuid)).map(|i| i.id));
        }
        let unfinished = unfinished_deploys(&orch).await?;
        Ok(Reconciler { orch, orphans, unfinished })
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
                .filter(|i| {
                    self.unfinished.contains(&i.id)
                        || BUSY.contains(&i.state)
                        || i.state == VmState::Running
                        || i.state == VmState::Stopped
                })
                .collect();
            if rows.is_empty() {
                continue;
            }
            let Some(report) = self.report(&h).await else { continue };
            for i in rows {
                let power = report.get(&i.uuid.to_ascii_lowercase()).copied().unwrap_or(VmPower::Missing);
                if self.unfinished.contains(&i.id) {
                    if matches!(power, VmPower::Missing) {
                        // Kept for the next pass when a driver fails: the undo resumes.
                        match self.undo_deploy(&h, &i).await {
                            Ok(()) => changed += 1,
                            Err(e) => {
                                tracing::error!("undoing the deploy of VM {}: {}", i.name, e.text);
                                continue;
                            }
                        }
                    } else if self.settle(&h, &i, power).await? {
                        changed += 1;
                    }
                    self.unfinished.remove(&i.id);
                    continue;
                }
                // A busy VM seen for the first time may belong to a job about to be
                // submitted (a deploy records the VM first): wait for the next pass.
                if BUSY.contains(&i.state) && !self.orphans.contains(&i.id) {
                    busy_now.insert(i.id);
                    continue;
                }
                if self.settle(&h, &i, power).await? {
                    changed += 1;
                }
            }
        }
        self.orphans = busy_now;
        // Routers a host lost (a reboot, a deleted namespace) are built again.
        if let Err(e) = self.orch.repair_routers().await {
            tracing::error!("checking routers: {}", e.text);
        }
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
        let to = if up { VmState::Running } else { VmState::Stopped };
        if i.state == to {
            return Ok(false);
        }
        // Only from the state just read: a job that took the VM meanwhile wins.
        if !instances::transition(&self.orch.db, i.id, &[i.state], to).await? {
            return Ok(false);
        }
        let seen = match power {
            VmPower::Missing => format!("host {} does not know it", h.name),
            VmPower::Crashed => format!("host {} reports it crashed", h.name),
            _ if up => format!("host {} reports it running", h.name),
            _ => format!("host {} reports it stopped", h.name),
        };
        let (level, text) = if BUSY.contains(&i.state) {
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

    /// Removes what a deploy cut short made: its root disk, its NICs (on the host too),
    /// then the VM itself, in state Error as a failed deploy leaves it; with an event.
    async fn undo_deploy(&self, h: &HostRow, i: &InstanceRow) -> Result<(), ApiError> {
        let o = &self.orch;
        // Claimed first: a user or another server must not act on it meanwhile.
        if !instances::transition(&o.db, i.id, &[i.state], VmState::Expunging).await? {
            return Ok(());
        }
        // By name too: a stop between recording the disk and linking it to the VM leaves
        // only the name (`ROOT-<vm id>`, on the VM's template) to find it by.
        let root = match instances::root_volume_uuid(&o.db, i).await? {
            Some(uuid) => Some(uuid),
            None => sqlx::query_scalar(
                "SELECT uuid FROM volumes WHERE name = $1 AND zone_id = $2 AND template_id = $3 AND removed IS NULL",
            )
            .bind(format!("ROOT-{}", i.id))
            .bind(i.zone_id)
            .bind(i.template_id)
            .fetch_optional(o.db.pool())
            .await
            .map_err(DbError::from)?,
        };
        if let Some(uuid) = root
            && let Some(v) = volumes::volume(&o.db, &uuid).await?
        {
            if v.path.is_empty() {
                // Stopped while the driver made it: only the name finds it.
                o.drop_unfinished_volume(&v.pool_driver, &v.pool_url, &v.uuid).await?;
            } else {
                let (url, path) = (v.pool_url.clone(), v.path.clone());
                let what = format!("Deleting the root disk of VM {}", i.name);
                o.on_driver(&v.pool_driver, what, move |d| d.delete_volume(&url, &path)).await?;
            }
            volumes::remove_volume(&o.db, &v).await?;
        }
        let f = NicFilter { instance_uuid: Some(i.uuid.clone()), ..Default::default() };
        let (nics, _) = nets::list_nics(&o.db, &f, None).await?;
        for nic in nics {
            let Some(n) = nets::network_by_id(&o.db, nic.network_id).await? else { continue };
            // Only a real host had its NICs plugged in by the network driver.
            if !o.features_of(h)?.simulated {
                let driver = o.network_driver(&n)?;
                let spec = super::networks::driver_spec(&n, n.dhcp_server.as_deref())?;
                let ns = NicSpec {
                    id: nic.uuid.clone(),
                    mac: nic.mac.clone(),
                    ip: nic.ip().map(|a| a.to_string()),
                    hostname: Some(i.name.clone()),
                };
                let host = h.name.clone();
                blocking(format!("Releasing NIC {}", nic.mac), move || driver.release_nic(&host, &spec, &ns)).await?;
            }
            nets::release_nic(&o.db, nic.id).await?;
        }
        instances::remove(&o.db, i.id, VmState::Error).await?;
        let text = format!(
            "VM {} was being deployed when the management server stopped; host {} does not know it: \
             its deploy is undone",
            i.name, h.name
        );
        tracing::warn!("{text}");
        let ev = Event { kind: "VM.SYNC", level: "INFO", description: text, resource: None }.on(
            "VirtualMachine",
            &i.uuid,
            &i.name,
        );
        events::record_for_account(&o.db, i.account_id, i.domain_id, ev).await?;
        Ok(())
    }
}

/// VMs still there whose deploy job failed: a failed deploy removes its VM, so only a
/// stop of the server (its jobs failed at the next start) leaves one.
async fn unfinished_deploys(orch: &Orchestrator) -> Result<HashSet<i64>, DbError> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT i.id FROM instances i JOIN async_jobs j ON j.instance_id = i.uuid \
         AND j.instance_type = 'VirtualMachine' WHERE i.removed IS NULL AND j.command = 'deployVirtualMachine' \
         AND j.status = 2",
    )
    .fetch_all(orch.db.pool())
    .await?;
    Ok(ids.into_iter().collect())
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
