//! Shared fixtures for the engine tests.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentflow_core::engine::{Engine, EngineConfig};
use agentflow_core::memory::{LocalSource, MemoryQueue, MemoryStore};
use agentflow_core::{
    CancellationToken, Error, Executor, JobKind, JobQueue, ProgressSender, Result, RunOutcome,
    RunRequest, StateStore, TaskId, TaskSource, TaskStatus, async_trait,
};

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
}

impl Scripted {
    pub(crate) fn new<F, Fut>(f: F) -> Arc<Self>
    where
        F: Fn(RunRequest, ProgressSender, CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<RunOutcome>> + Send + 'static,
    {
        Arc::new(Scripted {
            script: Box::new(move |r, p, c| Box::pin(f(r, p, c))),
            calls: Mutex::new(Vec::new()),
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
        Engine::builder()
            .source(Arc::new(self.source.clone()) as Arc<dyn TaskSource>)
            .queue(queue)
            .executor(executor)
            .store(self.store.clone() as Arc<dyn StateStore>)
            .config(config)
            .build()
            .expect("engine builds")
    }

    pub(crate) fn status(&self, id: &TaskId) -> TaskStatus {
        self.source.task(id).expect("task exists").status
    }

    /// Waits (real time, bounded) until `id` has `status`.
    pub(crate) async fn wait_status(&self, id: &TaskId, status: TaskStatus) {
        wait_for(&format!("{id} to be {status}"), || self.status(id) == status).await;
    }
}

/// Polls `cond` every 10 ms for at most 15 s (in tokio time).
pub(crate) async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
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
