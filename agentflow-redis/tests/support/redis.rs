//! Shared by this crate's integration tests: the shared Redis on 127.0.0.1:6379 (fail under CI
//! when it is down, skip with a note otherwise), fresh key prefixes, and private `redis-server`
//! processes on free ports for fault tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use agentflow_redis::{RedisQueue, RedisQueueConfig};

pub const SHARED_URL: &str = "redis://127.0.0.1:6379";

/// Whether the shared Redis answers. Under `CI` a dead Redis fails the test; elsewhere the test
/// prints a note and returns early.
pub async fn shared_redis() -> bool {
    let up = async {
        let client = redis::Client::open(SHARED_URL).ok()?;
        let mut conn =
            tokio::time::timeout(Duration::from_secs(3), client.get_multiplexed_async_connection())
                .await
                .ok()?
                .ok()?;
        redis::cmd("PING").query_async::<String>(&mut conn).await.ok()
    }
    .await
    .is_some();
    if !up {
        if std::env::var_os("CI").is_some() {
            panic!(
                "Redis at {SHARED_URL} is unreachable and CI is set: start it (scripts/services.sh)"
            );
        }
        eprintln!("note: Redis at {SHARED_URL} is unreachable; skipping (set CI to fail instead)");
    }
    up
}

/// A key prefix no other test uses.
pub fn fresh_prefix() -> String {
    format!("agentflow-test-{:016x}", fastrand::u64(..))
}

pub fn config(url: &str) -> RedisQueueConfig {
    RedisQueueConfig::new(url).prefix(fresh_prefix()).queue("q")
}

pub async fn queue(config: RedisQueueConfig) -> RedisQueue {
    RedisQueue::connect(config).await.expect("connect to redis")
}

/// A `redis-server` of our own on a free loopback port, killed on drop.
#[allow(unused_imports)] // not every test binary that includes this module starts one
pub use agentflow_testkit::servers::PrivateRedis;
