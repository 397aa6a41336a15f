//! Queue throughput per backend: enqueue rate, then an end-to-end drain (reserve in batches,
//! `complete_many`) with 1, 4 and 16 concurrent workers, every job checked to complete exactly
//! once. See `agentflow_testkit::bench`.
//!
//! ```text
//! cargo bench --bench queue --features full -- memory sqlite redis postgres
//! AGENTFLOW_BENCH_BACKENDS=memory,sqlite AGENTFLOW_BENCH_JOBS=20000 AGENTFLOW_BENCH_WORKERS=1,4,16 \
//!     cargo bench --bench queue
//! ```
//!
//! Backends come from the arguments, else `AGENTFLOW_BENCH_BACKENDS`, else every backend that
//! needs no server (memory, and sqlite when compiled in). A backend whose feature is not
//! compiled in, or whose server does not answer, is skipped with a note. Servers:
//! `AGENTFLOW_BENCH_REDIS_URL` (default `redis://127.0.0.1:6379`) and
//! `AGENTFLOW_BENCH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`); each
//! measurement gets a fresh key prefix or schema. SQLite is measured once per history size in
//! `AGENTFLOW_BENCH_SQLITE_HISTORY` (finished jobs already in the file, default
//! `1000,20000,100000`).

use std::future::Future;
use std::sync::Arc;

use agentflow::JobQueue;
use agentflow::memory::MemoryQueue;
use agentflow_testkit::bench::{BenchRow, print_table, queue_throughput};
use tokio::runtime::Runtime;

fn env_list(var: &str) -> Option<Vec<String>> {
    let v = std::env::var(var).ok()?;
    let items: Vec<String> =
        v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    (!items.is_empty()).then_some(items)
}

fn backends() -> Vec<String> {
    // `cargo bench` passes `--bench`; anything starting with `-` is not a backend.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if !args.is_empty() {
        return args;
    }
    env_list("AGENTFLOW_BENCH_BACKENDS").unwrap_or_else(|| {
        let mut all = vec!["memory".to_owned()];
        if cfg!(feature = "sqlite") {
            all.push("sqlite".to_owned());
        }
        all
    })
}

/// A name no earlier measurement used: for key prefixes and schemas.
#[cfg(any(feature = "redis", feature = "postgres"))]
fn fresh_name(kind: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "afbench_{kind}_{}_{nanos:08x}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `make` through the harness once per worker count.
fn measure<F, Fut>(
    rt: &Runtime,
    name: &str,
    make: F,
    jobs: usize,
    workers: &[usize],
    rows: &mut Vec<BenchRow>,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn JobQueue>>,
{
    for &w in workers {
        let row = rt.block_on(queue_throughput(name, &make, jobs, w));
        print_table(std::slice::from_ref(&row));
        rows.push(row);
    }
}

#[cfg(not(all(feature = "sqlite", feature = "redis", feature = "postgres")))]
fn skipped(backend: &str, feature: &str) {
    eprintln!("note: `{backend}` skipped: build with `--features {feature}` to measure it");
}

fn memory(rt: &Runtime, jobs: usize, workers: &[usize], rows: &mut Vec<BenchRow>) {
    let make = || async { Arc::new(MemoryQueue::new()) as Arc<dyn JobQueue> };
    measure(rt, "memory", make, jobs, workers, rows);
}

#[cfg(feature = "sqlite")]
fn sqlite(rt: &Runtime, jobs: usize, workers: &[usize], rows: &mut Vec<BenchRow>) {
    use agentflow::sqlite::{Database, Retention, SqliteOptions};
    // Finished jobs already in the file when the clock starts (`AGENTFLOW_BENCH_SQLITE_HISTORY`,
    // default 1000,20000,100000): reserve and complete must not slow down as history grows.
    let histories: Vec<usize> = env_list("AGENTFLOW_BENCH_SQLITE_HISTORY")
        .map(|l| l.iter().filter_map(|h| h.parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 20_000, 100_000]);
    for history in histories {
        let make = move || async move {
            // Retention off: the history keeps its size during the measurement.
            let retention = Retention { keep: None, max_age: None, ..Retention::default() };
            let options = SqliteOptions { retention, ..SqliteOptions::default() };
            let db = Database::open_temporary(options).await.expect("open sqlite");
            let queue = Arc::new(db.queue()) as Arc<dyn JobQueue>;
            sqlite_history(&queue, history).await;
            queue
        };
        measure(rt, &format!("sqlite ({history} finished)"), make, jobs, workers, rows);
    }
}

/// Puts `n` finished jobs in the queue's history through the public API.
#[cfg(feature = "sqlite")]
async fn sqlite_history(queue: &Arc<dyn JobQueue>, n: usize) {
    use agentflow::{JobKind, JobSpec, WorkerId};
    let producers: Vec<_> = (0..16)
        .map(|p| {
            let queue = queue.clone();
            tokio::spawn(async move {
                for i in (p..n).step_by(16) {
                    let spec = JobSpec::new(JobKind::Execute, format!("history-{i}"));
                    queue.enqueue(spec).await.expect("enqueue history");
                }
            })
        })
        .collect();
    for p in producers {
        p.await.expect("history producer");
    }
    let worker = WorkerId::generate();
    let mut done = 0;
    while done < n {
        let leases = queue
            .reserve(&worker, std::time::Duration::from_secs(300), 512)
            .await
            .expect("reserve history");
        assert!(!leases.is_empty(), "history: the queue ran dry at {done} of {n}");
        for r in queue.complete_many(&leases).await.expect("complete history") {
            r.expect("complete history");
        }
        done += leases.len();
    }
}

#[cfg(not(feature = "sqlite"))]
fn sqlite(_: &Runtime, _: usize, _: &[usize], _: &mut Vec<BenchRow>) {
    skipped("sqlite", "sqlite");
}

#[cfg(feature = "redis")]
fn redis(rt: &Runtime, jobs: usize, workers: &[usize], rows: &mut Vec<BenchRow>) {
    use agentflow::redis::{RedisQueue, RedisQueueConfig};
    let url = std::env::var("AGENTFLOW_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let connect = |url: String| async move {
        RedisQueue::connect(RedisQueueConfig::new(url).prefix(fresh_name("redis"))).await
    };
    match rt.block_on(connect(url.clone())) {
        Ok(probe) => drop(rt.block_on(probe.destroy())),
        Err(e) => return eprintln!("note: `redis` skipped: {url} does not answer: {e}"),
    }
    let made = Arc::new(std::sync::Mutex::new(Vec::new()));
    let make = || {
        let (url, made) = (url.clone(), made.clone());
        async move {
            let queue = connect(url).await.expect("connect to redis");
            made.lock().expect("lock").push(queue.clone());
            Arc::new(queue) as Arc<dyn JobQueue>
        }
    };
    measure(rt, "redis", make, jobs, workers, rows);
    // The Redis-specific paths: a backlog enqueued in batches (some jobs delayed) before any
    // worker starts, drained with complete-and-reserve in one round trip per batch.
    let backlog: usize = std::env::var("AGENTFLOW_BENCH_REDIS_BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    for &w in workers {
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
}

/// Enqueues `jobs` with `enqueue_many` (one job in ten delayed by up to 2 s), then drains them
/// with `workers` workers, each completing its batch and reserving the next in one script call.
/// Checks that every job completed exactly once.
#[cfg(feature = "redis")]
async fn redis_backlog(
    queue: agentflow::redis::RedisQueue,
    jobs: usize,
    workers: usize,
) -> BenchRow {
    use std::collections::HashSet;
    use std::time::{Duration, Instant};

    use agentflow::{JobKind, JobSpec, WorkerId};

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

#[cfg(not(feature = "redis"))]
fn redis(_: &Runtime, _: usize, _: &[usize], _: &mut Vec<BenchRow>) {
    skipped("redis", "redis");
}

#[cfg(feature = "postgres")]
fn postgres(rt: &Runtime, jobs: usize, workers: &[usize], rows: &mut Vec<BenchRow>) {
    use agentflow::postgres::{PgConfig, PgQueue};
    let url = std::env::var("AGENTFLOW_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let config =
        |url: &str| PgConfig::new(url.to_owned()).schema(fresh_name("pg")).max_connections(16);
    if let Err(e) = rt.block_on(PgQueue::connect(&config(&url))) {
        return eprintln!("note: `postgres` skipped: {url} does not answer: {e}");
    }
    let make = || {
        let config = config(&url);
        async move {
            Arc::new(PgQueue::connect(&config).await.expect("connect to postgres"))
                as Arc<dyn JobQueue>
        }
    };
    eprintln!("note: postgres measurements leave their `afbench_pg_*` schemas in the database");
    measure(rt, "postgres", make, jobs, workers, rows);
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &Runtime, _: usize, _: &[usize], _: &mut Vec<BenchRow>) {
    skipped("postgres", "postgres");
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let jobs: usize =
        std::env::var("AGENTFLOW_BENCH_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let workers: Vec<usize> = env_list("AGENTFLOW_BENCH_WORKERS")
        .map(|l| l.iter().filter_map(|w| w.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 4, 16]);
    let mut rows = Vec::new();
    for backend in backends() {
        match backend.as_str() {
            "memory" => memory(&rt, jobs, &workers, &mut rows),
            "sqlite" => sqlite(&rt, jobs, &workers, &mut rows),
            "redis" => redis(&rt, jobs, &workers, &mut rows),
            "postgres" => postgres(&rt, jobs, &workers, &mut rows),
            other => eprintln!("note: unknown backend `{other}` (memory, sqlite, redis, postgres)"),
        }
    }
    println!("\nqueue throughput, {jobs} jobs per row:\n");
    print_table(&rows);
}
