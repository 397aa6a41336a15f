//! The JobQueue and EventSink conformance suites against the real Redis on 127.0.0.1:6379; each
//! queue case gets its own key prefix, each sink case its own channel. Under `CI` an
//! unreachable Redis fails every case; elsewhere too, since the suites cannot be skipped
//! case by case.

#[path = "support/redis.rs"]
mod support;

use std::sync::Arc;

use agentflow_core::{EventSink, JobQueue};
use agentflow_redis::{RedisEventSink, RedisEventsConfig};

async fn require_redis() {
    assert!(
        support::shared_redis().await,
        "Redis at {} is unreachable: start it to run the conformance suites",
        support::SHARED_URL
    );
}

async fn make_queue() -> Arc<dyn JobQueue> {
    require_redis().await;
    Arc::new(support::queue(support::config(support::SHARED_URL)).await)
}

async fn make_sink() -> Arc<dyn EventSink> {
    require_redis().await;
    let config = RedisEventsConfig::new(support::SHARED_URL)
        .channel(format!("{}:events", support::fresh_prefix()));
    Arc::new(RedisEventSink::connect(config).await.expect("connect"))
}

agentflow_testkit::queue_conformance!(make_queue);
agentflow_testkit::sink_conformance!(make_sink);
