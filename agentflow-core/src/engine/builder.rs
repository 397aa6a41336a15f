//! [`EngineBuilder`]: assembles an [`Engine`] from its parts.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{Notify, broadcast};

use super::{Engine, EngineConfig, Shared, board::Board};
use crate::error::{Error, Result};
use crate::event::EventSink;
use crate::executor::{Executor, ToolProvider};
use crate::job::WorkerId;
use crate::queue::JobQueue;
use crate::review::{KeywordPolicy, ReviewPolicy};
use crate::source::TaskSource;
use crate::state::StateStore;

/// Builds an [`Engine`]. `source`, `queue`, `executor` and `store` are required; `events`
/// defaults to no sink (subscribers through [`EngineHandle::subscribe`](super::EngineHandle::subscribe)
/// still get every event), `tools` to none, `review` to [`KeywordPolicy::default`], `config` to
/// [`EngineConfig::default`].
#[derive(Default)]
pub struct EngineBuilder {
    source: Option<Arc<dyn TaskSource>>,
    queue: Option<Arc<dyn JobQueue>>,
    executor: Option<Arc<dyn Executor>>,
    store: Option<Arc<dyn StateStore>>,
    events: Option<Arc<dyn EventSink>>,
    tools: Option<Arc<dyn ToolProvider>>,
    review: Option<Arc<dyn ReviewPolicy>>,
    config: EngineConfig,
    worker: Option<WorkerId>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// Where tasks come from.
    pub fn source(mut self, source: Arc<dyn TaskSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// The job queue.
    pub fn queue(mut self, queue: Arc<dyn JobQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// What runs a task.
    pub fn executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = Some(executor);
        self
    }

    /// Sessions, runs, logs, cursors.
    pub fn store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Where events go (besides subscribers).
    pub fn events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = Some(events);
        self
    }

    /// Grants tools to each run (optional).
    pub fn tools(mut self, tools: Arc<dyn ToolProvider>) -> Self {
        self.tools = Some(tools);
        self
    }

    /// The review gate (default: [`KeywordPolicy::default`]).
    pub fn review(mut self, review: Arc<dyn ReviewPolicy>) -> Self {
        self.review = Some(review);
        self
    }

    /// The configuration.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// The worker id leases are taken under (default: [`WorkerId::generate`]).
    pub fn worker_id(mut self, worker: WorkerId) -> Self {
        self.worker = Some(worker);
        self
    }

    /// Builds the engine.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a required part is missing or the config is invalid.
    pub fn build(self) -> Result<Engine> {
        fn missing(part: &str) -> Error {
            Error::config(
                format!("engine.{part}"),
                format!("no {part} given: call `.{part}(…)` on the builder"),
            )
        }
        self.config.validate()?;
        let (events, _) = broadcast::channel(1024);
        let shared = Shared {
            source: self.source.ok_or_else(|| missing("source"))?,
            queue: self.queue.ok_or_else(|| missing("queue"))?,
            executor: self.executor.ok_or_else(|| missing("executor"))?,
            store: self.store.ok_or_else(|| missing("store"))?,
            sink: self.events.unwrap_or_else(|| Arc::new(())),
            tools: self.tools,
            review: self.review.unwrap_or_else(|| Arc::new(KeywordPolicy::default())),
            worker: self.worker.unwrap_or_else(WorkerId::generate),
            config: RwLock::new(self.config),
            paused: AtomicBool::new(false),
            budget_exhausted: AtomicBool::new(false),
            started: AtomicBool::new(false),
            poll_wake: Notify::new(),
            feedback_wake: Notify::new(),
            work_wake: Notify::new(),
            events,
            board: Mutex::new(Board::default()),
            running: Mutex::new(HashMap::new()),
        };
        Ok(Engine { shared: Arc::new(shared) })
    }
}
