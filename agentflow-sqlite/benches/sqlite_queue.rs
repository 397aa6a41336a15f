//! SQLite queue throughput with 1, 4 and 16 workers over 1k, 20k and 100k finished jobs of
//! history. `cargo bench -p agentflow-sqlite --bench sqlite_queue`.

use std::sync::Arc;
use std::time::Duration;

use agentflow_core::{JobKind, JobQueue, JobSpec, WorkerId};
use agentflow_sqlite::{Database, Retention, SqliteOptions};
use agentflow_testkit::bench::{print_table, queue_throughput};

/// Fills the history with `n` finished jobs through the public API.
async fn prefill(queue: &Arc<dyn JobQueue>, n: usize) {
    let tasks: Vec<_> = (0..16)
        .map(|p| {
            let queue = Arc::clone(queue);
            tokio::spawn(async move {
                for i in (p..n).step_by(16) {
                    queue
                        .enqueue(JobSpec::new(JobKind::Execute, format!("old-{i}")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let w = WorkerId::generate();
    let mut done = 0;
    while done < n {
        let leases = queue.reserve(&w, Duration::from_secs(60), 512).await.unwrap();
        assert!(!leases.is_empty(), "prefill: queue ran dry at {done}/{n}");
        for r in queue.complete_many(&leases).await.unwrap() {
            r.unwrap();
        }
        done += leases.len();
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let jobs: usize =
        std::env::var("BENCH_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let mut rows = Vec::new();
    let pick = |var: &str, all: &[usize]| -> Vec<usize> {
        std::env::var(var)
            .ok()
            .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_else(|| all.to_vec())
    };
    for history in pick("BENCH_HISTORY", &[1_000, 20_000, 100_000]) {
        for workers in pick("BENCH_WORKERS", &[1, 4, 16]) {
            let make = || async move {
                let retention = Retention { keep: None, max_age: None, ..Default::default() };
                let opts = SqliteOptions { retention, ..Default::default() };
                let db = Database::open_temporary(opts).await.unwrap();
                let q: Arc<dyn JobQueue> = Arc::new(db.queue());
                prefill(&q, history).await;
                q
            };
            let mut row = rt.block_on(queue_throughput("sqlite", make, jobs, workers));
            row.backend = format!("sqlite (history {history})");
            rows.push(row);
        }
    }
    print_table(&rows);
}
