//! Templates and ISOs: registered from an http(s) URL into an image store of each zone
//! by the store's storage driver (in the background, with progress and a digest check:
//! MD5, SHA-1, SHA-256 or SHA-512), listed with CloudStack's filters, copied once to a
//! primary pool when a volume needs them, and deleted from everywhere they were copied.

use serde_json::json;

use crate::api::commands::Command;
use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{NewTemplateRequest, TemplateFromVolume, TemplateQuery, TemplateRequest};
use crate::auth::{Caller, RoleType};
use crate::checksum::Checksum;
use crate::cloud::infra::ZoneRow;
use crate::cloud::storage::{PoolRow, StorageFilter};
use crate::cloud::templates::{self, NewTemplate, TemplateFilter, TemplateRow};
use crate::cloud::{infra, offerings, storage, volumes};
use crate::db::{DbError, format_time, new_uuid};
use crate::jobs::JobSpec;
use crate::plugins::DiskFormat;

use super::{Orchestrator, list, no_such, not_yours, views};

/// A checksum in any form CloudStack takes (see `crate::checksum`), in the canonical text
/// that is stored and handed to the storage driver.
fn parse_checksum(text: &str) -> Result<String, ApiError> {
    let c: Checksum =
        text.parse().map_err(|e| ApiError::invalid_param(format!("Invalid value of parameter checksum: {e}")))?;
    Ok(c.to_string())
}

fn disk_format(format: &str) -> DiskFormat {
    match format {
        "QCOW2" => DiskFormat::Qcow2,
        "RAW" => DiskFormat::Raw,
        _ => DiskFormat::Iso,
    }
}

/// The name a template's file has in its store: unique per template and zone.
fn file_name(t: &TemplateRow) -> String {
    format!("{}-{}", t.uuid, t.zone_id)
}

impl Orchestrator {
    /// Runs one template or ISO command.
    pub(super) async fn execute_template(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        request: TemplateRequest,
    ) -> Result<Reply, ApiError> {
        use TemplateRequest::*;
        match request {
            RegisterTemplate(r) => Box::pin(self.register_template(caller, r)).await,
            CreateTemplate(r) => Box::pin(self.create_template(caller, cmd, r)).await,
            ListTemplates(q) => Box::pin(self.list_templates(caller, q)).await,
            DeleteTemplate { iso, id, zone_id } => {
                Box::pin(self.delete_template(caller, cmd, iso, &id, zone_id.as_deref())).await
            }
            UpdateTemplate { id, name, display_text, password_enabled } => {
                Box::pin(self.update_template(caller, &id, name, display_text, password_enabled)).await
            }
        }
    }

    /// updateTemplate: the name, display text and password flag of every zone's copy.
    async fn update_template(
        &self,
        caller: &Caller,
        id: &str,
        name: Option<String>,
        display_text: Option<String>,
        password_enabled: Option<bool>,
    ) -> Result<Reply, ApiError> {
        let rows = templates::by_uuid(&self.db, id, false).await?;
        let first = rows.first().ok_or_else(|| no_such("template", id))?.clone();
        if !caller.can_reach(&first) || (caller.role == RoleType::User && first.account_id != caller.user.account_id) {
            return Err(not_yours("template", id));
        }
        if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(ApiError::invalid_param("The template name cannot be empty"));
        }
        templates::update(&self.db, id, name.as_deref(), display_text.as_deref(), password_enabled).await?;
        self.audit(
            caller,
            "TEMPLATE.UPDATE",
            ("VirtualMachineTemplate", &first.uuid, &first.name),
            format!("Template {} updated", first.name),
        )
        .await?;
        let rows = templates::by_uuid(&self.db, id, false).await?;
        let t = rows.first().ok_or_else(|| no_such("template", id))?;
        Ok(super::object("template", self.template_view(caller, t)))
    }

    pub(super) async fn register_template(&self, caller: &Caller, r: NewTemplateRequest) -> Result<Reply, ApiError> {
        let what = if r.iso { "ISO" } else { "template" };
        if r.name.trim().is_empty() {
            return Err(ApiError::invalid_param(format!("The {what} name cannot be empty")));
        }
        let lower = r.url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) || r.url.len() < 10 {
            return Err(ApiError::invalid_param(format!(
                "Invalid value of parameter url: {}; give an http:// or https:// URL",
                r.url
            )));
        }
        // The host is resolved and its addresses checked, nothing connected to: a refusal says
        // what kind of address the host is, never whether anything listens there. The download
        // checks again, for every redirect too, and connects only to what it checked.
        if let Err(refusal) = self.plugins.downloads().check(&r.url).await {
            return Err(ApiError::invalid_param(refusal.sentence()));
        }
        let (format, hypervisor) = if r.iso {
            ("ISO".to_owned(), "None".to_owned())
        } else {
            let format = r.format.as_deref().unwrap_or_default().to_ascii_uppercase();
            if !["QCOW2", "RAW"].contains(&format.as_str()) {
                return Err(ApiError::invalid_param(format!(
                    "Invalid value of parameter format: {}; templates are QCOW2 or RAW",
                    r.format.as_deref().unwrap_or_default()
                )));
            }
            let h = r.hypervisor.as_deref().unwrap_or_default();
            let (_, served) = self.hypervisor_serving("hypervisor", h)?;
            (format, served.name)
        };
        let checksum = r.checksum.as_deref().filter(|c| !c.is_empty()).map(parse_checksum).transpose()?;
        if r.is_featured && caller.role != RoleType::Admin {
            return Err(ApiError::permission_denied(format!("Only administrators can mark a {what} featured")));
        }
        let os_type_id = match &r.os_type_id {
            Some(id) => {
                let f = offerings::OfferingFilter { uuid: Some(id.clone()), ..Default::default() };
                Some(
                    offerings::list_os_types(&self.db, &f, None)
                        .await?
                        .0
                        .into_iter()
                        .next()
                        .ok_or_else(|| no_such("OS type", id))?
                        .id,
                )
            }
            None => None,
        };
        let zones = self.template_zones(&r.zones).await?;
        let uuid = new_uuid();
        let mut rows = Vec::new();
        // Every zone's row and the event are committed together, and only then do the
        // downloads start: a refused write leaves nothing behind.
        let mut tx = self.db.begin().await.map_err(DbError::from)?;
        for (zone_id, store_id) in zones {
            let new = NewTemplate {
                uuid: uuid.clone(),
                name: r.name.clone(),
                display_text: r.display_text.clone().unwrap_or_else(|| r.name.clone()),
                format: format.clone(),
                is_iso: r.iso,
                hypervisor: hypervisor.clone(),
                os_type_id,
                account_id: caller.user.account_id,
                is_public: r.is_public.unwrap_or(false),
                is_featured: r.is_featured,
                is_extractable: r.is_extractable,
                password_enabled: r.password_enabled,
                bootable: r.iso && r.bootable,
                url: r.url.clone(),
                checksum: checksum.clone(),
                zone_id,
                store_id,
            };
            templates::create(&mut tx, &new).await?;
        }
        let kind = if r.iso { "ISO.CREATE" } else { "TEMPLATE.CREATE" };
        Self::audit_in(
            &mut tx,
            caller,
            kind,
            (if r.iso { "Iso" } else { "Template" }, &uuid, &r.name),
            format!("{what} {} registered from {}", r.name, r.url),
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
        for row in templates::by_uuid(&self.db, &uuid, r.iso).await? {
            self.download(caller, row.clone());
            rows.push(row);
        }
        let object = if r.iso { "iso" } else { "template" };
        let items = rows.iter().map(|t| self.template_view(caller, t)).collect();
        Ok(list(object, rows.len() as i64, items))
    }

    pub(super) async fn create_template(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        r: TemplateFromVolume,
    ) -> Result<Reply, ApiError> {
        if r.name.trim().is_empty() {
            return Err(ApiError::invalid_param("The template name cannot be empty"));
        }
        if r.is_featured && caller.role != RoleType::Admin {
            return Err(ApiError::permission_denied("Only administrators can mark a template featured"));
        }
        // The source: a volume's current state, or one of its snapshots (named in the
        // qcow2 file by the snapshot's UUID).
        let (volume, snapshot) = match (&r.snapshot_id, &r.volume_id) {
            (Some(s), _) => {
                let snap = volumes::snapshot(&self.db, s).await?.ok_or_else(|| no_such("snapshot", s))?;
                if !caller.can_reach(&snap) {
                    return Err(not_yours("snapshot", s));
                }
                (self.volume_for(caller, &snap.volume_uuid).await?, Some(snap.uuid))
            }
            (None, Some(v)) => (self.volume_for(caller, v).await?, None),
            (None, None) => return Err(ApiError::invalid_param("Give snapshotid or volumeid")),
        };
        let os_type_id = match &r.os_type_id {
            Some(id) => {
                let f = offerings::OfferingFilter { uuid: Some(id.clone()), ..Default::default() };
                Some(
                    offerings::list_os_types(&self.db, &f, None)
                        .await?
                        .0
                        .into_iter()
                        .next()
                        .ok_or_else(|| no_such("OS type", id))?
                        .id,
                )
            }
            None => None,
        };
        let [(zone_id, store_id)] = self.template_zones(std::slice::from_ref(&volume.zone_uuid)).await?[..] else {
            return Err(ApiError::internal("one zone gave several stores"));
        };
        // The template runs where the volume's pool serves.
        let hypervisor = volume.pool_hypervisor.clone().ok_or_else(|| {
            ApiError::invalid_param(format!(
                "Storage pool {} of volume {} has no hypervisor type",
                volume.pool_name, volume.name
            ))
        })?;
        let uuid = new_uuid();
        let source = match &snapshot {
            Some(s) => format!("snapshot:{s}"),
            None => format!("volume:{}", volume.uuid),
        };
        let new = NewTemplate {
            uuid: uuid.clone(),
            name: r.name.clone(),
            display_text: r.display_text.clone().unwrap_or_else(|| r.name.clone()),
            format: "QCOW2".into(),
            is_iso: false,
            hypervisor,
            os_type_id,
            account_id: caller.user.account_id,
            is_public: r.is_public,
            is_featured: r.is_featured,
            is_extractable: false,
            password_enabled: r.password_enabled,
            bootable: false,
            url: source,
            checksum: None,
            zone_id,
            store_id,
        };
        let spec = JobSpec {
            cmd: "org.apache.cloudstack.api.command.user.template.CreateTemplateCmd",
            command: cmd.name,
            instance: Some(("Template", uuid.clone())),
        };
        // The row and its job are committed together, or neither is.
        let mut tx = self.db.begin().await.map_err(DbError::from)?;
        let row_id = templates::create(&mut tx, &new).await?;
        sqlx::query("UPDATE templates SET status = 'Creating' WHERE id = $1")
            .bind(row_id)
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?;
        let job = self.jobs.record(&mut tx, caller, spec).await?;
        tx.commit().await.map_err(DbError::from)?;
        let me = self.clone();
        let who = caller.clone();
        let row_uuid = uuid.clone();
        let job = self.jobs.start(job, async move {
            let row = templates::by_uuid(&me.db, &row_uuid, false).await.map_err(ApiError::from)?;
            let row = row.into_iter().next().ok_or_else(|| ApiError::internal("the new template is gone"))?;
            let (pool, path, store, name) =
                (volume.pool_url.clone(), volume.path.clone(), row.store_url.clone(), file_name(&row));
            let what = format!("Creating template {} from volume {}", row.name, volume.name);
            let made = me
                .on_driver(&volume.pool_driver, what, move |d| {
                    d.export_image(&pool, &path, snapshot.as_deref(), &store, &name)
                })
                .await;
            let made = match made {
                Ok(v) => v,
                Err(e) => {
                    // Nothing half-made: the driver removed its partial copy; the row goes too.
                    if let Err(d) = templates::remove(&me.db, row.id).await {
                        tracing::error!("removing a failed template: {d}");
                    }
                    return Err(e);
                }
            };
            let done = (made.path, made.virtual_size as i64, made.physical_size as i64);
            templates::finish(&me.db, row.id, Ok(done)).await.map_err(ApiError::from)?;
            me.audit(
                &who,
                "TEMPLATE.CREATE",
                ("Template", &row.uuid, &row.name),
                format!("Template {} created from volume {}", row.name, volume.name),
            )
            .await
            .map_err(ApiError::from)?;
            let fresh = templates::by_uuid(&me.db, &row.uuid, false).await.map_err(ApiError::from)?;
            let fresh = fresh.into_iter().next().ok_or_else(|| ApiError::internal("the new template is gone"))?;
            let mut out = serde_json::Map::new();
            out.insert("template".into(), serde_json::Value::Object(me.template_view(&who, &fresh)));
            Ok(out)
        });
        Ok(Reply::AsyncJob { job_id: job, id: Some(uuid) })
    }

    /// The zones to register in, each with the image store that will hold the copy.
    async fn template_zones(&self, requested: &[String]) -> Result<Vec<(i64, i64)>, ApiError> {
        let (stores, _) = storage::list_stores(&self.db, &StorageFilter::default(), None).await?;
        let store_for = |zone_id: i64| {
            stores
                .iter()
                .find(|s| s.zone_id == Some(zone_id))
                .or_else(|| stores.iter().find(|s| s.zone_id.is_none()))
                .map(|s| s.id)
        };
        if requested.is_empty() {
            return Err(ApiError::missing_param("registertemplate", "zoneid"));
        }
        let mut out = Vec::new();
        if requested.iter().any(|z| z == "-1") {
            let (zones, _) = infra::list_zones(&self.db, &Default::default(), None).await?;
            out.extend(zones.iter().filter_map(|z| store_for(z.id).map(|s| (z.id, s))));
            if out.is_empty() {
                return Err(ApiError::invalid_param("No zone has an image store; add one with addImageStore"));
            }
            return Ok(out);
        }
        for id in requested {
            if !crate::api::params::is_uuid(id) {
                return Err(ApiError::invalid_param(format!("Invalid value of parameter zoneid: {id}")));
            }
            let zone = infra::zone(&self.db, id).await?.ok_or_else(|| no_such("zone", id))?;
            let store = store_for(zone.id).ok_or_else(|| {
                ApiError::invalid_param(format!("Zone {} has no image store; add one with addImageStore", zone.name))
            })?;
            out.push((zone.id, store));
        }
        Ok(out)
    }

    /// Downloads a template into its store in the background and records the outcome.
    fn download(&self, caller: &Caller, t: TemplateRow) {
        let me = self.clone();
        let who = caller.clone();
        tokio::spawn(async move {
            let outcome = match me.plugins.storage(&t.store_driver) {
                Err(e) => Err(e.to_string()),
                Ok(driver) => {
                    let (store, url, name, format, sum) =
                        (t.store_url.clone(), t.url.clone(), file_name(&t), disk_format(&t.format), t.checksum.clone());
                    match tokio::task::spawn_blocking(move || {
                        driver.register_image(&store, &url, &name, format, sum.as_deref())
                    })
                    .await
                    {
                        Ok(Ok(v)) => Ok((v.path, v.virtual_size as i64, v.physical_size as i64)),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(e) => Err(format!("the download crashed: {e}")),
                    }
                }
            };
            let failed = outcome.as_ref().err().cloned();
            if let Err(e) = templates::finish(&me.db, t.id, outcome).await {
                tracing::error!("recording the download of {}: {e}", t.name);
            }
            let (kind, text) = match failed {
                None => ("TEMPLATE.DOWNLOAD.SUCCESS", format!("{} is ready in zone {}", t.name, t.zone_name)),
                Some(why) => ("TEMPLATE.DOWNLOAD.FAILED", format!("{} could not be downloaded: {why}", t.name)),
            };
            if let Err(e) = me.audit(&who, kind, ("Template", &t.uuid, &t.name), text).await {
                tracing::error!("recording an event: {e}");
            }
        });
    }

    pub(super) async fn list_templates(&self, caller: &Caller, q: TemplateQuery) -> Result<Reply, ApiError> {
        let zone_id = self.zone_id(q.zone_id.as_deref()).await?;
        let mut f = TemplateFilter {
            iso: q.iso,
            uuid: q.id.clone(),
            name: q.name.clone(),
            zone_id,
            keyword: q.listing.keyword.clone(),
            hypervisor: q.hypervisor.clone(),
            ready_only: q.is_ready == Some(true),
            ..Default::default()
        };
        let own = caller.user.account_id;
        match q.filter.as_str() {
            "featured" => {
                f.only_public = true;
                f.featured = Some(true);
                f.ready_only = true;
            }
            "self" => f.owner = Some(own),
            "selfexecutable" => {
                f.owner = Some(own);
                f.ready_only = true;
            }
            // Templates shared with an account by permission do not exist here yet, so
            // nothing is shared-executable.
            "sharedexecutable" => return Ok(list(if q.iso { "iso" } else { "template" }, 0, Vec::new())),
            "executable" => {
                f.owner = Some(own);
                f.public = true;
                f.ready_only = true;
            }
            "community" => {
                f.only_public = true;
                f.featured = Some(false);
                f.ready_only = true;
            }
            "all" => match caller.role {
                RoleType::Admin => {}
                RoleType::DomainAdmin | RoleType::ResourceAdmin => {
                    f.domain_prefix = Some(caller.user.domain_path.clone());
                    f.account_types = Some(caller.role.reachable_account_types());
                    f.public = true;
                }
                RoleType::User => {
                    return Err(ApiError::permission_denied("Only administrators can list all templates"));
                }
            },
            other => {
                return Err(ApiError::invalid_param(format!(
                    "Invalid value of parameter templatefilter: {other}; use featured, self, selfexecutable, sharedexecutable, executable, community or all"
                )));
            }
        }
        let (rows, total) = templates::list(&self.db, &f, q.listing.page).await?;
        let object = if q.iso { "iso" } else { "template" };
        Ok(list(object, total, rows.iter().map(|t| self.template_view(caller, t)).collect()))
    }

    pub(super) async fn delete_template(
        &self,
        caller: &Caller,
        cmd: &'static Command,
        iso: bool,
        id: &str,
        zone: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let what = if iso { "ISO" } else { "template" };
        let mut rows = templates::by_uuid(&self.db, id, iso).await?;
        let first = rows.first().ok_or_else(|| no_such(what, id))?.clone();
        if !caller.can_reach(&first) || (caller.role == RoleType::User && first.account_id != caller.user.account_id) {
            return Err(not_yours(what, id));
        }
        if let Some(z) = zone {
            rows.retain(|r| r.zone_uuid == z);
            if rows.is_empty() {
                return Err(ApiError::invalid_param(format!("The {what} {id} is not registered in zone {z}")));
            }
        }
        if iso {
            let vms = self.iso_users(&rows).await?;
            if !vms.is_empty() {
                return Err(ApiError::in_use(format!(
                    "The ISO {} is attached to VM(s) {}; detach it first",
                    first.name,
                    vms.join(", ")
                )));
            }
        }
        let users = self.template_users(&rows).await?;
        if !users.is_empty() {
            return Err(ApiError::in_use(format!(
                "The {what} {} is in use by volume(s) {}; delete them first",
                first.name,
                users.join(", ")
            )));
        }
        let me = self.clone();
        let who = caller.clone();
        let spec = JobSpec {
            cmd: if iso {
                "org.apache.cloudstack.api.command.user.iso.DeleteIsoCmd"
            } else {
                "org.apache.cloudstack.api.command.user.template.DeleteTemplateCmd"
            },
            command: cmd.name,
            instance: Some((if iso { "Iso" } else { "Template" }, first.uuid.clone())),
        };
        let job = self
            .jobs
            .submit(caller, spec, async move {
                for row in rows {
                    me.remove_template_copies(&row).await.map_err(ApiError::internal)?;
                    templates::remove(&me.db, row.id).await.map_err(ApiError::from)?;
                }
                let kind = if iso { "ISO.DELETE" } else { "TEMPLATE.DELETE" };
                me.audit(&who, kind, ("Template", &first.uuid, &first.name), format!("{what} {} deleted", first.name))
                    .await
                    .map_err(ApiError::from)?;
                let mut ok = serde_json::Map::new();
                ok.insert("success".into(), true.into());
                Ok(ok)
            })
            .await?;
        Ok(Reply::AsyncJob { job_id: job, id: None })
    }

    /// Deletes a template's store copy and every pool copy, through their drivers.
    async fn remove_template_copies(&self, t: &TemplateRow) -> Result<(), String> {
        let mut copies = templates::pool_copies(&self.db, t.id).await.map_err(|e| e.to_string())?;
        if let Some(path) = &t.path {
            copies.push((t.store_url.clone(), t.store_driver.clone(), path.clone()));
        }
        for (url, driver, path) in copies {
            let storage = self.plugins.storage(&driver).map_err(|e| e.to_string())?;
            let (u, p) = (url.clone(), path.clone());
            tokio::task::spawn_blocking(move || storage.delete_image(&u, &p))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("deleting {path} from {url}: {e}"))?;
        }
        Ok(())
    }

    /// Names of the VMs with any of these ISO rows in their CD-ROM drive.
    async fn iso_users(&self, rows: &[TemplateRow]) -> Result<Vec<String>, ApiError> {
        let mut names = Vec::new();
        for row in rows {
            let found: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM instances WHERE iso_id = $1 AND removed IS NULL")
                    .bind(row.id)
                    .fetch_all(self.db.pool())
                    .await
                    .map_err(crate::db::DbError::from)?;
            names.extend(found.into_iter().map(|(n,)| n));
        }
        Ok(names)
    }

    /// Names of the volumes made from any of these template rows.
    async fn template_users(&self, rows: &[TemplateRow]) -> Result<Vec<String>, ApiError> {
        let mut names = Vec::new();
        for row in rows {
            let found: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM volumes WHERE template_id = $1 AND removed IS NULL")
                    .bind(row.id)
                    .fetch_all(self.db.pool())
                    .await
                    .map_err(crate::db::DbError::from)?;
            names.extend(found.into_iter().map(|(n,)| n));
        }
        Ok(names)
    }

    /// A template the caller may build a volume on in `zone`: theirs or public, ready, not an ISO.
    pub(crate) async fn volume_template(
        &self,
        caller: &Caller,
        id: &str,
        zone: &ZoneRow,
    ) -> Result<TemplateRow, ApiError> {
        let rows = templates::by_uuid(&self.db, id, false).await?;
        let first = rows.first().ok_or_else(|| no_such("template", id))?;
        if first.is_public == 0 && !caller.can_reach(&first) {
            return Err(not_yours("template", id));
        }
        let t = rows.iter().find(|t| t.zone_id == zone.id).ok_or_else(|| {
            ApiError::invalid_param(format!("Template {} is not registered in zone {}", first.name, zone.name))
        })?;
        if t.state != "Ready" {
            return Err(ApiError::invalid_param(format!("Template {} is not ready yet ({})", t.name, t.status)));
        }
        Ok(t.clone())
    }

    /// The template's path on `pool`, copying it there from its store the first time.
    pub(crate) async fn template_on_pool(&self, t: &TemplateRow, pool: &PoolRow) -> Result<String, ApiError> {
        if let Some(path) = templates::on_pool(&self.db, t.id, pool.id).await? {
            return Ok(path);
        }
        let image =
            t.path.clone().filter(|_| t.state == "Ready").ok_or_else(|| {
                ApiError::invalid_param(format!("Template {} is not ready yet ({})", t.name, t.status))
            })?;
        let storage = self.plugins.storage(&pool.driver).map_err(|e| ApiError::unavailable(e.to_string()))?;
        let (pool_url, store_url) = (pool.url.clone(), t.store_url.clone());
        let volume = tokio::task::spawn_blocking(move || storage.install_template(&pool_url, &store_url, &image))
            .await
            .map_err(|e| ApiError::internal(format!("installing the template crashed: {e}")))?
            .map_err(|e| {
                ApiError::unavailable(format!("Cannot copy template {} to pool {}: {e}", t.name, pool.name))
            })?;
        self.check_locator(&pool.driver, &pool.name, &pool.url, &volume.locator)?;
        templates::record_on_pool(&self.db, t.id, pool.id, &volume.path).await?;
        Ok(volume.path)
    }

    pub(super) fn template_view(&self, caller: &Caller, t: &TemplateRow) -> serde_json::Map<String, serde_json::Value> {
        let status = if t.state == "Downloading" { self.download_status(t) } else { t.status.clone() };
        let owner_or_admin = caller.role == RoleType::Admin || caller.user.account_id == t.account_id;
        views::object(json!({
            "id": t.uuid,
            "name": t.name,
            "displaytext": t.display_text,
            "format": t.format,
            "hypervisor": t.hypervisor,
            "ostypeid": t.os_type_uuid,
            "ostypename": t.os_type_name,
            "isready": t.state == "Ready",
            "status": status,
            "ispublic": t.is_public != 0,
            "isfeatured": t.is_featured != 0,
            "isextractable": t.is_extractable != 0,
            "passwordenabled": t.password_enabled != 0,
            "sshkeyenabled": false,
            "bootable": if t.is_iso != 0 { Some(t.bootable != 0) } else { None },
            "size": (t.size > 0).then_some(t.size),
            "physicalsize": (t.physical_size > 0).then_some(t.physical_size),
            "zoneid": t.zone_uuid,
            "zonename": t.zone_name,
            "templatetype": t.template_type,
            "crossZones": false,
            "account": t.account_name,
            "accountid": t.account_uuid,
            "domain": t.domain_name,
            "domainid": t.domain_uuid,
            "checksum": t.checksum,
            "url": owner_or_admin.then_some(&t.url),
            "created": format_time(t.created),
            // The linked userdata, as CloudStack's TemplateResponse names it; absent when none.
            "userdataid": t.user_data_uuid,
            "userdataname": t.user_data_name,
            "userdatapolicy": t.user_data_uuid.as_ref().map(|_| t.user_data_policy.as_deref().unwrap_or("ALLOWOVERRIDE")),
            "userdataparams": t.user_data_params.as_deref().filter(|p| !p.is_empty()),
        }))
    }

    /// "42% Downloaded", from the images capability's record of the transfer.
    fn download_status(&self, t: &TemplateRow) -> String {
        let suffix = format!("/{}.", file_name(t));
        let transfer = self.plugins.images().transfers().into_iter().find(|(target, _)| target.contains(&suffix));
        match transfer {
            Some((_, tr)) => match tr.total {
                Some(total) if total > 0 => format!("{}% Downloaded", tr.bytes * 100 / total),
                _ => format!("{} bytes Downloaded", tr.bytes),
            },
            None => "Downloading".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_checksum as checksum;

    #[test]
    fn checksums() {
        let hex = "a".repeat(64);
        assert_eq!(checksum(&hex).unwrap(), hex);
        assert_eq!(checksum(&format!("{{SHA-256}}{}", "B".repeat(64))).unwrap(), "b".repeat(64));
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        assert_eq!(checksum(md5).unwrap(), format!("{{MD5}}{md5}"));
        assert_eq!(checksum(&format!("{{MD5}}{md5}")).unwrap(), format!("{{MD5}}{md5}"));
        let e = checksum("{CRC32}abcd").unwrap_err();
        assert_eq!(e.http_status(), 431);
        assert!(e.text.contains("not supported"), "{}", e.text);
        assert_eq!(checksum("xyz").unwrap_err().http_status(), 431);
    }
}
