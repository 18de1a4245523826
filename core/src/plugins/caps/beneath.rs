//! Local paths resolved the way the kernel will, beneath the granted folder: a grant
//! checked as text says nothing about where a symbolic link inside it leads, so every
//! file the images capability touches is opened relative to the granted folder with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`, or, on
//! kernels without it, one component at a time with `O_NOFOLLOW`. Links are refused,
//! not followed, wherever they point. The granted folder itself is the operator's
//! word and is opened as written.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a path could not be reached beneath its granted folder.
#[derive(Debug, thiserror::Error)]
pub enum BeneathError {
    /// A component is a symbolic link (named when it could be found).
    #[error("{0} is a symbolic link; the images capability does not follow links")]
    Link(String),
    /// The call names the granted folder itself where it needs a file inside it.
    #[error("{0} is the granted folder itself")]
    Root(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl BeneathError {
    /// The system error, if that is what this is.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            BeneathError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }

    pub fn errno(&self) -> Option<i32> {
        match self {
            BeneathError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// A local path under a granted folder: the folder, and the rest below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beneath {
    root: PathBuf,
    /// Relative, without empty, `.` or `..` components; empty for the folder itself.
    rel: PathBuf,
}

/// Set once `openat2` is found missing (kernels before 5.6, or a filter that hides
/// it); the component walk is used from then on.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

fn cstr(p: &Path) -> Result<CString, BeneathError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| BeneathError::Io {
        path: p.display().to_string(),
        source: std::io::Error::from_raw_os_error(libc::EINVAL),
    })
}

fn last_os() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// `fstatat` without following a final link.
fn lstat_at(dir: RawFd, name: &CStr) -> std::io::Result<libc::stat> {
    // SAFETY: st is a zeroed out-pointer that fstatat fills; name outlives the call.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: name is NUL-terminated and outlives the call; st is a valid place to write.
    if unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(last_os());
    }
    Ok(st)
}

fn is_link(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFLNK
}

fn openat(dir: RawFd, name: &CStr, flags: i32, mode: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: name outlives the call; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
    if fd < 0 {
        return Err(last_os());
    }
    // SAFETY: openat returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Beneath {
    /// `path` under the granted folder `root`; `path` must be `root` or lie below it
    /// (as the grant check made sure), and hold no `.`/`..` (as URL parsing made sure).
    pub fn new(root: &Path, path: &Path) -> Self {
        let rel = path.strip_prefix(root).map(Path::to_path_buf).unwrap_or_default();
        Beneath { root: root.to_owned(), rel }
    }

    /// The whole path, for messages and for names stored in images.
    pub fn path(&self) -> PathBuf {
        if self.rel.as_os_str().is_empty() { self.root.clone() } else { self.root.join(&self.rel) }
    }

    /// The same location with its granted folder moved up or down: what a URL parser
    /// made before the grant was known.
    pub fn under(&self, root: &Path) -> Self {
        Beneath::new(root, &self.path())
    }

    fn io(&self, source: std::io::Error) -> BeneathError {
        BeneathError::Io { path: self.path().display().to_string(), source }
    }

    fn open_root(&self) -> Result<OwnedFd, BeneathError> {
        let c = cstr(&self.root)?;
        openat(libc::AT_FDCWD, &c, libc::O_PATH | libc::O_DIRECTORY, 0)
            .map_err(|e| BeneathError::Io { path: self.root.display().to_string(), source: e })
    }

    /// Opens the path with `flags` (and `mode` when creating), no link followed below
    /// the granted folder.
    pub fn open(&self, flags: i32, mode: u32) -> Result<OwnedFd, BeneathError> {
        if self.rel.as_os_str().is_empty() {
            let c = cstr(&self.root)?;
            return openat(libc::AT_FDCWD, &c, flags, mode).map_err(|e| self.io(e));
        }
        let root = self.open_root()?;
        self.open_in(&root, &self.rel, flags, mode)
    }

    /// Opens `rel` beneath the open folder `root`.
    fn open_in(&self, root: &OwnedFd, rel: &Path, flags: i32, mode: u32) -> Result<OwnedFd, BeneathError> {
        let c = cstr(rel)?;
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            // SAFETY: open_how is plain old data, for which all zero bytes are a valid value.
            let mut how: libc::open_how = unsafe { std::mem::zeroed() };
            how.flags = (flags | libc::O_CLOEXEC) as u64;
            how.mode = if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 { mode as u64 } else { 0 };
            how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
            // SAFETY: how and c outlive the call; a non-negative result is a descriptor we own.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    root.as_raw_fd(),
                    c.as_ptr(),
                    &how as *const libc::open_how,
                    std::mem::size_of::<libc::open_how>(),
                )
            };
            if fd >= 0 {
                // SAFETY: openat2 returned a fresh descriptor that nothing else owns.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
            }
            let e = last_os();
            match e.raw_os_error() {
                Some(libc::ENOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
                // Seccomp filters that do not know openat2 answer EPERM: walk instead.
                Some(libc::EPERM) => {}
                Some(libc::ELOOP | libc::EXDEV) => return Err(self.link_in(root, rel)),
                _ => return Err(self.io(e)),
            }
        }
        self.walk(root, rel, flags, mode)
    }

    /// The component walk: every folder opened with `O_NOFOLLOW`, then the last name.
    fn walk(&self, root: &OwnedFd, rel: &Path, flags: i32, mode: u32) -> Result<OwnedFd, BeneathError> {
        let parts: Vec<&OsStr> = rel.iter().collect();
        let Some((last, folders)) = parts.split_last() else {
            return Err(BeneathError::Root(self.root.display().to_string()));
        };
        let mut dir: Option<OwnedFd> = None;
        for part in folders {
            let at = dir.as_ref().unwrap_or(root).as_raw_fd();
            let c = cstr(Path::new(part))?;
            let next = openat(at, &c, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
                .map_err(|e| self.classify(at, &c, e))?;
            dir = Some(next);
        }
        let at = dir.as_ref().unwrap_or(root).as_raw_fd();
        let c = cstr(Path::new(last))?;
        let fd = openat(at, &c, flags | libc::O_NOFOLLOW, mode).map_err(|e| self.classify(at, &c, e))?;
        // O_PATH with O_NOFOLLOW opens a link itself rather than failing.
        if flags & libc::O_PATH != 0 {
            // SAFETY: stat is plain old data, for which all zero bytes are a valid value.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: fd is open; st is a valid out-pointer.
            if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0 && is_link(&st) {
                return Err(BeneathError::Link(self.path().display().to_string()));
            }
        }
        Ok(fd)
    }

    /// A failed open of `name` in `dir`: a link if the name is one.
    fn classify(&self, dir: RawFd, name: &CStr, e: std::io::Error) -> BeneathError {
        match lstat_at(dir, name) {
            Ok(st) if is_link(&st) => self.link_in_walk(),
            _ => self.io(e),
        }
    }

    fn link_in_walk(&self) -> BeneathError {
        match self.open_root() {
            Ok(root) => self.link_in(&root, &self.rel),
            Err(e) => e,
        }
    }

    /// Names the first link on `rel` below `root`, for the refusal's text.
    fn link_in(&self, root: &OwnedFd, rel: &Path) -> BeneathError {
        let mut at = self.root.clone();
        let mut dir: Option<OwnedFd> = None;
        for part in rel.iter() {
            at.push(part);
            let Ok(c) = cstr(Path::new(part)) else { break };
            let fd = dir.as_ref().unwrap_or(root).as_raw_fd();
            match lstat_at(fd, &c) {
                Ok(st) if is_link(&st) => return BeneathError::Link(at.display().to_string()),
                Ok(_) => match openat(fd, &c, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0) {
                    Ok(next) => dir = Some(next),
                    Err(_) => break,
                },
                Err(_) => break,
            }
        }
        BeneathError::Link(self.path().display().to_string())
    }

    /// The folder holding the path, opened beneath the granted folder, and the last name.
    pub fn parent(&self) -> Result<(OwnedFd, CString), BeneathError> {
        let Some(name) = self.rel.file_name() else {
            return Err(BeneathError::Root(self.root.display().to_string()));
        };
        let name = cstr(Path::new(name))?;
        let root = self.open_root()?;
        let dir = match self.rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => {
                self.open_in(&root, p, libc::O_PATH | libc::O_DIRECTORY, 0).map_err(|e| match e {
                    BeneathError::Link(_) => self.link_in(&root, &self.rel),
                    other => other,
                })?
            }
            _ => root,
        };
        Ok((dir, name))
    }

    /// The path's own status, a link not followed; `None` when it (or a folder on the
    /// way) does not exist.
    pub fn lstat(&self) -> Result<Option<libc::stat>, BeneathError> {
        if self.rel.as_os_str().is_empty() {
            let c = cstr(&self.root)?;
            return match lstat_at(libc::AT_FDCWD, &c) {
                Ok(st) => Ok(Some(st)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(self.io(e)),
            };
        }
        let (dir, name) = match self.parent() {
            Ok(p) => p,
            Err(e) if matches!(e.errno(), Some(libc::ENOENT | libc::ENOTDIR)) => return Ok(None),
            Err(e) => return Err(e),
        };
        match lstat_at(dir.as_raw_fd(), &name) {
            Ok(st) => Ok(Some(st)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Creates a file that must not exist yet, open for reading and writing.
    pub fn create_new(&self) -> Result<std::fs::File, BeneathError> {
        let (dir, name) = self.parent()?;
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let fd = openat(dir.as_raw_fd(), &name, flags, 0o644).map_err(|e| self.io(e))?;
        Ok(std::fs::File::from(fd))
    }

    /// Opens an existing file, read-only or for writing too.
    pub fn open_file(&self, write: bool) -> Result<std::fs::File, BeneathError> {
        let flags = if write { libc::O_RDWR } else { libc::O_RDONLY };
        Ok(std::fs::File::from(self.open(flags, 0)?))
    }

    /// Removes the file; a link is refused (not removed, not followed), a missing
    /// file is not an error.
    pub fn unlink(&self) -> Result<(), BeneathError> {
        let (dir, name) = match self.parent() {
            Ok(p) => p,
            Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(()),
            Err(e) => return Err(e),
        };
        match lstat_at(dir.as_raw_fd(), &name) {
            Ok(st) if is_link(&st) => return Err(BeneathError::Link(self.path().display().to_string())),
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                return Err(self.io(std::io::Error::from_raw_os_error(libc::EISDIR)));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io(e)),
        }
        // SAFETY: dir is open and name outlives the call.
        if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } != 0 {
            let e = last_os();
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(self.io(e));
            }
        }
        Ok(())
    }

    /// Renames the sibling `from` (a bare name in the same folder) to this path.
    pub fn rename_from_sibling(&self, from: &str) -> Result<(), BeneathError> {
        let (dir, name) = self.parent()?;
        let from = cstr(Path::new(from))?;
        // SAFETY: dir is open and both names outlive the call; both are single names in it.
        if unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), name.as_ptr()) } != 0 {
            return Err(self.io(last_os()));
        }
        Ok(())
    }

    /// A sibling of this path in the same folder.
    pub fn sibling(&self, name: &str) -> Beneath {
        let rel = match self.rel.parent() {
            Some(p) => p.join(name),
            None => PathBuf::from(name),
        };
        Beneath { root: self.root.clone(), rel }
    }

    /// Makes the folder and any missing folders above it, below the granted folder,
    /// one at a time, refusing any that is a link.
    pub fn make_dirs(&self) -> Result<(), BeneathError> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| BeneathError::Io { path: self.root.display().to_string(), source: e })?;
        let mut dir = self.open_root()?;
        for part in self.rel.iter() {
            let c = cstr(Path::new(part))?;
            // SAFETY: dir is open and c outlives the call.
            if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) } != 0 {
                let e = last_os();
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(self.io(e));
                }
            }
            let at = dir.as_raw_fd();
            dir = openat(at, &c, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
                .map_err(|e| self.classify(at, &c, e))?;
        }
        Ok(())
    }

    /// Names in the folder, without `.` and `..`, sorted.
    pub fn read_dir(&self) -> Result<Vec<String>, BeneathError> {
        let fd = self.open(libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        // SAFETY: fdopendir takes the descriptor over; closedir closes it.
        let d = unsafe { libc::fdopendir(fd.as_raw_fd()) };
        if d.is_null() {
            return Err(self.io(last_os()));
        }
        std::mem::forget(fd);
        let mut names = Vec::new();
        loop {
            // SAFETY: d is an open directory stream; an entry stays valid until the next call.
            let entry = unsafe { libc::readdir(d) };
            if entry.is_null() {
                break;
            }
            // SAFETY: entry is non-null and points at readdir's entry, whose d_name is NUL-terminated.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) }.to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        // SAFETY: d is closed once.
        unsafe { libc::closedir(d) };
        names.sort();
        Ok(names)
    }

    /// Total and free bytes of the file system holding the path.
    pub fn space(&self) -> Result<(u64, u64), BeneathError> {
        let fd = self.open(libc::O_PATH, 0)?;
        // SAFETY: st is a zeroed out-pointer that fstatvfs fills; fd is open.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: fd is open; st is a valid place to write.
        if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) } != 0 {
            return Err(self.io(last_os()));
        }
        let unit = st.f_frsize;
        Ok((st.f_blocks * unit, st.f_bavail * unit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn scratch(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("beneath-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn both_ways(test: impl Fn()) {
        test();
        NO_OPENAT2.store(true, Ordering::Relaxed);
        test();
        NO_OPENAT2.store(false, Ordering::Relaxed);
    }

    #[test]
    fn links_below_the_root_are_refused_by_every_operation() {
        let root = scratch("root");
        let out = scratch("out");
        both_ways(|| {
            let _ = std::fs::remove_dir_all(root.0.join("pool"));
            std::fs::write(out.0.join("secret"), b"secret").unwrap();
            std::fs::create_dir_all(root.0.join("pool")).unwrap();
            std::os::unix::fs::symlink(&out.0, root.0.join("pool/dir")).unwrap();
            std::os::unix::fs::symlink(out.0.join("secret"), root.0.join("pool/file")).unwrap();
            let at = |rel: &str| Beneath::new(&root.0, &root.0.join(rel));
            fn link<T>(r: Result<T, BeneathError>) -> bool {
                matches!(r, Err(BeneathError::Link(_)))
            }
            assert!(link(at("pool/file").open_file(false).map(drop)));
            assert!(link(at("pool/dir/secret").open_file(false).map(drop)));
            assert!(link(at("pool/dir/secret").unlink()));
            assert!(link(at("pool/file").unlink()));
            assert!(link(at("pool/dir/new").create_new().map(drop)));
            assert!(link(at("pool/dir/sub").make_dirs()));
            assert!(link(at("pool/dir").read_dir()));
            assert!(link(at("pool/dir").space()));
            assert!(link(at("pool/dir/x").lstat()));
            let e = at("pool/dir/secret").open_file(false).unwrap_err().to_string();
            assert!(e.ends_with("pool/dir is a symbolic link; the images capability does not follow links"), "{e}");
            assert_eq!(std::fs::read(out.0.join("secret")).unwrap(), b"secret");
            assert_eq!(std::fs::read_dir(&out.0).unwrap().count(), 1, "something was planted outside");
            // Plain paths work.
            at("pool/a/b").make_dirs().unwrap();
            at("pool/a/b/f").create_new().unwrap();
            assert_eq!(at("pool/a/b").read_dir().unwrap(), ["f"]);
            assert!(at("pool/a/b/f").lstat().unwrap().is_some());
            at("pool/a/b/f").unlink().unwrap();
            assert!(at("pool/a/b/f").lstat().unwrap().is_none());
            assert!(at("pool").space().unwrap().0 > 0);
        });
    }
}
