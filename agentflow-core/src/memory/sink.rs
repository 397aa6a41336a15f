//! In-process [`EventSink`]s: a broadcast channel, tracing, and a recorder for tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::broadcast;

use crate::event::{Event, EventSink};

/// How many events a [`BroadcastSink`] buffers per receiver by default.
pub const DEFAULT_BROADCAST_CAPACITY: usize = 1024;

/// An [`EventSink`] over a tokio broadcast channel: every [`subscribe`](BroadcastSink::subscribe)r
/// (a dashboard WebSocket, a test) gets every event.
///
/// `emit` never blocks: with no receiver the event is dropped, and a receiver that falls more
/// than the capacity behind skips the oldest events (its next `recv` reports
/// [`RecvError::Lagged`](broadcast::error::RecvError::Lagged) with how many).
///
/// ```
/// use agentflow_core::{memory::BroadcastSink, Event, EventSink, Stats};
///
/// let sink = BroadcastSink::new(16);
/// let mut rx = sink.subscribe();
/// sink.emit(&Event::Stats(Stats::default()));
/// assert_eq!(rx.try_recv().unwrap().name(), "stats:update");
/// ```
#[derive(Debug, Clone)]
pub struct BroadcastSink {
    tx: broadcast::Sender<Event>,
}

impl Default for BroadcastSink {
    fn default() -> Self {
        Self::new(DEFAULT_BROADCAST_CAPACITY)
    }
}

impl BroadcastSink {
    /// A sink buffering up to `capacity` events per receiver (at least 1).
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        BroadcastSink { tx }
    }

    /// A receiver of every event emitted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// How many receivers are listening.
    pub fn receiver_count(&self) -> usize {
        self.tx.receiver_count()
    }
}

impl EventSink for BroadcastSink {
    fn emit(&self, event: &Event) {
        // Err only means nobody listens right now.
        let _ = self.tx.send(event.clone());
    }
}

/// An [`EventSink`] that turns events into `tracing` events under the target
/// `agentflow::events`: task updates at `INFO`, log lines at their level, stats at `DEBUG`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl EventSink for TracingSink {
    fn emit(&self, event: &Event) {
        use crate::run::LogLevel;
        match event {
            Event::TaskUpdate(u) => tracing::info!(
                target: "agentflow::events",
                task = %u.task,
                key = %u.key,
                status = %u.status,
                phase = ?u.state.phase,
                attempt = u.attempt,
                job = ?u.job,
                error = u.error.as_deref(),
                "task:update"
            ),
            Event::Stats(s) => tracing::debug!(
                target: "agentflow::events",
                running = s.running,
                queued = s.queued,
                done_today = s.done_today,
                failed_today = s.failed_today,
                cost_today = s.cost_today,
                paused = s.paused,
                "stats:update"
            ),
            Event::Log(l) => {
                macro_rules! log_at {
                    ($level:ident) => {
                        tracing::$level!(
                            target: "agentflow::events",
                            task = %l.task, run = %l.run, seq = l.seq, kind = %l.kind,
                            "{}", l.line
                        )
                    };
                }
                match l.level {
                    LogLevel::Info => log_at!(info),
                    LogLevel::Warn => log_at!(warn),
                    LogLevel::Error => log_at!(error),
                }
            }
        }
    }
}

/// An [`EventSink`] that keeps every event, for tests and examples.
///
/// ```
/// use agentflow_core::{memory::RecordingSink, Event, EventSink, Stats};
///
/// let sink = RecordingSink::new();
/// sink.emit(&Event::Stats(Stats::default()));
/// assert_eq!(sink.names(), ["stats:update"]);
/// ```
#[derive(Debug, Default)]
pub struct RecordingSink {
    events: Mutex<Vec<Event>>,
    emitted: AtomicU64,
}

impl RecordingSink {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every event recorded so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.lock().clone()
    }

    /// The recorded events, leaving the recorder empty.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.lock())
    }

    /// The wire names of the recorded events, oldest first.
    pub fn names(&self) -> Vec<&'static str> {
        self.lock().iter().map(Event::name).collect()
    }

    /// How many events were emitted in all (including those taken).
    pub fn emitted(&self) -> u64 {
        self.emitted.load(Ordering::Relaxed)
    }
}

impl EventSink for RecordingSink {
    fn emit(&self, event: &Event) {
        self.emitted.fetch_add(1, Ordering::Relaxed);
        self.lock().push(event.clone());
    }
}
