//! The reader pool: a few read-only connections, each on its own thread.
//!
//! In WAL mode readers never block the writer nor each other, and see every committed write.
//! Reads go through a shared channel, so a slow listing on one reader does not hold up a quick
//! lookup on another.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::SqliteError;

type ReadOp = Box<dyn FnOnce(&Connection) + Send>;

/// A handle to the reader threads.
#[derive(Clone)]
pub(crate) struct Readers {
    tx: mpsc::Sender<ReadOp>,
    path: Arc<PathBuf>,
}

impl Readers {
    /// Starts one thread per connection.
    pub(crate) fn spawn(
        conns: Vec<Connection>,
        path: Arc<PathBuf>,
    ) -> Result<Readers, SqliteError> {
        let (tx, rx) = mpsc::channel::<ReadOp>();
        let rx = Arc::new(Mutex::new(rx));
        for (i, conn) in conns.into_iter().enumerate() {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("agentflow-sqlite-reader-{i}"))
                .spawn(move || run(conn, &rx))
                .map_err(|source| SqliteError::Spawn { thread: "reader", source })?;
        }
        Ok(Readers { tx, path })
    }

    /// Runs `f` on a reader connection.
    pub(crate) async fn call<T, F>(&self, f: F) -> agentflow_core::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> agentflow_core::Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let op: ReadOp = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.tx.send(op).map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())?
    }

    fn gone(&self) -> agentflow_core::Error {
        SqliteError::ThreadGone { thread: "reader", path: self.path.as_ref().clone() }.into()
    }
}

fn run(conn: Connection, rx: &Mutex<mpsc::Receiver<ReadOp>>) {
    loop {
        // Hold the lock only to take one op, so the other readers can take the next.
        let op = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match op {
            Ok(op) => op(&conn),
            Err(_) => return,
        }
    }
}
