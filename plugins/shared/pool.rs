//! Pools and stores of qcow2 images through the host's `images` capability, shared
//! by the `nfs` and `local` storage drivers (each includes this file; they differ
//! only in their URL scheme and in how a hypervisor reaches an image, see `Backend`).
//!
//! A pool (primary storage) and a store (secondary storage) have one layout, so either
//! can serve as the other:
//! - `volumes/<name>.qcow2`: VM volumes, copy-on-write overlays on a template or blank;
//!   their snapshots are qcow2 internal snapshots, inside the same file;
//! - `templates/<name>.<qcow2|raw|iso>`: registered images (in a store) and the
//!   templates installed from them (in a pool, always qcow2);
//! - `snapshots/<name>.qcow2`: volume snapshots exported as standalone images.
//!
//! Drivers are stateless: the server keeps the relative paths returned here.

use crate::exports::wasmstack::driver::storage::{Usage, Volume};
use crate::wasmstack::driver::images::{self, ImageInfo};
use crate::wasmstack::driver::types::{DiskFormat, DriverError, Locator};

pub const VOLUMES: &str = "volumes";
pub const TEMPLATES: &str = "templates";
pub const SNAPSHOTS: &str = "snapshots";

/// What differs between the drivers sharing this file.
pub trait Backend {
    /// The URL scheme the driver serves, with its "://", e.g. "nfs://".
    const SCHEME: &'static str;
    /// An example root URL, for error messages.
    const EXAMPLE: &'static str;

    /// Checks what follows the scheme in a pool or store URL.
    fn check_root(rest: &str) -> Result<(), String>;

    /// How a hypervisor reaches the image at `url` (with `info` already read).
    fn locator(url: &str, info: &ImageInfo, format: DiskFormat) -> Result<Locator, DriverError>;
}

fn invalid(text: impl Into<String>) -> DriverError {
    DriverError::InvalidSpec(text.into())
}

/// Prefixes an error with what the driver was doing, keeping its kind.
pub fn context(what: &str) -> impl Fn(DriverError) -> DriverError + '_ {
    move |e| match e {
        DriverError::InvalidSpec(m) => DriverError::InvalidSpec(format!("{what}: {m}")),
        DriverError::NotFound(m) => DriverError::NotFound(format!("{what}: {m}")),
        DriverError::Unavailable(m) => DriverError::Unavailable(format!("{what}: {m}")),
        DriverError::Denied(m) => DriverError::Denied(format!("{what}: {m}")),
        DriverError::Unsupported(m) => DriverError::Unsupported(format!("{what}: {m}")),
        DriverError::Failed(m) => DriverError::Failed(format!("{what}: {m}")),
    }
}

/// A pool or store URL, checked and without a trailing slash.
pub fn root<B: Backend>(url: &str) -> Result<String, DriverError> {
    let url = url.trim().trim_end_matches('/');
    let Some(rest) = url.strip_prefix(B::SCHEME) else {
        return Err(invalid(format!("\"{url}\" is not a pool URL this driver serves; give one like {}", B::EXAMPLE)));
    };
    B::check_root(rest).map_err(|why| invalid(format!("bad pool URL \"{url}\": {why}")))?;
    Ok(url.to_owned())
}

/// The root of an image store a template is copied from or exported to. It may be
/// served by another driver, so any store the host's images capability reaches will do
/// (file:// or nfs://); copying from it needs only an `images-read` grant.
pub fn store_root(url: &str) -> Result<String, DriverError> {
    let url = url.trim().trim_end_matches('/');
    let rest = url.strip_prefix("file://").or_else(|| url.strip_prefix("nfs://"));
    match rest {
        Some(rest) if rest.len() > 1 => Ok(url.to_owned()),
        _ => Err(invalid(format!("\"{url}\" is not an image store URL; give a file:// or nfs:// URL"))),
    }
}

/// Checks a name the server chose for a volume or image: it becomes a file name.
pub fn check_name(name: &str) -> Result<(), DriverError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !name.starts_with(['.', '-']);
    if !ok {
        return Err(invalid(format!(
            "bad name \"{name}\": use 1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
        )));
    }
    Ok(())
}

/// Checks a path the server passes back: one of `dirs`, a slash, a file name.
pub fn check_path(path: &str, dirs: &[&str]) -> Result<(), DriverError> {
    let ok = path.split_once('/').is_some_and(|(dir, file)| dirs.contains(&dir) && check_name(file).is_ok());
    if !ok {
        let wanted: Vec<String> = dirs.iter().map(|d| format!("{d}/<name>")).collect();
        return Err(invalid(format!("bad path \"{path}\": expected {}", wanted.join(" or "))));
    }
    Ok(())
}

fn join(root: &str, path: &str) -> String {
    format!("{root}/{path}")
}

/// The format of a file in the layout: ".iso" files are ISO images (QEMU reads them
/// as raw), the rest are what qemu-img says.
fn format_of(path: &str, info: &ImageInfo) -> DiskFormat {
    if path.ends_with(".iso") { DiskFormat::Iso } else { info.format }
}

/// The record of a volume or image the server keeps.
fn describe<B: Backend>(root: &str, path: &str) -> Result<Volume, DriverError> {
    let url = join(root, path);
    let info = images::info(&url)?;
    let locator = B::locator(&url, &info, format_of(path, &info))?;
    Ok(Volume { path: path.to_owned(), locator, virtual_size: info.virtual_size, physical_size: info.actual_size })
}

/// Whether an image exists; other errors (an unreachable server) pass through.
fn exists(url: &str) -> Result<bool, DriverError> {
    match images::info(url) {
        Ok(_) => Ok(true),
        Err(DriverError::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

fn usage(root: &str) -> Result<Usage, DriverError> {
    let space = images::capacity(root)?;
    Ok(Usage { total_bytes: space.total_bytes, used_bytes: space.total_bytes.saturating_sub(space.free_bytes) })
}

pub fn attach<B: Backend>(url: &str) -> Result<Usage, DriverError> {
    let root = root::<B>(url)?;
    for dir in [VOLUMES, TEMPLATES, SNAPSHOTS] {
        images::make_dir(&join(&root, dir)).map_err(context(&format!("preparing {root}")))?;
    }
    usage(&root)
}

pub fn capacity<B: Backend>(url: &str) -> Result<Usage, DriverError> {
    usage(&root::<B>(url)?)
}

pub fn create_volume<B: Backend>(
    pool: &str,
    name: &str,
    size_bytes: u64,
    template: Option<&str>,
) -> Result<Volume, DriverError> {
    let root = root::<B>(pool)?;
    check_name(name)?;
    let path = format!("{VOLUMES}/{name}.qcow2");
    let url = join(&root, &path);
    let what = format!("creating volume {path}");
    let made = match template {
        Some(t) => {
            check_path(t, &[TEMPLATES])?;
            let base_url = join(&root, t);
            let base = images::info(&base_url).map_err(context(&what))?;
            if size_bytes != 0 && size_bytes < base.virtual_size {
                return Err(invalid(format!(
                    "{what}: {size_bytes} bytes is smaller than its template {t} ({} bytes)",
                    base.virtual_size
                )));
            }
            images::create(&url, DiskFormat::Qcow2, size_bytes, Some(&base_url))
        }
        None => {
            if size_bytes == 0 {
                return Err(invalid(format!("{what}: a blank volume needs a size")));
            }
            images::create(&url, DiskFormat::Qcow2, size_bytes, None)
        }
    };
    match made {
        Ok(()) => describe::<B>(&root, &path),
        // The server names each volume once: a name taken is this volume, made by a
        // call whose answer the server never got, and asked for again to be found.
        Err(e) => match exists(&url) {
            Ok(true) => describe::<B>(&root, &path),
            _ => Err(context(&what)(e)),
        },
    }
}

pub fn delete_volume<B: Backend>(pool: &str, path: &str) -> Result<(), DriverError> {
    let root = root::<B>(pool)?;
    check_path(path, &[VOLUMES])?;
    // Its snapshots are internal to the file and go with it.
    images::remove(&join(&root, path)).map_err(context(&format!("deleting volume {path}")))
}

pub fn resize_volume<B: Backend>(pool: &str, path: &str, size_bytes: u64) -> Result<Volume, DriverError> {
    let root = root::<B>(pool)?;
    check_path(path, &[VOLUMES])?;
    let url = join(&root, path);
    let what = format!("resizing volume {path}");
    let info = images::info(&url).map_err(context(&what))?;
    if size_bytes < info.virtual_size {
        return Err(invalid(format!(
            "{what}: volumes only grow; it is {} bytes, asked for {size_bytes}",
            info.virtual_size
        )));
    }
    if size_bytes > info.virtual_size {
        images::resize(&url, size_bytes).map_err(context(&what))?;
    }
    describe::<B>(&root, path)
}

pub fn create_snapshot<B: Backend>(pool: &str, path: &str, name: &str) -> Result<(), DriverError> {
    let root = root::<B>(pool)?;
    check_path(path, &[VOLUMES])?;
    images::snapshot_create(&join(&root, path), name).map_err(context(&format!("snapshotting {path}")))
}

pub fn revert_snapshot<B: Backend>(pool: &str, path: &str, name: &str) -> Result<(), DriverError> {
    let root = root::<B>(pool)?;
    check_path(path, &[VOLUMES])?;
    images::snapshot_revert(&join(&root, path), name).map_err(context(&format!("reverting {path} to {name}")))
}

pub fn delete_snapshot<B: Backend>(pool: &str, path: &str, name: &str) -> Result<(), DriverError> {
    let root = root::<B>(pool)?;
    check_path(path, &[VOLUMES])?;
    let url = join(&root, path);
    let what = format!("deleting snapshot {name} of {path}");
    // A snapshot already gone counts as deleted (as for volumes); a missing volume does not.
    if !images::snapshot_list(&url).map_err(context(&what))?.iter().any(|s| s == name) {
        return Ok(());
    }
    images::snapshot_delete(&url, name).map_err(context(&what))
}

pub fn export_image<B: Backend>(
    pool: &str,
    path: &str,
    snapshot: Option<&str>,
    store: &str,
    name: &str,
) -> Result<Volume, DriverError> {
    let pool = root::<B>(pool)?;
    let store = store_root(store)?;
    check_path(path, &[VOLUMES])?;
    check_name(name)?;
    let source = join(&pool, path);
    let target_path = match snapshot {
        Some(_) => format!("{SNAPSHOTS}/{name}.qcow2"),
        None => format!("{TEMPLATES}/{name}.qcow2"),
    };
    let target = join(&store, &target_path);
    let what = format!("exporting {path} to {target}");
    match snapshot {
        Some(s) => images::convert_snapshot(&source, s, &target, DiskFormat::Qcow2),
        None => images::convert(&source, &target, DiskFormat::Qcow2),
    }
    .map_err(context(&what))?;
    describe::<B>(&store, &target_path)
}

/// The pool path of the template made from a store image: the same file name, with
/// ".qcow2" added unless it has it (templates on a pool are qcow2, so that volumes
/// can be overlays on them).
pub fn template_path(image: &str) -> String {
    let file = image.rsplit('/').next().unwrap_or(image);
    if file.ends_with(".qcow2") { format!("{TEMPLATES}/{file}") } else { format!("{TEMPLATES}/{file}.qcow2") }
}

pub fn install_template<B: Backend>(pool: &str, store: &str, image: &str) -> Result<Volume, DriverError> {
    let pool = root::<B>(pool)?;
    let store = store_root(store)?;
    check_path(image, &[TEMPLATES, SNAPSHOTS])?;
    let path = template_path(image);
    let source = join(&store, image);
    let target = join(&pool, &path);
    let what = format!("installing {source} on {pool}");
    // Once: a template already on the pool is used as it is. The host's convert
    // leaves nothing behind when it fails, so a file there is a whole copy.
    if target != source && !exists(&target).map_err(context(&what))? {
        images::convert(&source, &target, DiskFormat::Qcow2).map_err(context(&what))?;
    }
    describe::<B>(&pool, &path)
}

pub fn register_image<B: Backend>(
    store: &str,
    source: &str,
    name: &str,
    format: DiskFormat,
    sha256: Option<&str>,
) -> Result<Volume, DriverError> {
    let store = root::<B>(store)?;
    check_name(name)?;
    let ext = match format {
        DiskFormat::Qcow2 => "qcow2",
        DiskFormat::Raw => "raw",
        DiskFormat::Iso => "iso",
    };
    let path = format!("{TEMPLATES}/{name}.{ext}");
    let url = join(&store, &path);
    let what = format!("registering {source} as {path}");
    images::fetch(source, &url, sha256).map_err(context(&what))?;
    // What arrived must be what was announced, and stand alone: a template backed by
    // some other file would break (or leak) once copied to a pool.
    let checked = images::info(&url).map_err(context(&what)).and_then(|info| {
        let expected = if format == DiskFormat::Qcow2 { DiskFormat::Qcow2 } else { DiskFormat::Raw };
        if info.format != expected {
            let found = if info.format == DiskFormat::Qcow2 { "qcow2" } else { "raw" };
            return Err(invalid(format!("{what}: the file is {found}, not {ext}")));
        }
        if let Some(b) = info.backing {
            return Err(invalid(format!("{what}: the image has a backing file ({b}); register standalone images")));
        }
        Ok(())
    });
    if let Err(e) = checked {
        // Best effort: the error above is what the operator needs to see.
        let _ = images::remove(&url);
        return Err(e);
    }
    describe::<B>(&store, &path)
}

pub fn delete_image<B: Backend>(url: &str, path: &str) -> Result<(), DriverError> {
    let root = root::<B>(url)?;
    check_path(path, &[TEMPLATES, SNAPSHOTS])?;
    images::remove(&join(&root, path)).map_err(context(&format!("deleting image {path}")))
}

pub fn locate<B: Backend>(url: &str, path: &str) -> Result<Locator, DriverError> {
    let root = root::<B>(url)?;
    check_path(path, &[VOLUMES, TEMPLATES, SNAPSHOTS])?;
    Ok(describe::<B>(&root, path).map_err(context(&format!("locating {path}")))?.locator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_in_the_layout() {
        assert!(check_path("volumes/v-1.qcow2", &[VOLUMES]).is_ok());
        for bad in ["volumes/../x", "volumes/.x", "templates/t.qcow2", "volumes/a/b", "volumes/", "/etc/passwd"] {
            assert!(check_path(bad, &[VOLUMES]).is_err(), "{bad} was accepted");
        }
        assert!(check_name("i-2-3-VM.root").is_ok());
        assert!(check_name("-x").is_err() && check_name("a b").is_err() && check_name("").is_err());
    }

    #[test]
    fn templates_on_a_pool_are_qcow2() {
        assert_eq!(template_path("templates/t1.qcow2"), "templates/t1.qcow2");
        assert_eq!(template_path("templates/t1.iso"), "templates/t1.iso.qcow2");
        assert_eq!(template_path("snapshots/s.qcow2"), "templates/s.qcow2");
    }
}

/// Implements the `storage` export for a backend by handing every call to this module,
/// so each driver crate holds only what differs: its URL scheme and locators.
macro_rules! export_storage {
    ($backend:ty) => {
        impl storage::Guest for $backend {
            fn attach(url: String) -> Result<Usage, DriverError> {
                pool::attach::<$backend>(&url)
            }
            fn capacity(url: String) -> Result<Usage, DriverError> {
                pool::capacity::<$backend>(&url)
            }
            fn create_volume(
                pool: String,
                name: String,
                size_bytes: u64,
                template: Option<String>,
            ) -> Result<Volume, DriverError> {
                pool::create_volume::<$backend>(&pool, &name, size_bytes, template.as_deref())
            }
            fn delete_volume(pool: String, path: String) -> Result<(), DriverError> {
                pool::delete_volume::<$backend>(&pool, &path)
            }
            fn resize_volume(pool: String, path: String, size_bytes: u64) -> Result<Volume, DriverError> {
                pool::resize_volume::<$backend>(&pool, &path, size_bytes)
            }
            fn create_snapshot(pool: String, path: String, name: String) -> Result<(), DriverError> {
                pool::create_snapshot::<$backend>(&pool, &path, &name)
            }
            fn revert_snapshot(pool: String, path: String, name: String) -> Result<(), DriverError> {
                pool::revert_snapshot::<$backend>(&pool, &path, &name)
            }
            fn delete_snapshot(pool: String, path: String, name: String) -> Result<(), DriverError> {
                pool::delete_snapshot::<$backend>(&pool, &path, &name)
            }
            fn export_image(
                pool: String,
                path: String,
                snapshot: Option<String>,
                store: String,
                name: String,
            ) -> Result<Volume, DriverError> {
                pool::export_image::<$backend>(&pool, &path, snapshot.as_deref(), &store, &name)
            }
            fn install_template(pool: String, store: String, image: String) -> Result<Volume, DriverError> {
                pool::install_template::<$backend>(&pool, &store, &image)
            }
            fn register_image(
                store: String,
                source: String,
                name: String,
                format: DiskFormat,
                sha256: Option<String>,
            ) -> Result<Volume, DriverError> {
                pool::register_image::<$backend>(&store, &source, &name, format, sha256.as_deref())
            }
            fn delete_image(url: String, path: String) -> Result<(), DriverError> {
                pool::delete_image::<$backend>(&url, &path)
            }
            fn locate(url: String, path: String) -> Result<Locator, DriverError> {
                pool::locate::<$backend>(&url, &path)
            }
        }
    };
}
pub(crate) use export_storage;
