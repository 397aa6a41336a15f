//! Wakeups: debounced `NOTIFY` out, one `LISTEN` connection in, a local broadcast to workers.
//!
//! A `NOTIFY` inside a transaction takes a database-wide lock at commit, so one per enqueue would
//! serialise every commit. Instead enqueue only flips a flag; a background task sends at most
//! one `pg_notify` per debounce interval per process, in its own tiny transaction. Workers in
//! this process are woken at once through the local broadcast, without the round trip.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agentflow_core::CancellationToken;
use futures::stream::BoxStream;
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::{Notify, broadcast};

/// Shared between the queue (which signals) and the background tasks.
#[derive(Debug)]
pub(crate) struct Wakeups {
    dirty: AtomicBool,
    kick: Notify,
    local: broadcast::Sender<()>,
    listening: AtomicBool,
    channel: String,
    poll_interval: Duration,
}

impl Wakeups {
    pub(crate) fn new(channel: String, poll_interval: Duration) -> Arc<Self> {
        let (local, _) = broadcast::channel(16);
        Arc::new(Wakeups {
            dirty: AtomicBool::new(false),
            kick: Notify::new(),
            local,
            listening: AtomicBool::new(false),
            channel,
            poll_interval,
        })
    }

    /// New jobs may be available: wake local workers now, other instances soon.
    pub(crate) fn signal(&self) {
        let _ = self.local.send(());
        if !self.dirty.swap(true, Ordering::AcqRel) {
            self.kick.notify_one();
        }
    }

    /// Sends the debounced `NOTIFY`s until `stop`.
    pub(crate) fn spawn_notifier(
        self: &Arc<Self>,
        pool: PgPool,
        sql: Arc<str>,
        debounce: Duration,
        stop: CancellationToken,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = this.kick.notified() => {}
                }
                this.dirty.store(false, Ordering::Release);
                let sent = sqlx::query(AssertSqlSafe(sql.clone()))
                    .bind(&this.channel)
                    .execute(&pool)
                    .await;
                if let Err(e) = sent {
                    // Other instances fall back to polling; local workers were woken already.
                    tracing::debug!(error = %e, "postgres NOTIFY failed");
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(debounce) => {}
                }
            }
        });
    }

    /// Starts the `LISTEN` task once (on the first [`stream`](Self::stream)).
    fn ensure_listener(self: &Arc<Self>, pool: &PgPool, stop: &CancellationToken) {
        if self.listening.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        let pool = pool.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            while !stop.is_cancelled() {
                let listener = async {
                    let mut l = PgListener::connect_with(&pool).await?;
                    l.listen(&this.channel).await?;
                    Ok::<_, sqlx::Error>(l)
                };
                let mut listener = tokio::select! {
                    _ = stop.cancelled() => return,
                    l = listener => match l {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::debug!(error = %e, "postgres LISTEN failed; polling meanwhile");
                            tokio::select! {
                                _ = stop.cancelled() => return,
                                _ = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                            continue;
                        }
                    }
                };
                backoff = Duration::from_millis(100);
                // Notifications may have been missed while we were not listening.
                let _ = this.local.send(());
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        n = listener.recv() => match n {
                            Ok(_) => { let _ = this.local.send(()); }
                            Err(e) => {
                                tracing::debug!(error = %e, "postgres LISTEN connection lost");
                                break;
                            }
                        }
                    }
                }
            }
        });
    }

    /// A stream that yields on every local signal, every notification from other instances, and
    /// at least every poll interval.
    pub(crate) fn stream(
        self: &Arc<Self>,
        pool: &PgPool,
        stop: &CancellationToken,
    ) -> BoxStream<'static, ()> {
        self.ensure_listener(pool, stop);
        let rx = self.local.subscribe();
        let mut tick = tokio::time::interval(self.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = stop.clone();
        Box::pin(futures::stream::unfold((rx, tick, stop), |(mut rx, mut tick, stop)| async move {
            tokio::select! {
                _ = stop.cancelled() => None,
                r = rx.recv() => match r {
                    Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => Some(((), (rx, tick, stop))),
                    Err(broadcast::error::RecvError::Closed) => None,
                },
                _ = tick.tick() => Some(((), (rx, tick, stop))),
            }
        }))
    }
}
