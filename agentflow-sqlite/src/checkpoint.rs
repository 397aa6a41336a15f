//! The checkpointer: copies the WAL back into the database file on its own thread and
//! connection, so the writer thread never stops to do it (nor waits on its `fsync`).

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

use crate::config::SqliteOptions;
use crate::error::SqliteError;

/// How often the checkpointer runs.
const EVERY: Duration = Duration::from_millis(200);

/// The writer checkpoints by itself only when the WAL reaches this many pages (about 40 MiB),
/// should the checkpointer fall behind.
pub(crate) const WRITER_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// Stops the checkpointer thread when dropped.
pub(crate) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts the checkpointer on a connection of its own.
    pub(crate) fn spawn(path: &Path, options: &SqliteOptions) -> Result<Checkpointer, SqliteError> {
        let conn = crate::connect::open_checkpointer(path, options)?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("agentflow-sqlite-checkpointer".into())
            .spawn(move || run(&conn, &stopped))
            .map_err(|source| SqliteError::Spawn { thread: "checkpointer", source })?;
        Ok(Checkpointer { _stop: stop })
    }
}

fn run(conn: &Connection, stopped: &mpsc::Receiver<()>) {
    // Runs until the sender is dropped with the database.
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
        // PASSIVE never blocks the writer; with nothing new in the WAL it costs a lookup.
        let result: rusqlite::Result<(i64, i64, i64)> =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            });
        match result {
            Ok((_busy, log, done)) if log > done => {
                tracing::trace!(log, done, "sqlite checkpoint behind the writer");
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "sqlite checkpoint failed; will retry"),
        }
    }
}
