//! Data volumes on virtual machines: attachVolume and detachVolume, and the disks an
//! instance's domain definition gets for them.
//!
//! An attach is recorded before the hypervisor is asked (the volume is Attaching
//! meanwhile), so two attaches never take one volume or one device; a failed driver call
//! takes the record back. A Running VM gets the disk hot-plugged; a Stopped one gets it in
//! its persistent definition, there from its next start.

use crate::cloud::instances::VmState;
use serde_json::{Map, Value};

use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::auth::Caller;
use crate::cloud::attachments::{self, AttachError, MAX_DEVICE};
use crate::cloud::infra;
use crate::cloud::instances::InstanceRow;
use crate::cloud::storage as pools;
use crate::cloud::volumes::{self, VolumeFilter, VolumeRow};
use crate::jobs::JobSpec;
use crate::plugins::{Disk, DiskBus, DiskDevice};

use super::volumes::{volume_view, wrap};
use super::{Orchestrator, no_such};

impl From<AttachError> for ApiError {
    fn from(e: AttachError) -> Self {
        match e {
            AttachError::Db(e) => e.into(),
            AttachError::Busy => ApiError::in_use("The volume is busy or already attached; retry when it is Ready"),
            AttachError::DeviceTaken(d) => ApiError::in_use(format!("Device {d} of the VM is taken by another volume")),
            AttachError::Full => ApiError::invalid_param(format!(
                "The VM has no free device left: it takes at most {MAX_DEVICE} data disks"
            )),
        }
    }
}

/// How a disk change reaches a VM's host, by what its hypervisor type can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiskChange {
    /// Simulated hosts run nothing: the change is only recorded, as their NICs are.
    Record,
    /// The driver plugs the disk in or out (live, or in a stopped VM's definition).
    Plug,
    /// A stopped VM of a type without disk hot-plug: its domain is defined again.
    Redefine,
}

impl Orchestrator {
    /// How a disk change reaches VM `i` now; 431 for a running VM whose hypervisor type
    /// cannot hot-plug disks.
    fn disk_change(&self, i: &InstanceRow) -> Result<DiskChange, ApiError> {
        let features = self.features_of_vm(i)?;
        Ok(if features.simulated {
            DiskChange::Record
        } else if features.hot_plug_disks {
            DiskChange::Plug
        } else {
            Self::require(i.state != VmState::Running, &i.hypervisor, "hot-plug disks")?;
            DiskChange::Redefine
        })
    }
}

impl Orchestrator {
    /// The disk of each data volume attached to a VM, for its domain definition.
    pub(super) async fn data_disks(&self, vm_id: i64) -> Result<Vec<Disk>, ApiError> {
        let mut out = Vec::new();
        for v in self.attached_volumes(vm_id).await? {
            out.push(self.data_disk(&v).await?);
        }
        Ok(out)
    }

    async fn attached_volumes(&self, vm_id: i64) -> Result<Vec<VolumeRow>, ApiError> {
        let f = VolumeFilter { instance_id: Some(vm_id), volume_type: Some("DATADISK".into()), ..Default::default() };
        let (mut rows, _) = volumes::list_volumes(&self.db, &Default::default(), &f, None).await?;
        rows.sort_by_key(|v| v.device_id);
        Ok(rows)
    }

    async fn data_disk(&self, v: &VolumeRow) -> Result<Disk, ApiError> {
        let (url, path) = (v.pool_url.clone(), v.path.clone());
        let locator = self
            .on_driver(&v.pool_driver, format!("Locating volume {}", v.name), move |d| d.locate(&url, &path))
            .await?;
        self.check_locator(&v.pool_driver, &v.pool_name, &v.pool_url, &locator)?;
        Ok(Disk {
            locator: Some(locator),
            device: DiskDevice::Disk,
            bus: DiskBus::Virtio,
            target: attachments::target(v.device_id.unwrap_or(1)),
            read_only: false,
            boot_order: None,
        })
    }

    /// Refuses a volume whose pool the VM's host cannot reach.
    async fn check_reach(&self, v: &VolumeRow, i: &InstanceRow) -> Result<(), ApiError> {
        if v.zone_id != i.zone_id {
            return Err(ApiError::invalid_param(format!(
                "Volume {} is in zone {}, VM {} in zone {}",
                v.name, v.zone_name, i.name, i.zone_name
            )));
        }
        let pool = pools::pool(&self.db, &v.pool_uuid).await?.ok_or_else(|| no_such("storage pool", &v.pool_uuid))?;
        let host = match &i.host_uuid {
            Some(h) => infra::host(&self.db, h).await?,
            None => None,
        };
        let host = host.ok_or_else(|| ApiError::invalid_param(format!("VM {} has no host", i.name)))?;
        let cluster_ok = pool.cluster_uuid.as_ref().is_none_or(|c| *c == host.cluster_uuid);
        let host_ok = pool.host_id.is_none_or(|h| h == host.id);
        if !cluster_ok || !host_ok {
            return Err(ApiError::invalid_param(format!(
                "Volume {} is on storage pool {}, which host {} of VM {} cannot reach",
                v.name, pool.name, host.name, i.name
            )));
        }
        Ok(())
    }

    async fn volume_job(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        class: &str,
        uuid: &str,
        work: impl Future<Output = Result<Map<String, Value>, ApiError>> + Send + 'static,
    ) -> Result<Reply, ApiError> {
        let class = format!("org.apache.cloudstack.api.command.user.volume.{class}");
        let spec = JobSpec { cmd: &class, command: cmd.name, instance: Some(("Volume", uuid.to_owned())) };
        let job = self.jobs.submit(caller, spec, work).await?;
        Ok(Reply::AsyncJob { job_id: job, id: None })
    }

    async fn volume_reply(&self, uuid: &str) -> Result<Map<String, Value>, ApiError> {
        let v = volumes::volume(&self.db, uuid).await?.ok_or_else(|| no_such("volume", uuid))?;
        Ok(wrap("volume", volume_view(&v)))
    }

    pub(super) async fn attach_volume(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
        vm_id: &str,
        device: Option<i64>,
    ) -> Result<Reply, ApiError> {
        let v = self.volume_for(caller, id).await?;
        let i = self.vm_for(caller, vm_id).await?;
        if v.account_id != i.account_id {
            return Err(ApiError::permission_denied(format!(
                "Volume {} belongs to account {}, VM {} to account {}: a volume attaches only to its own account's VMs",
                v.name, v.account_name, i.name, i.account_name
            )));
        }
        if v.volume_type == "ROOT" {
            return Err(ApiError::invalid_param(format!("Volume {} is a root disk; only data disks attach", v.name)));
        }
        if let Some(vm) = &v.vm_name {
            return Err(ApiError::in_use(format!("Volume {} is already attached to VM {vm}", v.name)));
        }
        if v.state != "Ready" {
            return Err(ApiError::in_use(format!("Volume {} is {}; it attaches when it is Ready", v.name, v.state)));
        }
        if i.state != VmState::Running && i.state != VmState::Stopped {
            return Err(Self::wrong_state(&i, "attach a volume to"));
        }
        if let Some(d) = device
            && !(1..=MAX_DEVICE).contains(&d)
        {
            return Err(ApiError::invalid_param(format!(
                "Invalid value of parameter deviceid: {d}; data disks are devices 1 to {MAX_DEVICE} (0 is the root disk)"
            )));
        }
        self.check_reach(&v, &i).await?;
        let change = self.disk_change(&i)?;
        let device = attachments::begin(&self.db, v.id, i.id, device).await?;
        let (me, who, vol) = (self.clone(), caller.clone(), v.clone());
        let work = async move {
            let plugged = async {
                match change {
                    DiskChange::Record => {}
                    DiskChange::Plug => {
                        let mut disk_vol = vol.clone();
                        disk_vol.device_id = Some(device);
                        let disk = me.data_disk(&disk_vol).await?;
                        let what = format!("Attaching volume {} to", vol.name);
                        me.on_host(&i, &what, move |d, u, id| d.attach_disk(u, id, &disk)).await?;
                    }
                    // The volume is recorded as the VM's already, so the definition has it.
                    DiskChange::Redefine => me.redefine(&i, None).await?,
                }
                Ok::<_, ApiError>(())
            }
            .await;
            if let Err(e) = plugged {
                attachments::finish(&me.db, vol.id, false).await?;
                return Err(e);
            }
            attachments::finish(&me.db, vol.id, true).await?;
            let text = format!("Volume {} attached to VM {} as {}", vol.name, i.name, attachments::target(device));
            me.audit(&who, "VOLUME.ATTACH", ("Volume", &vol.uuid, &vol.name), text).await?;
            me.volume_reply(&vol.uuid).await
        };
        let submitted = self.volume_job(caller, cmd, "AttachVolumeCmd", &v.uuid, work).await;
        if submitted.is_err() {
            attachments::finish(&self.db, v.id, false).await?;
        }
        submitted
    }

    pub(super) async fn detach_volume(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: Option<&str>,
        vm_id: Option<&str>,
        device: Option<i64>,
    ) -> Result<Reply, ApiError> {
        let v = match (id, vm_id, device) {
            (Some(id), _, _) => self.volume_for(caller, id).await?,
            (None, Some(vm_id), Some(d)) => {
                let i = self.vm_for(caller, vm_id).await?;
                let f = VolumeFilter { instance_id: Some(i.id), ..Default::default() };
                let (rows, _) = volumes::list_volumes(&self.db, &Default::default(), &f, None).await?;
                rows.into_iter().find(|v| v.device_id == Some(d)).ok_or_else(|| {
                    ApiError::invalid_param(format!("VM {} has no volume attached as device {d}", i.name))
                })?
            }
            _ => {
                return Err(ApiError::invalid_param(
                    "Give the volume's id, or virtualmachineid and deviceid of the attached volume",
                ));
            }
        };
        if v.volume_type == "ROOT" {
            return Err(ApiError::invalid_param(format!(
                "Volume {} is the root disk of VM {}; it cannot be detached",
                v.name,
                v.vm_name.as_deref().unwrap_or("?")
            )));
        }
        let (Some(vm_uuid), Some(device)) = (v.vm_uuid.clone(), v.device_id) else {
            return Err(ApiError::invalid_param(format!("Volume {} is not attached to a VM", v.name)));
        };
        let i = self.vm_for(caller, &vm_uuid).await?;
        if i.state != VmState::Running && i.state != VmState::Stopped && i.state != VmState::Destroyed {
            return Err(Self::wrong_state(&i, "detach a volume from"));
        }
        let change = self.disk_change(&i)?;
        if !volumes::transition(&self.db, v.id, "Ready", "Detaching").await? {
            return Err(ApiError::in_use(format!("Volume {} is busy; retry when it is Ready", v.name)));
        }
        let (me, who, vol) = (self.clone(), caller.clone(), v.clone());
        let work = async move {
            // A Destroyed VM's domain is powered off but still defined: take the disk
            // out of its definition too, or a recovered VM would come back with it.
            let target = attachments::target(device);
            let unplugged = match change {
                DiskChange::Record => Ok(()),
                DiskChange::Plug => {
                    let what = format!("Detaching volume {} from", vol.name);
                    me.on_host(&i, &what, move |d, u, id| d.detach_disk(u, id, &target)).await
                }
                DiskChange::Redefine => me.redefine(&i, Some(&target)).await,
            };
            if let Err(e) = unplugged {
                attachments::finish(&me.db, vol.id, true).await?;
                return Err(e);
            }
            attachments::finish(&me.db, vol.id, false).await?;
            let text = format!("Volume {} detached from VM {}", vol.name, i.name);
            me.audit(&who, "VOLUME.DETACH", ("Volume", &vol.uuid, &vol.name), text).await?;
            me.volume_reply(&vol.uuid).await
        };
        let submitted = self.volume_job(caller, cmd, "DetachVolumeCmd", &v.uuid, work).await;
        if submitted.is_err() {
            attachments::finish(&self.db, v.id, true).await?;
        }
        submitted
    }
}
