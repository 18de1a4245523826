//! Whether a storage driver's locator lies within its pool. A driver answers where a
//! volume's bytes are; a hypervisor opens what it is told, so a locator naming
//! `/etc/shadow` would hand a host file to a guest. Every locator is checked against the
//! pool (or store) URL it was asked about, and against the driver's own images grant (a
//! pool URL an operator typed need not lie inside it), before it is stored and before it
//! reaches a hypervisor.

use crate::api::error::ApiError;
use crate::plugins::{Grants, Locator};

/// The components of an absolute, normalised path; none for a relative path or one
/// with `.` or `..` in it (checked by component, not by string prefix).
fn components(path: &str) -> Option<Vec<&str>> {
    if !path.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if parts.iter().any(|c| *c == "." || *c == "..") || path.contains('\0') {
        return None;
    }
    Some(parts)
}

/// Whether `path` names something strictly below the folder `root`.
fn below(root: &str, path: &str) -> bool {
    match (components(root), components(path)) {
        (Some(r), Some(p)) => p.len() > r.len() && p.starts_with(&r),
        _ => false,
    }
}

/// Checks that `locator` lies within the pool at `url` (`file:///folder` or
/// `nfs://host/export`); the error says what is outside. No pool is a block pool, so a
/// block device is always refused.
pub fn within(url: &str, locator: &Locator) -> Result<(), String> {
    // A pool's settings travel in its URL's query string; where it is, is the rest.
    let url = url.split_once(['?', '#']).map_or(url, |(base, _)| base);
    match locator {
        Locator::File(f) => {
            let root =
                url.strip_prefix("file://").ok_or_else(|| format!("a file {} for a pool on the network", f.path))?;
            if below(root, &f.path) { Ok(()) } else { Err(format!("the file {}", f.path)) }
        }
        Locator::Network(n) => {
            let rest = url.strip_prefix("nfs://").ok_or_else(|| format!("a {} disk on {}", n.protocol, n.host))?;
            let (host, root) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, String::new()));
            if !n.protocol.eq_ignore_ascii_case("nfs") {
                return Err(format!("a {} disk", n.protocol));
            }
            if !n.host.eq_ignore_ascii_case(host) || n.port.is_some_and(|p| p != 2049) {
                return Err(format!("a disk on {}{}", n.host, n.port.map(|p| format!(":{p}")).unwrap_or_default()));
            }
            for path in std::iter::once(&n.path).chain(n.backing.iter().map(|b| &b.path)) {
                if !below(&root, path) {
                    return Err(format!("the image {path} on {}", n.host));
                }
            }
            Ok(())
        }
        Locator::Block(dev) => Err(format!("the block device {dev}")),
    }
}

/// Checks that every file of `locator` lies within the driver's images grants, as the
/// images capability would name it (`file:///path`, `nfs://host/path`).
pub fn granted(grants: &Grants, locator: &Locator) -> Result<(), String> {
    match locator {
        Locator::File(f) => {
            if grants.allows_image(&format!("file://{}", f.path)) {
                Ok(())
            } else {
                Err(format!("the file {}", f.path))
            }
        }
        Locator::Network(n) => {
            for path in std::iter::once(&n.path).chain(n.backing.iter().map(|b| &b.path)) {
                let url = format!("{}://{}{path}", n.protocol.to_ascii_lowercase(), n.host);
                if !grants.allows_image(&url) {
                    return Err(format!("the image {path} on {}", n.host));
                }
            }
            Ok(())
        }
        Locator::Block(dev) => Err(format!("the block device {dev}")),
    }
}

/// [`within`] and [`granted`] as the error the API reports: the driver's answer is
/// refused, as any driver failure.
pub fn check(driver: &str, grants: &Grants, pool: &str, url: &str, locator: &Locator) -> Result<(), ApiError> {
    within(url, locator).map_err(|what| {
        ApiError::internal(format!("the storage driver {driver} answered a volume outside pool {pool}: {what}"))
    })?;
    granted(grants, locator).map_err(|what| {
        ApiError::internal(format!("the storage driver {driver} answered a volume outside its images grant: {what}"))
    })
}

impl super::Orchestrator {
    /// [`check`] against the driver's grants as they are now.
    pub(super) fn check_locator(&self, driver: &str, pool: &str, url: &str, locator: &Locator) -> Result<(), ApiError> {
        let storage = self.plugins.storage(driver).map_err(|e| ApiError::unavailable(e.to_string()))?;
        check(driver, &storage.plugin().grants, pool, url, locator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::{BackingImage, DiskFormat, FileDisk, NetworkDisk};

    fn file(path: &str) -> Locator {
        Locator::File(FileDisk { path: path.into(), format: DiskFormat::Qcow2 })
    }

    fn nfs(host: &str, path: &str, backing: &[&str]) -> Locator {
        Locator::Network(NetworkDisk {
            protocol: "nfs".into(),
            host: host.into(),
            port: None,
            path: path.into(),
            format: DiskFormat::Qcow2,
            backing: backing.iter().map(|p| BackingImage { path: (*p).into(), format: DiskFormat::Qcow2 }).collect(),
        })
    }

    #[test]
    fn files_stay_in_the_folder() {
        assert!(within("file:///pool", &file("/pool/v1.qcow2")).is_ok());
        // The settings in a pool URL's query are not part of its folder.
        assert!(within("file:///pool?quota-mib=9&layout=nested", &file("/pool/vols/v1.qcow2")).is_ok());
        assert!(within("file:///pool?x=/etc", &file("/etc/shadow")).is_err());
        assert!(within("nfs://h/e?quota-mib=9", &nfs("h", "/e/v1", &["/e/t1"])).is_ok());
        assert!(within("file:///pool/", &file("/pool//sub/v1")).is_ok());
        assert!(within("file:///pool", &file("/pool/../etc/shadow")).is_err());
        assert!(within("file:///pool", &file("/pool/./v1")).is_err());
        assert!(within("file:///pool", &file("/pool2/x")).is_err());
        assert!(within("file:///pool", &file("/pool")).is_err());
        assert!(within("file:///pool", &file("/pool/")).is_err());
        assert!(within("file:///pool", &file("pool/v1")).is_err());
        assert!(within("file:///pool", &file("/etc/shadow")).is_err());
        assert!(within("file:///", &file("/etc/shadow")).is_ok(), "a pool at / holds everything below it");
        assert!(within("nfs://h/export", &file("/export/v1")).is_err(), "a file for a network pool");
        assert!(within("file:///pool", &Locator::Block("/dev/sda".into())).is_err());
        assert!(within("file:///p", &file("/p/v\0")).is_err());
    }

    #[test]
    fn network_disks_stay_on_the_export() {
        let url = "nfs://10.0.0.5/export/primary";
        assert!(within(url, &nfs("10.0.0.5", "/export/primary/v1", &["/export/primary/t1"])).is_ok());
        assert!(within(url, &nfs("10.0.0.6", "/export/primary/v1", &[])).is_err(), "another server");
        assert!(within(url, &nfs("10.0.0.5", "/export/primary2/v1", &[])).is_err());
        assert!(within(url, &nfs("10.0.0.5", "/export/primary/../secret", &[])).is_err());
        assert!(within(url, &nfs("10.0.0.5", "/export/primary/v1", &["/etc/shadow"])).is_err(), "backing chain");
        assert!(within("file:///export/primary", &nfs("10.0.0.5", "/export/primary/v1", &[])).is_err());
        let Locator::Network(mut n) = nfs("10.0.0.5", "/export/primary/v1", &[]) else { unreachable!() };
        n.protocol = "rbd".into();
        assert!(within(url, &Locator::Network(n.clone())).is_err());
        n.protocol = "nfs".into();
        n.port = Some(2050);
        assert!(within(url, &Locator::Network(n)).is_err());
    }

    #[test]
    fn the_error_names_driver_and_pool() {
        let g = Grants::new(vec![], vec!["file:///".into()], vec![]).unwrap();
        let e = check("roguestore", &g, "p1", "file:///pool", &file("/etc/shadow")).unwrap_err();
        assert_eq!(e.text, "the storage driver roguestore answered a volume outside pool p1: the file /etc/shadow");
    }

    #[test]
    fn locators_stay_in_the_drivers_grant() {
        let g = Grants::new(vec![], vec!["file:///srv/store".into(), "nfs://10.0.0.5/export".into()], vec![]).unwrap();
        assert!(granted(&g, &file("/srv/store/p1/v1")).is_ok());
        assert_eq!(granted(&g, &file("/srv/other/p1/v1")).unwrap_err(), "the file /srv/other/p1/v1");
        assert!(granted(&g, &file("/srv/storex/v1")).is_err(), "by component, not by string prefix");
        assert!(granted(&g, &nfs("10.0.0.5", "/export/p/v1", &["/export/t1"])).is_ok());
        assert_eq!(
            granted(&g, &nfs("10.0.0.5", "/export/p/v1", &["/etc/t1"])).unwrap_err(),
            "the image /etc/t1 on 10.0.0.5"
        );
        assert!(granted(&g, &nfs("10.0.0.6", "/export/p/v1", &[])).is_err(), "another server");
        assert!(granted(&Grants::default(), &file("/srv/store/v1")).is_err(), "no grant, nothing allowed");
        // A pool outside the grant: the locator lies in the pool, and is still refused.
        let e = check("roguestore", &g, "p2", "file:///srv/other/p2", &file("/srv/other/p2/v1")).unwrap_err();
        assert_eq!(
            e.text,
            "the storage driver roguestore answered a volume outside its images grant: the file /srv/other/p2/v1"
        );
        assert!(check("roguestore", &g, "p1", "file:///srv/store/p1", &file("/srv/store/p1/v1")).is_ok());
    }
}
