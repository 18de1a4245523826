//! What a guest is told about itself by the metadata and password services, read from
//! the database for the NIC a request came from (see `plugins::guest_data`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sqlx::Row;

use super::networks::{int_to_ip, ip_to_int};
use crate::db::{Db, DbError, new_uuid};
use crate::plugins::guest_data::{GuestAddress, GuestDataSource, GuestRecord, SourceFuture};

/// The setting holding this cloud's identifier, as CloudStack names it.
const CLOUD_IDENTIFIER: &str = "cloud.identifier";

/// How long a guest's record is served from memory: guests ask for several values in a
/// row, and each read from the database costs several times the answer (the
/// metadata_service benchmark). A change (userdata, keys, the instance removed) shows
/// within this time; passwords are never cached.
const RECORD_TTL: Duration = Duration::from_secs(1);
/// Records kept at most; past this the cache starts afresh (only leased, neighbour-checked
/// guests get here, so this is reached only by networks of that many guests).
const RECORD_CACHE_MAX: usize = 4096;

/// The guest behind a live NIC: the NIC's MAC and address, in the network whose DHCP
/// service holds the service address, for an instance that is not removed.
const GUEST_JOIN: &str = "FROM nics n JOIN instances i ON i.uuid = n.instance_uuid \
     JOIN networks net ON net.id = n.network_id JOIN network_offerings o ON o.id = net.network_offering_id \
     WHERE n.mac = $1 AND n.removed IS NULL AND n.ip_address = $2 AND net.dhcp_server = $3 \
     AND net.removed IS NULL AND i.removed IS NULL";

/// Guest data from the database.
pub struct DbGuestData {
    db: Db,
    /// `CloudStack-{<uuid>}`, the same for every guest of this cloud.
    cloud_identifier: String,
    /// Recent records (and "not a guest") by who asked, with when they were read.
    recent: Mutex<HashMap<GuestAddress, (Instant, Option<GuestRecord>)>>,
}

/// This cloud's `cloud-identifier`, `CloudStack-{<uuid>}`, the same for every guest
/// whichever way it gets its data (made on first use).
pub async fn cloud_identifier(db: &Db) -> Result<String, DbError> {
    sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(CLOUD_IDENTIFIER)
        .bind(new_uuid())
        .execute(db.pool())
        .await?;
    let id: String = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
        .bind(CLOUD_IDENTIFIER)
        .fetch_one(db.pool())
        .await?;
    Ok(format!("CloudStack-{{{id}}}"))
}

impl DbGuestData {
    /// Reads (or, on first use, makes) the cloud identifier.
    pub async fn new(db: Db) -> Result<Self, DbError> {
        let cloud_identifier = cloud_identifier(&db).await?;
        Ok(DbGuestData { db, cloud_identifier, recent: Mutex::default() })
    }

    /// The record, from memory when read less than [`RECORD_TTL`] ago.
    async fn cached_record(&self, who: GuestAddress) -> Result<Option<GuestRecord>, DbError> {
        {
            let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((read, record)) = recent.get(&who)
                && read.elapsed() < RECORD_TTL
            {
                return Ok(record.clone());
            }
        }
        let read = Instant::now();
        let record = self.record(who).await?;
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() >= RECORD_CACHE_MAX {
            recent.retain(|_, (at, _)| at.elapsed() < RECORD_TTL);
            if recent.len() >= RECORD_CACHE_MAX {
                recent.clear();
            }
        }
        recent.insert(who, (read, record.clone()));
        Ok(record)
    }

    async fn record(&self, who: GuestAddress) -> Result<Option<GuestRecord>, DbError> {
        let sql = format!(
            "SELECT i.id, i.uuid, i.name, i.user_data, z.name, so.display_text, net.guest_type, o.services, \
             (SELECT p.address FROM public_ips p WHERE p.network_id = n.network_id AND p.static_nat_nic_id = n.id \
              AND p.state = 'Allocated' LIMIT 1), \
             (SELECT p.address FROM public_ips p WHERE p.network_id = n.network_id AND p.is_source_nat = 1 \
              AND p.state = 'Allocated' LIMIT 1) \
             {GUEST_JOIN_ZONE}"
        );
        let row = sqlx::query(&sql)
            .bind(who.mac_text())
            .bind(ip_to_int(who.ip))
            .bind(who.server.to_string())
            .fetch_optional(self.db.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let services: String = row.try_get(7)?;
        if !offers_user_data(&services) {
            return Ok(None);
        }
        let id: i64 = row.try_get(0)?;
        let uuid: String = row.try_get(1)?;
        let hostname: String = row.try_get(2)?;
        let user_data: Option<String> = row.try_get(3)?;
        let zone: String = row.try_get(4)?;
        let offering: String = row.try_get(5)?;
        let guest_type: String = row.try_get(6)?;
        let static_nat: Option<i64> = row.try_get(8)?;
        let source_nat: Option<i64> = row.try_get(9)?;
        let keys: Vec<String> =
            sqlx::query_scalar("SELECT public_key FROM instance_ssh_keys WHERE instance_id = $1 ORDER BY name")
                .bind(id)
                .fetch_all(self.db.pool())
                .await?;
        let local = who.ip.to_string();
        // As CloudStack's router: a Shared network's guest is its own public address; an
        // Isolated one's is its static NAT address, else the network's source NAT address.
        let (public_ip, public_host) = if guest_type == "Shared" {
            (local.clone(), hostname.clone())
        } else {
            let ip = static_nat.or(source_nat).map(|a| int_to_ip(a).to_string()).unwrap_or_default();
            (ip.clone(), ip)
        };
        let user_data = user_data.filter(|u| !u.is_empty()).and_then(|u| {
            base64::engine::general_purpose::STANDARD
                .decode(u.trim())
                .inspect_err(|e| tracing::warn!("instance {uuid}: stored userdata is not base64: {e}"))
                .ok()
        });
        Ok(Some(GuestRecord {
            user_data,
            metadata: vec![
                ("service-offering", offering),
                ("availability-zone", zone),
                ("local-ipv4", local),
                ("local-hostname", hostname),
                ("public-ipv4", public_ip),
                ("public-hostname", public_host),
                ("instance-id", uuid.clone()),
                ("vm-id", uuid),
                ("public-keys", keys.join("\n")),
                ("cloud-identifier", self.cloud_identifier.clone()),
            ],
        }))
    }

    async fn password(&self, who: GuestAddress) -> Result<Option<Option<String>>, DbError> {
        let sql = format!("SELECT i.id, i.password_pending, o.services {GUEST_JOIN}");
        let row = sqlx::query(&sql)
            .bind(who.mac_text())
            .bind(ip_to_int(who.ip))
            .bind(who.server.to_string())
            .fetch_optional(self.db.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let services: String = row.try_get(2)?;
        if !offers_user_data(&services) {
            return Ok(None);
        }
        let id: i64 = row.try_get(0)?;
        let Some(pending) = row.try_get::<Option<String>, _>(1)? else { return Ok(Some(None)) };
        // Forgotten only if still this one: two fetches at once hand it out once.
        let cleared =
            sqlx::query("UPDATE instances SET password_pending = NULL WHERE id = $1 AND password_pending = $2")
                .bind(id)
                .bind(&pending)
                .execute(self.db.pool())
                .await?
                .rows_affected();
        Ok(Some((cleared == 1).then_some(pending)))
    }
}

/// The join for a guest's record: the guest, its zone and its service offering.
const GUEST_JOIN_ZONE: &str = "FROM nics n JOIN instances i ON i.uuid = n.instance_uuid \
     JOIN networks net ON net.id = n.network_id JOIN network_offerings o ON o.id = net.network_offering_id \
     JOIN zones z ON z.id = i.zone_id JOIN service_offerings so ON so.id = i.service_offering_id \
     WHERE n.mac = $1 AND n.removed IS NULL AND n.ip_address = $2 AND net.dhcp_server = $3 \
     AND net.removed IS NULL AND i.removed IS NULL";

/// Whether a network offering's services include UserData: only then does its network
/// serve guest data, as CloudStack's router does.
fn offers_user_data(services: &str) -> bool {
    services.split(',').any(|s| s.trim() == "UserData")
}

impl GuestDataSource for DbGuestData {
    fn guest(&self, who: GuestAddress) -> SourceFuture<'_, Option<GuestRecord>> {
        Box::pin(async move { self.cached_record(who).await.map_err(|e| e.to_string()) })
    }

    fn take_password(&self, who: GuestAddress) -> SourceFuture<'_, Option<Option<String>>> {
        Box::pin(async move { self.password(who).await.map_err(|e| e.to_string()) })
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn user_data_service_is_one_of_the_list() {
        assert!(offers_user_data("Dhcp,Dns,UserData"));
        assert!(!offers_user_data("Dhcp,Dns"));
        assert!(!offers_user_data("Dhcp,UserDataX"));
        assert!(!offers_user_data(""));
    }

    #[test]
    fn addresses_are_compared_as_stored() {
        let ip: Ipv4Addr = "10.1.1.10".parse().unwrap();
        assert_eq!(int_to_ip(ip_to_int(ip)), ip);
    }
}
