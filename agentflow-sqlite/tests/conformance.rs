//! The testkit's conformance suites on SQLite, each case on a fresh temporary database file.

use std::sync::Arc;

use agentflow_core::{JobQueue, StateStore};
use agentflow_sqlite::{Database, SqliteOptions};

async fn make_queue() -> Arc<dyn JobQueue> {
    Arc::new(Database::open_temporary(SqliteOptions::default()).await.expect("open").queue())
}

async fn make_store() -> Arc<dyn StateStore> {
    Arc::new(Database::open_temporary(SqliteOptions::default()).await.expect("open").store())
}

agentflow_testkit::queue_conformance!(make_queue);
agentflow_testkit::store_conformance!(make_store);
