//! Wakeups for idle workers: a blocking `BLPOP` on the queue's notify list, on a connection of
//! its own (a blocking command would stall every other call multiplexed on a shared one).

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use std::sync::Arc;

use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

use crate::keys::Keys;

/// The longest one blocking wait lasts; also the polling period for delayed jobs coming due.
const MAX_WAIT: Duration = Duration::from_secs(1);
const MIN_WAIT: Duration = Duration::from_millis(10);

/// One background waiter per queue handle, fanned out to every stream taken from it.
///
/// The waiter lives as long as the handle. While nobody listens it holds no connection and
/// sleeps on `listening`; a new listener stores a permit there, so a waiter that saw no
/// listener an instant before cannot miss it (an earlier version let the waiter exit and
/// restarted it, and a listener arriving between its check and its exit got no wakeups).
pub(crate) struct Wakeups {
    tx: broadcast::Sender<()>,
    listening: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Wakeups {
    pub(crate) fn start(client: redis::Client, keys: Keys) -> Self {
        let (tx, _) = broadcast::channel(16);
        let listening = Arc::new(Notify::new());
        let task = tokio::spawn(run(client, keys, tx.clone(), listening.clone()));
        Wakeups { tx, listening, task }
    }

    pub(crate) fn subscribe(&mut self) -> BoxStream<'static, ()> {
        let rx = self.tx.subscribe();
        self.listening.notify_one();
        futures::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => Some(((), rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
        .boxed()
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connect(client: &redis::Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(MAX_WAIT + Duration::from_secs(4)));
    client.get_multiplexed_async_connection_with_config(&config).await
}

/// Milliseconds until the next delayed (scheduled or retryable) job is due, if any.
async fn next_due_in(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
) -> redis::RedisResult<Option<i64>> {
    type Head = Vec<(String, f64)>;
    let (sched, retry, time): (Head, Head, (i64, i64)) = redis::pipe()
        .zrange_withscores(keys.scheduled(), 0, 0)
        .zrange_withscores(keys.retryable(), 0, 0)
        .cmd("TIME")
        .query_async(conn)
        .await?;
    let now = time.0 * 1000 + time.1 / 1000;
    Ok(sched.iter().chain(&retry).map(|(_, at)| *at as i64 - now).min())
}

async fn run(client: redis::Client, keys: Keys, tx: broadcast::Sender<()>, listening: Arc<Notify>) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        if tx.receiver_count() == 0 {
            // Nobody listens: give the connection back and sleep until somebody does.
            conn = None;
            listening.notified().await;
            continue;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match connect(&client).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::debug!(error = %e, "wakeup connection failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            },
        };
        let step = async {
            let due_in = next_due_in(c, &keys).await?;
            let wait = due_in
                .map(|ms| Duration::from_millis(ms.max(0) as u64).clamp(MIN_WAIT, MAX_WAIT))
                .unwrap_or(MAX_WAIT);
            let popped: Option<(String, String)> = redis::cmd("BLPOP")
                .arg(keys.notify())
                .arg(wait.as_secs_f64())
                .query_async(c)
                .await?;
            let due = due_in.is_some_and(|ms| ms <= wait.as_millis() as i64);
            redis::RedisResult::Ok(popped.is_some() || due)
        };
        match step.await {
            Ok(wake) => {
                backoff = Duration::from_millis(50);
                if wake {
                    // No receiver is fine: the next turn waits for one.
                    let _ = tx.send(());
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "wakeup wait failed; reconnecting");
                conn = None;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
