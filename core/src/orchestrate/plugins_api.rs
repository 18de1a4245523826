//! The driver plugins over the API, for operators and the console: listPlugins (what
//! `wasmstack plugins list --json` shows), uploads (getUploadParamsForPlugin, then a POST of
//! the file to a one-use signed URL, as CloudStack uploads templates), updatePlugin (grants
//! and limits, saved in the server configuration file, which stays the one place they live)
//! and reloadPlugins (rereads that file, then rescans the folder).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::api::error::{ApiError, ErrorCode};
use crate::api::render::Reply;
use crate::api::request::PluginRequest;
use crate::auth::Caller;
use crate::plugins::{Capability, Grants, LimitsChange, LoadedPlugin, PluginError, ReloadEvent, signing};

use super::{Orchestrator, views};

/// Where upload parameters point: `UPLOAD_PATH/<id>`.
pub const UPLOAD_PATH: &str = "/client/upload/plugin";
/// The largest driver component accepted, in bytes.
pub const MAX_UPLOAD: usize = 64 << 20;

/// How long upload parameters last: ten minutes, or `WASMSTACK_PLUGIN_UPLOAD_SECS`.
fn upload_ttl() -> Duration {
    std::env::var("WASMSTACK_PLUGIN_UPLOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(600))
}

struct Upload {
    file_name: String,
    expires: SystemTime,
}

enum Slot {
    Fresh(Upload),
    /// Kept a while after use, to tell a replay from a forgery.
    Used(Instant),
}

/// Outstanding upload parameters (in memory: a restart voids them, as it should a
/// short-lived credential), and the lock that changes to plugins take.
pub struct PluginUploads {
    /// Signs upload parameters; new on every start.
    key: [u8; 32],
    slots: Mutex<HashMap<String, Slot>>,
    /// One upload or grant change at a time: each reads, then writes, shared state.
    changing: tokio::sync::Mutex<()>,
}

impl Default for PluginUploads {
    fn default() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        PluginUploads { key, slots: Mutex::new(HashMap::new()), changing: tokio::sync::Mutex::new(()) }
    }
}

/// Why an upload POST was refused before its file was looked at.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UploadRefusal {
    #[error("the upload signature does not match; ask getUploadParamsForPlugin for new parameters")]
    BadSignature,
    #[error("unknown upload; ask getUploadParamsForPlugin for new parameters")]
    Unknown,
    #[error("these upload parameters were already used; ask getUploadParamsForPlugin for new ones")]
    Used,
    #[error("these upload parameters expired; ask getUploadParamsForPlugin for new ones")]
    Expired,
}

impl From<UploadRefusal> for ApiError {
    fn from(r: UploadRefusal) -> Self {
        ApiError::new(ErrorCode::Unauthorized, None, r.to_string())
    }
}

impl PluginUploads {
    fn sign(&self, metadata: &str, post_url: &str, expires: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts any key");
        mac.update(metadata.as_bytes());
        mac.update(post_url.as_bytes());
        mac.update(expires.as_bytes());
        mac
    }

    /// New parameters for uploading `file_name`: (id, postURL, metadata, expires, signature).
    fn issue(&self, file_name: &str) -> [String; 5] {
        let id = crate::db::new_uuid();
        let post_url = format!("{UPLOAD_PATH}/{id}");
        let expires_at = SystemTime::now() + upload_ttl();
        let expires = date(expires_at);
        let metadata = URL_SAFE_NO_PAD.encode(json!({ "id": id, "name": file_name }).to_string());
        let signature = STANDARD.encode(self.sign(&metadata, &post_url, &expires).finalize().into_bytes());
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        // Forget what can no longer matter, so the map stays as small as the live uploads.
        let keep = upload_ttl() * 2;
        slots.retain(|_, s| match s {
            Slot::Fresh(u) => u.expires + keep > SystemTime::now(),
            Slot::Used(at) => at.elapsed() < keep,
        });
        slots.insert(id.clone(), Slot::Fresh(Upload { file_name: file_name.to_owned(), expires: expires_at }));
        [id, post_url, metadata, expires, signature]
    }

    /// Spends the upload `id` if the headers are the ones issued for it: the file name to write.
    /// A good signature spends it whatever follows, so it serves one POST only.
    fn redeem(&self, id: &str, signature: &str, expires: &str, metadata: &str) -> Result<String, UploadRefusal> {
        let post_url = format!("{UPLOAD_PATH}/{id}");
        let given = STANDARD.decode(signature.trim()).map_err(|_| UploadRefusal::BadSignature)?;
        self.sign(metadata, &post_url, expires).verify_slice(&given).map_err(|_| UploadRefusal::BadSignature)?;
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.insert(id.to_owned(), Slot::Used(Instant::now())) {
            None => {
                slots.remove(id);
                Err(UploadRefusal::Unknown)
            }
            Some(Slot::Used(at)) => {
                slots.insert(id.to_owned(), Slot::Used(at));
                Err(UploadRefusal::Used)
            }
            Some(Slot::Fresh(u)) if u.expires < SystemTime::now() => Err(UploadRefusal::Expired),
            Some(Slot::Fresh(u)) => Ok(u.file_name),
        }
    }
}

/// A name for a file in the plugin folder: `NAME.wasm`, NAME a plugin name (1-32 lowercase letters,
/// digits and dashes), since a plugin's file name is its name.
fn check_file_name(name: &str) -> Result<&str, ApiError> {
    match name.strip_suffix(".wasm") {
        Some(stem) if crate::plugins::scaffold::valid_name(stem) => Ok(stem),
        _ => Err(ApiError::invalid_param(format!(
            "Invalid plugin file name {name:?}: a plugin's file is its name and .wasm, the name 1-32 lowercase \
             letters, digits and dashes starting with a letter (kvm.wasm holds the driver kvm)"
        ))),
    }
}

/// A capability as listPlugins prints it ("libvirt URI", "images URL", "images-read URL",
/// "netdev PREFIX*").
fn parse_capability(text: &str) -> Result<Capability, String> {
    let text = text.trim();
    let Some((kind, scope)) = text.split_once(' ') else {
        return Err(format!("capability \"{text}\" is not \"libvirt|images|images-read|netdev SCOPE\""));
    };
    let scope = scope.trim().to_owned();
    let cap = match kind {
        "libvirt" => Capability::Libvirt(scope),
        "images" => Capability::Images(scope),
        "images-read" => Capability::ImagesRead(scope),
        "netdev" => Capability::Netdev(scope.strip_suffix('*').unwrap_or(&scope).to_owned()),
        other => {
            return Err(format!(
                "unknown capability \"{other}\" in \"{text}\"; use libvirt, images, images-read or netdev"
            ));
        }
    };
    // The grant parser checks the scope and puts it in the form grants keep.
    Ok(grants_of(vec![cap])?.capabilities().remove(0))
}

fn grants_of(caps: Vec<Capability>) -> Result<Grants, String> {
    let (mut l, mut i, mut r, mut n) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for cap in caps {
        match cap {
            Capability::Libvirt(p) => l.push(p),
            Capability::Images(p) => i.push(p),
            Capability::ImagesRead(p) => r.push(p),
            Capability::Netdev(p) => n.push(p),
            Capability::Endpoint(p) => return Err(format!("endpoint grants are not supported yet: \"{p}\"")),
        }
    }
    Grants::new(l, i, n)?.with_images_read(r)
}

/// The 431 for a configuration file that was not applied.
fn not_applied(e: PluginError) -> ApiError {
    match e {
        PluginError::Config(m) => ApiError::invalid_param(m),
        other => ApiError::internal(format!("Could not reread the server configuration file: {other}")),
    }
}

/// How many of a driver's latest load refusals are shown.
const ERRORS_SHOWN: usize = 5;

fn date(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    crate::db::format_time(ms)
}

/// The file's name only: the plugin folder's place on the machine is the operator's business.
fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn errors<'a>(events: impl Iterator<Item = &'a ReloadEvent>) -> Vec<Value> {
    let mut refused: Vec<_> = events.filter(|e| !e.loaded).collect();
    refused.sort_by_key(|e| std::cmp::Reverse(e.at));
    refused
        .into_iter()
        .take(ERRORS_SHOWN)
        .map(|e| json!({ "file": file_name(&e.file), "at": date(e.at), "message": e.message }))
        .collect()
}

fn describe(p: &LoadedPlugin, events: &[ReloadEvent]) -> Map<String, Value> {
    let strings = |caps: Vec<crate::plugins::Capability>| caps.iter().map(ToString::to_string).collect::<Vec<_>>();
    let mine = events.iter().filter(|e| e.plugin.as_deref() == Some(p.info.name.as_str()) || e.file == p.file);
    views::object(json!({
        "name": p.info.name,
        "state": "Loaded",
        "version": p.info.version,
        "kind": p.info.kind,
        "description": p.info.description,
        "wit": p.wit_version_label(),
        "file": file_name(&p.file),
        "sha256": p.sha256,
        "loaded": date(p.loaded_at),
        "asks": strings(p.info.capabilities.clone()),
        "granted": strings(p.settings.grants.capabilities()),
        "missing": strings(p.missing_grants()),
        "memorymib": p.settings.limits.memory_mib,
        "timeoutms": p.settings.limits.timeout.as_millis() as u64,
        "configschema": p.info.config_schema,
        "errors": errors(mine),
    }))
}

impl Orchestrator {
    /// listPlugins: the loaded drivers, then the files still in the folder that were refused
    /// and are not in use.
    pub(super) fn list_plugins(&self, name: Option<&str>, page: Option<(u32, u32)>) -> Reply {
        let events = self.plugins.events();
        let loaded = self.plugins.list();
        let mut items: Vec<Map<String, Value>> =
            loaded.iter().filter(|p| name.is_none_or(|n| n == p.info.name)).map(|p| describe(p, &events)).collect();
        // A file whose latest load failed and that no loaded driver comes from.
        let mut files: Vec<&Path> = events.iter().map(|e| e.file.as_path()).collect();
        files.sort();
        files.dedup();
        for file in files {
            let latest = events.iter().filter(|e| e.file == file).max_by_key(|e| e.at);
            let Some(latest) = latest else { continue };
            // A file taken out of the folder is no longer the operator's concern.
            if latest.loaded || loaded.iter().any(|p| p.file == file) || !file.exists() {
                continue;
            }
            let who = latest.plugin.clone().unwrap_or_else(|| file_name(file));
            if name.is_some_and(|n| n != who) {
                continue;
            }
            items.push(views::object(json!({
                "name": who,
                "state": "Refused",
                "file": file_name(file),
                "errors": errors(events.iter().filter(|e| e.file == file)),
            })));
        }
        let total = items.len() as i64;
        if let Some((page, size)) = page {
            let skip = (page.max(1) as usize - 1) * size as usize;
            items = items.into_iter().skip(skip).take(size as usize).collect();
        }
        super::list("plugin", total, items)
    }
}

impl Orchestrator {
    /// Runs one plugin management command.
    pub(super) async fn execute_plugin(&self, caller: &Caller, request: PluginRequest) -> Result<Reply, ApiError> {
        match request {
            PluginRequest::GetUploadParams { file_name } => {
                check_file_name(&file_name)?;
                let [id, post_url, metadata, expires, signature] = self.plugin_uploads.issue(&file_name);
                tracing::info!("{} may upload plugin file {file_name} until {expires}", caller.user.username);
                Ok(super::object(
                    "getuploadparams",
                    views::object(json!({
                        "id": id,
                        "postURL": post_url,
                        "metadata": metadata,
                        "expires": expires,
                        "signature": signature,
                    })),
                ))
            }
            PluginRequest::Update { name, grant, revoke, memory_mib, timeout_ms } => {
                let limits = check_limits(memory_mib, timeout_ms)?;
                Box::pin(self.update_plugin(&name, &grant, &revoke, limits)).await
            }
            PluginRequest::Reload => {
                let host = self.plugins.clone();
                // The file first, so that files loaded by the scan get its settings; a file that
                // does not read stops here, with nothing changed.
                tokio::task::spawn_blocking(move || host.reload_config().map(|_| host.scan()))
                    .await
                    .map_err(|e| ApiError::internal(format!("rescanning the plugin folder crashed: {e}")))?
                    .map_err(not_applied)?;
                Ok(self.list_plugins(None, None))
            }
        }
    }

    /// updatePlugin: the new grants and limits are saved in the configuration file first, then
    /// the file is reread, so that the file and what is in effect never disagree; on any error
    /// nothing changes.
    async fn update_plugin(
        &self,
        name: &str,
        grant: &[String],
        revoke: &[String],
        limits: LimitsChange,
    ) -> Result<Reply, ApiError> {
        let _one_at_a_time = self.plugin_uploads.changing.lock().await;
        let plugin = self
            .plugins
            .get(name)
            .ok_or_else(|| ApiError::invalid_param(format!("No plugin named {name} is loaded")))?;
        let parse = |list: &[String]| -> Result<Vec<Capability>, ApiError> {
            list.iter().map(|c| parse_capability(c).map_err(ApiError::invalid_param)).collect()
        };
        let (grant, revoke) = (parse(grant)?, parse(revoke)?);
        let mut caps = plugin.settings.grants.capabilities();
        for cap in &revoke {
            if !caps.contains(cap) {
                return Err(ApiError::invalid_param(format!("Plugin {name} has no grant \"{cap}\" to revoke")));
            }
            caps.retain(|c| c != cap);
        }
        for cap in grant {
            if !caps.contains(&cap) {
                caps.push(cap);
            }
        }
        let grants = grants_of(caps).map_err(ApiError::invalid_param)?;
        let file = self.plugins.config_file().ok_or_else(|| {
            ApiError::internal("This server has no configuration file to keep grants in; edit the grants there")
        })?;
        let host = self.plugins.clone();
        let plugin_name = name.to_owned();
        let saved = tokio::task::spawn_blocking(move || save_and_apply(&host, &file, &plugin_name, &grants, &limits))
            .await
            .map_err(|e| ApiError::internal(format!("saving the plugin's settings crashed: {e}")))?;
        saved?;
        tracing::info!(
            "plugin {name}: grants now {:?}, limits {:?}",
            self.plugins.get(name).map(|p| p.settings.grants.capabilities()),
            self.plugins.get(name).map(|p| p.settings.limits)
        );
        let plugin = self.plugins.get(name).ok_or_else(|| no_plugin(name))?;
        Ok(super::object("plugin", describe(&plugin, &self.plugins.events())))
    }

    /// Checks an upload POST's signed headers and spends its parameters: the file name to write.
    pub fn redeem_plugin_upload(
        &self,
        id: &str,
        signature: &str,
        expires: &str,
        metadata: &str,
    ) -> Result<String, UploadRefusal> {
        self.plugin_uploads.redeem(id, signature, expires, metadata)
    }

    /// Puts an uploaded component into the plugin folder if it loads: it is validated as a
    /// hidden temporary file, renamed into place (the folder never holds a partial or refused
    /// `.wasm`), and the folder is scanned so it is in use at once. The reply: the plugin as
    /// listPlugins shows it, or the loader's refusal (431) with nothing left behind.
    pub async fn install_plugin_upload(
        &self,
        file_name: &str,
        bytes: Vec<u8>,
        signature: Option<Vec<u8>>,
    ) -> Result<Reply, ApiError> {
        if bytes.len() > MAX_UPLOAD {
            return Err(too_large());
        }
        let _one_at_a_time = self.plugin_uploads.changing.lock().await;
        let host = self.plugins.clone();
        let name = file_name.to_owned();
        let installed = tokio::task::spawn_blocking(move || install(&host, &name, &bytes, signature.as_deref()))
            .await
            .map_err(|e| ApiError::internal(format!("installing the plugin crashed: {e}")))??;
        let plugin = self.plugins.get(&installed).ok_or_else(|| no_plugin(&installed))?;
        Ok(super::object("plugin", describe(&plugin, &self.plugins.events())))
    }
}

/// Writes a plugin's settings into the configuration file and rereads it.
fn save_and_apply(
    host: &crate::plugins::PluginHost,
    file: &Path,
    name: &str,
    grants: &Grants,
    limits: &LimitsChange,
) -> Result<(), ApiError> {
    // A file edited by hand and not valid yet is not written over: its author hears why.
    host.reload_config().map_err(not_applied)?;
    crate::plugins::save_plugin(file, name, grants, limits).map_err(|e| {
        tracing::error!("saving the settings of plugin {name}: {e}");
        ApiError::internal("Could not save the plugin's settings in the server configuration file")
    })?;
    host.reload_config().map_err(not_applied)?;
    Ok(())
}

/// The limits updatePlugin was given, checked as the configuration file checks them.
fn check_limits(memory_mib: Option<i64>, timeout_ms: Option<i64>) -> Result<LimitsChange, ApiError> {
    let positive = |name: &str, v: Option<i64>| -> Result<Option<u64>, ApiError> {
        v.map(|v| {
            u64::try_from(v).map_err(|_| ApiError::invalid_param(format!("Invalid {name} {v}: must be positive")))
        })
        .transpose()
    };
    let change =
        LimitsChange { memory_mib: positive("memorymib", memory_mib)?, timeout_ms: positive("timeoutms", timeout_ms)? };
    crate::plugins::check_limits(change.memory_mib, change.timeout_ms).map_err(|m| {
        ApiError::invalid_param(format!(
            "Invalid limits: {}",
            m.replace("memory-mib", "memorymib").replace("timeout-ms", "timeoutms")
        ))
    })?;
    Ok(change)
}

/// The 431 for a file over `MAX_UPLOAD`.
pub fn too_large() -> ApiError {
    ApiError::invalid_param(format!("The plugin file is larger than the limit of {} MiB", MAX_UPLOAD >> 20))
}

fn no_plugin(name: &str) -> ApiError {
    ApiError::invalid_param(format!("No plugin named {name} is loaded"))
}

/// The blocking part of an upload: the name of the plugin now loaded from `file_name`.
fn install(
    host: &crate::plugins::PluginHost,
    file_name: &str,
    bytes: &[u8],
    signature: Option<&[u8]>,
) -> Result<String, ApiError> {
    let dir = host.dir();
    let failed = |e: std::io::Error| {
        tracing::error!("writing an uploaded plugin into {}: {e}", dir.display());
        ApiError::internal("Could not write the plugin file into the plugin folder")
    };
    // Not `.wasm`, so the watcher never picks it up; removed when dropped.
    let mut tmp = tempfile::Builder::new().prefix(".upload-").suffix(".part").tempfile_in(&dir).map_err(failed)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(failed)?;
    tmp.as_file().sync_all().map_err(failed)?;
    // The signature goes beside the file under check, as the loader looks for it.
    let sig_tmp = match signature {
        Some(sig) => {
            let path = signing::signature_path(tmp.path());
            std::fs::write(&path, sig).map_err(failed)?;
            Some(tempfile::TempPath::try_from_path(path).map_err(failed)?)
        }
        None => None,
    };
    // The loader names the file it read, which is the temporary one: say the uploaded name.
    let tmp_name = self::file_name(tmp.path());
    let refused = |reason: String| {
        let reason = reason.replace(&tmp_name, file_name);
        ApiError::invalid_param(format!("The plugin {file_name} was refused: {reason}"))
    };
    // Validated as the plugin the operator named: its describe() must give that name, and
    // only then may it replace the file of that name (a new version of the same driver).
    let name = check_file_name(file_name)?;
    let loaded = host.load_as(tmp.path(), name).map_err(|e| match e {
        PluginError::Invalid { reason, .. } => refused(reason),
        other => refused(other.to_string()),
    })?;
    let target: PathBuf = dir.join(file_name);
    let name = loaded.info.name.clone();
    // The signature first: the watcher may see the file at once, and must find it signed.
    if let Some(sig) = sig_tmp {
        sig.persist(signing::signature_path(&target)).map_err(|e| failed(e.error))?;
    }
    tmp.persist(&target).map_err(|e| failed(e.error))?;
    // Waits for this file only: another one still being validated must not hold up the reply.
    let events = host.scan_file(&target);
    match host.get(&name) {
        Some(p) if p.file == target && p.sha256 == loaded.sha256 => Ok(name),
        _ => {
            // Refused after all (the folder changed meanwhile): take the file away again.
            let why = events
                .iter()
                .rev()
                .find(|e| e.file == target && !e.loaded)
                .map_or_else(|| "it was not loaded".to_owned(), |e| e.message.clone());
            let _ = std::fs::remove_file(&target);
            let _ = std::fs::remove_file(signing::signature_path(&target));
            host.scan_file(&target);
            Err(refused(why))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_parameters_work_once_and_only_as_signed() {
        let u = PluginUploads::default();
        let [id, post_url, metadata, expires, signature] = u.issue("x.wasm");
        assert_eq!(post_url, format!("{UPLOAD_PATH}/{id}"));
        assert_eq!(u.redeem(&id, &signature, &expires, "bogus"), Err(UploadRefusal::BadSignature));
        assert_eq!(u.redeem(&id, "AAAA", &expires, &metadata), Err(UploadRefusal::BadSignature));
        assert_eq!(u.redeem(&id, &signature, &expires, &metadata).unwrap(), "x.wasm");
        assert_eq!(u.redeem(&id, &signature, &expires, &metadata), Err(UploadRefusal::Used));
        let other = PluginUploads::default();
        assert_eq!(other.redeem(&id, &signature, &expires, &metadata), Err(UploadRefusal::BadSignature));
    }

    #[test]
    fn expired_upload_parameters_are_refused() {
        let u = PluginUploads::default();
        let [id, _, metadata, expires, signature] = u.issue("x.wasm");
        if let Some(Slot::Fresh(up)) = u.slots.lock().unwrap().get_mut(&id) {
            up.expires = SystemTime::now() - Duration::from_secs(1);
        }
        assert_eq!(u.redeem(&id, &signature, &expires, &metadata), Err(UploadRefusal::Expired));
    }

    #[test]
    fn file_names_and_capabilities() {
        assert_eq!(check_file_name("kvm.wasm").unwrap(), "kvm");
        assert_eq!(check_file_name("my-driver2.wasm").unwrap(), "my-driver2");
        for bad in [
            "kvm",
            ".wasm",
            "../kvm.wasm",
            "a/b.wasm",
            ".hidden.wasm",
            "k vm.wasm",
            "kvm.wasm.sig",
            "KVM.wasm",
            "my_driver-2.0.wasm",
            "2kvm.wasm",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_capability("libvirt test:///default").unwrap(), Capability::Libvirt("test:///default".into()));
        assert_eq!(parse_capability("netdev ws-br*").unwrap(), Capability::Netdev("ws-br".into()));
        assert_eq!(parse_capability(" images nfs://h/e/ ").unwrap(), Capability::Images("nfs://h/e".into()));
        assert!(parse_capability("libvirt nope").unwrap_err().contains("is not a URI pattern"));
        assert!(parse_capability("disk /dev/sda").unwrap_err().contains("unknown capability"));
        assert!(parse_capability("libvirt").unwrap_err().contains("is not"));
    }
}
