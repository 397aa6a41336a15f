//! Reconciliation of the tracker (the source of truth) with the queue: on start and every
//! `reconcile_interval`, on every poll cycle for running tasks, and the lease reaper.

use std::collections::HashSet;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Shared, StopReason, lock, worker};
use crate::job::{JobFilter, JobKind, JobSpec, JobState, Page};
use crate::lifecycle::{LifecycleEvent, State, next};
use crate::task::{Task, TaskId, TaskStatus};

/// On start: recover expired leases, then enqueue again every In Progress task that has no live
/// job (a crash between claim and enqueue, a wiped queue), resuming its stored session.
pub(crate) async fn startup(shared: &Shared) {
    match shared.queue.recover_expired().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(recovered = n, "recovered expired leases"),
        Err(error) => tracing::warn!(%error, "cannot recover expired leases"),
    }
    let Some(orphans) = orphans(shared).await else { return };
    for task in orphans {
        requeue(shared, &task).await;
    }
}

/// In Progress tasks with no live job in the queue (a task whose jobs cannot be looked up is
/// left out); `None` when the source cannot list them.
async fn orphans(shared: &Shared) -> Option<Vec<Task>> {
    let tasks = match shared.source.list(TaskStatus::InProgress).await {
        Ok(t) => t,
        Err(error) => {
            tracing::warn!(%error, "reconciliation skipped: cannot list In Progress tasks");
            return None;
        }
    };
    let mut out = Vec::new();
    for task in tasks {
        let filter = JobFilter {
            states: vec![
                JobState::Scheduled,
                JobState::Available,
                JobState::Running,
                JobState::Retryable,
            ],
            ..JobFilter::task(task.id.clone())
        };
        match shared.queue.list(&filter, Page::first(1)).await {
            Ok(live) if live.is_empty() => out.push(task),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, task = %task.id, "cannot look up the task's jobs"),
        }
    }
    Some(out)
}

/// Enqueues an In Progress task that has no live job, resuming its stored session — unless an
/// attempt of its last job had ended and the worker stopped before writing that ending out, and
/// the queue failed the job since (the lease of its last attempt expired): then the ending is
/// finished instead, and the agent does not run again.
async fn requeue(shared: &Shared, task: &Task) {
    if finish_ending(shared, task).await {
        return;
    }
    let config = shared.config();
    let spec = JobSpec::new(JobKind::Execute, task.id.clone())
        .unique_key(format!("execute:{}", task.id))
        .payload(serde_json::json!({ "resume": true, "reconciled": true }))
        .priority(i16::from(task.priority.rank()))
        .max_attempts(config.max_attempts)
        .timeout(config.timeout);
    match shared.queue.enqueue(spec).await {
        Ok(enqueued) => {
            tracing::info!(task = %task.id, job = %enqueued.id(), "orphaned In Progress task enqueued again");
            let state = next(State::new(config.max_attempts), LifecycleEvent::Enqueue)
                .unwrap_or(State::new(config.max_attempts));
            shared.touch(task, |u| {
                u.state = state;
                u.job = Some(enqueued.id());
                u.kind = Some(JobKind::Execute);
            });
            shared.work_wake.notify_one();
        }
        Err(error) => tracing::warn!(%error, task = %task.id, "cannot enqueue orphaned task"),
    }
}

/// Finishes the recorded ending of `task`'s dead job; `true` when there was one.
async fn finish_ending(shared: &Shared, task: &Task) -> bool {
    let end = match worker::ending::load(shared, &task.id).await {
        Ok(Some(end)) => end,
        Ok(None) => return false,
        Err(error) => {
            tracing::warn!(%error, task = %task.id, "cannot read the recorded end of the attempt");
            return false;
        }
    };
    // An ending whose job completed was carried out (only its clearing failed): stale.
    match shared.queue.get(end.job).await {
        Ok(Some(job)) if job.state != JobState::Completed => {}
        Ok(_) => {
            worker::ending::clear(shared, &task.id).await;
            return false;
        }
        Err(error) => {
            tracing::warn!(%error, task = %task.id, "cannot look up the job of a recorded ending");
            return false;
        }
    }
    match worker::resume_ending(shared, None, task, end).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, task = %task.id, "cannot finish the recorded end of the attempt");
            true
        }
    }
}

/// Every `reconcile_interval`: enqueues again the In Progress tasks that had no live job (and
/// did not run here) on this check and the one before. Two checks, because a task is briefly
/// In Progress without a job between its claim and its enqueue, and between a final failure
/// and the status write.
pub(crate) async fn reconcile_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let mut suspects: HashSet<TaskId> = HashSet::new();
    loop {
        let interval = shared.config().reconcile_interval;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let Some(found) = orphans(&shared).await else { continue };
        let mut next_suspects = HashSet::new();
        for task in found {
            if lock(&shared.running).contains_key(&task.id) {
                continue;
            }
            if suspects.contains(&task.id) {
                requeue(&shared, &task).await;
            } else {
                next_suspects.insert(task.id.clone());
            }
        }
        suspects = next_suspects;
    }
}

/// One batched status look-up of the tasks running here; a run whose task a person moved out of
/// In Progress is cancelled (its job is ended and the reason recorded by the worker).
pub(crate) async fn check_running(shared: &Shared) {
    let snapshot: Vec<_> =
        lock(&shared.running).iter().map(|(task, job)| (task.clone(), job.run)).collect();
    if snapshot.is_empty() {
        return;
    }
    let ids: Vec<_> = snapshot.iter().map(|(t, _)| t.clone()).collect();
    let statuses = match shared.source.statuses(&ids).await {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(%error, "cannot look up the status of running tasks");
            return;
        }
    };
    for (task, run) in snapshot {
        let status = statuses.get(&task).copied();
        if status == Some(TaskStatus::InProgress) {
            continue;
        }
        if let Some(job) = shared.running_job(&task)
            && job.run == run
        {
            tracing::info!(task = %task, status = ?status, "task left In Progress; cancelling its run");
            job.stop(StopReason::Moved(status));
        }
    }
}

/// Recovers expired leases every `reaper_interval`.
pub(crate) async fn reaper_loop(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let interval = shared.config().reaper_interval;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match shared.queue.recover_expired().await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(recovered = n, "recovered expired leases");
                shared.work_wake.notify_one();
            }
            Err(error) => tracing::warn!(%error, "lease reaper failed"),
        }
    }
}
