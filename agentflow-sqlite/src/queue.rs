//! [`SqliteQueue`]: the [`JobQueue`] on SQLite.

use std::time::Duration;

use agentflow_core::{
    Enqueued, Job, JobFilter, JobId, JobQueue, JobSpec, JobState, Lease, Page, QueueStats, Result,
    WorkerId,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use crate::config::SqliteOptions;
use crate::db::Database;

mod sql;

/// A durable job queue in an SQLite file.
///
/// Every write goes through the database's writer thread (group commit, `BEGIN IMMEDIATE`), so
/// a reserve is atomic even against other processes using the same file; reads go to the
/// reader pool. Finished jobs move to a history table that reserve and complete never touch.
///
/// ```
/// # #[tokio::main] async fn main() -> agentflow_core::Result<()> {
/// use std::time::Duration;
/// use agentflow_core::{JobKind, JobQueue, JobSpec, WorkerId};
/// use agentflow_sqlite::{SqliteOptions, SqliteQueue};
///
/// let dir = tempfile::tempdir().unwrap();
/// let queue = SqliteQueue::open(dir.path().join("q.db").to_str().unwrap(), SqliteOptions::default()).await?;
/// queue.enqueue(JobSpec::new(JobKind::Execute, "task-1")).await?;
/// let leases = queue.reserve(&WorkerId::generate(), Duration::from_secs(30), 1).await?;
/// queue.complete(&leases[0]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteQueue {
    pub(crate) db: Database,
}

impl SqliteQueue {
    /// Opens the database at `target` (see [`Database::open`]) and returns its queue.
    pub async fn open(target: &str, options: SqliteOptions) -> Result<SqliteQueue> {
        Ok(Database::open(target, options).await?.queue())
    }

    /// The database this queue lives in.
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn wake(&self) {
        // No receiver (nobody idle in this process) is fine.
        let _ = self.db.inner.wake.send(());
    }
}

#[async_trait]
impl JobQueue for SqliteQueue {
    #[tracing::instrument(level = "debug", skip_all, fields(task = %spec.task, kind = spec.kind.as_str()))]
    async fn enqueue(&self, spec: JobSpec) -> Result<Enqueued> {
        let due = spec.run_at.is_none_or(|at| at <= Utc::now());
        let out = self.db.write(move |c| sql::enqueue(c, &spec, Utc::now())).await?;
        if out.is_new() && due {
            self.wake();
        }
        Ok(out)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(worker = %worker, max))]
    async fn reserve(
        &self,
        worker: &WorkerId,
        lease_for: Duration,
        max: usize,
    ) -> Result<Vec<Lease>> {
        let worker = worker.clone();
        self.db.write(move |c| sql::reserve(c, &worker, lease_for, max, Utc::now())).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(job = %lease.job.id, attempt = lease.job.attempt, worker = %lease.worker))]
    async fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<DateTime<Utc>> {
        let lease = lease.clone();
        self.db.write(move |c| sql::heartbeat(c, &lease, lease_for, Utc::now())).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(job = %lease.job.id, attempt = lease.job.attempt, worker = %lease.worker))]
    async fn complete(&self, lease: &Lease) -> Result<()> {
        let lease = lease.clone();
        self.db.write(move |c| sql::complete(c, &lease, Utc::now())).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(job = %lease.job.id, attempt = lease.job.attempt, worker = %lease.worker))]
    async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<JobState> {
        let (lease, error) = (lease.clone(), error.to_owned());
        let state =
            self.db.write(move |c| sql::fail(c, &lease, &error, retry_at, Utc::now())).await?;
        if state == JobState::Retryable && retry_at.is_some_and(|at| at <= Utc::now()) {
            self.wake();
        }
        Ok(state)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(job = %lease.job.id, attempt = lease.job.attempt, worker = %lease.worker))]
    async fn release(&self, lease: &Lease) -> Result<()> {
        let lease = lease.clone();
        self.db.write(move |c| sql::release(c, &lease, Utc::now())).await?;
        self.wake();
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn cancel(&self, id: JobId) -> Result<bool> {
        self.db.write(move |c| sql::cancel(c, id, Utc::now())).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn recover_expired(&self) -> Result<u64> {
        let n = self.db.write(|c| sql::recover_expired(c, Utc::now())).await?;
        if n > 0 {
            tracing::info!(recovered = n, "recovered expired leases");
            self.wake();
        }
        Ok(n)
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        self.db.read(move |c| sql::get(c, id)).await
    }

    async fn list(&self, filter: &JobFilter, page: Page) -> Result<Vec<Job>> {
        let filter = filter.clone();
        self.db.read(move |c| sql::list(c, &filter, page)).await
    }

    async fn stats(&self) -> Result<QueueStats> {
        self.db.read(sql::stats).await
    }

    async fn complete_many(&self, leases: &[Lease]) -> Result<Vec<Result<()>>> {
        let leases = leases.to_vec();
        // One write for all of them; each lease still succeeds or fails on its own.
        self.db
            .write(move |c| {
                let now = Utc::now();
                let mut out = Vec::with_capacity(leases.len());
                for lease in &leases {
                    match sql::complete(c, lease, now) {
                        // A failure in SQLite fails the whole write (it rolls back); a lost lease
                        // is that lease's answer alone.
                        Err(e @ agentflow_core::Error::Backend { .. }) => return Err(e),
                        other => out.push(other),
                    }
                }
                Ok(out)
            })
            .await
    }

    fn wakeups(&self) -> Option<BoxStream<'static, ()>> {
        let rx = self.db.inner.wake.subscribe();
        Some(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            use tokio::sync::broadcast::error::RecvError;
            match rx.recv().await {
                Ok(()) | Err(RecvError::Lagged(_)) => Some(((), rx)),
                Err(RecvError::Closed) => None,
            }
        })))
    }
}
