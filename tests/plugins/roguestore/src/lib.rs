//! A storage driver that answers with more than the host takes, on request, to test
//! the plugin host's bounds on driver answers.
//!
//! `create-volume(pool, name, ..)` does what `name` says: "long-path" (a 20 MiB volume
//! path), "long-locator" (a 1 MiB file path in the locator), "deep-chain" (a network
//! locator with 100,000 backing images); any other name gets a small, sane volume.
//! `locate(url, path)` answers a 1 MiB block device for the path "long-block".
//!
//! A pool whose URL ends in "/escape" gets volumes outside it: `create-volume` and
//! `locate` answer the file /etc/shadow. One ending in "/dotdot" gets `<pool>/../outside`.
//! Any other pool gets files below its own folder; `install-template` always does.

wit_bindgen::generate!({ world: "storage-driver", path: "../../../wit", generate_all });

use exports::wasmstack::driver::plugin::{Capability, DriverKind, Guest as Plugin, PluginInfo, Serves, StorageFacts};
use exports::wasmstack::driver::storage::{Guest as Storage, Usage, Volume};
use wasmstack::driver::types::{BackingImage, DiskFormat, DriverError, FileDisk, Locator, NetworkDisk};

struct RogueStore;

impl Plugin for RogueStore {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "roguestore".into(),
            version: "1.0.0".into(),
            kind: DriverKind::Storage,
            serves: Serves::Storage(StorageFacts {
                providers: vec!["roguestore".into()],
                schemes: vec!["file".into()],
            }),
            description: "Oversized answers on request (tests only)".into(),
            capabilities: vec![Capability::Images("file:///nowhere".into())],
            config_schema: "{}".into(),
        }
    }
}

fn unsupported<T>() -> Result<T, DriverError> {
    Err(DriverError::Unsupported("roguestore does not do that".into()))
}

/// Where a volume named `name` lies in the pool at `pool`, or outside it on request.
fn in_pool(pool: &str, name: &str) -> Locator {
    let folder = pool.strip_prefix("file://").unwrap_or(pool).trim_end_matches('/');
    if folder.ends_with("/escape") {
        file("/etc/shadow".into())
    } else if folder.ends_with("/dotdot") {
        file(format!("{folder}/../outside"))
    } else {
        file(format!("{folder}/{name}"))
    }
}

fn file(path: String) -> Locator {
    Locator::File(FileDisk { path, format: DiskFormat::Qcow2 })
}

impl Storage for RogueStore {
    fn attach(_url: String) -> Result<Usage, DriverError> {
        Ok(Usage { total_bytes: 1 << 30, used_bytes: 0 })
    }
    fn capacity(_url: String) -> Result<Usage, DriverError> {
        Ok(Usage { total_bytes: 1 << 30, used_bytes: 0 })
    }
    fn create_volume(
        pool: String,
        name: String,
        size_bytes: u64,
        _template: Option<String>,
    ) -> Result<Volume, DriverError> {
        let (path, locator) = match name.as_str() {
            "long-path" => ("v".repeat(20 << 20), file("/nowhere/v".into())),
            "long-locator" => ("v".into(), file(format!("/{}", "p".repeat(1 << 20)))),
            "deep-chain" => {
                let layer = BackingImage { path: "/export/t.qcow2".into(), format: DiskFormat::Qcow2 };
                let disk = NetworkDisk {
                    protocol: "nfs".into(),
                    host: "10.0.0.5".into(),
                    port: None,
                    path: "/export/v.qcow2".into(),
                    format: DiskFormat::Qcow2,
                    backing: vec![layer; 100_000],
                };
                ("v".into(), Locator::Network(disk))
            }
            _ => (name.clone(), in_pool(&pool, &name)),
        };
        Ok(Volume { path, locator, virtual_size: size_bytes, physical_size: 0 })
    }
    fn delete_volume(_pool: String, _path: String) -> Result<(), DriverError> {
        Ok(())
    }
    fn resize_volume(_pool: String, _path: String, _size_bytes: u64) -> Result<Volume, DriverError> {
        unsupported()
    }
    fn create_snapshot(_pool: String, _path: String, _name: String) -> Result<(), DriverError> {
        unsupported()
    }
    fn revert_snapshot(_pool: String, _path: String, _name: String) -> Result<(), DriverError> {
        unsupported()
    }
    fn delete_snapshot(_pool: String, _path: String, _name: String) -> Result<(), DriverError> {
        unsupported()
    }
    fn export_image(
        _pool: String,
        _path: String,
        _snapshot: Option<String>,
        _store: String,
        _name: String,
    ) -> Result<Volume, DriverError> {
        unsupported()
    }
    /// A template copy always lies in the pool, so that a deploy reaches `create-volume`.
    fn install_template(pool: String, _store: String, image: String) -> Result<Volume, DriverError> {
        let folder = pool.strip_prefix("file://").unwrap_or(&pool).trim_end_matches('/');
        let path = format!("t-{}", image.replace('/', "-"));
        let locator = file(format!("{folder}/{path}"));
        Ok(Volume { path, locator, virtual_size: 1 << 20, physical_size: 0 })
    }
    fn register_image(
        _store: String,
        _source: String,
        _name: String,
        _format: DiskFormat,
        _sha256: Option<String>,
    ) -> Result<Volume, DriverError> {
        unsupported()
    }
    fn delete_image(_url: String, _path: String) -> Result<(), DriverError> {
        Ok(())
    }
    fn locate(url: String, path: String) -> Result<Locator, DriverError> {
        match path.as_str() {
            "long-block" => Ok(Locator::Block(format!("/dev/{}", "b".repeat(1 << 20)))),
            _ => Ok(in_pool(&url, &path)),
        }
    }
}

export!(RogueStore);
