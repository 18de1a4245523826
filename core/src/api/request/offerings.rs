//! Typed requests of service and disk offerings, and OS types.

use super::*;

#[derive(Debug, Clone)]
pub struct NewServiceOfferingRequest {
    pub name: String,
    pub display_text: Option<String>,
    pub cpu_number: Option<i64>,
    pub cpu_speed: Option<i64>,
    pub memory: Option<i64>,
    pub storage_type: Option<String>,
    pub offer_ha: bool,
    pub limit_cpu_use: bool,
    pub host_tags: Option<String>,
    pub tags: Option<String>,
    pub root_disk_gb: Option<i64>,
    pub customized: bool,
}

#[derive(Debug, Clone)]
pub struct NewDiskOfferingRequest {
    pub name: String,
    pub display_text: Option<String>,
    pub disk_size_gb: Option<i64>,
    pub customized: bool,
    pub storage_type: Option<String>,
    pub tags: Option<String>,
    pub provisioning_type: Option<String>,
}

/// Filters of the offering and OS type listings.
#[derive(Debug, Clone, Default)]
pub struct OfferingQuery {
    pub id: Option<String>,
    pub name: Option<String>,
    pub keyword: Option<String>,
    pub page: Option<(u32, u32)>,
}

/// An offering or OS type command, parsed.
#[derive(Debug, Clone)]
pub enum OfferingRequest {
    CreateServiceOffering(NewServiceOfferingRequest),
    ListServiceOfferings(OfferingQuery),
    DeleteServiceOffering { id: String },
    CreateDiskOffering(NewDiskOfferingRequest),
    ListDiskOfferings(OfferingQuery),
    DeleteDiskOffering { id: String },
    ListOsTypes(OfferingQuery),
}

pub(super) fn parse(cmd: &'static Command, p: &Params) -> Result<Option<OfferingRequest>, ApiError> {
    let offering_query = |name_param: &str| -> Result<OfferingQuery, ApiError> {
        Ok(OfferingQuery {
            id: uuid(p, "id")?,
            name: s(p, name_param),
            keyword: s(p, "keyword").filter(|k| !k.is_empty()),
            page: p.page()?,
        })
    };
    Ok(Some(match cmd.name {
        "createServiceOffering" => OfferingRequest::CreateServiceOffering(NewServiceOfferingRequest {
            name: must(p, cmd, "name")?,
            display_text: s(p, "displaytext"),
            cpu_number: p.long("cpunumber")?,
            cpu_speed: p.long("cpuspeed")?,
            memory: p.long("memory")?,
            storage_type: s(p, "storagetype"),
            offer_ha: p.bool("offerha")?.unwrap_or(false),
            limit_cpu_use: p.bool("limitcpuuse")?.unwrap_or(false),
            host_tags: s(p, "hosttags"),
            tags: s(p, "tags"),
            root_disk_gb: p.long("rootdisksize")?,
            customized: p.bool("customized")?.unwrap_or(false),
        }),
        "listServiceOfferings" => OfferingRequest::ListServiceOfferings(offering_query("name")?),
        "deleteServiceOffering" => OfferingRequest::DeleteServiceOffering { id: must_uuid(p, cmd, "id")? },
        "createDiskOffering" => OfferingRequest::CreateDiskOffering(NewDiskOfferingRequest {
            name: must(p, cmd, "name")?,
            display_text: s(p, "displaytext"),
            disk_size_gb: p.long("disksize")?,
            customized: p.bool("customized")?.unwrap_or(false),
            storage_type: s(p, "storagetype"),
            tags: s(p, "tags"),
            provisioning_type: s(p, "provisioningtype"),
        }),
        "listDiskOfferings" => OfferingRequest::ListDiskOfferings(offering_query("name")?),
        "deleteDiskOffering" => OfferingRequest::DeleteDiskOffering { id: must_uuid(p, cmd, "id")? },
        "listOsTypes" => OfferingRequest::ListOsTypes(offering_query("description")?),
        _ => return Ok(None),
    }))
}
