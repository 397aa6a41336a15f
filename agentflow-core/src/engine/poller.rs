//! The Todo poller (claim, enqueue) and the feedback poller (comments on tasks in review or
//! in progress).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio_util::sync::CancellationToken;

use super::{Shared, reconcile};
use crate::error::Result;
use crate::job::{Enqueued, JobKind, JobSpec};
use crate::lifecycle::{LifecycleEvent, State, next};
use crate::task::{Feedback, SourceEvent, Task, TaskId, TaskStatus};

/// The store cursor holding the feedback poller's position.
pub(crate) const FEEDBACK_CURSOR: &str = "feedback";

/// The store cursor holding comments that wait for the task's next run: they arrived while a
/// feedback job for the task was already queued (the job picks them up when it starts), or on
/// an In Progress task whose run could not take them live (its next run, or the feedback job
/// queued when it ends in review, gets them).
pub(crate) fn pending_key(task: &TaskId) -> String {
    format!("feedback-pending:{task}")
}

async fn next_event(watch: &mut Option<BoxStream<'static, SourceEvent>>) -> Option<SourceEvent> {
    match watch {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// Polls Todo tasks every `poll_interval`, on [`EngineHandle::wake`](super::EngineHandle::wake)
/// and on pushed source events; each cycle also reconciles running tasks and refreshes stats.
pub(crate) async fn todo_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let mut watch = shared.source.watch();
    loop {
        reconcile::check_running(&shared).await;
        shared.publish_stats().await;
        if let Err(error) = todo_cycle(&shared).await {
            tracing::warn!(%error, "todo poll failed");
        }
        let interval = shared.config().poll_interval;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => break,
                _ = shared.poll_wake.notified() => break,
                ev = next_event(&mut watch) => match ev {
                    None => watch = None,
                    Some(SourceEvent::Comment(_)) => shared.feedback_wake.notify_one(),
                    Some(SourceEvent::TaskReady(_) | SourceEvent::StatusChanged(..)) => break,
                },
            }
        }
    }
}

/// Orders tasks: urgent first, no priority last, then oldest first.
pub(crate) fn sort_tasks(tasks: &mut [Task]) {
    tasks.sort_by(|a, b| {
        (a.priority.rank(), a.updated_at, &a.id).cmp(&(b.priority.rank(), b.updated_at, &b.id))
    });
}

/// One Todo cycle: claim ready tasks and enqueue an `Execute` job for each.
pub(crate) async fn todo_cycle(shared: &Shared) -> Result<()> {
    if !shared.may_start() {
        return Ok(());
    }
    let config = shared.config();
    let mut tasks = shared.source.ready(config.todo_batch).await?;
    tasks.retain(|t| t.status == TaskStatus::Todo);
    sort_tasks(&mut tasks);
    for mut task in tasks {
        if !shared.may_start() {
            break;
        }
        if !shared.source.claim(&task.id).await? {
            tracing::debug!(task = %task.id, "task no longer Todo; skipped");
            continue;
        }
        let spec = JobSpec::new(JobKind::Execute, task.id.clone())
            .unique_key(format!("execute:{}", task.id))
            .priority(i16::from(task.priority.rank()))
            .max_attempts(config.max_attempts)
            .timeout(config.timeout);
        let enqueued = match shared.queue.enqueue(spec).await {
            Ok(e) => e,
            Err(error) => {
                // Give the task back so the next cycle tries again; reconciliation heals it
                // if even that fails.
                tracing::warn!(%error, task = %task.id, "enqueue failed after claim");
                let _ = shared.source.set_status(&task.id, TaskStatus::Todo).await;
                return Err(error);
            }
        };
        tracing::info!(task = %task.id, key = %task.key, job = %enqueued.id(), new = enqueued.is_new(), "task claimed");
        let state = [LifecycleEvent::Claim, LifecycleEvent::Enqueue]
            .into_iter()
            .try_fold(State::new(config.max_attempts), next)
            .unwrap_or(State::new(config.max_attempts));
        task.status = TaskStatus::InProgress;
        shared.touch(&task, |u| {
            u.status = TaskStatus::InProgress;
            u.state = state;
            u.job = Some(enqueued.id());
            u.kind = Some(JobKind::Execute);
            u.attempt = 0;
            u.error = None;
        });
        shared.work_wake.notify_one();
    }
    Ok(())
}

/// Polls feedback every `feedback_interval` and on wake.
pub(crate) async fn feedback_loop(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        if let Err(error) = feedback_cycle(&shared).await {
            tracing::warn!(%error, "feedback poll failed");
        }
        let interval = shared.config().feedback_interval;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
            _ = shared.feedback_wake.notified() => {}
        }
    }
}

/// One feedback cycle: new comments → `mark_processed` → delivered into the task's live run
/// when it runs here and takes comments; otherwise one `Feedback` job per In Review task, and
/// kept pending for an In Progress one (its next run gets them, or the feedback job when it
/// ends in review).
pub(crate) async fn feedback_cycle(shared: &Shared) -> Result<()> {
    let cursor = shared.store.get_cursor(FEEDBACK_CURSOR).await?;
    let batch = shared.source.feedback(cursor.as_deref()).await?;
    let limit = shared.config().feedback_batch;
    let mut per_task: BTreeMap<TaskId, Vec<Feedback>> = BTreeMap::new();
    for item in batch.items.into_iter().take(limit) {
        if shared.store.mark_processed(&item.id).await? {
            per_task.entry(item.task.clone()).or_default().push(item);
        }
    }
    // Live runs first: no tracker look-up needed.
    for (task, items) in per_task.iter_mut() {
        let Some(running) = shared.running_job(task) else { continue };
        let mut kept = Vec::new();
        for item in items.drain(..) {
            let author = item.author.clone();
            match running.deliver(item) {
                Ok(()) => tracing::info!(task = %task, %author, "comment handed to the live run"),
                Err(item) => kept.push(item),
            }
        }
        *items = kept;
    }
    per_task.retain(|_, items| !items.is_empty());
    if !per_task.is_empty() {
        let ids: Vec<TaskId> = per_task.keys().cloned().collect();
        let statuses = shared.source.statuses(&ids).await?;
        for (task, items) in per_task {
            match statuses.get(&task) {
                Some(TaskStatus::InReview) => enqueue_feedback(shared, &task, items).await?,
                Some(TaskStatus::InProgress) => {
                    tracing::info!(task = %task, comments = items.len(), "comments kept for the task's run");
                    add_pending(shared, &task, items).await?;
                }
                status => tracing::info!(
                    task = %task,
                    status = ?status,
                    comments = items.len(),
                    "comments on a task no longer in review or in progress are not acted on"
                ),
            }
        }
    }
    if let Some(next_cursor) = batch.cursor {
        shared.store.put_cursor(FEEDBACK_CURSOR, &next_cursor).await?;
    }
    Ok(())
}

/// Appends `items` to the comments waiting for the task's next run.
pub(crate) async fn add_pending(
    shared: &Shared,
    task: &TaskId,
    items: Vec<Feedback>,
) -> Result<()> {
    let mut pending = load_pending(shared, task).await?;
    for item in items {
        if !pending.iter().any(|p| p.id == item.id) {
            pending.push(item);
        }
    }
    let value = serde_json::to_string(&pending)
        .map_err(|e| crate::Error::InvalidInput(format!("pending comments: {e}")))?;
    shared.store.put_cursor(&pending_key(task), &value).await
}

/// Enqueues a `Feedback` job for `items`, or adds them to the pending comments of the feedback
/// job already queued for the task.
pub(crate) async fn enqueue_feedback(
    shared: &Shared,
    task: &TaskId,
    items: Vec<Feedback>,
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let config = shared.config();
    let ids: Vec<&str> = items.iter().map(|f| f.id.as_str()).collect();
    let spec = JobSpec::new(JobKind::Feedback, task.clone())
        .unique_key(format!("feedback:{task}"))
        .payload(serde_json::json!({ "comments": ids, "feedback": items }))
        .max_attempts(config.max_attempts)
        .timeout(config.timeout);
    match shared.queue.enqueue(spec).await? {
        Enqueued::New(job) => {
            tracing::info!(task = %task, job = %job, comments = items.len(), "feedback queued");
            shared.touch_id(task, |u| {
                if let Ok(s) = next(u.state, LifecycleEvent::Feedback) {
                    u.state = s;
                }
                u.job = Some(job);
                u.kind = Some(JobKind::Feedback);
            });
            shared.work_wake.notify_one();
        }
        Enqueued::Existing(job) => {
            tracing::info!(task = %task, job = %job, comments = items.len(), "feedback added to the queued job");
            add_pending(shared, task, items).await?;
        }
    }
    Ok(())
}

/// Comments waiting for the task's next feedback run.
pub(crate) async fn load_pending(shared: &Shared, task: &TaskId) -> Result<Vec<Feedback>> {
    let raw = shared.store.get_cursor(&pending_key(task)).await?;
    Ok(raw.and_then(|r| serde_json::from_str(&r).ok()).unwrap_or_default())
}
