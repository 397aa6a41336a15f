//! Crash safety and multi-process use with real processes: the test binary re-executes itself
//! (`--exact <child test>`), and the child test acts only when `AGENTFLOW_SQLITE_CHILD` names it.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agentflow_core::{Error, JobId, JobKind, JobQueue, JobSpec, JobState, Lease, WorkerId};
use agentflow_sqlite::{SqliteOptions, SqliteQueue};

const CHILD: &str = "AGENTFLOW_SQLITE_CHILD";
const DB: &str = "AGENTFLOW_SQLITE_DB";

/// The database path when this process is the child `name`.
fn child_role(name: &str) -> Option<String> {
    (std::env::var(CHILD).ok()? == name).then(|| std::env::var(DB).expect("db path"))
}

fn spawn_child(name: &str, db: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .env(DB, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads the child's stdout on a thread; returns a receiver of its lines.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The payload after `tag` on the first line holding it, waiting at most `within`.
fn wait_for(rx: &mpsc::Receiver<String>, tag: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                // libtest may print `test <name> ... ` before the child's own output.
                if let Some(at) = line.find(tag) {
                    return line[at + tag.len()..].trim().to_owned();
                }
            }
            Err(e) => panic!("child never printed {tag}: {e}"),
        }
    }
}

fn sigkill(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed");
}

async fn open(path: &Path) -> SqliteQueue {
    SqliteQueue::open(path.to_str().unwrap(), SqliteOptions::default()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_lease_expires_and_job_completes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let q = open(&path).await;
    let id = q.enqueue(JobSpec::new(JobKind::Execute, "t").max_attempts(3)).await.unwrap().id();

    let mut child = spawn_child("child_reserves_then_hangs", &path);
    let rx = lines_of(&mut child);
    let lease: Lease =
        serde_json::from_str(&wait_for(&rx, "LEASE", Duration::from_secs(60))).unwrap();
    assert_eq!(lease.job.id, id);
    sigkill(&mut child);

    let me = WorkerId::generate();
    // Until the lease is recovered the job stays the dead worker's.
    assert!(q.reserve(&me, Duration::from_secs(60), 1).await.unwrap().is_empty());
    // Recover once the child's short lease ran out (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mine = loop {
        assert!(Instant::now() < deadline, "the lease never expired");
        q.recover_expired().await.unwrap();
        if let Some(l) = q.reserve(&me, Duration::from_secs(60), 1).await.unwrap().pop() {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((mine.job.id, mine.job.attempt), (id, 2));
    // The dead worker's token is worthless; ours completes once.
    assert!(matches!(q.complete(&lease).await, Err(Error::LeaseLost { .. })));
    q.complete(&mine).await.unwrap();
    assert!(matches!(q.complete(&mine).await, Err(Error::LeaseLost { .. })));
    let job = q.get(id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Completed, 2));
    assert_eq!(q.stats().await.unwrap().completed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_reserves_then_hangs() {
    let Some(path) = child_role("child_reserves_then_hangs") else { return };
    let q = open(Path::new(&path)).await;
    let lease = q.reserve(&WorkerId::generate(), Duration::from_millis(500), 1).await.unwrap();
    println!("LEASE {}", serde_json::to_string(&lease[0]).unwrap());
    // Hang until killed (bounded, should the parent die first).
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_enqueues_survive_sigkill_of_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durable.db");
    drop(open(&path).await);
    let mut child = spawn_child("child_enqueues_until_killed", &path);
    let rx = lines_of(&mut child);
    let acked: Vec<JobId> =
        serde_json::from_str(&wait_for(&rx, "ACKED", Duration::from_secs(60))).unwrap();
    // Let it keep writing (the writer is mid-transaction most of the time), then kill it.
    wait_for(&rx, "MORE", Duration::from_secs(60));
    sigkill(&mut child);

    let raw = rusqlite::Connection::open(&path).unwrap();
    let check: String = raw.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    drop(raw);
    let q = open(&path).await;
    for id in &acked {
        assert!(q.get(*id).await.unwrap().is_some(), "acknowledged job {id} lost");
    }
    assert!(q.stats().await.unwrap().available >= acked.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_enqueues_until_killed() {
    let Some(path) = child_role("child_enqueues_until_killed") else { return };
    let q = std::sync::Arc::new(open(Path::new(&path)).await);
    let mut acked = Vec::new();
    for i in 0..100 {
        acked.push(q.enqueue(JobSpec::new(JobKind::Execute, format!("t{i}"))).await.unwrap().id());
    }
    println!("ACKED {}", serde_json::to_string(&acked).unwrap());
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let q = std::sync::Arc::clone(&q);
            tokio::spawn(async move {
                for i in 0..100_000 {
                    q.enqueue(JobSpec::new(JobKind::Execute, format!("w{w}-{i}"))).await.unwrap();
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("MORE");
    for w in writers {
        let _ = tokio::time::timeout(Duration::from_secs(120), w).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_complete_every_job_exactly_once() {
    const JOBS: usize = 4_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let q = open(&path).await;
    let mut all = HashSet::new();
    for i in 0..JOBS {
        all.insert(q.enqueue(JobSpec::new(JobKind::Execute, format!("t{i}"))).await.unwrap().id());
    }
    let mut children: Vec<_> =
        (0..2).map(|_| spawn_child("child_drains_the_queue", &path)).collect();
    let outputs: Vec<_> = children.iter_mut().map(lines_of).collect();
    let mut seen = HashSet::new();
    let mut per_child = Vec::new();
    for rx in &outputs {
        let done: Vec<JobId> =
            serde_json::from_str(&wait_for(rx, "DONE", Duration::from_secs(150))).unwrap();
        per_child.push(done.len());
        for id in done {
            assert!(seen.insert(id), "job {id} completed by both processes");
        }
    }
    for c in &mut children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(seen, all, "every job completed");
    assert_eq!(q.stats().await.unwrap().completed, JOBS as u64);
    assert!(per_child.iter().all(|n| *n > 0), "both processes took part: {per_child:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_drains_the_queue() {
    let Some(path) = child_role("child_drains_the_queue") else { return };
    let q = std::sync::Arc::new(open(Path::new(&path)).await);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let q = std::sync::Arc::clone(&q);
            tokio::spawn(async move {
                let me = WorkerId::generate();
                let mut done = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(120);
                while Instant::now() < deadline {
                    let leases = q.reserve(&me, Duration::from_secs(120), 1).await.unwrap();
                    let Some(lease) = leases.into_iter().next() else { break };
                    q.complete(&lease).await.unwrap();
                    done.push(lease.job.id);
                }
                done
            })
        })
        .collect();
    let mut done = Vec::new();
    for w in workers {
        done.extend(w.await.unwrap());
    }
    println!("DONE {}", serde_json::to_string(&done).unwrap());
}
