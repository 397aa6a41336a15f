//! The queue's own behaviour beyond the conformance suite: history table, retention, group
//! commit under concurrency, wakeups.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use agentflow_core::{Error, JobFilter, JobKind, JobQueue, JobSpec, JobState, Page, WorkerId};
use agentflow_sqlite::{Database, Retention, SqliteOptions};
use chrono::Utc;
use futures::StreamExt;

const LEASE: Duration = Duration::from_secs(60);

async fn db(options: SqliteOptions) -> Database {
    Database::open_temporary(options).await.expect("open")
}

fn spec(task: &str) -> JobSpec {
    JobSpec::new(JobKind::Execute, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finished_jobs_leave_the_live_table_but_stay_visible() {
    let db = db(SqliteOptions::default()).await;
    let q = db.queue();
    let id = q.enqueue(spec("t1").unique_key("k")).await.unwrap().id();
    let w = WorkerId::generate();
    let lease = q.reserve(&w, LEASE, 1).await.unwrap().remove(0);
    q.complete(&lease).await.unwrap();

    let job = q.get(id).await.unwrap().expect("history keeps it");
    assert_eq!(job.state, JobState::Completed);
    assert_eq!(job.attempt, 1);
    let raw = rusqlite::Connection::open(db.path()).unwrap();
    let live: i64 = raw.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0)).unwrap();
    let done: i64 = raw.query_row("SELECT COUNT(*) FROM finished_jobs", [], |r| r.get(0)).unwrap();
    assert_eq!((live, done), (0, 1));
    // The key is free again.
    assert!(q.enqueue(spec("t1").unique_key("k")).await.unwrap().is_new());
    assert_eq!(
        q.complete(&lease).await.unwrap_err().to_string(),
        Error::LeaseLost { job: id }.to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_spans_live_and_finished_newest_first() {
    let q = db(SqliteOptions::default()).await.queue();
    let w = WorkerId::generate();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(q.enqueue(spec(&format!("t{i}"))).await.unwrap().id());
    }
    let leases = q.reserve(&w, LEASE, 2).await.unwrap();
    assert_eq!(leases.iter().map(|l| l.job.id).collect::<Vec<_>>(), ids[..2]);
    q.complete(&leases[0]).await.unwrap();
    assert_eq!(q.fail(&leases[1], "boom", None).await.unwrap(), JobState::Failed);

    let all = q.list(&JobFilter::default(), Page::first(10)).await.unwrap();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(all.iter().map(|j| j.id).collect::<Vec<_>>(), newest_first);
    let finished = q
        .list(&JobFilter::states([JobState::Completed, JobState::Failed]), Page::first(10))
        .await
        .unwrap();
    assert_eq!(finished.len(), 2);
    assert_eq!(finished[0].last_error.as_deref(), Some("boom"));
    let page = q.list(&JobFilter::default(), Page { offset: 1, limit: 2 }).await.unwrap();
    assert_eq!(page.iter().map(|j| j.id).collect::<Vec<_>>(), newest_first[1..3]);
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.available, stats.completed, stats.failed, stats.total()), (3, 1, 1, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_prunes_by_count_and_by_age() {
    let retention =
        Retention { keep: Some(3), max_age: None, prune_every: Duration::from_secs(3600) };
    let db = db(SqliteOptions { retention, ..Default::default() }).await;
    let q = db.queue();
    let w = WorkerId::generate();
    for i in 0..10 {
        q.enqueue(spec(&format!("t{i}"))).await.unwrap();
    }
    q.enqueue(spec("live")).await.unwrap();
    for lease in q.reserve(&w, LEASE, 10).await.unwrap() {
        q.complete(&lease).await.unwrap();
    }
    assert_eq!(db.prune().await.unwrap(), 7);
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.available), (3, 1), "live jobs are never pruned");
    // The newest three are the ones kept.
    let kept = q.list(&JobFilter::states([JobState::Completed]), Page::first(10)).await.unwrap();
    assert_eq!(kept.iter().map(|j| j.task.0.as_str()).collect::<Vec<_>>(), ["t9", "t8", "t7"]);

    let retention = Retention {
        keep: None,
        max_age: Some(Duration::from_millis(1)),
        prune_every: Duration::from_millis(50),
    };
    let db =
        Database::open_temporary(SqliteOptions { retention, ..Default::default() }).await.unwrap();
    let q = db.queue();
    q.enqueue(spec("old")).await.unwrap();
    let lease = q.reserve(&w, LEASE, 1).await.unwrap().remove(0);
    q.complete(&lease).await.unwrap();
    // The background pruner removes it; bounded wait.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while q.get(lease.job.id).await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the pruner never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_share_group_commits_and_never_share_jobs() {
    let q = Arc::new(db(SqliteOptions::default()).await.queue());
    let n = 2_000;
    let enqueues = (0..n).map(|i| {
        let q = Arc::clone(&q);
        tokio::spawn(async move { q.enqueue(spec(&format!("t{i}"))).await.unwrap().id() })
    });
    let ids: HashSet<_> =
        futures::future::join_all(enqueues).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(ids.len(), n);

    let workers = (0..16).map(|_| {
        let q = Arc::clone(&q);
        tokio::spawn(async move {
            let w = WorkerId::generate();
            let mut mine = Vec::new();
            for _ in 0..n {
                let leases = q.reserve(&w, LEASE, 3).await.unwrap();
                if leases.is_empty() {
                    break;
                }
                for r in q.complete_many(&leases).await.unwrap() {
                    r.unwrap();
                }
                mine.extend(leases.into_iter().map(|l| l.job.id));
            }
            mine
        })
    });
    let mut seen = HashSet::new();
    for done in futures::future::join_all(workers).await {
        for id in done.unwrap() {
            assert!(seen.insert(id), "job {id} reserved twice");
        }
    }
    assert_eq!(seen, ids);
    assert_eq!(q.stats().await.unwrap().completed, n as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_lease_recovers_and_stale_token_changes_nothing() {
    let q = db(SqliteOptions::default()).await.queue();
    let id = q.enqueue(spec("t").max_attempts(2)).await.unwrap().id();
    let w = WorkerId::generate();
    let first = q.reserve(&w, Duration::from_millis(50), 1).await.unwrap().remove(0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(q.recover_expired().await.unwrap(), 1);
    let job = q.get(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Retryable);
    assert!(job.last_error.unwrap().contains("lease expired"));
    assert!(matches!(q.heartbeat(&first, LEASE).await, Err(Error::LeaseLost { .. })));
    assert!(matches!(q.release(&first).await, Err(Error::LeaseLost { .. })));

    let second = q.reserve(&w, Duration::from_millis(50), 1).await.unwrap().remove(0);
    assert_eq!(second.job.attempt, 2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(q.recover_expired().await.unwrap(), 1);
    assert_eq!(q.get(id).await.unwrap().unwrap().state, JobState::Failed, "no attempts left");
    assert!(matches!(q.complete(&second).await, Err(Error::LeaseLost { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn release_cancel_and_retry_keep_their_promises() {
    let q = db(SqliteOptions::default()).await.queue();
    let w = WorkerId::generate();
    let id = q.enqueue(spec("t")).await.unwrap().id();
    let lease = q.reserve(&w, LEASE, 1).await.unwrap().remove(0);
    q.release(&lease).await.unwrap();
    let lease = q.reserve(&w, LEASE, 1).await.unwrap().remove(0);
    assert_eq!(lease.job.attempt, 1, "release gives the attempt back");
    let later = Utc::now() + chrono::Duration::hours(1);
    assert_eq!(q.fail(&lease, "flaky", Some(later)).await.unwrap(), JobState::Retryable);
    assert!(q.reserve(&w, LEASE, 1).await.unwrap().is_empty(), "not due yet");
    assert!(q.cancel(id).await.unwrap());
    assert!(!q.cancel(id).await.unwrap());
    assert_eq!(q.get(id).await.unwrap().unwrap().state, JobState::Cancelled);
    assert!(matches!(q.cancel(agentflow_core::JobId::new()).await, Err(Error::NotFound { .. })));
    assert!(matches!(
        q.enqueue(JobSpec { max_attempts: 0, ..spec("x") }).await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wakeups_fire_on_enqueue() {
    let q = db(SqliteOptions::default()).await.queue();
    let mut wake = q.wakeups().expect("sqlite has in-process wakeups");
    q.enqueue(spec("t")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), wake.next()).await.unwrap().unwrap();
}
