//! `RedisEventSink` and `subscribe` against the real Redis on 127.0.0.1:6379.

#[path = "support/redis.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use agentflow_core::memory::RecordingSink;
use agentflow_core::{Event, EventSink, Stats};
use agentflow_redis::{RedisEventSink, RedisEventsConfig, subscribe};
use support::{PrivateRedis, SHARED_URL, fresh_prefix, shared_redis};

fn stats(running: u64) -> Event {
    Event::Stats(Stats { running, ..Default::default() })
}

async fn wait_for(rec: &RecordingSink, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while rec.emitted() < n && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_one_instance_reach_the_local_sink_of_another() {
    if !shared_redis().await {
        return;
    }
    let config = RedisEventsConfig::new(SHARED_URL).channel(format!("{}:events", fresh_prefix()));
    let a = RedisEventSink::connect(config.clone()).await.unwrap();
    let b = RedisEventSink::connect(config.clone()).await.unwrap();
    let at_b = Arc::new(RecordingSink::new());
    // B's dashboard listens and skips B's own events (its local sink saw them already).
    let sub = subscribe(&config, at_b.clone(), Some(b.origin().to_owned())).await.unwrap();
    for i in 0..3 {
        a.emit(&stats(i));
    }
    b.emit(&stats(99));
    wait_for(&at_b, 3).await;
    // Give a wrongly re-emitted echo of B's own event time to show up.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(at_b.events(), vec![stats(0), stats(1), stats(2)]);
    assert_eq!(sub.received(), 3);
    assert_eq!(a.published(), 3);
    assert_eq!(a.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_event_survives_the_wire() {
    if !shared_redis().await {
        return;
    }
    let config = RedisEventsConfig::new(SHARED_URL).channel(format!("{}:events", fresh_prefix()));
    let sink = RedisEventSink::connect(config.clone()).await.unwrap();
    let rec = Arc::new(RecordingSink::new());
    let _sub = subscribe(&config, rec.clone(), None).await.unwrap();
    let events = agentflow_testkit::sink::sample_events();
    for e in &events {
        sink.emit(e);
    }
    wait_for(&rec, events.len() as u64).await;
    assert_eq!(rec.events(), events);
}

#[tokio::test(flavor = "current_thread")]
async fn emit_never_blocks_and_counts_what_it_drops() {
    if !shared_redis().await {
        return;
    }
    let mut config =
        RedisEventsConfig::new(SHARED_URL).channel(format!("{}:events", fresh_prefix()));
    config.capacity = 4;
    let sink = RedisEventSink::connect(config).await.unwrap();
    // On a single-threaded runtime the publisher cannot run between these calls: four fit in
    // the queue and the rest are dropped at once, without waiting.
    for i in 0..100 {
        sink.emit(&stats(i));
    }
    assert_eq!(sink.dropped(), 96);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sink.published() < 4 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sink.published(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_redis_drops_events_and_the_subscriber_resubscribes_after_a_restart() {
    let mut server = PrivateRedis::start(false);
    let config = RedisEventsConfig::new(server.url()).channel("events");
    let sink = RedisEventSink::connect(config.clone()).await.unwrap();
    let rec = Arc::new(RecordingSink::new());
    let _sub = subscribe(&config, rec.clone(), None).await.unwrap();
    sink.emit(&stats(1));
    wait_for(&rec, 1).await;
    assert_eq!(rec.emitted(), 1);

    server.kill();
    // Emitting while Redis is down neither blocks nor panics; the failures are counted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sink.dropped() == 0 && tokio::time::Instant::now() < deadline {
        sink.emit(&stats(2));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sink.dropped() > 0, "events sent to a dead Redis are counted as dropped");

    server.restart();
    // Both sides reconnect: keep emitting until one arrives again (bounded).
    let before = rec.emitted();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while rec.emitted() == before && tokio::time::Instant::now() < deadline {
        sink.emit(&stats(3));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rec.emitted() > before, "events flow again after the restart");
    assert!(rec.events().contains(&stats(3)));
}
