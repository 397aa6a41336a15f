//! How an attempt ends: the lifecycle decides; the run record is closed; the ending (status,
//! summary, how the job settles) is written down in the state store, then carried out — tracker
//! status, summary comment, queue — and the board is told. A crash in between leaves the job
//! running in the queue with its ending recorded, and whoever takes the job over finishes that
//! ending instead of running the agent again (see [`ending`](super::ending)).

use chrono::Utc;

use super::super::progress::{PumpResult, defence};
use super::super::{Shared, StopReason, poller};
use super::Attempt;
use super::ending::{self, Ending, Settle};
use crate::error::Error;
use crate::job::{JobState, Lease};
use crate::lifecycle::{LifecycleEvent, Phase, State, next};
use crate::run::{RunOutcome, Usage};
use crate::store::{RunFinish, RunStatus, Session};
use crate::task::{Report, ReportKind, Task, TaskId, TaskStatus};

async fn record(
    shared: &Shared,
    a: &Attempt,
    status: RunStatus,
    error: Option<String>,
    summary: Option<String>,
    session_id: Option<String>,
    usage: Usage,
) {
    let finish = RunFinish { status, finished_at: Utc::now(), error, summary, session_id, usage };
    if let Err(error) = shared.store.finish_run(a.run, &finish).await {
        tracing::warn!(%error, run = %a.run, "cannot record the end of the run");
    }
}

/// How often a tracker write at the end of an attempt is tried when it fails transiently.
const TRACKER_TRIES: u32 = 5;

/// Which failures of a tracker write are worth another try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Every retryable error: the write is idempotent (a status change).
    Transient,
    /// Only failures where the tracker did not act: a rate limit or an outage (5xx, refused
    /// connection). Not a timeout: the comment may have been posted, and posting it again
    /// would show it twice.
    NotApplied,
}

/// Runs a tracker write at the end of an attempt, trying again after transient failures (a rate
/// limit after its `retry-after`, an outage after the backoff; each wait at most half a lease)
/// while keeping the lease alive when the job is still ours, so a tracker hiccup after a
/// finished run neither runs the agent again nor loses the report.
async fn tracker_write<F, Fut>(
    shared: &Shared,
    lease: Option<&Lease>,
    what: &str,
    retry: Retry,
    mut write: F,
) -> crate::error::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::error::Result<()>>,
{
    let config = shared.config();
    let cap = (config.lease / 2).max(std::time::Duration::from_millis(100));
    let mut tries = 0;
    loop {
        let error = match keep_alive(shared, lease, write()).await {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        tries += 1;
        let again = match retry {
            Retry::Transient => error.is_retryable(),
            Retry::NotApplied => {
                matches!(error, Error::RateLimited { .. } | Error::Unavailable { .. })
            }
        };
        if !again || tries >= TRACKER_TRIES {
            return Err(error);
        }
        let wait = retry_delay(config.retry.delay(tries), &error).min(cap);
        tracing::info!(%error, retry_in = ?wait, "{what} failed; trying again");
        if let Some(lease) = lease
            && let Err(lost @ Error::LeaseLost { .. }) =
                shared.queue.heartbeat(lease, config.lease).await
        {
            tracing::warn!(error = %lost, "{what}: the lease is gone; giving up");
            return Err(error);
        }
        tokio::time::sleep(wait).await;
    }
}

/// Runs `fut` while heartbeating `lease` (when there is one), so a slow tracker answer does not
/// let the lease expire and another worker take over an attempt that is being written out.
async fn keep_alive<F: std::future::Future>(
    shared: &Shared,
    lease: Option<&Lease>,
    fut: F,
) -> F::Output {
    let Some(lease) = lease else { return fut.await };
    let config = shared.config();
    let every = config.heartbeat_every();
    let mut fut = std::pin::pin!(fut);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = tick.tick() => {
                match tokio::time::timeout(every, shared.queue.heartbeat(lease, config.lease)).await {
                    Ok(Err(error @ Error::LeaseLost { .. })) => {
                        tracing::warn!(%error, "the lease was lost while writing the end of the attempt");
                    }
                    Ok(Err(error)) => tracing::warn!(%error, "heartbeat failed"),
                    Ok(Ok(_)) | Err(_) => {}
                }
            }
        }
    }
}

async fn summary(shared: &Shared, lease: Option<&Lease>, task: &TaskId, run: String, body: String) {
    let report = Report { run, kind: ReportKind::Summary, body };
    let post = || shared.source.report(task, &report);
    if let Err(error) =
        tracker_write(shared, lease, "posting the summary", Retry::NotApplied, post).await
    {
        tracing::warn!(%error, "cannot post the summary report");
    }
}

/// Sets the task's status in the tracker, trying again after transient failures.
async fn set_status(
    shared: &Shared,
    lease: Option<&Lease>,
    task: &TaskId,
    status: TaskStatus,
) -> crate::error::Result<()> {
    let what = format!("setting the task to {status}");
    tracker_write(shared, lease, &what, Retry::Transient, || shared.source.set_status(task, status))
        .await
}

/// Writes the ending down before carrying it out; without the record a crash half-way is
/// still healed, only less well (the agent runs again), so a failure is logged, not fatal.
async fn remember(shared: &Shared, task: &TaskId, end: &Ending) {
    if let Err(error) = ending::write(shared, task, end).await {
        tracing::warn!(%error, "cannot record the end of the attempt before carrying it out");
    }
}

/// Finishes the recorded ending of an earlier attempt whose worker stopped after deciding it
/// (the run is over and recorded) but before writing everything: the tracker status (when the
/// task is still In Progress; a task a person moved elsewhere meanwhile stays where they put
/// it), the summary, then the job when `lease` holds it (`None`: the queue settled the job
/// already) — without running the agent again.
pub(crate) async fn resume_ending(
    shared: &Shared,
    lease: Option<&Lease>,
    task: &Task,
    end: Ending,
) -> crate::error::Result<()> {
    tracing::info!(
        task = %task.id,
        status = %end.status,
        "an attempt had ended but its worker stopped before writing it all; finishing that"
    );
    match task.status {
        s if s == end.status => {}
        // The status write did not happen (or did not land): make it now.
        TaskStatus::InProgress => set_status(shared, lease, &task.id, end.status).await?,
        // A person moved the task since the status was written; their move stands.
        other => tracing::info!(status = %other, "the task was moved since; leaving its status"),
    }
    summary(shared, lease, &task.id, end.run, end.body).await;
    ending::clear(shared, &task.id).await;
    let settled = match (lease, &end.settle) {
        (None, _) => Ok(()),
        (Some(lease), Settle::Complete) => shared.queue.complete(lease).await,
        (Some(lease), Settle::Fail { message }) => {
            shared.queue.fail(lease, message, None).await.map(|_| ())
        }
    };
    if let Err(error) = settled {
        tracing::warn!(%error, "cannot settle the job");
    }
    let error = match end.settle {
        Settle::Complete => None,
        Settle::Fail { message } => Some(message),
    };
    shared.touch(task, |u| {
        u.status = end.status;
        u.state = end.state;
        u.job = None;
        u.error = error;
    });
    Ok(())
}

/// The attempt succeeded: review gate → run record → ending stored → status → summary → ending
/// cleared → complete.
pub(crate) async fn finish_success(
    shared: &Shared,
    a: &Attempt,
    outcome: RunOutcome,
    pumped: PumpResult,
) {
    let task = &a.task;
    let session_id = outcome.session_id.clone().or(pumped.session);
    let previous =
        shared.store.get_session(&task.id).await.ok().flatten().or(a.previous_session.clone());
    if let Some(id) = session_id.clone().or(previous.as_ref().map(|p| p.session_id.clone())) {
        let mut usage = previous.as_ref().map(|p| p.usage).unwrap_or_default();
        usage += outcome.usage;
        let session = Session {
            task: task.id.clone(),
            session_id: id,
            workspace: a.workspace.clone(),
            usage,
            updated_at: Utc::now(),
        };
        if let Err(error) = shared.store.put_session(&session).await {
            tracing::warn!(%error, "cannot store the session");
        }
    }
    let review = shared.review.needs_review(task, &outcome);
    let state = next(a.state, LifecycleEvent::Succeed { review }).unwrap_or(a.state);
    let status = state.status();
    let usage = outcome.usage;
    record(shared, a, RunStatus::Succeeded, None, Some(outcome.summary.clone()), session_id, usage)
        .await;
    let headline = if review { "👀 **Ready for review**" } else { "✅ **Done**" };
    let body = format!(
        "{headline}\n\n{}\n\n<sub>attempt {} · {} turns · ${:.4}</sub>",
        outcome.summary.trim(),
        a.lease.job.attempt,
        usage.turns,
        usage.cost_usd
    );
    let end = Ending {
        job: a.lease.job.id,
        status,
        state,
        run: a.run.to_string(),
        body,
        settle: Settle::Complete,
    };
    remember(shared, &task.id, &end).await;
    if let Err(error) = set_status(shared, Some(&a.lease), &task.id, status).await {
        tracing::warn!(%error, "cannot set the task's status after success");
        ending::clear(shared, &task.id).await;
        return finish_failure(shared, a, error).await;
    }
    summary(shared, Some(&a.lease), &task.id, end.run, end.body).await;
    ending::clear(shared, &task.id).await;
    if let Err(error) = shared.queue.complete(&a.lease).await {
        tracing::warn!(%error, "cannot complete the job");
    }
    tracing::info!(status = %status, review, cost_usd = usage.cost_usd, "attempt succeeded");
    let last = outcome.summary.lines().find(|l| !l.trim().is_empty()).map(str::to_owned);
    shared.touch(task, |u| {
        u.status = status;
        u.state = state;
        u.cost_usd += usage.cost_usd;
        if last.is_some() {
            u.last_line = last;
        }
        u.error = None;
    });
    if status == TaskStatus::InReview {
        flush_pending_feedback(shared, &task.id).await;
    }
}

/// Comments that arrived while the task's feedback job was queued or running get a job now.
async fn flush_pending_feedback(shared: &Shared, task: &TaskId) {
    let pending = match poller::load_pending(shared, task).await {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => return,
        Err(error) => {
            tracing::warn!(%error, "cannot read pending feedback");
            return;
        }
    };
    if let Err(error) = shared.store.put_cursor(&poller::pending_key(task), "[]").await {
        tracing::warn!(%error, "cannot clear pending feedback");
        return;
    }
    if let Err(error) = poller::enqueue_feedback(shared, task, pending).await {
        tracing::warn!(%error, "cannot enqueue pending feedback");
    }
}

/// Where a failure leaves the job.
enum Failure {
    /// Retried at the backoff.
    Retrying,
    /// Failed for good (status Failed written, summary posted).
    Final,
    /// Our lease was gone; someone else owns the job.
    Lost,
}

/// Fails the lease: retry after the backoff (or after the wait a rate-limited service asked
/// for, when longer) when the lifecycle allows, else fail for good with the task moved to
/// Failed and a summary saying why.
async fn settle_failure(
    shared: &Shared,
    lease: &Lease,
    state: State,
    error: &Error,
) -> (Failure, State) {
    let job = &lease.job;
    let message = error.to_string();
    let message = message.as_str();
    let retryable = error.is_retryable();
    let after = next(state, LifecycleEvent::Fail { retryable })
        .unwrap_or(State { phase: Phase::Failed, ..state });
    if after.phase == Phase::RetryWait {
        let delay = retry_delay(shared.config().retry.delay(job.attempt), error);
        let retry_at =
            Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        match shared.queue.fail(lease, message, Some(retry_at)).await {
            Ok(JobState::Failed) => {}
            Ok(_) => {
                tracing::info!(retry_in = ?delay, error = message, "attempt failed; retrying");
                return (Failure::Retrying, after);
            }
            Err(Error::LeaseLost { .. }) => return (Failure::Lost, state),
            Err(error) => {
                tracing::warn!(%error, "cannot record the failed attempt");
                return (Failure::Retrying, after);
            }
        }
    }
    let failed = State { phase: Phase::Failed, ..after };
    let attempts =
        if job.attempt == 1 { "1 attempt".to_owned() } else { format!("{} attempts", job.attempt) };
    let why = if retryable { "" } else { " (not retryable)" };
    let body =
        format!("❌ **Failed** after {attempts}{why}:\n\n```text\n{}\n```", defence(message));
    let run = format!("{}:{}", job.id, job.attempt);
    // Still our lease? Then the ending is ours to write, before the job is failed in the queue
    // (a crash in between leaves it to whoever takes the job over). A job the queue failed for
    // good already (it counted the attempts itself) has no lease left to keep.
    let failed_by_queue = after.phase == Phase::RetryWait;
    if !failed_by_queue {
        match shared.queue.heartbeat(lease, shared.config().lease).await {
            Err(Error::LeaseLost { .. }) => return (Failure::Lost, state),
            Err(error) => tracing::warn!(%error, "cannot extend the lease before failing the task"),
            Ok(_) => {}
        }
        let end = Ending {
            job: job.id,
            status: TaskStatus::Failed,
            state: failed,
            run: run.clone(),
            body: body.clone(),
            settle: Settle::Fail { message: message.to_owned() },
        };
        remember(shared, &job.task, &end).await;
    }
    tracing::warn!(error = message, attempts = job.attempt, "task failed");
    let held = (!failed_by_queue).then_some(lease);
    if let Err(error) = set_status(shared, held, &job.task, TaskStatus::Failed).await {
        tracing::warn!(%error, "cannot set the task to Failed");
    }
    summary(shared, held, &job.task, run, body).await;
    if !failed_by_queue {
        ending::clear(shared, &job.task).await;
        if let Err(error) = shared.queue.fail(lease, message, None).await {
            tracing::warn!(%error, "cannot fail the job");
        }
    }
    (Failure::Final, failed)
}

/// The delay before the next attempt: the backoff, or the wait the service asked for
/// (`retry-after` of a rate limit) when that is longer.
pub(crate) fn retry_delay(backoff: std::time::Duration, error: &Error) -> std::time::Duration {
    error.retry_after().map_or(backoff, |asked| asked.max(backoff))
}

/// The attempt failed (executor error, timeout, tracker write).
pub(crate) async fn finish_failure(shared: &Shared, a: &Attempt, error: Error) {
    let message = error.to_string();
    let status = if matches!(error, Error::Timeout { .. }) {
        RunStatus::TimedOut
    } else {
        RunStatus::Failed
    };
    record(shared, a, status, Some(message.clone()), None, None, Usage::default()).await;
    let (outcome, state) = settle_failure(shared, &a.lease, a.state, &error).await;
    if matches!(outcome, Failure::Lost) {
        return;
    }
    shared.touch(&a.task, |u| {
        u.state = state;
        if matches!(outcome, Failure::Final) {
            u.status = TaskStatus::Failed;
        }
        u.error = Some(message);
    });
}

/// The attempt could not even start (task look-up, run record, tool grant failed).
pub(crate) async fn fail_before_start(shared: &Shared, lease: &Lease, error: Error) {
    let job = &lease.job;
    let state = State::at(Phase::Running, job.attempt, job.max_attempts);
    let message = error.to_string();
    let (outcome, state) = settle_failure(shared, lease, state, &error).await;
    if !matches!(outcome, Failure::Lost) {
        shared.touch_id(&job.task, |u| {
            u.state = state;
            if matches!(outcome, Failure::Final) {
                u.status = TaskStatus::Failed;
            }
            u.error = Some(message);
        });
    }
}

/// Shutdown stopped the run: the job goes back to the queue without using up the attempt.
pub(crate) async fn released(shared: &Shared, a: &Attempt) {
    let reason = StopReason::Shutdown.describe();
    if let Err(error) = shared.queue.release(&a.lease).await {
        tracing::warn!(%error, "cannot release the job");
    }
    record(shared, a, RunStatus::Cancelled, Some(reason.clone()), None, None, Usage::default())
        .await;
    let state = State::at(Phase::Queued, a.state.attempts.saturating_sub(1), a.state.max_attempts);
    shared.touch(&a.task, |u| {
        u.state = state;
        u.error = Some(reason);
    });
}

/// Our lease is gone: someone else owns the job now; only the run record is ours to close.
pub(crate) async fn lease_lost(shared: &Shared, a: &Attempt) {
    let reason = StopReason::LeaseLost.describe();
    tracing::warn!("run stopped: {reason}");
    record(shared, a, RunStatus::Cancelled, Some(reason.clone()), None, None, Usage::default())
        .await;
    shared.touch(&a.task, |u| u.error = Some(reason));
}

/// A person moved the task out of In Progress: end the job, record why, write nothing back.
pub(crate) async fn moved(shared: &Shared, a: &Attempt, status: Option<TaskStatus>) {
    let reason = StopReason::Moved(status).describe();
    tracing::info!("run cancelled: {reason}");
    record(shared, a, RunStatus::Cancelled, Some(reason.clone()), None, None, Usage::default())
        .await;
    if let Err(error) = shared.queue.fail(&a.lease, &reason, None).await {
        tracing::warn!(%error, "cannot end the job");
    }
    let state = next(a.state, LifecycleEvent::Cancel).unwrap_or(a.state);
    shared.touch(&a.task, |u| {
        u.status = status.unwrap_or(TaskStatus::Other);
        u.state = state;
        u.error = Some(reason);
    });
}

/// Cancelled from agentflow: the task shows as Failed with a report saying so.
pub(crate) async fn cancelled(shared: &Shared, a: &Attempt) {
    let reason = StopReason::Cancelled.describe();
    tracing::info!("run cancelled from agentflow");
    record(shared, a, RunStatus::Cancelled, Some(reason.clone()), None, None, Usage::default())
        .await;
    // The handle cancelled the job in the queue already; this only covers a race with reserve.
    let _ = shared.queue.cancel(a.lease.job.id).await;
    let state = next(a.state, LifecycleEvent::Cancel).unwrap_or(a.state);
    if let Err(error) = shared.source.set_status(&a.task.id, state.status()).await {
        tracing::warn!(%error, "cannot set the cancelled task's status");
    }
    let body = "⏹ **Cancelled** from agentflow.".to_owned();
    summary(shared, None, &a.task.id, a.run.to_string(), body).await;
    shared.touch(&a.task, |u| {
        u.status = state.status();
        u.state = state;
        u.error = Some(reason);
    });
}
