//! The `libvirt` capability, backed by the `virt` crate.
//!
//! Connections are pooled per URI for the life of the server: opening is costly, and
//! libvirt's test driver (the Simulator) keeps its state only while a connection lives.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::ErrorNumber;
use wasmtime::component::Resource;

use super::blocking;
use crate::plugins::bindings::libvirt::{
    ChangeScope, DomainState, DomainStats, DomainSummary, Host, HostConnection, NodeInfo,
};
use crate::plugins::bindings::types::DriverError;
use crate::plugins::grants::denial;
use crate::plugins::state::CallState;

/// Live libvirt connections, one per URI, shared by every plugin.
#[derive(Default)]
pub struct LibvirtPool {
    conns: Mutex<HashMap<String, Pooled>>,
    /// URIs being opened now: one attempt per URI at a time, so that a daemon that never
    /// answers ties up one worker thread, not one per call (see `blocking`).
    opening: Mutex<HashSet<String>>,
    opening_done: Condvar,
    opened: AtomicU64,
}

struct Pooled {
    conn: Arc<Connect>,
    used: Instant,
}

/// A connection idle longer than this is asked a question before it is handed out:
/// `is_alive` stays true after the daemon went away until the next round trip fails.
const IDLE_CHECK: Duration = Duration::from_secs(5);

impl LibvirtPool {
    /// The pooled connection to `uri`, opened on first use or when the old one died.
    /// It may block on the daemon; the pool's lock is never held meanwhile, so that a
    /// daemon that hangs holds up only the calls that use it.
    pub fn connect(&self, uri: &str) -> Result<Arc<Connect>, DriverError> {
        self.connect_by(uri, None)
    }

    /// As `connect`, but gives up waiting for another call's attempt to open `uri` at
    /// `deadline`.
    fn connect_by(&self, uri: &str, deadline: Option<Instant>) -> Result<Arc<Connect>, DriverError> {
        run_event_loop();
        loop {
            let seen = self.pooled(uri);
            if let Some((conn, used)) = &seen
                && conn.is_alive().unwrap_or(false)
                && (used.elapsed() < IDLE_CHECK || conn.get_lib_version().is_ok())
            {
                if let Some(p) = self.lock().get_mut(uri)
                    && Arc::ptr_eq(&p.conn, conn)
                {
                    p.used = Instant::now();
                }
                return Ok(conn.clone());
            }
            let mut opening = self.opening.lock().unwrap_or_else(|e| e.into_inner());
            if opening.insert(uri.to_owned()) {
                // An attempt that ended just before may have pooled a new connection.
                let now = self.lock().get(uri).map(|p| p.conn.clone());
                match (&now, &seen) {
                    (None, None) => break,
                    (Some(a), Some((b, _))) if Arc::ptr_eq(a, b) => break,
                    _ => {
                        opening.remove(uri);
                        continue;
                    }
                }
            }
            // Another call is opening it: wait for its connection rather than open a second.
            let left = deadline.map_or(IDLE_CHECK, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Err(DriverError::Unavailable(format!("{uri}: an earlier attempt to connect has not finished")));
            }
            drop(self.opening_done.wait_timeout(opening, left).unwrap_or_else(|e| e.into_inner()));
        }
        // libvirt prints every error to stderr by default; ours go into driver errors.
        virt::error::clear_error_callback();
        let opened = Connect::open(Some(uri));
        let result = match opened {
            Err(e) => Err(DriverError::Unavailable(format!("{uri}: {}", e.message()))),
            Ok(conn) => {
                self.opened.fetch_add(1, Ordering::Relaxed);
                let conn = Arc::new(conn);
                self.lock().insert(uri.to_owned(), Pooled { conn: conn.clone(), used: Instant::now() });
                Ok(conn)
            }
        };
        self.opening.lock().unwrap_or_else(|e| e.into_inner()).remove(uri);
        self.opening_done.notify_all();
        result
    }

    fn pooled(&self, uri: &str) -> Option<(Arc<Connect>, Instant)> {
        self.lock().get(uri).map(|p| (p.conn.clone(), p.used))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pooled>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops `conn` from the pool after it failed at the connection level, so that the
    /// next call opens a fresh one instead of failing the same way.
    fn evict(&self, uri: &str, conn: &Arc<Connect>) {
        let mut conns = self.lock();
        if conns.get(uri).is_some_and(|p| Arc::ptr_eq(&p.conn, conn)) {
            conns.remove(uri);
        }
    }

    /// How many connections were ever opened; lets tests prove a denied call never
    /// reached libvirt.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }
}

/// Runs libvirt's event loop on a thread of its own, once per process. Only while it
/// runs does a connection notice at once that its daemon closed it (a restart), and
/// send keepalives that find a daemon gone silent: without it a dead connection looks
/// alive until a call on it fails, and that call fails with it.
fn run_event_loop() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        if let Err(e) = virt::event::event_register_default_impl() {
            tracing::warn!("libvirt's event loop is not available: {}", e.message());
            return;
        }
        let spawned = std::thread::Builder::new().name("libvirt-events".into()).spawn(|| {
            loop {
                if virt::event::event_run_default_impl().is_err() {
                    // Never spin on a failing loop.
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot start libvirt's event loop: {e}");
        }
    });
}

/// Whether an error means the connection itself is gone, not the operation refused.
fn connection_lost(e: &virt::error::Error) -> bool {
    matches!(e.code(), ErrorNumber::NoConnect | ErrorNumber::Rpc)
        || e.message().contains("End of file while reading data")
        || e.message().contains("Cannot write data")
}

/// A connection handle held by a guest.
pub struct LibvirtConnection {
    uri: String,
    conn: Arc<Connect>,
}

fn map_err(e: virt::error::Error) -> DriverError {
    let text = e.message().to_owned();
    match e.code() {
        ErrorNumber::NoDomain => DriverError::NotFound(text),
        ErrorNumber::XmlError | ErrorNumber::XmlDetail | ErrorNumber::InvalidArg | ErrorNumber::OperationInvalid => {
            DriverError::InvalidSpec(text)
        }
        ErrorNumber::NoConnect | ErrorNumber::Rpc | ErrorNumber::SystemError | ErrorNumber::OperationTimeout => {
            DriverError::Unavailable(text)
        }
        ErrorNumber::NoSupport => DriverError::Unsupported(text),
        ErrorNumber::AuthFailed => DriverError::Denied(text),
        _ => DriverError::Failed(text),
    }
}

fn state_of(raw: virt::sys::virDomainState) -> DomainState {
    match raw {
        virt::sys::VIR_DOMAIN_RUNNING => DomainState::Running,
        virt::sys::VIR_DOMAIN_BLOCKED => DomainState::Blocked,
        virt::sys::VIR_DOMAIN_PAUSED => DomainState::Paused,
        virt::sys::VIR_DOMAIN_SHUTDOWN => DomainState::ShuttingDown,
        virt::sys::VIR_DOMAIN_SHUTOFF => DomainState::ShutOff,
        virt::sys::VIR_DOMAIN_CRASHED => DomainState::Crashed,
        virt::sys::VIR_DOMAIN_PMSUSPENDED => DomainState::Suspended,
        _ => DomainState::NoState,
    }
}

fn scope_flags(scope: ChangeScope) -> u32 {
    let mut flags = 0;
    if scope.contains(ChangeScope::LIVE) {
        flags |= virt::sys::VIR_DOMAIN_AFFECT_LIVE;
    }
    if scope.contains(ChangeScope::CONFIG) {
        flags |= virt::sys::VIR_DOMAIN_AFFECT_CONFIG;
    }
    flags
}

type Outcome<T> = wasmtime::Result<Result<T, DriverError>>;

/// Whether `uri` names libvirt's test driver, which lives in this process: its calls
/// wait on nothing outside it, so they run on the calling thread. Every other URI
/// reaches a daemon (local or remote) that may stop answering.
fn in_process(uri: &str) -> bool {
    uri.starts_with("test:")
}

/// Runs `op` on `conn`, dropping the connection from the pool if it is lost.
fn run_op<T>(
    pool: &LibvirtPool,
    uri: &str,
    conn: &Arc<Connect>,
    op: impl FnOnce(&Connect) -> Result<T, virt::error::Error>,
) -> Result<T, DriverError> {
    op(conn).map_err(|e| {
        if connection_lost(&e) {
            pool.evict(uri, conn);
        }
        map_err(e)
    })
}

impl CallState {
    /// Runs one libvirt operation on a guest's connection, within the call's deadline:
    /// one that reaches a daemon runs on a worker thread (see `blocking`), so that a
    /// daemon that never answers cannot hold the call past its deadline.
    fn with_conn<T: Send + 'static>(
        &mut self,
        handle: &Resource<LibvirtConnection>,
        op: impl FnOnce(&Connect) -> Result<T, virt::error::Error> + Send + 'static,
    ) -> Outcome<T> {
        self.check_deadline()?;
        let entry = self.table.get(handle)?;
        let (uri, conn) = (entry.uri.clone(), entry.conn.clone());
        let result = if in_process(&uri) {
            run_op(&self.libvirt, &uri, &conn, op)
        } else {
            let pool = self.libvirt.clone();
            blocking::until(self.deadline, move || run_op(&pool, &uri, &conn, op))?
        };
        self.check_deadline()?;
        Ok(result)
    }

    /// Runs one operation on a domain named by UUID.
    fn with_domain<T: Send + 'static>(
        &mut self,
        handle: &Resource<LibvirtConnection>,
        uuid: String,
        op: impl FnOnce(&Domain) -> Result<T, virt::error::Error> + Send + 'static,
    ) -> Outcome<T> {
        self.with_conn(handle, move |c| op(&Domain::lookup_by_uuid_string(c, &uuid)?))
    }
}

impl Host for CallState {}

impl HostConnection for CallState {
    fn open(&mut self, uri: String) -> Outcome<Resource<LibvirtConnection>> {
        self.check_deadline()?;
        if !self.grants.allows_libvirt(&uri) {
            return Ok(Err(DriverError::Denied(denial(&self.plugin, "libvirt", &uri))));
        }
        let connected = if in_process(&uri) {
            self.libvirt.connect(&uri)
        } else {
            let (pool, uri) = (self.libvirt.clone(), uri.clone());
            let deadline = self.deadline;
            blocking::until(deadline, move || pool.connect_by(&uri, Some(deadline)))?
        };
        let conn = match connected {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        self.check_deadline()?;
        Ok(Ok(self.table.push(LibvirtConnection { uri, conn })?))
    }

    fn uri(&mut self, handle: Resource<LibvirtConnection>) -> wasmtime::Result<String> {
        Ok(self.table.get(&handle)?.uri.clone())
    }

    fn node_info(&mut self, handle: Resource<LibvirtConnection>) -> Outcome<NodeInfo> {
        self.with_conn(&handle, move |c| {
            let n = c.get_node_info()?;
            Ok(NodeInfo {
                cpu_model: n.model,
                memory_kib: n.memory,
                cpus: n.cpus,
                mhz: n.mhz,
                numa_nodes: n.nodes,
                sockets: n.sockets,
                cores: n.cores,
                threads: n.threads,
            })
        })
    }

    fn hypervisor_version(&mut self, handle: Resource<LibvirtConnection>) -> Outcome<String> {
        self.with_conn(&handle, move |c| {
            let kind = c.get_type()?;
            let v = c.get_hyp_version()?;
            Ok(format!("{kind} {}.{}.{}", v / 1_000_000, (v / 1000) % 1000, v % 1000))
        })
    }

    fn capabilities(&mut self, handle: Resource<LibvirtConnection>) -> Outcome<String> {
        self.with_conn(&handle, move |c| c.get_capabilities())
    }

    fn define_domain(&mut self, handle: Resource<LibvirtConnection>, xml: String) -> Outcome<String> {
        self.with_conn(&handle, move |c| Domain::define_xml(c, &xml)?.get_uuid_string())
    }

    fn undefine_domain(&mut self, handle: Resource<LibvirtConnection>, uuid: String) -> Outcome<()> {
        // NVRAM and managed saves go with the definition, as `virsh undefine --nvram` does.
        let flags = virt::sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | virt::sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
        self.with_domain(&handle, uuid, move |d| d.undefine_flags(flags).or_else(|_| d.undefine()))
    }

    fn start_domain(&mut self, handle: Resource<LibvirtConnection>, uuid: String) -> Outcome<()> {
        self.with_domain(&handle, uuid, move |d| d.create().map(drop))
    }

    fn shutdown_domain(&mut self, handle: Resource<LibvirtConnection>, uuid: String) -> Outcome<()> {
        self.with_domain(&handle, uuid, move |d| d.shutdown().map(drop))
    }

    fn destroy_domain(&mut self, handle: Resource<LibvirtConnection>, uuid: String) -> Outcome<()> {
        self.with_domain(&handle, uuid, move |d| d.destroy())
    }

    fn reboot_domain(&mut self, handle: Resource<LibvirtConnection>, uuid: String) -> Outcome<()> {
        self.with_domain(&handle, uuid, move |d| d.reboot(0))
    }

    fn reset_domain(&mut self, handle: Resource<LibvirtConnection>, uuid: String) -> Outcome<()> {
        self.with_domain(&handle, uuid, move |d| d.reset().map(drop))
    }

    fn suspend_domain(&mut self, handle: Resource<LibvirtConnection>, uuid: String) -> Outcome<()> {
        self.with_domain(&handle, uuid, move |d| d.suspend().map(drop))
    }

    fn resume_domain(&mut self, handle: Resource<LibvirtConnection>, uuid: String) -> Outcome<()> {
        self.with_domain(&handle, uuid, move |d| d.resume().map(drop))
    }

    fn domain_state(&mut self, handle: Resource<LibvirtConnection>, uuid: String) -> Outcome<DomainState> {
        self.with_domain(&handle, uuid, move |d| Ok(state_of(d.get_state()?.0)))
    }

    fn domain_xml(&mut self, handle: Resource<LibvirtConnection>, uuid: String, persistent: bool) -> Outcome<String> {
        let flags = if persistent { virt::sys::VIR_DOMAIN_XML_INACTIVE } else { 0 };
        self.with_domain(&handle, uuid, move |d| d.get_xml_desc(flags))
    }

    fn domain_stats(&mut self, handle: Resource<LibvirtConnection>, uuid: String) -> Outcome<DomainStats> {
        self.with_domain(&handle, uuid, move |d| {
            let info = d.get_info()?;
            Ok(DomainStats { cpu_time_ns: info.cpu_time, memory_kib: info.memory, vcpus: info.nr_virt_cpu })
        })
    }

    fn attach_device(
        &mut self,
        handle: Resource<LibvirtConnection>,
        uuid: String,
        xml: String,
        scope: ChangeScope,
    ) -> Outcome<()> {
        self.with_domain(&handle, uuid, move |d| d.attach_device_flags(&xml, scope_flags(scope)).map(drop))
    }

    fn detach_device(
        &mut self,
        handle: Resource<LibvirtConnection>,
        uuid: String,
        xml: String,
        scope: ChangeScope,
    ) -> Outcome<()> {
        self.with_domain(&handle, uuid, move |d| d.detach_device_flags(&xml, scope_flags(scope)).map(drop))
    }

    fn list_domains(&mut self, handle: Resource<LibvirtConnection>) -> Outcome<Vec<DomainSummary>> {
        self.with_conn(&handle, move |c| {
            let mut out = Vec::new();
            for d in c.list_all_domains(0)? {
                out.push(DomainSummary {
                    uuid: d.get_uuid_string()?,
                    name: d.get_name()?,
                    state: state_of(d.get_state()?.0),
                });
            }
            Ok(out)
        })
    }

    fn drop(&mut self, handle: Resource<LibvirtConnection>) -> wasmtime::Result<()> {
        // The pooled connection stays open; only the guest's handle goes.
        self.table.delete(handle)?;
        Ok(())
    }
}
