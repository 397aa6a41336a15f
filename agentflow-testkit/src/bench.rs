//! Queue throughput harness shared by the benchmarks (`benches/queue.rs`).
//!
//! [`queue_throughput`] measures, on a fresh queue, how fast `jobs` jobs are enqueued by
//! `workers` concurrent producers, then how fast `workers` concurrent workers drain them end to
//! end (reserve in batches, `complete_many`), and checks that every job completed exactly once.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use agentflow_core::{memory::MemoryQueue, JobQueue};
//! use agentflow_testkit::bench::{print_table, queue_throughput};
//!
//! let make = || async { Arc::new(MemoryQueue::new()) as Arc<dyn JobQueue> };
//! let row = queue_throughput("memory", make, 1_000, 4).await;
//! assert_eq!(row.jobs, 1_000);
//! print_table(&[row]);
//! # });
//! ```

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agentflow_core::{JobKind, JobQueue, JobSpec, WorkerId};

/// How many jobs a bench worker reserves at once.
pub const RESERVE_BATCH: usize = 32;

/// One measurement: a backend, a job count and a worker count.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    /// Backend name.
    pub backend: String,
    /// Jobs enqueued and drained.
    pub jobs: usize,
    /// Concurrent producers, then concurrent workers.
    pub workers: usize,
    /// Wall time to enqueue every job.
    pub enqueue: Duration,
    /// Wall time to reserve and complete every job.
    pub drain: Duration,
}

impl BenchRow {
    /// Jobs enqueued per second.
    pub fn enqueue_rate(&self) -> f64 {
        self.jobs as f64 / self.enqueue.as_secs_f64().max(1e-9)
    }

    /// Jobs reserved and completed per second.
    pub fn drain_rate(&self) -> f64 {
        self.jobs as f64 / self.drain.as_secs_f64().max(1e-9)
    }
}

/// Measures one backend: enqueue rate with `workers` producers, then end-to-end drain with
/// `workers` workers reserving [`RESERVE_BATCH`] at a time. `make` builds a fresh, empty queue.
///
/// # Panics
/// When the queue fails, or when a job is completed twice or never (the run is then wrong, not
/// slow). A drain that takes longer than 10 minutes panics too.
pub async fn queue_throughput<F, Fut>(name: &str, make: F, jobs: usize, workers: usize) -> BenchRow
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn JobQueue>>,
{
    let workers = workers.max(1);
    let queue = make().await;

    let started = Instant::now();
    let mut producers = Vec::with_capacity(workers);
    for p in 0..workers {
        let queue = queue.clone();
        let share = jobs / workers + usize::from(p < jobs % workers);
        producers.push(tokio::spawn(async move {
            for i in 0..share {
                let spec = JobSpec::new(JobKind::Execute, format!("bench-{p}-{i}"))
                    .unique_key(format!("bench:{p}:{i}"));
                let enqueued = queue.enqueue(spec).await.unwrap_or_else(|e| panic!("enqueue: {e}"));
                assert!(enqueued.is_new(), "bench job {p}/{i} was deduplicated");
            }
        }));
    }
    for p in producers {
        p.await.expect("producer task");
    }
    let enqueue = started.elapsed();

    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    let completed = Arc::new(AtomicUsize::new(0));
    let mut drainers = Vec::with_capacity(workers);
    for w in 0..workers {
        let (queue, completed) = (queue.clone(), completed.clone());
        drainers.push(tokio::spawn(async move {
            let worker = WorkerId(format!("bench-{w}"));
            let mut mine = Vec::new();
            while completed.load(Ordering::Relaxed) < jobs {
                assert!(Instant::now() < deadline, "{jobs} jobs not drained within 10 minutes");
                let leases = queue
                    .reserve(&worker, Duration::from_secs(300), RESERVE_BATCH)
                    .await
                    .unwrap_or_else(|e| panic!("reserve: {e}"));
                if leases.is_empty() {
                    tokio::task::yield_now().await;
                    continue;
                }
                for r in queue
                    .complete_many(&leases)
                    .await
                    .unwrap_or_else(|e| panic!("complete_many: {e}"))
                {
                    r.unwrap_or_else(|e| panic!("complete of an own lease: {e}"));
                }
                completed.fetch_add(leases.len(), Ordering::Relaxed);
                mine.extend(leases.into_iter().map(|l| l.job.id));
            }
            mine
        }));
    }
    let mut seen = HashSet::with_capacity(jobs);
    for d in drainers {
        for id in d.await.expect("drain task") {
            assert!(seen.insert(id), "{name}: job {id} completed twice");
        }
    }
    let drain = started.elapsed();
    assert_eq!(seen.len(), jobs, "{name}: {} of {jobs} jobs completed", seen.len());
    let stats = queue.stats().await.unwrap_or_else(|e| panic!("stats: {e}"));
    assert_eq!(stats.queued() + stats.running, 0, "{name}: jobs left after the drain: {stats:?}");

    BenchRow { backend: name.to_owned(), jobs, workers, enqueue, drain }
}

/// Renders rows as a Markdown table (backend, jobs, workers, enqueue/s, drain/s, times).
pub fn format_table(rows: &[BenchRow]) -> String {
    let mut out = String::from(
        "| backend | jobs | workers | enqueue jobs/s | drain jobs/s | enqueue | drain |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.3} s | {:.3} s |\n",
            r.backend,
            r.jobs,
            r.workers,
            r.enqueue_rate(),
            r.drain_rate(),
            r.enqueue.as_secs_f64(),
            r.drain.as_secs_f64(),
        ));
    }
    out
}

/// Prints [`format_table`] to stdout.
pub fn print_table(rows: &[BenchRow]) {
    print!("{}", format_table(rows));
}
