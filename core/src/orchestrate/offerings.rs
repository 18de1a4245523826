//! Service offerings, disk offerings and OS types.

use serde_json::json;

use crate::api::error::ApiError;
use crate::api::render::Reply;
use crate::api::request::{NewDiskOfferingRequest, NewServiceOfferingRequest, OfferingQuery, OfferingRequest};
use crate::auth::Caller;
use crate::cloud::infra;
use crate::cloud::offerings::{self, DiskOfferingRow, OfferingFilter, OsTypeRow, ServiceOfferingRow};
use crate::db::format_time;

use super::{Orchestrator, list, no_such, object, views};

fn storage_type(v: Option<&str>) -> Result<String, ApiError> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("shared") => Ok("shared".into()),
        Some("local") => Ok("local".into()),
        Some(other) => Err(ApiError::invalid_param(format!(
            "Invalid value of parameter storagetype: {other}; use shared or local"
        ))),
    }
}

fn at_least(param: &str, value: Option<i64>, min: i64) -> Result<(), ApiError> {
    match value {
        Some(v) if v < min => {
            Err(ApiError::invalid_param(format!("Invalid value of parameter {param}: {v}; it must be at least {min}")))
        }
        _ => Ok(()),
    }
}

fn filter(q: OfferingQuery) -> (OfferingFilter, Option<(u32, u32)>) {
    (OfferingFilter { uuid: q.id, name: q.name, keyword: q.keyword }, q.page)
}

impl Orchestrator {
    /// Runs one offering or OS type command.
    pub(super) async fn execute_offering(&self, caller: &Caller, request: OfferingRequest) -> Result<Reply, ApiError> {
        use OfferingRequest::*;
        match request {
            CreateServiceOffering(o) => Box::pin(self.create_service_offering(caller, o)).await,
            ListServiceOfferings(q) => Box::pin(self.list_service_offerings(q)).await,
            DeleteServiceOffering { id } => Box::pin(self.delete_offering(caller, "service_offerings", &id)).await,
            CreateDiskOffering(o) => Box::pin(self.create_disk_offering(caller, o)).await,
            ListDiskOfferings(q) => Box::pin(self.list_disk_offerings(q)).await,
            DeleteDiskOffering { id } => Box::pin(self.delete_offering(caller, "disk_offerings", &id)).await,
            ListOsTypes(q) => Box::pin(self.list_os_types(q)).await,
        }
    }

    pub(super) async fn create_service_offering(
        &self,
        caller: &Caller,
        o: NewServiceOfferingRequest,
    ) -> Result<Reply, ApiError> {
        if o.name.trim().is_empty() {
            return Err(ApiError::invalid_param("The offering name cannot be empty"));
        }
        at_least("cpunumber", o.cpu_number, 1)?;
        at_least("cpuspeed", o.cpu_speed, 1)?;
        at_least("memory", o.memory, 32)?;
        at_least("rootdisksize", o.root_disk_gb, 1)?;
        // A fixed offering says how big a VM is; a customized one leaves it to each deploy.
        let sized = [o.cpu_number.is_some(), o.memory.is_some()];
        if !o.customized && sized != [true, true] {
            return Err(ApiError::invalid_param(
                "Give cpunumber and memory, or customized=true to let each deployment choose them",
            ));
        }
        let new = offerings::NewServiceOffering {
            display_text: o.display_text.unwrap_or_else(|| o.name.clone()),
            name: o.name,
            cpu_number: o.cpu_number,
            cpu_speed: o.cpu_speed.or(Some(1000)).filter(|_| o.cpu_number.is_some()),
            memory_mb: o.memory,
            storage_type: storage_type(o.storage_type.as_deref())?,
            offer_ha: o.offer_ha,
            limit_cpu_use: o.limit_cpu_use,
            host_tags: o.host_tags,
            storage_tags: o.tags,
            root_disk_gb: o.root_disk_gb,
        };
        let uuid = offerings::create_service(&self.db, new).await?;
        let row = self.service_offering(&uuid).await?;
        self.audit(
            caller,
            "SERVICE.OFFERING.CREATE",
            ("ServiceOffering", &row.uuid, &row.name),
            format!("Service offering {} created", row.name),
        )
        .await?;
        Ok(object("serviceoffering", service_view(&row)))
    }

    async fn service_offering(&self, uuid: &str) -> Result<ServiceOfferingRow, ApiError> {
        let (rows, _) =
            offerings::list_service(&self.db, &OfferingFilter { uuid: Some(uuid.into()), ..Default::default() }, None)
                .await?;
        rows.into_iter().next().ok_or_else(|| no_such("service offering", uuid))
    }

    pub(super) async fn list_service_offerings(&self, q: OfferingQuery) -> Result<Reply, ApiError> {
        let (f, page) = filter(q);
        let (rows, total) = offerings::list_service(&self.db, &f, page).await?;
        Ok(list("serviceoffering", total, rows.iter().map(service_view).collect()))
    }

    pub(super) async fn create_disk_offering(
        &self,
        caller: &Caller,
        o: NewDiskOfferingRequest,
    ) -> Result<Reply, ApiError> {
        if o.name.trim().is_empty() {
            return Err(ApiError::invalid_param("The offering name cannot be empty"));
        }
        let size = match (o.disk_size_gb, o.customized) {
            (Some(s), _) if s <= 0 => {
                return Err(ApiError::invalid_param(format!(
                    "Invalid value of parameter disksize: {s}; it must be at least 1 GB"
                )));
            }
            (Some(s), _) => s,
            (None, true) => 0,
            (None, false) => {
                return Err(ApiError::invalid_param(
                    "Give disksize, or customized=true to let each volume choose its size",
                ));
            }
        };
        let provisioning = match o.provisioning_type.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("thin") => "thin",
            Some("sparse") => "sparse",
            Some("fat") => "fat",
            Some(other) => {
                return Err(ApiError::invalid_param(format!(
                    "Invalid value of parameter provisioningtype: {other}; use thin, sparse or fat"
                )));
            }
        };
        let new = offerings::NewDiskOffering {
            display_text: o.display_text.unwrap_or_else(|| o.name.clone()),
            name: o.name,
            disk_size_gb: size,
            customized: o.customized,
            storage_type: storage_type(o.storage_type.as_deref())?,
            tags: o.tags,
            provisioning_type: provisioning.into(),
        };
        let uuid = offerings::create_disk(&self.db, new).await?;
        let (rows, _) =
            offerings::list_disk(&self.db, &OfferingFilter { uuid: Some(uuid.clone()), ..Default::default() }, None)
                .await?;
        let row = rows.into_iter().next().ok_or_else(|| no_such("disk offering", &uuid))?;
        self.audit(
            caller,
            "DISK.OFFERING.CREATE",
            ("DiskOffering", &row.uuid, &row.name),
            format!("Disk offering {} created", row.name),
        )
        .await?;
        Ok(object("diskoffering", disk_view(&row)))
    }

    pub(super) async fn list_disk_offerings(&self, q: OfferingQuery) -> Result<Reply, ApiError> {
        let (f, page) = filter(q);
        let (rows, total) = offerings::list_disk(&self.db, &f, page).await?;
        Ok(list("diskoffering", total, rows.iter().map(disk_view).collect()))
    }

    /// Removes a service or disk offering; `table` names which.
    pub(super) async fn delete_offering(
        &self,
        caller: &Caller,
        table: &'static str,
        id: &str,
    ) -> Result<Reply, ApiError> {
        let f = OfferingFilter { uuid: Some(id.into()), ..Default::default() };
        let (row_id, name, what) = if table == "service_offerings" {
            let r = offerings::list_service(&self.db, &f, None)
                .await?
                .0
                .into_iter()
                .next()
                .ok_or_else(|| no_such("service offering", id))?;
            (r.id, r.name, "SERVICE.OFFERING.DELETE")
        } else {
            let r = offerings::list_disk(&self.db, &f, None)
                .await?
                .0
                .into_iter()
                .next()
                .ok_or_else(|| no_such("disk offering", id))?;
            (r.id, r.name, "DISK.OFFERING.DELETE")
        };
        infra::remove(&self.db, table, row_id).await?;
        self.audit(caller, what, ("Offering", id, &name), format!("Offering {name} deleted")).await?;
        Ok(Reply::Success { display_text: None })
    }

    pub(super) async fn list_os_types(&self, q: OfferingQuery) -> Result<Reply, ApiError> {
        let (f, page) = filter(q);
        let (rows, total) = offerings::list_os_types(&self.db, &f, page).await?;
        Ok(list("ostype", total, rows.iter().map(os_view).collect()))
    }
}

fn service_view(o: &ServiceOfferingRow) -> serde_json::Map<String, serde_json::Value> {
    views::object(json!({
        "id": o.uuid,
        "name": o.name,
        "displaytext": o.display_text,
        "cpunumber": o.cpu_number,
        "cpuspeed": o.cpu_speed,
        "memory": o.memory_mb,
        "storagetype": o.storage_type,
        "offerha": o.offer_ha != 0,
        "limitcpuuse": o.limit_cpu_use != 0,
        "iscustomized": o.cpu_number.is_none(),
        "issystem": o.is_system != 0,
        "hosttags": o.host_tags,
        "storagetags": o.storage_tags,
        "rootdisksize": o.root_disk_gb,
        "state": "Active",
        "created": format_time(o.created),
    }))
}

fn disk_view(o: &DiskOfferingRow) -> serde_json::Map<String, serde_json::Value> {
    views::object(json!({
        "id": o.uuid,
        "name": o.name,
        "displaytext": o.display_text,
        "disksize": o.disk_size_gb,
        "iscustomized": o.customized != 0,
        "storagetype": o.storage_type,
        "tags": o.tags,
        "provisioningtype": o.provisioning_type,
        "state": "Active",
        "created": format_time(o.created),
    }))
}

fn os_view(o: &OsTypeRow) -> serde_json::Map<String, serde_json::Value> {
    views::object(json!({
        "id": o.uuid,
        "description": o.description,
        "name": o.description,
        "oscategoryid": o.category_uuid,
        "oscategoryname": o.category,
        "isuserdefined": false,
    }))
}
