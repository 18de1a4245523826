//! A minimal hand-written binding to libnfs (NFSv3, synchronous API) for what
//! qemu-img and the libnfs command-line tools cannot do: make directories, remove
//! files, list directories, read free space, and write a downloaded file.
//!
//! Nothing is mounted: each operation opens its own context, mounts the export
//! (MOUNT protocol, no kernel involved), does its work and closes the context. A
//! context is not thread-safe, so it never leaves the thread that made it.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io::Read;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Why an NFS operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NfsError {
    /// The server did not answer, or not in time.
    #[error("NFS server {server} is unreachable: {detail}")]
    Unreachable { server: String, detail: String },
    /// No export on the server holds the path.
    #[error("NFS server {server} exports nothing that holds {path} ({detail})")]
    NoExport { server: String, path: String, detail: String },
    /// The file or directory does not exist.
    #[error("{0}: no such file or directory")]
    NotFound(String),
    /// The file or directory is there already.
    #[error("{0} exists")]
    Exists(String),
    /// Reading the local side of a copy failed.
    #[error("reading {path}: {source}")]
    Local { path: String, source: std::io::Error },
    /// A component below the granted folder is a symbolic link, which libnfs would follow.
    #[error("{0} is a symbolic link; the images capability does not follow links")]
    Link(String),
    /// Any other NFS error, as libnfs words it.
    #[error("{0}")]
    Other(String),
}

/// How long one RPC may wait for its answer at most; the call's deadline may cut it
/// shorter. libnfs counts its timeouts in whole seconds.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a metadata operation (mount, then a lookup, mkdir, unlink...) may take.
const METADATA_LIMIT: Duration = Duration::from_secs(15);

// libnfs (libnfs-dev) types and calls, as declared in <nfsc/libnfs.h> (libnfs 4.0).
#[repr(C)]
struct NfsContext {
    _opaque: [u8; 0],
}
#[repr(C)]
struct NfsFh {
    _opaque: [u8; 0],
}
#[repr(C)]
struct NfsDir {
    _opaque: [u8; 0],
}
/// The leading fields of `struct nfsdirent`; only read through libnfs's pointers.
#[repr(C)]
struct NfsDirent {
    next: *mut NfsDirent,
    name: *mut c_char,
    inode: u64,
    kind: u32,
}
#[repr(C)]
#[derive(Default)]
struct NfsStatvfs64 {
    f_bsize: u64,
    f_frsize: u64,
    f_blocks: u64,
    f_bfree: u64,
    f_bavail: u64,
    f_files: u64,
    f_ffree: u64,
    f_favail: u64,
    f_fsid: u64,
    f_flag: u64,
    f_namemax: u64,
}
#[repr(C)]
#[derive(Default)]
struct NfsStat64 {
    dev: u64,
    ino: u64,
    mode: u64,
    nlink: u64,
    uid: u64,
    gid: u64,
    rdev: u64,
    size: u64,
    blksize: u64,
    blocks: u64,
    atime: u64,
    mtime: u64,
    ctime: u64,
    atime_nsec: u64,
    mtime_nsec: u64,
    ctime_nsec: u64,
    used: u64,
}

#[link(name = "nfs")]
unsafe extern "C" {
    fn nfs_init_context() -> *mut NfsContext;
    fn nfs_destroy_context(nfs: *mut NfsContext);
    fn nfs_set_timeout(nfs: *mut NfsContext, milliseconds: c_int);
    fn nfs_get_error(nfs: *mut NfsContext) -> *mut c_char;
    fn nfs_mount(nfs: *mut NfsContext, server: *const c_char, export: *const c_char) -> c_int;
    fn nfs_stat64(nfs: *mut NfsContext, path: *const c_char, st: *mut NfsStat64) -> c_int;
    fn nfs_lstat64(nfs: *mut NfsContext, path: *const c_char, st: *mut NfsStat64) -> c_int;
    fn nfs_mkdir(nfs: *mut NfsContext, path: *const c_char) -> c_int;
    fn nfs_unlink(nfs: *mut NfsContext, path: *const c_char) -> c_int;
    fn nfs_rename(nfs: *mut NfsContext, old: *const c_char, new: *const c_char) -> c_int;
    fn nfs_statvfs64(nfs: *mut NfsContext, path: *const c_char, st: *mut NfsStatvfs64) -> c_int;
    fn nfs_opendir(nfs: *mut NfsContext, path: *const c_char, dir: *mut *mut NfsDir) -> c_int;
    fn nfs_readdir(nfs: *mut NfsContext, dir: *mut NfsDir) -> *mut NfsDirent;
    fn nfs_closedir(nfs: *mut NfsContext, dir: *mut NfsDir);
    fn nfs_creat(nfs: *mut NfsContext, path: *const c_char, mode: c_int, fh: *mut *mut NfsFh) -> c_int;
    fn nfs_create(nfs: *mut NfsContext, path: *const c_char, flags: c_int, mode: c_int, fh: *mut *mut NfsFh) -> c_int;
    fn nfs_open(nfs: *mut NfsContext, path: *const c_char, flags: c_int, fh: *mut *mut NfsFh) -> c_int;
    fn nfs_pread(nfs: *mut NfsContext, fh: *mut NfsFh, offset: u64, count: u64, buf: *mut c_void) -> c_int;
    fn nfs_fsync(nfs: *mut NfsContext, fh: *mut NfsFh) -> c_int;
    fn nfs_pwrite(nfs: *mut NfsContext, fh: *mut NfsFh, offset: u64, count: u64, buf: *const c_void) -> c_int;
    fn nfs_close(nfs: *mut NfsContext, fh: *mut NfsFh) -> c_int;
}

const ENOENT: c_int = 2;
const EEXIST: c_int = 17;
const S_IFMT: u64 = 0o170000;
const S_IFDIR: u64 = 0o040000;
const S_IFLNK: u64 = 0o120000;

/// A file or directory on an NFS server, as named in an nfs:// URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NfsPath {
    pub server: String,
    /// Absolute path on the server, export included: "/export/pool/v1.qcow2".
    pub path: String,
    /// The granted folder `path` lies in, on the same server: no link below it is followed.
    pub root: String,
}

/// Space on an export.
pub(crate) struct NfsSpace {
    pub total: u64,
    pub free: u64,
}

/// A mounted export: one libnfs context, used on one thread only.
struct Mounted {
    ctx: *mut NfsContext,
    server: String,
    /// The export's path on the server, e.g. "/export".
    export: String,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        // SAFETY: the context came from nfs_init_context and is destroyed once.
        unsafe { nfs_destroy_context(self.ctx) }
    }
}

fn cstring(s: &str) -> Result<CString, NfsError> {
    CString::new(s).map_err(|_| NfsError::Other(format!("{s:?} contains a NUL byte")))
}

/// libnfs's text for the last error on a context.
fn last_error(ctx: *mut NfsContext) -> String {
    // SAFETY: ctx is a live context; the returned string belongs to it and is copied at once.
    let p = unsafe { nfs_get_error(ctx) };
    if p.is_null() {
        return "unknown error".into();
    }
    // SAFETY: libnfs returns a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().trim().to_owned()
}

/// Whether a failed mount means the server could not be reached at all (rather than
/// that it refused this export).
fn transport_failure(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    ["nfs_service", "connect", "timed out", "timeout", "unreachable", "no route", "refused", "socket", "rpc error"]
        .iter()
        .any(|w| d.contains(w))
        && !d.contains("mnt3err")
}

impl Mounted {
    /// Mounts the export that holds `target`, found by trying its leading components
    /// from the shortest: "/export", then "/export/pool", and so on.
    fn open(target: &NfsPath, deadline: Instant) -> Result<Self, NfsError> {
        let server = cstring(&target.server)?;
        let parts: Vec<&str> = target.path.split('/').filter(|s| !s.is_empty()).collect();
        let mut last = String::from("no path to mount");
        for n in 1..=parts.len() {
            let export = format!("/{}", parts[..n].join("/"));
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(NfsError::Unreachable { server: target.server.clone(), detail: "out of time".into() });
            }
            // SAFETY: plain constructor; checked for NULL below.
            let ctx = unsafe { nfs_init_context() };
            if ctx.is_null() {
                return Err(NfsError::Other("libnfs could not make a context".into()));
            }
            let mounted = Mounted { ctx, server: target.server.clone(), export: export.clone() };
            let secs = remaining.min(RPC_TIMEOUT).as_secs().max(1);
            let c_export = cstring(&export)?;
            // SAFETY: ctx is live; the strings outlive the calls.
            let rc = unsafe {
                nfs_set_timeout(ctx, (secs * 1000) as c_int);
                nfs_mount(ctx, server.as_ptr(), c_export.as_ptr())
            };
            if rc == 0 {
                return Ok(mounted);
            }
            last = last_error(ctx);
            if transport_failure(&last) {
                return Err(NfsError::Unreachable { server: target.server.clone(), detail: last });
            }
        }
        Err(NfsError::NoExport { server: target.server.clone(), path: target.path.clone(), detail: last })
    }

    /// The path of `target` inside the mounted export ("/" for the export itself).
    fn inner<'a>(&self, target: &'a NfsPath) -> &'a str {
        let rest = target.path.strip_prefix(self.export.as_str()).unwrap_or(&target.path);
        if rest.is_empty() { "/" } else { rest }
    }

    fn url(&self, inner: &str) -> String {
        format!("nfs://{}{}{}", self.server, self.export, if inner == "/" { "" } else { inner })
    }

    fn fail(&self, rc: c_int, inner: &str) -> NfsError {
        match -rc {
            ENOENT => NfsError::NotFound(self.url(inner)),
            EEXIST => NfsError::Exists(self.url(inner)),
            _ => NfsError::Other(format!("{}: {}", self.url(inner), last_error(self.ctx))),
        }
    }

    /// Free bytes on the export, if the server says.
    fn free_bytes(&self) -> Result<NfsSpace, NfsError> {
        let mut st = NfsStatvfs64::default();
        // SAFETY: ctx is live, the path is a static C string, st is a valid out-pointer.
        let rc = unsafe { nfs_statvfs64(self.ctx, c"/".as_ptr(), &mut st) };
        if rc < 0 {
            return Err(self.fail(rc, "/"));
        }
        let unit = if st.f_frsize > 0 { st.f_frsize } else { st.f_bsize };
        Ok(NfsSpace { total: st.f_blocks.saturating_mul(unit), free: st.f_bavail.saturating_mul(unit) })
    }

    fn stat(&self, inner: &str) -> Result<NfsStat64, NfsError> {
        let p = cstring(inner)?;
        let mut st = NfsStat64::default();
        // SAFETY: ctx is live, p outlives the call, st is a valid out-pointer.
        let rc = unsafe { nfs_stat64(self.ctx, p.as_ptr(), &mut st) };
        if rc < 0 {
            return Err(self.fail(rc, inner));
        }
        Ok(st)
    }

    fn lstat(&self, inner: &str) -> Result<NfsStat64, NfsError> {
        let p = cstring(inner)?;
        let mut st = NfsStat64::default();
        // SAFETY: ctx is live, p outlives the call, st is a valid out-pointer.
        let rc = unsafe { nfs_lstat64(self.ctx, p.as_ptr(), &mut st) };
        if rc < 0 {
            return Err(self.fail(rc, inner));
        }
        Ok(st)
    }

    /// Refuses a path with a symbolic link below its granted folder (and below the
    /// export, which is the server's own): libnfs follows links in every lookup, so
    /// each existing component is looked at first, without following it.
    fn refuse_links(&self, t: &NfsPath) -> Result<(), NfsError> {
        let base = if t.root.len() > self.export.len() { t.root.as_str() } else { self.export.as_str() };
        let Some(below) = t.path.strip_prefix(base) else { return Ok(()) };
        let mut at = base.strip_prefix(self.export.as_str()).unwrap_or("").to_owned();
        for part in below.split('/').filter(|s| !s.is_empty()) {
            at.push('/');
            at.push_str(part);
            match self.lstat(&at) {
                Ok(st) if st.mode & S_IFMT == S_IFLNK => return Err(NfsError::Link(self.url(&at))),
                Ok(_) => {}
                // What does not exist yet holds no link.
                Err(NfsError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn mkdir(&self, inner: &str) -> Result<(), NfsError> {
        let p = cstring(inner)?;
        // SAFETY: as above.
        let rc = unsafe { nfs_mkdir(self.ctx, p.as_ptr()) };
        if rc < 0 {
            return Err(self.fail(rc, inner));
        }
        Ok(())
    }
}

/// Runs a metadata operation (a few RPCs) on the export holding `target`. It gets at
/// most `METADATA_LIMIT`, so that a server that stops answering gives an error well
/// before a long call deadline would end the whole driver call.
fn with_export<T: Send + 'static>(
    target: &NfsPath,
    deadline: Instant,
    op: impl FnOnce(&Mounted, &NfsPath) -> Result<T, NfsError> + Send + 'static,
) -> Result<T, NfsError> {
    on_export(target, deadline.min(Instant::now() + METADATA_LIMIT), op)
}

/// Runs `op` on the mounted export holding `target`, on a thread of its own, and
/// gives up once `until` passes, whatever libnfs does meanwhile. (An abandoned
/// thread ends when libnfs's own RPC timeout fires.)
fn on_export<T: Send + 'static>(
    target: &NfsPath,
    until: Instant,
    op: impl FnOnce(&Mounted, &NfsPath) -> Result<T, NfsError> + Send + 'static,
) -> Result<T, NfsError> {
    let (tx, rx) = mpsc::sync_channel(1);
    let owned = target.clone();
    std::thread::Builder::new()
        .name("libnfs".into())
        .spawn(move || {
            let result = Mounted::open(&owned, until).and_then(|m| {
                m.refuse_links(&owned)?;
                op(&m, &owned)
            });
            let _ = tx.send(result);
        })
        .map_err(|e| NfsError::Other(format!("starting an NFS worker: {e}")))?;
    let started = Instant::now();
    rx.recv_timeout(until.saturating_duration_since(started)).unwrap_or_else(|_| {
        Err(NfsError::Unreachable {
            server: target.server.clone(),
            detail: format!("no answer within {:.1} s", started.elapsed().as_secs_f64()),
        })
    })
}

/// Checks the server answers and exports the path (the file itself need not exist).
pub(crate) fn probe(target: &NfsPath, deadline: Instant) -> Result<(), NfsError> {
    with_export(target, deadline, |_, _| Ok(()))
}

/// Whether the file or directory exists.
pub(crate) fn exists(target: &NfsPath, deadline: Instant) -> Result<bool, NfsError> {
    with_export(target, deadline, |m, t| match m.stat(m.inner(t)) {
        Ok(_) => Ok(true),
        Err(NfsError::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    })
}

/// Bytes a file takes on the server, counted in 512-byte blocks as qemu-img does.
pub(crate) fn allocated(target: &NfsPath, deadline: Instant) -> Result<u64, NfsError> {
    with_export(target, deadline, |m, t| Ok(m.stat(m.inner(t))?.blocks.saturating_mul(512)))
}

/// The first `len` bytes of a file (fewer if it is shorter), and the bytes it takes
/// on the server.
pub(crate) fn read_head(target: &NfsPath, len: usize, deadline: Instant) -> Result<(Vec<u8>, u64), NfsError> {
    with_export(target, deadline, move |m, t| {
        let inner = m.inner(t);
        let p = cstring(inner)?;
        let mut fh: *mut NfsFh = std::ptr::null_mut();
        // SAFETY: ctx is live, p outlives the call, fh is a valid out-pointer.
        let rc = unsafe { nfs_open(m.ctx, p.as_ptr(), libc::O_RDONLY, &mut fh) };
        if rc < 0 {
            return Err(m.fail(rc, inner));
        }
        let mut buf = vec![0u8; len];
        let mut got = 0;
        let read = loop {
            // SAFETY: fh is open; the rest of buf is valid for writing.
            let rc = unsafe { nfs_pread(m.ctx, fh, got as u64, (len - got) as u64, buf[got..].as_mut_ptr().cast()) };
            match rc {
                0 => break Ok(()),
                n if n < 0 => break Err(m.fail(n, inner)),
                n => got += n as usize,
            }
            if got == len {
                break Ok(());
            }
        };
        // SAFETY: fh was opened on this context and is closed once.
        unsafe { nfs_close(m.ctx, fh) };
        read?;
        buf.truncate(got);
        Ok((buf, m.stat(inner)?.blocks.saturating_mul(512)))
    })
}

/// Creates a file that must not exist yet, writes `pieces` (offset, bytes) into it and
/// commits them; returns the bytes it takes on the server. On failure the file is
/// removed again.
pub(crate) fn write_new(target: &NfsPath, pieces: Vec<(u64, Vec<u8>)>, deadline: Instant) -> Result<u64, NfsError> {
    with_export(target, deadline, move |m, t| {
        let inner = m.inner(t);
        let p = cstring(inner)?;
        let mut fh: *mut NfsFh = std::ptr::null_mut();
        // SAFETY: ctx is live, p outlives the call, fh is a valid out-pointer. O_EXCL
        // makes the server refuse a name that exists (a guarded create).
        let rc = unsafe { nfs_create(m.ctx, p.as_ptr(), libc::O_WRONLY | libc::O_EXCL, 0o644, &mut fh) };
        if rc < 0 {
            return Err(m.fail(rc, inner));
        }
        let mut written = Ok(());
        for (at, bytes) in &pieces {
            // SAFETY: fh is open for writing; bytes is valid for its length.
            let rc = unsafe { nfs_pwrite(m.ctx, fh, *at, bytes.len() as u64, bytes.as_ptr().cast()) };
            if rc < 0 || rc as usize != bytes.len() {
                written = Err(m.fail(rc.min(-1), inner));
                break;
            }
        }
        // SAFETY: as above; the file is committed before it is used.
        let committed = written.and_then(|()| match unsafe { nfs_fsync(m.ctx, fh) } {
            rc if rc < 0 => Err(m.fail(rc, inner)),
            _ => Ok(()),
        });
        // SAFETY: fh was opened on this context and is closed once.
        unsafe { nfs_close(m.ctx, fh) };
        let allocated = committed.and_then(|()| Ok(m.stat(inner)?.blocks.saturating_mul(512)));
        if allocated.is_err() {
            // SAFETY: ctx is live and p outlives the call; removal is best-effort.
            unsafe { nfs_unlink(m.ctx, p.as_ptr()) };
        }
        allocated
    })
}

/// Creates a directory and its missing parents inside the export.
pub(crate) fn make_dir(target: &NfsPath, deadline: Instant) -> Result<(), NfsError> {
    with_export(target, deadline, |m, t| {
        let mut at = String::new();
        for part in m.inner(t).split('/').filter(|s| !s.is_empty()) {
            at.push('/');
            at.push_str(part);
            match m.mkdir(&at) {
                Ok(()) => {}
                Err(NfsError::Exists(url)) => {
                    let mode = m.lstat(&at)?.mode & S_IFMT;
                    if mode == S_IFLNK {
                        return Err(NfsError::Link(url));
                    }
                    if mode != S_IFDIR {
                        return Err(NfsError::Other(format!("{url} exists and is not a directory")));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
}

/// Removes a file; a missing file is not an error.
pub(crate) fn remove(target: &NfsPath, deadline: Instant) -> Result<(), NfsError> {
    with_export(target, deadline, |m, t| {
        let inner = m.inner(t);
        let p = cstring(inner)?;
        // SAFETY: ctx is live and p outlives the call.
        let rc = unsafe { nfs_unlink(m.ctx, p.as_ptr()) };
        if rc < 0 && -rc != ENOENT {
            return Err(m.fail(rc, inner));
        }
        Ok(())
    })
}

/// Names in a directory, without "." and "..".
pub(crate) fn list_dir(target: &NfsPath, deadline: Instant) -> Result<Vec<String>, NfsError> {
    with_export(target, deadline, |m, t| {
        let inner = m.inner(t);
        let p = cstring(inner)?;
        let mut dir: *mut NfsDir = std::ptr::null_mut();
        // SAFETY: ctx is live, p outlives the call, dir is a valid out-pointer.
        let rc = unsafe { nfs_opendir(m.ctx, p.as_ptr(), &mut dir) };
        if rc < 0 {
            return Err(m.fail(rc, inner));
        }
        let mut names = Vec::new();
        loop {
            // SAFETY: dir is open; entries stay valid until nfs_closedir.
            let entry = unsafe { nfs_readdir(m.ctx, dir) };
            if entry.is_null() {
                break;
            }
            // SAFETY: a non-NULL entry has a NUL-terminated name.
            let name = unsafe { CStr::from_ptr((*entry).name) }.to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        // SAFETY: dir was opened on this context and is closed once.
        unsafe { nfs_closedir(m.ctx, dir) };
        names.sort();
        Ok(names)
    })
}

/// Total and free space of the export holding the path.
pub(crate) fn space(target: &NfsPath, deadline: Instant) -> Result<NfsSpace, NfsError> {
    with_export(target, deadline, |m, _| m.free_bytes())
}

/// Copies a local file to `target` through a hidden partial name, renamed into
/// place only when every byte is written. `target` must not exist.
pub(crate) fn upload(local: &std::path::Path, target: &NfsPath, deadline: Instant) -> Result<u64, NfsError> {
    let local = local.to_owned();
    on_export(target, deadline, move |m, t| {
        let inner = m.inner(t).to_owned();
        match m.stat(&inner) {
            Ok(_) => return Err(NfsError::Exists(m.url(&inner))),
            Err(NfsError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let (dir, name) = inner.rsplit_once('/').unwrap_or(("", &inner));
        let partial = format!("{dir}/.{name}.partial");
        let c_partial = cstring(&partial)?;
        let mut fh: *mut NfsFh = std::ptr::null_mut();
        // SAFETY: ctx is live, c_partial outlives the call, fh is a valid out-pointer.
        let rc = unsafe { nfs_creat(m.ctx, c_partial.as_ptr(), 0o644, &mut fh) };
        if rc < 0 {
            return Err(m.fail(rc, &partial));
        }
        let written = write_all(m, fh, &local, deadline, &partial);
        // SAFETY: fh was opened on this context and is closed once.
        let closed = unsafe { nfs_close(m.ctx, fh) };
        let result = written.and_then(|n| if closed < 0 { Err(m.fail(closed, &partial)) } else { Ok(n) });
        let result = result.and_then(|n| {
            let c_inner = cstring(&inner)?;
            // SAFETY: ctx is live and both strings outlive the call.
            let rc = unsafe { nfs_rename(m.ctx, c_partial.as_ptr(), c_inner.as_ptr()) };
            if rc < 0 { Err(m.fail(rc, &inner)) } else { Ok(n) }
        });
        if result.is_err() {
            // SAFETY: as above; a leftover partial file is removed best-effort.
            unsafe { nfs_unlink(m.ctx, c_partial.as_ptr()) };
        }
        result
    })
}

fn write_all(
    m: &Mounted,
    fh: *mut NfsFh,
    local: &std::path::Path,
    deadline: Instant,
    partial: &str,
) -> Result<u64, NfsError> {
    let local_err = |source| NfsError::Local { path: local.display().to_string(), source };
    let mut file = std::fs::File::open(local).map_err(local_err)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        if Instant::now() >= deadline {
            return Err(NfsError::Unreachable {
                server: m.server.clone(),
                detail: "the upload did not finish before the call's deadline".into(),
            });
        }
        let n = file.read(&mut buf).map_err(local_err)?;
        if n == 0 {
            return Ok(offset);
        }
        let mut done = 0;
        while done < n {
            let chunk = &buf[done..n];
            // SAFETY: fh is open for writing; chunk is valid for its length.
            let rc = unsafe { nfs_pwrite(m.ctx, fh, offset, chunk.len() as u64, chunk.as_ptr().cast()) };
            if rc <= 0 {
                // libnfs garbles the text of some write errors (ENOSPC arrives as a raw
                // byte); a full export is the usual cause, so say that when it is so.
                if let Ok(space) = m.free_bytes()
                    && space.free < chunk.len() as u64
                {
                    return Err(NfsError::Other(format!(
                        "{}: no space left on the NFS export ({} bytes free)",
                        m.url(partial),
                        space.free
                    )));
                }
                return Err(m.fail(rc.min(-1), partial));
            }
            done += rc as usize;
            offset += rc as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::transport_failure;

    #[test]
    fn mount_failures_are_classified() {
        assert!(transport_failure("mount_cb: nfs_service failed"));
        assert!(transport_failure("Failed to start connection: Connection refused"));
        assert!(!transport_failure(
            "mount_cb: RPC error: Mount failed with error MNT3ERR_ACCES(13) Permission denied(13)"
        ));
    }
}
