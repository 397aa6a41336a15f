//! Three worker processes on one database: every job completes exactly once, and the jobs of a
//! worker killed with SIGKILL are recovered by the others.
//!
//! The workers are this test binary re-executed (`--exact worker_child`) with
//! `AGENTFLOW_PG_CHILD_SCHEMA` set; without it `worker_child` returns at once.

#[path = "support.rs"]
mod support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agentflow_core::{JobKind, JobQueue, JobSpec, JobState, WorkerId};
use agentflow_postgres::{PgConfig, PgQueue};

const JOBS: usize = 5000;
const CHILD_ENV: &str = "AGENTFLOW_PG_CHILD_SCHEMA";
const HOLD_ENV: &str = "AGENTFLOW_PG_CHILD_HOLD_AFTER";
const LEASE: Duration = Duration::from_secs(2);

/// The worker process body. Prints `AF_DONE <id>` after each completion the queue confirmed.
/// With `AGENTFLOW_PG_CHILD_HOLD_AFTER=n` it stops after n completions holding a fresh
/// reservation, prints `AF_HOLDING <count>` and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_child() {
    let Ok(schema) = std::env::var(CHILD_ENV) else { return };
    let cfg = PgConfig::new(support::url()).schema(schema).run_migrations(false).max_connections(4);
    let q = PgQueue::connect(&cfg).await.expect("child connects");
    let me = WorkerId::generate();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut idle_rounds = 0;
    let mut last_recover = Instant::now();
    let hold_after: Option<usize> = std::env::var(HOLD_ENV).ok().and_then(|v| v.parse().ok());
    let mut done = 0;
    while Instant::now() < deadline {
        if last_recover.elapsed() > Duration::from_millis(300) {
            q.recover_expired().await.expect("recover");
            last_recover = Instant::now();
        }
        let leases = q.reserve(&me, LEASE, 25).await.expect("reserve");
        if leases.is_empty() {
            let s = q.stats().await.expect("stats");
            if s.scheduled + s.available + s.running + s.retryable == 0 {
                idle_rounds += 1;
                if idle_rounds > 3 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        idle_rounds = 0;
        if hold_after.is_some_and(|n| done >= n) {
            println!("AF_HOLDING {}", leases.len());
            tokio::time::sleep(Duration::from_secs(120)).await;
            return;
        }
        // "Work": long enough that a kill lands while jobs are held.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let results = q.complete_many(&leases).await.expect("complete");
        for (lease, r) in leases.iter().zip(results) {
            match r {
                Ok(()) => {
                    done += 1;
                    println!("AF_DONE {}", lease.job.id)
                }
                Err(e) => println!("AF_LOST {} {e}", lease.job.id),
            }
        }
    }
}

fn spawn_child(schema: &str, tx: mpsc::Sender<(usize, String)>, n: usize) -> Child {
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--exact", "worker_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, schema)
        .env(HOLD_ENV, if n == 0 { "200" } else { "" })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn worker process");
    let out = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            // libtest prints `test worker_child ... ` without a newline before the first line.
            let Some(at) = line.find("AF_") else { continue };
            if tx.send((n, line[at..].to_owned())).is_err() {
                return;
            }
        }
    });
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_complete_each_job_once_and_recover_a_killed_one() {
    let cfg = support::config().await;
    let q = PgQueue::connect(&cfg).await.unwrap();
    let mut tasks = Vec::new();
    for chunk in 0..10 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..JOBS / 10 {
                let spec = JobSpec::new(JobKind::Execute, format!("t{chunk}-{i}"));
                ids.push(q.enqueue(spec).await.unwrap().id());
            }
            ids
        }));
    }
    let mut all = HashSet::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(all.len(), JOBS);

    let (tx, rx) = mpsc::channel();
    let mut children: Vec<Child> =
        (0..3).map(|n| spawn_child(&cfg.schema, tx.clone(), n)).collect();
    drop(tx);

    // Worker 0 stops holding a fresh reservation after 200 completions: kill it with SIGKILL.
    let mut done_by: HashMap<String, usize> = HashMap::new();
    let mut done_count = [0usize; 3];
    let mut killed = false;
    let mut held_at_kill = 0;
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "workers did not finish in time; done: {done_count:?}");
        let Ok((n, line)) = rx.recv_timeout(left) else { break };
        if let Some(id) = line.strip_prefix("AF_DONE ") {
            done_count[n] += 1;
            if let Some(prev) = done_by.insert(id.to_owned(), n) {
                panic!("job {id} completed twice: by worker {prev} and worker {n}");
            }
        } else if let Some(k) = line.strip_prefix("AF_HOLDING ")
            && n == 0
            && !killed
        {
            held_at_kill = k.parse().unwrap_or(0);
            let pid = nix::unistd::Pid::from_raw(children[0].id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
            killed = true;
        }
    }
    for c in &mut children {
        let _ = c.wait();
    }
    assert!(killed, "worker 0 finished before it could be killed: {done_count:?}");
    assert!(held_at_kill > 0);

    // Every job completed, in the database, exactly once (it is in `jobs_done` once).
    let stats = q.stats().await.unwrap();
    assert_eq!(stats.completed as usize, JOBS, "{stats:?}");
    assert_eq!(stats.total() as usize, JOBS, "{stats:?}");
    // The workers saw every completion, each once (worker 0 died holding, not completing).
    assert_eq!(done_by.len(), JOBS, "completions reported");
    assert!(done_by.keys().all(|id| all.contains(&id.parse().unwrap())));
    // The killed worker's reservation was recovered and completed by the survivors.
    let s = q.schema().to_owned();
    let recovered: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {s}.jobs_done WHERE attempt = 2 AND last_error LIKE 'lease expired%'"
    )))
    .fetch_one(q.pool())
    .await
    .unwrap();
    assert!(
        recovered as usize >= held_at_kill,
        "{recovered} recovered, the killed worker held {held_at_kill}"
    );
    for id in all.iter().take(50) {
        assert_eq!(q.get(*id).await.unwrap().unwrap().state, JobState::Completed);
    }
    assert!(done_count[1] + done_count[2] > 0);
}
