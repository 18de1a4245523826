//! What one store carries while a driver call runs: the plugin's identity and grants,
//! its WASI context (no files, no network, stderr kept), the memory limiter and the
//! call's deadline.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::caps::images::{ImageActivity, KnownImages};
use super::caps::libvirt::LibvirtPool;
use super::downloads::DownloadPolicy;
use super::grants::Grants;
use super::guest_data::GuestDataPlane;

/// How much of a guest's stderr is kept for error messages.
const STDERR_CAPACITY: usize = 64 * 1024;
/// The most random bytes one WASI call may ask the host for (wasmtime's default is 64 MiB,
/// which the host would allocate); a driver needs a few for seeds and UUIDs.
const MAX_RANDOM_BYTES: u64 = 64 * 1024;
/// The most host resources (libvirt connections, WASI streams) one store may hold at once
/// (wasmtime's default is a million table entries).
const MAX_RESOURCES: usize = 4096;

pub(crate) struct CallState {
    pub plugin: Arc<str>,
    pub grants: Arc<Grants>,
    pub libvirt: Arc<LibvirtPool>,
    pub images: Arc<ImageActivity>,
    pub downloads: Arc<DownloadPolicy>,
    /// Guest data served beside namespaced DHCP services (see `guest_data`).
    pub guest_data: Arc<GuestDataPlane>,
    pub deadline: Instant,
    pub limiter: MemoryLimiter,
    pub table: ResourceTable,
    /// NFS servers that answered during this call: asked once, not before every image
    /// operation (each asking is a mount).
    pub nfs_reachable: Vec<String>,
    /// Images read during this call.
    pub images_known: KnownImages,
    wasi: WasiCtx,
    stderr: MemoryOutputPipe,
}

impl CallState {
    pub fn new(
        plugin: Arc<str>,
        grants: Arc<Grants>,
        libvirt: Arc<LibvirtPool>,
        images: Arc<ImageActivity>,
        downloads: Arc<DownloadPolicy>,
        memory_cap: usize,
        deadline: Instant,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        // No preopened folders, no environment, no sockets: a driver reaches the
        // outside world only through the capabilities it was granted.
        let wasi = WasiCtxBuilder::new()
            .stdout(stderr.clone())
            .stderr(stderr.clone())
            .max_random_size(MAX_RANDOM_BYTES)
            // Nor could a socket keep a call waiting past its deadline (see `CallClocks`).
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        CallState {
            plugin,
            grants,
            libvirt,
            images,
            downloads,
            guest_data: Default::default(),
            deadline,
            limiter: MemoryLimiter { cap: memory_cap, hit: false },
            table,
            nfs_reachable: Vec::new(),
            images_known: KnownImages::default(),
            wasi,
            stderr,
        }
    }

    /// Starts a driver call: what the last call learnt about servers and images may
    /// no longer hold.
    pub fn begin_call(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.nfs_reachable.clear();
        self.images_known.clear();
    }

    /// What the guest wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }

    /// Fails the guest call once the deadline has passed; host calls check it so
    /// that time spent outside wasm counts too.
    pub fn check_deadline(&self) -> wasmtime::Result<()> {
        if Instant::now() >= self.deadline {
            return Err(DeadlinePassed.into());
        }
        Ok(())
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The trap a host call raises once the call's deadline has passed.
#[derive(Debug)]
pub(crate) struct DeadlinePassed;

impl std::fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline passed during a host call")
    }
}

impl std::error::Error for DeadlinePassed {}

/// Caps linear memory per instance and remembers whether the cap was hit, so that
/// the resulting trap can be reported as out-of-memory rather than a crash.
pub(crate) struct MemoryLimiter {
    cap: usize,
    pub hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}
