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
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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
    /// Asks the namespace's neighbour table for one entry, once per connection.
    neighbours: Neighbours,
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
        let bound = bind_in_namespace(ns_path, address, device).map_err(bind_err)?;
        let shared = Arc::new(Shared {
            source,
            server: address,
            device: device.to_owned(),
            leases: RwLock::new(leases),
            neighbours: bound.neighbours,
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
    neighbours: Neighbours,
}

/// Binds both listeners (and opens the neighbour table) inside the namespace at `ns_path`, from
/// a thread that enters it and ends: no thread of this process stays in the namespace.
fn bind_in_namespace(ns_path: &Path, address: Ipv4Addr, device: &str) -> std::io::Result<Bound> {
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
                neighbours: Neighbours::open_here(device)?,
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
            // A connection's peer is fixed for its life: the neighbour table is read once
            // per connection, the lease (which a removed VM loses) on every request.
            let who = identify(&shared, peer);
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(answer(&shared, kind, who, &req).await) }
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

async fn answer(shared: &Shared, kind: Kind, who: Option<GuestAddress>, req: &Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "");
    }
    let Some(who) = who.filter(|w| still_leased(shared, w)) else { return not_found() };
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
    let seen = shared.neighbours.mac_of(ip)?;
    (seen == lease).then_some(GuestAddress { server: shared.server, ip, mac: lease })
}

/// Whether the guest still holds its lease (a VM removed meanwhile does not).
fn still_leased(shared: &Shared, who: &GuestAddress) -> bool {
    shared.leases.read().unwrap_or_else(|e| e.into_inner()).get(&who.ip) == Some(&who.mac)
}

/// One namespace's neighbour table, asked over a netlink socket made inside it (a socket
/// keeps its namespace): one entry per question rather than the whole table. Should the
/// kernel refuse the question (the device was made again and its index is stale), the
/// namespace's `/proc` ARP table, opened inside it too, answers instead.
struct Neighbours {
    socket: OwnedFd,
    ifindex: u32,
    device: String,
    arp: File,
    /// The last question's sequence number; held while asking, so answers cannot cross.
    asking: Mutex<u32>,
}

/// What one netlink message says to a neighbour question.
#[derive(Debug, PartialEq, Eq)]
enum NeighbourAnswer {
    /// A complete entry on the device with this MAC, or `None` (no such entry, not
    /// complete, or another device's).
    Entry(Option<[u8; 6]>),
    /// The kernel refused the question with this errno (`ENOENT`: no entry).
    Refused(i32),
    /// Not the answer to this question.
    Other,
}

const NLMSG_HEADER: usize = 16;
const NDMSG: usize = 12;
/// `NUD_VALID`: the states of an entry with a usable link-layer address.
const NUD_VALID: u16 = 0x80 | 0x40 | 0x02 | 0x10 | 0x04 | 0x08;
const NDA_LLADDR: u16 = 2;

impl Neighbours {
    /// Opens the neighbour table of the calling thread's namespace, for `device` there.
    fn open_here(device: &str) -> std::io::Result<Neighbours> {
        let name = std::ffi::CString::new(device).map_err(std::io::Error::other)?;
        // SAFETY: a NUL-terminated name; the call only reads it.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: plain socket(2); the descriptor is owned at once.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor nothing else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        // A lost answer must not hold a request up for long.
        let timeout = libc::timeval { tv_sec: 1, tv_usec: 0 };
        // SAFETY: the option value is a timeval of the size given.
        let set = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if set != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Neighbours {
            socket,
            ifindex,
            device: device.to_owned(),
            // /proc/thread-self/net is this thread's namespace's, now and later.
            arp: File::open("/proc/thread-self/net/arp")?,
            asking: Mutex::new(0),
        })
    }

    /// The MAC of `ip`'s complete entry on the device.
    fn mac_of(&self, ip: Ipv4Addr) -> Option<[u8; 6]> {
        match self.ask(ip) {
            Ok(mac) => mac,
            Err(e) => {
                tracing::debug!("neighbour {ip} on {}: {e}; reading the ARP table", self.device);
                neighbour_mac(&read_table(&self.arp)?, ip, &self.device)
            }
        }
    }

    fn ask(&self, ip: Ipv4Addr) -> std::io::Result<Option<[u8; 6]>> {
        let mut seq = self.asking.lock().unwrap_or_else(|e| e.into_inner());
        *seq = seq.wrapping_add(1);
        let request = neighbour_request(*seq, self.ifindex, ip);
        let fd = self.socket.as_raw_fd();
        // SAFETY: send(2) of a buffer we own, of its length.
        if unsafe { libc::send(fd, request.as_ptr().cast(), request.len(), 0) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut buf = [0u8; 1024];
        loop {
            // SAFETY: recv(2) into a buffer we own, of its length.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            match neighbour_answer(&buf[..n as usize], *seq, self.ifindex) {
                NeighbourAnswer::Entry(mac) => return Ok(mac),
                NeighbourAnswer::Refused(errno) if errno == libc::ENOENT => return Ok(None),
                NeighbourAnswer::Refused(errno) => return Err(std::io::Error::from_raw_os_error(errno)),
                // An answer to an earlier question that timed out.
                NeighbourAnswer::Other => continue,
            }
        }
    }
}

/// `RTM_GETNEIGH` for one IPv4 address on one device.
fn neighbour_request(seq: u32, ifindex: u32, ip: Ipv4Addr) -> [u8; NLMSG_HEADER + NDMSG + 8] {
    let mut m = [0u8; NLMSG_HEADER + NDMSG + 8];
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&libc::RTM_GETNEIGH.to_ne_bytes());
    m[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // ndmsg: family, padding, ifindex, state, flags, type.
    m[16] = libc::AF_INET as u8;
    m[20..24].copy_from_slice(&ifindex.to_ne_bytes());
    // NDA_DST
    m[28..30].copy_from_slice(&8u16.to_ne_bytes());
    m[30..32].copy_from_slice(&libc::NDA_DST.to_ne_bytes());
    m[32..36].copy_from_slice(&ip.octets());
    m
}

/// Reads the kernel's answer to question `seq` about a neighbour on device `ifindex`.
fn neighbour_answer(buf: &[u8], seq: u32, ifindex: u32) -> NeighbourAnswer {
    let u16_at = |b: &[u8], i: usize| b.get(i..i + 2).map(|s| u16::from_ne_bytes([s[0], s[1]]));
    let u32_at = |b: &[u8], i: usize| b.get(i..i + 4).map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]));
    let (Some(len), Some(kind), Some(got_seq)) = (u32_at(buf, 0), u16_at(buf, 4), u32_at(buf, 8)) else {
        return NeighbourAnswer::Other;
    };
    let Some(msg) = buf.get(..len as usize).filter(|_| got_seq == seq) else { return NeighbourAnswer::Other };
    match kind as i32 {
        libc::NLMSG_ERROR => match u32_at(msg, NLMSG_HEADER) {
            Some(code) => NeighbourAnswer::Refused(-(code as i32)),
            None => NeighbourAnswer::Other,
        },
        k if k == i32::from(libc::RTM_NEWNEIGH) => {
            let (Some(on), Some(state)) = (u32_at(msg, NLMSG_HEADER + 4), u16_at(msg, NLMSG_HEADER + 8)) else {
                return NeighbourAnswer::Other;
            };
            if on != ifindex || state & NUD_VALID == 0 {
                return NeighbourAnswer::Entry(None);
            }
            let mut at = NLMSG_HEADER + NDMSG;
            while let (Some(alen), Some(atype)) = (u16_at(msg, at), u16_at(msg, at + 2)) {
                let alen = alen as usize;
                if alen < 4 {
                    break;
                }
                if atype == NDA_LLADDR && alen == 4 + 6 {
                    let mut mac = [0u8; 6];
                    mac.copy_from_slice(&msg[at + 4..at + 10]);
                    return NeighbourAnswer::Entry(Some(mac));
                }
                at += (alen + 3) & !3;
            }
            NeighbourAnswer::Entry(None)
        }
        _ => NeighbourAnswer::Other,
    }
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
    fn the_kernel_understands_the_neighbour_question() {
        // No entry on the loopback device: a well-formed question is answered "none",
        // a malformed one would be refused (and fall back to the ARP table).
        let n = Neighbours::open_here("lo").unwrap();
        assert_eq!(n.ask("127.0.0.2".parse().unwrap()).unwrap(), None);
        assert_eq!(n.ask("10.255.255.254".parse().unwrap()).unwrap(), None);
    }

    #[test]
    fn neighbour_answers_are_read_for_their_question_only() {
        let entry = |seq: u32, ifindex: u32, state: u16, mac: &[u8]| {
            let mut m = vec![0u8; NLMSG_HEADER + NDMSG];
            m[4..6].copy_from_slice(&libc::RTM_NEWNEIGH.to_ne_bytes());
            m[8..12].copy_from_slice(&seq.to_ne_bytes());
            m[20..24].copy_from_slice(&ifindex.to_ne_bytes());
            m[24..26].copy_from_slice(&state.to_ne_bytes());
            for (kind, data) in [(libc::NDA_DST, &[10u8, 1, 1, 10][..]), (NDA_LLADDR, mac)] {
                m.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
                m.extend_from_slice(&kind.to_ne_bytes());
                m.extend_from_slice(data);
                m.resize((m.len() + 3) & !3, 0);
            }
            let len = m.len() as u32;
            m[0..4].copy_from_slice(&len.to_ne_bytes());
            m
        };
        let mac = [0x52, 0x54, 0, 0, 0, 0x0a];
        assert_eq!(neighbour_answer(&entry(7, 3, 0x02, &mac), 7, 3), NeighbourAnswer::Entry(Some(mac)));
        assert_eq!(neighbour_answer(&entry(7, 3, 0x04, &mac), 7, 3), NeighbourAnswer::Entry(Some(mac)), "stale");
        assert_eq!(neighbour_answer(&entry(7, 3, 0x01, &mac), 7, 3), NeighbourAnswer::Entry(None), "incomplete");
        assert_eq!(neighbour_answer(&entry(7, 4, 0x02, &mac), 7, 3), NeighbourAnswer::Entry(None), "another device");
        assert_eq!(neighbour_answer(&entry(6, 3, 0x02, &mac), 7, 3), NeighbourAnswer::Other, "an earlier question");
        assert_eq!(
            neighbour_answer(&entry(7, 3, 0x02, &mac[..4]), 7, 3),
            NeighbourAnswer::Entry(None),
            "short address"
        );
        let mut refused = vec![0u8; NLMSG_HEADER + 4];
        let len = refused.len() as u32;
        refused[0..4].copy_from_slice(&len.to_ne_bytes());
        refused[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        refused[8..12].copy_from_slice(&7u32.to_ne_bytes());
        refused[16..20].copy_from_slice(&(-libc::ENOENT).to_ne_bytes());
        assert_eq!(neighbour_answer(&refused, 7, 3), NeighbourAnswer::Refused(libc::ENOENT));
        assert_eq!(neighbour_answer(&refused[..10], 7, 3), NeighbourAnswer::Other, "truncated");
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
