//! SQLite queue throughput with 1, 4 and 16 workers over 1k, 20k and 100k finished jobs of
//! history, through the shared harness (`agentflow_testkit::bench`), plus the CPU time the
//! process spent per job (which, unlike jobs/s, does not depend on what else the machine runs).
//!
//! ```text
//! cargo bench -p agentflow-sqlite --bench sqlite_queue
//! BENCH_JOBS=20000 BENCH_HISTORY=1000,100000 BENCH_WORKERS=16 cargo bench -p agentflow-sqlite --bench sqlite_queue
//! ```

use std::sync::Arc;
use std::time::Duration;

use agentflow_core::{JobKind, JobQueue, JobSpec, WorkerId};
use agentflow_sqlite::{Database, Retention, SqliteOptions};
use agentflow_testkit::bench::queue_throughput;
use nix::sys::resource::{UsageWho, getrusage};

/// Fills the history with `n` finished jobs through the public API.
async fn prefill(queue: &Arc<dyn JobQueue>, n: usize) {
    let tasks: Vec<_> = (0..16)
        .map(|p| {
            let queue = Arc::clone(queue);
            tokio::spawn(async move {
                for i in (p..n).step_by(16) {
                    let spec = JobSpec::new(JobKind::Execute, format!("old-{i}"));
                    queue.enqueue(spec).await.expect("enqueue");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("prefill task");
    }
    let w = WorkerId::generate();
    let mut done = 0;
    while done < n {
        let leases = queue.reserve(&w, Duration::from_secs(60), 512).await.expect("reserve");
        assert!(!leases.is_empty(), "prefill: queue ran dry at {done}/{n}");
        for r in queue.complete_many(&leases).await.expect("complete_many") {
            r.expect("complete");
        }
        done += leases.len();
    }
}

/// User + system CPU time of this process so far.
fn cpu() -> Duration {
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::new(t.tv_sec() as u64, 0) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(u.user_time()) + tv(u.system_time())
}

fn list(var: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(var)
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let jobs = list("BENCH_JOBS", &[20_000])[0];
    println!(
        "| history | workers | enqueue jobs/s | end-to-end drain jobs/s | CPU µs per job (enqueue + reserve + complete) |\n|---:|---:|---:|---:|---:|"
    );
    for history in list("BENCH_HISTORY", &[1_000, 20_000, 100_000]) {
        for workers in list("BENCH_WORKERS", &[1, 4, 16]) {
            let queue = rt.block_on(async {
                // Keep the whole history: nothing is pruned during the measurement.
                let retention = Retention { keep: None, max_age: None, ..Default::default() };
                let opts = SqliteOptions { retention, ..Default::default() };
                let db = Database::open_temporary(opts).await.expect("open");
                let q: Arc<dyn JobQueue> = Arc::new(db.queue());
                prefill(&q, history).await;
                q
            });
            let before = cpu();
            let make = || {
                let q = Arc::clone(&queue);
                async move { q }
            };
            let row = rt.block_on(queue_throughput("sqlite", make, jobs, workers));
            let per_job = (cpu() - before).as_secs_f64() * 1e6 / jobs as f64;
            println!(
                "| {history} | {workers} | {:.0} | {:.0} | {per_job:.1} |",
                row.enqueue_rate(),
                row.drain_rate()
            );
        }
    }
}
