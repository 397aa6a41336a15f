//! Batch, listing, stats and concurrency cases.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agentflow_core::{JobFilter, JobId, JobKind, JobQueue, JobSpec, JobState, Page, QueueStats};
use chrono::Utc;
use futures::StreamExt;

use super::{LEASE, enqueue_new, job, reserve, reserve_one, spec, worker};

/// `complete_many` completes every current lease and reports `LeaseLost` for a stale one, one
/// result per lease in order.
pub async fn complete_many_completes_each(q: Arc<dyn JobQueue>) {
    let q = &*q;
    for i in 0..5 {
        enqueue_new(q, spec(&format!("task-{i}"))).await;
    }
    let mut leases = reserve(q, &worker("a"), LEASE, 5).await;
    assert_eq!(leases.len(), 5);
    let mut stale = leases[2].clone();
    stale.token = uuid::Uuid::new_v4();
    leases.insert(1, stale);
    let results = q.complete_many(&leases).await.expect("complete_many");
    assert_eq!(results.len(), 6, "one result per lease");
    for (i, (lease, result)) in leases.iter().zip(&results).enumerate() {
        match (i, result) {
            (1, Err(agentflow_core::Error::LeaseLost { .. })) => {}
            (1, other) => panic!("the stale lease (index 1) got {other:?}, expected LeaseLost"),
            (_, Ok(())) => {
                assert_eq!(job(q, lease.job.id).await.state, JobState::Completed);
            }
            (_, Err(e)) => panic!("lease {i} (job {}) failed to complete: {e}", lease.job.id),
        }
    }
}

/// `list` returns jobs newest first, filtered by state, kind and task, with offset paging.
pub async fn list_filter_and_paging(q: Arc<dyn JobQueue>) {
    let q = &*q;
    let mut ids = Vec::new();
    for i in 0..8 {
        let task = if i % 2 == 0 { "task-a" } else { "task-b" };
        let kind = if i < 6 { JobKind::Execute } else { JobKind::Feedback };
        ids.push(enqueue_new(q, JobSpec::new(kind, task)).await);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let newest_first: Vec<JobId> = ids.iter().rev().copied().collect();
    let all = |jobs: Vec<agentflow_core::Job>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();

    let listed = all(q.list(&JobFilter::default(), Page::first(100)).await.expect("list"));
    assert_eq!(listed, newest_first, "list(all) is every job, newest first");

    let page =
        all(q.list(&JobFilter::default(), Page { offset: 2, limit: 3 }).await.expect("list"));
    assert_eq!(page, newest_first[2..5], "offset 2, limit 3");
    let past_end = q.list(&JobFilter::default(), Page { offset: 8, limit: 3 }).await.expect("list");
    assert!(past_end.is_empty(), "a page past the end is empty");

    let task_a = all(q.list(&JobFilter::task("task-a"), Page::first(100)).await.expect("list"));
    let expect_a: Vec<JobId> = newest_first
        .iter()
        .copied()
        .filter(|id| ids.iter().position(|x| x == id).is_some_and(|i| i % 2 == 0))
        .collect();
    assert_eq!(task_a, expect_a, "filter by task");

    let feedback = JobFilter { kind: Some(JobKind::Feedback), ..Default::default() };
    let listed = all(q.list(&feedback, Page::first(100)).await.expect("list"));
    assert_eq!(listed, [ids[7], ids[6]], "filter by kind");

    // Oldest first by priority and run_at: the first reserved is ids[0].
    let lease = reserve_one(q, &worker("a"), LEASE).await;
    q.complete(&lease).await.expect("complete");
    let done = all(q
        .list(&JobFilter::states([JobState::Completed]), Page::first(100))
        .await
        .expect("list"));
    assert_eq!(done, [lease.job.id], "filter by state");
    let live = JobFilter::states([JobState::Available, JobState::Running]);
    assert_eq!(
        q.list(&live, Page::first(100)).await.expect("list").len(),
        7,
        "filter by several states"
    );
    let both = JobFilter {
        states: vec![JobState::Available],
        task: Some("task-b".into()),
        kind: Some(JobKind::Feedback),
    };
    assert_eq!(
        all(q.list(&both, Page::first(100)).await.expect("list")),
        [ids[7]],
        "filters combine"
    );
}

/// `stats` counts every job the queue holds in exactly one state.
pub async fn stats_add_up(q: Arc<dyn JobQueue>) {
    let q = &*q;
    assert_eq!(q.stats().await.expect("stats"), QueueStats::default(), "a fresh queue is empty");
    let w = worker("a");
    for (i, priority) in [1, 2, 3, 4, 5].into_iter().enumerate() {
        enqueue_new(q, spec(&format!("task-{i}")).priority(priority)).await;
    }
    let hour = Utc::now() + chrono::Duration::hours(1);
    enqueue_new(q, spec("scheduled").run_at(hour)).await;
    let leases = reserve(q, &w, LEASE, 4).await;
    assert_eq!(leases.len(), 4);
    q.complete(&leases[0]).await.expect("complete");
    q.fail(&leases[1], "fatal", None).await.expect("fail");
    q.fail(&leases[2], "again", Some(hour)).await.expect("fail");
    // leases[3] stays running; the fifth job (priority 5) stays available; then one more to cancel.
    let cancelled = enqueue_new(q, spec("cancelled").priority(9)).await;
    assert!(q.cancel(cancelled).await.expect("cancel"));
    let stats = q.stats().await.expect("stats");
    let expected = QueueStats {
        scheduled: 1,
        available: 1,
        running: 1,
        retryable: 1,
        completed: 1,
        failed: 1,
        cancelled: 1,
    };
    assert_eq!(stats, expected, "one job in each state");
    assert_eq!(stats.total(), 7);
    let listed = q.list(&JobFilter::default(), Page::first(100)).await.expect("list");
    let mut by_state = QueueStats::default();
    for job in &listed {
        *by_state.get_mut(job.state) += 1;
    }
    assert_eq!(by_state, stats, "stats agree with list");
}

/// 8 reservers racing over 4 000 jobs (enqueued by 8 concurrent producers while they reserve in
/// batches) never share a job, and every job completes exactly once.
pub async fn concurrent_reservers_never_share_a_job(q: Arc<dyn JobQueue>) {
    const PRODUCERS: usize = 8;
    const PER_PRODUCER: usize = 500;
    const TOTAL: usize = PRODUCERS * PER_PRODUCER;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let completed = Arc::new(AtomicUsize::new(0));

    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let q = q.clone();
        producers.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(PER_PRODUCER);
            for i in 0..PER_PRODUCER {
                let spec = spec(&format!("task-{p}-{i}")).unique_key(format!("k-{p}-{i}"));
                ids.push(enqueue_new(&*q, spec).await);
            }
            ids
        }));
    }
    let mut reservers = Vec::new();
    for r in 0..8 {
        let (q, completed) = (q.clone(), completed.clone());
        reservers.push(tokio::spawn(async move {
            let w = worker(&format!("r{r}"));
            let mut mine = Vec::new();
            while completed.load(Ordering::SeqCst) < TOTAL {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "reserver {r}: not drained within 120 s"
                );
                let leases = reserve(&*q, &w, LEASE, 1 + r * 4).await;
                if leases.is_empty() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                for result in q.complete_many(&leases).await.expect("complete_many") {
                    result
                        .unwrap_or_else(|e| panic!("reserver {r}: completing its own lease: {e}"));
                }
                completed.fetch_add(leases.len(), Ordering::SeqCst);
                mine.extend(leases.into_iter().map(|l| l.job.id));
            }
            mine
        }));
    }
    let mut enqueued = Vec::with_capacity(TOTAL);
    for p in producers {
        enqueued.extend(p.await.expect("producer task"));
    }
    let mut seen: HashMap<JobId, usize> = HashMap::with_capacity(TOTAL);
    for (r, handle) in reservers.into_iter().enumerate() {
        for id in handle.await.expect("reserver task") {
            if let Some(other) = seen.insert(id, r) {
                panic!("job {id} was handed to reserver {other} and reserver {r}");
            }
        }
    }
    assert_eq!(seen.len(), TOTAL, "every job completed exactly once");
    for id in &enqueued {
        assert!(seen.contains_key(id), "job {id} was enqueued but never completed");
    }
    let stats = q.stats().await.expect("stats");
    assert_eq!(stats.completed, TOTAL as u64, "{stats:?}");
    assert_eq!(stats.queued() + stats.running, 0, "nothing left: {stats:?}");
}

/// When the queue offers [`wakeups`](JobQueue::wakeups), an idle waiter is woken by a new job.
/// Queues without wakeups (workers poll) pass trivially.
pub async fn wakeups_signal_new_jobs(q: Arc<dyn JobQueue>) {
    let Some(mut wakeups) = q.wakeups() else { return };
    let waiter = tokio::spawn(async move { wakeups.next().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    enqueue_new(&*q, spec("task-1")).await;
    match tokio::time::timeout(Duration::from_secs(10), waiter).await {
        Ok(Ok(Some(()))) => {}
        Ok(Ok(None)) => panic!("the wakeups stream ended while the queue is alive"),
        Ok(Err(e)) => panic!("the waiter panicked: {e}"),
        Err(_) => panic!("no wakeup within 10 s of enqueueing a job"),
    }
    assert_eq!(reserve(&*q, &worker("a"), LEASE, 10).await.len(), 1);
}
