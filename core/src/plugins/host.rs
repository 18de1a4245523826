//! Loading, validating and replacing driver components.
//!
//! One wasmtime `Engine` serves every plugin. A component is compiled once per content
//! hash and kept as an `InstancePre`; each driver call gets a fresh `Store` (see
//! `driver.rs`). A file that changes in the plugin folder is validated in full before
//! it replaces the loaded plugin; calls already running keep the old `Arc` and finish
//! on the old code.
//!
//! A plugin's name is the stem of its file name (`kvm.wasm` is the driver `kvm`): the
//! operator decides which file is which driver, and so which grants it gets; a component
//! whose `describe()` gives another name is refused.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasData, HasSelf, Linker, Resource};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::clocks::{WasiClocksCtxView, WasiClocksView};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;

use super::bindings::plugin::{Capability as WitCapability, DriverKind as WitKind};
use super::bindings::{
    HypervisorBindings, HypervisorDriverPre, NetworkDriverPre, StorageDriverPre, endpoint as wit_endpoint,
    images as wit_images, libvirt as wit_libvirt, log as wit_log, netdev as wit_netdev, v0_1, v0_2, v0_3,
};
use super::caps::images::ImageActivity;
use super::caps::libvirt::LibvirtPool;
use super::config::{HostConfig, Limits, PluginSettings};
use super::downloads::DownloadPolicy;
use super::error::PluginError;
use super::facts::{HypervisorType, Serves};
use super::grants::{Capability, Grants};
use super::guest_data::{GuestDataPlane, GuestDataSource};
use super::state::{CallState, DeadlinePassed};

/// The WIT package this server implements; components built against any
/// semver-compatible version (0.4.x) load, and so do 0.3.x, 0.2.x and 0.1.x ones, adapted
/// (`compat_v0_3`, `compat_v0_2`, `compat_v0_1`).
pub const SUPPORTED_WIT: &str = "wasmstack:driver@0.4.0";
const WIT_PACKAGE: &str = "wasmstack:driver";
const SUPPORTED_MAJOR_MINOR: (u64, u64) = (0, 4);

/// Granularity of call deadlines: the engine's epoch advances this often.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// Calls that may run at once, across all plugins; the pool reserves address space
/// (not memory) for this many instances.
const POOL_INSTANCES: u32 = 256;
/// The largest memory cap a plugin can be given.
pub(crate) const MAX_MEMORY_MIB: usize = 1024;

/// How many reload events are kept for `plugins list` and the console.
const EVENTS_KEPT: usize = 64;

/// The kind of a driver, from the world its component targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    Hypervisor,
    Storage,
    Network,
}

impl DriverKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::Hypervisor => "hypervisor",
            DriverKind::Storage => "storage",
            DriverKind::Network => "network",
        }
    }
}

/// What a driver said about itself in `describe()`.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub kind: DriverKind,
    /// What it serves: hypervisor types, isolation methods or storage providers and schemes.
    pub serves: Serves,
    pub description: String,
    /// What it asks for.
    pub capabilities: Vec<Capability>,
    pub config_schema: serde_json::Value,
}

/// Pieces shared by every loaded plugin.
pub(crate) struct Runtime {
    pub engine: Engine,
    pub libvirt: Arc<LibvirtPool>,
    pub images: Arc<ImageActivity>,
    pub downloads: Arc<DownloadPolicy>,
    pub guest_data: Arc<GuestDataPlane>,
}

/// A component linked and ready to instantiate, by the world it targets and the
/// contract version it was built against.
#[derive(Clone)]
pub(crate) enum DriverPre {
    Hypervisor(HypervisorDriverPre<CallState>),
    Storage(StorageDriverPre<CallState>),
    Network(NetworkDriverPre<CallState>),
    HypervisorV0_3(v0_3::HypervisorDriverPre<CallState>),
    StorageV0_3(v0_3::StorageDriverPre<CallState>),
    NetworkV0_3(v0_3::NetworkDriverPre<CallState>),
    HypervisorV0_2(v0_2::HypervisorDriverPre<CallState>),
    StorageV0_2(v0_2::StorageDriverPre<CallState>),
    NetworkV0_2(v0_2::NetworkDriverPre<CallState>),
    HypervisorV0_1(v0_1::HypervisorDriverPre<CallState>),
    StorageV0_1(v0_1::StorageDriverPre<CallState>),
    NetworkV0_1(v0_1::NetworkDriverPre<CallState>),
}

impl DriverPre {
    pub(crate) fn kind(&self) -> DriverKind {
        match self {
            DriverPre::Hypervisor(_)
            | DriverPre::HypervisorV0_3(_)
            | DriverPre::HypervisorV0_2(_)
            | DriverPre::HypervisorV0_1(_) => DriverKind::Hypervisor,
            DriverPre::Storage(_)
            | DriverPre::StorageV0_3(_)
            | DriverPre::StorageV0_2(_)
            | DriverPre::StorageV0_1(_) => DriverKind::Storage,
            DriverPre::Network(_)
            | DriverPre::NetworkV0_3(_)
            | DriverPre::NetworkV0_2(_)
            | DriverPre::NetworkV0_1(_) => DriverKind::Network,
        }
    }
}

/// The contract versions this server speaks: 0.4.x natively, 0.3.x, 0.2.x and 0.1.x
/// through the adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WitVersion {
    V0_1,
    V0_2,
    V0_3,
    V0_4,
}

/// A validated driver, ready to be instantiated.
pub struct LoadedPlugin {
    pub info: PluginInfo,
    pub file: PathBuf,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// The WIT package version the component was built against.
    pub wit_version: String,
    /// What the operator granted and the limits that apply.
    pub settings: PluginSettings,
    pub loaded_at: SystemTime,
    pub(crate) name: Arc<str>,
    pub(crate) grants: Arc<Grants>,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) pre: DriverPre,
}

impl LoadedPlugin {
    /// "wasmstack:driver@0.1.0": the contract it was built against.
    pub fn wit_version_label(&self) -> String {
        format!("{WIT_PACKAGE}@{}", self.wit_version)
    }

    /// The capabilities it asks for that the operator has not granted.
    pub fn missing_grants(&self) -> Vec<Capability> {
        self.info.capabilities.iter().filter(|c| !self.settings.grants.covers(c)).cloned().collect()
    }

    /// A store for one call: the plugin's grants, memory cap and deadline.
    pub(crate) fn new_store(&self) -> Store<CallState> {
        let limits = self.settings.limits;
        let mut state = CallState::new(
            self.name.clone(),
            self.grants.clone(),
            self.runtime.libvirt.clone(),
            self.runtime.images.clone(),
            self.runtime.downloads.clone(),
            (limits.memory_mib as usize) << 20,
            Instant::now() + limits.timeout,
        );
        state.guest_data = self.runtime.guest_data.clone();
        let mut store = Store::new(&self.runtime.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline_ticks(limits.timeout));
        store
    }
}

pub(crate) fn deadline_ticks(timeout: Duration) -> u64 {
    (timeout.as_micros() / TICK.as_micros()) as u64 + 1
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("info", &self.info)
            .field("file", &self.file)
            .field("sha256", &self.sha256)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// One outcome of loading a file from the plugin folder.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadEvent {
    pub file: PathBuf,
    #[serde(with = "unix_seconds")]
    pub at: SystemTime,
    /// The plugin concerned, when known.
    pub plugin: Option<String>,
    /// Whether the file is now in use.
    pub loaded: bool,
    pub message: String,
}

mod unix_seconds {
    use std::time::{SystemTime, UNIX_EPOCH};
    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
    }
}

#[derive(Clone, PartialEq)]
struct FileStamp {
    modified: SystemTime,
    len: u64,
    /// Of `NAME.wasm.sig`, so that a signature dropped in after the file is seen.
    signature: Option<(SystemTime, u64)>,
}

struct FileSeen {
    stamp: FileStamp,
    plugin: Option<String>,
}

/// One version of a file being validated, and what came of it once done.
struct Validation {
    file: PathBuf,
    stamp: FileStamp,
    outcome: Mutex<Option<ReloadEvent>>,
    done: Condvar,
}

impl Validation {
    fn new(file: PathBuf, stamp: FileStamp) -> Self {
        Validation { file, stamp, outcome: Mutex::new(None), done: Condvar::new() }
    }

    fn finish(&self, outcome: ReloadEvent) {
        *lock(&self.outcome) = Some(outcome);
        self.done.notify_all();
    }

    fn wait(&self) -> ReloadEvent {
        let mut outcome = lock(&self.outcome);
        loop {
            if let Some(ev) = outcome.as_ref() {
                return ev.clone();
            }
            outcome = self.done.wait(outcome).unwrap_or_else(|e| e.into_inner());
        }
    }
}

struct Inner {
    runtime: Arc<Runtime>,
    linker: Linker<CallState>,
    config: RwLock<HostConfig>,
    components: Mutex<HashMap<String, Component>>,
    plugins: RwLock<BTreeMap<String, Arc<LoadedPlugin>>>,
    /// What was made of each file, by the version last validated.
    files: Mutex<HashMap<PathBuf, FileSeen>>,
    /// The newest version of each file under validation. Lock order: `files`, then this,
    /// then `plugins`.
    validating: Mutex<HashMap<PathBuf, Arc<Validation>>>,
    events: Mutex<VecDeque<ReloadEvent>>,
    /// Serialises the start of scans so that two scans never start on the same file.
    scanning: Mutex<()>,
    /// SHA-256 of the configuration file's text as last read, applied or not; held while
    /// a reload runs, so that reloads happen one at a time.
    config_seen: Mutex<Option<[u8; 32]>>,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// The plugin host. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

impl PluginHost {
    /// Builds the engine and linker. Nothing is loaded until `scan` (or `watch`).
    pub fn new(config: HostConfig) -> Result<Self, PluginError> {
        let mut cfg = Config::new();
        cfg.wasm_component_model(true);
        cfg.epoch_interruption(true);
        // A fresh instance per call is only cheap when instances reuse pooled,
        // still-mapped slots instead of mapping and faulting in new memory each time.
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(POOL_INSTANCES);
        pool.total_core_instances(POOL_INSTANCES * 4);
        pool.total_memories(POOL_INSTANCES * 2);
        pool.total_tables(POOL_INSTANCES * 4);
        pool.max_memory_size(MAX_MEMORY_MIB << 20);
        pool.linear_memory_keep_resident(0);
        pool.table_keep_resident(64 << 10);
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&cfg).map_err(|e| PluginError::Config(format!("wasm engine: {e}")))?;

        let mut linker = Linker::new(&engine);
        let link_err = |e: wasmtime::Error| PluginError::Config(format!("linking host capabilities: {e}"));
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link_err)?;
        // WASI's own monotonic clock lets a driver wait as long as it asks; this one ends
        // every wait at the call's deadline (see `CallClocks`).
        linker.allow_shadowing(true);
        monotonic_clock::add_to_linker::<CallState, CallClocks>(&mut linker, CallClocks::of).map_err(link_err)?;
        linker.allow_shadowing(false);
        HypervisorBindings::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(link_err)?;
        // The storage world shares `log` and `types` with the hypervisor world (see
        // bindings.rs), so only its own import is added here.
        wit_images::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(link_err)?;
        // Likewise the network world: only `netdev` is its own.
        wit_netdev::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(link_err)?;
        // The same host capabilities once more under their 0.3.0, 0.2.0 and 0.1.0 names,
        // for drivers built against those: the interfaces only grew since (a driver imports
        // the functions it knows), but a linker matches 0.1 to 0.4 as different packages.
        // `types` only holds types, so an empty instance names it.
        linker.instance(v0_3::TYPES).map_err(link_err)?;
        let mut log = linker.instance(v0_3::LOG).map_err(link_err)?;
        wit_log::add_to_linker_instance::<_, HasSelf<_>>(&mut log, |s| s).map_err(link_err)?;
        let mut libvirt = linker.instance(v0_3::LIBVIRT).map_err(link_err)?;
        wit_libvirt::add_to_linker_instance::<_, HasSelf<_>>(&mut libvirt, |s| s).map_err(link_err)?;
        let mut endpoint = linker.instance(v0_3::ENDPOINT).map_err(link_err)?;
        wit_endpoint::add_to_linker_instance::<_, HasSelf<_>>(&mut endpoint, |s| s).map_err(link_err)?;
        let mut images = linker.instance(v0_3::IMAGES).map_err(link_err)?;
        wit_images::add_to_linker_instance::<_, HasSelf<_>>(&mut images, |s| s).map_err(link_err)?;
        let mut netdev = linker.instance(v0_3::NETDEV).map_err(link_err)?;
        wit_netdev::add_to_linker_instance::<_, HasSelf<_>>(&mut netdev, |s| s).map_err(link_err)?;
        linker.instance(v0_2::TYPES).map_err(link_err)?;
        let mut log = linker.instance(v0_2::LOG).map_err(link_err)?;
        wit_log::add_to_linker_instance::<_, HasSelf<_>>(&mut log, |s| s).map_err(link_err)?;
        let mut libvirt = linker.instance(v0_2::LIBVIRT).map_err(link_err)?;
        wit_libvirt::add_to_linker_instance::<_, HasSelf<_>>(&mut libvirt, |s| s).map_err(link_err)?;
        let mut endpoint = linker.instance(v0_2::ENDPOINT).map_err(link_err)?;
        wit_endpoint::add_to_linker_instance::<_, HasSelf<_>>(&mut endpoint, |s| s).map_err(link_err)?;
        let mut images = linker.instance(v0_2::IMAGES).map_err(link_err)?;
        wit_images::add_to_linker_instance::<_, HasSelf<_>>(&mut images, |s| s).map_err(link_err)?;
        let mut netdev = linker.instance(v0_2::NETDEV).map_err(link_err)?;
        wit_netdev::add_to_linker_instance::<_, HasSelf<_>>(&mut netdev, |s| s).map_err(link_err)?;
        linker.instance(v0_1::TYPES).map_err(link_err)?;
        let mut log = linker.instance(v0_1::LOG).map_err(link_err)?;
        wit_log::add_to_linker_instance::<_, HasSelf<_>>(&mut log, |s| s).map_err(link_err)?;
        let mut libvirt = linker.instance(v0_1::LIBVIRT).map_err(link_err)?;
        wit_libvirt::add_to_linker_instance::<_, HasSelf<_>>(&mut libvirt, |s| s).map_err(link_err)?;
        let mut images = linker.instance(v0_1::IMAGES).map_err(link_err)?;
        wit_images::add_to_linker_instance::<_, HasSelf<_>>(&mut images, |s| s).map_err(link_err)?;
        let mut netdev = linker.instance(v0_1::NETDEV).map_err(link_err)?;
        wit_netdev::add_to_linker_instance::<_, HasSelf<_>>(&mut netdev, |s| s).map_err(link_err)?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), stop_ticker.clone());

        // What the configuration was read from, so that the watcher does not apply it again
        // (a missing file reads as empty, as `reload_config` reads it).
        let config_seen = config.file.as_deref().and_then(|f| read_config_text(f).ok()).map(|t| digest(&t));
        let runtime = Arc::new(Runtime {
            engine,
            libvirt: Arc::new(LibvirtPool::default()),
            images: Arc::new(ImageActivity::default()),
            downloads: Arc::new(DownloadPolicy::new(config.allowed_internal_sites.clone())),
            guest_data: Arc::new(GuestDataPlane::default()),
        });
        Ok(PluginHost {
            inner: Arc::new(Inner {
                runtime,
                linker,
                config: RwLock::new(config),
                components: Mutex::new(HashMap::new()),
                plugins: RwLock::new(BTreeMap::new()),
                files: Mutex::new(HashMap::new()),
                validating: Mutex::new(HashMap::new()),
                events: Mutex::new(VecDeque::new()),
                scanning: Mutex::new(()),
                config_seen: Mutex::new(config_seen),
                stop_ticker,
            }),
        })
    }

    /// The folder plugins are loaded from.
    pub fn dir(&self) -> PathBuf {
        read(&self.inner.config).dir.clone()
    }

    /// How often the folder should be rescanned (the configuration's `watch-ms`).
    pub fn watch_interval(&self) -> Option<Duration> {
        read(&self.inner.config).watch_interval()
    }

    /// The configuration file the settings are read from and API changes saved to, if any.
    pub fn config_file(&self) -> Option<PathBuf> {
        read(&self.inner.config).file.clone()
    }

    /// The shared libvirt connections.
    pub fn libvirt(&self) -> &Arc<LibvirtPool> {
        &self.inner.runtime.libvirt
    }

    /// What the images capability is doing: downloads and their progress.
    pub fn images(&self) -> &Arc<ImageActivity> {
        &self.inner.runtime.images
    }

    /// Which addresses downloads may reach (see `downloads`).
    pub fn downloads(&self) -> &Arc<DownloadPolicy> {
        &self.inner.runtime.downloads
    }

    /// From now on, serves guest data (metadata, userdata, passwords) from `source`
    /// beside every DHCP service a driver runs in a namespace, with the connections on
    /// `runtime`. `owner` names this server across restarts: the running services it
    /// served before (a previous run of it) get their listeners now.
    pub fn serve_guest_data(&self, source: Arc<dyn GuestDataSource>, runtime: tokio::runtime::Handle, owner: &str) {
        self.inner.runtime.guest_data.set_source(source, runtime, owner);
        super::caps::netdev::serve_running_services(&self.inner.runtime.guest_data);
    }

    /// The guest-data services beside namespaced DHCP services.
    pub fn guest_data(&self) -> &Arc<GuestDataPlane> {
        &self.inner.runtime.guest_data
    }

    /// The loaded plugin of that name.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        read(&self.inner.plugins).get(name).cloned()
    }

    /// Every loaded plugin, by name.
    pub fn list(&self) -> Vec<Arc<LoadedPlugin>> {
        read(&self.inner.plugins).values().cloned().collect()
    }

    /// Recent load, reload and refusal events, oldest first.
    pub fn events(&self) -> Vec<ReloadEvent> {
        lock(&self.inner.events).iter().cloned().collect()
    }

    /// Changes a plugin's grants; calls that start afterwards see them.
    pub fn set_grants(&self, name: &str, grants: Grants) -> Result<(), PluginError> {
        write(&self.inner.config).grant(name, grants);
        self.refresh_settings(name)
    }

    /// Changes a plugin's limits; calls that start afterwards see them.
    pub fn set_limits(&self, name: &str, limits: Limits) -> Result<(), PluginError> {
        write(&self.inner.config).limit(name, limits);
        self.refresh_settings(name)
    }

    /// Rereads the configuration file (if the host has one) and, when its text changed,
    /// applies it whole: grants and limits of the loaded plugins (calls that start
    /// afterwards see them), the default limits, pins and trusted keys (checked when a file
    /// is next loaded), the plugin folder and the internal sites downloads may reach. A file
    /// that does not read is not applied: the previous settings stay, an event says why, and
    /// so does the error. A missing file reads as empty. Whether anything was applied.
    pub fn reload_config(&self) -> Result<bool, PluginError> {
        let Some(path) = self.config_file() else {
            return Ok(false);
        };
        let mut seen = lock(&self.inner.config_seen);
        let text = read_config_text(&path).map_err(|source| PluginError::Io { path: path.clone(), source })?;
        let hash = digest(&text);
        let changed = *seen != Some(hash);
        *seen = Some(hash);
        let shown = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = match HostConfig::parse(&text, base) {
            Ok(c) => c,
            Err(e) => {
                let reason = match e {
                    PluginError::Config(m) => m,
                    other => other.to_string(),
                };
                let message = format!("{shown} not applied, the previous settings stay: {reason}");
                if changed {
                    self.record(&[event(&path, None, false, message.clone())]);
                }
                return Err(PluginError::Config(message));
            }
        };
        if !changed {
            return Ok(false);
        }
        config.file = Some(path.clone());
        self.inner.runtime.downloads.set_sites(config.allowed_internal_sites.clone());
        *write(&self.inner.config) = config;
        // Collected first: the read guard must be gone before `refresh_settings` writes.
        let names: Vec<String> = read(&self.inner.plugins).keys().cloned().collect();
        for name in names {
            // A plugin unloaded meanwhile has nothing to refresh.
            let _ = self.refresh_settings(&name);
        }
        self.record(&[event(&path, None, true, format!("settings reloaded from {shown}"))]);
        Ok(true)
    }

    fn refresh_settings(&self, name: &str) -> Result<(), PluginError> {
        let settings = read(&self.inner.config).settings(name);
        let mut plugins = write(&self.inner.plugins);
        let Some(old) = plugins.get(name) else {
            return Err(PluginError::NotLoaded { name: name.to_owned(), kind: "loaded" });
        };
        let updated = LoadedPlugin {
            info: old.info.clone(),
            file: old.file.clone(),
            sha256: old.sha256.clone(),
            wit_version: old.wit_version.clone(),
            grants: Arc::new(settings.grants.clone()),
            settings,
            loaded_at: old.loaded_at,
            name: old.name.clone(),
            runtime: old.runtime.clone(),
            pre: old.pre.clone(),
        };
        plugins.insert(name.to_owned(), Arc::new(updated));
        Ok(())
    }

    /// Compiles and validates one file without installing it: it must be a component
    /// for a supported WIT version whose `describe()` answers sensibly. The file's name
    /// does not matter here (`plugins inspect`, `plugins check`); the settings shown are
    /// those of the name `describe()` gives.
    pub fn load_file(&self, path: &Path) -> Result<LoadedPlugin, PluginError> {
        self.load(path, None)
    }

    /// Validates `path` as the plugin `name`, the name the operator installed it under
    /// (the stem of its file name in the plugin folder, or the name an upload was given):
    /// on top of `load_file`'s checks, its `describe()` must give that same name, and the
    /// file must match what `[plugin.NAME]` pins (`sha256`, `signed-by`). Grants, limits
    /// and pins are the operator's for that name; the component has no say in which.
    pub fn load_as(&self, path: &Path, name: &str) -> Result<LoadedPlugin, PluginError> {
        self.load(path, Some(name))
    }

    fn load(&self, path: &Path, installed_as: Option<&str>) -> Result<LoadedPlugin, PluginError> {
        let invalid = |reason: String| PluginError::Invalid { file: path.to_owned(), reason };
        if let Some(name) = installed_as
            && !super::scaffold::valid_name(name)
        {
            return Err(invalid(format!(
                "{name}.wasm is not a plugin name; a plugin's name is its file name, 1-32 lowercase letters, digits and dashes"
            )));
        }
        let bytes = std::fs::read(path).map_err(|source| PluginError::Io { path: path.to_owned(), source })?;
        let digest = Sha256::digest(&bytes);
        let sha256 = hex::encode(digest);
        // Checked before compiling: an untrusted file never reaches the compiler.
        let limits = {
            let config = read(&self.inner.config);
            if config.require_signature {
                super::signing::verify(path, &digest, &config.trusted_keys).map_err(invalid)?;
            }
            match installed_as {
                Some(name) => {
                    let pin = config.pin(name);
                    if let Some(pinned) = &pin.sha256
                        && *pinned != sha256
                    {
                        return Err(invalid(format!(
                            "its SHA-256 is {sha256}, but [plugin.{name}] pins sha256 = \"{pinned}\""
                        )));
                    }
                    if !pin.signed_by.is_empty() {
                        super::signing::verify(path, &digest, &pin.signed_by)
                            .map_err(|e| invalid(format!("[plugin.{name}] has signed-by: {e}")))?;
                    }
                    // Its own deadline and memory cap, so that describe() honours them too.
                    config.settings(name).limits
                }
                None => config.defaults,
            }
        };
        let component = self.compile(&sha256, &bytes).map_err(invalid)?;
        drop(bytes);
        let (kind, contract, wit_version) =
            interface_version(&component, &self.inner.runtime.engine).map_err(invalid)?;
        let instance_pre =
            self.inner.linker.instantiate_pre(&component).map_err(|e| invalid(format!("cannot link: {e:#}")))?;
        let missing = |e: wasmtime::Error| invalid(format!("missing exports: {e:#}"));
        let pre = match (kind, contract) {
            (DriverKind::Hypervisor, WitVersion::V0_4) => {
                DriverPre::Hypervisor(HypervisorDriverPre::new(instance_pre).map_err(missing)?)
            }
            (DriverKind::Storage, WitVersion::V0_4) => {
                DriverPre::Storage(StorageDriverPre::new(instance_pre).map_err(missing)?)
            }
            (DriverKind::Network, WitVersion::V0_4) => {
                DriverPre::Network(NetworkDriverPre::new(instance_pre).map_err(missing)?)
            }
            (DriverKind::Hypervisor, WitVersion::V0_3) => {
                DriverPre::HypervisorV0_3(v0_3::HypervisorDriverPre::new(instance_pre).map_err(missing)?)
            }
            (DriverKind::Storage, WitVersion::V0_3) => {
                DriverPre::StorageV0_3(v0_3::StorageDriverPre::new(instance_pre).map_err(missing)?)
            }
            (DriverKind::Network, WitVersion::V0_3) => {
                DriverPre::NetworkV0_3(v0_3::NetworkDriverPre::new(instance_pre).map_err(missing)?)
            }
            (DriverKind::Hypervisor, WitVersion::V0_2) => {
                DriverPre::HypervisorV0_2(v0_2::HypervisorDriverPre::new(instance_pre).map_err(missing)?)
            }
            (DriverKind::Storage, WitVersion::V0_2) => {
                DriverPre::StorageV0_2(v0_2::StorageDriverPre::new(instance_pre).map_err(missing)?)
            }
            (DriverKind::Network, WitVersion::V0_2) => {
                DriverPre::NetworkV0_2(v0_2::NetworkDriverPre::new(instance_pre).map_err(missing)?)
            }
            (DriverKind::Hypervisor, WitVersion::V0_1) => {
                DriverPre::HypervisorV0_1(v0_1::HypervisorDriverPre::new(instance_pre).map_err(missing)?)
            }
            (DriverKind::Storage, WitVersion::V0_1) => {
                DriverPre::StorageV0_1(v0_1::StorageDriverPre::new(instance_pre).map_err(missing)?)
            }
            (DriverKind::Network, WitVersion::V0_1) => {
                DriverPre::NetworkV0_1(v0_1::NetworkDriverPre::new(instance_pre).map_err(missing)?)
            }
        };

        // describe() runs with no grants: it must not need anything.
        let settings = PluginSettings { grants: Grants::default(), limits };
        let probe_name = installed_as.map(str::to_owned).unwrap_or_else(|| {
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("plugin").chars().take(64).collect()
        });
        let mut probe = LoadedPlugin {
            info: PluginInfo {
                name: probe_name.clone(),
                version: String::new(),
                kind,
                serves: Serves::nothing(kind),
                description: String::new(),
                capabilities: Vec::new(),
                config_schema: serde_json::Value::Null,
            },
            file: path.to_owned(),
            sha256,
            wit_version,
            grants: Arc::new(Grants::default()),
            settings,
            loaded_at: SystemTime::now(),
            name: Arc::from(probe_name.as_str()),
            runtime: self.inner.runtime.clone(),
            pre,
        };
        let raw = super::driver::describe(&probe).map_err(|e| invalid(format!("describe() failed: {e}")))?;
        let info = check_info(raw, kind).map_err(invalid)?;
        if let Some(name) = installed_as
            && info.name != name
        {
            return Err(invalid(format!(
                "it calls itself \"{}\" in describe() but was installed as {name}.wasm; a plugin's name is its \
                 file name (grants are keyed by it), so install it as {}.wasm",
                info.name, info.name
            )));
        }
        probe.settings = read(&self.inner.config).settings(&info.name);
        probe.grants = Arc::new(probe.settings.grants.clone());
        probe.name = Arc::from(info.name.as_str());
        probe.info = info;
        Ok(probe)
    }

    fn compile(&self, sha256: &str, bytes: &[u8]) -> Result<Component, String> {
        if let Some(c) = lock(&self.inner.components).get(sha256) {
            return Ok(c.clone());
        }
        if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
            return Err("not a WebAssembly file".into());
        }
        if bytes[4..8] == [1, 0, 0, 0] {
            return Err("a core WebAssembly module, not a component; build the driver for wasm32-wasip2".into());
        }
        let component =
            Component::new(&self.inner.runtime.engine, bytes).map_err(|e| format!("not a valid component: {e:#}"))?;
        lock(&self.inner.components).insert(sha256.to_owned(), component.clone());
        Ok(component)
    }

    /// Brings the loaded set in line with the plugin folder: new and changed files are
    /// validated and, if good, replace what was loaded; a refused file leaves the old
    /// plugin in place; a removed file unloads its plugin. Returns what happened, once
    /// every changed file has been dealt with.
    ///
    /// Each file is validated on its own thread under its own plugin's deadline, and is
    /// put in use as soon as it passes: a file that takes long (a `describe()` that loops
    /// until its deadline) holds up no other.
    pub fn scan(&self) -> Vec<ReloadEvent> {
        let (mut events, pending) = self.start_scan();
        events.extend(pending.iter().map(|v| v.wait()));
        events
    }

    /// Like `scan`, but waits only for what becomes of `file` (if it changed), not for the
    /// other files being validated meanwhile.
    pub fn scan_file(&self, file: &Path) -> Vec<ReloadEvent> {
        let (mut events, pending) = self.start_scan();
        events.extend(pending.iter().filter(|v| v.file == file).map(|v| v.wait()));
        events
    }

    /// The files being validated now.
    pub fn validating(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = lock(&self.inner.validating).keys().cloned().collect();
        files.sort();
        files
    }

    /// Unloads the plugins of removed files and starts validating new and changed ones;
    /// returns the unloads and the validations the folder's files now wait on.
    fn start_scan(&self) -> (Vec<ReloadEvent>, Vec<Arc<Validation>>) {
        let _one_at_a_time = lock(&self.inner.scanning);
        let dir = self.dir();
        let mut events = Vec::new();
        let mut present = HashMap::new();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
                        continue;
                    }
                    if let Ok(meta) = entry.metadata()
                        && meta.is_file()
                    {
                        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                        let signature = std::fs::metadata(super::signing::signature_path(&path))
                            .ok()
                            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
                        present.insert(path, FileStamp { modified, len: meta.len(), signature });
                    }
                }
            }
            Err(e) => events.push(event(&dir, None, false, format!("cannot read the plugin folder: {e}"))),
        }

        let mut files = lock(&self.inner.files);
        let gone: Vec<PathBuf> = files.keys().filter(|p| !present.contains_key(*p)).cloned().collect();
        for path in gone {
            if let Some(name) = files.remove(&path).and_then(|seen| seen.plugin) {
                let mut plugins = write(&self.inner.plugins);
                if plugins.get(&name).is_some_and(|p| p.file == path) {
                    plugins.remove(&name);
                    events.push(event(&path, Some(name), false, "file removed; plugin unloaded".into()));
                }
            }
        }

        let mut validating = lock(&self.inner.validating);
        let mut pending = Vec::new();
        let mut paths: Vec<_> = present.into_iter().collect();
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, stamp) in paths {
            if files.get(&path).is_some_and(|seen| seen.stamp == stamp) {
                continue;
            }
            if let Some(under_way) = validating.get(&path)
                && under_way.stamp == stamp
            {
                pending.push(under_way.clone());
                continue;
            }
            // A validation of an older version of the file, if any, is superseded by this one.
            let validation = Arc::new(Validation::new(path.clone(), stamp));
            validating.insert(path.clone(), validation.clone());
            pending.push(validation.clone());
            let host = self.clone();
            std::thread::Builder::new()
                .name("plugin-load".into())
                .spawn(move || host.validate(&path, &validation))
                .expect("spawning a plugin validation");
        }
        drop(validating);
        drop(files);
        self.record(&events);
        (events, pending)
    }

    /// Validates one file of the plugin folder and, if it is still the newest version of
    /// that file, puts it in use or records why not.
    fn validate(&self, path: &Path, validation: &Arc<Validation>) {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        // Whatever happens, the validation ends: scans wait for it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.load_as(path, &name)))
            .unwrap_or_else(|_| {
                let reason = "validating it crashed the loader; see the server log".to_owned();
                Err(PluginError::Invalid { file: path.to_owned(), reason })
            });
        let label = super::scaffold::valid_name(&name).then(|| name.clone());
        // (what came of it, whether it stands): a superseded outcome is only for the scans waiting.
        let (ev, stands) = {
            let mut files = lock(&self.inner.files);
            let mut validating = lock(&self.inner.validating);
            let newest = validating.get(path).is_some_and(|v| Arc::ptr_eq(v, validation));
            if newest {
                validating.remove(path);
            }
            if !newest {
                let msg = "superseded: the file changed while it was being validated";
                (event(path, label, false, msg.into()), false)
            } else if !path.exists() {
                (event(path, label, false, "file removed while it was being validated".into()), false)
            } else {
                let previous = files.get(path).and_then(|s| s.plugin.clone());
                let (plugin, ev) = self.install(path, label, result, previous);
                files.insert(path.to_owned(), FileSeen { stamp: validation.stamp.clone(), plugin });
                (ev, true)
            }
        };
        if stands {
            self.record(std::slice::from_ref(&ev));
        } else {
            tracing::debug!(file = %path.display(), "{}", ev.message);
        }
        validation.finish(ev);
    }

    /// Logs events and keeps them for `events()`.
    fn record(&self, events: &[ReloadEvent]) {
        let mut log = lock(&self.inner.events);
        for ev in events {
            if ev.loaded {
                tracing::info!(file = %ev.file.display(), "{}", ev.message);
            } else {
                tracing::warn!(file = %ev.file.display(), "{}", ev.message);
            }
            log.push_back(ev.clone());
            while log.len() > EVENTS_KEPT {
                log.pop_front();
            }
        }
    }

    /// Makes a validated file the plugin of its name, or records why it was refused.
    fn install(
        &self,
        path: &Path,
        label: Option<String>,
        result: Result<LoadedPlugin, PluginError>,
        previous: Option<String>,
    ) -> (Option<String>, ReloadEvent) {
        let mut loaded = match result {
            Ok(p) => p,
            Err(e) => {
                let reason = match e {
                    PluginError::Invalid { reason, .. } => reason,
                    other => other.to_string(),
                };
                let keep = previous
                    .as_deref()
                    .and_then(|n| self.get(n))
                    .map_or(String::new(), |old| format!("; still using {} {}", old.info.name, old.info.version));
                return (previous, event(path, label, false, format!("refused: {reason}{keep}")));
            }
        };
        let name = loaded.info.name.clone();
        let mut plugins = write(&self.inner.plugins);
        // The settings as they are now: the configuration file may have been reread while
        // this file was validated.
        loaded.settings = read(&self.inner.config).settings(&name);
        loaded.grants = Arc::new(loaded.settings.grants.clone());
        if let Some(other) = plugins.get(&name)
            && other.file != path
        {
            let msg = format!("refused: plugin \"{name}\" is already loaded from {}", other.file.display());
            return (None, event(path, Some(name), false, msg));
        }
        let message = match plugins.get(&name) {
            Some(old) => format!("replaced {name} {} with {}", old.info.version, loaded.info.version),
            None => format!("loaded {name} {}", loaded.info.version),
        };
        plugins.insert(name.clone(), Arc::new(loaded));
        (Some(name.clone()), event(path, Some(name), true, message))
    }

    /// Scans the plugin folder every `interval` on a background thread until the
    /// returned handle is dropped. A scan does not wait for its validations, so a file
    /// dropped in while another is still being validated is picked up at the next tick.
    /// Each tick first rereads the configuration file (`reload_config`), so that an edited
    /// grant or limit takes effect without a call.
    pub fn watch(&self, interval: Duration) -> WatchHandle {
        let stop = Arc::new(AtomicBool::new(false));
        let host = Arc::downgrade(&self.inner);
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("plugin-watch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    match host.upgrade() {
                        Some(inner) => {
                            let host = PluginHost { inner };
                            // A refusal is recorded as an event; the scan goes on with the old settings.
                            let _ = host.reload_config();
                            drop(host.start_scan());
                        }
                        None => return,
                    }
                    std::thread::sleep(interval);
                }
            })
            .expect("spawning the plugin watcher");
        WatchHandle { stop }
    }

    /// The loaded hypervisor driver serving `hypervisor_type`, and the type as it declared it.
    pub fn hypervisor_serving(&self, hypervisor_type: &str) -> Option<(Arc<LoadedPlugin>, HypervisorType)> {
        choose(self.list().into_iter().filter_map(|p| {
            let t = p.info.serves.hypervisor_type(hypervisor_type)?.clone();
            Some((p, t))
        }))
    }

    /// Every served hypervisor type with the driver serving it (one entry per type, the
    /// chosen driver), by name.
    pub fn hypervisor_types(&self) -> Vec<(Arc<LoadedPlugin>, HypervisorType)> {
        let plugins = self.list();
        let names = plugins.iter().flat_map(|p| match &p.info.serves {
            Serves::Hypervisor { types } => types.iter().map(|t| t.name.clone()).collect(),
            _ => Vec::new(),
        });
        distinct(names).into_iter().filter_map(|n| self.hypervisor_serving(&n)).collect()
    }

    /// The loaded network driver serving the isolation method, and the method as it spelled it.
    pub fn network_serving(&self, isolation_method: &str) -> Option<(Arc<LoadedPlugin>, String)> {
        choose(self.list().into_iter().filter_map(|p| {
            let m = p.info.serves.isolation_method(isolation_method)?.to_owned();
            Some((p, m))
        }))
    }

    /// Every served isolation method with the driver serving it (one entry per method), by name.
    pub fn isolation_methods(&self) -> Vec<(Arc<LoadedPlugin>, String)> {
        let plugins = self.list();
        let names = plugins.iter().flat_map(|p| match &p.info.serves {
            Serves::Network(n) => n.isolation_methods.clone(),
            _ => Vec::new(),
        });
        distinct(names).into_iter().filter_map(|n| self.network_serving(&n)).collect()
    }

    /// The storage driver serving a provider name ("NFS").
    pub fn storage_for_provider(&self, provider: &str) -> Option<Arc<LoadedPlugin>> {
        choose(self.list().into_iter().filter(|p| p.info.serves.serves_provider(provider)).map(|p| (p, ())))
            .map(|c| c.0)
    }

    /// The storage driver serving a URL scheme ("nfs").
    pub fn storage_for_scheme(&self, scheme: &str) -> Option<Arc<LoadedPlugin>> {
        choose(self.list().into_iter().filter(|p| p.info.serves.serves_scheme(scheme)).map(|p| (p, ()))).map(|c| c.0)
    }

    /// A handle on a loaded hypervisor driver.
    pub fn hypervisor(&self, name: &str) -> Result<super::driver::HypervisorDriver, PluginError> {
        match self.get(name) {
            Some(p) if p.info.kind == DriverKind::Hypervisor => Ok(super::driver::HypervisorDriver::new(p)),
            _ => Err(PluginError::NotLoaded { name: name.to_owned(), kind: "hypervisor" }),
        }
    }

    /// A handle on a loaded storage driver.
    pub fn storage(&self, name: &str) -> Result<super::driver::StorageDriver, PluginError> {
        match self.get(name) {
            Some(p) if p.info.kind == DriverKind::Storage => Ok(super::driver::StorageDriver::new(p)),
            _ => Err(PluginError::NotLoaded { name: name.to_owned(), kind: "storage" }),
        }
    }

    /// A handle on a loaded network driver.
    pub fn network(&self, name: &str) -> Result<super::driver::NetworkDriver, PluginError> {
        match self.get(name) {
            Some(p) if p.info.kind == DriverKind::Network => Ok(super::driver::NetworkDriver::new(p)),
            _ => Err(PluginError::NotLoaded { name: name.to_owned(), kind: "network" }),
        }
    }
}

/// Stops a `watch` thread when dropped.
pub struct WatchHandle {
    stop: Arc<AtomicBool>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn event(file: &Path, plugin: Option<String>, loaded: bool, message: String) -> ReloadEvent {
    ReloadEvent { file: file.to_owned(), at: SystemTime::now(), plugin, loaded, message }
}

/// The configuration file's text; a missing file reads as empty (nothing configured).
fn read_config_text(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        other => other,
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The monotonic clock a driver sees. A driver waits only through clock subscriptions
/// (it has no sockets, files or input that could keep it waiting), and each of these
/// ends by the call's deadline: a wait that would outlast it is cut to end there, when
/// the epoch deadline then ends the call. Past the deadline a new wait ends the call at
/// once. The pollable itself, and polling it, stay WASI's own.
struct CallClocks;

impl HasData for CallClocks {
    type Data<'a> = BoundedClocks<'a>;
}

impl CallClocks {
    fn of(state: &mut CallState) -> BoundedClocks<'_> {
        let deadline = state.deadline;
        BoundedClocks { clocks: state.clocks(), deadline }
    }
}

struct BoundedClocks<'a> {
    clocks: WasiClocksCtxView<'a>,
    deadline: Instant,
}

impl BoundedClocks<'_> {
    /// Nanoseconds left before the deadline; none left ends the call.
    fn left(&self) -> wasmtime::Result<u64> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(DeadlinePassed.into());
        }
        Ok(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl monotonic_clock::Host for BoundedClocks<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        self.clocks.now()
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        self.clocks.resolution()
    }

    fn subscribe_instant(&mut self, when: monotonic_clock::Instant) -> wasmtime::Result<Resource<DynPollable>> {
        let left = self.left()?;
        let wait = when.saturating_sub(self.clocks.now()?);
        self.clocks.subscribe_duration(wait.min(left))
    }

    fn subscribe_duration(&mut self, wait: monotonic_clock::Duration) -> wasmtime::Result<Resource<DynPollable>> {
        let left = self.left()?;
        self.clocks.subscribe_duration(wait.min(left))
    }
}

fn spawn_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }
        })
        .expect("spawning the epoch ticker");
}

/// Finds which driver interface the component exports and the WIT version it was
/// built against, refusing versions this server does not speak and components that mix
/// versions.
fn interface_version(component: &Component, engine: &Engine) -> Result<(DriverKind, WitVersion, String), String> {
    let ty = component.component_type();
    let mut kind = None;
    let mut versions = Vec::new();
    let mut names: Vec<(String, bool)> =
        ty.exports(engine).map(|(n, i)| (n.to_owned(), matches!(i.ty, ComponentItem::ComponentInstance(_)))).collect();
    names.extend(ty.imports(engine).map(|(n, _)| (n.to_owned(), false)));
    for (name, exported) in names {
        let Some(rest) = name.strip_prefix(WIT_PACKAGE).and_then(|r| r.strip_prefix('/')) else {
            continue;
        };
        let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
        versions.push(version.to_owned());
        if exported {
            kind = match iface {
                "hypervisor" => Some(DriverKind::Hypervisor),
                "storage" => Some(DriverKind::Storage),
                "network" => Some(DriverKind::Network),
                _ => kind,
            };
        }
    }
    let Some(version) = versions.first().cloned() else {
        return Err(format!("exports no {WIT_PACKAGE} interface; is it a wasmstack driver?"));
    };
    let mut contract = None;
    for v in &versions {
        let Some(this) = compatible(v) else {
            return Err(format!(
                "built for {WIT_PACKAGE}@{v}; this server supports {WIT_PACKAGE}@0.4.x ({SUPPORTED_WIT}) and, \
                 adapted, {WIT_PACKAGE}@0.3.x, 0.2.x and 0.1.x"
            ));
        };
        if contract.is_some_and(|c| c != this) {
            return Err(format!("mixes {WIT_PACKAGE}@{version} with @{v}; build it against one version"));
        }
        contract = Some(this);
    }
    let contract = contract.unwrap_or(WitVersion::V0_4);
    let kind = kind.ok_or_else(|| format!("exports none of {WIT_PACKAGE}/hypervisor, storage or network"))?;
    Ok((kind, contract, version))
}

/// Of several drivers serving the same thing, the one built against the newest WIT
/// version, then the first by name (byte order): the choice does not depend on the order
/// files were loaded in. `candidates` come in name order (`list`).
fn choose<T>(candidates: impl Iterator<Item = (Arc<LoadedPlugin>, T)>) -> Option<(Arc<LoadedPlugin>, T)> {
    let mut best: Option<(Arc<LoadedPlugin>, T)> = None;
    for c in candidates {
        let newer = match &best {
            None => true,
            Some(b) => {
                let (v, w) = (semver(&c.0.wit_version), semver(&b.0.wit_version));
                v > w || (v == w && c.0.info.name < b.0.info.name)
            }
        };
        if newer {
            best = Some(c);
        }
    }
    best
}

/// "0.2.1" as (0, 2, 1); what does not parse counts as oldest.
fn semver(version: &str) -> (u64, u64, u64) {
    let mut parts = version.split('.').map(|p| p.split(['-', '+']).next().unwrap_or("").parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The names without repeats (compared without ASCII case), sorted that way; the first
/// spelling met is kept.
fn distinct(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for n in names {
        seen.entry(n.to_ascii_lowercase()).or_insert(n);
    }
    seen.into_values().collect()
}

/// Which contract a version belongs to, if this server speaks it.
fn compatible(version: &str) -> Option<WitVersion> {
    let mut parts = version.split('.').map(|p| p.split(['-', '+']).next().unwrap_or("").parse::<u64>());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor)), Some(Ok(_))) if (major, minor) == SUPPORTED_MAJOR_MINOR => {
            Some(WitVersion::V0_4)
        }
        (Some(Ok(0)), Some(Ok(3)), Some(Ok(_))) => Some(WitVersion::V0_3),
        (Some(Ok(0)), Some(Ok(2)), Some(Ok(_))) => Some(WitVersion::V0_2),
        (Some(Ok(0)), Some(Ok(1)), Some(Ok(_))) => Some(WitVersion::V0_1),
        _ => None,
    }
}

fn check_info(raw: super::bindings::plugin::PluginInfo, world: DriverKind) -> Result<PluginInfo, String> {
    let name_ok = !raw.name.is_empty()
        && raw.name.len() <= 32
        && raw.name.starts_with(|c: char| c.is_ascii_lowercase())
        && raw.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        return Err(format!("describe() gave the name {:?}; use 1-32 lowercase letters, digits and dashes", raw.name));
    }
    if raw.version.trim().is_empty() {
        return Err("describe() gave an empty version".into());
    }
    let kind = match raw.kind {
        WitKind::Hypervisor => DriverKind::Hypervisor,
        WitKind::Storage => DriverKind::Storage,
        WitKind::Network => DriverKind::Network,
    };
    if kind != world {
        return Err(format!("describe() says kind {} but the component is a {} driver", kind.as_str(), world.as_str()));
    }
    let config_schema: serde_json::Value = serde_json::from_str(&raw.config_schema)
        .map_err(|e| format!("describe() gave a config-schema that is not JSON: {e}"))?;
    let capabilities = raw
        .capabilities
        .into_iter()
        .map(|c| match c {
            WitCapability::Libvirt(p) => Capability::Libvirt(p),
            WitCapability::Images(p) => Capability::Images(p),
            WitCapability::Netdev(p) => Capability::Netdev(p),
            WitCapability::Endpoint(p) => Capability::Endpoint(p),
        })
        .collect();
    let serves = Serves::check(raw.serves, kind)?;
    Ok(PluginInfo {
        name: raw.name,
        version: raw.version,
        kind,
        serves,
        description: raw.description,
        capabilities,
        config_schema,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::{WitVersion, compatible};

    #[test]
    fn wit_versions() {
        assert_eq!(compatible("0.4.0"), Some(WitVersion::V0_4));
        assert_eq!(compatible("0.4.2"), Some(WitVersion::V0_4));
        assert_eq!(compatible("0.3.0"), Some(WitVersion::V0_3));
        assert_eq!(compatible("0.3.2"), Some(WitVersion::V0_3));
        assert_eq!(compatible("0.2.0"), Some(WitVersion::V0_2));
        assert_eq!(compatible("0.2.7"), Some(WitVersion::V0_2));
        assert_eq!(compatible("0.1.0"), Some(WitVersion::V0_1));
        assert_eq!(compatible("0.1.3"), Some(WitVersion::V0_1));
        assert_eq!(compatible("0.5.0"), None);
        assert_eq!(compatible("1.1.0"), None);
        assert_eq!(compatible("9.0.0"), None);
        assert_eq!(compatible(""), None);
    }
}
