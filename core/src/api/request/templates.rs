//! Typed requests of templates and ISOs.

use super::*;

#[derive(Debug, Clone)]
pub struct NewTemplateRequest {
    pub iso: bool,
    pub name: String,
    pub url: String,
    pub display_text: Option<String>,
    /// Zone UUIDs, or `["-1"]` for every zone with an image store.
    pub zones: Vec<String>,
    pub os_type_id: Option<String>,
    pub checksum: Option<String>,
    pub format: Option<String>,
    pub hypervisor: Option<String>,
    pub is_public: Option<bool>,
    pub is_featured: bool,
    pub is_extractable: bool,
    pub password_enabled: bool,
    pub bootable: bool,
}

/// createTemplate: a template from a volume or one of its snapshots.
#[derive(Debug, Clone)]
pub struct TemplateFromVolume {
    pub name: String,
    pub display_text: Option<String>,
    pub os_type_id: Option<String>,
    pub snapshot_id: Option<String>,
    pub volume_id: Option<String>,
    pub is_public: bool,
    pub is_featured: bool,
    pub password_enabled: bool,
}

#[derive(Debug, Clone)]
pub struct TemplateQuery {
    pub iso: bool,
    pub filter: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub zone_id: Option<String>,
    pub hypervisor: Option<String>,
    pub is_ready: Option<bool>,
    pub listing: Listing,
}

/// A template or ISO command, parsed.
#[derive(Debug, Clone)]
pub enum TemplateRequest {
    RegisterTemplate(NewTemplateRequest),
    CreateTemplate(TemplateFromVolume),
    ListTemplates(TemplateQuery),
    DeleteTemplate { iso: bool, id: String, zone_id: Option<String> },
    UpdateTemplate { id: String, name: Option<String>, display_text: Option<String>, password_enabled: Option<bool> },
}

pub(super) fn parse(cmd: &'static Command, p: &Params) -> Result<Option<TemplateRequest>, ApiError> {
    let register = |iso: bool| -> Result<NewTemplateRequest, ApiError> {
        let mut zones = p.list("zoneids")?.unwrap_or_default();
        if let Some(z) = s(p, "zoneid") {
            zones.push(z);
        }
        Ok(NewTemplateRequest {
            iso,
            name: must(p, cmd, "name")?,
            url: must(p, cmd, "url")?,
            display_text: s(p, "displaytext"),
            zones,
            os_type_id: uuid(p, "ostypeid")?,
            checksum: s(p, "checksum"),
            format: s(p, "format"),
            hypervisor: s(p, "hypervisor"),
            is_public: p.bool("ispublic")?,
            is_featured: p.bool("isfeatured")?.unwrap_or(false),
            is_extractable: p.bool("isextractable")?.unwrap_or(false),
            password_enabled: p.bool("passwordenabled")?.unwrap_or(false),
            bootable: p.bool("bootable")?.unwrap_or(true),
        })
    };
    let template_query = |iso: bool, filter: String| -> Result<TemplateQuery, ApiError> {
        Ok(TemplateQuery {
            iso,
            filter,
            id: uuid(p, "id")?,
            name: s(p, "name"),
            zone_id: uuid(p, "zoneid")?,
            hypervisor: s(p, "hypervisor"),
            is_ready: p.bool("isready")?,
            listing: listing(p)?,
        })
    };
    Ok(Some(match cmd.name {
        "createTemplate" => TemplateRequest::CreateTemplate(TemplateFromVolume {
            name: must(p, cmd, "name")?,
            display_text: s(p, "displaytext"),
            os_type_id: uuid(p, "ostypeid")?,
            snapshot_id: uuid(p, "snapshotid")?,
            volume_id: uuid(p, "volumeid")?,
            is_public: p.bool("ispublic")?.unwrap_or(false),
            is_featured: p.bool("isfeatured")?.unwrap_or(false),
            password_enabled: p.bool("passwordenabled")?.unwrap_or(false),
        }),
        "registerTemplate" => TemplateRequest::RegisterTemplate(register(false)?),
        "registerIso" => TemplateRequest::RegisterTemplate(register(true)?),
        "listTemplates" => TemplateRequest::ListTemplates(template_query(false, must(p, cmd, "templatefilter")?)?),
        "listIsos" => TemplateRequest::ListTemplates(template_query(
            true,
            s(p, "isofilter").unwrap_or_else(|| "executable".into()),
        )?),
        "updateTemplate" => TemplateRequest::UpdateTemplate {
            id: must_uuid(p, cmd, "id")?,
            name: s(p, "name"),
            display_text: s(p, "displaytext"),
            password_enabled: p.bool("passwordenabled")?,
        },
        "deleteTemplate" => {
            TemplateRequest::DeleteTemplate { iso: false, id: must_uuid(p, cmd, "id")?, zone_id: uuid(p, "zoneid")? }
        }
        "deleteIso" => {
            TemplateRequest::DeleteTemplate { iso: true, id: must_uuid(p, cmd, "id")?, zone_id: uuid(p, "zoneid")? }
        }
        _ => return Ok(None),
    }))
}
