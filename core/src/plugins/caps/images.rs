//! The `images` capability: disk images under the storage roots the operator
//! granted, as local files (`file:///abs/path`) or on NFS servers
//! (`nfs://server/export/path`, reached by the host itself; nothing is mounted).
//!
//! qemu-img does the image work and speaks NFS on its own; the libnfs binding in
//! `nfs.rs` does what qemu-img cannot (directories, removal, free space, uploads).
//! Every URL a call names, and every backing image an operation would open, is
//! checked against the plugin's grants before anything is touched. External commands
//! and NFS calls run under the call's deadline.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::beneath::{Beneath, BeneathError};
use super::blocking;
use super::nfs::{self, NfsError, NfsPath};
use super::process::{self, RunError};
use super::qcow2;
use crate::checksum::Checksum;
use crate::plugins::bindings::images::{Host, ImageInfo, Space};
use crate::plugins::bindings::types::{DiskFormat, DriverError};
use crate::plugins::downloads::{DownloadPolicy, Refusal, Target};
use crate::plugins::grants::{Grants, denial};
use crate::plugins::state::{CallState, DeadlinePassed};

/// Deepest backing chain an operation follows.
const MAX_CHAIN: usize = 16;
/// qemu-img rounds image sizes up to whole sectors, and counts storage in them.
const SECTOR: u64 = 512;
/// Finished downloads kept for progress readers.
const FINISHED_KEPT: usize = 64;
/// Time given to removing a half-made image after a failure, even past the deadline.
const CLEANUP_GRACE: Duration = Duration::from_secs(2);
/// A download stops this long before the call's deadline, so that it ends with an
/// error the driver sees rather than a trap.
const FETCH_MARGIN: Duration = Duration::from_millis(300);
/// Longest wait for a TCP (and TLS) connection to an HTTP server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence from an HTTP server in the middle of a download.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Most redirects a download follows, each checked like the URL itself.
const MAX_REDIRECTS: usize = 5;

/// What the images capability is doing, shared by every plugin: downloads with their
/// progress, and how many operations reached storage.
#[derive(Default)]
pub struct ImageActivity {
    transfers: Mutex<BTreeMap<String, Transfer>>,
    reached: AtomicU64,
}

/// A download, running or finished, keyed by its target URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transfer {
    pub source: String,
    /// Bytes received so far.
    pub bytes: u64,
    /// Size announced by the server, if it did.
    pub total: Option<u64>,
    pub finished: bool,
    /// Why it failed, once it has.
    pub error: Option<String>,
    #[serde(skip)]
    finished_at: Option<Instant>,
}

impl ImageActivity {
    /// The download to `target`, running or recently finished.
    pub fn transfer(&self, target: &str) -> Option<Transfer> {
        lock(&self.transfers).get(target).cloned()
    }

    /// Every download known, by target URL.
    pub fn transfers(&self) -> Vec<(String, Transfer)> {
        lock(&self.transfers).iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// How many operations got past the grant checks and touched storage; lets tests
    /// prove that a denied call never reached a server.
    pub fn reached(&self) -> u64 {
        self.reached.load(Ordering::Relaxed)
    }

    fn begin(&self, target: &str, source: &str) -> Result<(), ImageError> {
        let mut map = lock(&self.transfers);
        if map.get(target).is_some_and(|t| !t.finished) {
            return Err(ImageError::Invalid(format!("a download to {target} is already running")));
        }
        let mut finished: Vec<(Instant, String)> =
            map.iter().filter_map(|(k, t)| t.finished_at.map(|at| (at, k.clone()))).collect();
        if finished.len() >= FINISHED_KEPT {
            finished.sort();
            for (_, k) in &finished[..=finished.len() - FINISHED_KEPT] {
                map.remove(k);
            }
        }
        let t = Transfer {
            source: source.to_owned(),
            bytes: 0,
            total: None,
            finished: false,
            error: None,
            finished_at: None,
        };
        map.insert(target.to_owned(), t);
        Ok(())
    }

    fn advance(&self, target: &str, bytes: u64, total: Option<u64>) {
        if let Some(t) = lock(&self.transfers).get_mut(target) {
            t.bytes = bytes;
            t.total = total;
        }
    }

    fn finish(&self, target: &str, error: Option<String>) {
        if let Some(t) = lock(&self.transfers).get_mut(target) {
            t.finished = true;
            t.error = error;
            t.finished_at = Some(Instant::now());
        }
    }
}

/// Why an images operation failed, before it becomes a driver error (or, for the
/// deadline, a trap).
#[derive(Debug, thiserror::Error)]
enum ImageError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
    #[error("the call's deadline passed")]
    Deadline,
}

impl ImageError {
    fn into_driver(self) -> DriverError {
        match self {
            ImageError::Invalid(t) => DriverError::InvalidSpec(t),
            ImageError::Denied(t) => DriverError::Denied(t),
            ImageError::NotFound(t) => DriverError::NotFound(t),
            ImageError::Unavailable(t) => DriverError::Unavailable(t),
            ImageError::Failed(t) => DriverError::Failed(t),
            ImageError::Deadline => DriverError::Failed("the call's deadline passed".into()),
        }
    }
}

impl From<NfsError> for ImageError {
    fn from(e: NfsError) -> Self {
        let text = e.to_string();
        match e {
            NfsError::Unreachable { .. } => ImageError::Unavailable(text),
            NfsError::NoExport { .. } | NfsError::NotFound(_) => ImageError::NotFound(text),
            NfsError::Exists(_) => ImageError::Invalid(text),
            NfsError::Link(_) => ImageError::Denied(text),
            NfsError::Local { .. } | NfsError::Other(_) => ImageError::Failed(text),
        }
    }
}

impl From<BeneathError> for ImageError {
    fn from(e: BeneathError) -> Self {
        let text = e.to_string();
        match e {
            BeneathError::Link(_) => ImageError::Denied(text),
            BeneathError::Root(_) => ImageError::Invalid(text),
            BeneathError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ImageError::NotFound(text),
                std::io::ErrorKind::AlreadyExists => ImageError::Invalid(text),
                _ if source.raw_os_error() == Some(libc::EISDIR) => ImageError::Invalid(text),
                _ => ImageError::Failed(text),
            },
        }
    }
}

/// Where an image URL points: a local path resolved beneath its granted folder, or a
/// path on an NFS server checked for links below its granted folder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    File(Beneath),
    Nfs(NfsPath),
}

impl Location {
    /// The same place, with the granted folder it must not leave.
    fn under(self, root: &Location) -> Location {
        match (self, root) {
            (Location::File(b), Location::File(r)) => Location::File(b.under(&r.path())),
            (Location::Nfs(n), Location::Nfs(r)) => Location::Nfs(NfsPath { root: r.path.clone(), ..n }),
            (other, _) => other,
        }
    }

    /// The name stored in an image that this one backs: a plain path for local
    /// files (qemu's own `file:` syntax differs from URLs), the URL itself for NFS.
    fn stored_name(&self) -> String {
        match self {
            Location::File(b) => b.path().to_string_lossy().into_owned(),
            Location::Nfs(n) => nfs_url(n),
        }
    }
}

fn nfs_url(n: &NfsPath) -> String {
    format!("nfs://{}{}", n.server, n.path)
}

/// Descriptors handed to one qemu-img run, open until it ends: qemu-img is given
/// local files as `/dev/fd/N`, opened beneath their granted folder, so that it never
/// resolves a name (or follows a link) itself.
#[derive(Default)]
struct Handles(Vec<OwnedFd>);

impl Handles {
    fn keep(&mut self, fd: OwnedFd) -> String {
        let name = format!("/dev/fd/{}", fd.as_raw_fd());
        self.0.push(fd);
        name
    }

    fn raw(&self) -> Vec<RawFd> {
        self.0.iter().map(AsRawFd::as_raw_fd).collect()
    }
}

/// Parses and checks an image URL. Only plain names are accepted: no query (qemu and
/// libnfs read options from it), no `.`/`..` segments, no characters a shell or
/// qemu's option syntax would treat specially.
fn parse(url: &str) -> Result<Location, ImageError> {
    let invalid = |why: &str| ImageError::Invalid(format!("bad image URL \"{url}\": {why}"));
    if url.chars().any(|c| !(c.is_ascii_alphanumeric() || "/:._-+@=~".contains(c))) {
        return Err(invalid("use only letters, digits and / : . _ - + @ = ~"));
    }
    let (server, path) = if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(invalid("a file URL takes an absolute path, e.g. file:///var/lib/wasmstack/pool"));
        }
        (None, rest)
    } else if let Some(rest) = url.strip_prefix("nfs://") {
        let Some(slash) = rest.find('/') else {
            return Err(invalid("an NFS URL names a server and a path, e.g. nfs://10.0.0.5/export/primary"));
        };
        let host = &rest[..slash];
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
            return Err(invalid("the NFS server must be a host name or IPv4 address, without a port"));
        }
        (Some(host), &rest[slash..])
    } else {
        return Err(invalid("images takes file:///path and nfs://server/export/path URLs"));
    };
    let path = match path.trim_end_matches('/') {
        "" => "/",
        p => p,
    };
    if path != "/" && path[1..].split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(invalid("empty, . and .. path segments are not allowed"));
    }
    Ok(match server {
        Some(host) => Location::Nfs(NfsPath { server: host.to_owned(), path: path.to_owned(), root: path.to_owned() }),
        None => Location::File(Beneath::new(Path::new(path), Path::new(path))),
    })
}

/// The URL of a backing file as qemu-img reports it (a path for local files).
fn backing_url(name: &str) -> String {
    if name.starts_with('/') { format!("file://{name}") } else { name.to_owned() }
}

/// The URL of a backing file named in the image at `url`: a relative name lies in the
/// image's folder (qemu-img, handed a descriptor, cannot say which folder that is).
fn backing_of(url: &str, name: &str) -> String {
    if name.starts_with('/') || name.contains("://") {
        return backing_url(name);
    }
    let folder = &url[..url.rfind('/').unwrap_or(url.len())];
    format!("{folder}/{name}")
}

fn format_name(format: DiskFormat) -> &'static str {
    match format {
        DiskFormat::Qcow2 => "qcow2",
        // ISO images are raw to QEMU.
        DiskFormat::Raw | DiskFormat::Iso => "raw",
    }
}

/// Snapshot names end up in qemu-img's option syntax (`snapshot.name=...`), so they
/// are kept plain.
fn check_snapshot_name(name: &str) -> Result<(), ImageError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !name.starts_with(['-', '.']);
    if !ok {
        return Err(ImageError::Invalid(format!(
            "bad snapshot name \"{name}\": use 1-64 letters, digits, '.', '_' or '-', not starting with '-' or '.'"
        )));
    }
    Ok(())
}

/// One image of a backing chain, and where it lies.
struct Layer {
    loc: Location,
    inspected: Inspected,
}

/// What qemu-img said about one image.
#[derive(Debug, Clone)]
pub(crate) struct Inspected {
    info: ImageInfo,
    snapshots: Vec<String>,
}

/// Images already read in one driver call, by URL, so that a call reading the same
/// image twice (a driver checking a template, then the host checking the same
/// template as a backing image) reaches the server once. Every operation that
/// changes an image forgets it first; across driver calls nothing is kept, since an
/// image may change between them.
#[derive(Default)]
pub(crate) struct KnownImages(Vec<(String, Inspected)>);

impl KnownImages {
    fn get(&self, url: &str) -> Option<Inspected> {
        self.0.iter().find(|(u, _)| u == url).map(|(_, i)| i.clone())
    }

    fn put(&mut self, url: &str, inspected: Inspected) {
        self.forget(url);
        self.0.push((url.to_owned(), inspected));
    }

    fn forget(&mut self, url: &str) {
        self.0.retain(|(u, _)| u != url);
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// One host call of the images capability: the grants it is checked against, its
/// deadline and the NFS servers already found reachable in this driver call.
struct Op<'a> {
    plugin: &'a str,
    grants: &'a Grants,
    downloads: &'a DownloadPolicy,
    deadline: Instant,
    reachable: Vec<String>,
    known: KnownImages,
    /// NFS paths found free of links in this host call, before qemu-img was sent there.
    checked: Vec<String>,
}

impl Op<'_> {
    /// Checks `url` may be written (created, changed, removed): an `images` grant.
    fn allowed(&self, url: &str) -> Result<Location, ImageError> {
        let Some(root) = self.grants.image_root(url) else {
            let mut text = denial(self.plugin, "images", url);
            if self.grants.allows_image_read(url) {
                text.push_str("; its images-read grant there allows reading only");
            }
            return Err(ImageError::Denied(text));
        };
        self.beneath(url, root)
    }

    /// Checks `url` may be read (inspected, listed, copied from): an `images` or
    /// `images-read` grant.
    fn readable(&self, url: &str) -> Result<Location, ImageError> {
        let root = self
            .grants
            .image_read_root(url)
            .ok_or_else(|| ImageError::Denied(denial(self.plugin, "images-read", url)))?;
        self.beneath(url, root)
    }

    /// `url` as a location resolved beneath the granted `root`.
    fn beneath(&self, url: &str, root: &str) -> Result<Location, ImageError> {
        let loc = parse(url)?;
        // A grant of a whole file system or server ("file:///") is kept without its slash.
        let root = parse(root).or_else(|_| parse(&format!("{root}/")))?;
        Ok(loc.under(&root))
    }

    fn time_left(&self) -> Result<(), ImageError> {
        if Instant::now() >= self.deadline { Err(ImageError::Deadline) } else { Ok(()) }
    }

    /// Checks an NFS server answers before qemu-img is sent to it, so that an
    /// unreachable server gives `unavailable` in bounded time rather than a hang.
    /// For NFS it also checks the path for links, since qemu-img (through libnfs) would
    /// follow them.
    fn reach(&mut self, loc: &Location) -> Result<(), ImageError> {
        if let Location::Nfs(n) = loc
            && !self.checked.contains(&n.path)
        {
            nfs::probe(n, self.deadline)?;
            self.reachable.push(n.server.clone());
            self.checked.push(n.path.clone());
        }
        Ok(())
    }

    /// The name qemu-img is given for an image: a descriptor for a local file (opened
    /// beneath its granted folder, for writing if `write`), the checked URL for NFS.
    fn qemu_name(&mut self, loc: &Location, write: bool, handles: &mut Handles) -> Result<String, ImageError> {
        match loc {
            Location::File(b) => {
                let flags = if write { libc::O_RDWR } else { libc::O_RDONLY };
                Ok(handles.keep(b.open(flags, 0)?))
            }
            Location::Nfs(n) => {
                self.reach(loc)?;
                Ok(nfs_url(n))
            }
        }
    }

    /// A `json:` name that gives qemu-img a whole backing chain, top first. Local
    /// layers are all named by descriptor (`qemu_name`): qemu-img opens exactly these
    /// and follows no name stored in an image. qemu cannot be handed an NFS chain that
    /// way (it still reads the stored names for NFS layers), so an NFS chain is named
    /// by its top only, once every layer's stored name was checked for links by
    /// `chain`; a chain that mixes the two is refused.
    fn chain_name(&mut self, layers: &[Layer], write: bool, handles: &mut Handles) -> Result<String, ImageError> {
        let nfs = layers.iter().filter(|l| matches!(l.loc, Location::Nfs(_))).count();
        if nfs == layers.len() {
            for layer in layers {
                self.reach(&layer.loc)?;
            }
            let top = &layers[0];
            let Location::Nfs(n) = &top.loc else { unreachable!("counted above") };
            let file =
                serde_json::json!({"driver": "nfs", "server": {"type": "inet", "host": n.server}, "path": n.path});
            let node = serde_json::json!({"driver": format_name(top.inspected.info.format), "file": file});
            return Ok(format!("json:{node}"));
        }
        if nfs > 0 {
            return Err(ImageError::Invalid(format!(
                "{} has a backing chain that mixes local and NFS images, which the images capability does not open",
                layers[0].loc.stored_name()
            )));
        }
        let mut below = serde_json::Value::Null;
        for (i, layer) in layers.iter().enumerate().rev() {
            let name = self.qemu_name(&layer.loc, write && i == 0, handles)?;
            let file = serde_json::json!({"driver": "file", "filename": name});
            let format = layer.inspected.info.format;
            let mut node = serde_json::json!({"driver": format_name(format), "file": file});
            if format == DiskFormat::Qcow2 {
                node["backing"] = below;
            }
            below = node;
        }
        Ok(format!("json:{below}"))
    }

    fn exists(&mut self, loc: &Location) -> Result<bool, ImageError> {
        match loc {
            Location::File(b) => Ok(b.lstat()?.is_some()),
            Location::Nfs(n) => {
                let found = nfs::exists(n, self.deadline)?;
                self.reachable.push(n.server.clone());
                Ok(found)
            }
        }
    }

    fn must_not_exist(&mut self, url: &str, loc: &Location) -> Result<(), ImageError> {
        if self.exists(loc)? {
            return Err(ImageError::Invalid(format!("{url} exists already")));
        }
        Ok(())
    }

    fn remove(&self, loc: &Location, deadline: Instant) -> Result<(), ImageError> {
        match loc {
            Location::File(b) => match b.unlink() {
                Ok(()) => Ok(()),
                Err(e) if e.errno() == Some(libc::EISDIR) => {
                    Err(ImageError::Invalid(format!("{} is a directory", b.path().display())))
                }
                Err(e @ BeneathError::Io { .. }) => Err(ImageError::Failed(format!("removing {e}"))),
                Err(e) => Err(e.into()),
            },
            Location::Nfs(n) => Ok(nfs::remove(n, deadline)?),
        }
    }

    /// Removes what a failed operation may have left, even just past the deadline.
    fn clean_up(&self, loc: &Location) {
        if let Err(e) = self.remove(loc, Instant::now() + CLEANUP_GRACE) {
            tracing::warn!(plugin = self.plugin, "could not remove a half-made image: {e}");
        }
    }

    fn qemu_img(&mut self, args: &[&OsStr], handles: &Handles) -> Result<String, ImageError> {
        self.time_left()?;
        run_tool("qemu-img", args, &handles.raw(), self.deadline)
    }

    /// `qemu-img info` of one image (its backing file is not opened), unless this
    /// driver call read it already.
    fn inspect(&mut self, url: &str, loc: &Location) -> Result<Inspected, ImageError> {
        if let Some(known) = self.known.get(url) {
            return Ok(known);
        }
        let inspected = self.inspect_now(url, loc)?;
        self.known.put(url, inspected.clone());
        Ok(inspected)
    }

    fn inspect_now(&mut self, url: &str, loc: &Location) -> Result<Inspected, ImageError> {
        if let Some(plain) = self.read_plain(loc)? {
            return Ok(plain);
        }
        let mut handles = Handles::default();
        let name = self.qemu_name(loc, false, &mut handles)?;
        let out =
            self.qemu_img(&["info".as_ref(), "-U".as_ref(), "--output=json".as_ref(), name.as_ref()], &handles)?;
        let v: serde_json::Value = serde_json::from_str(&out)
            .map_err(|e| ImageError::Failed(format!("qemu-img info {url}: unreadable answer: {e}")))?;
        let format = match v["format"].as_str().unwrap_or("") {
            "qcow2" => DiskFormat::Qcow2,
            "raw" => DiskFormat::Raw,
            other => {
                return Err(ImageError::Failed(format!("{url} is a {other} image; only raw and qcow2 are handled")));
            }
        };
        if !v["format-specific"]["data"]["data-file"].is_null() {
            return Err(ImageError::Failed(format!("{url} keeps its data in an external file, which is not allowed")));
        }
        let backing = v["backing-filename"].as_str().map(|b| backing_of(url, b));
        let snapshots = v["snapshots"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["name"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let info = ImageInfo {
            format,
            virtual_size: v["virtual-size"].as_u64().unwrap_or(0),
            actual_size: v["actual-size"].as_u64().unwrap_or(0),
            backing,
        };
        Ok(Inspected { info, snapshots })
    }

    /// A plain qcow2 image described from its header, read directly (a qemu-img run
    /// costs more than the read); `None` when qemu-img must answer (see `qcow2`).
    fn read_plain(&mut self, loc: &Location) -> Result<Option<Inspected>, ImageError> {
        let (head, actual_size) = match loc {
            Location::File(b) => {
                let f = b.open_file(false)?;
                let read = || -> std::io::Result<(Vec<u8>, u64)> {
                    let mut head = Vec::with_capacity(qcow2::HEADER_READ);
                    let blocks = f.metadata()?.blocks();
                    (&f).take(qcow2::HEADER_READ as u64).read_to_end(&mut head)?;
                    Ok((head, blocks * SECTOR))
                };
                match read() {
                    Ok(r) => r,
                    // qemu-img gives the usual errors.
                    Err(_) => return Ok(None),
                }
            }
            Location::Nfs(n) => match nfs::read_head(n, qcow2::HEADER_READ, self.deadline) {
                Ok(r) => {
                    if !self.reachable.contains(&n.server) {
                        self.reachable.push(n.server.clone());
                    }
                    r
                }
                Err(e @ (NfsError::Unreachable { .. } | NfsError::Link(_))) => return Err(e.into()),
                Err(_) => return Ok(None),
            },
        };
        if qcow2::external_data(&head) {
            // qemu would open the data file by its stored name, even for `info`.
            return Err(ImageError::Failed(format!(
                "{} keeps its data in an external file, which is not allowed",
                loc.stored_name()
            )));
        }
        Ok(qcow2::read_header(&head).map(|h| Inspected {
            info: ImageInfo {
                format: DiskFormat::Qcow2,
                virtual_size: h.virtual_size,
                actual_size,
                backing: h.backing.as_deref().map(backing_url),
            },
            snapshots: Vec::new(),
        }))
    }

    /// Makes a new empty qcow2 image directly (see `qcow2`); `None` when qemu-img must.
    fn write_plain(
        &mut self,
        url: &str,
        loc: &Location,
        size: u64,
        backing: Option<(&str, &str)>,
    ) -> Result<Option<u64>, ImageError> {
        let Some(pieces) = qcow2::new_image(size, backing) else { return Ok(None) };
        let exists = || ImageError::Invalid(format!("{url} exists already"));
        match loc {
            Location::File(b) => {
                use std::os::unix::fs::FileExt;
                let file = match b.create_new() {
                    Ok(f) => f,
                    Err(e) if e.io_kind() == Some(std::io::ErrorKind::AlreadyExists) => return Err(exists()),
                    Err(e) => return Err(e.into()),
                };
                let p = b.path();
                let p = p.as_path();
                let written = pieces
                    .iter()
                    .try_for_each(|(at, bytes)| file.write_all_at(bytes, *at))
                    .and_then(|()| file.sync_all())
                    .and_then(|()| file.metadata());
                match written {
                    Ok(m) => Ok(Some(m.blocks() * SECTOR)),
                    Err(e) => {
                        self.clean_up(loc);
                        Err(io_error(p, e))
                    }
                }
            }
            Location::Nfs(n) => match nfs::write_new(n, pieces, self.deadline) {
                Ok(allocated) => Ok(Some(allocated)),
                Err(NfsError::Exists(_)) => Err(exists()),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Inspects an image and every image below it, top first, refusing a chain that
    /// leaves the grants: qemu-img opens the whole chain for anything but `info`, so a
    /// crafted backing name would otherwise read files the plugin may not touch.
    fn chain(&mut self, url: &str, loc: &Location) -> Result<Vec<Layer>, ImageError> {
        let mut layers = vec![Layer { loc: loc.clone(), inspected: self.inspect(url, loc)? }];
        while let Some(below) = layers.last().and_then(|l| l.inspected.info.backing.clone()) {
            if layers.len() >= MAX_CHAIN {
                return Err(ImageError::Failed(format!("{url} has a backing chain deeper than {MAX_CHAIN}")));
            }
            let below_loc = self.readable(&below).map_err(|e| match e {
                ImageError::Denied(t) => ImageError::Denied(format!("{url} is backed by {below}: {t}")),
                ImageError::Invalid(t) => ImageError::Failed(format!("{url} is backed by an unusable name: {t}")),
                other => other,
            })?;
            let inspected = self.inspect(&below, &below_loc)?;
            layers.push(Layer { loc: below_loc, inspected });
        }
        Ok(layers)
    }

    fn snapshot_op(&mut self, url: &str, name: &str, flag: &str) -> Result<(), ImageError> {
        check_snapshot_name(name)?;
        let loc = self.allowed(url)?;
        let layers = self.chain(url, &loc)?;
        let top = &layers[0].inspected;
        if top.info.format != DiskFormat::Qcow2 {
            return Err(ImageError::Invalid(format!("{url} is raw; only qcow2 images have snapshots")));
        }
        let has = top.snapshots.iter().any(|s| s == name);
        match (flag, has) {
            ("-c", true) => return Err(ImageError::Invalid(format!("{url} already has a snapshot \"{name}\""))),
            ("-a" | "-d", false) => return Err(ImageError::NotFound(format!("{url} has no snapshot \"{name}\""))),
            _ => {}
        }
        // The format and the whole chain are given in the name.
        let mut handles = Handles::default();
        let image = self.chain_name(&layers, true, &mut handles)?;
        let args: [&OsStr; 5] = ["snapshot".as_ref(), "-q".as_ref(), flag.as_ref(), name.as_ref(), image.as_ref()];
        self.qemu_img(&args, &handles).map(drop)
    }

    fn convert(
        &mut self,
        source: &str,
        snapshot: Option<&str>,
        target: &str,
        format: DiskFormat,
    ) -> Result<(), ImageError> {
        if let Some(s) = snapshot {
            check_snapshot_name(s)?;
        }
        let src = self.readable(source)?;
        let dst = self.allowed(target)?;
        if format == DiskFormat::Iso {
            return Err(ImageError::Invalid("cannot convert into an ISO image; use raw or qcow2".into()));
        }
        let layers = self.chain(source, &src)?;
        let top = &layers[0].inspected;
        if let Some(s) = snapshot {
            if top.info.format != DiskFormat::Qcow2 {
                return Err(ImageError::Invalid(format!("{source} is raw; only qcow2 images have snapshots")));
            }
            if !top.snapshots.iter().any(|n| n == s) {
                return Err(ImageError::NotFound(format!("{source} has no snapshot \"{s}\"")));
            }
        }
        let mut handles = Handles::default();
        let src_name = self.chain_name(&layers, false, &mut handles)?;
        let dst_name = self.new_target(target, &dst, &mut handles)?;
        let snap = snapshot.map(|s| OsString::from(format!("snapshot.name={s}")));
        let mut args: Vec<&OsStr> = vec!["convert".as_ref(), "-q".as_ref()];
        if let Some(s) = &snap {
            args.extend(["-l".as_ref(), s.as_os_str()]);
        }
        args.extend::<[&OsStr; 4]>(["-O".as_ref(), format_name(format).as_ref(), src_name.as_ref(), dst_name.as_ref()]);
        self.qemu_img(&args, &handles).inspect_err(|_| self.clean_up(&dst)).map(drop)
    }

    /// The name qemu-img writes a new image to: a local file is made here, empty,
    /// beneath its granted folder, and handed over as a descriptor; an NFS path must
    /// not exist and holds no link.
    fn new_target(&mut self, url: &str, loc: &Location, handles: &mut Handles) -> Result<String, ImageError> {
        match loc {
            Location::File(b) => match b.create_new() {
                Ok(f) => Ok(handles.keep(f.into())),
                Err(e) if e.io_kind() == Some(std::io::ErrorKind::AlreadyExists) => {
                    Err(ImageError::Invalid(format!("{url} exists already")))
                }
                Err(e) => Err(e.into()),
            },
            Location::Nfs(_) => {
                self.must_not_exist(url, loc)?;
                self.qemu_name(loc, true, handles)
            }
        }
    }

    fn create(&mut self, url: &str, format: DiskFormat, size: u64, backing: Option<&str>) -> Result<(), ImageError> {
        let loc = self.allowed(url)?;
        let below = backing.map(|b| self.readable(b).map(|l| (b, l))).transpose()?;
        match (format, &below, size) {
            (DiskFormat::Iso, _, _) => return Err(ImageError::Invalid("cannot create an ISO image".into())),
            (DiskFormat::Raw, Some(_), _) => {
                return Err(ImageError::Invalid("only qcow2 images can have a backing image".into()));
            }
            (_, None, 0) => return Err(ImageError::Invalid("size 0: give a size, or a backing image".into())),
            _ => {}
        }
        let mut backing_args: Vec<OsString> = Vec::new();
        let mut virtual_size = size.next_multiple_of(SECTOR);
        let mut backing_of = None;
        if let Some((b, b_loc)) = &below {
            let base = self.chain(b, b_loc)?.remove(0).inspected;
            if size == 0 {
                virtual_size = base.info.virtual_size;
            }
            backing_of = Some((b_loc.stored_name(), format_name(base.info.format)));
            if size != 0 && size < base.info.virtual_size {
                return Err(ImageError::Invalid(format!(
                    "size {size} is smaller than the backing image {b} ({} bytes)",
                    base.info.virtual_size
                )));
            }
            // -u: qemu-img would open the backing image by name; the chain was read above.
            backing_args = vec![
                "-u".into(),
                "-b".into(),
                b_loc.stored_name().into(),
                "-F".into(),
                format_name(base.info.format).into(),
            ];
        }
        let backing_name = backing_of.as_ref().map(|(name, _)| backing_url(name));
        let plain = match format {
            DiskFormat::Qcow2 => {
                self.write_plain(url, &loc, virtual_size, backing_of.as_ref().map(|(n, f)| (n.as_str(), *f)))?
            }
            _ => None,
        };
        let actual_size = match plain {
            Some(allocated) => allocated,
            None => self.create_with_tool(url, &loc, format, virtual_size, &backing_args)?,
        };
        // What `info` would now read: a driver describing its new volume needs no
        // second look at the storage.
        let info = ImageInfo { format, virtual_size, actual_size, backing: backing_name };
        self.known.put(url, Inspected { info, snapshots: Vec::new() });
        Ok(())
    }

    /// `qemu-img create`; returns the bytes the new image takes on storage.
    fn create_with_tool(
        &mut self,
        url: &str,
        loc: &Location,
        format: DiskFormat,
        size: u64,
        backing_args: &[OsString],
    ) -> Result<u64, ImageError> {
        let mut handles = Handles::default();
        let name = self.new_target(url, loc, &mut handles)?;
        let size_arg = size.to_string();
        let mut args: Vec<&OsStr> = vec!["create".as_ref(), "-q".as_ref(), "-f".as_ref(), format_name(format).as_ref()];
        args.extend(backing_args.iter().map(OsString::as_os_str));
        args.extend::<[&OsStr; 2]>([name.as_ref(), size_arg.as_ref()]);
        self.qemu_img(&args, &handles).inspect_err(|_| self.clean_up(loc))?;
        Ok(match loc {
            Location::File(b) => {
                let p = b.path();
                b.open(libc::O_PATH, 0)
                    .map(std::fs::File::from)
                    .and_then(|f| {
                        f.metadata().map_err(|e| BeneathError::Io { path: p.display().to_string(), source: e })
                    })?
                    .blocks()
                    * SECTOR
            }
            Location::Nfs(n) => nfs::allocated(n, self.deadline)?,
        })
    }

    fn resize(&mut self, url: &str, size: u64) -> Result<(), ImageError> {
        let loc = self.allowed(url)?;
        let layers = self.chain(url, &loc)?;
        let top = &layers[0].inspected;
        let shrink = size < top.info.virtual_size;
        if shrink && top.info.format == DiskFormat::Qcow2 {
            return Err(ImageError::Invalid(format!(
                "qcow2 images only grow: {url} is {} bytes, asked for {size}",
                top.info.virtual_size
            )));
        }
        let mut handles = Handles::default();
        let name = self.chain_name(&layers, true, &mut handles)?;
        let size_arg = size.to_string();
        let mut args: Vec<&OsStr> = vec!["resize".as_ref(), "-q".as_ref()];
        if shrink {
            args.push("--shrink".as_ref());
        }
        args.extend::<[&OsStr; 2]>([name.as_ref(), size_arg.as_ref()]);
        self.qemu_img(&args, &handles).map(drop)
    }

    fn list_dir(&mut self, url: &str) -> Result<Vec<String>, ImageError> {
        match self.readable(url)? {
            Location::File(b) => Ok(b.read_dir()?),
            Location::Nfs(n) => Ok(nfs::list_dir(&n, self.deadline)?),
        }
    }

    fn make_dir(&mut self, url: &str) -> Result<(), ImageError> {
        match self.allowed(url)? {
            Location::File(b) => Ok(b.make_dirs()?),
            Location::Nfs(n) => Ok(nfs::make_dir(&n, self.deadline)?),
        }
    }

    fn capacity(&mut self, url: &str) -> Result<Space, ImageError> {
        match self.readable(url)? {
            Location::File(b) => {
                let (total, free) = b.space()?;
                Ok(Space { total_bytes: total, free_bytes: free })
            }
            Location::Nfs(n) => {
                let s = nfs::space(&n, self.deadline)?;
                Ok(Space { total_bytes: s.total, free_bytes: s.free })
            }
        }
    }

    fn fetch(
        &mut self,
        activity: &ImageActivity,
        source: &str,
        target: &str,
        sha256: Option<&str>,
    ) -> Result<u64, ImageError> {
        let dst = self.allowed(target)?;
        let ok_source = (source.starts_with("http://") || source.starts_with("https://"))
            && !source.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok_source {
            return Err(ImageError::Invalid(format!(
                "bad download URL \"{source}\": only http:// and https:// are fetched"
            )));
        }
        let want = expected_digest(sha256)?;
        self.must_not_exist(target, &dst)?;
        activity.begin(target, source)?;
        let result = self.download_into(activity, source, target, &dst, want.as_ref());
        activity.finish(target, result.as_ref().err().map(ToString::to_string));
        result
    }

    fn download_into(
        &mut self,
        activity: &ImageActivity,
        source: &str,
        target: &str,
        dst: &Location,
        want: Option<&Checksum>,
    ) -> Result<u64, ImageError> {
        // Bytes land in a hidden file first: beside the target for a local file (so
        // the final rename is atomic), in the local temp folder for NFS (then uploaded).
        let (file, partial) = match dst {
            Location::File(b) => {
                let path = b.path();
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let partial = b.sibling(&format!(".{name}.partial"));
                // A partial file a crash left behind (never followed if it is a link).
                let _ = partial.unlink();
                (partial.create_new()?, Partial::Beneath(partial))
            }
            Location::Nfs(_) => {
                // Unique in the process, not per plugin host: several hosts may download at once.
                static NEXT: AtomicU64 = AtomicU64::new(0);
                let path = std::env::temp_dir().join(format!(
                    "wasmstack-fetch-{}-{}.partial",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                (std::fs::File::create(&path).map_err(|e| io_error(&path, e))?, Partial::Local(path))
            }
        };
        let shown = match &partial {
            Partial::Beneath(b) => b.path(),
            Partial::Local(p) => p.clone(),
        };
        let result =
            self.download(activity, source, target, file, &shown, want).and_then(|size| match (dst, &partial) {
                (Location::File(b), Partial::Beneath(p)) => {
                    let name = p.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    b.rename_from_sibling(&name).map(|()| size).map_err(ImageError::from)
                }
                (Location::Nfs(n), Partial::Local(p)) => {
                    self.time_left()?;
                    nfs::upload(p, n, self.deadline).map_err(ImageError::from)
                }
                _ => Err(ImageError::Failed("a download lost its partial file".into())),
            });
        match &partial {
            Partial::Beneath(b) => drop(b.unlink()),
            Partial::Local(p) => drop(std::fs::remove_file(p)),
        }
        result
    }

    fn download(
        &mut self,
        activity: &ImageActivity,
        source: &str,
        target: &str,
        mut file: std::fs::File,
        partial: &Path,
        want: Option<&Checksum>,
    ) -> Result<u64, ImageError> {
        // Redirects are followed here, not by ureq, so that every hop's address is checked
        // before anything connects to it.
        let mut url = source.to_owned();
        let mut redirects = 0;
        let (mut response, budget) = loop {
            let budget = self.deadline.saturating_duration_since(Instant::now()).saturating_sub(FETCH_MARGIN);
            if budget.is_zero() {
                return Err(ImageError::Deadline);
            }
            let (peer, addrs) = self
                .downloads
                .check_blocking(&url, budget.min(CONNECT_TIMEOUT))
                .map_err(|r| refused(source, &url, r))?;
            let response =
                pinned_agent(budget, peer, addrs).get(&url).call().map_err(|e| http_error(&url, budget, e))?;
            let next = match response.status().is_redirection() {
                true => response.headers().get("location").and_then(|l| l.to_str().ok()).map(|l| joined(&url, l)),
                false => None,
            };
            let Some(next) = next else { break (response, budget) };
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(ImageError::Failed(format!("{source}: more than {MAX_REDIRECTS} redirects")));
            }
            if next.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ImageError::Invalid(format!("{url} redirected to a malformed URL")));
            }
            url = next;
        };
        let status = response.status();
        if !status.is_success() {
            let text = format!("{url} answered {status}");
            return Err(match status.as_u16() {
                404 | 410 => ImageError::NotFound(text),
                500.. => ImageError::Unavailable(text),
                _ => ImageError::Failed(text),
            });
        }
        let total = response.body().content_length();
        let mut reader = response.body_mut().as_reader();
        let mut hasher = want.map(|c| c.algorithm.hasher());
        let mut buf = vec![0u8; 256 << 10];
        let mut bytes = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(body_error(&url, budget, e)),
            };
            file.write_all(&buf[..n]).map_err(|e| io_error(partial, e))?;
            if let Some(h) = &mut hasher {
                h.update(&buf[..n]);
            }
            bytes += n as u64;
            activity.advance(target, bytes, total);
        }
        if let Some(t) = total
            && t != bytes
        {
            return Err(ImageError::Unavailable(format!("{url} ended after {bytes} of {t} bytes")));
        }
        file.sync_all().map_err(|e| io_error(partial, e))?;
        if let (Some(want), Some(h)) = (want, hasher) {
            check_digest(source, want, h)?;
        }
        Ok(bytes)
    }
}

/// Where a download's bytes land before they are put in place.
enum Partial {
    /// Beside a local target, beneath its granted folder.
    Beneath(Beneath),
    /// In the local temp folder, for an NFS target.
    Local(PathBuf),
}

/// A ureq agent for one request that connects only to `addrs`, the addresses the download
/// policy checked for `target`: ureq asks no resolver of its own (a second lookup could
/// answer differently), follows no redirects and uses no proxy from the environment (the
/// policy checks where the request goes, not a proxy's address).
/// Where the server may put a file of its own under a driver's `images` grants (a VM's
/// config drive on its pool): the file and its folder, resolved beneath the grant.
fn server_file(plugin: &str, grants: &Grants, url: &str) -> Result<(Location, Location), ImageError> {
    let root = grants.image_root(url).ok_or_else(|| ImageError::Denied(denial(plugin, "images", url)))?;
    let root = parse(root).or_else(|_| parse(&format!("{root}/")))?;
    let folder = url.rsplit_once('/').map(|(f, _)| f).filter(|f| f.contains('/')).unwrap_or(url);
    Ok((parse(url)?.under(&root), parse(folder)?.under(&root)))
}

/// Writes `bytes` as the file at `url`, replacing any file there, within `plugin`'s
/// `images` grants as its own calls would be: how the server puts files it makes itself
/// (a VM's config drive) on a pool. A local file is replaced at once (written beside it,
/// then renamed over it).
pub fn put_file(plugin: &str, grants: &Grants, url: &str, bytes: &[u8], deadline: Instant) -> Result<(), String> {
    let (file, folder) = server_file(plugin, grants, url).map_err(|e| e.to_string())?;
    match (file, folder) {
        (Location::File(b), Location::File(dir)) => {
            dir.make_dirs().map_err(|e| e.to_string())?;
            let name = b.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let temp = format!(".{name}.new");
            let part = b.sibling(&temp);
            part.unlink().map_err(|e| e.to_string())?;
            let written = part.create_new().and_then(|mut f| {
                f.write_all(bytes)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| BeneathError::Io { path: part.path().display().to_string(), source: e })
            });
            let done = written.and_then(|()| b.rename_from_sibling(&temp));
            if let Err(e) = done {
                let _ = part.unlink();
                return Err(e.to_string());
            }
            Ok(())
        }
        (Location::Nfs(n), Location::Nfs(dir)) => {
            nfs::make_dir(&dir, deadline).map_err(|e| e.to_string())?;
            nfs::remove(&n, deadline).map_err(|e| e.to_string())?;
            nfs::write_new(&n, vec![(0, bytes.to_vec())], deadline).map(|_| ()).map_err(|e| e.to_string())
        }
        _ => Err(format!("bad file URL {url}")),
    }
}

/// Removes a file [`put_file`] wrote; a missing file is not an error.
pub fn remove_file(plugin: &str, grants: &Grants, url: &str, deadline: Instant) -> Result<(), String> {
    match server_file(plugin, grants, url).map_err(|e| e.to_string())?.0 {
        Location::File(b) => b.unlink().map_err(|e| e.to_string()),
        Location::Nfs(n) => nfs::remove(&n, deadline).map_err(|e| e.to_string()),
    }
}

fn pinned_agent(budget: Duration, target: Target, addrs: Vec<std::net::SocketAddr>) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_global(Some(budget))
        .timeout_connect(Some(budget.min(CONNECT_TIMEOUT)))
        .timeout_per_read(Some(budget.min(STALL_TIMEOUT)))
        .build();
    let connector = ureq::unversioned::transport::DefaultConnector::default();
    ureq::Agent::with_parts(config, connector, Pinned { target, addrs })
}

/// Answers ureq's lookup with the checked addresses, for the checked host only.
#[derive(Debug)]
struct Pinned {
    target: Target,
    addrs: Vec<std::net::SocketAddr>,
}

impl ureq::unversioned::resolver::Resolver for Pinned {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let asked = Target::of(&uri.to_string()).ok();
        if asked.is_none_or(|t| !t.host.eq_ignore_ascii_case(&self.target.host) || t.port != self.target.port) {
            return Err(ureq::Error::BadUri(format!("{uri} is not the address that was checked")));
        }
        let mut out = self.empty();
        for addr in self.addrs.iter().take(16) {
            out.push(*addr);
        }
        Ok(out)
    }
}

/// A redirect's `Location` as an absolute URL, from the URL that answered it.
fn joined(base: &str, location: &str) -> String {
    let has_scheme = location.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if has_scheme {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if location.starts_with("//") {
        format!("{scheme}:{location}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        // Relative to the answering URL's folder (query and fragment left out).
        let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
        let folder = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let folder = if folder.is_empty() { "/" } else { folder };
        format!("{scheme}://{authority}{folder}{location}")
    }
}

/// A download the policy refused, before anything connected: the words say what kind of
/// address the host is, never what answers there.
fn refused(source: &str, url: &str, r: Refusal) -> ImageError {
    let hop = if url == source { String::new() } else { format!(" (it redirected to {url})") };
    match r {
        Refusal::NotHttp => ImageError::Invalid(format!(
            "bad download URL \"{url}\"{hop}: only http:// and https:// URLs with a host are fetched"
        )),
        Refusal::Unresolved => ImageError::Unavailable(format!("{url}: unknown host")),
        Refusal::Slow => ImageError::Unavailable(format!("{url}: the host did not resolve in time")),
        Refusal::Internal(_) => ImageError::Denied(format!("download from {source} refused{hop}: {r}")),
    }
}

/// The digest a `fetch` caller expects: bare SHA-256 hex, or any form `Checksum` reads
/// (`{MD5}hex`, `{SHA-1}hex`, `{SHA-256}hex`, `{SHA-512}hex`).
fn expected_digest(text: Option<&str>) -> Result<Option<Checksum>, ImageError> {
    text.map(|t| t.parse::<Checksum>().map_err(|e| ImageError::Invalid(format!("bad checksum: {e}")))).transpose()
}

/// Fails (the caller then discards the file) unless what was hashed is what was expected.
fn check_digest(
    source: &str,
    want: &Checksum,
    hasher: Box<dyn sha2::digest::DynDigest + Send>,
) -> Result<(), ImageError> {
    let got = hex::encode(hasher.finalize());
    if got != want.hex {
        return Err(ImageError::Failed(format!(
            "the {} digest of {source} did not match: got {got}, expected {}; the download was discarded",
            want.algorithm.name(),
            want.hex
        )));
    }
    Ok(())
}

fn http_error(source: &str, budget: Duration, e: ureq::Error) -> ImageError {
    match e {
        ureq::Error::Timeout(_) => ImageError::Unavailable(format!(
            "{source}: no complete answer within {:.1} s",
            budget.min(CONNECT_TIMEOUT).as_secs_f64()
        )),
        ureq::Error::HostNotFound => ImageError::Unavailable(format!("{source}: unknown host")),
        ureq::Error::ConnectionFailed | ureq::Error::Io(_) => {
            ImageError::Unavailable(format!("{source}: cannot connect: {e}"))
        }
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => ImageError::Invalid(format!("bad download URL {source}: {e}")),
        other => ImageError::Failed(format!("{source}: {other}")),
    }
}

fn body_error(source: &str, budget: Duration, e: std::io::Error) -> ImageError {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return ImageError::Unavailable(format!(
            "{source}: the download stalled or did not finish within {:.1} s",
            budget.as_secs_f64()
        ));
    }
    ImageError::Unavailable(format!("{source}: the download broke off: {e}"))
}

fn io_error(path: &Path, e: std::io::Error) -> ImageError {
    let text = format!("{}: {e}", path.display());
    match e.kind() {
        std::io::ErrorKind::NotFound => ImageError::NotFound(text),
        std::io::ErrorKind::AlreadyExists => ImageError::Invalid(text),
        _ => ImageError::Failed(text),
    }
}

/// Runs a tool with its output captured and the descriptors `fds` inherited, killing
/// it once `deadline` passes.
fn run_tool(program: &str, args: &[&OsStr], fds: &[RawFd], deadline: Instant) -> Result<String, ImageError> {
    match process::run_with_fds(program, args, fds, deadline) {
        Ok(done) if done.status.success() => Ok(done.stdout),
        Ok(done) => Err(tool_error(program, &done.stderr, done.status)),
        Err(RunError::TooLong(_)) => Err(ImageError::Deadline),
        Err(e) => Err(ImageError::Failed(e.to_string())),
    }
}

/// Turns a tool's complaint into an error of the right kind, keeping its words.
fn tool_error(program: &str, stderr: &str, status: std::process::ExitStatus) -> ImageError {
    let prefix = format!("{program}: ");
    let lines: Vec<&str> = stderr
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix(prefix.as_str()).unwrap_or(l))
        .collect();
    let mut text = if lines.is_empty() { format!("{program} failed ({status})") } else { lines.join("; ") };
    if text.len() > 400 {
        let cut = (0..=400).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    let l = text.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| l.contains(w));
    if has(&["mnt3err_noent", "mnt3err_acces"]) {
        ImageError::NotFound(text)
    } else if has(&["failed to mount nfs share", "nfs_service", "connection refused", "timed out", "no route to host"])
    {
        ImageError::Unavailable(text)
    } else if has(&["no such file", "noent", "failed to load snapshot"]) {
        ImageError::NotFound(text)
    } else if has(&["--shrink"]) {
        ImageError::Invalid(text)
    } else {
        ImageError::Failed(text)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type Outcome<T> = wasmtime::Result<Result<T, DriverError>>;

impl CallState {
    /// Runs one images operation within the call's deadline: on a worker thread (see
    /// `blocking`), as qemu-img, an NFS server or a hung mount may keep it waiting, and
    /// waited for only until the deadline. Past it the call ends; the work still runs to
    /// its own end (qemu-img is killed at the deadline, half-made images are removed).
    fn images_op<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Op<'_>, &ImageActivity) -> Result<T, ImageError> + Send + 'static,
    ) -> Outcome<T> {
        self.check_deadline()?;
        let (plugin, grants) = (self.plugin.clone(), self.grants.clone());
        let (downloads, activity) = (self.downloads.clone(), self.images.clone());
        let reachable = std::mem::take(&mut self.nfs_reachable);
        let known = std::mem::take(&mut self.images_known);
        let deadline = self.deadline;
        let (result, reachable, known) = blocking::until(deadline, move || {
            let mut op = Op {
                plugin: &plugin,
                grants: &grants,
                downloads: &downloads,
                deadline,
                reachable,
                known,
                checked: Vec::new(),
            };
            let result = f(&mut op, &activity);
            (result, op.reachable, op.known)
        })?;
        self.nfs_reachable = reachable;
        self.images_known = known;
        self.check_deadline()?;
        match result {
            Ok(v) => Ok(Ok(v)),
            Err(ImageError::Deadline) => Err(DeadlinePassed.into()),
            Err(e) => Ok(Err(e.into_driver())),
        }
    }
}

impl CallState {
    /// An images operation that changes (or may change) the image at `url`: what
    /// this call read of it before, or while changing it, no longer holds.
    fn images_change<T: Send + 'static>(
        &mut self,
        url: String,
        f: impl FnOnce(&mut Op<'_>, &ImageActivity) -> Result<T, ImageError> + Send + 'static,
    ) -> Outcome<T> {
        self.images_op(move |op, act| {
            op.known.forget(&url);
            let result = f(op, act);
            op.known.forget(&url);
            result
        })
    }
}

/// Counts an operation as having reached storage: called once its URLs passed the
/// grant checks.
fn reached(activity: &ImageActivity) {
    activity.reached.fetch_add(1, Ordering::Relaxed);
}

impl Host for CallState {
    fn create(&mut self, url: String, format: DiskFormat, size_bytes: u64, backing: Option<String>) -> Outcome<()> {
        self.images_op(move |op, act| {
            op.known.forget(&url);
            op.allowed(&url)?;
            if let Some(b) = &backing {
                op.readable(b)?;
            }
            reached(act);
            op.create(&url, format, size_bytes, backing.as_deref())
        })
    }

    fn convert(&mut self, source: String, target: String, format: DiskFormat) -> Outcome<()> {
        self.images_change(target.clone(), move |op, act| {
            op.readable(&source)?;
            op.allowed(&target)?;
            reached(act);
            op.convert(&source, None, &target, format)
        })
    }

    fn convert_snapshot(
        &mut self,
        source: String,
        snapshot: String,
        target: String,
        format: DiskFormat,
    ) -> Outcome<()> {
        self.images_change(target.clone(), move |op, act| {
            op.readable(&source)?;
            op.allowed(&target)?;
            reached(act);
            op.convert(&source, Some(&snapshot), &target, format)
        })
    }

    fn resize(&mut self, url: String, size_bytes: u64) -> Outcome<()> {
        self.images_change(url.clone(), move |op, act| {
            op.allowed(&url)?;
            reached(act);
            op.resize(&url, size_bytes)
        })
    }

    fn info(&mut self, url: String) -> Outcome<ImageInfo> {
        self.images_op(move |op, act| {
            let loc = op.readable(&url)?;
            reached(act);
            Ok(op.inspect(&url, &loc)?.info)
        })
    }

    fn remove(&mut self, url: String) -> Outcome<()> {
        self.images_change(url.clone(), move |op, act| {
            let loc = op.allowed(&url)?;
            reached(act);
            op.remove(&loc, op.deadline)
        })
    }

    fn snapshot_create(&mut self, url: String, name: String) -> Outcome<()> {
        self.images_change(url.clone(), move |op, act| {
            op.allowed(&url)?;
            reached(act);
            op.snapshot_op(&url, &name, "-c")
        })
    }

    fn snapshot_revert(&mut self, url: String, name: String) -> Outcome<()> {
        self.images_change(url.clone(), move |op, act| {
            op.allowed(&url)?;
            reached(act);
            op.snapshot_op(&url, &name, "-a")
        })
    }

    fn snapshot_delete(&mut self, url: String, name: String) -> Outcome<()> {
        self.images_change(url.clone(), move |op, act| {
            op.allowed(&url)?;
            reached(act);
            op.snapshot_op(&url, &name, "-d")
        })
    }

    fn snapshot_list(&mut self, url: String) -> Outcome<Vec<String>> {
        self.images_op(move |op, act| {
            let loc = op.readable(&url)?;
            reached(act);
            Ok(op.inspect(&url, &loc)?.snapshots)
        })
    }

    fn fetch(&mut self, source: String, target: String, sha256: Option<String>) -> Outcome<u64> {
        self.images_change(target.clone(), move |op, act| {
            op.allowed(&target)?;
            reached(act);
            op.fetch(act, &source, &target, sha256.as_deref())
        })
    }

    fn list_dir(&mut self, dir_url: String) -> Outcome<Vec<String>> {
        self.images_op(move |op, act| {
            op.readable(&dir_url)?;
            reached(act);
            op.list_dir(&dir_url)
        })
    }

    fn make_dir(&mut self, dir_url: String) -> Outcome<()> {
        self.images_op(move |op, act| {
            op.allowed(&dir_url)?;
            reached(act);
            op.make_dir(&dir_url)
        })
    }

    fn capacity(&mut self, url: String) -> Outcome<Space> {
        self.images_op(move |op, act| {
            op.readable(&url)?;
            reached(act);
            op.capacity(&url)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_plain_urls() {
        assert_eq!(
            parse("file:///var/lib/p/v.qcow2").unwrap(),
            Location::File(Beneath::new("/var/lib/p/v.qcow2".as_ref(), "/var/lib/p/v.qcow2".as_ref()))
        );
        assert_eq!(
            parse("nfs://10.0.0.5/export/p/").unwrap(),
            Location::Nfs(NfsPath { server: "10.0.0.5".into(), path: "/export/p".into(), root: "/export/p".into() })
        );
        for bad in [
            "file://relative/x",
            "nfs://h/export/x?uid=0",
            "nfs://h:2049/export",
            "nfs://h",
            "file:///a/../b",
            "file:///a//b",
            "file:///a b",
            "smb://h/share",
            "file:///a/./b",
        ] {
            assert!(matches!(parse(bad), Err(ImageError::Invalid(_))), "{bad} was accepted");
        }
    }

    /// The host's own calls, as any driver may make them, on a local grant with a link
    /// to a folder outside it: each is refused, and nothing outside changes.
    #[test]
    fn host_calls_refuse_links_in_a_local_grant() {
        let base = std::env::temp_dir().join(format!("images-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (grant, outside) = (base.join("grant"), base.join("outside"));
        std::fs::create_dir_all(grant.join("pool")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let made = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(outside.join("secret.qcow2"))
            .arg("1M")
            .status();
        assert!(made.unwrap().success());
        let secret = std::fs::read(outside.join("secret.qcow2")).unwrap();
        std::os::unix::fs::symlink(&outside, grant.join("pool/out")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.qcow2"), grant.join("pool/v.qcow2")).unwrap();
        let url = |rel: &str| format!("file://{}/{rel}", grant.display());
        let grants = Grants::new(vec![], vec![url("").trim_end_matches('/').to_owned()], vec![]).unwrap();
        let downloads = DownloadPolicy::default();
        let mut op = Op {
            plugin: "p",
            grants: &grants,
            downloads: &downloads,
            deadline: Instant::now() + Duration::from_secs(30),
            reachable: Vec::new(),
            known: KnownImages::default(),
            checked: Vec::new(),
        };
        let refused = |r: Result<(), ImageError>, what: &str| match r {
            Err(ImageError::Denied(t)) if t.contains("is a symbolic link") => {}
            other => panic!("{what}: {other:?}"),
        };
        let info = op.allowed(&url("pool/v.qcow2")).and_then(|l| op.inspect_now(&url("pool/v.qcow2"), &l));
        refused(info.map(drop), "info");
        refused(op.list_dir(&url("pool/out")).map(drop), "list");
        refused(op.make_dir(&url("pool/out/planted")), "mkdir");
        refused(op.capacity(&url("pool/out")).map(drop), "capacity");
        refused(op.create(&url("pool/out/new.qcow2"), DiskFormat::Qcow2, 1 << 20, None), "create");
        refused(op.create(&url("pool/new.qcow2"), DiskFormat::Qcow2, 0, Some(&url("pool/v.qcow2"))), "backing");
        refused(op.create(&url("pool/out/new.raw"), DiskFormat::Raw, 1 << 20, None), "create raw");
        refused(op.convert(&url("pool/v.qcow2"), None, &url("pool/copy.qcow2"), DiskFormat::Qcow2), "convert");
        refused(op.convert(&url("pool/out/secret.qcow2"), None, &url("pool/c.qcow2"), DiskFormat::Raw), "convert");
        refused(op.resize(&url("pool/v.qcow2"), 2 << 20), "resize");
        refused(op.snapshot_op(&url("pool/v.qcow2"), "s1", "-c"), "snapshot");
        let loc = op.allowed(&url("pool/out/secret.qcow2")).unwrap();
        refused(op.remove(&loc, op.deadline), "remove");
        assert_eq!(std::fs::read(outside.join("secret.qcow2")).unwrap(), secret);
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1, "something was planted outside");
        assert_eq!(std::fs::read_dir(grant.join("pool")).unwrap().count(), 2, "something was copied in");
        // Plain paths in the same grant work, raw images made by qemu-img included.
        op.create(&url("pool/plain.raw"), DiskFormat::Raw, 1 << 20, None).unwrap();
        op.convert(&url("pool/plain.raw"), None, &url("pool/plain.qcow2"), DiskFormat::Qcow2).unwrap();
        op.resize(&url("pool/plain.qcow2"), 2 << 20).unwrap();
        assert_eq!(op.list_dir(&url("pool")).unwrap(), ["out", "plain.qcow2", "plain.raw", "v.qcow2"]);
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn tool_errors_get_their_kind() {
        let fail = std::process::Command::new("false").status().unwrap();
        let e = tool_error("qemu-img", "qemu-img: Could not open '/x': No such file or directory\n", fail);
        assert!(
            matches!(&e, ImageError::NotFound(t) if t == "Could not open '/x': No such file or directory"),
            "{e:?}"
        );
        let e = tool_error("qemu-img", "qemu-img: Failed to mount nfs share: nfs_service failed", fail);
        assert!(matches!(e, ImageError::Unavailable(_)), "{e:?}");
        let e = tool_error(
            "qemu-img",
            "qemu-img: Could not open 'nfs://h/nope/x': Failed to mount nfs share: mount_cb: RPC error: Mount failed with error MNT3ERR_ACCES(13)",
            fail,
        );
        assert!(matches!(e, ImageError::NotFound(_)), "{e:?}");
        let e = tool_error("qemu-img", "", fail);
        assert!(matches!(&e, ImageError::Failed(t) if t.starts_with("qemu-img failed")), "{e:?}");
    }

    #[test]
    fn the_deadline_kills_a_slow_tool() {
        let started = Instant::now();
        let e = run_tool("sleep", &["5".as_ref()], &[], Instant::now() + Duration::from_millis(200)).unwrap_err();
        assert!(matches!(e, ImageError::Deadline), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn redirects_resolve_against_the_answering_url() {
        let base = "http://a.example:8080/dir/file.qcow2?x=1";
        assert_eq!(joined(base, "https://b.example/x"), "https://b.example/x");
        assert_eq!(joined(base, "HTTP://B/x"), "HTTP://B/x");
        assert_eq!(joined(base, "file:///etc/passwd"), "file:///etc/passwd");
        assert_eq!(joined(base, "//127.0.0.1:5/x"), "http://127.0.0.1:5/x");
        assert_eq!(joined(base, "/other?to=http://x/"), "http://a.example:8080/other?to=http://x/");
        assert_eq!(joined(base, "next.qcow2"), "http://a.example:8080/dir/next.qcow2");
        assert_eq!(joined("http://a.example", "x"), "http://a.example/x");
    }

    #[test]
    fn finished_transfers_are_bounded() {
        let a = ImageActivity::default();
        for i in 0..FINISHED_KEPT + 10 {
            let t = format!("file:///t/{i}");
            a.begin(&t, "http://x/").unwrap();
            assert!(a.begin(&t, "http://x/").is_err(), "a second download to the same target started");
            a.finish(&t, None);
        }
        assert_eq!(a.transfers().len(), FINISHED_KEPT);
    }
}
