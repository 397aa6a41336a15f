//! Reconciliation of the tracker (the source of truth) with the queue: on start, on every poll
//! cycle for running tasks, and the lease reaper.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Shared, StopReason, lock};
use crate::job::{JobFilter, JobKind, JobSpec, JobState, Page};
use crate::lifecycle::{LifecycleEvent, State, next};
use crate::task::TaskStatus;

/// On start: recover expired leases, then enqueue again every In Progress task that has no live
/// job (a crash between claim and enqueue, a wiped queue), resuming its stored session.
pub(crate) async fn startup(shared: &Shared) {
    match shared.queue.recover_expired().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(recovered = n, "recovered expired leases"),
        Err(error) => tracing::warn!(%error, "cannot recover expired leases"),
    }
    let tasks = match shared.source.list(TaskStatus::InProgress).await {
        Ok(t) => t,
        Err(error) => {
            tracing::warn!(%error, "startup reconciliation skipped: cannot list In Progress tasks");
            return;
        }
    };
    let config = shared.config();
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
            Ok(live) if !live.is_empty() => continue,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, task = %task.id, "cannot look up the task's jobs");
                continue;
            }
        }
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
                shared.touch(&task, |u| {
                    u.state = state;
                    u.job = Some(enqueued.id());
                    u.kind = Some(JobKind::Execute);
                });
            }
            Err(error) => tracing::warn!(%error, task = %task.id, "cannot enqueue orphaned task"),
        }
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
