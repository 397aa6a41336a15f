//! Connection settings: URL, schema, pool size, migrations and queue tuning.

use std::str::FromStr;
use std::time::Duration;

use agentflow_core::{Error, Result};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::PgError;

/// How to reach Postgres and how the queue and store behave.
///
/// Deserializes from the daemon's configuration (durations in human form):
///
/// ```
/// let cfg: agentflow_postgres::PgConfig = serde_json::from_str(r#"{
///     "url": "postgres://postgres@127.0.0.1:5432/test",
///     "schema": "agentflow",
///     "notify_debounce": "20ms",
///     "retention": "7days"
/// }"#).unwrap();
/// assert_eq!(cfg.schema, "agentflow");
/// assert!(!format!("{cfg:?}").contains("127.0.0.1"));
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database?sslmode=…`. Secret: it may hold a password.
    pub url: SecretString,
    /// The schema holding agentflow's tables (created if missing). Default `agentflow`.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Run the embedded migrations on connect. Default `true`; set `false` when migrations are
    /// applied separately (see [`migrate`](crate::migrate)) by a role allowed to change the schema.
    #[serde(default = "yes")]
    pub run_migrations: bool,
    /// Pool size. Default 16.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long to wait for a connection from the pool. Default 10 s.
    #[serde(default = "default_acquire_timeout", with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// At most one cross-instance `NOTIFY` per this interval (per process). Default 10 ms.
    #[serde(default = "default_notify_debounce", with = "humantime_serde")]
    pub notify_debounce: Duration,
    /// [`wakeups`](agentflow_core::JobQueue::wakeups) also fires this often, so scheduled jobs
    /// and lost notifications are picked up without `NOTIFY`. Default 1 s.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Finished jobs older than this are deleted by [`PgQueue::prune_finished`](crate::PgQueue::prune_finished)
    /// and by a background task every minute. Default 7 days (as the SQLite queue); `None`
    /// (`"retention": null`) keeps history forever.
    #[serde(default = "default_retention", with = "humantime_serde")]
    pub retention: Option<Duration>,
    /// Most requests folded into one statement by the batcher (enqueue, reserve, complete).
    /// Default 512.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Log lines kept per run; older ones are replaced by one `marker` line. Default 10,000.
    #[serde(default = "default_max_log_lines")]
    pub max_log_lines: u64,
}

fn default_schema() -> String {
    "agentflow".to_owned()
}
fn yes() -> bool {
    true
}
fn default_max_connections() -> u32 {
    16
}
fn default_acquire_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_notify_debounce() -> Duration {
    Duration::from_millis(10)
}
fn default_poll_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_retention() -> Option<Duration> {
    Some(Duration::from_secs(7 * 24 * 3600))
}

fn default_max_batch() -> usize {
    512
}
fn default_max_log_lines() -> u64 {
    10_000
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &"[REDACTED]")
            .field("schema", &self.schema)
            .field("run_migrations", &self.run_migrations)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("notify_debounce", &self.notify_debounce)
            .field("poll_interval", &self.poll_interval)
            .field("retention", &self.retention)
            .field("max_batch", &self.max_batch)
            .field("max_log_lines", &self.max_log_lines)
            .finish()
    }
}

impl PgConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        PgConfig {
            url: SecretString::from(url.into()),
            schema: default_schema(),
            run_migrations: true,
            max_connections: default_max_connections(),
            acquire_timeout: default_acquire_timeout(),
            notify_debounce: default_notify_debounce(),
            poll_interval: default_poll_interval(),
            retention: default_retention(),
            max_batch: default_max_batch(),
            max_log_lines: default_max_log_lines(),
        }
    }

    /// Sets the schema.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Whether to run migrations on connect.
    pub fn run_migrations(mut self, yes: bool) -> Self {
        self.run_migrations = yes;
        self
    }

    /// Sets the pool size.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets the retention of finished jobs.
    pub fn retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// Sets the number of log lines kept per run.
    pub fn max_log_lines(mut self, n: u64) -> Self {
        self.max_log_lines = n.max(2);
        self
    }

    /// Checks the schema name (it is spliced into SQL, so it must be a plain identifier).
    pub(crate) fn validate(&self) -> Result<()> {
        validate_schema(&self.schema)?;
        if self.max_batch == 0 {
            return Err(Error::config("postgres.max_batch", "must be at least 1"));
        }
        if self.max_log_lines < 2 {
            return Err(Error::config("postgres.max_log_lines", "must be at least 2"));
        }
        Ok(())
    }

    /// Connection options parsed from the URL.
    pub(crate) fn connect_options(&self) -> Result<PgConnectOptions> {
        let url = self.url.expose_secret();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::config(
                "postgres.url",
                "must start with postgres:// or postgresql://",
            ));
        }
        PgConnectOptions::from_str(url)
            .map(|o| o.application_name("agentflow"))
            // The driver's message may quote the URL; keep it out of the error.
            .map_err(|_| Error::config("postgres.url", "not a valid postgres:// URL"))
    }

    /// Opens a pool (lazily: the first query connects) after validating the settings.
    pub async fn pool(&self) -> Result<PgPool> {
        self.validate()?;
        let options = self.connect_options()?;
        PgPoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(0)
            .acquire_timeout(self.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(|e| PgError::sqlx("connect", e).into())
    }
}

/// Accepts `[a-z_][a-z0-9_]*`, at most 48 bytes (room for the `_jobs` channel suffix).
pub(crate) fn validate_schema(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 48
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            "postgres.schema",
            format!(
                "`{schema}` is not a plain lowercase identifier ([a-z_][a-z0-9_]*, at most 48 bytes)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert!(validate_schema("agentflow").is_ok());
        assert!(validate_schema("t_123").is_ok());
        for bad in ["", "1abc", "a-b", "A", "a;drop", &"x".repeat(49)] {
            assert!(validate_schema(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_scheme_is_checked_and_never_echoed() {
        let e = PgConfig::new("mysql://u:hunter2@h/db").connect_options().unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
        let e = PgConfig::new("postgres://u:hunter2@h:notaport/db").connect_options().unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let r: std::result::Result<PgConfig, _> =
            serde_json::from_str(r#"{"url":"postgres://x/y","shema":"a"}"#);
        assert!(r.is_err());
    }
}
