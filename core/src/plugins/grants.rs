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
    /// A hypervisor's own API (a unix socket or an HTTP origin) matching a pattern.
    Endpoint(String),
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Capability::Libvirt(p) => write!(f, "libvirt {p}"),
            Capability::Images(p) => write!(f, "images {p}"),
            Capability::ImagesRead(p) => write!(f, "images-read {p}"),
            Capability::Netdev(p) => write!(f, "netdev {p}*"),
            Capability::Endpoint(p) => write!(f, "endpoint {p}"),
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
        self.image_root(url).is_some()
    }

    /// Whether the images capability may read `url` (inspect, list, copy from): under a
    /// prefix granted as `images` or `images-read`.
    pub fn allows_image_read(&self, url: &str) -> bool {
        self.image_read_root(url).is_some()
    }

    /// The `images` prefix `url` lies under without climbing out of it: the longest, when
    /// grants nest, since a deeper grant is the operator's word on where that folder is.
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
            // Nothing grants endpoints yet: the endpoint capability's grants replace this.
            Capability::Endpoint(_) => false,
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

/// The longest of `prefixes` that `url` lies under; none when `url` climbs with `..`.
fn longest_prefix<'a>(prefixes: impl Iterator<Item = &'a String>, url: &str) -> Option<&'a str> {
    if url.split('/').any(|seg| seg == "..") {
        return None;
    }
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

/// The text of a denial: what was refused and a grant that would allow it. The grant
/// proposed is one an operator would write: the folder holding an image, a device-name
/// prefix, the libvirt URI; never a path with `..`, which no grant allows.
pub(crate) fn denial(plugin: &str, capability: &str, target: &str) -> String {
    let refused = format!("{capability} access to \"{target}\" is not granted to plugin \"{plugin}\"");
    let grant = match capability {
        "images" => match image_folder(target) {
            Some(folder) => folder,
            None => return format!("{refused}; a path with \"..\" or \".\" in it is never granted"),
        },
        "netdev" => device_prefix(target).to_owned(),
        _ => target.to_owned(),
    };
    format!(
        "{refused}; an operator can add {capability} = [\"{grant}\"] under [plugin.{plugin}] in the server configuration"
    )
}

/// The folder holding the image at `url` (`scheme://authority/path`), with empty segments
/// dropped; none when its path has `.` or `..` in it. A URL naming a top folder proposes
/// itself, not everything on the server.
fn image_folder(url: &str) -> Option<String> {
    let url = url.split_once(['?', '#']).map_or(url, |(base, _)| base);
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return None;
    }
    let keep = if segments.len() > 1 { segments.len() - 1 } else { segments.len() };
    Some(format!("{scheme}://{authority}/{}", segments[..keep].join("/")))
}

/// The family a device name belongs to: up to its last separator (`ws-br12` gives `ws-`),
/// or without its trailing digits (`vnet12` gives `vnet`); the name itself otherwise.
fn device_prefix(name: &str) -> &str {
    let trimmed = name.trim_end_matches(['-', '_', '.']);
    if let Some(i) = trimmed.rfind(['-', '_', '.']) {
        return &name[..=i];
    }
    match name.trim_end_matches(|c: char| c.is_ascii_digit()) {
        "" => name,
        p => p,
    }
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

    #[test]
    fn denials_propose_a_folder_a_prefix_or_the_uri() {
        let add = |t: &str| t.split_once("can add ").map(|(_, r)| r.split(" under").next().unwrap().to_owned());
        let d = denial("p", "images", "file:///srv/store/p1/vols/v1.qcow2");
        assert_eq!(
            d,
            "images access to \"file:///srv/store/p1/vols/v1.qcow2\" is not granted to plugin \"p\"; \
             an operator can add images = [\"file:///srv/store/p1/vols\"] under [plugin.p] in the server configuration"
        );
        let images = |t: &str| add(&denial("p", "images", t));
        assert_eq!(
            images("nfs://10.0.0.5/export/primary/t1.qcow2").unwrap(),
            "images = [\"nfs://10.0.0.5/export/primary\"]"
        );
        assert_eq!(images("file:///srv//store/p1/").unwrap(), "images = [\"file:///srv/store\"]");
        assert_eq!(images("file:///srv").unwrap(), "images = [\"file:///srv\"]", "a top folder, not all of /");
        assert_eq!(images("file:///srv/p?quota=1").unwrap(), "images = [\"file:///srv\"]");
        for climbs in ["file:///srv/p/../../etc/shadow", "file:///srv/./p/x", "nfs://h/e/.."] {
            let d = denial("p", "images", climbs);
            assert!(add(&d).is_none() && d.ends_with("a path with \"..\" or \".\" in it is never granted"), "{d}");
        }
        // Every folder proposed is a grant the configuration accepts, and it allows the refused image.
        for t in ["file:///srv/store/p1/vols/v1.qcow2", "nfs://h/export/x", "file:///a"] {
            let folder = image_folder(t).unwrap();
            assert!(Grants::new(vec![], vec![folder.clone()], vec![]).unwrap().allows_image(t), "{folder} for {t}");
        }
        let netdev = |t: &str| add(&denial("p", "netdev", t)).unwrap();
        assert_eq!(netdev("ws-br12"), "netdev = [\"ws-\"]");
        assert_eq!(netdev("vnet12"), "netdev = [\"vnet\"]");
        assert_eq!(netdev("eth0.100"), "netdev = [\"eth0.\"]");
        assert_eq!(netdev("br-"), "netdev = [\"br-\"]");
        assert_eq!(netdev("42"), "netdev = [\"42\"]");
        assert_eq!(add(&denial("p", "libvirt", "qemu:///system")).unwrap(), "libvirt = [\"qemu:///system\"]");
    }
}
