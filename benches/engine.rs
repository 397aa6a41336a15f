//! Engine overhead per task: a `LocalSource` with N Todo tasks, a no-op executor that succeeds
//! at once (no review), and the engine carrying every task through discovery, claim, enqueue,
//! reserve, run bookkeeping (run row, events, lifecycle), complete and `set_status(Done)`.
//! Everything but the agent itself, so the time per task is what agentflow adds to a run.
//!
//! ```text
//! cargo bench --bench engine                 # memory and SQLite backends
//! cargo bench --bench engine -- memory       # one backend
//! ```
//!
//! Criterion's iteration is one task: each sample starts a fresh engine on fresh backends with
//! as many tasks as criterion asks for, and times from `Engine::run` to the last task Done.
//! `single_task_latency` times one task alone from a `wake()` to Done (a poll cycle, a claim,
//! a queue round trip and the run's bookkeeping, in sequence).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentflow::engine::{Engine, EngineConfig};
use agentflow::memory::{LocalSource, MemoryQueue, MemoryStore};
use agentflow::{
    CancellationToken, Event, EventSink, Executor, JobQueue, ProgressSender, Result, RunOutcome,
    RunRequest, StateStore, TaskId, TaskSource, TaskStatus, async_trait,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

/// Succeeds at once; asks for no review, so the task goes straight to Done.
struct Noop;

#[async_trait]
impl Executor for Noop {
    async fn run(
        &self,
        _: RunRequest,
        _: ProgressSender,
        _: CancellationToken,
    ) -> Result<RunOutcome> {
        Ok(RunOutcome { summary: "done".into(), needs_review: Some(false), ..Default::default() })
    }
}

/// Counts distinct tasks the engine reported Done.
#[derive(Default)]
struct DoneCounter {
    done: Mutex<HashSet<TaskId>>,
    changed: Notify,
}

impl EventSink for DoneCounter {
    fn emit(&self, event: &Event) {
        if let Event::TaskUpdate(update) = event
            && update.status == TaskStatus::Done
            && self.done.lock().expect("lock").insert(update.task.clone())
        {
            self.changed.notify_one();
        }
    }
}

impl DoneCounter {
    fn count(&self) -> usize {
        self.done.lock().expect("lock").len()
    }

    /// Waits until `n` tasks are Done; panics after `limit`.
    async fn wait_for(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.count() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{} of {n} tasks Done within {limit:?}", self.count());
            let _ =
                tokio::time::timeout(left.min(Duration::from_millis(50)), self.changed.notified())
                    .await;
        }
    }
}

fn config(tasks: usize) -> EngineConfig {
    EngineConfig {
        // The first poll runs at start; later ones only matter when `tasks` > `todo_batch`.
        poll_interval: Duration::from_millis(5),
        todo_batch: tasks.clamp(1, 1_000),
        feedback_interval: Duration::from_secs(3600),
        reaper_interval: Duration::from_secs(3600),
        queue_poll_interval: Duration::from_millis(5),
        workers: 8,
        shutdown_grace: Duration::from_secs(5),
        ..EngineConfig::default()
    }
}

/// Fresh queue and store; the guard keeps temporary files alive.
type Backends = (Arc<dyn JobQueue>, Arc<dyn StateStore>, Option<tempfile::TempDir>);

async fn backends(kind: &str) -> Backends {
    match kind {
        "memory" => (Arc::new(MemoryQueue::new()), Arc::new(MemoryStore::new()), None),
        "sqlite" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}", dir.path().join("engine.db").display());
            let (queue, store) =
                agentflow::sqlite::open(&url, agentflow::sqlite::SqliteOptions::default())
                    .await
                    .expect("open sqlite");
            (Arc::new(queue), Arc::new(store), Some(dir))
        }
        other => panic!("unknown backend {other}"),
    }
}

/// Runs `tasks` tasks through a fresh engine; returns the time from start to the last Done.
async fn run_tasks(kind: &str, tasks: usize) -> Duration {
    let (queue, store, _dir) = backends(kind).await;
    let source = LocalSource::new();
    for i in 0..tasks {
        source.add(format!("Task {i}"), "");
    }
    let done = Arc::new(DoneCounter::default());
    let engine = Engine::builder()
        .source(Arc::new(source.clone()) as Arc<dyn TaskSource>)
        .queue(queue)
        .executor(Arc::new(Noop))
        .store(store)
        .events(done.clone())
        .config(config(tasks))
        .build()
        .expect("engine builds");
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let started = Instant::now();
    let running = tokio::spawn(async move { engine.run(token).await });
    done.wait_for(tasks, Duration::from_secs(120)).await;
    let elapsed = started.elapsed();
    shutdown.cancel();
    running.await.expect("engine task").expect("engine run");
    let left = source.tasks().into_iter().filter(|t| t.status != TaskStatus::Done).count();
    assert_eq!(left, 0, "{left} tasks not Done in the source");
    elapsed
}

/// One task, added while the engine idles, from `wake()` to Done.
async fn single_latency(kind: &str, rounds: u64) -> Duration {
    let (queue, store, _dir) = backends(kind).await;
    let source = LocalSource::new();
    let done = Arc::new(DoneCounter::default());
    let mut config = config(1);
    config.poll_interval = Duration::from_secs(3600);
    let engine = Engine::builder()
        .source(Arc::new(source.clone()) as Arc<dyn TaskSource>)
        .queue(queue)
        .executor(Arc::new(Noop))
        .store(store)
        .events(done.clone())
        .config(config)
        .build()
        .expect("engine builds");
    let handle = engine.handle();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let running = tokio::spawn(async move { engine.run(token).await });
    // Let the startup poll and reconciliation pass.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut total = Duration::ZERO;
    for i in 0..rounds {
        source.add(format!("Task {i}"), "");
        let started = Instant::now();
        handle.wake();
        done.wait_for(i as usize + 1, Duration::from_secs(30)).await;
        total += started.elapsed();
    }
    shutdown.cancel();
    running.await.expect("engine task").expect("engine run");
    total
}

fn kinds() -> Vec<&'static str> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    ["memory", "sqlite"]
        .into_iter()
        .filter(|k| args.is_empty() || args.iter().any(|a| k.contains(a.as_str())))
        .collect()
}

fn engine_overhead(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("engine_overhead_per_task");
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));
    for kind in kinds() {
        group.bench_function(kind, |b| {
            b.iter_custom(|iters| rt.block_on(run_tasks(kind, iters as usize)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("engine_single_task_latency");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for kind in kinds() {
        group.bench_function(kind, |b| {
            b.iter_custom(|iters| rt.block_on(single_latency(kind, iters)))
        });
    }
    group.finish();
}

criterion_group!(benches, engine_overhead);
criterion_main!(benches);
