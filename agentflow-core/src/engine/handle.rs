//! [`EngineHandle`]: controls a running engine from a dashboard, a CLI or a test.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::broadcast;

use super::{EngineConfig, Shared, StopReason, lock};
use crate::error::{Error, Result};
use crate::event::{Event, Stats, TaskUpdate};
use crate::job::{JobFilter, JobId, JobKind, JobSpec, JobState, Page};
use crate::lifecycle::{LifecycleEvent, Phase, State, next};
use crate::task::{Report, ReportKind, TaskId, TaskStatus};

/// Controls an [`Engine`](super::Engine). Cheap to clone; every clone controls the same engine.
#[derive(Clone)]
pub struct EngineHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle").field("worker", &self.shared.worker).finish_non_exhaustive()
    }
}

const LIVE: [JobState; 4] =
    [JobState::Scheduled, JobState::Available, JobState::Running, JobState::Retryable];

impl EngineHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        EngineHandle { shared }
    }

    /// Stops picking up new tasks and starting new runs; running ones continue.
    pub fn pause(&self) {
        if !self.shared.paused.swap(true, Ordering::SeqCst) {
            tracing::info!("engine paused");
            self.emit_paused_stats();
        }
    }

    /// Picks up tasks again.
    pub fn resume(&self) {
        if self.shared.paused.swap(false, Ordering::SeqCst) {
            tracing::info!("engine resumed");
            self.wake();
            self.emit_paused_stats();
        }
    }

    fn emit_paused_stats(&self) {
        let shared = self.shared.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { shared.publish_stats().await });
        }
    }

    /// Whether the engine is paused.
    pub fn is_paused(&self) -> bool {
        self.shared.paused.load(Ordering::SeqCst)
    }

    /// Runs a failed or cancelled task again: it goes back to In Progress and a `Retry` job
    /// resuming its stored session is queued. Returns the job.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown task; [`Error::Conflict`] when the task has a live job
    /// or is neither failed nor cancelled.
    pub async fn retry(&self, task: &TaskId) -> Result<JobId> {
        let s = &self.shared;
        if s.running_job(task).is_some() {
            return Err(Error::Conflict(format!("task {task} is running")));
        }
        let live = s
            .queue
            .list(
                &JobFilter { states: LIVE.to_vec(), ..JobFilter::task(task.clone()) },
                Page::first(1),
            )
            .await?;
        if let Some(job) = live.first() {
            return Err(Error::Conflict(format!(
                "task {task} already has a live job {} ({})",
                job.id, job.state
            )));
        }
        let t = s.source.get(task).await?.ok_or_else(|| Error::not_found("task", task))?;
        let last = s.queue.list(&JobFilter::task(task.clone()), Page::first(1)).await?;
        let last_ended_badly =
            last.first().is_some_and(|j| matches!(j.state, JobState::Failed | JobState::Cancelled));
        if t.status != TaskStatus::Failed && !last_ended_badly {
            return Err(Error::Conflict(format!(
                "task {} is {}; only failed or cancelled tasks can be retried",
                t.key, t.status
            )));
        }
        let config = s.config();
        s.source.set_status(task, TaskStatus::InProgress).await?;
        let spec = JobSpec::new(JobKind::Retry, task.clone())
            .unique_key(format!("execute:{task}"))
            .payload(serde_json::json!({ "resume": true, "manual": true }))
            .priority(i16::from(t.priority.rank()))
            .max_attempts(config.max_attempts)
            .timeout(config.timeout);
        // The board shows Queued before the job exists: a worker may reserve the job the moment
        // it is enqueued, and its Running update must not be overwritten by this one.
        let state =
            next(State::at(Phase::Failed, 0, config.max_attempts), LifecycleEvent::ManualRetry)
                .unwrap_or(State::at(Phase::Queued, 0, config.max_attempts));
        let mut t = t;
        t.status = TaskStatus::InProgress;
        s.touch(&t, |u| {
            u.status = TaskStatus::InProgress;
            u.state = state;
            u.job = None;
            u.kind = Some(JobKind::Retry);
            u.attempt = 0;
            u.error = None;
        });
        let id = match s.queue.enqueue(spec).await {
            Ok(enqueued) => enqueued.id(),
            Err(e) => {
                // Nothing was queued: show the task as failed again rather than stuck in Queued.
                s.touch(&t, |u| {
                    u.status = TaskStatus::Failed;
                    u.state = State::at(Phase::Failed, 0, config.max_attempts);
                    u.error = Some(format!("retry could not be queued: {e}"));
                });
                let _ = s.source.set_status(task, TaskStatus::Failed).await;
                return Err(e);
            }
        };
        tracing::info!(task = %task, job = %id, "manual retry queued");
        s.touch(&t, |u| {
            if u.job.is_none() {
                u.job = Some(id);
            }
        });
        s.work_wake.notify_one();
        Ok(id)
    }

    /// Cancels a task's run (or its queued job). The task shows as Failed with a report saying
    /// it was cancelled. Returns `false` when there was nothing to cancel.
    pub async fn cancel(&self, task: &TaskId) -> Result<bool> {
        let s = &self.shared;
        if let Some(running) = s.running_job(task) {
            running.stop(StopReason::Cancelled);
            s.queue.cancel(running.job).await?;
            return Ok(true);
        }
        let live = s
            .queue
            .list(
                &JobFilter { states: LIVE.to_vec(), ..JobFilter::task(task.clone()) },
                Page::first(10),
            )
            .await?;
        let mut cancelled = false;
        for job in live {
            cancelled |= s.queue.cancel(job.id).await?;
        }
        if cancelled {
            s.source.set_status(task, TaskStatus::Failed).await?;
            let report = Report {
                run: format!("cancel:{task}"),
                kind: ReportKind::Summary,
                body: "⏹ Cancelled from agentflow before it ran.".to_owned(),
            };
            if let Err(error) = s.source.report(task, &report).await {
                tracing::warn!(%error, task = %task, "cannot post the cancel report");
            }
            s.touch_id(task, |u| {
                u.status = TaskStatus::Failed;
                u.state.phase = Phase::Cancelled;
                u.error = Some("cancelled from agentflow".to_owned());
            });
        }
        Ok(cancelled)
    }

    /// Engine-wide numbers (also emitted as `stats:update`).
    pub async fn stats(&self) -> Result<Stats> {
        self.shared.stats().await
    }

    /// Every event from now on. A slow receiver misses events (`RecvError::Lagged`) rather than
    /// slowing the engine.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// The live board: the last state of every task the engine touched, newest first.
    pub fn tasks(&self) -> Vec<TaskUpdate> {
        lock(&self.shared.board).all()
    }

    /// One task's live state.
    pub fn task(&self, id: &TaskId) -> Option<TaskUpdate> {
        lock(&self.shared.board).get(id)
    }

    /// Changes how many jobs run at once. Lowering it lets running jobs finish.
    pub fn set_workers(&self, workers: usize) {
        self.shared.update_config(|c| c.workers = workers.max(1));
        self.shared.work_wake.notify_one();
    }

    /// Changes the Todo poll interval (takes effect now).
    pub fn set_poll_interval(&self, interval: Duration) {
        self.shared.update_config(|c| c.poll_interval = interval.max(Duration::from_millis(10)));
        self.shared.poll_wake.notify_one();
    }

    /// Changes the daily budget (`None`: no limit); takes effect at once.
    pub async fn set_daily_budget(&self, usd: Option<f64>) -> Result<Stats> {
        if let Some(b) = usd
            && !(b >= 0.0 && b.is_finite())
        {
            return Err(Error::config("daily_budget_usd", "must be a non-negative number"));
        }
        self.shared.update_config(|c| c.daily_budget_usd = usd);
        let stats = self.shared.stats().await?;
        self.shared.emit(Event::Stats(stats));
        self.wake();
        Ok(stats)
    }

    /// Polls for tasks, feedback and due jobs now.
    pub fn wake(&self) {
        self.shared.poll_wake.notify_one();
        self.shared.feedback_wake.notify_one();
        self.shared.work_wake.notify_one();
    }

    /// The current configuration.
    pub fn config(&self) -> EngineConfig {
        self.shared.config()
    }
}
