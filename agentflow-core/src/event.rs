//! Events for the dashboard and other observers, and the [`EventSink`] they go through.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::job::{JobId, JobKind};
use crate::lifecycle::State;
use crate::run::LogLevel;
use crate::store::RunId;
use crate::task::{TaskId, TaskStatus};

/// A task's live state, as the board shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskUpdate {
    /// The task.
    pub task: TaskId,
    /// Human key.
    pub key: String,
    /// Title.
    pub title: String,
    /// Link to the tracker.
    pub url: Option<String>,
    /// Status as the tracker shows it.
    pub status: TaskStatus,
    /// The lifecycle state.
    pub state: State,
    /// The current job, if any.
    pub job: Option<JobId>,
    /// The current job's kind.
    pub kind: Option<JobKind>,
    /// The current run, if any.
    pub run: Option<RunId>,
    /// Attempt number of the current job.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When the current run started.
    pub started_at: Option<DateTime<Utc>>,
    /// The last progress line.
    pub last_line: Option<String>,
    /// Cost of the task so far (all runs).
    pub cost_usd: f64,
    /// The last error, if any.
    pub error: Option<String>,
    /// When this update happened.
    pub at: DateTime<Utc>,
}

/// Engine-wide numbers for the stats strip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Runs in progress.
    pub running: u64,
    /// Jobs waiting (scheduled, available, retryable).
    pub queued: u64,
    /// Runs that succeeded today (UTC).
    pub done_today: u64,
    /// Runs that failed today (UTC).
    pub failed_today: u64,
    /// Cost of today's runs (UTC), in US dollars.
    pub cost_today: f64,
    /// Whether new pickups are paused.
    pub paused: bool,
    /// Whether today's cost reached the daily budget, so no new run starts.
    #[serde(default)]
    pub budget_exhausted: bool,
}

/// One line of a run's log, live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    /// The task.
    pub task: TaskId,
    /// The run.
    pub run: RunId,
    /// Position in the run's log.
    pub seq: u64,
    /// When it was produced.
    pub at: DateTime<Utc>,
    /// Level.
    pub level: LogLevel,
    /// What produced it (`text`, `tool_use`, `tool_result`, `log`, …).
    pub kind: String,
    /// The line.
    pub line: String,
    /// Structured detail, when any.
    pub detail: Option<serde_json::Value>,
}

/// Something observers care about. Serialized as `{"event": "task:update", "data": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data")]
#[non_exhaustive]
pub enum Event {
    /// A task's status or progress changed.
    #[serde(rename = "task:update")]
    TaskUpdate(TaskUpdate),
    /// Engine-wide stats changed.
    #[serde(rename = "stats:update")]
    Stats(Stats),
    /// A new log line of a run.
    #[serde(rename = "log:new")]
    Log(LogEvent),
}

impl Event {
    /// The wire name: `task:update`, `stats:update` or `log:new`.
    pub fn name(&self) -> &'static str {
        match self {
            Event::TaskUpdate(_) => "task:update",
            Event::Stats(_) => "stats:update",
            Event::Log(_) => "log:new",
        }
    }
}

/// Receives events. Synchronous and non-blocking, like a tracing `Layer`: a sink that does I/O
/// queues and drops (counting what it drops), it never blocks the engine.
///
/// `()` ignores everything, `Option<S>` is an optional sink, `Vec<S>` and tuples fan out.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use agentflow_core::{Event, EventSink, Stats};
///
/// #[derive(Default)]
/// struct Count(Mutex<usize>);
/// impl EventSink for Count {
///     fn emit(&self, _: &Event) { *self.0.lock().unwrap() += 1; }
/// }
///
/// let count = Arc::new(Count::default());
/// let sinks: Vec<Arc<dyn EventSink>> = vec![count.clone(), Arc::new(())];
/// sinks.emit(&Event::Stats(Stats::default()));
/// assert_eq!(*count.0.lock().unwrap(), 1);
/// ```
pub trait EventSink: Send + Sync + 'static {
    /// Handles one event. Must not block.
    fn emit(&self, event: &Event);
}

impl EventSink for () {
    fn emit(&self, _event: &Event) {}
}

impl<S: EventSink> EventSink for Option<S> {
    fn emit(&self, event: &Event) {
        if let Some(s) = self {
            s.emit(event);
        }
    }
}

impl<S: EventSink> EventSink for Vec<S> {
    fn emit(&self, event: &Event) {
        for s in self {
            s.emit(event);
        }
    }
}

impl<S: EventSink + ?Sized> EventSink for Arc<S> {
    fn emit(&self, event: &Event) {
        (**self).emit(event);
    }
}

impl<S: EventSink + ?Sized> EventSink for Box<S> {
    fn emit(&self, event: &Event) {
        (**self).emit(event);
    }
}

impl<A: EventSink, B: EventSink> EventSink for (A, B) {
    fn emit(&self, event: &Event) {
        self.0.emit(event);
        self.1.emit(event);
    }
}
