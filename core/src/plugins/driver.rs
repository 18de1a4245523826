//! Typed calls into drivers, each in a fresh store unless a session is asked for.
//!
//! A call that traps (panic, deadline, memory cap) fails alone with an error that
//! says which; the store and instance are dropped, so the next call starts clean.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Store, Trap};

use super::bindings::hypervisor::{ConsoleEndpoint, Disk, HostFacts, VmPower, VmSpec, VmStats, VmStatus};
use super::bindings::network::{Attachment, NetworkSpec, NicSpec};
use super::bindings::plugin::{Capability, DriverKind, PluginInfo as WitPluginInfo};
use super::bindings::storage::{Usage, Volume};
use super::bindings::types::{DiskFormat, DriverError, Locator};
use super::bindings::{HypervisorBindings, NetworkBindings, StorageBindings, network_world, storage_world};
use super::error::PluginError;
use super::host::{DriverPre, LoadedPlugin, deadline_ticks};
use super::state::{CallState, DeadlinePassed};

/// Runs `describe()` in a fresh store, whichever kind of driver it is.
pub(crate) fn describe(plugin: &LoadedPlugin) -> Result<WitPluginInfo, PluginError> {
    let plugin = Arc::new(clone_for_probe(plugin));
    match &plugin.pre {
        DriverPre::Hypervisor(_) => HypervisorSession::open(plugin)?
            .0
            .run("describe", |b, s| b.wasmstack_driver_plugin().call_describe(s).map(Ok)),
        DriverPre::Storage(_) => StorageSession::open(plugin)?
            .0
            .run("describe", |b, s| b.wasmstack_driver_plugin().call_describe(s).map(Ok))
            .map(storage_info),
        DriverPre::Network(_) => NetworkSession::open(plugin)?
            .0
            .run("describe", |b, s| b.wasmstack_driver_plugin().call_describe(s).map(Ok))
            .map(network_info),
    }
}

/// The storage and network worlds have their own copies of the `plugin` types
/// (bindgen shares imports between worlds, not exports); the host works with one.
macro_rules! world_info {
    ($fn:ident, $world:ident) => {
        fn $fn(i: $world::exports::wasmstack::driver::plugin::PluginInfo) -> WitPluginInfo {
            use $world::exports::wasmstack::driver::plugin::{Capability as C, DriverKind as K};
            WitPluginInfo {
                name: i.name,
                version: i.version,
                kind: match i.kind {
                    K::Hypervisor => DriverKind::Hypervisor,
                    K::Storage => DriverKind::Storage,
                    K::Network => DriverKind::Network,
                },
                description: i.description,
                capabilities: i
                    .capabilities
                    .into_iter()
                    .map(|c| match c {
                        C::Libvirt(p) => Capability::Libvirt(p),
                        C::Images(p) => Capability::Images(p),
                        C::Netdev(p) => Capability::Netdev(p),
                    })
                    .collect(),
                config_schema: i.config_schema,
            }
        }
    };
}
world_info!(storage_info, storage_world);
world_info!(network_info, network_world);

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

    /// Runs one export under a new deadline and turns traps into errors.
    fn run<R>(
        &mut self,
        op: &'static str,
        f: impl FnOnce(&B, &mut Store<CallState>) -> wasmtime::Result<Result<R, DriverError>>,
    ) -> Result<R, PluginError> {
        let timeout = self.plugin.settings.limits.timeout;
        self.store.data_mut().begin_call(Instant::now() + timeout);
        self.store.set_epoch_deadline(deadline_ticks(timeout));
        let output_before = self.store.data().output().len();
        let started = Instant::now();
        let result = f(&self.bindings, &mut self.store);
        // Where a workflow's time goes, for operators chasing a slow one.
        tracing::debug!(plugin = %self.plugin.info.name, op, ms = started.elapsed().as_secs_f64() * 1e3, "driver call");
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(error)) => Err(PluginError::Driver { plugin: self.plugin.info.name.clone(), error }),
            Err(trap) => Err(classify(&self.plugin, &self.store, op, output_before, trap)),
        }
    }
}

/// A loaded hypervisor driver. Every method runs in a fresh store and instance.
#[derive(Clone)]
pub struct HypervisorDriver {
    plugin: Arc<LoadedPlugin>,
}

/// One store and instance kept across several calls (for a workflow, or to measure
/// the call overhead alone). After any trap it must be dropped.
pub struct HypervisorSession(Session<HypervisorBindings>);

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
        let instantiate = |pre: &DriverPre, store: &mut Store<CallState>| match pre {
            DriverPre::Hypervisor(p) => Some(p.instantiate(store)),
            _ => None,
        };
        Session::open(plugin, instantiate, "hypervisor").map(HypervisorSession)
    }

    fn run<R>(
        &mut self,
        op: &'static str,
        f: impl FnOnce(&HypervisorBindings, &mut Store<CallState>) -> wasmtime::Result<Result<R, DriverError>>,
    ) -> Result<R, PluginError> {
        self.0.run(op, f)
    }

    pub fn probe_host(&mut self, url: &str) -> Result<HostFacts, PluginError> {
        self.run("probe-host", |b, s| b.wasmstack_driver_hypervisor().call_probe_host(s, url))
    }
    pub fn create_vm(&mut self, url: &str, spec: &VmSpec) -> Result<(), PluginError> {
        self.run("create-vm", |b, s| b.wasmstack_driver_hypervisor().call_create_vm(s, url, spec))
    }
    pub fn start_vm(&mut self, url: &str, uuid: &str) -> Result<(), PluginError> {
        self.run("start-vm", |b, s| b.wasmstack_driver_hypervisor().call_start_vm(s, url, uuid))
    }
    pub fn stop_vm(&mut self, url: &str, uuid: &str, timeout_ms: u32) -> Result<(), PluginError> {
        self.run("stop-vm", |b, s| b.wasmstack_driver_hypervisor().call_stop_vm(s, url, uuid, timeout_ms))
    }
    pub fn reboot_vm(&mut self, url: &str, uuid: &str, forced: bool) -> Result<(), PluginError> {
        self.run("reboot-vm", |b, s| b.wasmstack_driver_hypervisor().call_reboot_vm(s, url, uuid, forced))
    }
    pub fn destroy_vm(&mut self, url: &str, uuid: &str) -> Result<(), PluginError> {
        self.run("destroy-vm", |b, s| b.wasmstack_driver_hypervisor().call_destroy_vm(s, url, uuid))
    }
    pub fn power_state(&mut self, url: &str, uuid: &str) -> Result<VmPower, PluginError> {
        self.run("power-state", |b, s| b.wasmstack_driver_hypervisor().call_power_state(s, url, uuid))
    }
    pub fn list_vms(&mut self, url: &str) -> Result<Vec<VmStatus>, PluginError> {
        self.run("list-vms", |b, s| b.wasmstack_driver_hypervisor().call_list_vms(s, url))
    }
    pub fn console(&mut self, url: &str, uuid: &str) -> Result<ConsoleEndpoint, PluginError> {
        self.run("console", |b, s| b.wasmstack_driver_hypervisor().call_console(s, url, uuid))
    }
    pub fn stats(&mut self, url: &str, uuid: &str) -> Result<VmStats, PluginError> {
        self.run("stats", |b, s| b.wasmstack_driver_hypervisor().call_stats(s, url, uuid))
    }
    pub fn attach_disk(&mut self, url: &str, uuid: &str, disk: &Disk) -> Result<(), PluginError> {
        self.run("attach-disk", |b, s| b.wasmstack_driver_hypervisor().call_attach_disk(s, url, uuid, disk))
    }
    pub fn detach_disk(&mut self, url: &str, uuid: &str, target: &str) -> Result<(), PluginError> {
        self.run("detach-disk", |b, s| b.wasmstack_driver_hypervisor().call_detach_disk(s, url, uuid, target))
    }
}

/// A loaded storage driver. Every method runs in a fresh store and instance.
#[derive(Clone)]
pub struct StorageDriver {
    plugin: Arc<LoadedPlugin>,
}

/// One storage-driver store and instance kept across several calls. After any trap
/// it must be dropped.
pub struct StorageSession(Session<StorageBindings>);

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
        let instantiate = |pre: &DriverPre, store: &mut Store<CallState>| match pre {
            DriverPre::Storage(p) => Some(p.instantiate(store)),
            _ => None,
        };
        Session::open(plugin, instantiate, "storage").map(StorageSession)
    }

    fn run<R>(
        &mut self,
        op: &'static str,
        f: impl FnOnce(&StorageBindings, &mut Store<CallState>) -> wasmtime::Result<Result<R, DriverError>>,
    ) -> Result<R, PluginError> {
        self.0.run(op, f)
    }

    pub fn attach(&mut self, url: &str) -> Result<Usage, PluginError> {
        self.run("attach", |b, s| b.wasmstack_driver_storage().call_attach(s, url))
    }
    pub fn capacity(&mut self, url: &str) -> Result<Usage, PluginError> {
        self.run("capacity", |b, s| b.wasmstack_driver_storage().call_capacity(s, url))
    }
    pub fn create_volume(
        &mut self,
        pool: &str,
        name: &str,
        size_bytes: u64,
        template: Option<&str>,
    ) -> Result<Volume, PluginError> {
        self.run("create-volume", |b, s| {
            b.wasmstack_driver_storage().call_create_volume(s, pool, name, size_bytes, template)
        })
    }
    pub fn delete_volume(&mut self, pool: &str, path: &str) -> Result<(), PluginError> {
        self.run("delete-volume", |b, s| b.wasmstack_driver_storage().call_delete_volume(s, pool, path))
    }
    pub fn resize_volume(&mut self, pool: &str, path: &str, size_bytes: u64) -> Result<Volume, PluginError> {
        self.run("resize-volume", |b, s| b.wasmstack_driver_storage().call_resize_volume(s, pool, path, size_bytes))
    }
    pub fn create_snapshot(&mut self, pool: &str, path: &str, name: &str) -> Result<(), PluginError> {
        self.run("create-snapshot", |b, s| b.wasmstack_driver_storage().call_create_snapshot(s, pool, path, name))
    }
    pub fn revert_snapshot(&mut self, pool: &str, path: &str, name: &str) -> Result<(), PluginError> {
        self.run("revert-snapshot", |b, s| b.wasmstack_driver_storage().call_revert_snapshot(s, pool, path, name))
    }
    pub fn delete_snapshot(&mut self, pool: &str, path: &str, name: &str) -> Result<(), PluginError> {
        self.run("delete-snapshot", |b, s| b.wasmstack_driver_storage().call_delete_snapshot(s, pool, path, name))
    }
    pub fn export_image(
        &mut self,
        pool: &str,
        path: &str,
        snapshot: Option<&str>,
        store: &str,
        name: &str,
    ) -> Result<Volume, PluginError> {
        self.run("export-image", |b, s| {
            b.wasmstack_driver_storage().call_export_image(s, pool, path, snapshot, store, name)
        })
    }
    pub fn install_template(&mut self, pool: &str, store: &str, image: &str) -> Result<Volume, PluginError> {
        self.run("install-template", |b, s| b.wasmstack_driver_storage().call_install_template(s, pool, store, image))
    }
    pub fn register_image(
        &mut self,
        store: &str,
        source: &str,
        name: &str,
        format: DiskFormat,
        sha256: Option<&str>,
    ) -> Result<Volume, PluginError> {
        self.run("register-image", |b, s| {
            b.wasmstack_driver_storage().call_register_image(s, store, source, name, format, sha256)
        })
    }
    pub fn delete_image(&mut self, url: &str, path: &str) -> Result<(), PluginError> {
        self.run("delete-image", |b, s| b.wasmstack_driver_storage().call_delete_image(s, url, path))
    }
    pub fn locate(&mut self, url: &str, path: &str) -> Result<Locator, PluginError> {
        self.run("locate", |b, s| b.wasmstack_driver_storage().call_locate(s, url, path))
    }
}

/// A loaded network driver. Every method runs in a fresh store and instance.
#[derive(Clone)]
pub struct NetworkDriver {
    plugin: Arc<LoadedPlugin>,
}

/// One network-driver store and instance kept across several calls. After any trap
/// it must be dropped.
pub struct NetworkSession(Session<NetworkBindings>);

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
}

impl NetworkSession {
    fn open(plugin: Arc<LoadedPlugin>) -> Result<Self, PluginError> {
        let instantiate = |pre: &DriverPre, store: &mut Store<CallState>| match pre {
            DriverPre::Network(p) => Some(p.instantiate(store)),
            _ => None,
        };
        Session::open(plugin, instantiate, "network").map(NetworkSession)
    }

    fn run<R>(
        &mut self,
        op: &'static str,
        f: impl FnOnce(&NetworkBindings, &mut Store<CallState>) -> wasmtime::Result<Result<R, DriverError>>,
    ) -> Result<R, PluginError> {
        self.0.run(op, f)
    }

    pub fn implement(&mut self, host: &str, net: &NetworkSpec) -> Result<Attachment, PluginError> {
        self.run("implement", |b, s| b.wasmstack_driver_network().call_implement(s, host, net))
    }
    pub fn shutdown(&mut self, host: &str, net: &NetworkSpec) -> Result<(), PluginError> {
        self.run("shutdown", |b, s| b.wasmstack_driver_network().call_shutdown(s, host, net))
    }
    pub fn prepare_nic(&mut self, host: &str, net: &NetworkSpec, nic: &NicSpec) -> Result<Attachment, PluginError> {
        self.run("prepare-nic", |b, s| b.wasmstack_driver_network().call_prepare_nic(s, host, net, nic))
    }
    pub fn release_nic(&mut self, host: &str, net: &NetworkSpec, nic: &NicSpec) -> Result<(), PluginError> {
        self.run("release-nic", |b, s| b.wasmstack_driver_network().call_release_nic(s, host, net, nic))
    }
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
        let detail = if output.is_empty() { String::new() } else { format!(" ({})", last_lines(output, 2)) };
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
        return PluginError::Panicked { plugin: name, op, message: message.trim().to_owned() };
    }
    let mut message = trap.root_cause().to_string();
    if !output.is_empty() {
        message = format!("{message}; stderr: {}", last_lines(output, 5));
    }
    PluginError::Trapped { plugin: name, op, message }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}
