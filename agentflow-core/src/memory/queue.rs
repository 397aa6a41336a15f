//! [`MemoryQueue`]: the [`JobQueue`] contract in process memory.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::BoxStream;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::job::{
    Enqueued, Job, JobFilter, JobId, JobSpec, JobState, Lease, Page, QueueStats, WorkerId,
};
use crate::queue::JobQueue;

/// How many finished jobs a [`MemoryQueue`] keeps by default.
pub const DEFAULT_MAX_FINISHED: usize = 100_000;

/// A [`JobQueue`] in process memory: for tests, examples and embedding in one process.
///
/// It follows the whole contract (dedup on live unique keys, leases with tokens, retries,
/// recovery, cancel) with [`Utc::now`] as its clock. Jobs do not survive the process. Finished
/// jobs (completed, failed, cancelled) are kept for listing up to a bound
/// ([`DEFAULT_MAX_FINISHED`], see [`MemoryQueue::with_max_finished`]); the oldest are forgotten
/// first. [`wakeups`](JobQueue::wakeups) fires when a job becomes reservable: on enqueue, release
/// and recovery at once, and for delayed or retrying jobs when their time comes.
///
/// Cloning gives another handle to the same queue.
///
/// ```
/// # tokio_test_block_on(async {
/// use std::time::Duration;
/// use agentflow_core::{memory::MemoryQueue, JobKind, JobQueue, JobSpec, WorkerId};
///
/// let queue = MemoryQueue::new();
/// let spec = JobSpec::new(JobKind::Execute, "t1").unique_key("execute:t1");
/// let id = queue.enqueue(spec.clone()).await?.id();
/// assert!(!queue.enqueue(spec).await?.is_new()); // the key is live
///
/// let worker = WorkerId::generate();
/// let leases = queue.reserve(&worker, Duration::from_secs(60), 10).await?;
/// assert_eq!(leases[0].job.id, id);
/// queue.complete(&leases[0]).await?;
/// # Ok::<(), agentflow_core::Error>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryQueue {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Bumped whenever a job becomes reservable at once; `wakeups` streams yield on it.
    wake: watch::Sender<u64>,
    /// Bumped whenever a job gets a future `run_at`; `wakeups` streams re-arm their timer.
    schedule: watch::Sender<u64>,
    max_finished: usize,
}

struct Slot {
    job: Job,
    lease: Option<Held>,
}

struct Held {
    token: Uuid,
    expires_at: DateTime<Utc>,
}

#[derive(Default)]
struct State {
    /// Every job still held, ordered by id (time-ordered), so listings are a reverse walk.
    jobs: BTreeMap<JobId, Slot>,
    /// Unique key → the live job holding it.
    unique: HashMap<String, JobId>,
    /// Waiting jobs that were due when last looked at, in reserve order.
    due: BTreeSet<(i16, DateTime<Utc>, JobId)>,
    /// Waiting jobs not yet due, by `run_at`.
    later: BTreeSet<(DateTime<Utc>, JobId)>,
    /// Running jobs by lease expiry.
    running: BTreeSet<(DateTime<Utc>, JobId)>,
    /// Finished jobs, oldest first, for retention.
    finished: VecDeque<JobId>,
    counts: QueueStats,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stats = self.inner.lock().counts;
        f.debug_struct("MemoryQueue")
            .field("stats", &stats)
            .field("max_finished", &self.inner.max_finished)
            .finish()
    }
}

impl MemoryQueue {
    /// An empty queue keeping up to [`DEFAULT_MAX_FINISHED`] finished jobs.
    pub fn new() -> Self {
        Self::with_max_finished(DEFAULT_MAX_FINISHED)
    }

    /// An empty queue keeping at most `max` finished jobs (0: forget them at once).
    pub fn with_max_finished(max: usize) -> Self {
        let (wake, _) = watch::channel(0);
        let (schedule, _) = watch::channel(0);
        let state = Mutex::new(State::default());
        MemoryQueue { inner: Arc::new(Inner { state, wake, schedule, max_finished: max }) }
    }

    fn wake(&self) {
        self.inner.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Tells `wakeups` streams that a job will come due later.
    fn rearm(&self) {
        self.inner.schedule.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `now + d`, saturating at the end of time.
fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl State {
    fn set_state(&mut self, id: JobId, to: JobState, now: DateTime<Utc>) {
        let Some(slot) = self.jobs.get_mut(&id) else { return };
        *self.counts.get_mut(slot.job.state) -= 1;
        *self.counts.get_mut(to) += 1;
        slot.job.state = to;
        slot.job.updated_at = now;
    }

    /// Puts a waiting job into the due or later index.
    fn index(&mut self, id: JobId, now: DateTime<Utc>) {
        let Some(slot) = self.jobs.get(&id) else { return };
        let job = &slot.job;
        if job.run_at <= now {
            self.due.insert((job.priority, job.run_at, id));
        } else {
            self.later.insert((job.run_at, id));
        }
    }

    fn unindex(&mut self, id: JobId) {
        let Some(slot) = self.jobs.get(&id) else { return };
        let job = &slot.job;
        self.due.remove(&(job.priority, job.run_at, id));
        self.later.remove(&(job.run_at, id));
        if let Some(held) = &slot.lease {
            self.running.remove(&(held.expires_at, id));
        }
    }

    /// Moves jobs whose time has come from `later` to `due`.
    fn promote(&mut self, now: DateTime<Utc>) {
        while let Some(&(at, id)) = self.later.first() {
            if at > now {
                break;
            }
            self.later.pop_first();
            if let Some(slot) = self.jobs.get(&id) {
                self.due.insert((slot.job.priority, at, id));
            }
        }
    }

    /// The slot `lease` refers to, if the lease is still the job's current one.
    fn held(&mut self, lease: &Lease) -> Result<JobId> {
        let id = lease.job.id;
        match self.jobs.get(&id) {
            Some(Slot { job, lease: Some(held) })
                if job.state == JobState::Running && held.token == lease.token =>
            {
                Ok(id)
            }
            _ => Err(Error::LeaseLost { job: id }),
        }
    }

    /// Drops the lease of a running job (and its expiry index entry).
    fn drop_lease(&mut self, id: JobId) {
        if let Some(slot) = self.jobs.get_mut(&id)
            && let Some(held) = slot.lease.take()
        {
            self.running.remove(&(held.expires_at, id));
        }
    }

    /// Ends a job in a terminal state: frees its unique key and applies retention.
    fn finish(&mut self, id: JobId, to: JobState, now: DateTime<Utc>, max_finished: usize) {
        self.unindex(id);
        self.drop_lease(id);
        self.set_state(id, to, now);
        if let Some(key) = self.jobs.get(&id).and_then(|s| s.job.unique_key.clone())
            && self.unique.get(&key) == Some(&id)
        {
            self.unique.remove(&key);
        }
        self.finished.push_back(id);
        while self.finished.len() > max_finished {
            let Some(old) = self.finished.pop_front() else { break };
            if let Some(slot) = self.jobs.remove(&old) {
                *self.counts.get_mut(slot.job.state) -= 1;
            }
        }
    }

    fn complete(&mut self, lease: &Lease, now: DateTime<Utc>, max_finished: usize) -> Result<()> {
        let id = self.held(lease)?;
        self.finish(id, JobState::Completed, now, max_finished);
        Ok(())
    }

    /// The earliest `run_at` of a waiting job that is later than `t`.
    fn next_due_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.later.iter().map(|(at, _)| *at).find(|at| *at > t)
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn enqueue(&self, spec: JobSpec) -> Result<Enqueued> {
        if spec.max_attempts == 0 {
            return Err(Error::InvalidInput("max_attempts must be at least 1".into()));
        }
        let now = Utc::now();
        let due_now;
        let id;
        {
            let mut st = self.inner.lock();
            if let Some(key) = &spec.unique_key
                && let Some(existing) = st.unique.get(key)
            {
                return Ok(Enqueued::Existing(*existing));
            }
            id = JobId::new();
            let run_at = spec.run_at.unwrap_or(now);
            due_now = run_at <= now;
            let state = if due_now { JobState::Available } else { JobState::Scheduled };
            let job = Job {
                id,
                kind: spec.kind,
                task: spec.task,
                payload: spec.payload,
                unique_key: spec.unique_key,
                priority: spec.priority,
                attempt: 0,
                max_attempts: spec.max_attempts,
                run_at,
                timeout: spec.timeout,
                state,
                last_error: None,
                created_at: now,
                updated_at: now,
            };
            if let Some(key) = &job.unique_key {
                st.unique.insert(key.clone(), id);
            }
            *st.counts.get_mut(state) += 1;
            st.jobs.insert(id, Slot { job, lease: None });
            st.index(id, now);
        }
        if due_now {
            self.wake()
        } else {
            self.rearm()
        }
        Ok(Enqueued::New(id))
    }

    async fn reserve(
        &self,
        worker: &WorkerId,
        lease_for: Duration,
        max: usize,
    ) -> Result<Vec<Lease>> {
        let now = Utc::now();
        let expires_at = after(now, lease_for);
        let mut st = self.inner.lock();
        st.promote(now);
        let mut out = Vec::with_capacity(max.min(st.due.len()));
        while out.len() < max {
            let Some((_, _, id)) = st.due.pop_first() else { break };
            st.set_state(id, JobState::Running, now);
            let token = Uuid::new_v4();
            st.running.insert((expires_at, id));
            let Some(slot) = st.jobs.get_mut(&id) else { continue };
            slot.job.attempt += 1;
            slot.lease = Some(Held { token, expires_at });
            out.push(Lease { job: slot.job.clone(), token, worker: worker.clone(), expires_at });
        }
        Ok(out)
    }

    async fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<DateTime<Utc>> {
        let now = Utc::now();
        let expires_at = after(now, lease_for);
        let mut st = self.inner.lock();
        let id = st.held(lease)?;
        st.drop_lease(id);
        st.running.insert((expires_at, id));
        if let Some(slot) = st.jobs.get_mut(&id) {
            slot.lease = Some(Held { token: lease.token, expires_at });
            slot.job.updated_at = now;
        }
        Ok(expires_at)
    }

    async fn complete(&self, lease: &Lease) -> Result<()> {
        let max = self.inner.max_finished;
        self.inner.lock().complete(lease, Utc::now(), max)
    }

    async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<JobState> {
        let now = Utc::now();
        let mut st = self.inner.lock();
        let id = st.held(lease)?;
        st.drop_lease(id);
        let Some(slot) = st.jobs.get_mut(&id) else { return Err(Error::LeaseLost { job: id }) };
        slot.job.last_error = Some(error.to_owned());
        let attempts_left = slot.job.attempt < slot.job.max_attempts;
        match retry_at {
            Some(at) if attempts_left => {
                slot.job.run_at = at;
                st.set_state(id, JobState::Retryable, now);
                st.index(id, now);
                let due_now = at <= now;
                drop(st);
                if due_now {
                    self.wake()
                } else {
                    self.rearm()
                }
                Ok(JobState::Retryable)
            }
            _ => {
                st.finish(id, JobState::Failed, now, self.inner.max_finished);
                Ok(JobState::Failed)
            }
        }
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let now = Utc::now();
        {
            let mut st = self.inner.lock();
            let id = st.held(lease)?;
            st.drop_lease(id);
            if let Some(slot) = st.jobs.get_mut(&id) {
                slot.job.attempt = slot.job.attempt.saturating_sub(1);
                slot.job.run_at = now;
            }
            st.set_state(id, JobState::Available, now);
            st.index(id, now);
        }
        self.wake();
        Ok(())
    }

    async fn cancel(&self, id: JobId) -> Result<bool> {
        let now = Utc::now();
        let mut st = self.inner.lock();
        let Some(slot) = st.jobs.get(&id) else { return Err(Error::not_found("job", id)) };
        if !slot.job.state.is_live() {
            return Ok(false);
        }
        st.finish(id, JobState::Cancelled, now, self.inner.max_finished);
        Ok(true)
    }

    async fn recover_expired(&self) -> Result<u64> {
        let now = Utc::now();
        let mut st = self.inner.lock();
        let expired: Vec<JobId> =
            st.running.iter().take_while(|(at, _)| *at <= now).map(|(_, id)| *id).collect();
        let mut retrying = false;
        for &id in &expired {
            st.drop_lease(id);
            let Some(slot) = st.jobs.get_mut(&id) else { continue };
            slot.job.last_error =
                Some(format!("lease expired during attempt {}", slot.job.attempt));
            if slot.job.attempt < slot.job.max_attempts {
                slot.job.run_at = now;
                st.set_state(id, JobState::Retryable, now);
                st.index(id, now);
                retrying = true;
            } else {
                st.finish(id, JobState::Failed, now, self.inner.max_finished);
            }
        }
        drop(st);
        if !expired.is_empty() {
            tracing::debug!(recovered = expired.len(), "memory queue recovered expired leases");
        }
        if retrying {
            self.wake();
        }
        Ok(expired.len() as u64)
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        Ok(self.inner.lock().jobs.get(&id).map(|s| s.job.clone()))
    }

    async fn list(&self, filter: &JobFilter, page: Page) -> Result<Vec<Job>> {
        let st = self.inner.lock();
        Ok(st
            .jobs
            .values()
            .rev()
            .map(|s| &s.job)
            .filter(|j| filter.matches(j))
            .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
            .take(page.limit as usize)
            .cloned()
            .collect())
    }

    async fn stats(&self) -> Result<QueueStats> {
        Ok(self.inner.lock().counts)
    }

    async fn complete_many(&self, leases: &[Lease]) -> Result<Vec<Result<()>>> {
        let now = Utc::now();
        let max = self.inner.max_finished;
        let mut st = self.inner.lock();
        Ok(leases.iter().map(|l| st.complete(l, now, max)).collect())
    }

    fn wakeups(&self) -> Option<BoxStream<'static, ()>> {
        let wake = self.inner.wake.subscribe();
        let schedule = self.inner.schedule.subscribe();
        let weak = Arc::downgrade(&self.inner);
        let fired = Utc::now();
        Some(Box::pin(futures::stream::unfold(
            (wake, schedule, weak, fired),
            |(mut wake, mut schedule, weak, mut fired)| async move {
                // Bounded: each turn either yields or saw a schedule change.
                loop {
                    let next = weak.upgrade()?.lock().next_due_after(fired);
                    let wait = next.map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO));
                    tokio::select! {
                        changed = wake.changed() => {
                            changed.ok()?;
                            break;
                        }
                        changed = schedule.changed() => changed.ok()?,
                        () = tokio::time::sleep(wait.unwrap_or(Duration::MAX)), if wait.is_some() => {
                            fired = next.unwrap_or(fired);
                            break;
                        }
                    }
                }
                Some(((), (wake, schedule, weak, fired)))
            },
        )))
    }
}
