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
            let config = agentflow_postgres::PgConfig::new(url);
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
            let config = agentflow_postgres::PgConfig::new(url);
            Ok(Arc::new(agentflow_postgres::PgQueue::connect(&config).await?))
        }
        #[cfg(not(feature = "postgres"))]
        "postgres" | "postgresql" => Err(missing_feature(key, "postgres")),
        #[cfg(feature = "redis")]
        "redis" | "rediss" => Ok(Arc::new(
            agentflow_redis::RedisQueue::connect(agentflow_redis::RedisQueueConfig::new(url))
                .await?,
        )),
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
