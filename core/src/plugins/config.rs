//! The operator's side of the plugin contract: which folder to load from, the
//! default limits, and per-plugin grants and limits, read from the server's TOML file.
//!
//! ```toml
//! [plugin-host]
//! dir = "plugins"          # relative to the configuration file
//! memory-mib = 64          # default cap per instance
//! timeout-ms = 30000       # default deadline per call
//! trusted-keys = ["ed25519:…"]  # signers whose plugins load (then signatures are required)
//! watch-ms = 1000          # how often the folder is rescanned; 0: only at start and on reloadPlugins
//!
//! [plugin.kvm]                   # the driver in plugins/kvm.wasm: its file name is its name
//! libvirt = ["qemu:///system", "test:///default"]
//! timeout-ms = 120000
//!
//! [plugin.nfs]
//! images = ["nfs://10.0.0.5/primary"]           # read and write: its pools
//! images-read = ["nfs://10.0.0.6/secondary"]    # read only: the image store it copies templates from
//! sha256 = "…"                   # optional: load kvm.wasm only with this content
//! signed-by = ["ed25519:…"]      # optional: load kvm.wasm only when one of these keys signed it
//!
//! [downloads]
//! allowed-internal-sites = ["10.1.2.0/24", "127.0.0.1:8000"]  # see `downloads`
//! ```
//!
//! The file is the operator's, and the only place these settings live: a running server
//! rereads it when it changes (see `PluginHost::reload_config`), and `updatePlugin` writes its
//! changes into it. A file that does not read as a whole is not applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::downloads::InternalSite;
use super::error::PluginError;
use super::grants::Grants;
use super::signing::PublicKey;

/// Resource limits of one plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory one instance may grow to, in MiB.
    pub memory_mib: u64,
    /// Deadline of one call, host calls included.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_mib: 64, timeout: Duration::from_secs(30) }
    }
}

/// What the operator pinned a plugin's file to, beyond its name: the file loads as that
/// plugin only with this content or this signer. Checked before the file is compiled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pin {
    /// SHA-256 of the file, lowercase hex.
    pub sha256: Option<String>,
    /// Keys one of which must have signed the file (`NAME.wasm.sig`).
    pub signed_by: Vec<PublicKey>,
}

/// What the operator set for one plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginSettings {
    pub grants: Grants,
    pub limits: Limits,
}

/// The plugin host's configuration.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// Folder scanned for `*.wasm` drivers.
    pub dir: PathBuf,
    /// Limits for plugins the file does not name.
    pub defaults: Limits,
    /// Per-plugin settings, keyed by plugin name: the stem of the plugin's file name.
    pub plugins: BTreeMap<String, PluginSettings>,
    /// Per-plugin pins (`sha256`, `signed-by`), keyed likewise.
    pub pins: BTreeMap<String, Pin>,
    /// Keys whose signatures make a plugin acceptable.
    pub trusted_keys: Vec<PublicKey>,
    /// Refuse plugins without a good signature from a trusted key (`NAME.wasm.sig`).
    pub require_signature: bool,
    /// The file grants made at run time are saved to (see `save_grants`); none: they are not kept.
    pub file: Option<PathBuf>,
    /// How often the folder is rescanned, in ms: none for the default, 0 for never.
    pub watch_ms: Option<u64>,
    /// Internal networks (and hosts, ports) that template and ISO downloads may reach.
    pub allowed_internal_sites: Vec<InternalSite>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileForm {
    #[serde(default)]
    plugin_host: HostSection,
    #[serde(default)]
    plugin: BTreeMap<String, PluginSection>,
    #[serde(default)]
    downloads: DownloadsSection,
    // The server's own sections, read by `crate::config`.
    #[serde(default, rename = "http")]
    _http: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "login")]
    _login: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct DownloadsSection {
    #[serde(default)]
    allowed_internal_sites: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct HostSection {
    dir: Option<PathBuf>,
    memory_mib: Option<u64>,
    timeout_ms: Option<u64>,
    #[serde(default)]
    trusted_keys: Vec<String>,
    require_signature: Option<bool>,
    watch_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PluginSection {
    #[serde(default)]
    libvirt: Vec<String>,
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    images_read: Vec<String>,
    #[serde(default)]
    netdev: Vec<String>,
    memory_mib: Option<u64>,
    timeout_ms: Option<u64>,
    sha256: Option<String>,
    #[serde(default)]
    signed_by: Vec<String>,
}

impl HostConfig {
    /// A configuration with no grants, loading from `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        HostConfig { dir: dir.into(), ..Default::default() }
    }

    /// Reads a TOML file; a relative `dir` is taken from the file's folder, and a
    /// missing `dir` means the `plugins` folder beside the file.
    pub fn load(path: &Path) -> Result<Self, PluginError> {
        let text = std::fs::read_to_string(path).map_err(|source| PluginError::Io { path: path.to_owned(), source })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Ok(HostConfig { file: Some(path.to_owned()), ..Self::parse(&text, base)? })
    }

    /// Parses the TOML text; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, PluginError> {
        let form: FileForm = toml::from_str(text).map_err(|e| PluginError::Config(e.message().to_owned()))?;
        let defaults = limits(Limits::default(), form.plugin_host.memory_mib, form.plugin_host.timeout_ms)?;
        let dir = base.join(form.plugin_host.dir.unwrap_or_else(|| PathBuf::from("plugins")));
        let mut plugins = BTreeMap::new();
        let mut pins = BTreeMap::new();
        for (name, section) in form.plugin {
            let grants = Grants::new(section.libvirt, section.images, section.netdev)
                .and_then(|g| g.with_images_read(section.images_read))
                .map_err(|e| PluginError::Config(format!("[plugin.{name}]: {e}")))?;
            let limits = limits(defaults, section.memory_mib, section.timeout_ms).map_err(|e| match e {
                PluginError::Config(m) => PluginError::Config(format!("[plugin.{name}]: {m}")),
                other => other,
            })?;
            let pin = pin(section.sha256, &section.signed_by)
                .map_err(|e| PluginError::Config(format!("[plugin.{name}]: {e}")))?;
            if pin != Pin::default() {
                pins.insert(name.clone(), pin);
            }
            plugins.insert(name, PluginSettings { grants, limits });
        }
        let trusted_keys = form
            .plugin_host
            .trusted_keys
            .iter()
            .map(|k| PublicKey::parse(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PluginError::Config(format!("trusted-keys: {e}")))?;
        // Trusting a key means wanting signatures, unless the operator says otherwise.
        let require_signature = form.plugin_host.require_signature.unwrap_or(!trusted_keys.is_empty());
        if require_signature && trusted_keys.is_empty() {
            return Err(PluginError::Config("require-signature needs at least one of trusted-keys".into()));
        }
        let watch_ms = form.plugin_host.watch_ms;
        let allowed_internal_sites = form
            .downloads
            .allowed_internal_sites
            .iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PluginError::Config(format!("[downloads] allowed-internal-sites: {e}")))?;
        Ok(HostConfig {
            dir,
            defaults,
            plugins,
            pins,
            trusted_keys,
            require_signature,
            file: None,
            watch_ms,
            allowed_internal_sites,
        })
    }

    /// How often the plugin folder is rescanned for changed files; none when the operator
    /// turned that off (production setups that change drivers only on purpose).
    pub fn watch_interval(&self) -> Option<Duration> {
        match self.watch_ms {
            None => Some(Duration::from_secs(1)),
            Some(0) => None,
            Some(ms) => Some(Duration::from_millis(ms)),
        }
    }

    /// What the file of a plugin is pinned to; nothing for most.
    pub fn pin(&self, plugin: &str) -> Pin {
        self.pins.get(plugin).cloned().unwrap_or_default()
    }

    /// Grants and limits of a plugin; a plugin the file does not name gets no grants.
    pub fn settings(&self, plugin: &str) -> PluginSettings {
        self.plugins.get(plugin).cloned().unwrap_or(PluginSettings { grants: Grants::default(), limits: self.defaults })
    }

    /// Sets a plugin's grants, keeping its limits.
    pub fn grant(&mut self, plugin: &str, grants: Grants) {
        let limits = self.settings(plugin).limits;
        self.plugins.insert(plugin.to_owned(), PluginSettings { grants, limits });
    }

    /// Sets a plugin's limits, keeping its grants.
    pub fn limit(&mut self, plugin: &str, limits: Limits) {
        let grants = self.settings(plugin).grants;
        self.plugins.insert(plugin.to_owned(), PluginSettings { grants, limits });
    }
}

/// Writes one plugin's grants into the `[plugin.NAME]` table of the configuration file at
/// `path` (created if missing), keeping everything else in it, comments included. The
/// result must still read as a configuration; the file is replaced in one rename.
pub fn save_grants(path: &Path, plugin: &str, grants: &Grants) -> Result<(), PluginError> {
    save_plugin(path, plugin, grants, &LimitsChange::default())
}

/// Limits to write for one plugin; a field left `None` stays as the file has it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsChange {
    pub memory_mib: Option<u64>,
    pub timeout_ms: Option<u64>,
}

/// Like `save_grants`, and sets `memory-mib` and `timeout-ms` of the plugin where given.
pub fn save_plugin(path: &Path, plugin: &str, grants: &Grants, limits: &LimitsChange) -> Result<(), PluginError> {
    let io = |source| PluginError::Io { path: path.to_owned(), source };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    let updated = with_limits(&with_grants(&text, plugin, grants)?, plugin, limits)?;
    let base = path.parent().unwrap_or(Path::new("."));
    HostConfig::parse(&updated, base)?;
    let mut tmp = tempfile::NamedTempFile::new_in(base).map_err(io)?;
    std::io::Write::write_all(&mut tmp, updated.as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// The configuration text with `[plugin.NAME]`'s grant keys replaced by `grants`.
fn with_grants(text: &str, plugin: &str, grants: &Grants) -> Result<String, PluginError> {
    use toml_edit::{Array, Item, value};
    edit_plugin_table(text, plugin, |table| {
        let (mut libvirt, mut images, mut images_read, mut netdev) =
            (Array::new(), Array::new(), Array::new(), Array::new());
        for cap in grants.capabilities() {
            match cap {
                super::grants::Capability::Libvirt(p) => libvirt.push(p),
                super::grants::Capability::Images(p) => images.push(p),
                super::grants::Capability::ImagesRead(p) => images_read.push(p),
                super::grants::Capability::Netdev(p) => netdev.push(p),
                // Not granted yet (see `Grants::covers`).
                super::grants::Capability::Endpoint(_) => {}
            }
        }
        let lists = [("libvirt", libvirt), ("images", images), ("images-read", images_read), ("netdev", netdev)];
        for (key, list) in lists {
            if list.is_empty() {
                table.remove(key);
            } else if let Some(existing) = table.get_mut(key).and_then(Item::as_array_mut) {
                // Keeps the array's place and the comments around it.
                let decor = existing.decor().clone();
                *existing = list;
                *existing.decor_mut() = decor;
            } else {
                table.insert(key, value(list));
            }
        }
        Ok(())
    })
}

/// The configuration text with `f` applied to the `[plugin.NAME]` table (made if missing),
/// everything else (comments, order) kept.
fn edit_plugin_table(
    text: &str,
    plugin: &str,
    f: impl FnOnce(&mut toml_edit::Table) -> Result<(), PluginError>,
) -> Result<String, PluginError> {
    use toml_edit::{DocumentMut, Item, Table};
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| PluginError::Config(e.to_string()))?;
    let bad = |what: &str| PluginError::Config(format!("{what} in the configuration file is not a table"));
    let plugins = doc.entry("plugin").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    let plugins = plugins.as_table_mut().ok_or_else(|| bad("plugin"))?;
    let table = plugins.entry(plugin).or_insert_with(|| Item::Table(Table::new()));
    f(table.as_table_mut().ok_or_else(|| bad(&format!("plugin.{plugin}")))?)?;
    Ok(doc.to_string())
}

/// The configuration text with `[plugin.NAME]`'s limits set where `limits` gives them.
fn with_limits(text: &str, plugin: &str, limits: &LimitsChange) -> Result<String, PluginError> {
    if *limits == LimitsChange::default() {
        return Ok(text.to_owned());
    }
    use toml_edit::{Item, value};
    edit_plugin_table(text, plugin, |table| {
        for (key, v) in [("memory-mib", limits.memory_mib), ("timeout-ms", limits.timeout_ms)] {
            let Some(v) = v else { continue };
            let v = i64::try_from(v).map_err(|_| PluginError::Config(format!("{key} {v} is too large")))?;
            match table.get_mut(key).and_then(Item::as_value_mut) {
                // Keeps the comment after the value.
                Some(existing) => {
                    let decor = existing.decor().clone();
                    *existing = v.into();
                    *existing.decor_mut() = decor;
                }
                None => {
                    table.insert(key, value(v));
                }
            }
        }
        Ok(())
    })
}

fn pin(sha256: Option<String>, signed_by: &[String]) -> Result<Pin, String> {
    let sha256 = match sha256 {
        Some(h) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) => Some(h.to_ascii_lowercase()),
        Some(h) => return Err(format!("sha256 \"{h}\" is not 64 hex digits")),
        None => None,
    };
    let signed_by = signed_by
        .iter()
        .map(|k| PublicKey::parse(k))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("signed-by: {e}"))?;
    Ok(Pin { sha256, signed_by })
}

/// Whether limits given for a plugin are within what the file allows; why not.
pub fn check_limits(memory_mib: Option<u64>, timeout_ms: Option<u64>) -> Result<(), String> {
    limits(Limits::default(), memory_mib, timeout_ms).map(drop).map_err(|e| match e {
        PluginError::Config(m) => m,
        other => other.to_string(),
    })
}

fn limits(base: Limits, memory_mib: Option<u64>, timeout_ms: Option<u64>) -> Result<Limits, PluginError> {
    let memory_mib = memory_mib.unwrap_or(base.memory_mib);
    let max = super::host::MAX_MEMORY_MIB as u64;
    if !(1..=max).contains(&memory_mib) {
        return Err(PluginError::Config(format!("memory-mib must be 1..={max}, not {memory_mib}")));
    }
    let timeout = timeout_ms.map(Duration::from_millis).unwrap_or(base.timeout);
    if timeout.is_zero() || timeout > Duration::from_secs(3600) {
        return Err(PluginError::Config("timeout-ms must be 1..=3600000".into()));
    }
    Ok(Limits { memory_mib, timeout })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grants_and_limits() {
        let cfg = HostConfig::parse(
            "[plugin-host]\ndir = \"drivers\"\nmemory-mib = 32\n\n[plugin.kvm]\nlibvirt = [\"test:///default\"]\ntimeout-ms = 500\n",
            Path::new("/etc/ws"),
        )
        .unwrap();
        assert_eq!(cfg.dir, Path::new("/etc/ws/drivers"));
        let kvm = cfg.settings("kvm");
        assert_eq!(kvm.limits, Limits { memory_mib: 32, timeout: Duration::from_millis(500) });
        assert!(kvm.grants.allows_libvirt("test:///default"));
        assert!(!cfg.settings("other").grants.allows_libvirt("test:///default"));
    }

    #[test]
    fn the_folder_watch_can_be_slowed_or_turned_off() {
        let every = |text: &str| HostConfig::parse(text, Path::new("/")).unwrap().watch_interval();
        assert_eq!(every(""), Some(Duration::from_secs(1)));
        assert_eq!(every("[plugin-host]\nwatch-ms = 250\n"), Some(Duration::from_millis(250)));
        assert_eq!(every("[plugin-host]\nwatch-ms = 0\n"), None);
    }

    #[test]
    fn saved_grants_keep_the_rest_of_the_file() {
        let text = "# operator notes\n[plugin-host]\nmemory-mib = 32 # small\n\n[plugin.kvm]\n# the simulator\nlibvirt = [\"test:///default\"]\ntimeout-ms = 500\n";
        let grants =
            Grants::new(vec!["test:///default".into(), "qemu:///system".into()], vec![], vec!["ws-".into()]).unwrap();
        let out = with_grants(text, "kvm", &grants).unwrap();
        assert!(
            out.contains("# operator notes") && out.contains("# small") && out.contains("# the simulator"),
            "{out}"
        );
        let cfg = HostConfig::parse(&out, Path::new("/")).unwrap();
        assert_eq!(cfg.settings("kvm").grants, grants);
        assert_eq!(cfg.settings("kvm").limits.timeout, Duration::from_millis(500));
        let out = with_grants(&out, "kvm", &Grants::default()).unwrap();
        assert!(!out.contains("libvirt") && out.contains("timeout-ms = 500"), "{out}");
        let fresh = with_grants("", "nfs", &Grants::new(vec![], vec!["nfs://h/e".into()], vec![]).unwrap()).unwrap();
        assert_eq!(fresh.trim(), "[plugin.nfs]\nimages = [\"nfs://h/e\"]");
    }

    #[test]
    fn saved_limits_and_read_grants_keep_the_rest_of_the_file() {
        let text = "[plugin.nfs]\nimages = [\"nfs://h/p\"]\ntimeout-ms = 500 # slow server\n";
        let grants = Grants::new(vec![], vec!["nfs://h/p".into()], vec![])
            .unwrap()
            .with_images_read(vec!["nfs://h/store".into()])
            .unwrap();
        let change = LimitsChange { memory_mib: Some(96), timeout_ms: Some(9000) };
        let out = with_limits(&with_grants(text, "nfs", &grants).unwrap(), "nfs", &change).unwrap();
        assert!(out.contains("timeout-ms = 9000 # slow server"), "{out}");
        assert!(out.contains("images-read = [\"nfs://h/store\"]"), "{out}");
        let nfs = HostConfig::parse(&out, Path::new("/")).unwrap().settings("nfs");
        assert_eq!(nfs.grants, grants);
        assert_eq!(nfs.limits, Limits { memory_mib: 96, timeout: Duration::from_millis(9000) });
        let only_time = LimitsChange { timeout_ms: Some(10), ..Default::default() };
        let out = with_limits(&out, "nfs", &only_time).unwrap();
        assert!(out.contains("memory-mib = 96") && out.contains("timeout-ms = 10 # slow server"), "{out}");
    }

    #[test]
    fn downloads_may_reach_the_internal_sites_listed() {
        let cfg = HostConfig::parse(
            "[downloads]\nallowed-internal-sites = [\"10.1.2.0/24\", \"127.0.0.1:8000\"]\n",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(cfg.allowed_internal_sites, ["10.1.2.0/24".parse().unwrap(), "127.0.0.1:8000".parse().unwrap()]);
        assert!(HostConfig::parse("", Path::new("/")).unwrap().allowed_internal_sites.is_empty());
        let err =
            HostConfig::parse("[downloads]\nallowed-internal-sites = [\"10.1.2.5/24\"]\n", Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("[downloads] allowed-internal-sites: \"10.1.2.5/24\" has bits set"), "{err}");
        let err = HostConfig::parse("[downloads]\nallowed-sites = []\n", Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("allowed-sites"), "{err}");
    }

    #[test]
    fn leaves_the_servers_own_sections_alone() {
        let cfg = HostConfig::parse("[http]\nmax-connections = 5\n[login]\nlock-ms = 1\n", Path::new("/")).unwrap();
        assert!(cfg.plugins.is_empty());
    }

    #[test]
    fn a_plugin_can_be_pinned_to_a_content_hash_or_signers() {
        let key = "ed25519:".to_owned() + &"A".repeat(43) + "=";
        let text = format!("[plugin.kvm]\nsha256 = \"{}\"\nsigned-by = [\"{key}\"]\n[plugin.nfs]\n", "AB".repeat(32));
        let cfg = HostConfig::parse(&text, Path::new("/")).unwrap();
        let pin = cfg.pin("kvm");
        assert_eq!(pin.sha256.as_deref(), Some("ab".repeat(32).as_str()), "kept in lowercase");
        assert_eq!(pin.signed_by, vec![PublicKey::parse(&key).unwrap()]);
        assert_eq!(cfg.pin("nfs"), Pin::default());
        let err = HostConfig::parse("[plugin.kvm]\nsha256 = \"abc\"\n", Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("[plugin.kvm]: sha256 \"abc\" is not 64 hex digits"), "{err}");
        let err = HostConfig::parse("[plugin.kvm]\nsigned-by = [\"rsa:x\"]\n", Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("[plugin.kvm]: signed-by: \"rsa:x\" is not an ed25519"), "{err}");
        // Saving grants keeps the pins.
        let out = with_grants(&text, "kvm", &Grants::default()).unwrap();
        assert_eq!(HostConfig::parse(&out, Path::new("/")).unwrap().pin("kvm"), pin);
    }

    #[test]
    fn refuses_unknown_keys_and_bad_limits() {
        let err = HostConfig::parse("[plugin.kvm]\nlibvrit = []\n", Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("libvrit"), "{err}");
        let err = HostConfig::parse("[plugin-host]\ntrusted-keys = [\"rsa:x\"]\n", Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("trusted-keys: \"rsa:x\" is not an ed25519"), "{err}");
        let err = HostConfig::parse("[plugin-host]\nrequire-signature = true\n", Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("require-signature needs"), "{err}");
        let err = HostConfig::parse("[plugin.kvm]\nmemory-mib = 0\n", Path::new("/")).unwrap_err();
        assert_eq!(err.to_string(), "configuration: [plugin.kvm]: memory-mib must be 1..=1024, not 0");
    }
}
