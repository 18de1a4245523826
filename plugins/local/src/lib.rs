//! wasmstack storage driver for folders on the host (`file:///path`), primary and
//! secondary storage alike, through the host's `images` capability. The files must be
//! where the hypervisor runs: a single-host cloud, or a shared mount at the same path
//! on every host. Volumes are file disks; QEMU follows their backing files itself.

wit_bindgen::generate!({ world: "storage-driver", path: "../../wit", generate_all });

#[path = "../../shared/pool.rs"]
mod pool;

use exports::wasmstack::driver::plugin::{self, Capability, DriverKind, PluginInfo};
use exports::wasmstack::driver::storage::{self, Usage, Volume};
use pool::Backend;
use wasmstack::driver::images::ImageInfo;
use wasmstack::driver::types::{DiskFormat, DriverError, FileDisk, Locator};

struct Local;

impl Backend for Local {
    const SCHEME: &'static str = "file://";
    const EXAMPLE: &'static str = "file:///var/lib/wasmstack/primary";

    fn check_root(rest: &str) -> Result<(), String> {
        if !rest.starts_with('/') || rest.len() < 2 {
            return Err("give an absolute folder below /, e.g. file:///var/lib/wasmstack/primary".into());
        }
        Ok(())
    }

    fn locator(url: &str, _info: &ImageInfo, format: DiskFormat) -> Result<Locator, DriverError> {
        let path =
            url.strip_prefix("file://").ok_or_else(|| DriverError::Failed(format!("{url} is not a file URL")))?;
        Ok(Locator::File(FileDisk { path: path.to_owned(), format }))
    }
}

impl plugin::Guest for Local {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "local".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: DriverKind::Storage,
            description: "Primary and secondary storage in folders on the hypervisor host. \
                          It asks for every file:/// URL; grant only the folders it may use, \
                          e.g. images = [\"file:///var/lib/wasmstack\"]"
                .into(),
            capabilities: vec![Capability::Images("file:///".into())],
            config_schema: "{}".into(),
        }
    }
}

impl storage::Guest for Local {
    fn attach(url: String) -> Result<Usage, DriverError> {
        pool::attach::<Local>(&url)
    }
    fn capacity(url: String) -> Result<Usage, DriverError> {
        pool::capacity::<Local>(&url)
    }
    fn create_volume(
        pool: String,
        name: String,
        size_bytes: u64,
        template: Option<String>,
    ) -> Result<Volume, DriverError> {
        pool::create_volume::<Local>(&pool, &name, size_bytes, template.as_deref())
    }
    fn delete_volume(pool: String, path: String) -> Result<(), DriverError> {
        pool::delete_volume::<Local>(&pool, &path)
    }
    fn resize_volume(pool: String, path: String, size_bytes: u64) -> Result<Volume, DriverError> {
        pool::resize_volume::<Local>(&pool, &path, size_bytes)
    }
    fn create_snapshot(pool: String, path: String, name: String) -> Result<(), DriverError> {
        pool::create_snapshot::<Local>(&pool, &path, &name)
    }
    fn revert_snapshot(pool: String, path: String, name: String) -> Result<(), DriverError> {
        pool::revert_snapshot::<Local>(&pool, &path, &name)
    }
    fn delete_snapshot(pool: String, path: String, name: String) -> Result<(), DriverError> {
        pool::delete_snapshot::<Local>(&pool, &path, &name)
    }
    fn export_image(
        pool: String,
        path: String,
        snapshot: Option<String>,
        store: String,
        name: String,
    ) -> Result<Volume, DriverError> {
        pool::export_image::<Local>(&pool, &path, snapshot.as_deref(), &store, &name)
    }
    fn install_template(pool: String, store: String, image: String) -> Result<Volume, DriverError> {
        pool::install_template::<Local>(&pool, &store, &image)
    }
    fn register_image(
        store: String,
        source: String,
        name: String,
        format: DiskFormat,
        sha256: Option<String>,
    ) -> Result<Volume, DriverError> {
        pool::register_image::<Local>(&store, &source, &name, format, sha256.as_deref())
    }
    fn delete_image(url: String, path: String) -> Result<(), DriverError> {
        pool::delete_image::<Local>(&url, &path)
    }
    fn locate(url: String, path: String) -> Result<Locator, DriverError> {
        pool::locate::<Local>(&url, &path)
    }
}

export!(Local);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_urls() {
        assert_eq!(pool::root::<Local>("file:///srv/p/").unwrap(), "file:///srv/p");
        for bad in ["file://srv/p", "file:///", "nfs://h/export"] {
            assert!(matches!(pool::root::<Local>(bad), Err(DriverError::InvalidSpec(_))), "{bad} was accepted");
        }
    }
}
