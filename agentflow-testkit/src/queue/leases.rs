//! Lease cases: tokens, expiry and recovery, heartbeat, release, cancel.

use std::sync::Arc;
use std::time::Duration;

use agentflow_core::{JobQueue, JobState};
use chrono::Utc;

use super::{
    LEASE, assert_lease_lost, enqueue_new, job, reserve, reserve_one, reserve_when_due, snapshot,
    spec, worker,
};

/// A lease whose token is not the job's current one gets `LeaseLost` from `heartbeat`,
/// `complete`, `fail` and `release`, and changes nothing.
pub async fn stale_token_gets_lease_lost(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let id = enqueue_new(q, spec("task-1")).await;
    let lease = reserve_one(q, &worker("a"), LEASE).await;
    let mut stale = lease.clone();
    stale.token = uuid::Uuid::new_v4();
    let before = snapshot(&job(q, id).await);

    assert_lease_lost(q.heartbeat(&stale, LEASE).await, "heartbeat with a stale token");
    assert_lease_lost(q.complete(&stale).await, "complete with a stale token");
    assert_lease_lost(q.fail(&stale, "x", Some(Utc::now())).await, "fail with a stale token");
    assert_lease_lost(q.fail(&stale, "x", None).await, "fail (final) with a stale token");
    assert_lease_lost(q.release(&stale).await, "release with a stale token");
    let many = q.complete_many(std::slice::from_ref(&stale)).await.expect("complete_many");
    assert!(
        matches!(many.as_slice(), [Err(agentflow_core::Error::LeaseLost { .. })]),
        "complete_many with a stale token: expected [Err(LeaseLost)], got {many:?}"
    );
    assert_eq!(snapshot(&job(q, id).await), before, "a stale token changed the job");

    q.complete(&lease).await.expect("the current token still completes");
    assert_eq!(job(q, id).await.state, JobState::Completed);
}

/// A lease that expires is recovered by `recover_expired` into a retry; another worker reserves
/// it with the next attempt, and the first holder's token is then dead.
pub async fn expired_lease_recovered_and_reserved_by_another_worker(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let id = enqueue_new(q, spec("task-1").max_attempts(3)).await;
    let (a, b) = (worker("a"), worker("b"));
    // Long enough that the first check runs well before expiry, even on a loaded machine.
    let lost = reserve_one(q, &a, Duration::from_millis(1200)).await;
    assert_eq!(
        q.recover_expired().await.expect("recover_expired"),
        0,
        "a live lease was recovered"
    );
    assert_eq!(job(q, id).await.state, JobState::Running);

    tokio::time::sleep(Duration::from_millis(1700)).await;
    let recovered = q.recover_expired().await.expect("recover_expired");
    assert_eq!(recovered, 1, "one lease expired 500 ms ago");
    let state = job(q, id).await.state;
    assert!(
        matches!(state, JobState::Retryable | JobState::Available),
        "a recovered job with attempts left is retryable (due now), got {state}"
    );

    let taken = reserve_when_due(q, &b, "a recovered job").await;
    assert_eq!(taken.job.id, id);
    assert_eq!(taken.job.attempt, 2, "the expired attempt counts");
    assert_eq!(taken.worker, b);
    assert_lease_lost(q.heartbeat(&lost, LEASE).await, "heartbeat by the expired holder");
    assert_lease_lost(q.complete(&lost).await, "complete by the expired holder");
    assert_lease_lost(q.release(&lost).await, "release by the expired holder");
    q.complete(&taken).await.expect("the new holder completes");
    assert_eq!(job(q, id).await.state, JobState::Completed);
}

/// A lease that expires on the job's last attempt fails the job for good.
pub async fn expired_lease_on_last_attempt_fails(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let id = enqueue_new(q, spec("task-1").max_attempts(1)).await;
    let lease = reserve_one(q, &worker("a"), Duration::from_millis(300)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(q.recover_expired().await.expect("recover_expired"), 1);
    assert_eq!(job(q, id).await.state, JobState::Failed, "no attempts left after expiry");
    assert_lease_lost(q.complete(&lease).await, "complete after the job failed");
    assert!(reserve(q, &worker("b"), LEASE, 10).await.is_empty(), "a failed job is not handed out");
}

/// A heartbeat moves the expiry forward, so recovery after the original expiry leaves the job
/// with its holder.
pub async fn heartbeat_extends_lease(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let id = enqueue_new(q, spec("task-1")).await;
    let lease = reserve_one(q, &worker("a"), Duration::from_millis(1200)).await;
    let extended = q.heartbeat(&lease, Duration::from_secs(30)).await.expect("heartbeat");
    assert!(
        extended > lease.expires_at,
        "heartbeat(30 s) returned {extended}, not later than the first expiry {}",
        lease.expires_at
    );
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(
        q.recover_expired().await.expect("recover_expired"),
        0,
        "a lease extended by heartbeat was recovered at its original expiry"
    );
    let running = job(q, id).await;
    assert_eq!((running.state, running.attempt), (JobState::Running, 1));
    assert!(
        reserve(q, &worker("b"), LEASE, 10).await.is_empty(),
        "an extended lease was handed out"
    );
    let again = q.heartbeat(&lease, LEASE).await.expect("heartbeat again with the same token");
    assert!(again >= extended, "a later heartbeat does not shorten the lease");
    q.complete(&lease).await.expect("the holder completes");
}

/// `release` puts a running job back to available at once without consuming its attempt; the
/// released token is dead.
pub async fn release_keeps_attempt(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let id = enqueue_new(q, spec("task-1").max_attempts(1)).await;
    let w = worker("a");
    let lease = reserve_one(q, &w, LEASE).await;
    q.release(&lease).await.expect("release");
    let released = job(q, id).await;
    assert_eq!(released.state, JobState::Available, "a released job is available");
    assert_eq!(released.attempt, 0, "release gives the attempt back");
    assert_lease_lost(q.complete(&lease).await, "complete after release");

    let again = reserve_one(q, &worker("b"), LEASE).await;
    assert_eq!((again.job.id, again.job.attempt), (id, 1), "the same attempt runs again");
    let state = q.fail(&again, "last", Some(Utc::now())).await.expect("fail");
    assert_eq!(state, JobState::Failed, "max_attempts 1: the released attempt did not count");
}

/// Cancelling an available job ends it: it is never handed out, a second cancel returns false.
pub async fn cancel_available_job(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let id = enqueue_new(q, spec("task-1").unique_key("execute:task-1")).await;
    let delayed =
        enqueue_new(q, spec("task-2").run_at(Utc::now() + chrono::Duration::hours(1))).await;
    assert!(q.cancel(id).await.expect("cancel"), "cancel of an available job returns true");
    assert!(q.cancel(delayed).await.expect("cancel"), "cancel of a scheduled job returns true");
    assert_eq!(job(q, id).await.state, JobState::Cancelled);
    assert_eq!(job(q, delayed).await.state, JobState::Cancelled);
    assert!(!q.cancel(id).await.expect("cancel"), "cancel of a cancelled job returns false");
    assert!(reserve(q, &worker("a"), LEASE, 10).await.is_empty(), "a cancelled job was handed out");
}

/// Cancelling a running job ends it and its holder loses the lease.
pub async fn cancel_running_job_loses_lease(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let id = enqueue_new(q, spec("task-1")).await;
    let lease = reserve_one(q, &worker("a"), LEASE).await;
    assert!(q.cancel(id).await.expect("cancel"), "cancel of a running job returns true");
    assert_eq!(job(q, id).await.state, JobState::Cancelled);
    assert_lease_lost(q.heartbeat(&lease, LEASE).await, "heartbeat after cancel");
    assert_lease_lost(q.complete(&lease).await, "complete after cancel");
    assert_lease_lost(q.fail(&lease, "x", Some(Utc::now())).await, "fail after cancel");
    assert_lease_lost(q.release(&lease).await, "release after cancel");
    assert_eq!(job(q, id).await.state, JobState::Cancelled, "the holder revived a cancelled job");
    assert!(!q.cancel(id).await.expect("cancel"), "cancel of a cancelled job returns false");

    let done = enqueue_new(q, spec("task-2")).await;
    let lease = reserve_one(q, &worker("a"), LEASE).await;
    q.complete(&lease).await.expect("complete");
    assert!(!q.cancel(done).await.expect("cancel"), "cancel of a completed job returns false");
    assert_eq!(job(q, done).await.state, JobState::Completed);
}
