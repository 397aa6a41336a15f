//! [`JobQueue`] conformance cases. Run them all with [`queue_conformance!`](crate::queue_conformance).
//!
//! Each case takes a fresh, empty queue and panics with a message naming the broken rule. Cases
//! use short real sleeps (a few hundred milliseconds) where time matters, because backends use
//! their own clocks; they never assert how long anything took.

mod concurrency;
mod leases;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use agentflow_core::{Enqueued, Error, Job, JobId, JobKind, JobQueue, JobSpec, Lease, WorkerId};
use chrono::Utc;

pub use concurrency::{
    complete_many_completes_each, concurrent_reservers_never_share_a_job, list_filter_and_paging,
    stats_add_up, wakeups_signal_new_jobs,
};
pub use leases::{
    cancel_available_job, cancel_running_job_loses_lease, expired_lease_on_last_attempt_fails,
    expired_lease_recovered_and_reserved_by_another_worker, heartbeat_extends_lease,
    release_keeps_attempt, stale_token_gets_lease_lost,
};

/// The lease used where expiry does not matter.
const LEASE: Duration = Duration::from_secs(60);
/// How long a case waits for something that should happen "soon" (a delayed job coming due).
const PATIENCE: Duration = Duration::from_secs(10);

fn worker(name: &str) -> WorkerId {
    WorkerId(format!("conformance-{name}-{}", uuid::Uuid::new_v4().simple()))
}

fn spec(task: &str) -> JobSpec {
    JobSpec::new(JobKind::Execute, task)
}

async fn enqueue_new(q: &dyn JobQueue, spec: JobSpec) -> JobId {
    let what = format!("{spec:?}");
    match q.enqueue(spec).await {
        Ok(Enqueued::New(id)) => id,
        Ok(Enqueued::Existing(id)) => {
            panic!("enqueue of a fresh spec returned Existing({id}), expected New: {what}")
        }
        Err(e) => panic!("enqueue failed: {e}: {what}"),
    }
}

async fn reserve(q: &dyn JobQueue, w: &WorkerId, lease_for: Duration, max: usize) -> Vec<Lease> {
    q.reserve(w, lease_for, max).await.unwrap_or_else(|e| panic!("reserve failed: {e}"))
}

async fn reserve_one(q: &dyn JobQueue, w: &WorkerId, lease_for: Duration) -> Lease {
    let mut leases = reserve(q, w, lease_for, 1).await;
    assert_eq!(leases.len(), 1, "reserve(max 1) on a queue with a due job returned {leases:?}");
    leases.remove(0)
}

/// Reserves until a job comes due, polling for at most [`PATIENCE`].
async fn reserve_when_due(q: &dyn JobQueue, w: &WorkerId, what: &str) -> Lease {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(lease) = reserve(q, w, LEASE, 1).await.pop() {
            return lease;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: no job became reservable within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn job(q: &dyn JobQueue, id: JobId) -> Job {
    q.get(id)
        .await
        .unwrap_or_else(|e| panic!("get({id}) failed: {e}"))
        .unwrap_or_else(|| panic!("get({id}) returned None for a job the queue should hold"))
}

fn assert_lease_lost<T: Debug>(result: agentflow_core::Result<T>, what: &str) {
    match result {
        Err(Error::LeaseLost { .. }) => {}
        other => panic!("{what}: expected Err(LeaseLost), got {other:?}"),
    }
}

/// The fields a rejected call must leave alone.
fn snapshot(job: &Job) -> impl PartialEq + Debug + use<> {
    (job.state, job.attempt, job.run_at, job.last_error.clone(), job.max_attempts)
}

/// A job is enqueued available, reserved once with its attempt counted and a fresh lease, and
/// completed.
pub async fn enqueue_reserve_complete(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let payload = serde_json::json!({ "comments": ["c-1"], "n": 1 });
    let id = enqueue_new(
        q,
        JobSpec::new(JobKind::Feedback, "task-1")
            .payload(payload.clone())
            .max_attempts(4)
            .timeout(Duration::from_secs(90)),
    )
    .await;
    let queued = job(q, id).await;
    assert_eq!(queued.state, agentflow_core::JobState::Available, "a job due now is available");
    assert_eq!(queued.attempt, 0, "no attempt before the first reserve");
    assert_eq!((queued.kind, queued.task.as_str()), (JobKind::Feedback, "task-1"));
    assert_eq!(queued.payload, payload, "payload is kept as given");
    assert_eq!(queued.max_attempts, 4);
    assert_eq!(queued.timeout, Duration::from_secs(90));

    let w = worker("a");
    let before = Utc::now();
    let lease = reserve_one(q, &w, LEASE).await;
    assert_eq!(lease.job.id, id);
    assert_eq!(
        lease.job.state,
        agentflow_core::JobState::Running,
        "the lease shows the job running"
    );
    assert_eq!(lease.job.attempt, 1, "reserve counts the attempt");
    assert_eq!(lease.worker, w, "the lease names its holder");
    assert!(
        lease.expires_at > before + chrono::Duration::seconds(30),
        "a {LEASE:?} lease expires about {LEASE:?} from now, got {}",
        lease.expires_at
    );
    assert_eq!(job(q, id).await.state, agentflow_core::JobState::Running);
    assert!(
        reserve(q, &worker("b"), LEASE, 10).await.is_empty(),
        "a running job is not handed out again"
    );

    q.complete(&lease).await.expect("complete with the current lease");
    assert_eq!(job(q, id).await.state, agentflow_core::JobState::Completed);
    assert_lease_lost(q.complete(&lease).await, "completing twice");
    assert!(reserve(q, &w, LEASE, 10).await.is_empty(), "a completed job is not handed out");
}

/// `reserve(max)` hands out at most `max` jobs, and `max = 0` none.
pub async fn reserve_returns_at_most_max(q: Arc<dyn JobQueue>) {
    let q = &*q;
    for i in 0..5 {
        enqueue_new(q, spec(&format!("task-{i}"))).await;
    }
    let w = worker("a");
    assert!(reserve(q, &w, LEASE, 0).await.is_empty(), "reserve(max 0) returns nothing");
    assert_eq!(reserve(q, &w, LEASE, 3).await.len(), 3, "reserve(max 3) with 5 due returns 3");
    assert_eq!(reserve(q, &w, LEASE, 3).await.len(), 2, "then the remaining 2");
    assert!(reserve(q, &w, LEASE, 3).await.is_empty(), "then nothing");
}

/// While a job holding a unique key is live (available, scheduled, running, retryable),
/// enqueueing the key again returns `Existing` with its id and creates nothing.
pub async fn dedup_returns_existing_while_live(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let key = "execute:task-1";
    let id = enqueue_new(q, spec("task-1").unique_key(key)).await;
    let again = q.enqueue(spec("task-1").unique_key(key)).await.expect("enqueue");
    assert_eq!(again, Enqueued::Existing(id), "an available job holds its key");

    let lease = reserve_one(q, &worker("a"), LEASE).await;
    let again = q.enqueue(spec("task-1").unique_key(key)).await.expect("enqueue");
    assert_eq!(again, Enqueued::Existing(id), "a running job holds its key");

    q.fail(&lease, "boom", Some(Utc::now() + chrono::Duration::hours(1))).await.expect("fail");
    let again = q.enqueue(spec("task-1").unique_key(key)).await.expect("enqueue");
    assert_eq!(again, Enqueued::Existing(id), "a retryable job holds its key");

    let delayed_key = "execute:task-2";
    let later = Utc::now() + chrono::Duration::hours(1);
    let delayed = enqueue_new(q, spec("task-2").unique_key(delayed_key).run_at(later)).await;
    let again = q.enqueue(spec("task-2").unique_key(delayed_key)).await.expect("enqueue");
    assert_eq!(again, Enqueued::Existing(delayed), "a scheduled job holds its key");

    let other = q.enqueue(spec("task-3")).await.expect("enqueue");
    assert!(other.is_new(), "a spec without a key is always new");
    let stats = q.stats().await.expect("stats");
    assert_eq!(stats.total(), 3, "duplicates created nothing: {stats:?}");
}

/// Once the job holding a key completed, the key is free again.
pub async fn dedup_key_free_after_completion(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let key = "execute:task-1";
    let first = enqueue_new(q, spec("task-1").unique_key(key)).await;
    let lease = reserve_one(q, &worker("a"), LEASE).await;
    q.complete(&lease).await.expect("complete");
    let second = enqueue_new(q, spec("task-1").unique_key(key)).await;
    assert_ne!(first, second, "a new job gets a new id");
    let again = q.enqueue(spec("task-1").unique_key(key)).await.expect("enqueue");
    assert_eq!(again, Enqueued::Existing(second), "the new job holds the key now");
}

/// A job that failed for good or was cancelled frees its key.
pub async fn dedup_key_free_after_failure_and_cancel(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let key = "execute:task-1";
    enqueue_new(q, spec("task-1").unique_key(key).max_attempts(1)).await;
    let lease = reserve_one(q, &worker("a"), LEASE).await;
    let state = q.fail(&lease, "fatal", None).await.expect("fail");
    assert_eq!(state, agentflow_core::JobState::Failed);
    let second = enqueue_new(q, spec("task-1").unique_key(key)).await;
    assert!(q.cancel(second).await.expect("cancel"), "cancel of an available job returns true");
    enqueue_new(q, spec("task-1").unique_key(key)).await;
}

/// A job with a future `run_at` is scheduled, not handed out before its time, and handed out
/// once due.
pub async fn delayed_job_not_reserved_early(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let run_at = Utc::now() + chrono::Duration::milliseconds(1500);
    let id = enqueue_new(q, spec("task-1").run_at(run_at)).await;
    assert_eq!(job(q, id).await.state, agentflow_core::JobState::Scheduled);
    let w = worker("a");
    assert!(reserve(q, &w, LEASE, 10).await.is_empty(), "a job due in 1.5 s was reserved at once");
    let lease = reserve_when_due(q, &w, "a job delayed by 1.5 s").await;
    assert_eq!(lease.job.id, id);
    assert!(
        Utc::now() >= run_at - chrono::Duration::milliseconds(200),
        "reserved well before run_at"
    );
}

/// Due jobs are handed out by priority (smaller first), then in enqueue order.
pub async fn reserve_in_priority_order(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let low = enqueue_new(q, spec("low").priority(5)).await;
    let urgent_a = enqueue_new(q, spec("urgent-a").priority(1)).await;
    let medium = enqueue_new(q, spec("medium").priority(3)).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let urgent_b = enqueue_new(q, spec("urgent-b").priority(1)).await;
    let w = worker("a");
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(reserve_one(q, &w, LEASE).await.job.id);
    }
    assert_eq!(
        order,
        [urgent_a, urgent_b, medium, low],
        "expected urgent-a, urgent-b, medium, low (ids {urgent_a}, {urgent_b}, {medium}, {low})"
    );
}

/// A failed attempt with `retry_at` and attempts left becomes `Retryable` with the error kept,
/// is not handed out before `retry_at`, and is after, counting the next attempt.
pub async fn fail_with_retry_at_becomes_retryable(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let id = enqueue_new(q, spec("task-1").max_attempts(3)).await;
    let w = worker("a");
    let lease = reserve_one(q, &w, LEASE).await;
    let retry_at = Utc::now() + chrono::Duration::milliseconds(1500);
    let state = q.fail(&lease, "rate limited", Some(retry_at)).await.expect("fail");
    assert_eq!(state, agentflow_core::JobState::Retryable);
    let failed = job(q, id).await;
    assert_eq!(failed.state, agentflow_core::JobState::Retryable);
    assert_eq!(failed.last_error.as_deref(), Some("rate limited"), "the error is kept");
    assert_eq!(failed.attempt, 1);
    assert!(reserve(q, &w, LEASE, 10).await.is_empty(), "reserved before retry_at");
    assert_lease_lost(q.complete(&lease).await, "completing after fail");

    let again = reserve_when_due(q, &w, "a job retrying in 1.5 s").await;
    assert_eq!(again.job.id, id);
    assert_eq!(again.job.attempt, 2, "the retry is attempt 2");
    assert_ne!(again.token, lease.token, "a new attempt gets a new token");
    q.complete(&again).await.expect("complete the retry");
}

/// Failing the last attempt fails the job for good even with a `retry_at`.
pub async fn attempts_exhausted_fails_for_good(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let id = enqueue_new(q, spec("task-1").max_attempts(2)).await;
    let w = worker("a");
    let first = reserve_one(q, &w, LEASE).await;
    let state = q.fail(&first, "one", Some(Utc::now())).await.expect("fail");
    assert_eq!(state, agentflow_core::JobState::Retryable, "attempt 1 of 2 retries");
    let second = reserve_when_due(q, &w, "a job retrying now").await;
    assert_eq!(second.job.attempt, 2);
    let state = q.fail(&second, "two", Some(Utc::now())).await.expect("fail");
    assert_eq!(state, agentflow_core::JobState::Failed, "attempt 2 of 2 fails for good");
    let failed = job(q, id).await;
    assert_eq!(failed.state, agentflow_core::JobState::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("two"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(reserve(q, &w, LEASE, 10).await.is_empty(), "a failed job is never handed out");
}

/// Failing without `retry_at` fails the job for good even with attempts left.
pub async fn fail_without_retry_at_fails_for_good(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let id = enqueue_new(q, spec("task-1").max_attempts(5)).await;
    let w = worker("a");
    let lease = reserve_one(q, &w, LEASE).await;
    let state = q.fail(&lease, "invalid task", None).await.expect("fail");
    assert_eq!(state, agentflow_core::JobState::Failed);
    let failed = job(q, id).await;
    assert_eq!((failed.state, failed.attempt), (agentflow_core::JobState::Failed, 1));
    assert_eq!(failed.last_error.as_deref(), Some("invalid task"));
    assert!(reserve(q, &w, LEASE, 10).await.is_empty(), "a failed job is never handed out");
}
