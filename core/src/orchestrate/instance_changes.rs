//! Changes to existing VMs: scaleVirtualMachine, migrateVirtualMachine,
//! findHostsForMigration, attachIso and detachIso; and the domain definition rebuilt from
//! the database, which these need and so does a start on a host that lost the domain.
//!
//! Each change is recorded first (capacity is checked and taken in the same transaction
//! as a deploy's) and then made on the host; a failed driver call puts the record back.

use crate::cloud::instances::VmState;
use serde_json::{Map, Value};

use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::auth::Caller;
use crate::cloud::infra::{self, HostRow};
use crate::cloud::instances::{self, InstanceRow, Need};
use crate::cloud::networks::{self as nets, NicFilter};
use crate::cloud::offerings::{self, OfferingFilter};
use crate::cloud::storage as pools;
use crate::cloud::templates::{self, TemplateRow};
use crate::cloud::volumes::{self, VolumeFilter};
use crate::jobs::JobSpec;
use crate::plugins::{Disk, DiskBus, DiskDevice, Nic, NicModel, NicSpec, SwitchKind, VmPower, VmSpec};

use super::config_drive::DrivePool;
use super::instances::{blocking, console_spec, simulated_attachment};
use super::networks::spec_with_dhcp;
use super::{Orchestrator, list, no_such, not_yours};

/// The guest device of the CD-ROM drive an ISO goes in. SCSI, because QEMU cannot
/// hot-plug an IDE drive; the data disks are virtio (vdb…), so the name is free.
const ISO_TARGET: &str = "sda";

/// How long a guest may take to shut down before a cold migration powers it off.
const MIGRATE_STOP_TIMEOUT_MS: u32 = 10_000;

impl Orchestrator {
    async fn change_job(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        class: &str,
        uuid: &str,
        work: impl Future<Output = Result<Map<String, Value>, ApiError>> + Send + 'static,
    ) -> Result<Reply, ApiError> {
        let class = format!("org.apache.cloudstack.api.command.{class}");
        let spec = JobSpec { cmd: &class, command: cmd.name, instance: Some(("VirtualMachine", uuid.to_owned())) };
        let job = self.jobs.submit(caller, spec, work).await?;
        Ok(Reply::AsyncJob { job_id: job, id: None })
    }

    async fn host_of(&self, i: &InstanceRow) -> Result<HostRow, ApiError> {
        let uuid = i.host_uuid.clone().ok_or_else(|| ApiError::invalid_param(format!("VM {} has no host", i.name)))?;
        infra::host(&self.db, &uuid).await?.ok_or_else(|| no_such("host", &uuid))
    }

    /// The whole definition of a VM's domain on `host`, from what the database records:
    /// NICs (prepared on that host), root disk, data disks, the ISO if one is in.
    async fn domain_spec(&self, i: &InstanceRow, host: &HostRow) -> Result<VmSpec, ApiError> {
        let features = self.features_of(host)?;
        let cluster = infra::cluster(&self.db, &host.cluster_uuid)
            .await?
            .ok_or_else(|| no_such("cluster", &host.cluster_uuid))?;
        let f = NicFilter { instance_uuid: Some(i.uuid.clone()), ..Default::default() };
        let (mut rows, _) = nets::list_nics(&self.db, &f, None).await?;
        rows.sort_by_key(|n| n.device_id);
        let mut nics = Vec::new();
        for nic in rows {
            let n = nets::network_by_id(&self.db, nic.network_id)
                .await?
                .ok_or_else(|| no_such("network", &nic.network_uuid))?;
            let spec = spec_with_dhcp(&self.db, &n).await?;
            let attachment = if !features.simulated {
                let driver = self.network_driver(&n)?;
                let ns = NicSpec {
                    id: nic.uuid.clone(),
                    mac: nic.mac.clone(),
                    ip: nic.ip().map(|a| a.to_string()),
                    hostname: Some(i.name.clone()),
                };
                let h = host.name.clone();
                let what = format!("Preparing NIC {} of VM {} on host {}", nic.mac, i.name, host.name);
                blocking(what, move || driver.prepare_nic(&h, &spec, &ns)).await?
            } else {
                // As a deploy does: a simulated host plugs nothing in.
                simulated_attachment(&spec)
            };
            nics.push(Nic {
                mac: nic.mac.clone(),
                bridge: attachment.bridge,
                switch: if attachment.openvswitch { SwitchKind::Openvswitch } else { SwitchKind::LinuxBridge },
                vlan: attachment.vlan,
                model: NicModel::Virtio,
                host_device: None,
            });
        }
        let mut disks = Vec::new();
        let mut drive_pool = None;
        if let Some(uuid) = instances::root_volume_uuid(&self.db, i).await?
            && let Some(v) = volumes::volume(&self.db, &uuid).await?
        {
            drive_pool =
                Some(DrivePool { driver: v.pool_driver.clone(), url: v.pool_url.clone(), name: v.pool_name.clone() });
            let (url, path) = (v.pool_url.clone(), v.path.clone());
            let what = format!("Locating the root disk of VM {}", i.name);
            let locator = self.on_driver(&v.pool_driver, what, move |d| d.locate(&url, &path)).await?;
            self.check_locator(&v.pool_driver, &v.pool_name, &v.pool_url, &locator)?;
            disks.push(Disk {
                locator: Some(locator),
                device: DiskDevice::Disk,
                bus: DiskBus::Virtio,
                target: "vda".into(),
                read_only: false,
                boot_order: Some(1),
            });
        }
        disks.extend(self.data_disks(i.id).await?);
        if let Some(iso) = &i.iso_uuid {
            let t = self.zone_iso(iso, i.zone_id).await?;
            disks.push(self.iso_disk(&t).await?);
        }
        if let Some(pool) = &drive_pool {
            disks.extend(self.config_drive_disk(i, pool).await?);
        }
        Ok(VmSpec {
            uuid: i.uuid.clone(),
            name: i.instance_name.clone(),
            vcpus: i.cpus as u32,
            memory_mib: i.memory_mb as u64,
            accel: super::infra::accel(&cluster.accel),
            disks,
            nics,
            console: console_spec(&features, i, host),
        })
    }

    /// Defines (or replaces) a VM's domain on `host` from the database.
    async fn define_on(&self, i: &InstanceRow, host: &HostRow) -> Result<(), ApiError> {
        self.define_without(i, host, None).await
    }

    /// Defines a VM's domain again on its host from the database, without the disk at
    /// guest device `without` (one being detached): how a hypervisor type that cannot
    /// hot-plug disks changes a stopped VM's disks.
    pub(super) async fn redefine(&self, i: &InstanceRow, without: Option<&str>) -> Result<(), ApiError> {
        let now = instances::instance(&self.db, &i.uuid).await?.ok_or_else(|| no_such("virtual machine", &i.uuid))?;
        let host = self.host_of(&now).await?;
        self.define_without(&now, &host, without).await
    }

    async fn define_without(&self, i: &InstanceRow, host: &HostRow, without: Option<&str>) -> Result<(), ApiError> {
        let mut spec = self.domain_spec(i, host).await?;
        if let Some(target) = without {
            spec.disks.retain(|d| d.target != target);
        }
        let hv = self.hypervisor_for(&host.driver)?;
        let uri = host.libvirt_uri.clone();
        let what = format!("Defining VM {} on host {}", i.name, host.name);
        blocking(what, move || hv.create_vm(&uri, &spec)).await
    }

    /// Before a start: a host that lost the domain (libvirt's state reset, or the domain
    /// undefined by hand) gets it defined again from the database.
    pub(super) async fn ensure_defined(&self, i: &InstanceRow) -> Result<(), ApiError> {
        let power = self.on_host(i, "Looking up", |d, u, id| d.power_state(u, id)).await?;
        if power != VmPower::Missing {
            return Ok(());
        }
        let host = self.host_of(i).await?;
        tracing::warn!("host {} does not know VM {}; defining it again", host.name, i.name);
        self.define_on(i, &host).await
    }

    pub(super) async fn scale_vm(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
        offering_id: &str,
    ) -> Result<Reply, ApiError> {
        let i = self.vm_for(caller, id).await?;
        let f = OfferingFilter { uuid: Some(offering_id.to_owned()), ..Default::default() };
        let o = offerings::list_service(&self.db, &f, None)
            .await?
            .0
            .into_iter()
            .next()
            .ok_or_else(|| no_such("service offering", offering_id))?;
        if i.state != VmState::Stopped {
            return Err(ApiError::invalid_param(format!(
                "Cannot scale VM {}: it is {}; only a Stopped VM can be scaled",
                i.name, i.state
            )));
        }
        if o.id == i.offering_id {
            return Err(ApiError::invalid_param(format!("VM {} already has service offering {}", i.name, o.name)));
        }
        let (Some(cpus), Some(cpu_mhz), Some(memory_mb)) = (o.cpu_number, o.cpu_speed, o.memory_mb) else {
            return Err(ApiError::invalid_param(format!(
                "Service offering {} is customized; scaling to customized offerings is not supported yet",
                o.name
            )));
        };
        instances::resize(&self.db, &i, o.id, Need { cpus, cpu_mhz, memory_mb }).await?;
        let (me, who) = (self.clone(), caller.clone());
        let work = async move {
            let redefined = async {
                let now =
                    instances::instance(&me.db, &i.uuid).await?.ok_or_else(|| no_such("virtual machine", &i.uuid))?;
                let host = me.host_of(&now).await?;
                me.define_on(&now, &host).await
            }
            .await;
            if let Err(e) = redefined {
                instances::set_offering(&me.db, &i).await?;
                return Err(e);
            }
            let text = format!(
                "VM {} scaled from {} to {}: {cpus} CPU x {cpu_mhz} MHz, {memory_mb} MB",
                i.name, i.offering_name, o.name
            );
            me.audit(&who, "VM.SCALE", ("VirtualMachine", &i.uuid, &i.name), text).await?;
            me.vm_reply(&who, &i.uuid).await
        };
        self.change_job(caller, cmd, "user.vm.ScaleVMCmd", id, work).await
    }

    /// The destination of a migration: another Up host of the VM's cluster that reaches
    /// its disks.
    async fn migration_target(&self, i: &InstanceRow, host_id: &str) -> Result<(HostRow, HostRow), ApiError> {
        let from = self.host_of(i).await?;
        let to = infra::host(&self.db, host_id).await?.ok_or_else(|| no_such("host", host_id))?;
        if to.id == from.id {
            return Err(ApiError::invalid_param(format!("VM {} already runs on host {}", i.name, to.name)));
        }
        if to.cluster_id != from.cluster_id {
            return Err(ApiError::invalid_param(format!(
                "Host {} is in cluster {}, VM {} in cluster {}: a VM migrates within its cluster",
                to.name, to.cluster_name, i.name, from.cluster_name
            )));
        }
        if to.state != "Up" || to.resource_state != "Enabled" {
            return Err(ApiError::invalid_param(format!(
                "Host {} is {} and {}; a VM migrates to an Up and Enabled host",
                to.name, to.state, to.resource_state
            )));
        }
        let f = VolumeFilter { instance_id: Some(i.id), ..Default::default() };
        let (vols, _) = volumes::list_volumes(&self.db, &Default::default(), &f, None).await?;
        for v in vols {
            let pool =
                pools::pool(&self.db, &v.pool_uuid).await?.ok_or_else(|| no_such("storage pool", &v.pool_uuid))?;
            if pool.host_id.is_some_and(|h| h != to.id) {
                return Err(ApiError::invalid_param(format!(
                    "Volume {} of VM {} is on storage pool {}, local to host {}",
                    v.name, i.name, pool.name, from.name
                )));
            }
        }
        Ok((from, to))
    }

    pub(super) async fn migrate_vm(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        vm_id: &str,
        host_id: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let i = self.vm_for(caller, vm_id).await?;
        if i.state != VmState::Running && i.state != VmState::Stopped {
            return Err(Self::wrong_state(&i, "migrate"));
        }
        let host_id = match host_id {
            Some(h) => h.to_owned(),
            None => self.pick_migration_host(&i).await?,
        };
        let (from, to) = self.migration_target(&i, &host_id).await?;
        instances::begin_move(&self.db, &i, to.id).await?;
        let (me, who) = (self.clone(), caller.clone());
        let work = async move {
            let moved = if i.state == VmState::Running {
                me.move_by_restart(&i, &from, &to).await
            } else {
                me.move_definition(&i, &from, &to).await
            };
            if let Err(e) = moved {
                instances::end_move(&me.db, i.id, from.id, i.state).await?;
                return Err(e);
            }
            instances::end_move(&me.db, i.id, to.id, i.state).await?;
            let text = format!("VM {} migrated from host {} to host {}", i.name, from.name, to.name);
            me.audit(&who, "VM.MIGRATE", ("VirtualMachine", &i.uuid, &i.name), text).await?;
            me.vm_reply(&who, &i.uuid).await
        };
        self.change_job(caller, cmd, "admin.vm.MigrateVMCmd", vm_id, work).await
    }

    /// With no hostid: the host of the VM's cluster with the most free memory that fits it.
    async fn pick_migration_host(&self, i: &InstanceRow) -> Result<String, ApiError> {
        let from = self.host_of(i).await?;
        let need = Need { cpus: i.cpus, cpu_mhz: i.cpu_mhz, memory_mb: i.memory_mb };
        let hosts = instances::cluster_hosts(&self.db, from.cluster_id, from.id).await?;
        let best = hosts
            .iter()
            .filter(|h| i.state != VmState::Running || need.fits(h))
            .max_by_key(|h| (h.free_mb(), -h.id))
            .ok_or_else(|| {
                ApiError::insufficient_capacity(format!(
                    "No other Up host of cluster {} has room for VM {}",
                    from.cluster_name, i.name
                ))
            })?;
        Ok(best.uuid.clone())
    }

    /// A Stopped VM moves by its definition: undefined on the source, defined on the
    /// destination (back on the source if that fails).
    async fn move_definition(&self, i: &InstanceRow, from: &HostRow, to: &HostRow) -> Result<(), ApiError> {
        self.undefine_on(i, from).await?;
        if let Err(e) = self.define_on(i, to).await {
            if let Err(back) = self.define_on(i, from).await {
                tracing::error!("VM {} is defined on neither host: {}", i.name, back.text);
            }
            return Err(e);
        }
        self.release_nics_on(i, from).await;
        Ok(())
    }

    /// A Running VM moved without live migration: the hypervisor interface has no
    /// migrate call (and the Simulator could not do one), so the guest is shut down on the
    /// source, undefined there, then defined and started on the destination. It is never
    /// up on both hosts at once: two guests writing one disk would corrupt it. A failure
    /// brings it back up on the source.
    async fn move_by_restart(&self, i: &InstanceRow, from: &HostRow, to: &HostRow) -> Result<(), ApiError> {
        let stop = |host: &HostRow| {
            let (hv, uri, id) = (self.hypervisor_for(&host.driver), host.libvirt_uri.clone(), i.uuid.clone());
            let what = format!("Stopping VM {} on host {}", i.name, host.name);
            async move {
                let hv = hv?;
                blocking(what, move || hv.stop_vm(&uri, &id, MIGRATE_STOP_TIMEOUT_MS)).await
            }
        };
        stop(from).await?;
        let moved = async {
            self.undefine_on(i, from).await?;
            self.define_on(i, to).await?;
            self.start_on(i, to).await
        }
        .await;
        if let Err(e) = moved {
            let back = async {
                self.undefine_on(i, to).await?;
                self.define_on(i, from).await?;
                self.start_on(i, from).await
            }
            .await;
            if let Err(b) = back {
                tracing::error!("VM {} could not be started again on host {}: {}", i.name, from.name, b.text);
            }
            return Err(e);
        }
        self.release_nics_on(i, from).await;
        Ok(())
    }

    async fn undefine_on(&self, i: &InstanceRow, host: &HostRow) -> Result<(), ApiError> {
        let (hv, uri, id) = (self.hypervisor_for(&host.driver)?, host.libvirt_uri.clone(), i.uuid.clone());
        blocking(format!("Removing VM {} from host {}", i.name, host.name), move || hv.destroy_vm(&uri, &id)).await
    }

    async fn start_on(&self, i: &InstanceRow, host: &HostRow) -> Result<(), ApiError> {
        let (hv, uri, id) = (self.hypervisor_for(&host.driver)?, host.libvirt_uri.clone(), i.uuid.clone());
        blocking(format!("Starting VM {} on host {}", i.name, host.name), move || hv.start_vm(&uri, &id)).await
    }

    /// Releases what preparing a VM's NICs made on a host it left; failures are only logged.
    async fn release_nics_on(&self, i: &InstanceRow, host: &HostRow) {
        // Only a real host had NICs plugged in; a host whose driver is gone is left alone.
        if host.libvirt_uri.is_empty() || self.features_of(host).is_ok_and(|f| f.simulated) {
            return;
        }
        let released = async {
            let f = NicFilter { instance_uuid: Some(i.uuid.clone()), ..Default::default() };
            let (rows, _) = nets::list_nics(&self.db, &f, None).await?;
            for nic in rows {
                let Some(n) = nets::network_by_id(&self.db, nic.network_id).await? else { continue };
                let driver = self.network_driver(&n)?;
                let spec = spec_with_dhcp(&self.db, &n).await?;
                let ns = NicSpec {
                    id: nic.uuid.clone(),
                    mac: nic.mac.clone(),
                    ip: nic.ip().map(|a| a.to_string()),
                    hostname: Some(i.name.clone()),
                };
                let h = host.name.clone();
                blocking(format!("Releasing NIC {}", nic.mac), move || driver.release_nic(&h, &spec, &ns)).await?;
            }
            Ok::<_, ApiError>(())
        }
        .await;
        if let Err(e) = released {
            tracing::error!("{}", e.text);
        }
    }

    /// findHostsForMigration: the other Up hosts of the VM's cluster, each saying whether
    /// the VM fits there now.
    pub(super) async fn hosts_for_migration(&self, caller: &Caller, vm_id: &str) -> Result<Reply, ApiError> {
        let i = self.vm_for(caller, vm_id).await?;
        let from = self.host_of(&i).await?;
        let need = Need { cpus: i.cpus, cpu_mhz: i.cpu_mhz, memory_mb: i.memory_mb };
        let mut items = Vec::new();
        for c in instances::cluster_hosts(&self.db, from.cluster_id, from.id).await? {
            let Some(h) = infra::host(&self.db, &c.uuid).await? else { continue };
            let mut view = self.host_view(&h);
            view.insert("suitableformigration".into(), (i.state != VmState::Running || need.fits(&c)).into());
            view.insert("requiresStorageMotion".into(), false.into());
            items.push(view);
        }
        let total = items.len() as i64;
        Ok(list("host", total, items))
    }

    /// The ISO `id` as registered in the zone.
    async fn zone_iso(&self, id: &str, zone_id: i64) -> Result<TemplateRow, ApiError> {
        let rows = templates::by_uuid(&self.db, id, true).await?;
        let first = rows.first().ok_or_else(|| no_such("ISO", id))?;
        rows.iter()
            .find(|t| t.zone_id == zone_id)
            .cloned()
            .ok_or_else(|| ApiError::invalid_param(format!("ISO {} is not registered in the VM's zone", first.name)))
    }

    /// The CD-ROM drive holding an ISO; the host reads it from the image store.
    async fn iso_disk(&self, t: &TemplateRow) -> Result<Disk, ApiError> {
        let path = t
            .path
            .clone()
            .ok_or_else(|| ApiError::invalid_param(format!("ISO {} is not ready ({})", t.name, t.status)))?;
        let url = t.store_url.clone();
        let what = format!("Locating ISO {}", t.name);
        let locator = self.on_driver(&t.store_driver, what, move |d| d.locate(&url, &path)).await?;
        self.check_locator(&t.store_driver, &t.store_url, &t.store_url, &locator)?;
        Ok(Disk {
            locator: Some(locator),
            device: DiskDevice::Cdrom,
            bus: DiskBus::Scsi,
            target: ISO_TARGET.into(),
            read_only: true,
            boot_order: None,
        })
    }

    /// Puts the ISO change on the host: hot-plugged where the hypervisor type can hot-plug
    /// disks, else the domain is defined again with (or without) the drive (a running
    /// domain then sees it from its next start).
    async fn apply_iso(&self, i: &InstanceRow, disk: Option<Disk>) -> Result<(), ApiError> {
        if self.features_of_vm(i)?.hot_plug_disks {
            match disk {
                Some(d) => self.on_host(i, "Inserting the ISO into", move |h, u, id| h.attach_disk(u, id, &d)).await,
                None => self.on_host(i, "Ejecting the ISO from", |h, u, id| h.detach_disk(u, id, ISO_TARGET)).await,
            }
        } else {
            self.redefine(i, None).await
        }
    }

    pub(super) async fn attach_iso(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
        vm_id: &str,
    ) -> Result<Reply, ApiError> {
        let i = self.vm_for(caller, vm_id).await?;
        let rows = templates::by_uuid(&self.db, id, true).await?;
        let first = rows.first().ok_or_else(|| no_such("ISO", id))?;
        if first.is_public == 0 && !caller.can_reach(&first) {
            return Err(not_yours("ISO", id));
        }
        if i.host_driver.is_some() {
            Self::require(self.features_of_vm(&i)?.boot_iso, &i.hypervisor, "boot from an ISO")?;
        }
        let t = self.zone_iso(id, i.zone_id).await?;
        if t.state != "Ready" {
            return Err(ApiError::invalid_param(format!("ISO {} is not ready yet ({})", t.name, t.status)));
        }
        if i.state != VmState::Running && i.state != VmState::Stopped {
            return Err(Self::wrong_state(&i, "attach an ISO to"));
        }
        if let Some(name) = &i.iso_name {
            return Err(ApiError::invalid_param(format!(
                "VM {} already has ISO {name} attached; detach it first",
                i.name
            )));
        }
        if !instances::set_iso(&self.db, i.id, Some(t.id), None).await? {
            return Err(ApiError::invalid_param(format!("VM {} already has an ISO attached; detach it first", i.name)));
        }
        let (me, who) = (self.clone(), caller.clone());
        let work = async move {
            let applied = async {
                let disk = me.iso_disk(&t).await?;
                me.apply_iso(&i, Some(disk)).await
            }
            .await;
            if let Err(e) = applied {
                instances::set_iso(&me.db, i.id, None, Some(t.id)).await?;
                return Err(e);
            }
            let text = format!("ISO {} attached to VM {}", t.name, i.name);
            me.audit(&who, "ISO.ATTACH", ("VirtualMachine", &i.uuid, &i.name), text).await?;
            me.vm_reply(&who, &i.uuid).await
        };
        self.change_job(caller, cmd, "user.iso.AttachIsoCmd", vm_id, work).await
    }

    pub(super) async fn detach_iso(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        vm_id: &str,
    ) -> Result<Reply, ApiError> {
        let i = self.vm_for(caller, vm_id).await?;
        let (Some(iso_id), Some(iso_name)) = (i.iso_id, i.iso_name.clone()) else {
            return Err(ApiError::invalid_param(format!("VM {} has no ISO attached", i.name)));
        };
        if i.state != VmState::Running && i.state != VmState::Stopped {
            return Err(Self::wrong_state(&i, "detach an ISO from"));
        }
        if !instances::set_iso(&self.db, i.id, None, Some(iso_id)).await? {
            return Err(ApiError::invalid_param(format!("VM {} has no ISO attached", i.name)));
        }
        let (me, who) = (self.clone(), caller.clone());
        let work = async move {
            if let Err(e) = me.apply_iso(&i, None).await {
                instances::set_iso(&me.db, i.id, Some(iso_id), None).await?;
                return Err(e);
            }
            let text = format!("ISO {iso_name} detached from VM {}", i.name);
            me.audit(&who, "ISO.DETACH", ("VirtualMachine", &i.uuid, &i.name), text).await?;
            me.vm_reply(&who, &i.uuid).await
        };
        self.change_job(caller, cmd, "user.iso.DetachIsoCmd", vm_id, work).await
    }
}
