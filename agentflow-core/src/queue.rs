//! The [`JobQueue`] trait: durable jobs with leases.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use crate::error::Result;
use crate::job::{
    Enqueued, Job, JobFilter, JobId, JobSpec, JobState, Lease, Page, QueueStats, WorkerId,
};

/// A durable job queue with leases (SQLite, Redis, Postgres, memory).
///
/// # Contract
/// - **Dedup**: while a live job (scheduled, available, running, retryable) holds a
///   `unique_key`, enqueueing another spec with that key returns [`Enqueued::Existing`] and
///   creates nothing. Once the job is finished the key is free again.
/// - **Reserve** hands each due job (available, or scheduled/retryable with `run_at <= now`) to
///   exactly one caller, ordered by priority (smaller first) then `run_at` then id; it counts an
///   attempt and sets a lease of `lease_for` with a fresh token. Concurrent reservers never share
///   a job.
/// - **Tokens**: [`heartbeat`](JobQueue::heartbeat), [`complete`](JobQueue::complete),
///   [`fail`](JobQueue::fail) and [`release`](JobQueue::release) present the lease; if it is not
///   the job's current lease they return [`Error::LeaseLost`](crate::Error::LeaseLost) and change
///   nothing.
/// - **Fail**: with `retry_at` and attempts left the job becomes retryable at `retry_at`;
///   otherwise it fails for good. The engine computes `retry_at`, so every backend retries alike.
/// - **Release** returns a running job to available without consuming the attempt (shutdown).
/// - **Recovery**: [`recover_expired`](JobQueue::recover_expired) turns jobs whose lease expired
///   into retryable (due now) when attempts are left, failed otherwise.
/// - **Cancel** ends a live job; a worker holding it loses its lease.
/// - Time comes from the backend's clock (Redis `TIME`, Postgres `now()`) where there is one.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Adds a job, or returns the live job holding its unique key.
    async fn enqueue(&self, spec: JobSpec) -> Result<Enqueued>;

    /// Reserves up to `max` due jobs for `worker`, each with a lease of `lease_for`.
    async fn reserve(
        &self,
        worker: &WorkerId,
        lease_for: Duration,
        max: usize,
    ) -> Result<Vec<Lease>>;

    /// Extends a lease by `lease_for` from now; returns the new expiry.
    async fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<DateTime<Utc>>;

    /// Marks the job completed.
    async fn complete(&self, lease: &Lease) -> Result<()>;

    /// Records a failed attempt. Returns the job's new state: `Retryable` (at `retry_at`) or
    /// `Failed`.
    async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<JobState>;

    /// Gives the job back (available now) without consuming the attempt.
    async fn release(&self, lease: &Lease) -> Result<()>;

    /// Cancels a live job. `Ok(false)` when it is already finished.
    async fn cancel(&self, id: JobId) -> Result<bool>;

    /// Recovers jobs whose lease expired; returns how many.
    async fn recover_expired(&self) -> Result<u64>;

    /// One job.
    async fn get(&self, id: JobId) -> Result<Option<Job>>;

    /// Jobs matching `filter`, newest first.
    async fn list(&self, filter: &JobFilter, page: Page) -> Result<Vec<Job>>;

    /// Jobs per state.
    async fn stats(&self) -> Result<QueueStats>;

    /// Completes several leases at once. Returns one result per lease, in order. The default
    /// completes them one by one; backends override it with one round trip.
    async fn complete_many(&self, leases: &[Lease]) -> Result<Vec<Result<()>>> {
        let mut out = Vec::with_capacity(leases.len());
        for lease in leases {
            out.push(self.complete(lease).await);
        }
        Ok(out)
    }

    /// A stream that yields when new jobs may be available (blocking pop, LISTEN/NOTIFY), so idle
    /// workers wake at once. `None` (the default): workers poll.
    fn wakeups(&self) -> Option<BoxStream<'static, ()>> {
        None
    }
}
