//! Folds concurrent requests into one statement (group commit).
//!
//! Each caller sends its request with a reply channel. One task takes the first request, waits
//! for a free execution slot, drains whatever else is queued (up to `max_batch`) and runs the
//! whole batch as one statement. While the slots are busy, requests pile up, so batches grow with
//! load and one commit (one fsync) serves many callers; an idle queue still answers a lone
//! request at once.

use std::future::Future;
use std::sync::Arc;

use agentflow_core::{Error, Result};
use tokio::sync::{Semaphore, mpsc, oneshot};

type Item<Req, Resp> = (Req, oneshot::Sender<Result<Resp>>);

/// Sends requests to a batching task.
pub(crate) struct Batcher<Req, Resp> {
    tx: mpsc::UnboundedSender<Item<Req, Resp>>,
    name: &'static str,
}

impl<Req, Resp> Batcher<Req, Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    /// Spawns the batching task. `exec` runs one batch and returns one result per request, in
    /// order. At most `slots` batches run at once.
    pub(crate) fn spawn<F, Fut>(name: &'static str, max_batch: usize, slots: usize, exec: F) -> Self
    where
        F: Fn(Vec<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Result<Resp>>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Item<Req, Resp>>();
        let exec = Arc::new(exec);
        let slots = Arc::new(Semaphore::new(slots.max(1)));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let Ok(permit) = slots.clone().acquire_owned().await else { break };
                let mut batch = vec![first];
                while batch.len() < max_batch {
                    match rx.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                let exec = exec.clone();
                tokio::spawn(async move {
                    let (reqs, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    let n = reqs.len();
                    let mut results = exec(reqs).await;
                    debug_assert_eq!(results.len(), n, "{name}: one result per request");
                    results.resize_with(n, || {
                        Err(Error::backend(
                            name,
                            "batch returned too few results",
                            false,
                            "internal",
                        ))
                    });
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(result);
                    }
                    drop(permit);
                });
            }
        });
        Batcher { tx, name }
    }

    /// Queues `req` and waits for its result.
    pub(crate) async fn call(&self, req: Req) -> Result<Resp> {
        let (reply, rx) = oneshot::channel();
        self.tx.send((req, reply)).map_err(|_| {
            Error::unavailable("postgres", format!("{} batcher stopped", self.name))
        })?;
        rx.await.map_err(|_| {
            Error::unavailable("postgres", format!("{} batcher dropped the request", self.name))
        })?
    }
}

/// One copy of `e` per request of a failed batch (the first keeps the source).
pub(crate) fn fan_out<T>(e: Error, n: usize) -> Vec<Result<T>> {
    let mut out = Vec::with_capacity(n);
    for _ in 1..n {
        out.push(Err(copy_of(&e)));
    }
    out.insert(0, Err(e));
    out
}

/// A sourceless copy of an error with the same kind, message and retryability.
pub(crate) fn copy_of(e: &Error) -> Error {
    match e {
        Error::Unavailable { service, message, .. } => {
            Error::Unavailable { service, message: message.clone(), source: None }
        }
        Error::LeaseLost { job } => Error::LeaseLost { job: *job },
        Error::InvalidInput(m) => Error::InvalidInput(m.clone()),
        other => Error::Backend {
            service: "postgres",
            message: other.to_string(),
            retryable: other.is_retryable(),
            source: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_calls_share_batches_and_get_their_own_answer() {
        let batches = Arc::new(AtomicUsize::new(0));
        let b2 = batches.clone();
        let batcher = Arc::new(Batcher::spawn("test", 64, 1, move |reqs: Vec<u32>| {
            b2.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                reqs.into_iter().map(|r| Ok(r * 2)).collect()
            }
        }));
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let b = batcher.clone();
            tasks.push(tokio::spawn(async move { (i, b.call(i).await.unwrap()) }));
        }
        for t in tasks {
            let (i, r) = t.await.unwrap();
            assert_eq!(r, i * 2);
        }
        let n = batches.load(Ordering::SeqCst);
        assert!(n < 200, "200 concurrent calls ran in {n} batches");
    }

    #[test]
    fn fan_out_keeps_retryability() {
        let out: Vec<Result<()>> = fan_out(Error::unavailable("postgres", "down"), 3);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|r| r.as_ref().unwrap_err().is_retryable()));
    }
}
