//! Redis queue throughput: the shared harness (`agentflow_testkit::bench`: one-at-a-time
//! enqueue, then `reserve(32)` + `complete_many`) at 1, 4, 16 and 64 workers, then a backlog
//! of 100,000 jobs (one in ten delayed) enqueued in batches before any worker starts and
//! drained with `complete_and_reserve`. The same rows as the redis arm of the root
//! `benches/queue.rs`, runnable from this crate alone:
//!
//! ```text
//! cargo bench -p agentflow-redis --bench queue
//! AGENTFLOW_BENCH_JOBS=20000 AGENTFLOW_BENCH_WORKERS=1,4,16,64 AGENTFLOW_BENCH_REDIS_BACKLOG=100000 \
//!     AGENTFLOW_BENCH_REDIS_URL=redis://127.0.0.1:6379 cargo bench -p agentflow-redis --bench queue
//! ```
#![allow(missing_docs)]

use std::sync::Arc;

use agentflow_core::JobQueue;
use agentflow_redis::{RedisQueue, RedisQueueConfig};
use agentflow_testkit::bench::{BenchRow, print_table, queue_throughput};

fn env<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn prefix() -> String {
    format!("afbench_redis_{}_{:016x}", std::process::id(), fastrand::u64(..))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let url = std::env::var("AGENTFLOW_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let jobs: usize = env("AGENTFLOW_BENCH_JOBS", 20_000);
    let backlog: usize = env("AGENTFLOW_BENCH_REDIS_BACKLOG", 100_000);
    let workers: Vec<usize> = std::env::var("AGENTFLOW_BENCH_WORKERS")
        .ok()
        .map(|v| v.split(',').filter_map(|w| w.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4, 16, 64]);
    let connect = |url: String| async move {
        RedisQueue::connect(RedisQueueConfig::new(url).prefix(prefix())).await
    };
    if let Err(e) = rt.block_on(connect(url.clone())) {
        eprintln!("note: {url} does not answer ({e}); nothing measured");
        return;
    }
    let made = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut rows = Vec::new();
    for &w in &workers {
        let make = || {
            let (url, made) = (url.clone(), made.clone());
            async move {
                let queue = connect(url).await.expect("connect to redis");
                made.lock().expect("lock").push(queue.clone());
                Arc::new(queue) as Arc<dyn JobQueue>
            }
        };
        let row = rt.block_on(queue_throughput("redis", make, jobs, w));
        print_table(std::slice::from_ref(&row));
        rows.push(row);
    }
    for &w in &workers {
        let queue = rt.block_on(connect(url.clone())).expect("connect to redis");
        made.lock().expect("lock").push(queue.clone());
        let row = rt.block_on(redis_backlog(queue, backlog, w));
        print_table(std::slice::from_ref(&row));
        rows.push(row);
    }
    for queue in made.lock().expect("lock").drain(..) {
        if let Err(e) = rt.block_on(queue.destroy()) {
            eprintln!("note: could not delete a bench queue's keys: {e}");
        }
    }
    println!("\nredis queue throughput:\n");
    print_table(&rows);
}

/// Enqueues `jobs` with `enqueue_many` (one job in ten delayed by up to 2 s), then drains them
/// with `workers` workers, each completing its batch and reserving the next in one script call.
/// Checks that every job completed exactly once.
async fn redis_backlog(queue: RedisQueue, jobs: usize, workers: usize) -> BenchRow {
    use std::collections::HashSet;
    use std::time::{Duration, Instant};

    use agentflow_core::{JobKind, JobSpec, WorkerId};

    let now = chrono::Utc::now();
    let specs: Vec<JobSpec> = (0..jobs)
        .map(|i| {
            let spec = JobSpec::new(JobKind::Execute, format!("backlog-{i}"))
                .unique_key(format!("backlog:{i}"));
            if i % 10 == 0 {
                spec.run_at(now + chrono::Duration::milliseconds((i % 2000) as i64))
            } else {
                spec
            }
        })
        .collect();
    let started = Instant::now();
    for chunk in specs.chunks(5_000) {
        let out = queue.enqueue_many(chunk).await.unwrap_or_else(|e| panic!("enqueue_many: {e}"));
        assert!(out.iter().all(|e| e.is_new()), "a backlog job was deduplicated");
    }
    let enqueue = started.elapsed();

    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    let mut drainers = Vec::with_capacity(workers);
    for w in 0..workers {
        let queue = queue.clone();
        drainers.push(tokio::spawn(async move {
            let worker = WorkerId(format!("backlog-{w}"));
            let (mut held, mut mine, mut idle) = (Vec::new(), Vec::new(), 0u32);
            loop {
                assert!(Instant::now() < deadline, "backlog not drained within 10 minutes");
                let (done, next) = queue
                    .complete_and_reserve(&held, &worker, Duration::from_secs(300), 32)
                    .await
                    .unwrap_or_else(|e| panic!("complete_and_reserve: {e}"));
                for (lease, r) in held.iter().zip(done) {
                    r.unwrap_or_else(|e| panic!("complete of an own lease: {e}"));
                    mine.push(lease.job.id);
                }
                held = next;
                if held.is_empty() {
                    // Delayed jobs may still be coming due.
                    let stats = queue.stats().await.unwrap_or_else(|e| panic!("stats: {e}"));
                    if stats.queued() + stats.running == 0 {
                        return mine;
                    }
                    idle += 1;
                    tokio::time::sleep(Duration::from_millis(u64::from(idle.min(20)))).await;
                } else {
                    idle = 0;
                }
            }
        }));
    }
    let mut seen = HashSet::with_capacity(jobs);
    for d in drainers {
        for id in d.await.expect("drain task") {
            assert!(seen.insert(id), "backlog job {id} completed twice");
        }
    }
    let drain = started.elapsed();
    assert_eq!(seen.len(), jobs, "{} of {jobs} backlog jobs completed", seen.len());
    BenchRow {
        backend: "redis: backlog, 10% delayed, batch enqueue + complete_and_reserve".to_owned(),
        jobs,
        workers,
        enqueue,
        drain,
    }
}
