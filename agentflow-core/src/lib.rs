#![doc = include_str!("../README.md")]

pub mod command;
pub mod engine;
pub mod error;
pub mod event;
pub mod executor;
pub mod job;
pub mod lifecycle;
pub mod memory;
pub mod process;
pub mod queue;
pub mod review;
pub mod run;
pub mod source;
pub mod state;
pub mod store;
pub mod task;

pub use async_trait::async_trait;
pub use engine::{Engine, EngineBuilder, EngineConfig, EngineHandle};
pub use error::{BoxError, Error, Result};
pub use event::{Event, EventSink, LogEvent, Stats, TaskUpdate};
pub use executor::{Executor, ToolProvider};
pub use job::{
    Enqueued, Job, JobFilter, JobId, JobKind, JobSpec, JobState, Lease, Page, QueueStats, WorkerId,
};
pub use queue::JobQueue;
pub use review::{KeywordPolicy, ReviewPolicy};
pub use run::{LogLevel, Progress, ProgressSender, RunOutcome, RunRequest, ToolServer, Usage};
pub use source::TaskSource;
pub use state::StateStore;
pub use store::{
    LogLine, LogPage, Run, RunFilter, RunFinish, RunId, RunPage, RunStatus, RunTotals, Session,
    Setting, SettingSource, mask_secret,
};
pub use task::{
    Feedback, FeedbackBatch, Priority, Report, ReportKind, SourceEvent, Task, TaskId, TaskStatus,
};
pub use tokio_util::sync::CancellationToken;
