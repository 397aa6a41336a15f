//! Choose backends at run time by URL, like `object_store::parse_url`.
//!
//! | URL | queue | state store | feature |
//! |---|---|---|---|
//! | `memory://` | [`MemoryQueue`](crate::memory::MemoryQueue) | [`MemoryStore`](crate::memory::MemoryStore) | always |
//! | `sqlite://PATH` | `SqliteQueue` | `SqliteStore` (same file) | `sqlite` |
//! | `postgres://…` | `PgQueue` | `PgStore` | `postgres` |
//! | `redis://…` | `RedisQueue` | — | `redis` |
//!
//! A URL whose feature is not compiled in is an [`Error::InvalidConfig`] naming the feature.
//!
//! Several deployments (or test runs) can share one server: `postgres://…?schema=NAME` keeps
//! the tables in schema `NAME` (default `agentflow`; `[a-z_][a-z0-9_]*`, created when missing),
//! and `redis://…?prefix=NAME` puts every key of the queue under `{NAME:default}` (default
//! prefix `agentflow`). These parameters are taken off the URL before it reaches the driver.

use std::sync::Arc;

use crate::{Error, JobQueue, Result, StateStore};

/// A queue and a state store opened from URLs.
#[derive(Clone)]
pub struct Backends {
    /// The job queue.
    pub queue: Arc<dyn JobQueue>,
    /// The state store.
    pub store: Arc<dyn StateStore>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends").finish_non_exhaustive()
    }
}

/// The URL scheme: `sqlite`, `postgres`, `redis`, `memory`.
fn scheme(url: &str) -> &str {
    url.split_once("://").map_or("", |(s, _)| s)
}

#[cfg(not(all(feature = "sqlite", feature = "postgres", feature = "redis")))]
fn missing_feature(key: &str, feature: &str) -> Error {
    Error::config(
        key,
        format!(
            "`{feature}://` URLs need agentflow's `{feature}` feature \
             (cargo add agentflow --features {feature})"
        ),
    )
}

/// Opens the state store at `database_url` and the queue at `queue_url` (or at `database_url`
/// when `None`). With one SQLite URL both share the file.
///
/// `database_key` and `queue_key` name the configuration keys in errors.
///
/// ```
/// # #[tokio::main] async fn main() -> agentflow::Result<()> {
/// let backends = agentflow::backend::open("memory://", None).await?;
/// assert_eq!(backends.queue.stats().await?.total(), 0);
/// let err = agentflow::backend::open("mysql://db", None).await.unwrap_err();
/// assert!(err.to_string().contains("storage.database_url"));
/// # Ok(()) }
/// ```
pub async fn open(database_url: &str, queue_url: Option<&str>) -> Result<Backends> {
    const DB: &str = "storage.database_url";
    const QUEUE: &str = "storage.queue_url";
    let (store, same_file_queue) = open_store(DB, database_url).await?;
    let queue = match queue_url {
        Some(url) if url != database_url => open_queue(QUEUE, url).await?,
        _ => match same_file_queue {
            Some(q) => q,
            None => open_queue(DB, database_url).await?,
        },
    };
    Ok(Backends { queue, store })
}

#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
/// Removes the query parameter `name` from `url`, returning the URL without it and its value.
fn take_param(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_owned(), None) };
    let mut value = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((k, v)) if k == name => {
                value = Some(v.to_owned());
                false
            }
            _ => !pair.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    (url, value)
}

/// The Postgres settings of `url`, with its `schema` parameter applied.
#[cfg(feature = "postgres")]
fn pg_config(url: &str) -> agentflow_postgres::PgConfig {
    let (url, schema) = take_param(url, "schema");
    let config = agentflow_postgres::PgConfig::new(url);
    match schema {
        Some(schema) => config.schema(schema),
        None => config,
    }
}

/// Opens a state store; for SQLite also returns the queue on the same file.
async fn open_store(
    key: &str,
    url: &str,
) -> Result<(Arc<dyn StateStore>, Option<Arc<dyn JobQueue>>)> {
    match scheme(url) {
        "memory" => Ok((Arc::new(crate::memory::MemoryStore::new()), None)),
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            let (queue, store) = agentflow_sqlite::open(url, Default::default()).await?;
            Ok((Arc::new(store), Some(Arc::new(queue))))
        }
        #[cfg(not(feature = "sqlite"))]
        "sqlite" => Err(missing_feature(key, "sqlite")),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => {
            let config = pg_config(url);
            Ok((Arc::new(agentflow_postgres::PgStore::connect(&config).await?), None))
        }
        #[cfg(not(feature = "postgres"))]
        "postgres" | "postgresql" => Err(missing_feature(key, "postgres")),
        "redis" | "rediss" => Err(Error::config(
            key,
            "Redis holds the job queue only; keep the state store on sqlite:// or postgres:// \
             and set storage.queue_url = \"redis://…\"",
        )),
        other => Err(Error::config(
            key,
            format!("unsupported URL scheme `{other}`: use sqlite://PATH, postgres://…, memory://"),
        )),
    }
}

/// Opens a job queue.
async fn open_queue(key: &str, url: &str) -> Result<Arc<dyn JobQueue>> {
    match scheme(url) {
        "memory" => Ok(Arc::new(crate::memory::MemoryQueue::new())),
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            Ok(Arc::new(agentflow_sqlite::SqliteQueue::open(url, Default::default()).await?))
        }
        #[cfg(not(feature = "sqlite"))]
        "sqlite" => Err(missing_feature(key, "sqlite")),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => {
            let config = pg_config(url);
            Ok(Arc::new(agentflow_postgres::PgQueue::connect(&config).await?))
        }
        #[cfg(not(feature = "postgres"))]
        "postgres" | "postgresql" => Err(missing_feature(key, "postgres")),
        #[cfg(feature = "redis")]
        "redis" | "rediss" => {
            let (url, prefix) = take_param(url, "prefix");
            let mut config = agentflow_redis::RedisQueueConfig::new(url);
            if let Some(prefix) = prefix {
                config = config.prefix(prefix);
            }
            Ok(Arc::new(agentflow_redis::RedisQueue::connect(config).await?))
        }
        #[cfg(not(feature = "redis"))]
        "redis" | "rediss" => Err(missing_feature(key, "redis")),
        other => Err(Error::config(
            key,
            format!(
                "unsupported URL scheme `{other}`: use sqlite://PATH, redis://…, postgres://…, memory://"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::take_param;

    #[test]
    fn parameters_come_off_the_url() {
        let p = |u: &str, n: &str| take_param(u, n);
        assert_eq!(p("postgres://h/db", "schema"), ("postgres://h/db".into(), None));
        assert_eq!(
            p("postgres://h/db?schema=a_1", "schema"),
            ("postgres://h/db".into(), Some("a_1".into()))
        );
        assert_eq!(
            p("postgres://h/db?sslmode=disable&schema=x&application_name=y", "schema"),
            ("postgres://h/db?sslmode=disable&application_name=y".into(), Some("x".into()))
        );
        assert_eq!(
            p("redis://h:1/2?prefix=t", "prefix"),
            ("redis://h:1/2".into(), Some("t".into()))
        );
    }
}
