//! listPlugins: what `wasmstack plugins list --json` shows, over the API for the console.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::api::render::Reply;
use crate::plugins::{LoadedPlugin, ReloadEvent};

use super::{Orchestrator, views};

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
        "errors": errors(mine),
    }))
}

impl Orchestrator {
    /// listPlugins: the loaded drivers, then the files that were refused and are not in use.
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
            if latest.loaded || loaded.iter().any(|p| p.file == file) {
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
