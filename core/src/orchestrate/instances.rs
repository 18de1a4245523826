//! Virtual machines: deploy, start, stop, reboot, destroy, recover, expunge, list.
//!
//! A deploy places the instance on a host synchronously (`cloud::instances::place`, so a
//! full zone answers 533 at once and concurrent deploys never over-commit a host), then
//! builds it in an async job: NICs, the root disk on primary storage, the domain. Any
//! failure undoes what the job made and leaves the instance removed in state Error.

use crate::cloud::instances::VmState;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::{Map, Value, json};

use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{DeployRequest, InstanceQuery, InstanceRequest};
use crate::auth::{Caller, RoleType};
use crate::cloud::infra::{self, ClusterRow, HostRow};
use crate::cloud::instances::{self, InstanceFilter, InstanceRow, Need, NewInstance, PlaceError};
use crate::cloud::networks::{
    self as nets, NetworkFilter, NetworkRow, NewNic, NicFilter, NicRow, int_to_ip, prefix_mask,
};
use crate::cloud::offerings::{self, OfferingFilter};
use crate::cloud::storage::{self as pools, PoolRow, StorageFilter};
use crate::cloud::templates::TemplateRow;
use crate::cloud::volumes::{self, NewVolume};
use crate::db::{DbError, format_time, new_uuid};
use crate::jobs::JobSpec;
use crate::plugins::{
    Attachment, ConsoleSpec, Disk, DiskBus, DiskDevice, HypervisorDriver, HypervisorFeatures, NetworkDriver,
    NetworkSpec, Nic, NicModel, NicSpec, PluginError, SwitchKind, VmSpec,
};

use super::config_drive::DrivePool;
use super::networks::spec_with_dhcp;
use super::volumes::{driver_failure, wrap};
use super::{Orchestrator, list, no_such, not_yours, views};
use crate::cloud::guest_access as access;

const GIB: i64 = 1 << 30;
/// The size asked for when a volume is only looked for by name (see `drop_unfinished_volume`).
const MIB: u64 = 1 << 20;

/// How long a guest may take to shut down before it is powered off.
const STOP_TIMEOUT_MS: u32 = 10_000;

impl From<PlaceError> for ApiError {
    fn from(e: PlaceError) -> Self {
        match e {
            PlaceError::Db(e) => e.into(),
            PlaceError::NoHost(t) | PlaceError::NoRoom(t) => ApiError::insufficient_capacity(t),
            PlaceError::Busy(_) => ApiError::in_use(e.to_string()),
        }
    }
}

/// A host name as CloudStack accepts it for a VM: letters, digits and hyphens, 1-63
/// characters, no hyphen at either end, not only digits.
fn check_hostname(name: &str) -> Result<(), ApiError> {
    let ok = (1..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.chars().all(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_param(format!(
            "Invalid name {name:?}: a VM name is a host name of 1-63 letters, digits and hyphens, \
             not starting or ending with a hyphen"
        )))
    }
}

/// Where a KVM guest's serial console is written on its host: libvirt's own log folder
/// exists on every libvirt host, local or remote; the uuid keeps a reused name from
/// showing an older guest's output.
pub(super) fn serial_log(vm: &InstanceRow) -> String {
    format!("/var/log/libvirt/qemu/{}-{}.serial.log", vm.instance_name, vm.uuid)
}

/// The consoles a VM gets, as its hypervisor type offers them.
pub(super) fn console_spec(features: &HypervisorFeatures, vm: &InstanceRow, host: &HostRow) -> ConsoleSpec {
    ConsoleSpec {
        serial_log: features.serial_log.then(|| serial_log(vm)),
        vnc_listen: features.vnc_console.then(|| host.ip_address.clone()),
    }
}

/// A NIC on a simulated host, where nothing is plugged in: described on the physical
/// network's bridge, tagged when the network has a VLAN.
pub(super) fn simulated_attachment(spec: &NetworkSpec) -> Attachment {
    Attachment { bridge: spec.physical.clone(), openvswitch: spec.vlan.is_some(), vlan: spec.vlan }
}

/// What a deploy job made so far, to undo on failure.
#[derive(Default)]
struct Made {
    /// (NIC id, network spec, NIC spec, driver that prepared it on the host).
    nics: Vec<(i64, NetworkSpec, NicSpec, Option<NetworkDriver>)>,
    /// The root volume's file: (pool, path), and its uuid once recorded.
    volume: Option<(PoolRow, String, Option<String>)>,
    domain: bool,
}

/// Everything a deploy job needs.
struct Build {
    vm: InstanceRow,
    host: HostRow,
    cluster: ClusterRow,
    template: TemplateRow,
    networks: Vec<NetworkRow>,
    ip: Option<Ipv4Addr>,
    root_size: i64,
    /// The service offering's storage tags: the root disk's pool carries them all.
    storage_tags: Option<String>,
    start: bool,
}

/// The lock that serialises copying one template to one pool.
fn install_gate(template_id: i64, pool_id: i64) -> Arc<tokio::sync::Mutex<()>> {
    type Gates = HashMap<(i64, i64), Arc<tokio::sync::Mutex<()>>>;
    static GATES: LazyLock<Mutex<Gates>> = LazyLock::new(Default::default);
    let mut gates = GATES.lock().unwrap_or_else(|e| e.into_inner());
    gates.entry((template_id, pool_id)).or_default().clone()
}

/// Runs one blocking driver call off the async runtime.
pub(super) async fn blocking<T: Send + 'static>(
    what: String,
    call: impl FnOnce() -> Result<T, PluginError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || call().map_err(|e| driver_failure(what, e)))
        .await
        .map_err(|e| ApiError::internal(format!("a driver call crashed: {e}")))?
}

impl Orchestrator {
    pub(super) async fn execute_instance(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        request: InstanceRequest,
    ) -> Result<Reply, ApiError> {
        use InstanceRequest::*;
        match request {
            Deploy(r) => Box::pin(self.deploy_vm(caller, cmd, r)).await,
            Start { id } => Box::pin(self.start_vm(caller, cmd, &id)).await,
            Stop { id, forced } => Box::pin(self.stop_vm(caller, cmd, &id, forced)).await,
            Reboot { id, forced } => Box::pin(self.reboot_vm(caller, cmd, &id, forced)).await,
            Destroy { id, expunge } => Box::pin(self.destroy_vm(caller, cmd, &id, expunge)).await,
            Expunge { id } => Box::pin(self.expunge_vm(caller, cmd, &id)).await,
            Recover { id } => Box::pin(self.recover_vm(caller, cmd, &id)).await,
            List(q) => Box::pin(self.list_vms(caller, q)).await,
            AttachVolume { id, vm_id, device_id } => {
                Box::pin(self.attach_volume(caller, cmd, &id, &vm_id, device_id)).await
            }
            DetachVolume { id, vm_id, device_id } => {
                Box::pin(self.detach_volume(caller, cmd, id.as_deref(), vm_id.as_deref(), device_id)).await
            }
            ListAddressing(q) => Box::pin(self.list_addressing(caller, q)).await,
            Scale { id, offering_id } => Box::pin(self.scale_vm(caller, cmd, &id, &offering_id)).await,
            Migrate { vm_id, host_id } => Box::pin(self.migrate_vm(caller, cmd, &vm_id, host_id.as_deref())).await,
            HostsForMigration { vm_id } => Box::pin(self.hosts_for_migration(caller, &vm_id)).await,
            AttachIso { id, vm_id } => Box::pin(self.attach_iso(caller, cmd, &id, &vm_id)).await,
            DetachIso { vm_id } => Box::pin(self.detach_iso(caller, cmd, &vm_id)).await,
        }
    }

    /// An instance the caller may act on.
    pub(super) async fn vm_for(&self, caller: &Caller, id: &str) -> Result<InstanceRow, ApiError> {
        let i = instances::instance(&self.db, id).await?.ok_or_else(|| no_such("virtual machine", id))?;
        if !caller.can_reach(&i) {
            return Err(not_yours("virtual machine", id));
        }
        Ok(i)
    }

    pub(super) fn hypervisor_for(&self, driver: &str) -> Result<HypervisorDriver, ApiError> {
        self.plugins.hypervisor(driver).map_err(|e| ApiError::unavailable(e.to_string()))
    }

    pub(super) async fn vm_reply(&self, caller: &Caller, uuid: &str) -> Result<Map<String, Value>, ApiError> {
        let i = instances::instance(&self.db, uuid).await?.ok_or_else(|| no_such("virtual machine", uuid))?;
        Ok(wrap("virtualmachine", self.vm_view(caller, &i).await?))
    }

    pub(super) async fn vm_view(&self, caller: &Caller, i: &InstanceRow) -> Result<Map<String, Value>, ApiError> {
        let f = NicFilter { instance_uuid: Some(i.uuid.clone()), ..Default::default() };
        let (nics, _) = nets::list_nics(&self.db, &f, None).await?;
        let keys: Vec<String> = access::instance_keys(&self.db, &[i.id]).await?.into_iter().map(|k| k.1).collect();
        let mut view = vm_view(caller, i, &nics, &keys);
        let groups = self.instance_group_views(&[i.id]).await?.remove(&i.id).unwrap_or_default();
        view.insert("securitygroup".into(), Value::Array(groups));
        Ok(view)
    }

    async fn vm_job(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        class: &str,
        uuid: &str,
        work: impl Future<Output = Result<Map<String, Value>, ApiError>> + Send + 'static,
    ) -> Result<Reply, ApiError> {
        let class = format!("org.apache.cloudstack.api.command.user.vm.{class}");
        let spec = JobSpec { cmd: &class, command: cmd.name, instance: Some(("VirtualMachine", uuid.to_owned())) };
        let job = self.jobs.submit(caller, spec, work).await?;
        Ok(Reply::AsyncJob { job_id: job, id: Some(uuid.to_owned()) })
    }

    /// The networks a new VM gets: those named, or the zone's first one the caller may use.
    async fn deploy_networks(
        &self,
        caller: &Caller,
        zone_id: i64,
        zone_name: &str,
        ids: &[String],
    ) -> Result<Vec<NetworkRow>, ApiError> {
        let mut out = Vec::new();
        for id in ids {
            let n = nets::network(&self.db, id).await?.ok_or_else(|| no_such("network", id))?;
            if !self.may_use(caller, &n) {
                return Err(not_yours("network", id));
            }
            if n.zone_id != zone_id {
                return Err(ApiError::invalid_param(format!("Network {} is not in zone {zone_name}", n.name)));
            }
            if out.iter().any(|o: &NetworkRow| o.id == n.id) {
                return Err(ApiError::invalid_param(format!("Network {} is given twice", n.name)));
            }
            out.push(n);
        }
        if out.is_empty() {
            let f = NetworkFilter { zone_id: Some(zone_id), ..Default::default() };
            let (all, _) = nets::list_networks(&self.db, &Default::default(), None, &f, None).await?;
            let first = all.into_iter().find(|n| self.may_use(caller, n)).ok_or_else(|| {
                ApiError::invalid_param(format!(
                    "Zone {zone_name} has no network you may use: create one, or give networkids"
                ))
            })?;
            out.push(first);
        }
        Ok(out)
    }

    async fn deploy_vm(&self, caller: &Caller, cmd: &'static Command, r: DeployRequest) -> Result<Reply, ApiError> {
        let zone = infra::zone(&self.db, &r.zone_id).await?.ok_or_else(|| no_such("zone", &r.zone_id))?;
        if zone.allocation_state == "Disabled" && caller.role != RoleType::Admin {
            return Err(ApiError::permission_denied(format!(
                "Cannot perform this operation, zone {} is currently disabled",
                zone.name
            )));
        }
        let f = OfferingFilter { uuid: Some(r.service_offering_id.clone()), ..Default::default() };
        let offering = offerings::list_service(&self.db, &f, None)
            .await?
            .0
            .into_iter()
            .next()
            .ok_or_else(|| no_such("service offering", &r.service_offering_id))?;
        let (Some(cpus), Some(cpu_mhz), Some(memory_mb)) =
            (offering.cpu_number, offering.cpu_speed, offering.memory_mb)
        else {
            return Err(ApiError::invalid_param(format!(
                "Service offering {} is customized; deploying with customized offerings is not supported yet",
                offering.name
            )));
        };
        let template_id =
            r.template_id.as_deref().ok_or_else(|| ApiError::missing_param("deployvirtualmachine", "templateid"))?;
        let template = self.volume_template(caller, template_id, &zone).await?;
        if let Some(h) = &r.hypervisor
            && !h.eq_ignore_ascii_case(&template.hypervisor)
        {
            return Err(ApiError::invalid_param(format!(
                "Template {} is for {}, not {h}",
                template.name, template.hypervisor
            )));
        }
        if let Some(n) = &r.name {
            check_hostname(n)?;
        }
        let ip = match &r.ip_address {
            Some(a) => Some(a.parse::<Ipv4Addr>().map_err(|_| {
                ApiError::invalid_param(format!("Invalid value of parameter ipaddress: {a} is not an IPv4 address"))
            })?),
            None => None,
        };
        let (account_id, domain_id) = self.owner(caller, r.account.as_deref(), r.domain_id.as_deref()).await?;
        let user_data = self.finalize_user_data(caller, &r.user_data, Some((template.id, &template.name))).await?;
        // The owner's key pairs, copied to the instance: a missing one (or another
        // account's) refuses the deploy before anything is made.
        let keys = match r.key_pairs.is_empty() {
            true => vec![],
            false => self.instance_key_pairs(account_id, &r.key_pairs).await?,
        };
        let password = (template.password_enabled != 0).then(super::guest_access::new_password);
        let networks = self.deploy_networks(caller, zone.id, &zone.name, &r.network_ids).await?;
        let groups = self.instance_group_ids(caller, account_id, domain_id, &r.security_groups, &networks).await?;
        let root_size = template.size.max(offering.root_disk_gb.unwrap_or(0).saturating_mul(GIB));
        let storage_tags = offering.storage_tags.clone().filter(|t| t.split(',').any(|t| !t.trim().is_empty()));
        if let Some(tags) = &storage_tags {
            // Refused before anything is placed: no pool of the zone could ever hold the root disk.
            let f = StorageFilter { zone_id: Some(zone.id), ..Default::default() };
            let (all, _) = pools::list_pools(&self.db, &f, None).await?;
            if !all.iter().any(|p| p.state == "Up" && super::volumes::has_tags(p, Some(tags))) {
                return Err(ApiError::insufficient_capacity(format!(
                    "Zone {} has no Up primary storage tagged {tags} for service offering {}",
                    zone.name, offering.name
                )));
            }
        }

        let uuid = new_uuid();
        let name = r.name.clone().unwrap_or_else(|| format!("VM-{uuid}"));
        let new = NewInstance {
            uuid: uuid.clone(),
            name: name.clone(),
            display_name: r.display_name.clone().unwrap_or_else(|| name.clone()),
            account_id,
            domain_id,
            zone_id: zone.id,
            zone_name: zone.name.clone(),
            service_offering_id: offering.id,
            template_id: template.id,
            hypervisor: template.hypervisor.clone(),
            need: Need { cpus, cpu_mhz, memory_mb },
            user_data: user_data.as_ref().and_then(|u| u.user_data.clone()),
            start: r.start,
        };
        let spec = JobSpec {
            cmd: "org.apache.cloudstack.api.command.user.vm.DeployVMCmd",
            command: cmd.name,
            instance: Some(("VirtualMachine", uuid.clone())),
        };
        // The instance and the job that builds it are committed together, or neither is.
        let mut tx = self.db.begin().await.map_err(DbError::from)?;
        instances::place(&mut tx, &new).await?;
        let vm_id: i64 = sqlx::query_scalar("SELECT id FROM instances WHERE uuid = $1")
            .bind(&uuid)
            .fetch_one(&mut *tx)
            .await
            .map_err(DbError::from)?;
        if let Some(u) = &user_data {
            access::set_instance_user_data(&mut tx, vm_id, u).await?;
        }
        access::set_instance_keys(&mut tx, vm_id, &keys).await?;
        crate::cloud::security_groups::set_instance_groups(&mut tx, vm_id, &groups).await?;
        if let Some(p) = &password {
            access::set_password_pending(&mut tx, vm_id, Some(p)).await?;
        }
        let job = self.jobs.record(&mut tx, caller, spec).await?;
        tx.commit().await.map_err(DbError::from)?;
        let (me, who, id) = (self.clone(), caller.clone(), uuid.clone());
        let start = r.start;
        let work = async move {
            let prepared = async {
                let vm = instances::instance(&me.db, &id).await?.ok_or_else(|| no_such("virtual machine", &id))?;
                let host_uuid = vm.host_uuid.clone().unwrap_or_default();
                let host = infra::host(&me.db, &host_uuid).await?.ok_or_else(|| no_such("host", &host_uuid))?;
                let cluster = infra::cluster(&me.db, &host.cluster_uuid)
                    .await?
                    .ok_or_else(|| no_such("cluster", &host.cluster_uuid))?;
                // The first deploy implements a network's public side: its router and
                // source NAT address (533 when the zone's public ranges are used up).
                for n in &networks {
                    me.implement_router(n, Some(host.id), false).await?;
                }
                Ok::<_, ApiError>(Build { vm, host, cluster, template, networks, ip, root_size, storage_tags, start })
            }
            .await;
            let build = match prepared {
                Ok(b) => b,
                Err(e) => {
                    let removed = async {
                        let vm_id = me.instance_id(&id).await?;
                        instances::remove(&me.db, vm_id, VmState::Error).await.map_err(ApiError::from)
                    };
                    if let Err(d) = removed.await {
                        tracing::error!("{d}");
                    }
                    return Err(e);
                }
            };
            let mut made = Made::default();
            let built = me.build_vm(&build, &mut made).await;
            if let Err(e) = built {
                me.undo_build(&build, made).await;
                if let Err(d) = instances::remove(&me.db, build.vm.id, VmState::Error).await {
                    tracing::error!("{d}");
                }
                return Err(e);
            }
            instances::set_state(&me.db, build.vm.id, if build.start { VmState::Running } else { VmState::Stopped })
                .await?;
            me.audit(
                &who,
                "VM.CREATE",
                ("VirtualMachine", &id, &build.vm.name),
                format!("VM {} created on host {}", build.vm.name, build.host.name),
            )
            .await?;
            if !groups.is_empty() {
                me.instance_security_changed(&id).await;
            }
            // The new password is shown once, in this job's result.
            me.vm_result(&who, &id, password).await
        };
        let job = self.jobs.start(job, work);
        Ok(Reply::AsyncJob { job_id: job, id: Some(uuid) })
    }

    async fn instance_id(&self, uuid: &str) -> Result<i64, ApiError> {
        Ok(sqlx::query_scalar("SELECT id FROM instances WHERE uuid = $1")
            .bind(uuid)
            .fetch_one(self.db.pool())
            .await
            .map_err(crate::db::DbError::from)?)
    }

    /// NICs, root disk and domain of a new VM; `made` records each step for `undo_build`.
    /// Allocates and prepares the instance's NICs, recording each in `made_nics` as it goes.
    async fn make_nics(
        &self,
        b: &Build,
        real: bool,
        made_nics: &mut Vec<(i64, NetworkSpec, NicSpec, Option<NetworkDriver>)>,
    ) -> Result<Vec<Nic>, ApiError> {
        let mut vm_nics = Vec::new();
        for (k, n) in b.networks.iter().enumerate() {
            let new = NewNic {
                instance_uuid: Some(b.vm.uuid.clone()),
                ip: if k == 0 { b.ip } else { None },
                is_default: k == 0,
                device_id: k as i64,
            };
            let nic = nets::allocate_nic(&self.db, n, new).await?;
            let spec = spec_with_dhcp(&self.db, n).await;
            let nic_spec = NicSpec {
                id: nic.uuid.clone(),
                mac: nic.mac.clone(),
                ip: nic.ip().map(|i| i.to_string()),
                hostname: Some(b.vm.name.clone()),
            };
            let spec = match spec {
                Ok(s) => s,
                Err(e) => {
                    let unused = NetworkSpec {
                        id: n.uuid.clone(),
                        physical: String::new(),
                        vlan: None,
                        isolation: String::new(),
                        segment: None,
                        cidr: String::new(),
                        gateway: None,
                        dns: Vec::new(),
                        dhcp_server: None,
                    };
                    made_nics.push((nic.id, unused, nic_spec, None));
                    return Err(e);
                }
            };
            made_nics.push((nic.id, spec.clone(), nic_spec.clone(), None));
            let attachment = if real {
                let driver = self.network_driver(n)?;
                let (d, h, s, c) = (driver.clone(), b.host.name.clone(), spec.clone(), nic_spec.clone());
                let what = format!("Preparing NIC {} of VM {} on host {}", nic.mac, b.vm.name, b.host.name);
                let a = blocking(what, move || d.prepare_nic(&h, &s, &c)).await?;
                if let Some(last) = made_nics.last_mut() {
                    last.3 = Some(driver);
                }
                a
            } else {
                // A simulated host plugs nothing in: describe the NIC on the physical
                // network's bridge, tagged when the network has a VLAN.
                simulated_attachment(&spec)
            };
            // The network now stands on a host: deleteNetwork must tear it down there.
            if n.state != "Implemented" {
                infra::set_text(&self.db, "networks", n.id, "state", Some("Implemented".into())).await?;
            }
            vm_nics.push(Nic {
                mac: nic.mac.clone(),
                bridge: attachment.bridge,
                switch: if attachment.openvswitch { SwitchKind::Openvswitch } else { SwitchKind::LinuxBridge },
                vlan: attachment.vlan,
                model: NicModel::Virtio,
                host_device: None,
            });
        }

        Ok(vm_nics)
    }

    /// The root disk, when the zone has a pool for it; recorded in `made_volume` as it is made.
    async fn make_disks(
        &self,
        b: &Build,
        real: bool,
        made_volume: &mut Option<(PoolRow, String, Option<String>)>,
    ) -> Result<Vec<Disk>, ApiError> {
        let mut disks = Vec::new();
        match self.root_pool(b).await? {
            Some(pool) => disks.push(self.make_root_disk(b, &pool, made_volume).await?),
            // A simulated domain needs no disk; a real guest does.
            None if real || b.storage_tags.is_some() => {
                return Err(ApiError::insufficient_capacity(format!(
                    "Zone {} has no Up primary storage pool{} with room for a root disk of {} bytes",
                    b.vm.zone_name,
                    b.storage_tags.as_ref().map(|t| format!(" tagged {t}")).unwrap_or_default(),
                    b.root_size
                )));
            }
            None => {}
        }
        Ok(disks)
    }

    async fn build_vm(&self, b: &Build, made: &mut Made) -> Result<(), ApiError> {
        let features = self.features_of(&b.host)?;
        let real = !features.simulated;
        // The NICs and the root disk do not depend on each other: make them side by side
        // (the disk is a round trip to the storage server, the NICs to the host). Both
        // record what they made, so a failure of either undoes both.
        let (nics, disks) =
            tokio::join!(self.make_nics(b, real, &mut made.nics), self.make_disks(b, real, &mut made.volume));
        let (vm_nics, mut disks) = (nics?, disks?);
        disks.extend(self.data_disks(b.vm.id).await?);
        if let Some((pool, _, _)) = &made.volume {
            let pool = DrivePool { driver: pool.driver.clone(), url: pool.url.clone(), name: pool.name.clone() };
            disks.extend(self.config_drive_disk(&b.vm, &pool).await?);
        }

        let spec = VmSpec {
            uuid: b.vm.uuid.clone(),
            name: b.vm.instance_name.clone(),
            vcpus: b.vm.cpus as u32,
            memory_mib: b.vm.memory_mb as u64,
            accel: super::infra::accel(&b.cluster.accel),
            disks,
            nics: vm_nics,
            console: console_spec(&features, &b.vm, &b.host),
        };
        let hv = self.hypervisor_for(&b.host.driver)?;
        let (d, uri) = (hv.clone(), b.host.libvirt_uri.clone());
        blocking(format!("Defining VM {} on host {}", b.vm.name, b.host.name), move || d.create_vm(&uri, &spec))
            .await?;
        made.domain = true;
        if b.start {
            let (d, uri, id) = (hv, b.host.libvirt_uri.clone(), b.vm.uuid.clone());
            blocking(format!("Starting VM {} on host {}", b.vm.name, b.host.name), move || d.start_vm(&uri, &id))
                .await?;
        }
        Ok(())
    }

    /// The Up primary pool of the zone (the host's cluster's, or zone-wide) carrying the
    /// offering's storage tags with the most room for the root disk; none when no such
    /// pool has room.
    async fn root_pool(&self, b: &Build) -> Result<Option<PoolRow>, ApiError> {
        let f = StorageFilter { zone_id: Some(b.vm.zone_id), ..Default::default() };
        let (all, _) = pools::list_pools(&self.db, &f, None).await?;
        Ok(all
            .into_iter()
            .filter(|p| p.state == "Up" && p.cluster_id.is_none_or(|c| c == b.cluster.id))
            .filter(|p| super::volumes::has_tags(p, b.storage_tags.as_deref()))
            .filter(|p| p.allocated_bytes.saturating_add(b.root_size) <= p.capacity_bytes.saturating_mul(2))
            .max_by_key(|p| (p.capacity_bytes - p.used_bytes, -p.allocated_bytes)))
    }

    async fn make_root_disk(
        &self,
        b: &Build,
        pool: &PoolRow,
        made_volume: &mut Option<(PoolRow, String, Option<String>)>,
    ) -> Result<Disk, ApiError> {
        let base = {
            // Concurrent first deploys would each copy the template to the pool and all
            // but one fail to record it: one copy at a time per (template, pool).
            let gate = install_gate(b.template.id, pool.id);
            let _held = gate.lock().await;
            self.template_on_pool(&b.template, pool).await?
        };
        let vol_uuid = new_uuid();
        // Recorded before it is made, linked to its VM: a server stopped while the
        // driver makes it leaves a record to undo it by (the driver finds the volume
        // again by its name, the uuid).
        let planned = NewVolume {
            uuid: vol_uuid.clone(),
            name: format!("ROOT-{}", b.vm.id),
            account_id: b.vm.account_id,
            domain_id: b.vm.domain_id,
            zone_id: b.vm.zone_id,
            pool_id: pool.id,
            disk_offering_id: None,
            template_id: Some(b.template.id),
            size_bytes: b.root_size,
            physical_bytes: 0,
            path: String::new(),
            provisioning_type: "thin".into(),
        };
        volumes::plan_volume(&self.db, planned).await?;
        *made_volume = Some((pool.clone(), String::new(), Some(vol_uuid.clone())));
        instances::set_root_volume(&self.db, b.vm.id, &vol_uuid).await?;
        let (url, name, size) = (pool.url.clone(), vol_uuid.clone(), b.root_size as u64);
        let what = format!("Creating the root disk of VM {} on storage pool {}", b.vm.name, pool.name);
        let file = self.on_driver(&pool.driver, what, move |d| d.create_volume(&url, &name, size, Some(&base))).await?;
        *made_volume = Some((pool.clone(), file.path.clone(), Some(vol_uuid.clone())));
        // Refused before its path is stored; the failed deploy deletes it and its record.
        self.check_locator(&pool.driver, &pool.name, &pool.url, &file.locator)?;
        volumes::volume_made(&self.db, &vol_uuid, &file.path, file.virtual_size as i64, file.physical_size as i64)
            .await?;
        // The driver says how to reach the volume it just made: no second call to locate it.
        Ok(Disk {
            locator: Some(file.locator),
            device: DiskDevice::Disk,
            bus: DiskBus::Virtio,
            target: "vda".into(),
            read_only: false,
            boot_order: Some(1),
        })
    }

    /// Undoes what a failed deploy made, last first; failures here are only logged.
    async fn undo_build(&self, b: &Build, made: Made) {
        if made.domain
            && let Ok(hv) = self.hypervisor_for(&b.host.driver)
        {
            let (uri, id) = (b.host.libvirt_uri.clone(), b.vm.uuid.clone());
            if let Err(e) = blocking("Removing a half-made VM".into(), move || hv.destroy_vm(&uri, &id)).await {
                tracing::error!("{}", e.text);
            }
        }
        if let Some((pool, path, recorded)) = made.volume {
            self.drop_volume(&pool, &path, recorded.as_deref()).await;
        }
        self.drop_nics(&b.host.name, made.nics).await;
    }

    async fn drop_volume(&self, pool: &PoolRow, path: &str, recorded: Option<&str>) {
        let gone = match (path, recorded) {
            // The driver failed or never answered: whatever it made is found by name.
            ("", Some(uuid)) => self.drop_unfinished_volume(&pool.driver, &pool.url, uuid).await,
            _ => {
                let (url, p) = (pool.url.clone(), path.to_owned());
                self.on_driver(&pool.driver, "Deleting a root disk".into(), move |d| d.delete_volume(&url, &p)).await
            }
        };
        if let Err(e) = gone {
            tracing::error!("{}", e.text);
            // A volume whose making failed is almost surely not there (a driver removes
            // what its failed call made): its record goes regardless. A made one stays
            // recorded, so that it is not forgotten on storage.
            if !path.is_empty() {
                return;
            }
        }
        if let Some(uuid) = recorded {
            match volumes::volume(&self.db, uuid).await {
                Ok(Some(v)) => {
                    if let Err(e) = volumes::remove_volume(&self.db, &v).await {
                        tracing::error!("{e}");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::error!("{e}"),
            }
        }
    }

    /// Deletes the volume named `uuid` that a driver was asked to make but never said
    /// where it put: asked again, the driver returns the volume it made under that
    /// name (or makes a blank one, to be deleted at once).
    pub(super) async fn drop_unfinished_volume(
        &self,
        driver: &str,
        pool_url: &str,
        uuid: &str,
    ) -> Result<(), ApiError> {
        let (url, name) = (pool_url.to_owned(), uuid.to_owned());
        let what = format!("Finding volume {uuid}, whose making was cut short");
        let found = self.on_driver(driver, what, move |d| d.create_volume(&url, &name, MIB, None)).await?;
        let (url, path) = (pool_url.to_owned(), found.path);
        self.on_driver(driver, format!("Deleting volume {uuid}"), move |d| d.delete_volume(&url, &path)).await
    }

    async fn drop_nics(&self, host: &str, nics: Vec<(i64, NetworkSpec, NicSpec, Option<NetworkDriver>)>) {
        for (id, spec, nic, driver) in nics.into_iter().rev() {
            if let Some(d) = driver {
                let h = host.to_owned();
                if let Err(e) = blocking("Releasing a NIC".into(), move || d.release_nic(&h, &spec, &nic)).await {
                    tracing::error!("{}", e.text);
                }
            }
            if let Err(e) = nets::release_nic(&self.db, id).await {
                tracing::error!("{e}");
            }
        }
    }

    /// Runs one hypervisor call on an instance's host.
    pub(super) async fn on_host<T: Send + 'static>(
        &self,
        i: &InstanceRow,
        what: &str,
        call: impl FnOnce(&HypervisorDriver, &str, &str) -> Result<T, PluginError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (Some(uri), Some(driver)) = (i.host_uri.clone(), i.host_driver.clone()) else {
            return Err(ApiError::invalid_param(format!("VM {} has no host", i.name)));
        };
        let hv = self.hypervisor_for(&driver)?;
        let id = i.uuid.clone();
        blocking(format!("{what} VM {}", i.name), move || call(&hv, &uri, &id)).await
    }

    pub(super) fn wrong_state(i: &InstanceRow, action: &str) -> ApiError {
        ApiError::invalid_param(format!("Cannot {action} VM {}: it is {}", i.name, i.state))
    }

    async fn start_vm(&self, caller: &Caller, cmd: &'static Command, id: &str) -> Result<Reply, ApiError> {
        let i = self.vm_for(caller, id).await?;
        if i.state != VmState::Stopped {
            return Err(Self::wrong_state(&i, "start"));
        }
        instances::reserve_start(&self.db, &i).await?;
        let (me, who) = (self.clone(), caller.clone());
        let work = async move {
            let started = async {
                // A password, key or userdata changed while it was stopped reaches the guest now.
                me.refresh_config_drive(&i).await?;
                me.ensure_defined(&i).await?;
                me.on_host(&i, "Starting", |d, u, id| d.start_vm(u, id)).await
            };
            if let Err(e) = started.await {
                instances::set_state(&me.db, i.id, VmState::Stopped).await?;
                return Err(e);
            }
            instances::set_state(&me.db, i.id, VmState::Running).await?;
            // Its addresses count again in the rules that name its groups.
            me.instance_security_changed(&i.uuid).await;
            me.audit(&who, "VM.START", ("VirtualMachine", &i.uuid, &i.name), format!("VM {} started", i.name)).await?;
            me.vm_reply(&who, &i.uuid).await
        };
        self.vm_job(caller, cmd, "StartVMCmd", id, work).await
    }

    async fn stop_vm(&self, caller: &Caller, cmd: &'static Command, id: &str, forced: bool) -> Result<Reply, ApiError> {
        let i = self.vm_for(caller, id).await?;
        if !instances::transition(&self.db, i.id, &[VmState::Running], VmState::Stopping).await? {
            return Err(Self::wrong_state(&i, "stop"));
        }
        let (me, who) = (self.clone(), caller.clone());
        let work = async move {
            let timeout = if forced { 0 } else { STOP_TIMEOUT_MS };
            if let Err(e) = me.on_host(&i, "Stopping", move |d, u, id| d.stop_vm(u, id, timeout)).await {
                // Forced, the caller knows the VM is down: it is Stopped whatever the host said.
                if !forced {
                    instances::set_state(&me.db, i.id, VmState::Running).await?;
                    return Err(e);
                }
                tracing::warn!("{}", e.text);
            }
            instances::set_state(&me.db, i.id, VmState::Stopped).await?;
            me.instance_security_changed(&i.uuid).await;
            me.audit(&who, "VM.STOP", ("VirtualMachine", &i.uuid, &i.name), format!("VM {} stopped", i.name)).await?;
            me.vm_reply(&who, &i.uuid).await
        };
        self.vm_job(caller, cmd, "StopVMCmd", id, work).await
    }

    async fn reboot_vm(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
        forced: bool,
    ) -> Result<Reply, ApiError> {
        let i = self.vm_for(caller, id).await?;
        if i.state != VmState::Running {
            return Err(Self::wrong_state(&i, "reboot"));
        }
        let (me, who) = (self.clone(), caller.clone());
        let work = async move {
            me.on_host(&i, "Rebooting", move |d, u, id| d.reboot_vm(u, id, forced)).await?;
            me.audit(&who, "VM.REBOOT", ("VirtualMachine", &i.uuid, &i.name), format!("VM {} rebooted", i.name))
                .await?;
            me.vm_reply(&who, &i.uuid).await
        };
        self.vm_job(caller, cmd, "RebootVMCmd", id, work).await
    }

    async fn destroy_vm(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        id: &str,
        expunge: bool,
    ) -> Result<Reply, ApiError> {
        let i = self.vm_for(caller, id).await?;
        let from: &[VmState] = if expunge {
            &[VmState::Running, VmState::Stopped, VmState::Destroyed]
        } else {
            &[VmState::Running, VmState::Stopped]
        };
        let busy = if expunge { VmState::Expunging } else { VmState::Stopping };
        if !instances::transition(&self.db, i.id, from, busy).await? {
            return Err(Self::wrong_state(&i, "destroy"));
        }
        let (me, who) = (self.clone(), caller.clone());
        let work = async move {
            if expunge {
                let mut view = me.vm_view(&who, &i).await?;
                me.expunge_work(&who, &i).await?;
                view.insert("state".into(), "Expunging".into());
                return Ok(wrap("virtualmachine", view));
            }
            // Powered off, not undefined: a destroyed VM can still be recovered.
            if let Err(e) = me.on_host(&i, "Powering off", |d, u, id| d.stop_vm(u, id, 0)).await {
                instances::set_state(&me.db, i.id, i.state).await?;
                return Err(e);
            }
            instances::set_state(&me.db, i.id, VmState::Destroyed).await?;
            me.instance_security_changed(&i.uuid).await;
            me.audit(&who, "VM.DESTROY", ("VirtualMachine", &i.uuid, &i.name), format!("VM {} destroyed", i.name))
                .await?;
            me.vm_reply(&who, &i.uuid).await
        };
        self.vm_job(caller, cmd, "DestroyVMCmd", id, work).await
    }

    async fn expunge_vm(&self, caller: &Caller, cmd: &'static Command, id: &str) -> Result<Reply, ApiError> {
        let i = self.vm_for(caller, id).await?;
        if !instances::transition(&self.db, i.id, &[VmState::Destroyed], VmState::Expunging).await? {
            return Err(Self::wrong_state(&i, "expunge"));
        }
        let (me, who) = (self.clone(), caller.clone());
        let work = async move {
            me.expunge_work(&who, &i).await?;
            let mut m = Map::new();
            m.insert("success".into(), true.into());
            Ok(m)
        };
        self.vm_job(caller, cmd, "ExpungeVMCmd", id, work).await
    }

    /// Removes a VM for good: the domain, the root disk, the NICs. A failure leaves it
    /// Destroyed, so expunging it again resumes where this stopped.
    async fn expunge_work(&self, who: &Caller, i: &InstanceRow) -> Result<(), ApiError> {
        let result = async {
            if i.host_uri.is_some() {
                self.on_host(i, "Removing", |d, u, id| d.destroy_vm(u, id)).await?;
            }
            self.drop_config_drive(i).await?;
            if let Some(uuid) = instances::root_volume_uuid(&self.db, i).await?
                && let Some(v) = volumes::volume(&self.db, &uuid).await?
            {
                let (url, path) = (v.pool_url.clone(), v.path.clone());
                let what = format!("Deleting the root disk of VM {}", i.name);
                self.on_driver(&v.pool_driver, what, move |d| d.delete_volume(&url, &path)).await?;
                volumes::remove_volume(&self.db, &v).await?;
            }
            let f = NicFilter { instance_uuid: Some(i.uuid.clone()), ..Default::default() };
            let (nics, _) = nets::list_nics(&self.db, &f, None).await?;
            let real_nics = i.host_driver.is_some() && !self.features_of_vm(i)?.simulated;
            for nic in nics {
                let Some(n) = nets::network_by_id(&self.db, nic.network_id).await? else { continue };
                // Only a real host had its NICs plugged in by the network driver.
                if real_nics && let Some(host) = &i.host_name {
                    let driver = self.network_driver(&n)?;
                    let spec = super::networks::driver_spec(&n, n.dhcp_server.as_deref())?;
                    let ns = NicSpec {
                        id: nic.uuid.clone(),
                        mac: nic.mac.clone(),
                        ip: nic.ip().map(|a| a.to_string()),
                        hostname: Some(i.name.clone()),
                    };
                    let h = host.clone();
                    blocking(format!("Releasing NIC {}", nic.mac), move || driver.release_nic(&h, &spec, &ns)).await?;
                }
                // Its forwarding rules and balancer memberships go with it.
                if crate::cloud::rules::revoke_for_nic(&self.db, n.id, nic.id).await? {
                    self.rules_changed(n.id).await?;
                }
                // A public address mapped to it by static NAT maps to nothing now.
                for network in crate::cloud::public_ips::drop_static_nat_of_nic(&self.db, nic.id).await? {
                    self.router_changed(network).await?;
                }
                nets::release_nic(&self.db, nic.id).await?;
            }
            instances::remove(&self.db, i.id, VmState::Expunged).await?;
            Ok::<_, ApiError>(())
        }
        .await;
        if let Err(e) = result {
            instances::set_state(&self.db, i.id, VmState::Destroyed).await?;
            return Err(e);
        }
        self.audit(who, "VM.EXPUNGE", ("VirtualMachine", &i.uuid, &i.name), format!("VM {} expunged", i.name)).await?;
        Ok(())
    }

    async fn recover_vm(&self, caller: &Caller, cmd: &'static Command, id: &str) -> Result<Reply, ApiError> {
        let i = self.vm_for(caller, id).await?;
        if !instances::transition(&self.db, i.id, &[VmState::Destroyed], VmState::Stopped).await? {
            return Err(Self::wrong_state(&i, "recover"));
        }
        let (me, who) = (self.clone(), caller.clone());
        let work = async move {
            me.audit(&who, "VM.RECOVER", ("VirtualMachine", &i.uuid, &i.name), format!("VM {} recovered", i.name))
                .await?;
            me.vm_reply(&who, &i.uuid).await
        };
        self.vm_job(caller, cmd, "RecoverVMCmd", id, work).await
    }

    async fn list_vms(&self, caller: &Caller, q: InstanceQuery) -> Result<Reply, ApiError> {
        if let Some(id) = &q.id
            && let Some(i) = instances::instance(&self.db, id).await?
            && !caller.can_reach(&i)
        {
            return Err(not_yours("virtual machine", id));
        }
        let scope = self.scope(caller, &q.listing).await?;
        let zone_id = self.zone_id(q.zone_id.as_deref()).await?;
        let host_id = match &q.host_id {
            Some(h) => Some(infra::host(&self.db, h).await?.ok_or_else(|| no_such("host", h))?.id),
            None => None,
        };
        let f = InstanceFilter {
            uuid: q.id,
            name: q.name,
            state: q.state,
            zone_id,
            host_id,
            keyword: q.listing.keyword.clone(),
        };
        let (rows, total) = instances::list_instances(&self.db, &scope, &f, q.listing.page).await?;
        // One query for the whole page's NICs, not one per VM: a page holds up to 500.
        let uuids: Vec<&str> = rows.iter().map(|i| i.uuid.as_str()).collect();
        let mut by_vm: std::collections::HashMap<String, Vec<NicRow>> = std::collections::HashMap::new();
        for nic in nets::nics_of_instances(&self.db, &uuids).await? {
            by_vm.entry(nic.instance_uuid.clone().unwrap_or_default()).or_default().push(nic);
        }
        let ids: Vec<i64> = rows.iter().map(|i| i.id).collect();
        let mut keys: std::collections::HashMap<i64, Vec<String>> = std::collections::HashMap::new();
        for (vm, name, _) in access::instance_keys(&self.db, &ids).await? {
            keys.entry(vm).or_default().push(name);
        }
        let mut groups = self.instance_group_views(&ids).await?;
        let items = rows
            .iter()
            .map(|i| {
                let nics = by_vm.get(&i.uuid).map_or(&[][..], Vec::as_slice);
                let mut view = vm_view(caller, i, nics, keys.get(&i.id).map_or(&[][..], Vec::as_slice));
                view.insert("securitygroup".into(), Value::Array(groups.remove(&i.id).unwrap_or_default()));
                view
            })
            .collect();
        Ok(list("virtualmachine", total, items))
    }
}

fn nic_view(c: &NicRow) -> Value {
    let netmask = c.cidr_prefix.map(|p| std::net::Ipv4Addr::from(prefix_mask(p)).to_string());
    Value::Object(views::object(json!({
        "id": c.uuid,
        "networkid": c.network_uuid,
        "networkname": c.network_name,
        "ipaddress": c.ip_address.map(|a| int_to_ip(a).to_string()),
        "netmask": netmask,
        "gateway": c.gateway,
        "macaddress": c.mac,
        "isdefault": c.is_default != 0,
        "deviceid": c.device_id.to_string(),
        "traffictype": "Guest",
        "type": c.guest_type,
        "broadcasturi": c.vlan.map(|v| format!("vlan://{v}")),
        "isolationuri": c.vlan.map(|v| format!("vlan://{v}")),
    })))
}

fn vm_view(caller: &Caller, i: &InstanceRow, nics: &[NicRow], keys: &[String]) -> Map<String, Value> {
    let admin = caller.role == RoleType::Admin;
    let mut m = views::object(json!({
        "id": i.uuid,
        "name": i.name,
        "displayname": i.display_name,
        "instancename": admin.then(|| i.instance_name.clone()),
        "state": i.state,
        "zoneid": i.zone_uuid,
        "zonename": i.zone_name,
        "hostid": if admin { i.host_uuid.clone() } else { None },
        "hostname": if admin { i.host_name.clone() } else { None },
        "templateid": i.template_uuid,
        "templatename": i.template_name,
        "templatedisplaytext": i.template_display_text,
        "serviceofferingid": i.offering_uuid,
        "serviceofferingname": i.offering_name,
        "cpunumber": i.cpus,
        "cpuspeed": i.cpu_mhz,
        "memory": i.memory_mb,
        "hypervisor": i.hypervisor,
        "guestosid": i.os_type_uuid,
        "ostypeid": i.os_type_uuid,
        "osdisplayname": i.os_type_name,
        "rootdeviceid": 0,
        "rootdevicetype": "ROOT",
        "passwordenabled": i.template_password_enabled != 0,
        "haenable": false,
        "isdynamicallyscalable": false,
        "account": i.account_name,
        "domainid": i.domain_uuid,
        "domain": i.domain_name,
        "created": format_time(i.created),
        "isoid": i.iso_uuid,
        "isoname": i.iso_name,
        "isodisplaytext": i.iso_display_text,
        // Names of the key pairs the VM was given, comma-separated as CloudStack shows them.
        "keypairs": (!keys.is_empty()).then(|| keys.join(",")),
        "userdataid": i.user_data_uuid,
        "userdataname": i.user_data_name,
    }));
    // Always present, even empty: clients index nic[0] and iterate the groups.
    m.insert("nic".into(), Value::Array(nics.iter().map(nic_view).collect()));
    m.insert("securitygroup".into(), Value::Array(vec![]));
    m.insert("affinitygroup".into(), Value::Array(vec![]));
    m.insert("tags".into(), Value::Array(vec![]));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_names_are_host_names() {
        for ok in ["web-1", "a", "VM1", &"x".repeat(63)] {
            assert!(check_hostname(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "a_b", "a.b", "123", &"x".repeat(64), "a b"] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
    }
}
