//! Shared fixtures for the engine tests.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentflow_core::engine::{Engine, EngineConfig};
use agentflow_core::memory::{LocalSource, MemoryQueue, MemoryStore};
use agentflow_core::{
    CancellationToken, Enqueued, Error, Executor, FeedbackBatch, Job, JobFilter, JobId, JobKind,
    JobQueue, JobSpec, JobState, Lease, Page, ProgressSender, QueueStats, Report, ReportKind,
    Result, RunOutcome, RunRequest, StateStore, Task, TaskId, TaskSource, TaskStatus, WorkerId,
    async_trait,
};
use chrono::{DateTime, Utc};

/// What an executor was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub(crate) task: TaskId,
    pub(crate) kind: JobKind,
    pub(crate) attempt: u32,
    pub(crate) resume: Option<String>,
    pub(crate) feedback: Vec<String>,
    pub(crate) previous_error: Option<String>,
}

type Script = dyn Fn(
        RunRequest,
        ProgressSender,
        CancellationToken,
    ) -> Pin<Box<dyn Future<Output = Result<RunOutcome>> + Send>>
    + Send
    + Sync;

/// An executor whose behaviour is a closure; it records every call.
pub(crate) struct Scripted {
    script: Box<Script>,
    pub(crate) calls: Mutex<Vec<Call>>,
    /// Whether it says it reads `RunRequest::inbox`.
    inbox: bool,
}

impl Scripted {
    pub(crate) fn new<F, Fut>(f: F) -> Arc<Self>
    where
        F: Fn(RunRequest, ProgressSender, CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<RunOutcome>> + Send + 'static,
    {
        Self::build(f, false)
    }

    /// Like [`new`](Self::new), for a script that reads the request's inbox.
    pub(crate) fn with_inbox<F, Fut>(f: F) -> Arc<Self>
    where
        F: Fn(RunRequest, ProgressSender, CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<RunOutcome>> + Send + 'static,
    {
        Self::build(f, true)
    }

    fn build<F, Fut>(f: F, inbox: bool) -> Arc<Self>
    where
        F: Fn(RunRequest, ProgressSender, CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<RunOutcome>> + Send + 'static,
    {
        Arc::new(Scripted {
            script: Box::new(move |r, p, c| Box::pin(f(r, p, c))),
            calls: Mutex::new(Vec::new()),
            inbox,
        })
    }

    /// Succeeds at once with `summary`.
    pub(crate) fn ok(summary: &'static str) -> Arc<Self> {
        Scripted::new(move |_, _, _| async move {
            Ok(RunOutcome { summary: summary.into(), ..Default::default() })
        })
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Executor for Scripted {
    async fn run(
        &self,
        request: RunRequest,
        progress: ProgressSender,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        self.calls.lock().unwrap().push(Call {
            task: request.task.id.clone(),
            kind: request.kind,
            attempt: request.attempt,
            resume: request.resume_session.clone(),
            feedback: request.feedback.iter().map(|f| f.body.clone()).collect(),
            previous_error: request.previous_error.clone(),
        });
        (self.script)(request, progress, cancel).await
    }

    fn accepts_comments(&self) -> bool {
        self.inbox
    }
}

/// Waits until a run is cancelled, then reports it.
pub(crate) async fn until_cancelled(cancel: CancellationToken) -> Result<RunOutcome> {
    cancel.cancelled().await;
    Err(Error::Cancelled { reason: "test executor cancelled".into() })
}

/// Fast timings for real-time tests.
pub(crate) fn fast_config() -> EngineConfig {
    EngineConfig {
        poll_interval: Duration::from_millis(50),
        feedback_interval: Duration::from_millis(50),
        queue_poll_interval: Duration::from_millis(20),
        reaper_interval: Duration::from_millis(100),
        progress_interval: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(2),
        cancel_grace: Duration::from_secs(2),
        ..EngineConfig::default()
    }
}

/// The default timings (30 s polls, 1 s queue poll) for tests under `start_paused`, where
/// short intervals would only burn CPU while virtual time jumps ahead.
pub(crate) fn paused_config() -> EngineConfig {
    EngineConfig {
        shutdown_grace: Duration::from_secs(2),
        cancel_grace: Duration::from_secs(2),
        ..EngineConfig::default()
    }
}

/// The in-memory backends plus an engine over them.
pub(crate) struct Fixture {
    pub(crate) source: LocalSource,
    pub(crate) queue: Arc<MemoryQueue>,
    pub(crate) store: Arc<MemoryStore>,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Fixture {
            source: LocalSource::new(),
            queue: Arc::new(MemoryQueue::new()),
            store: Arc::new(MemoryStore::new()),
        }
    }

    pub(crate) fn engine(&self, executor: Arc<dyn Executor>, config: EngineConfig) -> Engine {
        self.engine_with_queue(executor, self.queue.clone(), config)
    }

    pub(crate) fn engine_with_queue(
        &self,
        executor: Arc<dyn Executor>,
        queue: Arc<dyn JobQueue>,
        config: EngineConfig,
    ) -> Engine {
        self.builder(executor, queue, config).build().expect("engine builds")
    }

    /// A builder over the fixture's source and store with `executor` and `queue`.
    pub(crate) fn builder(
        &self,
        executor: Arc<dyn Executor>,
        queue: Arc<dyn JobQueue>,
        config: EngineConfig,
    ) -> agentflow_core::EngineBuilder {
        self.builder_on(Arc::new(self.source.clone()), executor, queue, config)
    }

    /// A builder over the fixture's store with `source` (e.g. a [`Counting`] around the
    /// fixture's), `executor` and `queue`.
    pub(crate) fn builder_on(
        &self,
        source: Arc<dyn TaskSource>,
        executor: Arc<dyn Executor>,
        queue: Arc<dyn JobQueue>,
        config: EngineConfig,
    ) -> agentflow_core::EngineBuilder {
        Engine::builder()
            .source(source)
            .queue(queue)
            .executor(executor)
            .store(self.store.clone() as Arc<dyn StateStore>)
            .config(config)
    }

    pub(crate) fn status(&self, id: &TaskId) -> TaskStatus {
        self.source.task(id).expect("task exists").status
    }

    /// Waits (real time, bounded) until `id` has `status`.
    pub(crate) async fn wait_status(&self, id: &TaskId, status: TaskStatus) {
        wait_for(&format!("{id} to be {status}"), || self.status(id) == status).await;
    }
}

/// Polls `cond` every 10 ms (tokio time, so it also works under `start_paused`), for at most
/// 20 s of real time.
pub(crate) async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    for i in 0..1_000_000 {
        if cond() {
            return;
        }
        if started.elapsed() > Duration::from_secs(20) {
            break;
        }
        // Short steps first; longer ones later so paused clocks do not crawl through hours.
        let step = if i < 200 { 10 } else { 250 };
        tokio::time::sleep(Duration::from_millis(step)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Runs `engine` in the background; returns the shutdown token and the join handle.
pub(crate) fn spawn(
    engine: Engine,
) -> (CancellationToken, tokio::task::JoinHandle<Result<()>>, agentflow_core::EngineHandle) {
    let shutdown = CancellationToken::new();
    let handle = engine.handle();
    let token = shutdown.clone();
    let join = tokio::spawn(async move { engine.run(token).await });
    (shutdown, join, handle)
}

/// Fires `shutdown` and waits for the engine to return.
pub(crate) async fn stop(shutdown: CancellationToken, join: tokio::task::JoinHandle<Result<()>>) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), join)
        .await
        .expect("engine stops")
        .expect("no panic")
        .expect("run ok");
}

/// A [`MemoryQueue`] whose `fail` records the backoff the engine asked for and makes the retry
/// due at once (the queue's clock is wall time, the tests' is paused), and whose heartbeat can
/// be told to report a lost lease.
pub(crate) struct Intercept {
    pub(crate) inner: Arc<MemoryQueue>,
    pub(crate) delays: Mutex<Vec<Option<Duration>>>,
    pub(crate) lose_lease: std::sync::atomic::AtomicBool,
    pub(crate) completes: std::sync::atomic::AtomicUsize,
}

impl Intercept {
    pub(crate) fn new(inner: Arc<MemoryQueue>) -> Arc<Self> {
        Arc::new(Intercept {
            inner,
            delays: Mutex::new(Vec::new()),
            lose_lease: Default::default(),
            completes: Default::default(),
        })
    }

    /// The delays asked for, rounded to whole seconds.
    pub(crate) fn delays_secs(&self) -> Vec<Option<u64>> {
        self.delays
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.map(|d| (d.as_secs_f64()).round() as u64))
            .collect()
    }
}

#[async_trait]
impl JobQueue for Intercept {
    async fn enqueue(&self, spec: JobSpec) -> Result<Enqueued> {
        self.inner.enqueue(spec).await
    }
    async fn reserve(
        &self,
        worker: &WorkerId,
        lease_for: Duration,
        max: usize,
    ) -> Result<Vec<Lease>> {
        self.inner.reserve(worker, lease_for, max).await
    }
    async fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<DateTime<Utc>> {
        if self.lose_lease.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::LeaseLost { job: lease.job.id });
        }
        self.inner.heartbeat(lease, lease_for).await
    }
    async fn complete(&self, lease: &Lease) -> Result<()> {
        self.completes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.complete(lease).await
    }
    async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<JobState> {
        let now = Utc::now();
        self.delays
            .lock()
            .unwrap()
            .push(retry_at.map(|at| (at - now).to_std().unwrap_or_default()));
        self.inner.fail(lease, error, retry_at.map(|_| now)).await
    }
    async fn release(&self, lease: &Lease) -> Result<()> {
        self.inner.release(lease).await
    }
    async fn cancel(&self, id: JobId) -> Result<bool> {
        self.inner.cancel(id).await
    }
    async fn recover_expired(&self) -> Result<u64> {
        self.inner.recover_expired().await
    }
    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        self.inner.get(id).await
    }
    async fn list(&self, filter: &JobFilter, page: Page) -> Result<Vec<Job>> {
        self.inner.list(filter, page).await
    }
    async fn stats(&self) -> Result<QueueStats> {
        self.inner.stats().await
    }
}

/// A [`LocalSource`] that counts progress reports (each one a tracker write) and can be told to
/// hang at one write for good — where a daemon killed at that instant would stop.
pub(crate) struct Counting {
    pub(crate) inner: LocalSource,
    pub(crate) progress_reports: std::sync::atomic::AtomicUsize,
    /// The write to hang at, if any.
    pub(crate) stall: Mutex<Option<Stall>>,
    /// Set once a write hung.
    pub(crate) stalled: std::sync::atomic::AtomicBool,
    /// A write that answers only after this long (a slow tracker).
    pub(crate) slow: Mutex<Option<(Stall, Duration)>>,
}

/// A tracker write [`Counting`] never finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stall {
    /// Setting a task to this status.
    Status(TaskStatus),
    /// Posting a summary report.
    Summary,
}

impl Counting {
    pub(crate) fn new(inner: LocalSource) -> Arc<Self> {
        Self::stalling_at(inner, None)
    }

    pub(crate) fn stalling_at(inner: LocalSource, stall: Option<Stall>) -> Arc<Self> {
        Arc::new(Counting {
            inner,
            progress_reports: std::sync::atomic::AtomicUsize::new(0),
            stall: Mutex::new(stall),
            stalled: std::sync::atomic::AtomicBool::new(false),
            slow: Mutex::new(None),
        })
    }

    async fn maybe_stall(&self, at: Stall) {
        if *self.stall.lock().unwrap() == Some(at) {
            self.stalled.store(true, std::sync::atomic::Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        let slow = *self.slow.lock().unwrap();
        if let Some((point, delay)) = slow
            && point == at
        {
            tokio::time::sleep(delay).await;
        }
    }
}

#[async_trait]
impl TaskSource for Counting {
    async fn ready(&self, limit: usize) -> Result<Vec<Task>> {
        self.inner.ready(limit).await
    }
    async fn claim(&self, id: &TaskId) -> Result<bool> {
        self.inner.claim(id).await
    }
    async fn set_status(&self, id: &TaskId, status: TaskStatus) -> Result<()> {
        self.maybe_stall(Stall::Status(status)).await;
        self.inner.set_status(id, status).await
    }
    async fn feedback(&self, cursor: Option<&str>) -> Result<FeedbackBatch> {
        self.inner.feedback(cursor).await
    }
    async fn report(&self, id: &TaskId, report: &Report) -> Result<()> {
        match report.kind {
            ReportKind::Progress => {
                self.progress_reports.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            ReportKind::Summary => self.maybe_stall(Stall::Summary).await,
        }
        self.inner.report(id, report).await
    }
    async fn get(&self, id: &TaskId) -> Result<Option<Task>> {
        self.inner.get(id).await
    }
    async fn list(&self, status: TaskStatus) -> Result<Vec<Task>> {
        self.inner.list(status).await
    }
}

/// Logs to the test output when `AGENTFLOW_TEST_LOG` is set (e.g. `debug`).
pub(crate) fn trace() {
    if let Ok(filter) = std::env::var("AGENTFLOW_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}
