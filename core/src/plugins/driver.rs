//! Typed calls into drivers, each in a fresh store unless a session is asked for.
//!
//! A call that traps (panic, deadline, memory cap) fails alone with an error that
//! says which; the store and instance are dropped, so the next call starts clean.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Store, Trap};

use super::bindings::hypervisor::{ConsoleEndpoint, Disk, HostFacts, HostTarget, VmPower, VmSpec, VmStats, VmStatus};
use super::bindings::network::{Attachment, NetworkSpec, NicSecurity, NicSpec, RouterSpec, RouterState};
use super::bindings::plugin::{Capability, DriverKind, PluginInfo as WitPluginInfo};
use super::bindings::storage::{Usage, Volume};
use super::bindings::types::{DiskFormat, DriverError, Locator};
use super::bindings::{
    HypervisorBindings, NetworkBindings, StorageBindings, network_world, storage_world, v0_1, v0_2, v0_3,
};
use super::compat_v0_1 as compat;
use super::compat_v0_2;
use super::compat_v0_3;
use super::error::PluginError;
use super::host::{DriverPre, LoadedPlugin, deadline_ticks};
use super::state::{CallState, DeadlinePassed};

/// Runs `describe()` in a fresh store, whichever kind of driver it is. An older driver's
/// answer comes back as the current contract's; a 0.1.0 one's with what it serves filled
/// in (see `compat_v0_1`).
pub(crate) fn describe(plugin: &LoadedPlugin) -> Result<WitPluginInfo, PluginError> {
    let plugin = Arc::new(clone_for_probe(plugin));
    match plugin.pre.kind() {
        super::host::DriverKind::Hypervisor => match HypervisorSession::open(plugin)?.0 {
            Versioned::V0_4(mut s) => s.run("describe", |b, s| b.wasmstack_driver_plugin().call_describe(s).map(Ok)),
            Versioned::V0_3(mut s) => s.run("describe", |b, s| {
                b.wasmstack_driver_plugin().call_describe(s).map(|i| Ok(hypervisor_info_v0_3(i)))
            }),
            Versioned::V0_2(mut s) => s.run("describe", |b, s| {
                b.wasmstack_driver_plugin().call_describe(s).map(|i| Ok(hypervisor_info_v0_2(i)))
            }),
            Versioned::V0_1(mut s) => s.run("describe", |b, s| {
                b.wasmstack_driver_plugin().call_describe(s).map(|i| Ok(compat::hypervisor_info(i)))
            }),
        },
        super::host::DriverKind::Storage => match StorageSession::open(plugin)?.0 {
            Versioned::V0_4(mut s) => {
                s.run("describe", |b, s| b.wasmstack_driver_plugin().call_describe(s).map(|i| Ok(storage_info(i))))
            }
            Versioned::V0_3(mut s) => {
                s.run("describe", |b, s| b.wasmstack_driver_plugin().call_describe(s).map(|i| Ok(storage_info_v0_3(i))))
            }
            Versioned::V0_2(mut s) => {
                s.run("describe", |b, s| b.wasmstack_driver_plugin().call_describe(s).map(|i| Ok(storage_info_v0_2(i))))
            }
            Versioned::V0_1(mut s) => s.run("describe", |b, s| {
                b.wasmstack_driver_plugin().call_describe(s).map(|i| Ok(compat::storage_info(i)))
            }),
        },
        super::host::DriverKind::Network => match NetworkSession::open(plugin)?.0 {
            Versioned::V0_4(mut s) => {
                s.run("describe", |b, s| b.wasmstack_driver_plugin().call_describe(s).map(|i| Ok(network_info(i))))
            }
            Versioned::V0_3(mut s) => {
                s.run("describe", |b, s| b.wasmstack_driver_plugin().call_describe(s).map(|i| Ok(network_info_v0_3(i))))
            }
            Versioned::V0_2(mut s) => {
                s.run("describe", |b, s| b.wasmstack_driver_plugin().call_describe(s).map(|i| Ok(network_info_v0_2(i))))
            }
            Versioned::V0_1(mut s) => s.run("describe", |b, s| {
                b.wasmstack_driver_plugin().call_describe(s).map(|i| Ok(compat::network_info(i)))
            }),
        },
    }
}

/// The storage and network worlds have their own copies of the `plugin` types
/// (bindgen shares imports between worlds, not exports), and so does each contract
/// version; the host works with one. 0.2.0's and 0.3.0's `plugin` are 0.4.0's.
macro_rules! world_info {
    ($fn:ident, $($world:ident)::+) => {
        fn $fn(i: $($world)::+::exports::wasmstack::driver::plugin::PluginInfo) -> WitPluginInfo {
            use super::bindings::plugin::{HypervisorFeatures, HypervisorType, NetworkFacts, Serves, StorageFacts};
            use $($world)::+::exports::wasmstack::driver::plugin::{
                Capability as C, DriverKind as K, HypervisorFeatures as F, Serves as S,
            };
            let features = |f: F| {
                let mut out = HypervisorFeatures::empty();
                for (theirs, ours) in [
                    (F::HOT_PLUG_DISKS, HypervisorFeatures::HOT_PLUG_DISKS),
                    (F::HOT_PLUG_NICS, HypervisorFeatures::HOT_PLUG_NICS),
                    (F::LIVE_MIGRATION, HypervisorFeatures::LIVE_MIGRATION),
                    (F::VNC_CONSOLE, HypervisorFeatures::VNC_CONSOLE),
                    (F::MEMORY_SNAPSHOTS, HypervisorFeatures::MEMORY_SNAPSHOTS),
                    (F::BOOT_ISO, HypervisorFeatures::BOOT_ISO),
                    (F::SERIAL_LOG, HypervisorFeatures::SERIAL_LOG),
                    (F::SIMULATED, HypervisorFeatures::SIMULATED),
                ] {
                    if f.contains(theirs) {
                        out |= ours;
                    }
                }
                out
            };
            WitPluginInfo {
                name: i.name,
                version: i.version,
                kind: match i.kind {
                    K::Hypervisor => DriverKind::Hypervisor,
                    K::Storage => DriverKind::Storage,
                    K::Network => DriverKind::Network,
                },
                serves: match i.serves {
                    S::Hypervisor(types) => Serves::Hypervisor(
                        types
                            .into_iter()
                            .map(|t| HypervisorType { name: t.name, features: features(t.features) })
                            .collect(),
                    ),
                    S::Network(n) => {
                        Serves::Network(NetworkFacts { isolation_methods: n.isolation_methods, services: n.services })
                    }
                    S::Storage(s) => Serves::Storage(StorageFacts { providers: s.providers, schemes: s.schemes }),
                },
                description: i.description,
                capabilities: i
                    .capabilities
                    .into_iter()
                    .map(|c| match c {
                        C::Libvirt(p) => Capability::Libvirt(p),
                        C::Images(p) => Capability::Images(p),
                        C::Netdev(p) => Capability::Netdev(p),
                        C::Endpoint(p) => Capability::Endpoint(p),
                    })
                    .collect(),
                config_schema: i.config_schema,
            }
        }
    };
}
world_info!(storage_info, storage_world);
world_info!(network_info, network_world);
world_info!(hypervisor_info_v0_3, v0_3::hypervisor_world);
world_info!(storage_info_v0_3, v0_3::storage_world);
world_info!(network_info_v0_3, v0_3::network_world);
world_info!(hypervisor_info_v0_2, v0_2::hypervisor_world);
world_info!(storage_info_v0_2, v0_2::storage_world);
world_info!(network_info_v0_2, v0_2::network_world);

// `load_file` validates before the plugin is shared; a shallow copy lets the
// session own an Arc without giving up the caller's value.
fn clone_for_probe(p: &LoadedPlugin) -> LoadedPlugin {
    LoadedPlugin {
        info: p.info.clone(),
        file: p.file.clone(),
        sha256: p.sha256.clone(),
        wit_version: p.wit_version.clone(),
        settings: p.settings.clone(),
        loaded_at: p.loaded_at,
        name: p.name.clone(),
        grants: p.grants.clone(),
        runtime: p.runtime.clone(),
        pre: p.pre.clone(),
    }
}

/// One store and instance of any driver kind, and the one way calls run in it.
struct Session<B> {
    plugin: Arc<LoadedPlugin>,
    store: Store<CallState>,
    bindings: B,
}

impl<B> Session<B> {
    fn open(
        plugin: Arc<LoadedPlugin>,
        instantiate: impl FnOnce(&DriverPre, &mut Store<CallState>) -> Option<wasmtime::Result<B>>,
        kind: &'static str,
    ) -> Result<Self, PluginError> {
        let mut store = plugin.new_store();
        match instantiate(&plugin.pre, &mut store) {
            Some(Ok(bindings)) => Ok(Session { plugin, store, bindings }),
            Some(Err(trap)) => Err(classify(&plugin, &store, "instantiate", 0, trap)),
            None => Err(PluginError::NotLoaded { name: plugin.info.name.clone(), kind }),
        }
    }

    /// Runs one export under a new deadline and turns traps into errors. Every answer
    /// passes the size bounds here (see `Answer`); error texts are cut to `MAX_ERROR_TEXT`.
    fn run<R: Answer>(
        &mut self,
        op: &'static str,
        f: impl FnOnce(&B, &mut Store<CallState>) -> wasmtime::Result<Result<R, DriverError>>,
    ) -> Result<R, PluginError> {
        let timeout = self.plugin.settings.limits.timeout;
        let started = Instant::now();
        let deadline = started + timeout;
        self.store.data_mut().begin_call(deadline);
        self.store.set_epoch_deadline(deadline_ticks(timeout));
        let output_before = self.store.data().output().len();
        let result = f(&self.bindings, &mut self.store);
        let ended = Instant::now();
        // Where a workflow's time goes, for operators chasing a slow one.
        tracing::debug!(plugin = %self.plugin.info.name, op, ms = (ended - started).as_secs_f64() * 1e3, "driver call");
        if ended >= deadline && result.is_ok() {
            // An answer after the deadline is no answer: a wait cut at the deadline (see
            // `CallClocks`) may let the guest return before the epoch ends it.
            let limit_ms = timeout.as_millis() as u64;
            return Err(PluginError::Timeout { plugin: self.plugin.info.name.clone(), op, limit_ms });
        }
        match result {
            Ok(Ok(v)) => match v.bound() {
                Ok(()) => Ok(v),
                Err(detail) => Err(PluginError::Oversized { plugin: self.plugin.info.name.clone(), op, detail }),
            },
            Ok(Err(error)) => {
                Err(PluginError::Driver { plugin: self.plugin.info.name.clone(), error: bound_error(error) })
            }
            Err(trap) => Err(classify(&self.plugin, &self.store, op, output_before, trap)),
        }
    }
}

/// A session with a driver of any contract version it may be built for: the current
/// bindings, or the 0.3.0, 0.2.0 or 0.1.0 ones whose calls `compat_v0_3`, `compat_v0_2`
/// and `compat_v0_1` adapt.
enum Versioned<A, D, B, C> {
    V0_4(Session<A>),
    V0_3(Session<D>),
    V0_2(Session<B>),
    V0_1(Session<C>),
}

/// Runs one export in whichever version the session speaks: `$now` with the current
/// bindings, `$old` with the 0.1.0 ones and, read with `compat` naming `compat_v0_3` or
/// `compat_v0_2` (whose conversions have the same names), with the 0.3.0 and 0.2.0 ones.
/// Each sees the bindings as `$b` and the store as `$s`.
macro_rules! versioned {
    ($session:expr, $op:literal, |$b:ident, $s:ident| $now:expr, $old:expr) => {
        match &mut $session.0 {
            Versioned::V0_4(x) => x.run($op, |$b, $s| $now),
            Versioned::V0_3(x) => x.run($op, |$b, $s| {
                #[allow(unused_imports)]
                use compat_v0_3 as compat;
                $old
            }),
            Versioned::V0_2(x) => x.run($op, |$b, $s| {
                #[allow(unused_imports)]
                use compat_v0_2 as compat;
                $old
            }),
            Versioned::V0_1(x) => x.run($op, |$b, $s| $old),
        }
    };
}

/// Opens a session of the plugin's version, or says it is not of `kind`.
macro_rules! open_versioned {
    ($plugin:expr, $kind:literal, $v4:ident, $v3:ident, $v2:ident, $v1:ident) => {{
        let plugin = $plugin;
        match &plugin.pre {
            DriverPre::$v4(_) => Session::open(
                plugin,
                |pre, store| match pre {
                    DriverPre::$v4(p) => Some(p.instantiate(store)),
                    _ => None,
                },
                $kind,
            )
            .map(Versioned::V0_4),
            DriverPre::$v3(_) => Session::open(
                plugin,
                |pre, store| match pre {
                    DriverPre::$v3(p) => Some(p.instantiate(store)),
                    _ => None,
                },
                $kind,
            )
            .map(Versioned::V0_3),
            DriverPre::$v2(_) => Session::open(
                plugin,
                |pre, store| match pre {
                    DriverPre::$v2(p) => Some(p.instantiate(store)),
                    _ => None,
                },
                $kind,
            )
            .map(Versioned::V0_2),
            DriverPre::$v1(_) => Session::open(
                plugin,
                |pre, store| match pre {
                    DriverPre::$v1(p) => Some(p.instantiate(store)),
                    _ => None,
                },
                $kind,
            )
            .map(Versioned::V0_1),
            _ => Err(PluginError::NotLoaded { name: plugin.info.name.clone(), kind: $kind }),
        }
    }};
}

/// A loaded hypervisor driver. Every method runs in a fresh store and instance.
#[derive(Clone)]
pub struct HypervisorDriver {
    plugin: Arc<LoadedPlugin>,
}

/// One store and instance kept across several calls (for a workflow, or to measure
/// the call overhead alone). After any trap it must be dropped.
pub struct HypervisorSession(
    Versioned<HypervisorBindings, v0_3::HypervisorBindings, v0_2::HypervisorBindings, v0_1::HypervisorBindings>,
);

impl HypervisorDriver {
    pub(crate) fn new(plugin: Arc<LoadedPlugin>) -> Self {
        HypervisorDriver { plugin }
    }

    /// The plugin behind this handle (the version it was when the handle was taken).
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// A fresh store and instance for several calls.
    pub fn session(&self) -> Result<HypervisorSession, PluginError> {
        HypervisorSession::open(self.plugin.clone())
    }

    pub fn describe(&self) -> Result<WitPluginInfo, PluginError> {
        describe(&self.plugin)
    }
    /// The URL the server keeps for a host of `hypervisor_type` an operator gave as `url`,
    /// and the host's address; the driver decides (it must not reach the host).
    pub fn connect_host(&self, hypervisor_type: &str, url: &str) -> Result<HostTarget, PluginError> {
        self.session()?.connect_host(hypervisor_type, url)
    }
    pub fn probe_host(&self, url: &str) -> Result<HostFacts, PluginError> {
        self.session()?.probe_host(url)
    }
    pub fn create_vm(&self, url: &str, spec: &VmSpec) -> Result<(), PluginError> {
        self.session()?.create_vm(url, spec)
    }
    pub fn start_vm(&self, url: &str, uuid: &str) -> Result<(), PluginError> {
        self.session()?.start_vm(url, uuid)
    }
    pub fn stop_vm(&self, url: &str, uuid: &str, timeout_ms: u32) -> Result<(), PluginError> {
        self.session()?.stop_vm(url, uuid, timeout_ms)
    }
    pub fn reboot_vm(&self, url: &str, uuid: &str, forced: bool) -> Result<(), PluginError> {
        self.session()?.reboot_vm(url, uuid, forced)
    }
    pub fn destroy_vm(&self, url: &str, uuid: &str) -> Result<(), PluginError> {
        self.session()?.destroy_vm(url, uuid)
    }
    pub fn power_state(&self, url: &str, uuid: &str) -> Result<VmPower, PluginError> {
        self.session()?.power_state(url, uuid)
    }
    pub fn list_vms(&self, url: &str) -> Result<Vec<VmStatus>, PluginError> {
        self.session()?.list_vms(url)
    }
    pub fn console(&self, url: &str, uuid: &str) -> Result<ConsoleEndpoint, PluginError> {
        self.session()?.console(url, uuid)
    }
    pub fn stats(&self, url: &str, uuid: &str) -> Result<VmStats, PluginError> {
        self.session()?.stats(url, uuid)
    }
    pub fn attach_disk(&self, url: &str, uuid: &str, disk: &Disk) -> Result<(), PluginError> {
        self.session()?.attach_disk(url, uuid, disk)
    }
    pub fn detach_disk(&self, url: &str, uuid: &str, target: &str) -> Result<(), PluginError> {
        self.session()?.detach_disk(url, uuid, target)
    }
}

impl HypervisorSession {
    fn open(plugin: Arc<LoadedPlugin>) -> Result<Self, PluginError> {
        open_versioned!(plugin, "hypervisor", Hypervisor, HypervisorV0_3, HypervisorV0_2, HypervisorV0_1)
            .map(HypervisorSession)
    }

    pub fn connect_host(&mut self, hypervisor_type: &str, url: &str) -> Result<HostTarget, PluginError> {
        match &mut self.0 {
            Versioned::V0_4(x) => {
                x.run("connect-host", |b, s| b.wasmstack_driver_hypervisor().call_connect_host(s, hypervisor_type, url))
            }
            Versioned::V0_3(x) => x.run("connect-host", |b, s| {
                b.wasmstack_driver_hypervisor()
                    .call_connect_host(s, hypervisor_type, url)
                    .map(|r| r.map(|t| HostTarget { url: t.url, address: t.address }))
            }),
            Versioned::V0_2(x) => x.run("connect-host", |b, s| {
                b.wasmstack_driver_hypervisor()
                    .call_connect_host(s, hypervisor_type, url)
                    .map(|r| r.map(|t| HostTarget { url: t.url, address: t.address }))
            }),
            // 0.1.0 has no connect-host: the adapter does what 0.1 servers did.
            Versioned::V0_1(x) => compat::connect_host(hypervisor_type, url)
                .map_err(|error| PluginError::Driver { plugin: x.plugin.info.name.clone(), error }),
        }
    }
    pub fn probe_host(&mut self, url: &str) -> Result<HostFacts, PluginError> {
        versioned!(
            self,
            "probe-host",
            |b, s| b.wasmstack_driver_hypervisor().call_probe_host(s, url),
            b.wasmstack_driver_hypervisor().call_probe_host(s, url).map(|r| r.map(compat::host_facts))
        )
    }
    pub fn create_vm(&mut self, url: &str, spec: &VmSpec) -> Result<(), PluginError> {
        versioned!(
            self,
            "create-vm",
            |b, s| b.wasmstack_driver_hypervisor().call_create_vm(s, url, spec),
            b.wasmstack_driver_hypervisor().call_create_vm(s, url, &compat::vm_spec(spec))
        )
    }
    pub fn start_vm(&mut self, url: &str, uuid: &str) -> Result<(), PluginError> {
        versioned!(
            self,
            "start-vm",
            |b, s| b.wasmstack_driver_hypervisor().call_start_vm(s, url, uuid),
            b.wasmstack_driver_hypervisor().call_start_vm(s, url, uuid)
        )
    }
    pub fn stop_vm(&mut self, url: &str, uuid: &str, timeout_ms: u32) -> Result<(), PluginError> {
        versioned!(
            self,
            "stop-vm",
            |b, s| b.wasmstack_driver_hypervisor().call_stop_vm(s, url, uuid, timeout_ms),
            b.wasmstack_driver_hypervisor().call_stop_vm(s, url, uuid, timeout_ms)
        )
    }
    pub fn reboot_vm(&mut self, url: &str, uuid: &str, forced: bool) -> Result<(), PluginError> {
        versioned!(
            self,
            "reboot-vm",
            |b, s| b.wasmstack_driver_hypervisor().call_reboot_vm(s, url, uuid, forced),
            b.wasmstack_driver_hypervisor().call_reboot_vm(s, url, uuid, forced)
        )
    }
    pub fn destroy_vm(&mut self, url: &str, uuid: &str) -> Result<(), PluginError> {
        versioned!(
            self,
            "destroy-vm",
            |b, s| b.wasmstack_driver_hypervisor().call_destroy_vm(s, url, uuid),
            b.wasmstack_driver_hypervisor().call_destroy_vm(s, url, uuid)
        )
    }
    pub fn power_state(&mut self, url: &str, uuid: &str) -> Result<VmPower, PluginError> {
        versioned!(
            self,
            "power-state",
            |b, s| b.wasmstack_driver_hypervisor().call_power_state(s, url, uuid),
            b.wasmstack_driver_hypervisor().call_power_state(s, url, uuid).map(|r| r.map(compat::vm_power))
        )
    }
    pub fn list_vms(&mut self, url: &str) -> Result<Vec<VmStatus>, PluginError> {
        versioned!(
            self,
            "list-vms",
            |b, s| b.wasmstack_driver_hypervisor().call_list_vms(s, url),
            b.wasmstack_driver_hypervisor().call_list_vms(s, url).map(|r| r.map(compat::vm_statuses))
        )
    }
    pub fn console(&mut self, url: &str, uuid: &str) -> Result<ConsoleEndpoint, PluginError> {
        versioned!(
            self,
            "console",
            |b, s| b.wasmstack_driver_hypervisor().call_console(s, url, uuid),
            b.wasmstack_driver_hypervisor().call_console(s, url, uuid).map(|r| r.map(compat::console_endpoint))
        )
    }
    pub fn stats(&mut self, url: &str, uuid: &str) -> Result<VmStats, PluginError> {
        versioned!(
            self,
            "stats",
            |b, s| b.wasmstack_driver_hypervisor().call_stats(s, url, uuid),
            b.wasmstack_driver_hypervisor().call_stats(s, url, uuid).map(|r| r.map(compat::vm_stats))
        )
    }
    pub fn attach_disk(&mut self, url: &str, uuid: &str, disk: &Disk) -> Result<(), PluginError> {
        versioned!(
            self,
            "attach-disk",
            |b, s| b.wasmstack_driver_hypervisor().call_attach_disk(s, url, uuid, disk),
            b.wasmstack_driver_hypervisor().call_attach_disk(s, url, uuid, &compat::disk(disk))
        )
    }
    pub fn detach_disk(&mut self, url: &str, uuid: &str, target: &str) -> Result<(), PluginError> {
        versioned!(
            self,
            "detach-disk",
            |b, s| b.wasmstack_driver_hypervisor().call_detach_disk(s, url, uuid, target),
            b.wasmstack_driver_hypervisor().call_detach_disk(s, url, uuid, target)
        )
    }
}

/// A loaded storage driver. Every method runs in a fresh store and instance.
#[derive(Clone)]
pub struct StorageDriver {
    plugin: Arc<LoadedPlugin>,
}

/// One storage-driver store and instance kept across several calls. After any trap
/// it must be dropped.
pub struct StorageSession(
    Versioned<StorageBindings, v0_3::StorageBindings, v0_2::StorageBindings, v0_1::StorageBindings>,
);

impl StorageDriver {
    pub(crate) fn new(plugin: Arc<LoadedPlugin>) -> Self {
        StorageDriver { plugin }
    }

    /// The plugin behind this handle (the version it was when the handle was taken).
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// A fresh store and instance for several calls.
    pub fn session(&self) -> Result<StorageSession, PluginError> {
        StorageSession::open(self.plugin.clone())
    }

    pub fn describe(&self) -> Result<WitPluginInfo, PluginError> {
        describe(&self.plugin)
    }
    pub fn attach(&self, url: &str) -> Result<Usage, PluginError> {
        self.session()?.attach(url)
    }
    pub fn capacity(&self, url: &str) -> Result<Usage, PluginError> {
        self.session()?.capacity(url)
    }
    pub fn create_volume(
        &self,
        pool: &str,
        name: &str,
        size_bytes: u64,
        template: Option<&str>,
    ) -> Result<Volume, PluginError> {
        self.session()?.create_volume(pool, name, size_bytes, template)
    }
    pub fn delete_volume(&self, pool: &str, path: &str) -> Result<(), PluginError> {
        self.session()?.delete_volume(pool, path)
    }
    pub fn resize_volume(&self, pool: &str, path: &str, size_bytes: u64) -> Result<Volume, PluginError> {
        self.session()?.resize_volume(pool, path, size_bytes)
    }
    pub fn create_snapshot(&self, pool: &str, path: &str, name: &str) -> Result<(), PluginError> {
        self.session()?.create_snapshot(pool, path, name)
    }
    pub fn revert_snapshot(&self, pool: &str, path: &str, name: &str) -> Result<(), PluginError> {
        self.session()?.revert_snapshot(pool, path, name)
    }
    pub fn delete_snapshot(&self, pool: &str, path: &str, name: &str) -> Result<(), PluginError> {
        self.session()?.delete_snapshot(pool, path, name)
    }
    pub fn export_image(
        &self,
        pool: &str,
        path: &str,
        snapshot: Option<&str>,
        store: &str,
        name: &str,
    ) -> Result<Volume, PluginError> {
        self.session()?.export_image(pool, path, snapshot, store, name)
    }
    pub fn install_template(&self, pool: &str, store: &str, image: &str) -> Result<Volume, PluginError> {
        self.session()?.install_template(pool, store, image)
    }
    pub fn register_image(
        &self,
        store: &str,
        source: &str,
        name: &str,
        format: DiskFormat,
        sha256: Option<&str>,
    ) -> Result<Volume, PluginError> {
        self.session()?.register_image(store, source, name, format, sha256)
    }
    pub fn delete_image(&self, url: &str, path: &str) -> Result<(), PluginError> {
        self.session()?.delete_image(url, path)
    }
    pub fn locate(&self, url: &str, path: &str) -> Result<Locator, PluginError> {
        self.session()?.locate(url, path)
    }
}

impl StorageSession {
    fn open(plugin: Arc<LoadedPlugin>) -> Result<Self, PluginError> {
        open_versioned!(plugin, "storage", Storage, StorageV0_3, StorageV0_2, StorageV0_1).map(StorageSession)
    }

    pub fn attach(&mut self, url: &str) -> Result<Usage, PluginError> {
        versioned!(
            self,
            "attach",
            |b, s| b.wasmstack_driver_storage().call_attach(s, url),
            b.wasmstack_driver_storage().call_attach(s, url).map(|r| r.map(compat::usage))
        )
    }
    pub fn capacity(&mut self, url: &str) -> Result<Usage, PluginError> {
        versioned!(
            self,
            "capacity",
            |b, s| b.wasmstack_driver_storage().call_capacity(s, url),
            b.wasmstack_driver_storage().call_capacity(s, url).map(|r| r.map(compat::usage))
        )
    }
    pub fn create_volume(
        &mut self,
        pool: &str,
        name: &str,
        size_bytes: u64,
        template: Option<&str>,
    ) -> Result<Volume, PluginError> {
        versioned!(
            self,
            "create-volume",
            |b, s| b.wasmstack_driver_storage().call_create_volume(s, pool, name, size_bytes, template),
            b.wasmstack_driver_storage()
                .call_create_volume(s, pool, name, size_bytes, template)
                .map(|r| r.map(compat::volume))
        )
    }
    pub fn delete_volume(&mut self, pool: &str, path: &str) -> Result<(), PluginError> {
        versioned!(
            self,
            "delete-volume",
            |b, s| b.wasmstack_driver_storage().call_delete_volume(s, pool, path),
            b.wasmstack_driver_storage().call_delete_volume(s, pool, path)
        )
    }
    pub fn resize_volume(&mut self, pool: &str, path: &str, size_bytes: u64) -> Result<Volume, PluginError> {
        versioned!(
            self,
            "resize-volume",
            |b, s| b.wasmstack_driver_storage().call_resize_volume(s, pool, path, size_bytes),
            b.wasmstack_driver_storage().call_resize_volume(s, pool, path, size_bytes).map(|r| r.map(compat::volume))
        )
    }
    pub fn create_snapshot(&mut self, pool: &str, path: &str, name: &str) -> Result<(), PluginError> {
        versioned!(
            self,
            "create-snapshot",
            |b, s| b.wasmstack_driver_storage().call_create_snapshot(s, pool, path, name),
            b.wasmstack_driver_storage().call_create_snapshot(s, pool, path, name)
        )
    }
    pub fn revert_snapshot(&mut self, pool: &str, path: &str, name: &str) -> Result<(), PluginError> {
        versioned!(
            self,
            "revert-snapshot",
            |b, s| b.wasmstack_driver_storage().call_revert_snapshot(s, pool, path, name),
            b.wasmstack_driver_storage().call_revert_snapshot(s, pool, path, name)
        )
    }
    pub fn delete_snapshot(&mut self, pool: &str, path: &str, name: &str) -> Result<(), PluginError> {
        versioned!(
            self,
            "delete-snapshot",
            |b, s| b.wasmstack_driver_storage().call_delete_snapshot(s, pool, path, name),
            b.wasmstack_driver_storage().call_delete_snapshot(s, pool, path, name)
        )
    }
    pub fn export_image(
        &mut self,
        pool: &str,
        path: &str,
        snapshot: Option<&str>,
        store: &str,
        name: &str,
    ) -> Result<Volume, PluginError> {
        versioned!(
            self,
            "export-image",
            |b, s| b.wasmstack_driver_storage().call_export_image(s, pool, path, snapshot, store, name),
            b.wasmstack_driver_storage()
                .call_export_image(s, pool, path, snapshot, store, name)
                .map(|r| r.map(compat::volume))
        )
    }
    pub fn install_template(&mut self, pool: &str, store: &str, image: &str) -> Result<Volume, PluginError> {
        versioned!(
            self,
            "install-template",
            |b, s| b.wasmstack_driver_storage().call_install_template(s, pool, store, image),
            b.wasmstack_driver_storage().call_install_template(s, pool, store, image).map(|r| r.map(compat::volume))
        )
    }
    pub fn register_image(
        &mut self,
        store: &str,
        source: &str,
        name: &str,
        format: DiskFormat,
        sha256: Option<&str>,
    ) -> Result<Volume, PluginError> {
        versioned!(
            self,
            "register-image",
            |b, s| b.wasmstack_driver_storage().call_register_image(s, store, source, name, format, sha256),
            b.wasmstack_driver_storage()
                .call_register_image(s, store, source, name, format, sha256)
                .map(|r| r.map(compat::volume))
        )
    }
    pub fn delete_image(&mut self, url: &str, path: &str) -> Result<(), PluginError> {
        versioned!(
            self,
            "delete-image",
            |b, s| b.wasmstack_driver_storage().call_delete_image(s, url, path),
            b.wasmstack_driver_storage().call_delete_image(s, url, path)
        )
    }
    pub fn locate(&mut self, url: &str, path: &str) -> Result<Locator, PluginError> {
        versioned!(
            self,
            "locate",
            |b, s| b.wasmstack_driver_storage().call_locate(s, url, path),
            b.wasmstack_driver_storage().call_locate(s, url, path)
        )
    }
}

/// A loaded network driver. Every method runs in a fresh store and instance.
#[derive(Clone)]
pub struct NetworkDriver {
    plugin: Arc<LoadedPlugin>,
}

/// One network-driver store and instance kept across several calls. After any trap
/// it must be dropped.
pub struct NetworkSession(
    Versioned<NetworkBindings, v0_3::NetworkBindings, v0_2::NetworkBindings, v0_1::NetworkBindings>,
);

impl NetworkDriver {
    pub(crate) fn new(plugin: Arc<LoadedPlugin>) -> Self {
        NetworkDriver { plugin }
    }

    /// The plugin behind this handle (the version it was when the handle was taken).
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// A fresh store and instance for several calls.
    pub fn session(&self) -> Result<NetworkSession, PluginError> {
        NetworkSession::open(self.plugin.clone())
    }

    pub fn describe(&self) -> Result<WitPluginInfo, PluginError> {
        describe(&self.plugin)
    }
    pub fn implement(&self, host: &str, net: &NetworkSpec) -> Result<Attachment, PluginError> {
        self.session()?.implement(host, net)
    }
    pub fn shutdown(&self, host: &str, net: &NetworkSpec) -> Result<(), PluginError> {
        self.session()?.shutdown(host, net)
    }
    pub fn prepare_nic(&self, host: &str, net: &NetworkSpec, nic: &NicSpec) -> Result<Attachment, PluginError> {
        self.session()?.prepare_nic(host, net, nic)
    }
    pub fn release_nic(&self, host: &str, net: &NetworkSpec, nic: &NicSpec) -> Result<(), PluginError> {
        self.session()?.release_nic(host, net, nic)
    }
    /// Makes the network's router on `host` what `router` says (its whole desired state).
    pub fn apply_router(&self, host: &str, net: &NetworkSpec, router: &RouterSpec) -> Result<(), PluginError> {
        self.session()?.apply_router(host, net, router)
    }
    pub fn destroy_router(&self, host: &str, net: &NetworkSpec) -> Result<(), PluginError> {
        self.session()?.destroy_router(host, net)
    }
    pub fn router_status(&self, host: &str, net: &NetworkSpec) -> Result<RouterState, PluginError> {
        self.session()?.router_status(host, net)
    }
    /// Makes the security rules of `nics` (NICs of `net` on `host`) exactly these, all at
    /// once; other NICs keep theirs. Drivers built before contract 0.4.0, and those that
    /// do not serve "SecurityGroup", answer unsupported.
    pub fn apply_security(&self, host: &str, net: &NetworkSpec, nics: &[NicSecurity]) -> Result<(), PluginError> {
        self.session()?.apply_security(host, net, nics)
    }
    /// Removes what `apply_security` set for a NIC's host `device`.
    pub fn remove_security(
        &self,
        host: &str,
        net: &NetworkSpec,
        nic: &NicSpec,
        device: &str,
    ) -> Result<(), PluginError> {
        self.session()?.remove_security(host, net, nic, device)
    }
}

impl NetworkSession {
    fn open(plugin: Arc<LoadedPlugin>) -> Result<Self, PluginError> {
        open_versioned!(plugin, "network", Network, NetworkV0_3, NetworkV0_2, NetworkV0_1).map(NetworkSession)
    }

    pub fn implement(&mut self, host: &str, net: &NetworkSpec) -> Result<Attachment, PluginError> {
        versioned!(
            self,
            "implement",
            |b, s| b.wasmstack_driver_network().call_implement(s, host, net),
            b.wasmstack_driver_network()
                .call_implement(s, host, &compat::network_spec(net))
                .map(|r| r.map(compat::attachment))
        )
    }
    pub fn shutdown(&mut self, host: &str, net: &NetworkSpec) -> Result<(), PluginError> {
        versioned!(
            self,
            "shutdown",
            |b, s| b.wasmstack_driver_network().call_shutdown(s, host, net),
            b.wasmstack_driver_network().call_shutdown(s, host, &compat::network_spec(net))
        )
    }
    pub fn prepare_nic(&mut self, host: &str, net: &NetworkSpec, nic: &NicSpec) -> Result<Attachment, PluginError> {
        versioned!(
            self,
            "prepare-nic",
            |b, s| b.wasmstack_driver_network().call_prepare_nic(s, host, net, nic),
            b.wasmstack_driver_network()
                .call_prepare_nic(s, host, &compat::network_spec(net), &compat::nic_spec(nic))
                .map(|r| r.map(compat::attachment))
        )
    }
    pub fn release_nic(&mut self, host: &str, net: &NetworkSpec, nic: &NicSpec) -> Result<(), PluginError> {
        versioned!(
            self,
            "release-nic",
            |b, s| b.wasmstack_driver_network().call_release_nic(s, host, net, nic),
            b.wasmstack_driver_network().call_release_nic(s, host, &compat::network_spec(net), &compat::nic_spec(nic))
        )
    }
    pub fn apply_router(&mut self, host: &str, net: &NetworkSpec, router: &RouterSpec) -> Result<(), PluginError> {
        match &mut self.0 {
            Versioned::V0_4(x) => {
                x.run("apply-router", |b, s| b.wasmstack_driver_network().call_apply_router(s, host, net, router))
            }
            Versioned::V0_3(x) => x.run("apply-router", |b, s| {
                b.wasmstack_driver_network().call_apply_router(
                    s,
                    host,
                    &compat_v0_3::network_spec(net),
                    &compat_v0_3::router_spec(router),
                )
            }),
            Versioned::V0_2(x) => Err(no_router(&x.plugin)),
            Versioned::V0_1(x) => Err(no_router(&x.plugin)),
        }
    }
    pub fn destroy_router(&mut self, host: &str, net: &NetworkSpec) -> Result<(), PluginError> {
        match &mut self.0 {
            Versioned::V0_4(x) => {
                x.run("destroy-router", |b, s| b.wasmstack_driver_network().call_destroy_router(s, host, net))
            }
            Versioned::V0_3(x) => x.run("destroy-router", |b, s| {
                b.wasmstack_driver_network().call_destroy_router(s, host, &compat_v0_3::network_spec(net))
            }),
            // Drivers that build no routers have none to destroy.
            Versioned::V0_2(_) | Versioned::V0_1(_) => Ok(()),
        }
    }
    pub fn router_status(&mut self, host: &str, net: &NetworkSpec) -> Result<RouterState, PluginError> {
        match &mut self.0 {
            Versioned::V0_4(x) => {
                x.run("router-status", |b, s| b.wasmstack_driver_network().call_router_status(s, host, net))
            }
            Versioned::V0_3(x) => x.run("router-status", |b, s| {
                b.wasmstack_driver_network()
                    .call_router_status(s, host, &compat_v0_3::network_spec(net))
                    .map(|r| r.map(compat_v0_3::router_state))
            }),
            Versioned::V0_2(_) | Versioned::V0_1(_) => Ok(RouterState::Missing),
        }
    }
    /// Makes the security rules of `nics` (of `net`, on `host`) exactly these; see the
    /// contract's `apply-security`. Drivers built before 0.4.0 answer unsupported.
    pub fn apply_security(&mut self, host: &str, net: &NetworkSpec, nics: &[NicSecurity]) -> Result<(), PluginError> {
        match &mut self.0 {
            Versioned::V0_4(x) => {
                x.run("apply-security", |b, s| b.wasmstack_driver_network().call_apply_security(s, host, net, nics))
            }
            Versioned::V0_3(x) => Err(no_security(&x.plugin)),
            Versioned::V0_2(x) => Err(no_security(&x.plugin)),
            Versioned::V0_1(x) => Err(no_security(&x.plugin)),
        }
    }
    /// Removes what `apply_security` set for a NIC's `device`. Drivers built before 0.4.0
    /// answer unsupported.
    pub fn remove_security(
        &mut self,
        host: &str,
        net: &NetworkSpec,
        nic: &NicSpec,
        device: &str,
    ) -> Result<(), PluginError> {
        match &mut self.0 {
            Versioned::V0_4(x) => x.run("remove-security", |b, s| {
                b.wasmstack_driver_network().call_remove_security(s, host, net, nic, device)
            }),
            Versioned::V0_3(x) => Err(no_security(&x.plugin)),
            Versioned::V0_2(x) => Err(no_security(&x.plugin)),
            Versioned::V0_1(x) => Err(no_security(&x.plugin)),
        }
    }
}

/// A driver built before security groups existed was asked to filter NICs.
fn no_security(plugin: &LoadedPlugin) -> PluginError {
    PluginError::Driver {
        plugin: plugin.info.name.clone(),
        error: compat_v0_3::no_security(&plugin.wit_version_label()),
    }
}

/// A driver built before routers existed was asked to build one.
fn no_router(plugin: &LoadedPlugin) -> PluginError {
    PluginError::Driver { plugin: plugin.info.name.clone(), error: compat_v0_2::no_router(&plugin.wit_version_label()) }
}

/// Names the way a call died: memory cap, deadline, panic, or another trap. What
/// the guest wrote to stderr during the call goes into the message.
fn classify(
    plugin: &LoadedPlugin,
    store: &Store<CallState>,
    op: &'static str,
    output_from: usize,
    trap: wasmtime::Error,
) -> PluginError {
    let name = plugin.info.name.clone();
    let state = store.data();
    let output = state.output();
    let output = output.get(output_from..).unwrap_or(&output).trim();
    let limits = plugin.settings.limits;
    if state.limiter.hit {
        let detail = if output.is_empty() { String::new() } else { format!(" ({})", cut(&last_lines(output, 2))) };
        return PluginError::OutOfMemory { plugin: name, op, limit_mib: limits.memory_mib, detail };
    }
    if trap.downcast_ref::<Trap>() == Some(&Trap::Interrupt) || trap.downcast_ref::<DeadlinePassed>().is_some() {
        return PluginError::Timeout { plugin: name, op, limit_ms: limits.timeout.as_millis() as u64 };
    }
    if let Some(at) = output.find("panicked at ") {
        // Rust prints "thread '…' panicked at file:line:col:\nmessage"; keep the message.
        let after = &output[at..];
        let message = after.split_once('\n').map_or(after, |(_, m)| m);
        let message = message.lines().take_while(|l| !l.starts_with("note:")).collect::<Vec<_>>().join("\n");
        return PluginError::Panicked { plugin: name, op, message: cut(message.trim()) };
    }
    let mut message = trap.root_cause().to_string();
    if !output.is_empty() {
        message = format!("{message}; stderr: {}", last_lines(output, 5));
    }
    PluginError::Trapped { plugin: name, op, message: cut(&message) }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

// What a driver may answer. A driver's answer is copied out of its memory by wasmtime
// before any of this runs, so the copy itself is bounded by the plugin's memory cap
// (`memory-mib`: at most a few times that much host memory for one call); these bounds
// keep what the server then stores, logs, and sends to clients small. Each is documented in
// docs/writing-a-driver.md and in the WIT's comments.

/// Names, versions, labels, UUIDs, host names, bridge names and other short text, in bytes.
pub const MAX_SHORT_TEXT: usize = 256;
/// A plugin's one-line description, in bytes.
pub const MAX_DESCRIPTION: usize = 1024;
/// A plugin's config-schema (JSON), in bytes.
pub const MAX_CONFIG_SCHEMA: usize = 64 << 10;
/// How many capabilities `describe()` may ask for.
pub const MAX_CAPABILITIES: usize = 256;
/// One capability's scope (a URI pattern, URL prefix or name prefix), in bytes.
pub const MAX_CAPABILITY: usize = 1024;
/// Paths and locators (file paths, image paths, block devices), in bytes: Linux's PATH_MAX.
pub const MAX_PATH: usize = 4096;
/// Layers in a network disk's backing chain.
pub const MAX_BACKING_CHAIN: usize = 256;
/// VMs in one `list-vms` answer.
pub const MAX_VMS: usize = 16384;
/// The text of a driver error, in bytes; a longer one is cut there, with a marker.
pub const MAX_ERROR_TEXT: usize = 4096;

/// An answer whose size can be checked: the message says what is too big.
trait Answer {
    fn bound(&self) -> Result<(), String>;
}

fn text(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("{what} is {} bytes, at most {max} allowed", value.len()));
    }
    Ok(())
}

fn count<T>(what: &str, list: &[T], max: usize) -> Result<(), String> {
    if list.len() > max {
        return Err(format!("{} {what}, at most {max} allowed", list.len()));
    }
    Ok(())
}

impl Answer for () {
    fn bound(&self) -> Result<(), String> {
        Ok(())
    }
}

macro_rules! no_text {
    ($($t:ty),*) => {$(
        impl Answer for $t {
            fn bound(&self) -> Result<(), String> {
                Ok(())
            }
        }
    )*};
}
no_text!(VmPower, VmStats, Usage, RouterState);

impl Answer for WitPluginInfo {
    fn bound(&self) -> Result<(), String> {
        text("the name", &self.name, MAX_SHORT_TEXT)?;
        text("the version", &self.version, MAX_SHORT_TEXT)?;
        text("the description", &self.description, MAX_DESCRIPTION)?;
        count("capabilities", &self.capabilities, MAX_CAPABILITIES)?;
        for c in &self.capabilities {
            let (Capability::Libvirt(scope)
            | Capability::Images(scope)
            | Capability::Netdev(scope)
            | Capability::Endpoint(scope)) = c;
            text("a capability", scope, MAX_CAPABILITY)?;
        }
        text("the config-schema", &self.config_schema, MAX_CONFIG_SCHEMA)
    }
}

impl Answer for HostFacts {
    fn bound(&self) -> Result<(), String> {
        text("cpu-model", &self.cpu_model, MAX_SHORT_TEXT)?;
        text("hypervisor-version", &self.hypervisor_version, MAX_SHORT_TEXT)
    }
}

impl Answer for Vec<VmStatus> {
    fn bound(&self) -> Result<(), String> {
        count("VMs", self, MAX_VMS)?;
        for vm in self {
            text("a VM's uuid", &vm.uuid, MAX_SHORT_TEXT)?;
            text("a VM's name", &vm.name, MAX_SHORT_TEXT)?;
        }
        Ok(())
    }
}

impl Answer for HostTarget {
    fn bound(&self) -> Result<(), String> {
        text("the url", &self.url, MAX_PATH)?;
        text("the address", &self.address, MAX_SHORT_TEXT)
    }
}

impl Answer for ConsoleEndpoint {
    fn bound(&self) -> Result<(), String> {
        text("the protocol", &self.protocol, MAX_SHORT_TEXT)?;
        text("the host", &self.host, MAX_SHORT_TEXT)
    }
}

impl Answer for Locator {
    fn bound(&self) -> Result<(), String> {
        match self {
            Locator::File(f) => text("the locator's path", &f.path, MAX_PATH),
            Locator::Block(device) => text("the locator's device", device, MAX_PATH),
            Locator::Network(n) => {
                text("the locator's protocol", &n.protocol, MAX_SHORT_TEXT)?;
                text("the locator's host", &n.host, MAX_SHORT_TEXT)?;
                text("the locator's path", &n.path, MAX_PATH)?;
                count("backing images", &n.backing, MAX_BACKING_CHAIN)?;
                n.backing.iter().try_for_each(|b| text("a backing image's path", &b.path, MAX_PATH))
            }
        }
    }
}

impl Answer for Volume {
    fn bound(&self) -> Result<(), String> {
        text("the path", &self.path, MAX_PATH)?;
        self.locator.bound()
    }
}

impl Answer for Attachment {
    fn bound(&self) -> Result<(), String> {
        text("the bridge", &self.bridge, MAX_SHORT_TEXT)
    }
}

/// `text` cut to at most `MAX_ERROR_TEXT` bytes (on a character boundary), saying so.
pub(crate) fn cut(text: &str) -> String {
    if text.len() <= MAX_ERROR_TEXT {
        return text.to_owned();
    }
    let marker = format!(" … [cut: {} bytes in all]", text.len());
    let mut end = MAX_ERROR_TEXT - marker.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &text[..end])
}

/// A driver error with its text cut to `MAX_ERROR_TEXT`.
fn bound_error(error: DriverError) -> DriverError {
    let bounded = |t: String| if t.len() <= MAX_ERROR_TEXT { t } else { cut(&t) };
    match error {
        DriverError::InvalidSpec(t) => DriverError::InvalidSpec(bounded(t)),
        DriverError::NotFound(t) => DriverError::NotFound(bounded(t)),
        DriverError::Unavailable(t) => DriverError::Unavailable(bounded(t)),
        DriverError::Denied(t) => DriverError::Denied(bounded(t)),
        DriverError::Unsupported(t) => DriverError::Unsupported(bounded(t)),
        DriverError::Failed(t) => DriverError::Failed(bounded(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> WitPluginInfo {
        WitPluginInfo {
            name: "kvm".into(),
            version: "1.0.0".into(),
            kind: DriverKind::Hypervisor,
            serves: crate::plugins::bindings::plugin::Serves::Hypervisor(Vec::new()),
            description: "KVM".into(),
            capabilities: vec![Capability::Libvirt("qemu:///system".into())],
            config_schema: "{}".into(),
        }
    }

    #[test]
    fn every_part_of_describe_is_bounded() {
        assert_eq!(info().bound(), Ok(()));
        let long = |n: usize| "x".repeat(n);
        let cases: Vec<(WitPluginInfo, &str)> = vec![
            (WitPluginInfo { name: long(257), ..info() }, "the name is 257 bytes, at most 256 allowed"),
            (WitPluginInfo { version: long(300), ..info() }, "the version is 300 bytes, at most 256 allowed"),
            (WitPluginInfo { description: long(1025), ..info() }, "the description is 1025 bytes, at most 1024"),
            (
                WitPluginInfo { capabilities: vec![Capability::Netdev("ws-".into()); 257], ..info() },
                "257 capabilities, at most 256 allowed",
            ),
            (
                WitPluginInfo { capabilities: vec![Capability::Images(long(1025))], ..info() },
                "a capability is 1025 bytes, at most 1024",
            ),
            (WitPluginInfo { config_schema: long(65537), ..info() }, "the config-schema is 65537 bytes, at most 65536"),
        ];
        for (answer, expected) in cases {
            let err = answer.bound().unwrap_err();
            assert!(err.starts_with(expected), "{err}");
        }
        let at_the_limits = WitPluginInfo {
            name: long(256),
            description: long(1024),
            capabilities: vec![Capability::Images(long(1024)); 256],
            config_schema: long(65536),
            ..info()
        };
        assert_eq!(at_the_limits.bound(), Ok(()));
    }

    #[test]
    fn long_error_texts_are_cut_with_a_marker() {
        let DriverError::Failed(t) = bound_error(DriverError::Failed("no such VM".into())) else { unreachable!() };
        assert_eq!(t, "no such VM");
        let DriverError::NotFound(t) = bound_error(DriverError::NotFound("é".repeat(3 << 20))) else { unreachable!() };
        assert!(t.len() <= MAX_ERROR_TEXT, "{}", t.len());
        assert!(t.ends_with(" … [cut: 6291456 bytes in all]"), "{}", &t[t.len() - 40..]);
        assert!(t.starts_with("éé"));
        assert_eq!(cut(&"y".repeat(MAX_ERROR_TEXT)).len(), MAX_ERROR_TEXT);
    }

    #[test]
    fn paths_lists_and_labels_are_bounded() {
        use crate::plugins::bindings::types::{BackingImage, FileDisk, NetworkDisk};
        let file = |n: usize| Locator::File(FileDisk { path: "/".repeat(n), format: DiskFormat::Qcow2 });
        assert_eq!(file(MAX_PATH).bound(), Ok(()));
        assert!(file(MAX_PATH + 1).bound().unwrap_err().starts_with("the locator's path is 4097 bytes"));
        let volume = |path: String| Volume { path, locator: file(10), virtual_size: 1, physical_size: 1 };
        assert!(volume("v".repeat(20 << 20)).bound().unwrap_err().starts_with("the path is 20971520 bytes"));
        let chain = |n: usize| {
            Locator::Network(NetworkDisk {
                protocol: "nfs".into(),
                host: "h".into(),
                port: None,
                path: "/e/v".into(),
                format: DiskFormat::Qcow2,
                backing: vec![BackingImage { path: "/e/t".into(), format: DiskFormat::Qcow2 }; n],
            })
        };
        assert_eq!(chain(MAX_BACKING_CHAIN).bound(), Ok(()));
        assert!(chain(MAX_BACKING_CHAIN + 1).bound().unwrap_err().starts_with("257 backing images"));
        let vm = |name: String| VmStatus { uuid: "u".into(), name, power: VmPower::Running };
        assert!(vec![vm("a".into()); MAX_VMS + 1].bound().unwrap_err().starts_with("16385 VMs, at most 16384"));
        assert!(vec![vm("n".repeat(300))].bound().unwrap_err().starts_with("a VM's name is 300 bytes"));
        let facts = HostFacts {
            cpus: 1,
            cpu_mhz: 1,
            cpu_model: "m".repeat(1 << 20),
            memory_bytes: 1,
            hypervisor_version: "QEMU".into(),
            hardware_accel: false,
        };
        assert!(facts.bound().unwrap_err().starts_with("cpu-model is 1048576 bytes"));
        let attachment = Attachment { bridge: "b".repeat(257), openvswitch: false, vlan: None };
        assert!(attachment.bound().is_err());
    }
}
