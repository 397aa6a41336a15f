//! Fault tests, each on a private `redis-server` started on a free loopback port so nothing
//! else is disturbed: a Redis restart mid-run, three worker processes on one queue, and a worker
//! process killed with SIGKILL.
//!
//! Worker processes are this test binary re-executed (`--exact child_worker`) with
//! `AGENTFLOW_REDIS_CHILD` set; without it, `child_worker` returns at once.

#[path = "support/redis.rs"]
mod support;

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentflow_core::{Error, JobKind, JobQueue, JobSpec, JobState, Lease, WorkerId};
use agentflow_redis::{RedisQueue, RedisQueueConfig};
use redis::AsyncCommands;
use support::PrivateRedis;
use tokio::time::Instant;

const CHILD_ENV: &str = "AGENTFLOW_REDIS_CHILD";

/// Transient errors the workers of this process backed off from.
static TRANSIENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn specs(n: usize) -> Vec<JobSpec> {
    (0..n).map(|i| JobSpec::new(JobKind::Execute, format!("task-{i}"))).collect()
}

async fn connect(url: &str, prefix: &str) -> RedisQueue {
    let mut config = RedisQueueConfig::new(url).prefix(prefix).queue("q");
    config.response_timeout = Duration::from_secs(2);
    config.connect_timeout = Duration::from_secs(1);
    RedisQueue::connect(config).await.expect("connect")
}

/// A worker that survives transient errors: it backs off and goes on, keeps completing the
/// leases it holds until Redis takes them, and drops only leases it has lost. Calls
/// `on_done(job)` for each job whose completion Redis confirmed. Stops when the queue has
/// nothing queued or running, or at `deadline`.
async fn work(
    q: RedisQueue,
    lease_for: Duration,
    batch: usize,
    deadline: Instant,
    on_done: impl Fn(&Lease),
) -> Result<u64, String> {
    let worker = WorkerId::generate();
    let mut held: Vec<Lease> = Vec::new();
    let mut done = 0;
    let mut backoff = Duration::from_millis(20);
    while Instant::now() < deadline {
        match q.complete_and_reserve(&held, &worker, lease_for, batch).await {
            Ok((results, next)) => {
                backoff = Duration::from_millis(20);
                for (lease, result) in held.iter().zip(results) {
                    match result {
                        Ok(()) => {
                            done += 1;
                            on_done(lease);
                        }
                        Err(Error::LeaseLost { .. }) => {}
                        Err(e) => return Err(format!("unexpected per-lease error: {e}")),
                    }
                }
                held = next;
                if held.is_empty() {
                    match q.stats().await {
                        Ok(s) if s.queued() + s.running == 0 => return Ok(done),
                        _ => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            }
            Err(e) if e.is_retryable() => {
                TRANSIENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
            Err(e) => return Err(format!("worker died on a non-retryable error: {e}")),
        }
    }
    Err("deadline reached".to_owned())
}

/// Recovers expired leases every 200 ms until `stop`; transient errors are ignored.
fn reaper(q: RedisQueue, stop: Arc<tokio::sync::Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for _ in 0..600 {
            tokio::select! {
                _ = stop.notified() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            let _ = q.recover_expired().await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_reconnect_after_a_redis_restart_and_finish_every_job() {
    const JOBS: usize = 2000;
    let mut server = PrivateRedis::start(true);
    let q = connect(&server.url(), "restart").await;
    let ids: Vec<_> =
        q.enqueue_many(&specs(JOBS)).await.unwrap().into_iter().map(|e| e.id()).collect();
    let confirmed = Arc::new(Mutex::new(HashMap::<_, u32>::new()));
    let deadline = Instant::now() + Duration::from_secs(90);
    let stop = Arc::new(tokio::sync::Notify::new());
    let reap = reaper(q.clone(), stop.clone());
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (q, confirmed) = (q.clone(), confirmed.clone());
            tokio::spawn(async move {
                work(q, Duration::from_secs(2), 4, deadline, |l| {
                    *confirmed.lock().unwrap().entry(l.job.id).or_default() += 1;
                })
                .await
            })
        })
        .collect();
    // Restart once a part of the jobs is done.
    let wait = Instant::now() + Duration::from_secs(30);
    while confirmed.lock().unwrap().len() < JOBS / 10 && Instant::now() < wait {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let done_before = confirmed.lock().unwrap().len();
    assert!(done_before < JOBS, "the restart must come mid-run");
    server.restart();
    for w in workers {
        let result = w.await.unwrap();
        assert!(result.is_ok(), "{result:?}");
    }
    stop.notify_one();
    reap.await.unwrap();
    let stats = q.stats().await.unwrap();
    assert_eq!(stats.completed, JOBS as u64, "{stats:?}");
    for id in &ids {
        assert_eq!(q.get(*id).await.unwrap().unwrap().state, JobState::Completed);
    }
    // The restart was felt: calls failed with retryable errors and the workers went on.
    assert!(TRANSIENT.load(std::sync::atomic::Ordering::Relaxed) > 0);
    let confirmed = confirmed.lock().unwrap();
    assert!(confirmed.values().all(|n| *n == 1), "a completion was confirmed twice");
    assert!(confirmed.len() <= JOBS);
}

/// The body of a worker process. Mode `worker`: work the queue until it is empty, recording
/// each confirmed completion in `<tag>:test:done`. Mode `holder`: reserve jobs, say so, then
/// sit on them until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_worker() {
    let Ok(mode) = std::env::var(CHILD_ENV) else { return };
    let url = std::env::var("AGENTFLOW_REDIS_URL").unwrap();
    let prefix = std::env::var("AGENTFLOW_REDIS_PREFIX").unwrap();
    let q = connect(&url, &prefix).await;
    let tag = q.config().hash_tag();
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    match mode.as_str() {
        "worker" => {
            let deadline = Instant::now() + Duration::from_secs(60);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let (q, tx) = (q.clone(), tx.clone());
                    tokio::spawn(async move {
                        work(q, Duration::from_secs(30), 8, deadline, move |l| {
                            let _ = tx.send(l.job.id.to_string());
                        })
                        .await
                    })
                })
                .collect();
            drop(tx);
            let recorder = tokio::spawn(async move {
                let mut n = 0u64;
                while let Some(id) = rx.recv().await {
                    let _: i64 = conn.hincr(format!("{tag}:test:done"), id, 1).await.unwrap();
                    n += 1;
                }
                n
            });
            for t in tasks {
                t.await.unwrap().expect("worker");
            }
            println!("processed={}", recorder.await.unwrap());
        }
        "holder" => {
            let leases =
                q.reserve(&WorkerId::generate(), Duration::from_secs(2), 50).await.unwrap();
            let _: () = conn.set(format!("{tag}:test:held"), leases.len()).await.unwrap();
            // Killed long before this ends.
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn spawn_child(mode: &str, url: &str, prefix: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_worker", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, mode)
        .env("AGENTFLOW_REDIS_URL", url)
        .env("AGENTFLOW_REDIS_PREFIX", prefix)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_worker_processes_complete_each_job_exactly_once() {
    const JOBS: usize = 5000;
    let server = PrivateRedis::start(false);
    let url = server.url();
    let q = connect(&url, "three").await;
    let ids: HashSet<String> = q
        .enqueue_many(&specs(JOBS))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id().to_string())
        .collect();
    let children: Vec<_> = (0..3).map(|_| spawn_child("worker", &url, "three")).collect();
    let mut processed = 0u64;
    for child in children {
        let out =
            tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
        assert!(out.status.success(), "a worker process failed: {:?}", out.status);
        let stdout = String::from_utf8_lossy(&out.stdout);
        // libtest prints `test child_worker ... ` on the same line before our output.
        let n: String = stdout
            .split("processed=")
            .nth(1)
            .unwrap_or_else(|| panic!("no count from the worker process: {stdout}"))
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        processed += n.parse::<u64>().unwrap();
    }
    assert_eq!(processed, JOBS as u64);
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let done: HashMap<String, u64> =
        conn.hgetall(format!("{}:test:done", q.config().hash_tag())).await.unwrap();
    assert_eq!(done.len(), JOBS);
    assert!(done.values().all(|n| *n == 1), "some job was completed twice");
    assert_eq!(done.keys().cloned().collect::<HashSet<_>>(), ids);
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.running, stats.queued()), (JOBS as u64, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_killed_worker_process_are_recovered_after_lease_expiry() {
    let server = PrivateRedis::start(false);
    let url = server.url();
    let q = connect(&url, "killed").await;
    q.enqueue_many(&specs(80)).await.unwrap();
    let child = spawn_child("holder", &url, "killed");
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let held_key = format!("{}:test:held", q.config().hash_tag());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut held: Option<u64> = None;
    while held.is_none() && Instant::now() < deadline {
        held = conn.get(&held_key).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(held, Some(50), "the holder process reserved its jobs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status =
        tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    assert!(!status.status.success());
    assert_eq!(q.stats().await.unwrap().running, 50, "the dead process's leases are still held");

    // Another worker finishes everything: the 30 free jobs now, the 50 held ones once their
    // leases expire and the reaper recovers them.
    let stop = Arc::new(tokio::sync::Notify::new());
    let reap = reaper(q.clone(), stop.clone());
    let result = work(
        q.clone(),
        Duration::from_secs(30),
        8,
        Instant::now() + Duration::from_secs(60),
        |_| {},
    )
    .await;
    stop.notify_one();
    reap.await.unwrap();
    assert_eq!(result, Ok(80));
    let jobs = q.list(&Default::default(), agentflow_core::Page::first(200)).await.unwrap();
    assert_eq!(jobs.len(), 80);
    assert!(jobs.iter().all(|j| j.state == JobState::Completed));
    let second_attempts = jobs.iter().filter(|j| j.attempt == 2).count();
    assert_eq!(second_attempts, 50, "exactly the held jobs ran a second attempt");
}
