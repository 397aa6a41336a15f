#![doc = include_str!("../README.md")]

mod checkpoint;
mod codec;
mod config;
mod connect;
mod db;
mod error;
mod migrate;
mod prune;
mod queue;
mod readers;
mod store;
mod writer;

pub use config::{Retention, SqliteOptions, Synchronous};
pub use connect::Pragmas;
pub use db::Database;
pub use error::SqliteError;
pub use queue::SqliteQueue;
pub use store::SqliteStore;

/// The newest schema version this build writes (the `schema_version` table holds one row per
/// applied migration).
pub const SCHEMA_VERSION: i64 = migrate::LATEST;

/// Opens the database at `target` (`sqlite://relative.db`, `sqlite:///absolute/path.db` or a
/// plain path) and returns its queue and state store, which share one file, one writer thread
/// and one reader pool.
///
/// ```
/// # #[tokio::main] async fn main() -> agentflow_core::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let url = format!("sqlite://{}", dir.path().join("agentflow.db").display());
/// let (queue, store) = agentflow_sqlite::open(&url, Default::default()).await?;
/// assert_eq!(queue.database().path(), store.database().path());
/// # Ok(()) }
/// ```
pub async fn open(
    target: &str,
    options: SqliteOptions,
) -> agentflow_core::Result<(SqliteQueue, SqliteStore)> {
    let db = Database::open(target, options).await?;
    Ok((db.queue(), db.store()))
}
