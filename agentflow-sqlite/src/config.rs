//! Options for opening a database.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How durable a commit is (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// `NORMAL`: in WAL mode a commit survives a crash of the process; a power loss may lose
    /// the last commits but never corrupts the file. The default.
    #[default]
    Normal,
    /// `FULL`: every commit is synced to disk before it is acknowledged, so it also survives a
    /// power loss, at the cost of one `fsync` per group commit.
    Full,
}

impl Synchronous {
    /// The value `PRAGMA synchronous` reports for this setting.
    pub(crate) fn code(self) -> i64 {
        match self {
            Synchronous::Normal => 1,
            Synchronous::Full => 2,
        }
    }

    /// The pragma keyword.
    pub(crate) fn keyword(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// How long finished jobs (completed, failed, cancelled) are kept for history.
///
/// Both limits apply: a finished job is pruned when it is older than `max_age` or when more
/// than `keep` newer finished jobs exist. `None` turns a limit off. Live jobs are never pruned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Keep at most this many finished jobs (default 10,000).
    pub keep: Option<u64>,
    /// Keep finished jobs at most this long (default 7 days).
    #[serde(with = "humantime_serde")]
    pub max_age: Option<Duration>,
    /// How often the background pruner runs (default 1 minute).
    #[serde(with = "humantime_serde")]
    pub prune_every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep: Some(10_000),
            max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            prune_every: Duration::from_secs(60),
        }
    }
}

/// Options for [`Database::open`](crate::Database::open).
///
/// ```
/// use agentflow_sqlite::{SqliteOptions, Synchronous};
/// let opts: SqliteOptions = serde_json::from_str(
///     r#"{ "synchronous": "full", "busy_timeout": "10s", "retention": { "keep": 500 } }"#,
/// ).unwrap();
/// assert_eq!(opts.synchronous, Synchronous::Full);
/// assert_eq!(opts.retention.keep, Some(500));
/// assert_eq!(opts.readers, 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteOptions {
    /// Commit durability (default `normal`).
    pub synchronous: Synchronous,
    /// How long a connection waits for another process's write lock before giving up
    /// (`PRAGMA busy_timeout`, default 5 s).
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
    /// Reader connections, each on its own thread (default 2).
    pub readers: usize,
    /// At most this many writes share one transaction (group commit, default 256).
    pub max_batch: usize,
    /// Finished-job retention.
    pub retention: Retention,
    /// Log lines kept per run; older ones are dropped behind one marker line (default 10,000).
    pub max_log_lines_per_run: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            readers: 2,
            max_batch: 256,
            retention: Retention::default(),
            max_log_lines_per_run: 10_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_rejected_and_durations_are_human() {
        let err = serde_json::from_str::<SqliteOptions>(r#"{ "busy_timeot": "5s" }"#).unwrap_err();
        assert!(err.to_string().contains("busy_timeot"), "{err}");
        let opts: SqliteOptions = serde_json::from_str(
            r#"{ "retention": { "keep": null, "max_age": "3days", "prune_every": "30s" } }"#,
        )
        .unwrap();
        assert_eq!(opts.retention.keep, None);
        assert_eq!(opts.retention.max_age, Some(Duration::from_secs(3 * 86_400)));
        assert_eq!(opts.retention.prune_every, Duration::from_secs(30));
        assert_eq!(opts.busy_timeout, Duration::from_secs(5));
    }
}
