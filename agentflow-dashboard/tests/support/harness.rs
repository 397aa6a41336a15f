//! A real engine on the in-memory backends, with a scripted agent the test steps through.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use agentflow_core::engine::{Engine, EngineConfig, EngineHandle};
use agentflow_core::memory::{LocalSource, MemoryQueue, MemoryStore};
use agentflow_core::{
    CancellationToken, Error, Executor, JobQueue, Progress, ProgressSender, Result, RunOutcome,
    RunRequest, StateStore, Usage, async_trait,
};
use agentflow_dashboard::{Dashboard, DashboardBuilder};
use tokio::sync::Semaphore;

/// The agent: reports a few steps, then waits for the test to [`release`](Agent::release) it
/// (when gated), then finishes with a cost of $0.42.
pub struct Agent {
    gate: Option<Semaphore>,
    /// Extra tool results of 16 kB each, sent before waiting (to outrun slow clients).
    flood: usize,
    /// How many runs started.
    runs: std::sync::atomic::AtomicUsize,
}

impl Agent {
    /// How many runs started.
    pub fn runs(&self) -> usize {
        self.runs.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn release(&self) {
        if let Some(g) = &self.gate {
            g.add_permits(1);
        }
    }
}

#[async_trait]
impl Executor for Agent {
    async fn run(
        &self,
        request: RunRequest,
        progress: ProgressSender,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        progress.send(Progress::Session { id: format!("session-{}", request.task.id) });
        progress.send(Progress::Text { text: format!("Reading {}", request.task.key) });
        progress.send(Progress::ToolUse {
            name: "Bash".into(),
            summary: "cargo test".into(),
            input: Some(serde_json::json!({"command": "cargo test"})),
        });
        progress.send(Progress::ToolResult {
            name: Some("Bash".into()),
            is_error: false,
            output: "test result: ok. 3 passed".into(),
        });
        progress.send(Progress::ToolUse {
            name: "Bash".into(),
            summary: "cargo clippy".into(),
            input: Some(serde_json::json!({"command": "cargo clippy"})),
        });
        progress.send(Progress::ToolResult {
            name: Some("Bash".into()),
            is_error: true,
            output: "error: unused variable `x`".into(),
        });
        for i in 0..self.flood {
            progress.send(Progress::ToolResult {
                name: Some("Bash".into()),
                is_error: false,
                output: format!("{i:05} {}", "x".repeat(16 * 1024)),
            });
        }
        if request.task.has_label("agent-fails") {
            return Err(Error::executor("the agent gave up: tests keep failing", false));
        }
        if let Some(gate) = &self.gate {
            tokio::select! {
                permit = gate.acquire() => permit.map_err(|_| Error::executor("gate closed", false))?.forget(),
                _ = cancel.cancelled() => return Err(Error::Cancelled { reason: "cancelled".into() }),
            }
        }
        progress.send(Progress::Text { text: "All done.".into() });
        Ok(RunOutcome {
            session_id: Some(format!("session-{}", request.task.id)),
            summary: "Done".into(),
            usage: Usage { input_tokens: 1000, output_tokens: 200, cost_usd: 0.42, turns: 3 },
            needs_review: Some(request.task.has_label("needs-review")),
        })
    }
}

pub struct Harness {
    pub source: LocalSource,
    pub queue: Arc<dyn JobQueue>,
    pub store: Arc<dyn StateStore>,
    pub handle: EngineHandle,
    pub agent: Arc<Agent>,
    pub shutdown: CancellationToken,
}

impl Harness {
    /// Starts an engine polling every 100 ms. `gated`: runs wait for [`Agent::release`].
    pub async fn start(gated: bool) -> Harness {
        Self::start_with(gated, 0).await
    }

    /// Like [`start`](Self::start), each run also sending `flood` large tool results.
    pub async fn start_with(gated: bool, flood: usize) -> Harness {
        let source = LocalSource::new();
        let queue: Arc<dyn JobQueue> = Arc::new(MemoryQueue::new());
        let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let agent = Arc::new(Agent {
            gate: gated.then(|| Semaphore::new(0)),
            flood,
            runs: Default::default(),
        });
        let config = EngineConfig {
            poll_interval: Duration::from_millis(100),
            feedback_interval: Duration::from_millis(200),
            queue_poll_interval: Duration::from_millis(50),
            workers: 2,
            progress_interval: Duration::from_millis(100),
            shutdown_grace: Duration::from_millis(200),
            cancel_grace: Duration::from_millis(200),
            ..EngineConfig::default()
        };
        let engine = Engine::builder()
            .source(Arc::new(source.clone()))
            .queue(queue.clone())
            .store(store.clone())
            .executor(agent.clone())
            .config(config)
            .build()
            .expect("engine builds");
        let handle = engine.handle();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move { engine.run(stop).await });
        Harness { source, queue, store, handle, agent, shutdown }
    }

    pub fn dashboard(&self) -> DashboardBuilder {
        Dashboard::builder(self.handle.clone(), self.store.clone(), self.queue.clone())
            .local_source(self.source.clone())
    }

    /// Waits (up to 20 s) until `f` holds for the engine's view of the task.
    pub async fn wait_task(
        &self,
        id: &str,
        what: &str,
        f: impl Fn(&agentflow_core::TaskUpdate) -> bool,
    ) -> agentflow_core::TaskUpdate {
        let id = agentflow_core::TaskId::from(id);
        for _ in 0..400 {
            if let Some(t) = self.handle.task(&id)
                && f(&t)
            {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("task {id} never became {what}: {:?}", self.handle.task(&id));
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
