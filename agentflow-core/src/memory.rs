//! In-memory backends: for tests, examples, and embedding agentflow in one process.
//!
//! | type | trait |
//! |---|---|
//! | [`MemoryQueue`] | [`JobQueue`](crate::JobQueue) |
//! | [`MemoryStore`] | [`StateStore`](crate::StateStore) |
//! | [`LocalSource`] | [`TaskSource`](crate::TaskSource) |
//! | [`BroadcastSink`], [`TracingSink`], [`RecordingSink`] | [`EventSink`](crate::EventSink) |
//!
//! They follow the same contracts as the durable adapters (the conformance suites in
//! `agentflow-testkit` run on them), but nothing survives the process.

mod queue;
mod sink;
mod source;
mod store;

pub use queue::{DEFAULT_MAX_FINISHED, MemoryQueue};
pub use sink::{BroadcastSink, DEFAULT_BROADCAST_CAPACITY, RecordingSink, TracingSink};
pub use source::{Comment, LOCAL_AUTHOR, LocalSnapshot, LocalSource};
pub use store::{DEFAULT_MAX_LOG_LINES, MemoryStore};
