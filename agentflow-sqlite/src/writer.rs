//! The writer thread: the only connection that writes, with group commit.
//!
//! Async callers send a closure over a channel and await a oneshot reply, so they never block
//! the runtime. The thread takes every operation waiting in the channel (up to `max_batch`),
//! runs them in one `BEGIN IMMEDIATE` transaction, commits once, and only then replies: an
//! acknowledged write is committed. Under load many small writes share one commit; when idle a
//! write commits at once.
//!
//! Operations need no savepoint each (which would copy every page they touch into a
//! sub-journal): SQLite undoes a failed statement by itself, and an operation that answers
//! with a domain error (lease lost, not found, conflict) has written nothing. An operation that
//! fails in SQLite after writing (I/O error, disk full, corrupt row, panic) poisons the batch:
//! the whole transaction rolls back, the operations after it do not run, and every caller in
//! the batch gets a retryable error.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::codec::dup;
use crate::error::SqliteError;

/// How a batch ended.
enum BatchEnd<'a> {
    /// Committed.
    Committed,
    /// `BEGIN` or `COMMIT` failed.
    Failed(&'a rusqlite::Error),
    /// An operation failed after writing; everything was rolled back.
    RolledBack(&'a str),
}

/// One queued write.
trait WriteOp: Send {
    /// Runs the operation. `Err(message)` when it failed in a way that may have left partial
    /// writes, so the batch must roll back.
    fn run(&mut self, conn: &Connection) -> Result<(), String>;
    /// Replies after the transaction ended.
    fn finish(self: Box<Self>, end: &BatchEnd<'_>);
}

struct Op<T, F> {
    f: Option<F>,
    out: Option<agentflow_core::Result<T>>,
    reply: oneshot::Sender<agentflow_core::Result<T>>,
}

/// Whether an error may come after a partial write (rather than being a domain answer given
/// before writing anything).
fn poisons(e: &agentflow_core::Error) -> bool {
    matches!(e, agentflow_core::Error::Backend { .. } | agentflow_core::Error::Unavailable { .. })
}

impl<T, F> WriteOp for Op<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> agentflow_core::Result<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> Result<(), String> {
        let Some(f) = self.f.take() else { return Ok(()) };
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
        let poisoned = match &out {
            Err(e) if poisons(e) => Err(e.to_string()),
            _ => Ok(()),
        };
        self.out = Some(out);
        poisoned
    }

    fn finish(self: Box<Self>, end: &BatchEnd<'_>) {
        let out = match (end, self.out) {
            (BatchEnd::Committed, Some(out)) => out,
            // A domain answer (lease lost, not found…) stands whatever happened to the batch:
            // the operation changed nothing anyway. So does the error of the op that failed.
            (_, Some(Err(own))) => Err(own),
            (BatchEnd::Failed(e), _) => {
                Err(SqliteError::Query { op: "commit", source: dup(e) }.into())
            }
            (BatchEnd::RolledBack(why), _) => Err(agentflow_core::Error::Backend {
                service: "sqlite",
                message: format!(
                    "the group commit was rolled back because another write in it failed: {why}"
                ),
                retryable: true,
                source: None,
            }),
            (BatchEnd::Committed, None) => Err(agentflow_core::Error::Backend {
                service: "sqlite",
                message: "a write operation did not run".into(),
                retryable: true,
                source: None,
            }),
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
        match commit_batch(&conn, &mut batch) {
            Ok(None) => batch.drain(..).for_each(|op| op.finish(&BatchEnd::Committed)),
            Ok(Some(why)) => {
                tracing::warn!(error = %why, ops = batch.len(), "sqlite group commit rolled back");
                batch.drain(..).for_each(|op| op.finish(&BatchEnd::RolledBack(&why)));
            }
            Err(e) => {
                tracing::warn!(error = %e, ops = batch.len(), "sqlite group commit failed");
                batch.drain(..).for_each(|op| op.finish(&BatchEnd::Failed(&e)));
            }
        }
    }
    // Every handle is gone: close the connection, which checkpoints the WAL when it is the last.
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the sqlite writer connection failed");
    }
}

/// Runs a batch in one transaction. `Ok(None)`: committed; `Ok(Some(why))`: an operation
/// poisoned the batch and it was rolled back; `Err`: `BEGIN` or `COMMIT` failed.
fn commit_batch(
    conn: &Connection,
    batch: &mut [Box<dyn WriteOp>],
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let mut poisoned = None;
    for op in batch.iter_mut() {
        if let Err(why) = op.run(conn) {
            poisoned = Some(why);
            break;
        }
    }
    let result = match poisoned {
        None => conn.prepare_cached("COMMIT").and_then(|mut s| s.execute([])).map(|_| None),
        Some(why) => conn.execute_batch("ROLLBACK").map(|()| Some(why)),
    };
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op<T: Send + 'static>(
        f: impl FnOnce(&Connection) -> agentflow_core::Result<T> + Send + 'static,
    ) -> (Box<dyn WriteOp>, oneshot::Receiver<agentflow_core::Result<T>>) {
        let (reply, rx) = oneshot::channel();
        (Box::new(Op { f: Some(f), out: None, reply }), rx)
    }

    fn insert(conn: &Connection, v: i64) -> agentflow_core::Result<()> {
        conn.execute("INSERT INTO t (v) VALUES (?1)", [v])
            .map(|_| ())
            .map_err(|e| SqliteError::query("test")(e).into())
    }

    fn run_batch(conn: &Connection, mut batch: Vec<Box<dyn WriteOp>>) {
        let end = commit_batch(conn, &mut batch).unwrap();
        let end = match &end {
            None => BatchEnd::Committed,
            Some(why) => BatchEnd::RolledBack(why),
        };
        batch.into_iter().for_each(|op| op.finish(&end));
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_domain_error_does_not_disturb_the_batch() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let (a, ra) = op(|c| insert(c, 1));
        let (b, rb) = op(|_| Err::<(), _>(agentflow_core::Error::not_found("job", "x")));
        let (c, rc) = op(|c| insert(c, 2));
        run_batch(&conn, vec![a, b, c]);
        assert!(ra.blocking_recv().unwrap().is_ok());
        assert!(matches!(rb.blocking_recv().unwrap(), Err(agentflow_core::Error::NotFound { .. })));
        assert!(rc.blocking_recv().unwrap().is_ok());
        assert_eq!(count(&conn), 2);
    }

    #[test]
    fn a_failure_after_writing_rolls_the_whole_batch_back() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let (a, ra) = op(|c| insert(c, 1));
        let (b, rb) = op(|c| {
            insert(c, 2)?;
            c.execute("INSERT INTO missing (v) VALUES (1)", [])
                .map_err(|e| agentflow_core::Error::from(SqliteError::query("test")(e)))
        });
        let (p, rp) = op::<()>(|_| panic!("not reached"));
        run_batch(&conn, vec![a, b, p]);
        let a = ra.blocking_recv().unwrap().unwrap_err();
        assert!(a.is_retryable() && a.to_string().contains("rolled back"), "{a}");
        assert!(rb.blocking_recv().unwrap().unwrap_err().to_string().contains("missing"));
        assert!(rp.blocking_recv().unwrap().unwrap_err().is_retryable());
        assert_eq!(count(&conn), 0, "nothing of the batch was committed");
    }

    #[test]
    fn a_panicking_op_is_an_error_not_a_dead_writer() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let (p, rp) = op::<()>(|_| panic!("boom"));
        run_batch(&conn, vec![p]);
        assert!(rp.blocking_recv().unwrap().unwrap_err().to_string().contains("panicked"));
        let (a, ra) = op(|c| insert(c, 1));
        run_batch(&conn, vec![a]);
        assert!(ra.blocking_recv().unwrap().is_ok());
    }
}
