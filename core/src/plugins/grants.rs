//! What a plugin asks for and what the operator granted, and the checks every
//! host capability makes before it touches anything.

use serde::Serialize;

/// One capability, as asked for by a plugin or granted by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "capability", content = "scope", rename_all = "lowercase")]
pub enum Capability {
    /// libvirt URIs matching a pattern (`*` matches any run of characters).
    Libvirt(String),
    /// Storage URLs under a prefix, to read and write.
    Images(String),
    /// Storage URLs under a prefix, to read only (`images-read`): what a primary pool's
    /// driver needs of an image store it copies templates from.
    #[serde(rename = "images-read")]
    ImagesRead(String),
    /// Network device names starting with a prefix.
    Netdev(String),
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Capability::Libvirt(p) => write!(f, "libvirt {p}"),
            Capability::Images(p) => write!(f, "images {p}"),
            Capability::ImagesRead(p) => write!(f, "images-read {p}"),
            Capability::Netdev(p) => write!(f, "netdev {p}*"),
        }
    }
}

/// The capabilities the operator granted one plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Grants {
    libvirt: Vec<String>,
    images: Vec<String>,
    images_read: Vec<String>,
    netdev: Vec<String>,
}

impl Grants {
    /// Checks the patterns and builds the grant set.
    pub fn new(libvirt: Vec<String>, images: Vec<String>, netdev: Vec<String>) -> Result<Self, String> {
        for p in &libvirt {
            if p.is_empty() || !p.contains(':') {
                return Err(format!("libvirt grant \"{p}\" is not a URI pattern"));
            }
        }
        let images = url_prefixes("images", images)?;
        for p in &netdev {
            if p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(format!("netdev grant \"{p}\" is not a device-name prefix"));
            }
        }
        Ok(Grants { libvirt, images, images_read: Vec::new(), netdev })
    }

    /// These grants plus URL prefixes granted for reading only (`images-read`).
    pub fn with_images_read(mut self, prefixes: Vec<String>) -> Result<Self, String> {
        self.images_read = url_prefixes("images-read", prefixes)?;
        Ok(self)
    }

    /// Everything granted, as a list.
    pub fn capabilities(&self) -> Vec<Capability> {
        let l = self.libvirt.iter().cloned().map(Capability::Libvirt);
        let i = self.images.iter().cloned().map(Capability::Images);
        let r = self.images_read.iter().cloned().map(Capability::ImagesRead);
        let n = self.netdev.iter().cloned().map(Capability::Netdev);
        l.chain(i).chain(r).chain(n).collect()
    }

    /// Whether a libvirt connection to `uri` is granted.
    pub fn allows_libvirt(&self, uri: &str) -> bool {
        self.libvirt.iter().any(|p| glob_match(p, uri))
    }

    /// Whether the images capability may change `url` (create, write, remove): it must lie
    /// under a prefix granted as `images` and must not climb out of it.
    pub fn allows_image(&self, url: &str) -> bool {
        under(&self.images, url)
    }

    /// Whether the images capability may read `url` (inspect, list, copy from): under a
    /// prefix granted as `images` or `images-read`.
    pub fn allows_image_read(&self, url: &str) -> bool {
        under(&self.images, url) || under(&self.images_read, url)
    }

    /// The `images` prefix `url` lies under: the longest, when grants nest, since a
    /// deeper grant is the operator's word on where that folder is.
    pub fn image_root(&self, url: &str) -> Option<&str> {
        longest_prefix(self.images.iter(), url)
    }

    /// The `images` or `images-read` prefix `url` lies under, the longest.
    pub fn image_read_root(&self, url: &str) -> Option<&str> {
        longest_prefix(self.images.iter().chain(&self.images_read), url)
    }

    /// Whether the netdev capability may touch the device `name`.
    pub fn allows_netdev(&self, name: &str) -> bool {
        self.netdev.iter().any(|p| name.starts_with(p.as_str()))
    }

    /// Whether `cap`, as a plugin asked for it, is covered by these grants.
    pub fn covers(&self, cap: &Capability) -> bool {
        match cap {
            Capability::Libvirt(p) => self.libvirt.iter().any(|g| g == p || glob_match(g, p)),
            Capability::Images(p) => self.allows_image(p.trim_end_matches('/')),
            Capability::ImagesRead(p) => self.allows_image_read(p.trim_end_matches('/')),
            Capability::Netdev(p) => self.allows_netdev(p),
        }
    }
}

/// Checks and normalises the URL prefixes of an `images` or `images-read` grant.
fn url_prefixes(key: &str, prefixes: Vec<String>) -> Result<Vec<String>, String> {
    prefixes
        .into_iter()
        .map(|p| {
            if !p.contains("://") || p.contains("..") {
                return Err(format!("{key} grant \"{p}\" is not a URL prefix"));
            }
            Ok(p.trim_end_matches('/').to_owned())
        })
        .collect()
}

/// Whether `url` lies under one of `prefixes` without climbing out of it.
fn under(prefixes: &[String], url: &str) -> bool {
    !url.split('/').any(|seg| seg == "..")
        && prefixes.iter().any(|p| url == p || url.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with('/')))
}

fn longest_prefix<'a>(prefixes: impl Iterator<Item = &'a String>, url: &str) -> Option<&'a str> {
    prefixes
        .filter(|p| url == p.as_str() || url.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with('/')))
        .max_by_key(|p| p.len())
        .map(String::as_str)
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters.
fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The text of a denial: what was refused and the grant that would allow it.
pub(crate) fn denial(plugin: &str, capability: &str, target: &str) -> String {
    format!(
        "{capability} access to \"{target}\" is not granted to plugin \"{plugin}\"; \
         an operator can add {capability} = [\"{target}\"] under [plugin.{plugin}] in the server configuration"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("qemu+ssh://*/system", "qemu+ssh://10.0.0.7/system"));
        assert!(!glob_match("qemu+ssh://*/system", "qemu+ssh://10.0.0.7/session"));
        assert!(glob_match("test:///default", "test:///default"));
        assert!(!glob_match("test:///default", "test:///default2"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "a-b-b-c"));
        assert!(!glob_match("a*bc", "abc-"));
    }

    #[test]
    fn image_prefix_respects_boundaries() {
        let g = Grants::new(vec![], vec!["nfs://10.0.0.5/export/".into()], vec![]).unwrap();
        assert!(g.allows_image("nfs://10.0.0.5/export/primary/v1.qcow2"));
        assert!(g.allows_image("nfs://10.0.0.5/export"));
        assert!(!g.allows_image("nfs://10.0.0.5/exports/x"));
        assert!(!g.allows_image("nfs://10.0.0.5/export/../etc/shadow"));
    }

    #[test]
    fn a_read_grant_reads_and_never_writes() {
        let g = Grants::new(vec![], vec!["file:///pool".into()], vec![])
            .unwrap()
            .with_images_read(vec!["nfs://h/store/".into()])
            .unwrap();
        assert!(g.allows_image_read("nfs://h/store/templates/t.qcow2"));
        assert!(!g.allows_image("nfs://h/store/templates/t.qcow2"));
        assert!(!g.allows_image_read("nfs://h/store/../other"));
        assert!(g.allows_image_read("file:///pool/v.qcow2") && g.allows_image("file:///pool/v.qcow2"));
        assert_eq!(
            g.capabilities().iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["images file:///pool", "images-read nfs://h/store"]
        );
        assert!(g.covers(&Capability::ImagesRead("nfs://h/store".into())));
        assert!(!g.covers(&Capability::Images("nfs://h/store".into())));
        let err = Grants::default().with_images_read(vec!["/store".into()]).unwrap_err();
        assert_eq!(err, "images-read grant \"/store\" is not a URL prefix");
    }

    #[test]
    fn covers_asks() {
        let g = Grants::new(vec!["qemu+ssh://*/system".into()], vec![], vec!["ws-".into()]).unwrap();
        assert!(g.covers(&Capability::Libvirt("qemu+ssh://*/system".into())));
        assert!(g.covers(&Capability::Libvirt("qemu+ssh://h1/system".into())));
        assert!(!g.covers(&Capability::Libvirt("qemu:///system".into())));
        assert!(g.covers(&Capability::Netdev("ws-br".into())));
        assert!(Grants::new(vec!["nope".into()], vec![], vec![]).is_err());
    }
}
