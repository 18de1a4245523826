//! wasmstack storage driver for NFS servers (NFSv3), primary and secondary storage
//! alike, through the host's `images` capability: the host reaches the server itself
//! (qemu-img and libnfs), and hypervisors open the images over NFS too, so nothing is
//! mounted anywhere. Pools are named `nfs://server/export/path`.

wit_bindgen::generate!({ world: "storage-driver", path: "../../wit", generate_all });

#[path = "../../shared/pool.rs"]
mod pool;

use exports::wasmstack::driver::plugin::{self, Capability, DriverKind, PluginInfo, Serves, StorageFacts};
use exports::wasmstack::driver::storage::{self, Usage, Volume};
use pool::Backend;
use wasmstack::driver::images::{self, ImageInfo};
use wasmstack::driver::types::{BackingImage, DiskFormat, DriverError, Locator, NetworkDisk};

struct Nfs;

impl Backend for Nfs {
    const SCHEME: &'static str = "nfs://";
    const EXAMPLE: &'static str = "nfs://10.0.0.5/export/primary";

    fn check_root(rest: &str) -> Result<(), String> {
        let (host, path) = rest.split_once('/').ok_or("name a server and an export path")?;
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
            return Err("the server must be a host name or IPv4 address, without a port".into());
        }
        if path.is_empty() {
            return Err("name the export (and a folder in it), e.g. /export/primary".into());
        }
        Ok(())
    }

    /// A network disk QEMU opens itself, with the whole backing chain spelled out:
    /// QEMU cannot probe the chain of a network disk, and would open what it finds
    /// without the identity libvirt gives the top image.
    fn locator(url: &str, info: &ImageInfo, format: DiskFormat) -> Result<Locator, DriverError> {
        let (host, path) = split(url)?;
        let backing = backing_chain(info)?
            .into_iter()
            .map(|(below, format)| {
                let (below_host, below_path) = split(&below)?;
                if below_host != host {
                    return Err(DriverError::Failed(format!(
                        "{url} is backed by {below}, on another server; QEMU needs the chain on one server"
                    )));
                }
                Ok(BackingImage { path: below_path, format })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Locator::Network(NetworkDisk { protocol: "nfs".into(), host, port: None, path, format, backing }))
    }
}

/// Deepest backing chain a locator lists.
const MAX_CHAIN: usize = 16;

/// The backing chain below an image, nearest first, as URLs with their formats.
fn backing_chain(info: &ImageInfo) -> Result<Vec<(String, DiskFormat)>, DriverError> {
    let mut chain = Vec::new();
    let mut next = info.backing.clone();
    while let Some(url) = next {
        if chain.len() >= MAX_CHAIN {
            return Err(DriverError::Failed(format!("backing chain deeper than {MAX_CHAIN} images")));
        }
        // The host answers images this call read already (the template) without a round trip.
        let below = images::info(&url).map_err(pool::context(&format!("reading backing image {url}")))?;
        next = below.backing.clone();
        chain.push((url, below.format));
    }
    Ok(chain)
}

/// "nfs://host/export/v.qcow2" → ("host", "/export/v.qcow2").
fn split(url: &str) -> Result<(String, String), DriverError> {
    url.strip_prefix("nfs://")
        .and_then(|rest| rest.find('/').map(|i| (rest[..i].to_owned(), rest[i..].to_owned())))
        .ok_or_else(|| DriverError::Failed(format!("{url} is not an NFS URL")))
}

impl plugin::Guest for Nfs {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "nfs".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: DriverKind::Storage,
            serves: Serves::Storage(StorageFacts { providers: vec!["NFS".into()], schemes: vec!["nfs".into()] }),
            description: "Primary and secondary storage on NFS servers (NFSv3), reached without mounts. \
                          It asks for every nfs:// URL; grant only the exports it may use, \
                          e.g. images = [\"nfs://10.0.0.5/export\"]"
                .into(),
            capabilities: vec![Capability::Images("nfs://".into())],
            config_schema: "{}".into(),
        }
    }
}

pool::export_storage!(Nfs);

export!(Nfs);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_urls() {
        assert_eq!(pool::root::<Nfs>("nfs://10.0.0.5/export/primary/").unwrap(), "nfs://10.0.0.5/export/primary");
        for bad in ["nfs://10.0.0.5", "nfs:///export", "nfs://h:2049/export", "file:///x", "smb://h/x"] {
            assert!(matches!(pool::root::<Nfs>(bad), Err(DriverError::InvalidSpec(_))), "{bad} was accepted");
        }
        assert_eq!(split("nfs://h/export/v.qcow2").unwrap(), ("h".into(), "/export/v.qcow2".into()));
    }
}
