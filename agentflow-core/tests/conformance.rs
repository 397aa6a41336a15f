//! The conformance suites of `agentflow-testkit` on the in-memory backends.

use std::sync::Arc;

use agentflow_core::memory::{BroadcastSink, MemoryQueue, MemoryStore, RecordingSink, TracingSink};
use agentflow_core::{EventSink, JobQueue, StateStore};
use agentflow_testkit::source::{LocalFixture, SourceFixture};

async fn make_queue() -> Arc<dyn JobQueue> {
    Arc::new(MemoryQueue::new())
}

async fn make_store() -> Arc<dyn StateStore> {
    Arc::new(MemoryStore::new())
}

async fn make_fixture() -> Arc<dyn SourceFixture> {
    Arc::new(LocalFixture::new())
}

async fn make_sink() -> Arc<dyn EventSink> {
    Arc::new(BroadcastSink::default())
}

agentflow_testkit::queue_conformance!(make_queue);
agentflow_testkit::store_conformance!(make_store);
agentflow_testkit::source_conformance!(make_fixture);
agentflow_testkit::sink_conformance!(make_sink);

/// The tracing sink passes the sink suite too.
mod tracing_sink {
    use super::*;

    async fn make_sink() -> Arc<dyn EventSink> {
        Arc::new(TracingSink)
    }

    agentflow_testkit::sink_conformance!(make_sink);
}

/// The recording sink passes the sink suite too.
mod recording_sink {
    use super::*;

    async fn make_sink() -> Arc<dyn EventSink> {
        Arc::new(RecordingSink::new())
    }

    agentflow_testkit::sink_conformance!(make_sink);
}
