//! Workers: reserve jobs up to the concurrency limit and run each one under its lease,
//! timeout and cancellation.

pub(crate) mod ending;
mod finish;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use chrono::Utc;
use futures::StreamExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::progress::{self, RunContext};
use super::{RunningJob, Shared, StopReason, lock, poller};
use crate::error::{Error, Result};
use crate::job::{JobId, JobKind, JobState, Lease};
use crate::lifecycle::{LifecycleEvent, Phase, State, next};
use crate::run::{ProgressSender, RunOutcome, RunRequest};
use crate::store::{Run, RunFilter, RunFinish, RunId, RunStatus, Session};
use crate::task::{Feedback, Task, TaskId, TaskStatus};

/// Reserves and runs jobs until `shutdown` fires, then drains: running jobs get
/// `shutdown_grace`, the rest are stopped and release their lease.
pub(crate) async fn dispatch(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut jobs: JoinSet<()> = JoinSet::new();
    let mut wakeups = shared.queue.wakeups();
    loop {
        while let Some(done) = jobs.try_join_next() {
            log_join(done);
        }
        if shutdown.is_cancelled() {
            break;
        }
        let config = shared.config();
        let free = config.workers.saturating_sub(jobs.len());
        if free > 0 && shared.may_start() {
            match shared.queue.reserve(&shared.worker, config.lease, free).await {
                Ok(leases) => {
                    for lease in leases {
                        let span = tracing::info_span!(
                            "job",
                            task = %lease.job.task,
                            job = %lease.job.id,
                            attempt = lease.job.attempt,
                            worker = %shared.worker,
                            kind = lease.job.kind.as_str(),
                        );
                        jobs.spawn(run_job(shared.clone(), lease).instrument(span));
                    }
                }
                Err(error) => tracing::warn!(%error, "reserve failed"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = shared.work_wake.notified() => {}
            Some(done) = jobs.join_next(), if !jobs.is_empty() => log_join(done),
            Some(()) = async { match wakeups.as_mut() { Some(w) => w.next().await, None => std::future::pending().await } } => {}
            _ = tokio::time::sleep(config.queue_poll_interval) => {}
        }
    }

    if jobs.is_empty() {
        return;
    }
    let config = shared.config();
    tracing::info!(running = jobs.len(), grace = ?config.shutdown_grace, "shutting down: waiting for running jobs");
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while let Some(done) = jobs.join_next().await {
            log_join(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            running = jobs.len(),
            "grace period over: cancelling and releasing the rest"
        );
        shared.stop_all(StopReason::Shutdown);
        let stopped = tokio::time::timeout(config.cancel_grace * 2, async {
            while let Some(done) = jobs.join_next().await {
                log_join(done);
            }
        })
        .await;
        if stopped.is_err() {
            tracing::warn!(
                running = jobs.len(),
                "jobs did not stop; abandoning them (their leases will expire)"
            );
            jobs.abort_all();
        }
    }
}

fn log_join(done: std::result::Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!(error = %e, "a job panicked");
    }
}

/// Everything about one attempt, once it is set up.
pub(crate) struct Attempt {
    pub(crate) lease: Lease,
    pub(crate) task: Task,
    pub(crate) run: RunId,
    pub(crate) state: State,
    pub(crate) previous_session: Option<Session>,
    pub(crate) workspace: Option<std::path::PathBuf>,
}

pub(crate) use finish::resume_ending;

/// Runs one reserved job to its end.
pub(crate) async fn run_job(shared: Arc<Shared>, lease: Lease) {
    let attempt = match prepare(&shared, &lease).await {
        Ok(Some(prepared)) => prepared,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, "cannot start the attempt");
            finish::fail_before_start(&shared, &lease, error).await;
            return;
        }
    };
    let (mut request, feedback_count) = match build_request(&shared, &attempt).await {
        Ok(r) => r,
        Err(error) => {
            finish::finish_failure(&shared, &attempt, error).await;
            return;
        }
    };
    tracing::info!(run = %attempt.run, resume = request.resume_session.is_some(), feedback = feedback_count, "attempt started");

    let inbox = shared.executor.accepts_comments().then(|| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        request.inbox = Some(rx);
        tx
    });
    let running = Arc::new(RunningJob::new(attempt.lease.job.id, attempt.run, inbox));
    lock(&shared.running).insert(attempt.task.id.clone(), running.clone());
    if attempt.lease.job.kind != JobKind::Feedback {
        deliver_pending(&shared, &attempt.task.id, &running).await;
    }

    let (tx, rx) = ProgressSender::channel();
    let done = CancellationToken::new();
    let ctx = RunContext {
        task: &attempt.task,
        run: attempt.run,
        attempt: attempt.lease.job.attempt,
        max_attempts: attempt.lease.job.max_attempts,
        workspace: attempt.workspace.clone(),
    };
    let pump = progress::pump(&shared, ctx, rx, done.clone());
    let exec = shared.executor.run(request, tx, running.cancel.clone());
    let supervised = async {
        let r = supervise(&shared, &attempt.lease, &running, exec).await;
        done.cancel();
        r
    };
    let (result, pumped) = tokio::join!(supervised, pump);

    {
        let mut map = lock(&shared.running);
        if map.get(&attempt.task.id).is_some_and(|r| r.run == attempt.run) {
            map.remove(&attempt.task.id);
        }
    }
    if let Some(tools) = &shared.tools {
        tools.revoke(attempt.run).await;
    }

    match (running.reason(), result) {
        // The job is no longer ours, or a person decided: the outcome does not count.
        (Some(StopReason::LeaseLost), _) => finish::lease_lost(&shared, &attempt).await,
        (Some(StopReason::Moved(status)), _) => finish::moved(&shared, &attempt, status).await,
        (Some(StopReason::Cancelled), _) => finish::cancelled(&shared, &attempt).await,
        // A run that finished while being stopped for a timeout or shutdown still succeeded.
        (_, Ok(outcome)) => finish::finish_success(&shared, &attempt, outcome, pumped).await,
        (Some(StopReason::Shutdown), Err(_)) => finish::released(&shared, &attempt).await,
        (Some(StopReason::Timeout(after)), Err(_)) => {
            finish::finish_failure(&shared, &attempt, Error::Timeout { after }).await;
        }
        (None, Err(error)) => finish::finish_failure(&shared, &attempt, error).await,
    }
    shared.publish_stats().await;
    shared.work_wake.notify_one();
}

/// Comments that came while the task waited for this attempt (written on an In Progress task
/// that was not running here) go into the live session; without an inbox they stay pending and
/// become feedback when the run ends in review.
async fn deliver_pending(shared: &Shared, task: &crate::task::TaskId, running: &RunningJob) {
    if running.inbox.is_none() {
        return;
    }
    let pending = match poller::load_pending(shared, task).await {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => return,
        Err(error) => return tracing::warn!(%error, "cannot read pending comments"),
    };
    let mut kept = Vec::new();
    for comment in pending {
        if let Err(comment) = running.deliver(comment) {
            kept.push(comment);
        }
    }
    let value = serde_json::to_string(&kept).unwrap_or_else(|_| "[]".to_owned());
    match shared.store.put_cursor(&poller::pending_key(task), &value).await {
        Ok(()) => tracing::info!(delivered = true, "pending comments handed to the live session"),
        Err(error) => tracing::warn!(%error, "cannot clear pending comments"),
    }
}

/// Runs the executor future while heartbeating, enforcing the timeout and waiting at most
/// `cancel_grace` for it to stop once cancelled.
async fn supervise(
    shared: &Shared,
    lease: &Lease,
    running: &RunningJob,
    exec: impl Future<Output = Result<RunOutcome>>,
) -> Result<RunOutcome> {
    let config = shared.config();
    let mut exec = pin!(exec);
    let every = config.heartbeat_every();
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let timeout = lease.job.timeout;
    let mut deadline = pin!(tokio::time::sleep(timeout));
    let mut timed_out = false;
    let mut beating = true;
    let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        tokio::select! {
            r = &mut exec => return r,
            _ = heartbeat.tick(), if beating => {
                // A hung backend must not hold up the run: the next tick tries again.
                match tokio::time::timeout(every, shared.queue.heartbeat(lease, config.lease)).await {
                    Err(_) => tracing::warn!("heartbeat timed out"),
                    Ok(Ok(_)) => {}
                    Ok(Err(Error::LeaseLost { .. })) => {
                        tracing::warn!("lease lost; cancelling the run");
                        beating = false;
                        running.stop(StopReason::LeaseLost);
                    }
                    Ok(Err(error)) => tracing::warn!(%error, "heartbeat failed"),
                }
            }
            _ = &mut deadline, if !timed_out => {
                timed_out = true;
                tracing::warn!(timeout = ?timeout, "attempt timed out; cancelling the run");
                running.stop(StopReason::Timeout(timeout));
            }
            _ = running.cancel.cancelled(), if grace.is_none() => {
                grace = Some(Box::pin(tokio::time::sleep(config.cancel_grace)));
            }
            _ = async { if let Some(g) = grace.as_mut() { g.await } }, if grace.is_some() => {
                tracing::warn!("executor did not stop within cancel_grace; dropping it");
                return Err(Error::Cancelled { reason: "the executor did not stop in time".into() });
            }
        }
    }
}

/// Loads the task and checks it still wants this job; records the run's start.
/// `Ok(None)`: the job was ended here (task gone or moved).
async fn prepare(shared: &Shared, lease: &Lease) -> Result<Option<Attempt>> {
    let job = &lease.job;
    let Some(mut task) = shared.source.get(&job.task).await? else {
        tracing::info!("task no longer exists; ending its job");
        end_job(shared, lease, "the task no longer exists").await;
        return Ok(None);
    };
    match ending::load(shared, &task.id).await? {
        Some(end) if end.job == job.id => {
            finish::resume_ending(shared, Some(lease), &task, end).await?;
            return Ok(None);
        }
        // Another job's ending that was carried out but could not be cleared.
        Some(_) => ending::clear(shared, &task.id).await,
        None => {}
    }
    let wanted = match job.kind {
        JobKind::Feedback => match task.status {
            TaskStatus::InReview => true,
            // A retried or released feedback job finds the task where its first attempt left
            // it; but a task a person moved back to Todo (and we claimed again) belongs to its
            // new Execute job.
            TaskStatus::InProgress => !has_live_execute(shared, &task.id).await?,
            _ => false,
        },
        JobKind::Execute | JobKind::Retry => task.status == TaskStatus::InProgress,
    };
    if !wanted {
        tracing::info!(status = %task.status, "task moved by a person before the job ran; ending its job");
        end_job(shared, lease, &format!("a person moved the task to {}", task.status)).await;
        shared.touch(&task, |u| {
            u.status = task.status;
            u.job = None;
        });
        return Ok(None);
    }
    let base = if job.kind == JobKind::Feedback { Phase::FeedbackQueued } else { Phase::Queued };
    let state = next(
        State::at(base, job.attempt.saturating_sub(1), job.max_attempts),
        LifecycleEvent::Start,
    )
    .unwrap_or(State::at(Phase::Failed, job.attempt, job.max_attempts));
    if state.phase != Phase::Running {
        return Err(Error::executor(
            format!("attempt {} exceeds the {} allowed", job.attempt, job.max_attempts),
            false,
        ));
    }
    if job.kind == JobKind::Feedback && task.status == TaskStatus::InReview {
        shared.source.set_status(&task.id, TaskStatus::InProgress).await?;
        task.status = TaskStatus::InProgress;
    }
    let previous_session = shared.store.get_session(&task.id).await?;
    let workspace = previous_session.as_ref().and_then(|s| s.workspace.clone()).or_else(|| {
        shared.config().workspace_root.map(|root| root.join(workspace_dir_name(&task.key)))
    });
    let run = RunId::new();
    let started_at = Utc::now();
    shared
        .store
        .start_run(&Run {
            id: run,
            task: task.id.clone(),
            task_key: task.key.clone(),
            title: task.title.clone(),
            job: job.id,
            kind: job.kind,
            attempt: job.attempt,
            worker: shared.worker.to_string(),
            started_at,
            finished_at: None,
            status: RunStatus::Running,
            error: None,
            summary: None,
            session_id: None,
            usage: Default::default(),
        })
        .await?;
    close_abandoned_runs(shared, &task.id, job.id, run).await;
    shared.touch(&task, |u| {
        u.status = TaskStatus::InProgress;
        u.state = state;
        u.job = Some(job.id);
        u.kind = Some(job.kind);
        u.run = Some(run);
        u.attempt = job.attempt;
        u.max_attempts = job.max_attempts;
        u.started_at = Some(started_at);
        u.last_line = None;
        u.error = None;
    });
    Ok(Some(Attempt { lease: lease.clone(), task, run, state, previous_session, workspace }))
}

/// The reason recorded on a run whose worker stopped without finishing it.
pub(crate) const ABANDONED: &str =
    "abandoned: the worker running it stopped (its lease expired and the job was taken over)";

/// Closes the task's runs that are still recorded as running but cannot be: earlier attempts of
/// `job` (a job is reserved again only once the previous attempt's lease is gone — its daemon
/// was killed or lost the database) and runs whose job the queue no longer knows (a wiped
/// queue). Without this they would show as running forever.
async fn close_abandoned_runs(shared: &Shared, task: &TaskId, job: JobId, current: RunId) {
    let filter = RunFilter {
        task: Some(task.clone()),
        statuses: vec![RunStatus::Running],
        ..Default::default()
    };
    let runs = match shared.store.list_runs(&filter, crate::job::Page::first(50)).await {
        Ok(page) => page.runs,
        Err(error) => {
            tracing::warn!(%error, "cannot look up the task's earlier runs");
            return;
        }
    };
    for stale in runs.into_iter().filter(|r| r.id != current) {
        let abandoned = stale.job == job || matches!(shared.queue.get(stale.job).await, Ok(None));
        if !abandoned {
            continue;
        }
        let finish = RunFinish {
            status: RunStatus::Cancelled,
            finished_at: Utc::now(),
            error: Some(ABANDONED.to_owned()),
            summary: None,
            session_id: None,
            usage: Default::default(),
        };
        match shared.store.finish_run(stale.id, &finish).await {
            Ok(()) => tracing::info!(run = %stale.id, "closed the run of a worker that stopped"),
            Err(error) => tracing::warn!(%error, run = %stale.id, "cannot close an abandoned run"),
        }
    }
}

/// A directory name for a task key: letters, digits, `-` and `_` only.
pub(crate) fn workspace_dir_name(key: &str) -> String {
    let name: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    if name.is_empty() || name.chars().all(|c| c == '_') { "task".to_owned() } else { name }
}

/// Builds the executor's request: session to resume, feedback comments, tools.
async fn build_request(shared: &Shared, a: &Attempt) -> Result<(RunRequest, usize)> {
    let job = &a.lease.job;
    let resume_flag = job.payload.get("resume").and_then(|v| v.as_bool()).unwrap_or(false);
    let resume_session = a.previous_session.as_ref().filter(|s| match job.kind {
        JobKind::Feedback | JobKind::Retry => true,
        JobKind::Execute => resume_flag || s.updated_at >= job.created_at,
    });
    let mut feedback: Vec<Feedback> = job
        .payload
        .get("feedback")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    if job.kind == JobKind::Feedback {
        let pending = poller::load_pending(shared, &a.task.id).await?;
        if !pending.is_empty() {
            for item in pending {
                if !feedback.iter().any(|f| f.id == item.id) {
                    feedback.push(item);
                }
            }
            shared.store.put_cursor(&poller::pending_key(&a.task.id), "[]").await?;
        }
    }
    let tool_servers = match &shared.tools {
        Some(tools) => tools.grant(&a.task, a.run, job.timeout + shared.config().lease).await?,
        None => Vec::new(),
    };
    let count = feedback.len();
    Ok((
        RunRequest {
            task: a.task.clone(),
            job: job.id,
            run: a.run,
            kind: job.kind,
            attempt: job.attempt,
            feedback,
            resume_session: resume_session.map(|s| s.session_id.clone()),
            previous_error: job.last_error.clone(),
            workspace: a.workspace.clone(),
            timeout: job.timeout,
            tool_servers,
            inbox: None,
        },
        count,
    ))
}

/// Whether an Execute or Retry job (unique key `execute:<task>`) is live for `task`.
async fn has_live_execute(shared: &Shared, task: &crate::task::TaskId) -> Result<bool> {
    let filter = crate::job::JobFilter {
        states: vec![
            JobState::Scheduled,
            JobState::Available,
            JobState::Running,
            JobState::Retryable,
        ],
        ..crate::job::JobFilter::task(task.clone())
    };
    let live = shared.queue.list(&filter, crate::job::Page::first(10)).await?;
    Ok(live.iter().any(|j| j.kind != JobKind::Feedback))
}

/// Ends a job that must not run: `fail` without retry, recording why.
async fn end_job(shared: &Shared, lease: &Lease, reason: &str) {
    if let Err(error) = shared.queue.fail(lease, reason, None).await {
        tracing::warn!(%error, "cannot end the job");
    }
}
