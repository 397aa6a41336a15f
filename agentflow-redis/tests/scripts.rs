//! One test per Lua script edge case, against the real Redis on 127.0.0.1:6379, each on its own
//! key prefix.

#[path = "support/redis.rs"]
mod support;

use std::time::Duration;

use agentflow_core::{Error, JobFilter, JobKind, JobQueue, JobSpec, JobState, Page, WorkerId};
use agentflow_redis::RedisQueue;
use chrono::Utc;
use futures::StreamExt;
use support::{SHARED_URL, config, queue, shared_redis};

const LEASE: Duration = Duration::from_secs(30);

fn spec(task: &str) -> JobSpec {
    JobSpec::new(JobKind::Execute, task)
}

async fn fresh() -> Option<RedisQueue> {
    if !shared_redis().await {
        return None;
    }
    Some(queue(config(SHARED_URL)).await)
}

fn worker() -> WorkerId {
    WorkerId::generate()
}

#[tokio::test]
async fn enqueue_dedups_by_unique_key_until_the_job_finishes() {
    let Some(q) = fresh().await else { return };
    let a = q.enqueue(spec("t1").unique_key("execute:t1")).await.unwrap();
    let b = q.enqueue(spec("t1").unique_key("execute:t1")).await.unwrap();
    assert!(a.is_new());
    assert!(!b.is_new());
    assert_eq!(a.id(), b.id());
    // Within one batch too.
    let batch = q
        .enqueue_many(&[spec("t2").unique_key("k2"), spec("t2").unique_key("k2"), spec("t3")])
        .await
        .unwrap();
    assert!(batch[0].is_new() && !batch[1].is_new() && batch[2].is_new());
    assert_eq!(batch[0].id(), batch[1].id());
    assert_eq!(q.stats().await.unwrap().available, 3);

    let w = worker();
    let leases = q.reserve(&w, LEASE, 10).await.unwrap();
    let lease = leases.iter().find(|l| l.job.id == a.id()).unwrap();
    // Still live while running.
    assert!(!q.enqueue(spec("t1").unique_key("execute:t1")).await.unwrap().is_new());
    q.complete(lease).await.unwrap();
    let again = q.enqueue(spec("t1").unique_key("execute:t1")).await.unwrap();
    assert!(again.is_new());
    assert_ne!(again.id(), a.id());
    q.destroy().await.unwrap();
}

#[tokio::test]
async fn reserve_orders_by_priority_then_age_and_stamps_the_lease_from_redis_time() {
    let Some(q) = fresh().await else { return };
    let low = q.enqueue(spec("low").priority(5)).await.unwrap().id();
    let old = q.enqueue(spec("old").priority(1)).await.unwrap().id();
    let new = q.enqueue(spec("new").priority(1)).await.unwrap().id();
    let w = worker();
    let leases = q.reserve(&w, LEASE, 10).await.unwrap();
    let order: Vec<_> = leases.iter().map(|l| l.job.id).collect();
    assert_eq!(order, vec![old, new, low]);
    for l in &leases {
        assert_eq!(l.job.state, JobState::Running);
        assert_eq!(l.job.attempt, 1);
        assert_eq!(l.worker, w);
        // Expiry and the stamp come from the same Redis TIME inside the script.
        assert_eq!(l.expires_at, l.job.updated_at + LEASE);
    }
    let tokens: std::collections::HashSet<_> = leases.iter().map(|l| l.token).collect();
    assert_eq!(tokens.len(), 3);
    assert!(q.reserve(&w, LEASE, 10).await.unwrap().is_empty());
    let got = q.get(old).await.unwrap().unwrap();
    assert_eq!(got.state, JobState::Running);
    q.destroy().await.unwrap();
}

#[tokio::test]
async fn reserve_promotes_due_delayed_jobs_in_bounded_batches() {
    if !shared_redis().await {
        return;
    }
    let mut cfg = config(SHARED_URL);
    cfg.promote_batch = 2;
    let q = queue(cfg).await;
    let soon = Utc::now() + chrono::Duration::milliseconds(300);
    let later = Utc::now() + chrono::Duration::hours(1);
    let specs: Vec<_> = (0..5).map(|i| spec(&format!("d{i}")).run_at(soon)).collect();
    q.enqueue_many(&specs).await.unwrap();
    q.enqueue(spec("later").run_at(later)).await.unwrap();
    let w = worker();
    assert!(q.reserve(&w, LEASE, 10).await.unwrap().is_empty(), "not due yet");
    assert_eq!(q.stats().await.unwrap().scheduled, 6);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut sizes = Vec::new();
    for _ in 0..5 {
        let got = q.reserve(&w, LEASE, 10).await.unwrap();
        if got.is_empty() {
            break;
        }
        sizes.push(got.len());
    }
    // Two promoted per call, never more; the far one stays scheduled.
    assert_eq!(sizes, vec![2, 2, 1]);
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.scheduled, stats.running), (1, 5));
    q.destroy().await.unwrap();
}

#[tokio::test]
async fn heartbeat_extends_and_rejects_a_stale_token() {
    let Some(q) = fresh().await else { return };
    q.enqueue(spec("hb")).await.unwrap();
    let w = worker();
    let lease = q.reserve(&w, Duration::from_secs(5), 1).await.unwrap().remove(0);
    let exp = q.heartbeat(&lease, Duration::from_secs(600)).await.unwrap();
    assert!(exp > lease.expires_at);
    let mut stale = lease.clone();
    stale.token = uuid::Uuid::new_v4();
    let err = q.heartbeat(&stale, LEASE).await.unwrap_err();
    assert!(matches!(err, Error::LeaseLost { job } if job == lease.job.id), "{err}");
    q.destroy().await.unwrap();
}

#[tokio::test]
async fn complete_rejects_stale_tokens_and_double_completion() {
    let Some(q) = fresh().await else { return };
    q.enqueue_many(&[spec("a"), spec("b")]).await.unwrap();
    let w = worker();
    let leases = q.reserve(&w, LEASE, 2).await.unwrap();
    let mut stale = leases[1].clone();
    stale.token = uuid::Uuid::new_v4();
    let err = q.complete(&stale).await.unwrap_err();
    assert!(matches!(err, Error::LeaseLost { .. }), "{err}");
    assert_eq!(q.get(stale.job.id).await.unwrap().unwrap().state, JobState::Running);

    q.complete(&leases[0]).await.unwrap();
    let err = q.complete(&leases[0]).await.unwrap_err();
    assert!(matches!(err, Error::LeaseLost { .. }), "double complete: {err}");

    // complete_many: one result per lease, in order, in one call.
    let results = q.complete_many(&[leases[0].clone(), leases[1].clone()]).await.unwrap();
    assert!(matches!(results[0], Err(Error::LeaseLost { .. })));
    assert!(results[1].is_ok());
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.running), (2, 0));
    q.destroy().await.unwrap();
}

#[tokio::test]
async fn complete_and_reserve_is_one_call_for_both() {
    let Some(q) = fresh().await else { return };
    q.enqueue_many(&(0..5).map(|i| spec(&format!("c{i}"))).collect::<Vec<_>>()).await.unwrap();
    let w = worker();
    let first = q.reserve(&w, LEASE, 2).await.unwrap();
    let (done, next) = q.complete_and_reserve(&first, &w, LEASE, 2).await.unwrap();
    assert!(done.iter().all(|r| r.is_ok()));
    assert_eq!(next.len(), 2);
    let (done, next2) = q.complete_and_reserve(&next, &w, LEASE, 10).await.unwrap();
    assert_eq!(done.len(), 2);
    assert_eq!(next2.len(), 1);
    // Stale leases in the completed part do not stop the reserve part.
    let (done, last) = q.complete_and_reserve(&first, &w, LEASE, 10).await.unwrap();
    assert!(done.iter().all(|r| matches!(r, Err(Error::LeaseLost { .. }))));
    assert!(last.is_empty());
    q.complete(&next2[0]).await.unwrap();
    assert_eq!(q.stats().await.unwrap().completed, 5);
    q.destroy().await.unwrap();
}

#[tokio::test]
async fn fail_retries_at_retry_at_then_fails_for_good_and_frees_the_key() {
    let Some(q) = fresh().await else { return };
    let id = q.enqueue(spec("f").unique_key("f").max_attempts(2)).await.unwrap().id();
    let w = worker();
    let lease = q.reserve(&w, LEASE, 1).await.unwrap().remove(0);
    let retry_at = Utc::now() + chrono::Duration::milliseconds(200);
    assert_eq!(q.fail(&lease, "boom", Some(retry_at)).await.unwrap(), JobState::Retryable);
    let job = q.get(id).await.unwrap().unwrap();
    assert_eq!((job.state, job.last_error.as_deref()), (JobState::Retryable, Some("boom")));
    assert_eq!(job.run_at.timestamp_millis(), retry_at.timestamp_millis());
    // A stale lease cannot fail it again.
    assert!(matches!(q.fail(&lease, "x", None).await, Err(Error::LeaseLost { .. })));
    assert!(q.reserve(&w, LEASE, 1).await.unwrap().is_empty(), "not due yet");
    // The key is held while retryable.
    assert!(!q.enqueue(spec("f").unique_key("f")).await.unwrap().is_new());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lease = q.reserve(&w, LEASE, 1).await.unwrap().remove(0);
    assert_eq!(lease.job.attempt, 2);
    assert_eq!(lease.job.last_error.as_deref(), Some("boom"));
    let retry_at = Utc::now();
    assert_eq!(q.fail(&lease, "again", Some(retry_at)).await.unwrap(), JobState::Failed);
    assert_eq!(q.get(id).await.unwrap().unwrap().state, JobState::Failed);
    assert!(q.enqueue(spec("f").unique_key("f")).await.unwrap().is_new());
    q.destroy().await.unwrap();
}

#[tokio::test]
async fn release_gives_the_attempt_back_and_checks_the_token() {
    let Some(q) = fresh().await else { return };
    let id = q.enqueue(spec("r")).await.unwrap().id();
    let w = worker();
    let lease = q.reserve(&w, LEASE, 1).await.unwrap().remove(0);
    let mut stale = lease.clone();
    stale.token = uuid::Uuid::new_v4();
    assert!(matches!(q.release(&stale).await, Err(Error::LeaseLost { .. })));
    q.release(&lease).await.unwrap();
    assert!(matches!(q.release(&lease).await, Err(Error::LeaseLost { .. })));
    let job = q.get(id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Available, 0));
    let again = q.reserve(&w, LEASE, 1).await.unwrap().remove(0);
    assert_eq!(again.job.attempt, 1);
    q.destroy().await.unwrap();
}

#[tokio::test]
async fn cancel_while_running_takes_the_lease_away() {
    let Some(q) = fresh().await else { return };
    let id = q.enqueue(spec("c").unique_key("c")).await.unwrap().id();
    let delayed = q.enqueue(spec("d").run_at(Utc::now() + chrono::Duration::hours(1))).await;
    let w = worker();
    let lease = q.reserve(&w, LEASE, 1).await.unwrap().remove(0);
    assert!(q.cancel(id).await.unwrap());
    assert!(matches!(q.heartbeat(&lease, LEASE).await, Err(Error::LeaseLost { .. })));
    assert!(matches!(q.complete(&lease).await, Err(Error::LeaseLost { .. })));
    assert!(matches!(q.fail(&lease, "x", None).await, Err(Error::LeaseLost { .. })));
    assert!(!q.cancel(id).await.unwrap(), "already finished");
    assert_eq!(q.get(id).await.unwrap().unwrap().state, JobState::Cancelled);
    assert!(q.enqueue(spec("c").unique_key("c")).await.unwrap().is_new(), "key freed");
    // A scheduled job cancels out of its set.
    assert!(q.cancel(delayed.unwrap().id()).await.unwrap());
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.scheduled, stats.running, stats.cancelled), (0, 0, 2));
    let missing = q.cancel(agentflow_core::JobId::new()).await.unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
    q.destroy().await.unwrap();
}

#[tokio::test]
async fn recover_expired_retries_then_fails_on_the_last_attempt() {
    let Some(q) = fresh().await else { return };
    let id = q.enqueue(spec("x").max_attempts(2).unique_key("x")).await.unwrap().id();
    let w = worker();
    let short = Duration::from_millis(100);
    let lease = q.reserve(&w, short, 1).await.unwrap().remove(0);
    assert_eq!(q.recover_expired().await.unwrap(), 0, "lease still valid");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(q.recover_expired().await.unwrap(), 1);
    let job = q.get(id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Retryable, 1));
    assert!(matches!(q.complete(&lease).await, Err(Error::LeaseLost { .. })));
    let lease = q.reserve(&w, short, 1).await.unwrap().remove(0);
    assert_eq!(lease.job.attempt, 2);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(q.recover_expired().await.unwrap(), 1);
    assert_eq!(q.get(id).await.unwrap().unwrap().state, JobState::Failed);
    assert!(q.enqueue(spec("x").unique_key("x")).await.unwrap().is_new());
    q.destroy().await.unwrap();
}

#[tokio::test]
async fn finished_jobs_are_pruned_after_retention() {
    if !shared_redis().await {
        return;
    }
    let q = queue(config(SHARED_URL).retention(Duration::ZERO)).await;
    let kept = queue(config(SHARED_URL)).await;
    for q in [&q, &kept] {
        let id = q.enqueue(spec("p")).await.unwrap().id();
        let lease = q.reserve(&worker(), LEASE, 1).await.unwrap().remove(0);
        q.complete(&lease).await.unwrap();
        let present = q.get(id).await.unwrap().is_some();
        let listed = q.list(&JobFilter::task("p"), Page::default()).await.unwrap().len();
        if std::ptr::eq(q, &kept) {
            assert!(present && listed == 1, "kept within retention");
            assert_eq!(q.stats().await.unwrap().completed, 1);
        } else {
            assert!(!present && listed == 0, "pruned at once with zero retention");
            assert_eq!(q.stats().await.unwrap().total(), 0);
        }
    }
    q.destroy().await.unwrap();
    kept.destroy().await.unwrap();
}

#[tokio::test]
async fn list_filters_and_pages_newest_first() {
    let Some(q) = fresh().await else { return };
    let ids: Vec<_> = q
        .enqueue_many(
            &(0..7).map(|i| spec(if i % 2 == 0 { "even" } else { "odd" })).collect::<Vec<_>>(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect();
    let lease = q.reserve(&worker(), LEASE, 1).await.unwrap().remove(0);
    assert_eq!(lease.job.id, ids[0]);
    let all = q.list(&JobFilter::default(), Page { offset: 1, limit: 3 }).await.unwrap();
    assert_eq!(all.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ids[5], ids[4], ids[3]]);
    let even = q.list(&JobFilter::task("even"), Page::default()).await.unwrap();
    assert_eq!(even.len(), 4);
    assert!(even.windows(2).all(|w| w[0].id > w[1].id));
    let running = q.list(&JobFilter::states([JobState::Running]), Page::default()).await.unwrap();
    assert_eq!(running.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ids[0]]);
    let avail = q
        .list(&JobFilter::states([JobState::Available, JobState::Running]), Page::first(2))
        .await
        .unwrap();
    assert_eq!(avail.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ids[6], ids[5]]);
    q.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wakeups_fire_on_enqueue_and_when_a_delayed_job_comes_due() {
    let Some(q) = fresh().await else { return };
    let mut wake = q.wakeups().expect("redis queue has wakeups");
    // Let the waiter block first, then drain anything stale.
    tokio::time::sleep(Duration::from_millis(100)).await;
    q.enqueue(spec("w")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), wake.next())
        .await
        .expect("woken after enqueue")
        .expect("stream open");
    let lease = q.reserve(&worker(), LEASE, 1).await.unwrap().remove(0);
    q.complete(&lease).await.unwrap();
    q.enqueue(spec("later").run_at(Utc::now() + chrono::Duration::milliseconds(1500)))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    let mut got = false;
    while tokio::time::Instant::now() < deadline && !got {
        if tokio::time::timeout(Duration::from_secs(3), wake.next()).await.is_ok() {
            got = !q.reserve(&worker(), LEASE, 1).await.unwrap().is_empty();
        }
    }
    assert!(got, "a wakeup came once the delayed job was due");
    q.destroy().await.unwrap();
}

/// Regression: the waiter used to exit when it saw no listener and be restarted by the next
/// `wakeups()` call, so a listener arriving between its check and its exit was never woken (CI
/// saw "no wakeup within 10 s" once). Fresh queues, a listener each, taken and dropped again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_taken_as_the_waiter_starts_or_idles_is_woken() {
    if !shared_redis().await {
        return;
    }
    for round in 0u64..40 {
        let q = queue(config(SHARED_URL)).await;
        for listener in 0..3 {
            let mut wake = q.wakeups().expect("redis queue has wakeups");
            q.enqueue(spec("w")).await.unwrap();
            tokio::time::timeout(Duration::from_secs(5), wake.next())
                .await
                .unwrap_or_else(|_| panic!("round {round}, listener {listener}: no wakeup"))
                .expect("stream open");
            let lease = q.reserve(&worker(), LEASE, 1).await.unwrap().remove(0);
            q.complete(&lease).await.unwrap();
            drop(wake);
            // Let the waiter notice that nobody listens before the next listener comes.
            tokio::time::sleep(Duration::from_millis((round % 4) * 5)).await;
        }
        q.destroy().await.unwrap();
    }
}

#[tokio::test]
async fn every_key_lives_under_the_queue_hash_tag() {
    if !shared_redis().await {
        return;
    }
    let cfg = config(SHARED_URL);
    let tag = cfg.hash_tag();
    let prefix = cfg.prefix.clone();
    let q = queue(cfg).await;
    let ids = q.enqueue_many(&[spec("k1").unique_key("u"), spec("k2")]).await.unwrap();
    let w = worker();
    let leases = q.reserve(&w, LEASE, 2).await.unwrap();
    q.complete(&leases[0]).await.unwrap();
    q.fail(&leases[1], "x", None).await.unwrap();
    q.enqueue(spec("k3").run_at(Utc::now() + chrono::Duration::hours(1))).await.unwrap();
    let mut conn =
        redis::Client::open(SHARED_URL).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("*{prefix}*")).query_async(&mut conn).await.unwrap();
    assert!(keys.len() >= 6, "{keys:?}");
    for k in &keys {
        assert!(k.starts_with(&format!("{tag}:")), "{k} is outside {tag}");
    }
    assert_eq!(ids.len(), 2);
    assert_eq!(q.destroy().await.unwrap(), keys.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_single_enqueues_are_coalesced_and_still_dedup() {
    let Some(q) = fresh().await else { return };
    let calls: Vec<_> = (0..300)
        .map(|i| {
            let q = q.clone();
            // Two calls per key, racing.
            let key = format!("k{}", i / 2);
            tokio::spawn(async move { (key.clone(), q.enqueue(spec("c").unique_key(key)).await) })
        })
        .collect();
    let mut by_key: std::collections::HashMap<String, Vec<agentflow_core::Enqueued>> =
        Default::default();
    for c in calls {
        let (key, r) = c.await.unwrap();
        by_key.entry(key).or_default().push(r.unwrap());
    }
    for (key, results) in &by_key {
        let new = results.iter().filter(|e| e.is_new()).count();
        assert_eq!(new, 1, "{key}: exactly one new job");
        assert!(results.iter().all(|e| e.id() == results[0].id()), "{key}: one id");
    }
    assert_eq!(by_key.len(), 150);
    assert_eq!(q.stats().await.unwrap().available, 150);
    q.destroy().await.unwrap();
}
