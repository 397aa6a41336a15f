//! [`Database`]: one SQLite file, its writer thread, its reader pool and its pruner.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::checkpoint::Checkpointer;
use crate::config::SqliteOptions;
use crate::connect::{self, Pragmas};
use crate::error::SqliteError;
use crate::migrate;
use crate::prune::Pruner;
use crate::queue::SqliteQueue;
use crate::readers::Readers;
use crate::store::SqliteStore;
use crate::writer::Writer;

/// An open SQLite database: the file behind a [`SqliteQueue`] and a [`SqliteStore`].
///
/// Cheap to clone; the threads stop and the file is closed when the last clone (and the last
/// queue or store made from it) is dropped.
///
/// ```
/// # #[tokio::main] async fn main() -> agentflow_core::Result<()> {
/// use agentflow_sqlite::{Database, SqliteOptions};
/// let dir = tempfile::tempdir().unwrap();
/// let url = format!("sqlite://{}", dir.path().join("agentflow.db").display());
/// let db = Database::open(&url, SqliteOptions::default()).await?;
/// assert_eq!(db.pragmas().await?.journal_mode, "wal");
/// let (queue, store) = (db.queue(), db.store());
/// # let _ = (queue, store);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) path: Arc<PathBuf>,
    pub(crate) writer: Writer,
    pub(crate) readers: Readers,
    pub(crate) options: SqliteOptions,
    /// In-process wakeups for idle workers (enqueue, release, retry due now).
    pub(crate) wake: broadcast::Sender<()>,
    /// Stops the pruner thread when the database is dropped.
    _pruner: Option<Pruner>,
    /// Stops the checkpointer thread when the database is dropped.
    _checkpointer: Checkpointer,
    /// The temporary directory of [`Database::open_temporary`], removed last.
    _temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl Database {
    /// Runs `f` on the writer thread (group commit with other writes).
    pub(crate) async fn write<T, F>(&self, f: F) -> agentflow_core::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> agentflow_core::Result<T> + Send + 'static,
    {
        self.inner.writer.call(f).await
    }

    /// Runs `f` on a reader connection.
    pub(crate) async fn read<T, F>(&self, f: F) -> agentflow_core::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> agentflow_core::Result<T> + Send + 'static,
    {
        self.inner.readers.call(f).await
    }

    /// Opens (creating if needed) the database at `target`: `sqlite://relative.db`,
    /// `sqlite:///absolute/path.db` or a plain path. Sets and verifies the pragmas, migrates
    /// the schema, and starts the writer, reader and pruner threads.
    ///
    /// # Errors
    /// A clear error naming the path when the file or its directory is not writable, the file
    /// is not a database, or it was written by a newer schema version.
    pub async fn open(target: &str, options: SqliteOptions) -> agentflow_core::Result<Database> {
        let path = connect::parse_target(target)?;
        Self::open_path(path, options, None, migrate::LATEST).await
    }

    /// Opens a fresh database in a new temporary directory that is removed when the database is
    /// dropped: for tests and benchmarks.
    pub async fn open_temporary(options: SqliteOptions) -> agentflow_core::Result<Database> {
        let dir = tempfile::Builder::new().prefix("agentflow-sqlite-").tempdir().map_err(|e| {
            SqliteError::NotWritable {
                path: std::env::temp_dir(),
                reason: format!("cannot create a temporary directory: {e}"),
                source: None,
            }
        })?;
        let path = dir.path().join("agentflow.db");
        Self::open_path(path, options, Some(dir), migrate::LATEST).await
    }

    pub(crate) async fn open_path(
        path: PathBuf,
        options: SqliteOptions,
        temp: Option<tempfile::TempDir>,
        upto: i64,
    ) -> agentflow_core::Result<Database> {
        // Opening does file I/O and may wait on another process's lock: keep it off the runtime.
        let task =
            tokio::task::spawn_blocking(move || Self::open_blocking(path, options, temp, upto));
        task.await.map_err(|e| {
            agentflow_core::Error::unavailable(
                "sqlite",
                format!("opening the database panicked: {e}"),
            )
        })?
    }

    fn open_blocking(
        path: PathBuf,
        options: SqliteOptions,
        temp: Option<tempfile::TempDir>,
        upto: i64,
    ) -> agentflow_core::Result<Database> {
        let conn = connect::open_writer(&path, &options, upto)?;
        let readers = (0..options.readers.max(1))
            .map(|_| connect::open_reader(&path, &options))
            .collect::<Result<Vec<_>, _>>()?;
        let path = Arc::new(path);
        let writer = Writer::spawn(conn, Arc::clone(&path), options.max_batch)?;
        let readers = Readers::spawn(readers, Arc::clone(&path))?;
        let pruner = Pruner::spawn(writer.clone(), options.retention.clone())?;
        let checkpointer = Checkpointer::spawn(&path, &options)?;
        let (wake, _) = broadcast::channel(16);
        tracing::debug!(path = %path.display(), "sqlite database open");
        Ok(Database {
            inner: Arc::new(Inner {
                path,
                writer,
                readers,
                options,
                wake,
                _pruner: pruner,
                _checkpointer: checkpointer,
                _temp: temp,
            }),
        })
    }

    /// The job queue on this database.
    pub fn queue(&self) -> SqliteQueue {
        SqliteQueue { db: self.clone() }
    }

    /// The state store on this database.
    pub fn store(&self) -> SqliteStore {
        SqliteStore { db: self.clone() }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The options it was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.inner.options
    }

    /// The pragmas in force on the writer connection, read back from SQLite.
    pub async fn pragmas(&self) -> agentflow_core::Result<Pragmas> {
        self.inner
            .writer
            .call(|conn| {
                connect::read_pragmas(conn).map_err(|e| SqliteError::query("pragmas")(e).into())
            })
            .await
    }

    /// Deletes finished jobs beyond the retention now (the pruner also does it in the
    /// background); returns how many were deleted.
    pub async fn prune(&self) -> agentflow_core::Result<u64> {
        let retention = self.inner.options.retention.clone();
        let writer = self.inner.writer.clone();
        tokio::task::spawn_blocking(move || crate::prune::prune_all(&writer, &retention))
            .await
            .map_err(|e| {
                agentflow_core::Error::unavailable("sqlite", format!("prune panicked: {e}"))
            })?
    }
}

#[cfg(test)]
mod tests {
    use agentflow_core::{JobKind, JobQueue, JobSpec, StateStore};

    use super::*;

    #[tokio::test]
    async fn an_older_file_is_migrated_forward_keeping_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        // A file as version 1 left it: the queue tables only.
        let v1 =
            Database::open_path(path.clone(), SqliteOptions::default(), None, 1).await.unwrap();
        let q = v1.queue();
        let id = q.enqueue(JobSpec::new(JobKind::Execute, "t")).await.unwrap().id();
        q.enqueue(JobSpec::new(JobKind::Execute, "done")).await.unwrap();
        let w = agentflow_core::WorkerId::generate();
        let leases = q.reserve(&w, std::time::Duration::from_secs(60), 2).await.unwrap();
        q.complete(&leases[1]).await.unwrap();
        q.release(&leases[0]).await.unwrap();
        assert_eq!(v1.pragmas().await.unwrap().schema_version, 1);
        assert!(v1.store().get_cursor("c").await.is_err(), "no state tables at version 1");
        drop(v1);

        let db = Database::open(path.to_str().unwrap(), SqliteOptions::default()).await.unwrap();
        assert_eq!(db.pragmas().await.unwrap().schema_version, migrate::LATEST);
        assert_eq!(db.queue().get(id).await.unwrap().unwrap().task.as_str(), "t");
        // Version 3 counted the history that version 1 left.
        let stats = db.queue().stats().await.unwrap();
        assert_eq!((stats.available, stats.completed), (1, 1));
        db.store().put_cursor("c", "v").await.unwrap();
        let raw = rusqlite::Connection::open(&path).unwrap();
        let versions: Vec<i64> = raw
            .prepare("SELECT version FROM schema_version ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(versions, (1..=migrate::LATEST).collect::<Vec<_>>());
    }
}
