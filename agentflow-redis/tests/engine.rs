//! The engine on a `RedisQueue` when Redis loses everything (`FLUSHALL`, or a restart without
//! persistence) mid-run: runs whose leases vanished stop, and the engine's startup
//! reconciliation re-enqueues every In Progress task from the task source, so nothing is lost.
//! Runs on a private `redis-server` so that the flush disturbs nothing else.

#[path = "support/redis.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentflow_core::engine::{Engine, EngineConfig};
use agentflow_core::memory::{LocalSource, MemoryStore};
use agentflow_core::{
    CancellationToken, Error, Executor, JobFilter, JobQueue, JobState, Page, ProgressSender,
    Result, RunOutcome, RunRequest, StateStore, TaskId, TaskSource, TaskStatus, async_trait,
};
use agentflow_redis::{RedisQueue, RedisQueueConfig};
use support::PrivateRedis;

/// Runs block until cancelled (`hold`) or succeed at once; every start is counted per task.
struct Agent {
    hold: bool,
    starts: Mutex<HashMap<TaskId, u32>>,
    cancelled: Mutex<u32>,
}

impl Agent {
    fn new(hold: bool) -> Arc<Self> {
        Arc::new(Agent { hold, starts: Mutex::default(), cancelled: Mutex::default() })
    }
    fn started(&self) -> usize {
        self.starts.lock().unwrap().len()
    }
}

#[async_trait]
impl Executor for Agent {
    async fn run(
        &self,
        request: RunRequest,
        _progress: ProgressSender,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        *self.starts.lock().unwrap().entry(request.task.id.clone()).or_default() += 1;
        if self.hold {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
            *self.cancelled.lock().unwrap() += 1;
            return Err(Error::Cancelled { reason: "held run cancelled".into() });
        }
        Ok(RunOutcome { summary: "done".into(), needs_review: Some(false), ..Default::default() })
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        poll_interval: Duration::from_millis(100),
        feedback_interval: Duration::from_millis(200),
        queue_poll_interval: Duration::from_millis(50),
        reaper_interval: Duration::from_millis(200),
        lease: Duration::from_millis(900),
        workers: 3,
        shutdown_grace: Duration::from_secs(1),
        cancel_grace: Duration::from_secs(2),
        ..EngineConfig::default()
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..600 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after 30 s waiting for {what}");
}

fn engine(
    source: &LocalSource,
    store: &Arc<MemoryStore>,
    queue: Arc<dyn JobQueue>,
    exec: Arc<dyn Executor>,
) -> Engine {
    Engine::builder()
        .source(Arc::new(source.clone()) as Arc<dyn TaskSource>)
        .queue(queue)
        .executor(exec)
        .store(store.clone() as Arc<dyn StateStore>)
        .config(config())
        .build()
        .expect("engine builds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flushed_redis_heals_from_the_task_source_and_nothing_is_lost() {
    let server = PrivateRedis::start(false);
    let queue_config = RedisQueueConfig::new(server.url()).prefix("engine").queue("q");
    let queue = Arc::new(RedisQueue::connect(queue_config.clone()).await.unwrap());
    let source = LocalSource::new();
    let store = Arc::new(MemoryStore::new());
    let tasks: Vec<_> = (0..6).map(|i| source.add(format!("Summarise {i}"), "")).collect();

    // Engine A claims all six (In Progress), runs three and holds them; three wait queued.
    let held = Agent::new(true);
    let a = engine(&source, &store, queue.clone(), held.clone());
    let shutdown_a = CancellationToken::new();
    let token = shutdown_a.clone();
    let join_a = tokio::spawn(async move { a.run(token).await });
    wait_for("three held runs", || held.started() == 3).await;
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.running, stats.available), (3, 3), "{stats:?}");

    // Redis loses everything.
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    // The held runs' heartbeats find their leases gone and the runs are stopped.
    wait_for("the lost runs to stop", || *held.cancelled.lock().unwrap() == 3).await;
    assert_eq!(queue.stats().await.unwrap().total(), 0);
    for t in &tasks {
        assert_eq!(source.task(&t.id).unwrap().status, TaskStatus::InProgress);
    }
    shutdown_a.cancel();
    tokio::time::timeout(Duration::from_secs(30), join_a).await.unwrap().unwrap().unwrap();

    // Engine B starts: its reconciliation re-enqueues every In Progress task from the source.
    let healthy = Agent::new(false);
    let queue_b = Arc::new(RedisQueue::connect(queue_config).await.unwrap());
    let b = engine(&source, &store, queue_b.clone(), healthy.clone());
    let shutdown_b = CancellationToken::new();
    let token = shutdown_b.clone();
    let join_b = tokio::spawn(async move { b.run(token).await });
    wait_for("every task done", || {
        tasks.iter().all(|t| source.task(&t.id).unwrap().status == TaskStatus::Done)
    })
    .await;
    shutdown_b.cancel();
    tokio::time::timeout(Duration::from_secs(30), join_b).await.unwrap().unwrap().unwrap();

    let starts = healthy.starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 6, "every task ran after the flush");
    assert!(starts.values().all(|n| *n == 1), "each exactly once: {starts:?}");
    for t in &tasks {
        let jobs = queue_b.list(&JobFilter::task(t.id.clone()), Page::first(10)).await.unwrap();
        assert_eq!(jobs.len(), 1, "one job per task after the flush");
        assert_eq!(jobs[0].state, JobState::Completed);
    }
}
