//! Rows to jobs and leases.

use std::time::Duration;

use agentflow_core::{Job, JobId, JobKind, JobState, Lease, Result, TaskId, WorkerId};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::error::PgError;

fn corrupt(message: String) -> agentflow_core::Error {
    PgError::CorruptRow { table: "jobs", message }.into()
}

fn col<'r, T>(row: &'r PgRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(name).map_err(|e| PgError::sqlx(format!("decoding jobs.{name}"), e).into())
}

/// A job from a row with the `JOB_COLS` columns.
pub(crate) fn job(row: &PgRow) -> Result<Job> {
    let kind: String = col(row, "kind")?;
    let state: String = col(row, "state")?;
    let attempt: i32 = col(row, "attempt")?;
    let max_attempts: i32 = col(row, "max_attempts")?;
    let timeout_ms: i64 = col(row, "timeout_ms")?;
    Ok(Job {
        id: JobId(col(row, "id")?),
        kind: JobKind::parse(&kind).ok_or_else(|| corrupt(format!("unknown kind `{kind}`")))?,
        task: TaskId(col(row, "task")?),
        payload: col(row, "payload")?,
        unique_key: col(row, "unique_key")?,
        priority: col(row, "priority")?,
        attempt: u32::try_from(attempt).map_err(|_| corrupt(format!("attempt {attempt}")))?,
        max_attempts: u32::try_from(max_attempts)
            .map_err(|_| corrupt(format!("max_attempts {max_attempts}")))?,
        run_at: col(row, "run_at")?,
        timeout: Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0)),
        state: JobState::parse(&state)
            .ok_or_else(|| corrupt(format!("unknown state `{state}`")))?,
        last_error: col(row, "last_error")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

/// A lease from a reserve row (job columns plus the lease columns).
pub(crate) fn lease(row: &PgRow) -> Result<Lease> {
    let token: Uuid = col(row, "lease_token")?;
    let worker: String = col(row, "lease_worker")?;
    let expires_at: DateTime<Utc> = col(row, "lease_expires_at")?;
    Ok(Lease { job: job(row)?, token, worker: WorkerId(worker), expires_at })
}

/// Milliseconds for the `timeout_ms` column (saturating).
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The smallest UUID v7 of the millisecond `at`: every id created before `at` sorts below it.
pub(crate) fn uuid_v7_floor(at: DateTime<Utc>) -> Uuid {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6] = 0x70; // version 7
    bytes[8] = 0x80; // RFC 4122 variant
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v7_floor_orders_below_ids_of_that_time() {
        let before = JobId::new();
        std::thread::sleep(Duration::from_millis(3));
        let floor = uuid_v7_floor(Utc::now());
        std::thread::sleep(Duration::from_millis(3));
        let after = JobId::new();
        assert!(before.0 < floor, "{before} < {floor}");
        assert!(floor < after.0, "{floor} < {after}");
        assert_eq!(floor.get_version_num(), 7);
    }
}
