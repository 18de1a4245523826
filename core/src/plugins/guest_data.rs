//! Guest data beside a namespaced DHCP service, as CloudStack's virtual router serves it:
//! metadata and userdata over HTTP on port 80 and the password server on port 8080 of
//! the service's address, inside the service's namespace only.
//!
//! The listening sockets are made by a short-lived thread that enters the namespace,
//! binds and leaves: a socket keeps the namespace it was made in, so a listener is
//! reachable from that guest network alone, never from the host or another network.
//!
//! A guest is known by where its packets come from, never by what it says: the peer's
//! address must be one of the service's leases, and the MAC the namespace's neighbour
//! table holds for it must be that lease's. The data itself comes from a
//! [`GuestDataSource`] (the orchestrator's database); without one nothing is served.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fs::File;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

/// The metadata port, as on CloudStack's router.
pub const METADATA_PORT: u16 = 80;
/// The password server's port, as on CloudStack's router.
pub const PASSWORD_PORT: u16 = 8080;
/// Connections one service serves at once; more are closed at once (a guest cannot take
/// the host's file descriptors).
const MAX_CONNECTIONS: usize = 256;
/// How long a client may take to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The ARP flag of a complete neighbour entry (`ATF_COM`).
const ATF_COM: u32 = 0x2;

/// The metadata names CloudStack's router serves, in its order; each is also served
/// at `/latest/<name>`.
pub const METADATA_NAMES: [&str; 10] = [
    "service-offering",
    "availability-zone",
    "local-ipv4",
    "local-hostname",
    "public-ipv4",
    "public-hostname",
    "instance-id",
    "vm-id",
    "public-keys",
    "cloud-identifier",
];

/// What one guest is served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestRecord {
    /// Decoded userdata, if any.
    pub user_data: Option<Vec<u8>>,
    /// Metadata by name (names from [`METADATA_NAMES`]); an empty value is not served.
    pub metadata: Vec<(&'static str, String)>,
}

impl GuestRecord {
    fn value(&self, name: &str) -> Option<&str> {
        self.metadata.iter().find(|(n, v)| *n == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    /// The `meta-data/` index: one served name a line.
    fn index(&self) -> String {
        METADATA_NAMES.iter().filter(|n| self.value(n).is_some()).map(|n| format!("{n}\n")).collect()
    }
}

/// Who asks: the address and MAC a request came from, and the service address it
/// reached (the network's DHCP server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GuestAddress {
    pub server: Ipv4Addr,
    pub ip: Ipv4Addr,
    /// Lowercase, colon-separated.
    pub mac: [u8; 6],
}

impl GuestAddress {
    pub fn mac_text(&self) -> String {
        let m = self.mac;
        format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

pub type SourceFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Where guest data comes from (the orchestrator implements it over its database).
/// `None` means "not a guest this network serves": the caller answers 404.
pub trait GuestDataSource: Send + Sync + 'static {
    /// The data of the guest whose live NIC has this MAC and address in the network whose
    /// DHCP service holds `server`, when that network's offering has the UserData service.
    fn guest(&self, who: GuestAddress) -> SourceFuture<'_, Option<GuestRecord>>;
    /// The same guest's pending password, forgotten as it is handed out: `Some(None)`
    /// when the guest has none pending.
    fn take_password(&self, who: GuestAddress) -> SourceFuture<'_, Option<Option<String>>>;
}

/// A lease of a DHCP service: the MAC for an address.
pub type Leases = HashMap<Ipv4Addr, [u8; 6]>;

/// Parses "52:54:00:aa:bb:cc".
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The guest-data services of one plugin host, by DHCP service name.
#[derive(Default)]
pub struct GuestDataPlane {
    source: RwLock<Option<Source>>,
    served: Mutex<HashMap<String, Served>>,
}

#[derive(Clone)]
struct Source {
    data: Arc<dyn GuestDataSource>,
    runtime: tokio::runtime::Handle,
    owner: Arc<str>,
}

/// The listeners of one DHCP service.
struct Served {
    /// The namespace file's identity when the sockets were made: a namespace made again
    /// under the same name needs new sockets.
    ns_id: (u64, u64),
    address: Ipv4Addr,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::AbortHandle>,
    /// Disconnected once every accept loop (and its socket) is gone.
    gone: std::sync::mpsc::Receiver<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // The sockets close as the aborted tasks are dropped, on the runtime's threads:
        // wait for that, so that "stopped" means the port is closed.
        let _ = self.gone.recv_timeout(Duration::from_secs(2));
    }
}

/// What the request handlers of one service share.
struct Shared {
    source: Arc<dyn GuestDataSource>,
    server: Ipv4Addr,
    /// The namespace's device the service is on: neighbours on other devices do not count.
    device: String,
    leases: RwLock<Leases>,
    /// The namespace's ARP table (`/proc/<thread>/net/arp` opened inside it), read again
    /// for each request.
    arp: File,
    connections: Arc<tokio::sync::Semaphore>,
}

/// Why guest data could not be served beside a DHCP service.
#[derive(Debug, thiserror::Error)]
pub enum GuestDataError {
    #[error("guest data service in namespace {ns}: {source}")]
    Bind { ns: String, source: std::io::Error },
}

impl GuestDataPlane {
    /// Serves guest data from `source` beside namespaced DHCP services from now on,
    /// with the request handlers on `runtime`. `owner` names this server across its
    /// restarts: it takes up only the running services it served before, not another
    /// server's on the same machine.
    pub fn set_source(&self, source: Arc<dyn GuestDataSource>, runtime: tokio::runtime::Handle, owner: &str) {
        *self.source.write().unwrap_or_else(|e| e.into_inner()) =
            Some(Source { data: source, runtime, owner: owner.into() });
    }

    /// Who serves: the `owner` given with the source.
    pub fn owner(&self) -> Option<Arc<str>> {
        self.source.read().unwrap_or_else(|e| e.into_inner()).as_ref().map(|s| s.owner.clone())
    }

    pub fn has_source(&self) -> bool {
        self.source.read().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Makes sure the service `name`, on `device` holding `address` in namespace `ns`,
    /// has its listeners, serving these leases. Nothing without a source.
    pub fn ensure(
        &self,
        name: &str,
        ns_path: &Path,
        device: &str,
        address: Ipv4Addr,
        leases: Leases,
    ) -> Result<(), GuestDataError> {
        let Some(Source { data: source, runtime, .. }) = self.source.read().unwrap_or_else(|e| e.into_inner()).clone()
        else {
            return Ok(());
        };
        let ns_name = ns_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let bind_err = |source| GuestDataError::Bind { ns: ns_name.clone(), source };
        let ns_id = std::fs::metadata(ns_path).map(|m| (m.dev(), m.ino())).map_err(bind_err)?;
        let mut served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = served.get(name)
            && s.ns_id == ns_id
            && s.address == address
            && s.shared.device == device
            && s.tasks.iter().all(|t| !t.is_finished())
        {
            *s.shared.leases.write().unwrap_or_else(|e| e.into_inner()) = leases;
            return Ok(());
        }
        // Old sockets (another namespace, another address) go before new ones bind.
        drop(served.remove(name));
        let bound = bind_in_namespace(ns_path, address).map_err(bind_err)?;
        let shared = Arc::new(Shared {
            source,
            server: address,
            device: device.to_owned(),
            leases: RwLock::new(leases),
            arp: bound.arp,
            connections: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
        });
        let (alive, gone) = std::sync::mpsc::channel::<()>();
        let mut tasks = Vec::new();
        for (listener, kind) in [(bound.metadata, Kind::Metadata), (bound.password, Kind::Password)] {
            let (shared, alive) = (shared.clone(), alive.clone());
            let task = runtime.spawn(async move {
                // Dropped in order: the socket first, then the sign that it is gone.
                let guard = (tokio::net::TcpListener::from_std(listener), alive);
                match guard.0 {
                    Ok(ref l) => accept_loop(l, shared, kind).await,
                    Err(ref e) => tracing::warn!("guest data listener: {e}"),
                }
            });
            tasks.push(task.abort_handle());
        }
        drop(alive);
        served.insert(name.to_owned(), Served { ns_id, address, shared, tasks, gone });
        Ok(())
    }

    /// Replaces the leases of a served service (nothing when it is not served).
    pub fn set_leases(&self, name: &str, leases: Leases) {
        if let Some(s) = self.served.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            *s.shared.leases.write().unwrap_or_else(|e| e.into_inner()) = leases;
        }
    }

    /// Closes the service's listeners; stopping one not served succeeds.
    pub fn stop(&self, name: &str) {
        let taken = self.served.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        drop(taken);
    }

    /// Whether the service has listeners.
    pub fn serves(&self, name: &str) -> bool {
        self.served.lock().unwrap_or_else(|e| e.into_inner()).contains_key(name)
    }
}

struct Bound {
    metadata: std::net::TcpListener,
    password: std::net::TcpListener,
    arp: File,
}

/// Binds both listeners (and opens the ARP table) inside the namespace at `ns_path`, from
/// a thread that enters it and ends: no thread of this process stays in the namespace.
fn bind_in_namespace(ns_path: &Path, address: Ipv4Addr) -> std::io::Result<Bound> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = File::open(ns_path)?;
            // SAFETY: setns(2) on a descriptor we own; it changes only this thread's
            // network namespace, and the thread ends right after.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let listen = |port| {
                let l = std::net::TcpListener::bind(SocketAddr::from((address, port)))?;
                l.set_nonblocking(true)?;
                Ok::<_, std::io::Error>(l)
            };
            Ok(Bound {
                metadata: listen(METADATA_PORT)?,
                password: listen(PASSWORD_PORT)?,
                // /proc/thread-self/net is this thread's namespace's, now and later.
                arp: File::open("/proc/thread-self/net/arp")?,
            })
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread panicked")))
    })
}

#[derive(Clone, Copy)]
enum Kind {
    Metadata,
    Password,
}

async fn accept_loop(listener: &tokio::net::TcpListener, shared: Arc<Shared>, kind: Kind) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: wait, as the main listener does.
                tracing::debug!("guest data accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(answer(&shared, kind, peer, &req).await) }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn text(status: StatusCode, body: impl Into<Body>) -> Response<Body> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
    r
}

fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "")
}

async fn answer(shared: &Shared, kind: Kind, peer: SocketAddr, req: &Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "");
    }
    let Some(who) = identify(shared, peer) else { return not_found() };
    match kind {
        Kind::Metadata => metadata(shared, who, req.uri().path()).await,
        Kind::Password => password(shared, who, req).await,
    }
}

/// The guest a connection comes from: its address must be a lease of the service, and
/// the MAC the neighbour table holds for it that lease's.
fn identify(shared: &Shared, peer: SocketAddr) -> Option<GuestAddress> {
    let SocketAddr::V4(peer) = peer else { return None };
    let ip = *peer.ip();
    let lease = *shared.leases.read().unwrap_or_else(|e| e.into_inner()).get(&ip)?;
    let seen = neighbour_mac(&read_table(&shared.arp)?, ip, &shared.device)?;
    (seen == lease).then_some(GuestAddress { server: shared.server, ip, mac: lease })
}

/// The whole of a `/proc` table, read from its start with positioned reads: no lock, so
/// concurrent requests do not queue on one file position.
fn read_table(file: &File) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let mut table = Vec::with_capacity(16 << 10);
    let mut chunk = [0u8; 8192];
    loop {
        let n = file.read_at(&mut chunk, table.len() as u64).ok()?;
        if n == 0 {
            return String::from_utf8(table).ok();
        }
        table.extend_from_slice(&chunk[..n]);
    }
}

/// The MAC of a complete ARP entry for `ip` on `device`, from `/proc/net/arp` text
/// ("IP HW-type Flags HW-address Mask Device").
fn neighbour_mac(table: &str, ip: Ipv4Addr, device: &str) -> Option<[u8; 6]> {
    table.lines().skip(1).find_map(|line| {
        let mut f = line.split_whitespace();
        let (Some(addr), _, Some(flags), Some(mac), _, Some(dev), None) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return None;
        };
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
        (addr.parse() == Ok(ip) && dev == device && flags & ATF_COM != 0).then(|| parse_mac(mac)).flatten()
    })
}

async fn metadata(shared: &Shared, who: GuestAddress, path: &str) -> Response<Body> {
    let Some(rest) = path.strip_prefix("/latest/") else { return not_found() };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let record = match shared.source.guest(who).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::warn!("guest data for {}: {e}", who.ip);
            return text(StatusCode::INTERNAL_SERVER_ERROR, "");
        }
    };
    let name = match rest.strip_prefix("meta-data") {
        Some("") => return text(StatusCode::OK, record.index()),
        Some(sub) => match sub.strip_prefix('/') {
            Some(name) => name,
            None => return not_found(),
        },
        None if rest == "user-data" => {
            return match record.user_data {
                Some(data) if !data.is_empty() => text(StatusCode::OK, data),
                _ => not_found(),
            };
        }
        // The short forms CloudStack's router keeps.
        None => rest,
    };
    match record.value(name) {
        Some(v) if METADATA_NAMES.contains(&name) => text(StatusCode::OK, v.to_owned()),
        _ => not_found(),
    }
}

/// CloudStack's password server: `DomU_Request: send_my_password` gets the pending
/// password (forgotten as it is handed out) or `saved_password` when there is none;
/// `saved_password` (the guest's acknowledgement) gets `saved_password`; anything
/// else `bad_request`.
async fn password(shared: &Shared, who: GuestAddress, req: &Request<Incoming>) -> Response<Body> {
    let asked = req.headers().get("domu_request").and_then(|v| v.to_str().ok()).map(str::trim);
    match asked {
        Some("send_my_password") => match shared.source.take_password(who).await {
            Ok(Some(Some(p))) => text(StatusCode::OK, p),
            Ok(Some(None)) => text(StatusCode::OK, "saved_password"),
            Ok(None) => not_found(),
            Err(e) => {
                tracing::warn!("password for {}: {e}", who.ip);
                text(StatusCode::INTERNAL_SERVER_ERROR, "")
            }
        },
        Some("saved_password") => match shared.source.guest(who).await {
            Ok(Some(_)) => text(StatusCode::OK, "saved_password"),
            _ => not_found(),
        },
        _ => text(StatusCode::OK, "bad_request"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse() {
        assert_eq!(parse_mac("52:54:00:AA:bb:0c"), Some([0x52, 0x54, 0, 0xaa, 0xbb, 0x0c]));
        assert_eq!(parse_mac("52:54:00:aa:bb"), None);
        assert_eq!(parse_mac("52:54:00:aa:bb:cc:dd"), None);
        assert_eq!(parse_mac("52:54:00:aa:bb:c"), None);
    }

    #[test]
    fn neighbours_are_read_from_the_arp_table() {
        let table = "IP address       HW type     Flags       HW address            Mask     Device\n\
                     10.1.1.10        0x1         0x2         52:54:00:00:00:0a     *        ws-n1\n\
                     10.1.1.11        0x1         0x0         00:00:00:00:00:00     *        ws-n1\n\
                     10.1.1.12        0x1         0x2         52:54:00:00:00:0c     *        other\n";
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(neighbour_mac(table, ip("10.1.1.10"), "ws-n1"), parse_mac("52:54:00:00:00:0a"));
        assert_eq!(neighbour_mac(table, ip("10.1.1.11"), "ws-n1"), None, "an incomplete entry is no MAC");
        assert_eq!(neighbour_mac(table, ip("10.1.1.12"), "ws-n1"), None, "another device's neighbour");
        assert_eq!(neighbour_mac(table, ip("10.1.1.13"), "ws-n1"), None);
    }

    #[test]
    fn the_index_lists_what_has_a_value_in_cloudstacks_order() {
        let r = GuestRecord {
            user_data: None,
            metadata: vec![("vm-id", "u".into()), ("local-ipv4", "10.1.1.10".into()), ("public-keys", String::new())],
        };
        assert_eq!(r.index(), "local-ipv4\nvm-id\n");
        assert_eq!(r.value("public-keys"), None);
    }
}
