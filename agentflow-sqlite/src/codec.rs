//! Conversions between Rust values and the columns they are stored in.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::SqliteError;

/// Timestamps are stored as INTEGER nanoseconds since the Unix epoch: lossless for
/// `DateTime<Utc>`, sortable, and readable in `sqlite3` with `datetime(col / 1e9, 'unixepoch')`.
pub(crate) fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

/// The inverse of [`ts`].
pub(crate) fn from_ts(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

/// Adds a duration to a time, saturating instead of overflowing.
pub(crate) fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Subtracts a duration from a time, saturating.
pub(crate) fn minus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Durations are stored as INTEGER milliseconds.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Adds context to a `rusqlite` result and turns it into agentflow's error.
pub(crate) trait Ctx<T> {
    /// Names the operation that failed.
    fn ctx(self, op: &'static str) -> agentflow_core::Result<T>;
}

impl<T> Ctx<T> for rusqlite::Result<T> {
    fn ctx(self, op: &'static str) -> agentflow_core::Result<T> {
        self.map_err(|source| SqliteError::Query { op, source }.into())
    }
}

/// A decode failure of a stored value.
pub(crate) fn decode_err(table: &'static str, message: impl Into<String>) -> agentflow_core::Error {
    SqliteError::Decode { table, message: message.into() }.into()
}

/// A copy of a `rusqlite` error, for reporting one failure (a failed commit) to several callers.
pub(crate) fn dup(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => rusqlite::Error::SqliteFailure(*f, msg.clone()),
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_exactly() {
        let now = Utc::now();
        assert_eq!(from_ts(ts(now)), now);
        assert_eq!(plus(now, Duration::from_secs(1)) - now, chrono::Duration::seconds(1));
        assert_eq!(plus(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
    }
}
