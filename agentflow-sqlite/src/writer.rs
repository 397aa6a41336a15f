//! The writer thread: the only connection that writes, with group commit.
//!
//! Async callers send a closure over a channel and await a oneshot reply, so they never block
//! the runtime. The thread takes every operation waiting in the channel (up to `max_batch`),
//! runs them in one `BEGIN IMMEDIATE` transaction, each inside its own savepoint (a failing
//! operation rolls back alone), commits once, and only then replies: an acknowledged write is
//! committed. Under load many small writes share one commit; when idle a write commits at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::codec::dup;
use crate::error::SqliteError;

/// One queued write.
trait WriteOp: Send {
    /// Runs the operation; `true` when it succeeded (its savepoint is released, else rolled
    /// back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Replies after the transaction ended; `commit` is the commit's outcome.
    fn finish(self: Box<Self>, commit: Result<(), &rusqlite::Error>);
}

struct Op<T, F> {
    f: Option<F>,
    out: Option<agentflow_core::Result<T>>,
    reply: oneshot::Sender<agentflow_core::Result<T>>,
}

impl<T, F> WriteOp for Op<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> agentflow_core::Result<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else { return false };
        // A panicking operation must not take the writer thread (and every later write) down.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
            .unwrap_or_else(|_| {
                Err(agentflow_core::Error::Backend {
                    service: "sqlite",
                    message: "a write operation panicked; it was rolled back".into(),
                    retryable: false,
                    source: None,
                })
            });
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), &rusqlite::Error>) {
        let out = match (commit, self.out) {
            (Ok(()), Some(out)) => out,
            // A domain answer (lease lost, not found…) stands even if the commit failed: the
            // operation changed nothing anyway.
            (Err(_), Some(Err(own))) if !matches!(own, agentflow_core::Error::Backend { .. }) => {
                Err(own)
            }
            (Err(e), _) => Err(SqliteError::Query { op: "commit", source: dup(e) }.into()),
            (Ok(()), None) => {
                Err(SqliteError::Query { op: "write", source: rusqlite::Error::InvalidQuery }
                    .into())
            }
        };
        // The caller may have gone away (its future was dropped): nothing to do then.
        let _ = self.reply.send(out);
    }
}

/// A handle to the writer thread.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Box<dyn WriteOp>>,
    path: Arc<PathBuf>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn spawn(
        conn: Connection,
        path: Arc<PathBuf>,
        max_batch: usize,
    ) -> Result<Writer, SqliteError> {
        let (tx, rx) = mpsc::channel::<Box<dyn WriteOp>>();
        std::thread::Builder::new()
            .name("agentflow-sqlite-writer".into())
            .spawn(move || run(conn, rx, max_batch.max(1)))
            .map_err(|source| SqliteError::Spawn { thread: "writer", source })?;
        Ok(Writer { tx, path })
    }

    /// Runs `f` in the next group commit and returns its result once committed.
    pub(crate) async fn call<T, F>(&self, f: F) -> agentflow_core::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> agentflow_core::Result<T> + Send + 'static,
    {
        self.submit(f)?.await.map_err(|_| self.gone())?
    }

    /// Like [`Writer::call`], for a thread that is not on the runtime (the pruner).
    pub(crate) fn call_blocking<T, F>(&self, f: F) -> agentflow_core::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> agentflow_core::Result<T> + Send + 'static,
    {
        self.submit(f)?.blocking_recv().map_err(|_| self.gone())?
    }

    fn submit<T, F>(
        &self,
        f: F,
    ) -> agentflow_core::Result<oneshot::Receiver<agentflow_core::Result<T>>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> agentflow_core::Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Box::new(Op { f: Some(f), out: None, reply })).map_err(|_| self.gone())?;
        Ok(rx)
    }

    fn gone(&self) -> agentflow_core::Error {
        SqliteError::ThreadGone { thread: "writer", path: self.path.as_ref().clone() }.into()
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Box<dyn WriteOp>>, max_batch: usize) {
    let mut batch: Vec<Box<dyn WriteOp>> = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let outcome = commit_batch(&conn, &mut batch);
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, ops = batch.len(), "sqlite group commit failed");
        }
        for op in batch.drain(..) {
            op.finish(outcome.as_ref().map(|_| ()));
        }
    }
    // Every handle is gone: close the connection, which checkpoints the WAL when it is the last.
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the sqlite writer connection failed");
    }
}

fn commit_batch(conn: &Connection, batch: &mut [Box<dyn WriteOp>]) -> rusqlite::Result<()> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let result = (|| {
        for op in batch.iter_mut() {
            conn.prepare_cached("SAVEPOINT op")?.execute([])?;
            if !op.run(conn) {
                conn.prepare_cached("ROLLBACK TO op")?.execute([])?;
            }
            conn.prepare_cached("RELEASE op")?.execute([])?;
        }
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    })();
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}
