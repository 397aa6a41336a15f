//! The JobQueue and StateStore conformance suites on a real Postgres, each case in its own
//! fresh schema. Fails (never skips) when Postgres is unreachable.

#[path = "support.rs"]
mod support;

use std::sync::Arc;

use agentflow_core::{JobQueue, StateStore};
use agentflow_postgres::{PgQueue, PgStore};

async fn make_queue() -> Arc<dyn JobQueue> {
    let cfg = support::config().await.max_connections(8);
    Arc::new(PgQueue::connect(&cfg).await.expect("PgQueue::connect"))
}

async fn make_store() -> Arc<dyn StateStore> {
    let cfg = support::config().await.max_connections(4);
    Arc::new(PgStore::connect(&cfg).await.expect("PgStore::connect"))
}

agentflow_testkit::queue_conformance!(make_queue);
agentflow_testkit::store_conformance!(make_store);
