//! wasmstack storage driver for folders on the host (`file:///path`), primary and
//! secondary storage alike, through the host's `images` capability. The files must be
//! where the hypervisor runs: a single-host cloud, or a shared mount at the same path
//! on every host. Volumes are file disks; QEMU follows their backing files itself.

wit_bindgen::generate!({ world: "storage-driver", path: "../../wit", generate_all });

#[path = "../../shared/pool.rs"]
mod pool;

use exports::wasmstack::driver::plugin::{self, Capability, DriverKind, PluginInfo, Serves, StorageFacts};
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
            serves: Serves::Storage(StorageFacts { providers: vec!["Local".into()], schemes: vec!["file".into()] }),
            description: "Primary and secondary storage in folders on the hypervisor host. \
                          It asks for every file:/// URL; grant only the folders it may use, \
                          e.g. images = [\"file:///var/lib/wasmstack\"]"
                .into(),
            capabilities: vec![Capability::Images("file:///".into())],
            config_schema: "{}".into(),
        }
    }
}

pool::export_storage!(Local);

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
