//! The engine: pollers, workers, reconciliation and the lifecycle glue between a
//! [`TaskSource`], a [`JobQueue`], an [`Executor`], a [`StateStore`] and an [`EventSink`].
//!
//! ```text
//! TaskSource ─ready→ todo poller ─claim, enqueue→ JobQueue ─reserve→ worker ─run→ Executor
//!      ▲                                                         │ heartbeat, timeout, cancel
//!      └──────────── set_status / report ◀── lifecycle ◀─────────┘ progress → store, events
//! ```
//!
//! Build one with [`Engine::builder`], run it with [`Engine::run`] until a shutdown token
//! fires, and control it from anywhere through [`Engine::handle`].

mod board;
mod builder;
mod config;
mod handle;
mod poller;
mod progress;
mod reconcile;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{NaiveTime, Utc};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use builder::EngineBuilder;
pub use config::{EngineConfig, RetryConfig};
pub use handle::EngineHandle;

use crate::error::{Error, Result};
use crate::event::{Event, EventSink, Stats};
use crate::executor::{Executor, ToolProvider};
use crate::job::{JobId, WorkerId};
use crate::queue::JobQueue;
use crate::review::ReviewPolicy;
use crate::source::TaskSource;
use crate::state::StateStore;
use crate::store::RunId;
use crate::task::{TaskId, TaskStatus};

/// Runs tasks from a [`TaskSource`] through a [`JobQueue`] and an [`Executor`].
///
/// See the crate docs for a complete example.
pub struct Engine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("worker", &self.shared.worker).finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts building an engine.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// A handle to control the engine (pause, retry, cancel, stats, events), cheap to clone.
    pub fn handle(&self) -> EngineHandle {
        EngineHandle::new(self.shared.clone())
    }

    /// This engine's worker id (unique per engine).
    pub fn worker_id(&self) -> &WorkerId {
        &self.shared.worker
    }

    /// Runs until `shutdown` fires, then shuts down gracefully: polling stops, running jobs get
    /// [`EngineConfig::shutdown_grace`] to finish, the rest are cancelled and released back to
    /// the queue (their attempt is not consumed).
    ///
    /// On start it reconciles: expired leases are recovered and In Progress tasks without a
    /// live job are enqueued again (resuming a stored session); it checks again every
    /// [`EngineConfig::reconcile_interval`]. Dropping the returned future
    /// without firing `shutdown` stops everything at once; leases then expire and another
    /// engine picks the jobs up.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the engine is already running.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        if self.shared.started.swap(true, Ordering::SeqCst) {
            return Err(Error::Conflict("the engine is already running".into()));
        }
        let shared = self.shared.clone();
        tracing::info!(worker = %shared.worker, "engine starting");
        reconcile::startup(&shared).await;
        // Know the budget before the first reservation.
        shared.publish_stats().await;

        let stop_polling = shutdown.child_token();
        let mut loops = JoinSet::new();
        loops.spawn(poller::todo_loop(shared.clone(), stop_polling.clone()));
        loops.spawn(poller::feedback_loop(shared.clone(), stop_polling.clone()));
        loops.spawn(reconcile::reaper_loop(shared.clone(), stop_polling.clone()));
        loops.spawn(reconcile::reconcile_loop(shared.clone(), stop_polling.clone()));

        worker::dispatch(shared.clone(), shutdown).await;

        stop_polling.cancel();
        while loops.join_next().await.is_some() {}
        shared.started.store(false, Ordering::SeqCst);
        tracing::info!(worker = %shared.worker, "engine stopped");
        Ok(())
    }
}

/// Why the engine stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// The attempt hit its timeout.
    Timeout(Duration),
    /// Our lease is gone (expired and recovered, or the job was cancelled elsewhere).
    LeaseLost,
    /// A person moved the task out of In Progress (`None`: the task is gone).
    Moved(Option<TaskStatus>),
    /// Cancelled through [`EngineHandle::cancel`].
    Cancelled,
    /// The engine is shutting down.
    Shutdown,
}

impl StopReason {
    pub(crate) fn describe(self) -> String {
        match self {
            StopReason::Timeout(d) => Error::Timeout { after: d }.to_string(),
            StopReason::LeaseLost => "the job's lease was lost".to_owned(),
            StopReason::Moved(Some(s)) => format!("a person moved the task to {s}"),
            StopReason::Moved(None) => "the task no longer exists".to_owned(),
            StopReason::Cancelled => "cancelled from agentflow".to_owned(),
            StopReason::Shutdown => "the engine shut down; the job was released".to_owned(),
        }
    }
}

/// A run in progress in this engine.
#[derive(Debug)]
pub(crate) struct RunningJob {
    pub(crate) job: JobId,
    pub(crate) run: RunId,
    pub(crate) cancel: CancellationToken,
    reason: Mutex<Option<StopReason>>,
    /// Comments for the live session, when the executor accepts them.
    inbox: Option<tokio::sync::mpsc::UnboundedSender<crate::task::Feedback>>,
}

impl RunningJob {
    pub(crate) fn new(
        job: JobId,
        run: RunId,
        inbox: Option<tokio::sync::mpsc::UnboundedSender<crate::task::Feedback>>,
    ) -> Self {
        RunningJob { job, run, cancel: CancellationToken::new(), reason: Mutex::new(None), inbox }
    }

    /// Hands `comment` to the live session; gives it back when the run takes no more comments
    /// (no inbox, or the executor closed it).
    pub(crate) fn deliver(
        &self,
        comment: crate::task::Feedback,
    ) -> std::result::Result<(), crate::task::Feedback> {
        match &self.inbox {
            Some(tx) => tx.send(comment).map_err(|e| e.0),
            None => Err(comment),
        }
    }

    /// Stops the run; the first reason given wins.
    pub(crate) fn stop(&self, reason: StopReason) {
        let mut r = lock(&self.reason);
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.cancel.cancel();
    }

    pub(crate) fn reason(&self) -> Option<StopReason> {
        *lock(&self.reason)
    }
}

/// Everything the engine's loops and its handles share.
pub(crate) struct Shared {
    pub(crate) source: Arc<dyn TaskSource>,
    pub(crate) queue: Arc<dyn JobQueue>,
    pub(crate) executor: Arc<dyn Executor>,
    pub(crate) store: Arc<dyn StateStore>,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) tools: Option<Arc<dyn ToolProvider>>,
    pub(crate) review: Arc<dyn ReviewPolicy>,
    pub(crate) worker: WorkerId,
    config: RwLock<EngineConfig>,
    pub(crate) paused: AtomicBool,
    pub(crate) budget_exhausted: AtomicBool,
    started: AtomicBool,
    /// Wakes the Todo poller.
    pub(crate) poll_wake: Notify,
    /// Wakes the feedback poller.
    pub(crate) feedback_wake: Notify,
    /// Wakes the dispatcher (jobs may be due, a slot freed, resume).
    pub(crate) work_wake: Notify,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) board: Mutex<board::Board>,
    pub(crate) running: Mutex<HashMap<TaskId, Arc<RunningJob>>>,
}

impl Shared {
    pub(crate) fn config(&self) -> EngineConfig {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn update_config(&self, f: impl FnOnce(&mut EngineConfig)) {
        f(&mut self.config.write().unwrap_or_else(|e| e.into_inner()));
    }

    /// Sends an event to the sink and to subscribers.
    pub(crate) fn emit(&self, event: Event) {
        self.sink.emit(&event);
        let _ = self.events.send(event);
    }

    /// Whether a new run may start: not paused and within budget.
    pub(crate) fn may_start(&self) -> bool {
        !self.paused.load(Ordering::SeqCst) && !self.budget_exhausted.load(Ordering::SeqCst)
    }

    pub(crate) fn running_job(&self, task: &TaskId) -> Option<Arc<RunningJob>> {
        lock(&self.running).get(task).cloned()
    }

    /// Stops every run of this engine.
    pub(crate) fn stop_all(&self, reason: StopReason) {
        for job in lock(&self.running).values() {
            job.stop(reason);
        }
    }

    /// Computes the stats (refreshing the budget flag) without emitting them.
    pub(crate) async fn stats(&self) -> Result<Stats> {
        let queue = self.queue.stats().await?;
        let midnight = Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc();
        let totals = self.store.totals_since(midnight).await?;
        let exhausted =
            self.config().daily_budget_usd.is_some_and(|budget| totals.usage.cost_usd >= budget);
        let was = self.budget_exhausted.swap(exhausted, Ordering::SeqCst);
        if exhausted && !was {
            tracing::warn!(
                cost_today = totals.usage.cost_usd,
                "daily budget reached; new runs paused"
            );
        } else if was && !exhausted {
            self.work_wake.notify_one();
        }
        Ok(Stats {
            running: queue.running,
            queued: queue.queued(),
            done_today: totals.succeeded,
            failed_today: totals.failed,
            cost_today: totals.usage.cost_usd,
            paused: self.paused.load(Ordering::SeqCst),
            budget_exhausted: exhausted,
        })
    }

    /// Computes the stats and emits `stats:update`; failures are logged.
    pub(crate) async fn publish_stats(&self) {
        match self.stats().await {
            Ok(stats) => self.emit(Event::Stats(stats)),
            Err(error) => tracing::warn!(%error, "cannot compute stats"),
        }
    }
}

/// Locks a mutex, ignoring poisoning (the data is plain bookkeeping).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
