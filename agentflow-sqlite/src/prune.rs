//! The background pruner: deletes finished jobs beyond the retention, in small chunks.
//!
//! Each chunk is its own write in the group commit, so pruning a large backlog never holds the
//! write lock long enough to stall reserve or complete.

use std::sync::mpsc;
use std::time::Duration;

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension};

use crate::codec::{Ctx, ts};
use crate::config::Retention;
use crate::writer::Writer;

/// Rows deleted per write.
const CHUNK: i64 = 2_000;
/// Chunks per pruning pass at most (bounds one pass at 1,000,000 rows).
const MAX_CHUNKS: usize = 500;

/// Stops the pruner thread when dropped.
pub(crate) struct Pruner {
    _stop: mpsc::Sender<()>,
}

impl Pruner {
    /// Starts the pruner, unless the retention keeps everything.
    pub(crate) fn spawn(
        writer: Writer,
        retention: Retention,
    ) -> Result<Option<Pruner>, crate::SqliteError> {
        if retention.keep.is_none() && retention.max_age.is_none() {
            return Ok(None);
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let every = retention.prune_every.max(Duration::from_millis(10));
        std::thread::Builder::new()
            .name("agentflow-sqlite-pruner".into())
            .spawn(move || {
                // Runs until the sender is dropped with the database.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    match prune_all(&writer, &retention) {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(deleted = n, "pruned finished jobs"),
                        Err(e) => tracing::warn!(error = %e, "pruning finished jobs failed"),
                    }
                }
            })
            .map_err(|source| crate::SqliteError::Spawn { thread: "pruner", source })?;
        Ok(Some(Pruner { _stop: stop }))
    }
}

/// Prunes until nothing is left beyond the retention (bounded); returns rows deleted.
pub(crate) fn prune_all(writer: &Writer, retention: &Retention) -> agentflow_core::Result<u64> {
    let mut total = 0;
    for _ in 0..MAX_CHUNKS {
        let retention = retention.clone();
        let n = writer.call_blocking(move |conn| prune_chunk(conn, &retention))?;
        total += n;
        if n < CHUNK as u64 {
            break;
        }
    }
    Ok(total)
}

/// Deletes up to [`CHUNK`] finished jobs beyond the retention.
fn prune_chunk(conn: &Connection, retention: &Retention) -> agentflow_core::Result<u64> {
    let mut deleted = 0;
    if let Some(age) = retention.max_age {
        let cutoff = ts(crate::codec::minus(Utc::now(), age));
        deleted += conn
            .prepare_cached(
                "DELETE FROM finished_jobs WHERE rowid IN
                   (SELECT rowid FROM finished_jobs WHERE finished_at < ?1
                    ORDER BY finished_at LIMIT ?2)",
            )
            .and_then(|mut s| s.execute((cutoff, CHUNK)))
            .ctx("prune")? as u64;
    }
    if let Some(keep) = retention.keep {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        // The newest finished job that falls outside the `keep` newest: it and older ones go.
        let cutoff: Option<(i64, i64)> = conn
            .prepare_cached(
                "SELECT finished_at, rowid FROM finished_jobs
                 ORDER BY finished_at DESC, rowid DESC LIMIT 1 OFFSET ?1",
            )
            .and_then(|mut s| s.query_row([keep], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .ctx("prune")?;
        if let Some((at, rowid)) = cutoff {
            deleted += conn
                .prepare_cached(
                    "DELETE FROM finished_jobs WHERE rowid IN
                       (SELECT rowid FROM finished_jobs
                        WHERE finished_at < ?1 OR (finished_at = ?1 AND rowid <= ?2)
                        ORDER BY finished_at LIMIT ?3)",
                )
                .and_then(|mut s| s.execute((at, rowid, CHUNK - deleted as i64)))
                .ctx("prune")? as u64;
        }
    }
    Ok(deleted)
}
