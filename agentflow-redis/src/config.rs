//! Configuration of a [`RedisQueue`](crate::RedisQueue).

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Where and how a [`RedisQueue`](crate::RedisQueue) keeps its jobs.
///
/// Every key of one queue lives under the hash tag `{<prefix>:<queue>}` (default prefix
/// `agentflow`), so all of them hash to one Redis Cluster slot and every script runs there.
///
/// ```
/// use std::time::Duration;
/// use agentflow_redis::RedisQueueConfig;
///
/// let config: RedisQueueConfig = serde_json::from_str(
///     r#"{ "url": "redis://127.0.0.1:6379", "queue": "agents", "retention": "2days" }"#,
/// ).unwrap();
/// assert_eq!(config.hash_tag(), "{agentflow:agents}");
/// assert_eq!(config.retention, Duration::from_secs(2 * 86_400));
/// // The URL may hold a password: Debug never prints it.
/// assert!(!format!("{config:?}").contains("127.0.0.1"));
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisQueueConfig {
    /// `redis://[user:password@]host:port[/db]`. Kept secret: it may carry a password.
    #[serde(default = "default_url")]
    pub url: SecretString,
    /// The queue's name; several queues can share one Redis.
    #[serde(default = "default_queue")]
    pub queue: String,
    /// The first part of the hash tag (default `agentflow`); tests give each case its own.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// How long finished (completed, failed, cancelled) jobs are kept for history.
    #[serde(default = "default_retention", with = "humantime_serde")]
    pub retention: Duration,
    /// Most due delayed or retryable jobs one reserve promotes (per set), so no call touches an
    /// unbounded number of jobs (1 to 1000).
    #[serde(default = "default_promote_batch")]
    pub promote_batch: usize,
    /// Most finished jobs one call prunes beyond the ones it finishes itself (1 to 1000).
    #[serde(default = "default_prune_batch")]
    pub prune_batch: usize,
    /// How long to wait for a reply before the call fails with a retryable timeout.
    #[serde(default = "default_response_timeout", with = "humantime_serde")]
    pub response_timeout: Duration,
    /// How long to wait for a (re)connection.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
}

fn default_url() -> SecretString {
    SecretString::from("redis://127.0.0.1:6379")
}
fn default_queue() -> String {
    "default".to_owned()
}
fn default_prefix() -> String {
    "agentflow".to_owned()
}
fn default_retention() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn default_promote_batch() -> usize {
    256
}
fn default_prune_batch() -> usize {
    64
}
fn default_response_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

impl Default for RedisQueueConfig {
    fn default() -> Self {
        RedisQueueConfig {
            url: default_url(),
            queue: default_queue(),
            prefix: default_prefix(),
            retention: default_retention(),
            promote_batch: default_promote_batch(),
            prune_batch: default_prune_batch(),
            response_timeout: default_response_timeout(),
            connect_timeout: default_connect_timeout(),
        }
    }
}

impl RedisQueueConfig {
    /// Defaults with `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisQueueConfig { url: SecretString::from(url.into()), ..Default::default() }
    }

    /// Sets the queue name.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Sets the hash tag's prefix (default `agentflow`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets how long finished jobs are kept.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The hash tag every key of this queue starts with: `{<prefix>:<queue>}`.
    pub fn hash_tag(&self) -> String {
        format!("{{{}:{}}}", self.prefix, self.queue)
    }

    pub(crate) fn url(&self) -> &str {
        self.url.expose_secret()
    }

    pub(crate) fn validate(&self) -> agentflow_core::Result<()> {
        for (key, value) in [("redis.queue", &self.queue), ("redis.prefix", &self.prefix)] {
            if value.is_empty() || value.contains(['{', '}']) {
                return Err(agentflow_core::Error::config(
                    key,
                    format!("`{value}` must be non-empty and free of `{{` and `}}`"),
                ));
            }
        }
        // Scripts pass a batch to one variadic command; Lua's stack bounds its size.
        for (key, value) in
            [("redis.promote_batch", self.promote_batch), ("redis.prune_batch", self.prune_batch)]
        {
            if !(1..=1000).contains(&value) {
                return Err(agentflow_core::Error::config(
                    key,
                    format!("{value} is not in 1..=1000"),
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for RedisQueueConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueueConfig")
            .field("url", &"[REDACTED]")
            .field("queue", &self.queue)
            .field("prefix", &self.prefix)
            .field("retention", &self.retention)
            .field("promote_batch", &self.promote_batch)
            .field("prune_batch", &self.prune_batch)
            .field("response_timeout", &self.response_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}
