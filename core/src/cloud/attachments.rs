//! Which data volumes are attached to which VM, as which device.
//!
//! An attach first takes the VM's row (on PostgreSQL its lock; SQLite's BEGIN IMMEDIATE
//! serialises writers anyway), so two attaches to one VM never pick the same device, and
//! moves the volume from Ready to Attaching, so one volume is never attached twice.

use crate::db::{Db, DbError};

/// The highest device number: device n is guest disk vd(a + n), and vdz is the last.
pub const MAX_DEVICE: i64 = 25;

/// Why a volume was not recorded as attached.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// The volume was no longer Ready and unattached.
    #[error("the volume is busy or already attached")]
    Busy,
    /// The device number asked for is taken, or none is left.
    #[error("device {0} is taken")]
    DeviceTaken(i64),
    #[error("the VM has no free device left")]
    Full,
}

impl From<sqlx::Error> for AttachError {
    fn from(e: sqlx::Error) -> Self {
        AttachError::Db(DbError::from(e))
    }
}

/// The guest device name of device `n`: 0 vda (the root disk), 1 vdb…
pub fn target(device_id: i64) -> String {
    let n = device_id.clamp(0, MAX_DEVICE) as u8;
    format!("vd{}", (b'a' + n) as char)
}

/// The lowest device from 1 up that is not in `taken`.
fn first_free(taken: &[i64]) -> Option<i64> {
    (1..=MAX_DEVICE).find(|d| !taken.contains(d))
}

/// Records volume `volume_id` as attached to instance `instance_id` (state Attaching
/// until `finish` or `undo`), as device `device` or the first free one. Returns the device.
pub async fn begin(db: &Db, volume_id: i64, instance_id: i64, device: Option<i64>) -> Result<i64, AttachError> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE instances SET state = state WHERE id = $1").bind(instance_id).execute(&mut *tx).await?;
    let taken: Vec<i64> = sqlx::query_scalar(
        "SELECT device_id FROM volumes WHERE instance_id = $1 AND removed IS NULL AND device_id IS NOT NULL",
    )
    .bind(instance_id)
    .fetch_all(&mut *tx)
    .await?;
    let device = match device {
        Some(d) if taken.contains(&d) => return Err(AttachError::DeviceTaken(d)),
        Some(d) => d,
        None => first_free(&taken).ok_or(AttachError::Full)?,
    };
    let done = sqlx::query(
        "UPDATE volumes SET instance_id = $1, device_id = $2, state = 'Attaching' \
         WHERE id = $3 AND state = 'Ready' AND instance_id IS NULL AND removed IS NULL",
    )
    .bind(instance_id)
    .bind(device)
    .bind(volume_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(AttachError::Busy);
    }
    tx.commit().await?;
    Ok(device)
}

/// An attach or detach is done: the volume is Ready again, attached or not.
pub async fn finish(db: &Db, volume_id: i64, attached: bool) -> Result<(), DbError> {
    let sql = if attached {
        "UPDATE volumes SET state = 'Ready' WHERE id = $1"
    } else {
        "UPDATE volumes SET state = 'Ready', instance_id = NULL, device_id = NULL WHERE id = $1"
    };
    sqlx::query(sql).bind(volume_id).execute(db.pool()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_map_to_guest_disks() {
        assert_eq!(target(0), "vda");
        assert_eq!(target(1), "vdb");
        assert_eq!(target(2), "vdc");
        assert_eq!(target(MAX_DEVICE), "vdz");
        assert_eq!(first_free(&[]), Some(1));
        assert_eq!(first_free(&[0, 1, 3]), Some(2));
        assert_eq!(first_free(&(0..=MAX_DEVICE).collect::<Vec<_>>()), None);
    }
}
