//! Group commit for single enqueues: calls that arrive while earlier batches are in flight are
//! coalesced into one script call, so many concurrent producers cost few round trips and few
//! script runs.

use std::sync::Arc;

use agentflow_core::{Enqueued, JobSpec};
use redis::aio::ConnectionManager;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{ENQUEUE_CHUNK, enqueue_chunked};
use crate::keys::Keys;

/// Batches in flight at once; further requests wait in the channel and form the next batch.
const IN_FLIGHT: usize = 4;

type Reply = oneshot::Sender<agentflow_core::Result<Enqueued>>;

pub(super) struct EnqueueBatcher {
    tx: mpsc::UnboundedSender<(JobSpec, Reply)>,
}

impl EnqueueBatcher {
    /// Starts the background task; it ends when the batcher is dropped.
    pub(super) fn start(conn: ConnectionManager, keys: Keys) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(conn, keys, rx));
        EnqueueBatcher { tx }
    }

    pub(super) async fn enqueue(&self, spec: JobSpec) -> agentflow_core::Result<Enqueued> {
        let (reply, rx) = oneshot::channel();
        self.tx.send((spec, reply)).map_err(|_| {
            agentflow_core::Error::unavailable("redis", "the enqueue batcher stopped")
        })?;
        rx.await.map_err(|_| {
            agentflow_core::Error::unavailable("redis", "the enqueue batch was dropped")
        })?
    }
}

/// The same failure for every caller of a batch (`agentflow_core::Error` is not `Clone`).
fn replicate(e: &agentflow_core::Error) -> agentflow_core::Error {
    if e.is_retryable() {
        agentflow_core::Error::unavailable("redis", e.to_string())
    } else {
        agentflow_core::Error::Backend {
            service: "redis",
            message: e.to_string(),
            retryable: false,
            source: None,
        }
    }
}

async fn run(
    conn: ConnectionManager,
    keys: Keys,
    mut rx: mpsc::UnboundedReceiver<(JobSpec, Reply)>,
) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let mut specs = vec![first.0];
        let mut replies = vec![first.1];
        while specs.len() < ENQUEUE_CHUNK {
            let Ok((spec, reply)) = rx.try_recv() else { break };
            specs.push(spec);
            replies.push(reply);
        }
        let (conn, keys) = (conn.clone(), keys.clone());
        tokio::spawn(async move {
            match enqueue_chunked(&conn, &keys, &specs).await {
                Ok(results) => {
                    for (reply, r) in replies.into_iter().zip(results) {
                        let _ = reply.send(Ok(r));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(replicate(&e)));
                    }
                }
            }
            drop(permit);
        });
    }
}
