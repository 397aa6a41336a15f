//! PgQueue behaviour beyond the conformance suite: plans, batching, wakeups, history.

#[path = "support.rs"]
mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use agentflow_core::{JobKind, JobQueue, JobSpec, JobState, WorkerId};
use agentflow_postgres::PgQueue;
use futures::StreamExt;

const LEASE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_trip_of_every_operation() {
    let q = PgQueue::connect(&support::config().await).await.unwrap();
    let w = WorkerId::generate();
    let a = q.enqueue(JobSpec::new(JobKind::Execute, "t1").unique_key("k1")).await.unwrap();
    assert!(a.is_new());
    let again = q.enqueue(JobSpec::new(JobKind::Execute, "t1").unique_key("k1")).await.unwrap();
    assert_eq!(again, agentflow_core::Enqueued::Existing(a.id()));
    let leases = q.reserve(&w, LEASE, 5).await.unwrap();
    assert_eq!(leases.len(), 1);
    let l = &leases[0];
    assert_eq!(l.job.attempt, 1);
    assert_eq!(l.job.state, JobState::Running);
    let exp = q.heartbeat(l, Duration::from_secs(120)).await.unwrap();
    assert!(exp > l.expires_at);
    assert_eq!(q.fail(l, "boom", Some(chrono::Utc::now())).await.unwrap(), JobState::Retryable);
    assert!(q.complete(l).await.is_err(), "stale token must be refused");
    let l2 = q.reserve(&w, LEASE, 5).await.unwrap().remove(0);
    assert_eq!(l2.job.attempt, 2);
    assert_eq!(l2.job.last_error.as_deref(), Some("boom"));
    q.release(&l2).await.unwrap();
    let l3 = q.reserve(&w, LEASE, 5).await.unwrap().remove(0);
    assert_eq!(l3.job.attempt, 2, "release gives the attempt back");
    q.complete(&l3).await.unwrap();
    let done = q.get(a.id()).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Completed);
    let fresh = q.enqueue(JobSpec::new(JobKind::Execute, "t1").unique_key("k1")).await.unwrap();
    assert!(fresh.is_new(), "the key is free once the job finished");
    assert!(q.cancel(fresh.id()).await.unwrap());
    assert!(!q.cancel(fresh.id()).await.unwrap());
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.cancelled, stats.total()), (1, 1, 2));
    let listed = q.list(&Default::default(), Default::default()).await.unwrap();
    assert_eq!(listed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![fresh.id(), a.id()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_single_calls_are_batched_and_never_share_a_job() {
    let q = Arc::new(PgQueue::connect(&support::config().await).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..400 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            q.enqueue(JobSpec::new(JobKind::Execute, format!("t{i}"))).await.unwrap().id()
        }));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        assert!(ids.insert(t.await.unwrap()));
    }
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let w = WorkerId::generate();
            let mut mine = Vec::new();
            for _ in 0..200 {
                let got = q.reserve(&w, LEASE, 1).await.unwrap();
                let Some(l) = got.into_iter().next() else { break };
                q.complete(&l).await.unwrap();
                mine.push(l.job.id);
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(seen.insert(id), "job {id} handed out twice");
        }
    }
    assert_eq!(seen, ids);
    assert_eq!(q.stats().await.unwrap().completed, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_enqueues_of_one_key_create_one_job() {
    let cfg = support::config().await;
    // Two queue handles (two pools) stand for two instances.
    let a = Arc::new(PgQueue::connect(&cfg).await.unwrap());
    let b = Arc::new(PgQueue::connect(&cfg).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let q = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            q.enqueue(JobSpec::new(JobKind::Execute, "t").unique_key("one")).await.unwrap()
        }));
    }
    let mut new = 0;
    let mut ids = HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        new += usize::from(r.is_new());
        ids.insert(r.id());
    }
    assert_eq!((new, ids.len()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wakeups_cross_instances() {
    let cfg = support::config().await;
    let a = PgQueue::connect(&cfg.clone().max_connections(4)).await.unwrap();
    let mut slow = cfg.clone();
    slow.poll_interval = Duration::from_secs(3600);
    let b = PgQueue::connect(&slow).await.unwrap();
    let mut wakes = b.wakeups().expect("postgres has wakeups");
    // The first item is the initial tick/listen; drain until quiet.
    tokio::time::timeout(Duration::from_secs(5), wakes.next()).await.unwrap();
    while tokio::time::timeout(Duration::from_millis(300), wakes.next()).await.is_ok() {}
    a.enqueue(JobSpec::new(JobKind::Execute, "t")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), wakes.next())
        .await
        .expect("instance b woken by a's enqueue through NOTIFY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserve_uses_the_partial_index_with_100k_finished_jobs() {
    let q = PgQueue::connect(&support::config().await).await.unwrap();
    let s = q.schema().to_owned();
    // 100,000 finished jobs of history, written in bulk, and 1,000 live ones.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {s}.jobs_done (id, kind, task, payload, priority, attempt, max_attempts, \
             run_at, timeout_ms, state, created_at, updated_at)
         SELECT gen_random_uuid(), 'execute', 't' || g, 'null', 0, 1, 3, now(), 1000, \
             'completed', now(), now() FROM generate_series(1, 100000) g"
    )))
    .execute(q.pool())
    .await
    .unwrap();
    // 4,800 more through the real path, so the hot table also carries the dead rows of
    // finished work until vacuum.
    let w = WorkerId::generate();
    churn(&q, 4800).await;
    for i in 0..1000 {
        q.enqueue(JobSpec::new(JobKind::Execute, format!("live{i}")).priority((i % 5) as i16))
            .await
            .unwrap();
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ANALYZE {s}.jobs; ANALYZE {s}.jobs_done")))
        .execute(q.pool())
        .await
        .unwrap();
    let plan = q.explain_reserve(10).await.unwrap();
    println!("{plan}");
    assert!(plan.contains("jobs_ready_idx"), "reserve must walk the partial index:\n{plan}");
    assert!(!plan.contains("Seq Scan"), "no sequential scan:\n{plan}");
    assert!(!plan.contains("jobs_done"), "history is never read:\n{plan}");
    assert!(plan.contains("jobs_pkey"), "rows are updated through the primary key:\n{plan}");
    // And the history is really there.
    assert_eq!(q.stats().await.unwrap().completed, 104_800);
    let got = q.reserve(&w, LEASE, 10).await.unwrap();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|l| l.job.priority == 0), "highest priority first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prune_removes_old_finished_jobs_only() {
    let q = PgQueue::connect(&support::config().await).await.unwrap();
    let w = WorkerId::generate();
    for i in 0..5 {
        q.enqueue(JobSpec::new(JobKind::Execute, format!("t{i}"))).await.unwrap();
    }
    let leases = q.reserve(&w, LEASE, 3).await.unwrap();
    for r in q.complete_many(&leases).await.unwrap() {
        r.unwrap();
    }
    assert_eq!(q.prune_finished(Duration::from_secs(3600)).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(q.prune_finished(Duration::from_millis(10)).await.unwrap(), 3);
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.available), (0, 2));
}

/// Enqueues `n` jobs from 16 concurrent callers and completes them all.
async fn churn(q: &PgQueue, n: usize) {
    let mut tasks = Vec::new();
    for p in 0..16 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..n / 16 {
                q.enqueue(JobSpec::new(JobKind::Execute, format!("c{p}-{i}"))).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let w = WorkerId::generate();
    for _ in 0..n {
        let leases = q.reserve(&w, LEASE, 500).await.unwrap();
        if leases.is_empty() {
            break;
        }
        for r in q.complete_many(&leases).await.unwrap() {
            r.unwrap();
        }
    }
}

/// Postgres `text` and `jsonb` cannot hold U+0000: a comment or an error message with one is
/// stored with U+FFFD instead of being refused (which would lose the comment, or leave the job
/// running until its lease expired).
#[tokio::test]
async fn nul_characters_in_payloads_and_errors_are_stored_as_replacement_characters() {
    let q = PgQueue::connect(&support::config().await).await.unwrap();
    let spec = JobSpec::new(JobKind::Feedback, "t1")
        .payload(serde_json::json!({ "feedback": [{ "body": "looks good\u{0}ship it" }] }));
    let id = q.enqueue(spec).await.expect("a comment with NUL is enqueued").id();
    let lease =
        q.reserve(&WorkerId::generate(), Duration::from_secs(60), 1).await.unwrap().remove(0);
    assert_eq!(lease.job.id, id);
    assert_eq!(lease.job.payload["feedback"][0]["body"], "looks good\u{fffd}ship it");
    let state = q.fail(&lease, "stderr: \u{0}garbage", None).await.expect("the attempt is failed");
    assert_eq!(state, JobState::Failed);
    let job = q.get(id).await.unwrap().expect("kept in history");
    assert_eq!(job.last_error.as_deref(), Some("stderr: \u{fffd}garbage"));
}
