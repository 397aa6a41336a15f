//! Behaviour of the in-memory backends beyond the shared contracts: wakeups for delayed jobs,
//! retention, a small log bound, the local source's watch stream and human actions, the
//! broadcast sink's receivers.

use std::time::Duration;

use agentflow_core::memory::{BroadcastSink, LocalSource, MemoryQueue, MemoryStore};
use agentflow_core::{
    Event, EventSink, JobFilter, JobKind, JobQueue, JobSpec, JobState, LogLevel, LogLine, LogPage,
    Page, ReportKind, RunId, SourceEvent, StateStore, Stats, TaskSource, TaskStatus, WorkerId,
};
use chrono::Utc;
use futures::StreamExt;
use tokio::time::timeout;

const LEASE: Duration = Duration::from_secs(60);

async fn next_wakeup(w: &mut futures::stream::BoxStream<'static, ()>, within: Duration) -> bool {
    matches!(timeout(within, w.next()).await, Ok(Some(())))
}

#[tokio::test]
async fn wakeups_fire_when_a_delayed_or_retrying_job_comes_due() {
    let q = MemoryQueue::new();
    let mut wakeups = q.wakeups().expect("the memory queue has wakeups");

    // Subscribed before the job exists: the stream must re-arm its timer for the new run_at.
    let run_at = Utc::now() + chrono::Duration::milliseconds(300);
    q.enqueue(JobSpec::new(JobKind::Execute, "t1").run_at(run_at)).await.unwrap();
    assert!(next_wakeup(&mut wakeups, Duration::from_secs(5)).await, "no wakeup at run_at");
    assert!(Utc::now() >= run_at, "woke before the job was due");

    let lease = q.reserve(&WorkerId::from("w"), LEASE, 1).await.unwrap().pop().expect("due job");
    let retry_at = Utc::now() + chrono::Duration::milliseconds(300);
    q.fail(&lease, "again", Some(retry_at)).await.unwrap();
    assert!(next_wakeup(&mut wakeups, Duration::from_secs(5)).await, "no wakeup at retry_at");
    assert_eq!(q.reserve(&WorkerId::from("w"), LEASE, 1).await.unwrap().len(), 1);

    // Nothing pending: no spurious wakeup.
    assert!(!next_wakeup(&mut wakeups, Duration::from_millis(300)).await, "spurious wakeup");
}

#[tokio::test]
async fn wakeups_end_when_the_queue_is_dropped() {
    let q = MemoryQueue::new();
    let mut wakeups = q.wakeups().unwrap();
    drop(q);
    assert_eq!(timeout(Duration::from_secs(5), wakeups.next()).await.unwrap(), None);
}

#[tokio::test]
async fn finished_jobs_beyond_retention_are_forgotten_oldest_first() {
    let q = MemoryQueue::with_max_finished(2);
    let w = WorkerId::from("w");
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(q.enqueue(JobSpec::new(JobKind::Execute, format!("t{i}"))).await.unwrap().id());
    }
    let live = q.enqueue(JobSpec::new(JobKind::Execute, "live")).await.unwrap().id();
    for lease in q.reserve(&w, LEASE, 4).await.unwrap() {
        q.complete(&lease).await.unwrap();
    }
    assert!(q.get(ids[0]).await.unwrap().is_none() && q.get(ids[1]).await.unwrap().is_none());
    assert_eq!(q.get(ids[3]).await.unwrap().unwrap().state, JobState::Completed);
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.completed, stats.available, stats.total()), (2, 1, 3));
    assert_eq!(q.list(&JobFilter::default(), Page::default()).await.unwrap().len(), 3);
    assert_eq!(q.get(live).await.unwrap().unwrap().state, JobState::Available);
}

#[tokio::test]
async fn a_small_log_bound_keeps_a_marker_and_the_newest_lines() {
    let store = MemoryStore::with_max_log_lines(5);
    let run = RunId::new();
    let line = |n: u32| LogLine {
        seq: 0,
        at: Utc::now(),
        level: LogLevel::Info,
        kind: "text".into(),
        line: format!("line {n}"),
        detail: None,
    };
    store.append_logs(run, (1..=5).map(line).collect()).await.unwrap();
    let all = store.logs(run, LogPage::default()).await.unwrap();
    assert_eq!(all.len(), 5, "at the bound nothing is dropped");
    assert!(all.iter().all(|l| l.kind == "text"));

    store.append_logs(run, vec![line(6)]).await.unwrap();
    store.append_logs(run, (7..=9).map(line).collect()).await.unwrap();
    let all = store.logs(run, LogPage::default()).await.unwrap();
    let shown: Vec<(u64, &str)> = all.iter().map(|l| (l.seq, l.line.as_str())).collect();
    assert_eq!(
        shown,
        [
            (5, "5 earlier log lines dropped (limit per run reached)"),
            (6, "line 6"),
            (7, "line 7"),
            (8, "line 8"),
            (9, "line 9"),
        ]
    );
    assert_eq!(all[0].kind, "marker");
    assert_eq!(all[0].detail, Some(serde_json::json!({ "dropped": 5 })));
    // Paging past the marker skips it.
    let page = store.logs(run, LogPage { after: 5, limit: 2 }).await.unwrap();
    assert_eq!(page.iter().map(|l| l.seq).collect::<Vec<_>>(), [6, 7]);
}

#[tokio::test]
async fn local_source_pushes_human_actions_to_watchers() {
    let source = LocalSource::new();
    let mut events = source.watch().expect("the local source has a watch stream");
    let next = async |events: &mut futures::stream::BoxStream<'static, SourceEvent>| {
        timeout(Duration::from_secs(5), events.next()).await.expect("an event").expect("open")
    };

    let task = source.add("Write a haiku", "");
    assert_eq!(next(&mut events).await, SourceEvent::TaskReady(task.id.clone()));
    // The engine's own changes are not echoed.
    assert!(source.claim(&task.id).await.unwrap());
    source.move_to(&task.id, TaskStatus::Todo).unwrap();
    assert_eq!(
        next(&mut events).await,
        SourceEvent::StatusChanged(task.id.clone(), TaskStatus::Todo)
    );
    assert_eq!(next(&mut events).await, SourceEvent::TaskReady(task.id.clone()));
    source.comment(&task.id, "Ann", "hello").unwrap();
    assert_eq!(next(&mut events).await, SourceEvent::Comment(task.id.clone()));
}

#[tokio::test]
async fn local_source_keys_edits_and_reports() {
    let source = LocalSource::new();
    let a = source.add("A", "");
    let b = source.add("B", "body");
    assert_eq!((a.key.as_str(), b.key.as_str()), ("LOC-1", "LOC-2"));
    let mut custom = agentflow_core::Task::new("LOC-3", "LOC-3", "taken");
    custom.status = TaskStatus::InReview;
    source.add_task(custom.clone()).unwrap();
    assert!(source.add_task(custom).is_err(), "a duplicate id is a conflict");
    assert_eq!(source.add("C", "").key, "LOC-4", "add skips ids already taken");

    let edited = source.edit(&a.id, |t| {
        t.priority = agentflow_core::Priority::URGENT;
        t.labels.push("needs-review".into());
        t.status = TaskStatus::Done;
    });
    let edited = edited.unwrap();
    assert_eq!(edited.status, TaskStatus::Todo, "edit does not move the task");
    assert!(edited.has_label("needs-review"));
    let ready = source.ready(10).await.unwrap();
    assert_eq!(ready[0].id, a.id, "urgent first");

    let report =
        |kind, body: &str| agentflow_core::Report { run: "r1".into(), kind, body: body.into() };
    source.report(&b.id, &report(ReportKind::Progress, "one")).await.unwrap();
    source.report(&b.id, &report(ReportKind::Progress, "two")).await.unwrap();
    source.report(&b.id, &report(ReportKind::Summary, "done")).await.unwrap();
    let reports = source.reports(&b.id);
    assert_eq!(reports.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(), ["two", "done"]);
    assert!(source.comments(&b.id)[0].edited_at.is_some());
    assert!(source.feedback(Some("not a number")).await.is_err(), "a bad cursor is an error");
}

#[tokio::test]
async fn broadcast_sink_reaches_every_receiver_and_lagging_ones_skip() {
    let sink = BroadcastSink::new(4);
    let mut fast = sink.subscribe();
    let mut slow = sink.subscribe();
    assert_eq!(sink.receiver_count(), 2);
    for i in 0..10 {
        sink.emit(&Event::Stats(Stats { queued: i, ..Stats::default() }));
        if let Event::Stats(s) = fast.recv().await.unwrap() {
            assert_eq!(s.queued, i);
        }
    }
    match slow.recv().await {
        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 6),
        other => panic!("expected Lagged(6), got {other:?}"),
    }
    let Event::Stats(s) = slow.recv().await.unwrap() else { panic!("not stats") };
    assert_eq!(s.queued, 6, "the slow receiver resumes at the oldest kept event");
}

#[tokio::test]
async fn local_source_snapshot_survives_a_restart_and_ids_never_repeat() {
    let source = LocalSource::new();
    let mut changes = source.changes();
    let a = source.add("A", "first");
    assert!(changes.has_changed().unwrap(), "adding a task is a change");
    changes.borrow_and_update();
    let b = source.add("B", "");
    assert!(source.claim(&a.id).await.unwrap());
    source.comment(&b.id, "Ann", "please also fix the docs").unwrap();
    let report =
        agentflow_core::Report { run: "r1".into(), kind: ReportKind::Summary, body: "done".into() };
    source.report(&a.id, &report).await.unwrap();
    assert!(changes.has_changed().unwrap());
    changes.borrow_and_update();
    // A refused claim changes nothing.
    assert!(!source.claim(&a.id).await.unwrap());
    assert!(!changes.has_changed().unwrap(), "a refused claim is not a change");

    // Through JSON, as the daemon stores it.
    let json = serde_json::to_string(&source.snapshot()).unwrap();
    let snapshot: agentflow_core::memory::LocalSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(snapshot.task_count(), 2);
    let restored = LocalSource::from_snapshot(snapshot);
    assert_eq!(restored.tasks(), source.tasks());
    assert_eq!(restored.task(&a.id).unwrap().status, TaskStatus::InProgress);
    assert_eq!(restored.comments(&b.id), source.comments(&b.id));
    assert_eq!(restored.reports(&a.id), source.reports(&a.id));

    // New tasks and comments continue the numbering: no id of the snapshot is handed out again
    // (their sessions, runs and jobs are still stored under it).
    assert_eq!(restored.add("C", "").key, "LOC-3");
    let c = restored.comment(&b.id, "Bo", "and the changelog").unwrap();
    assert!(source.comments(&b.id).iter().all(|old| old.id != c), "comment ids never repeat");
    let feedback = restored.feedback(None).await.unwrap();
    assert_eq!(feedback.cursor.as_deref(), Some("3"), "the feedback cursor keeps counting");
}

/// A run's summary delivered twice (an engine finishing a crashed worker's recorded end) shows
/// once; another run's summary is its own comment; progress is edited in place.
#[tokio::test]
async fn local_reports_keep_one_comment_per_run_and_kind() {
    use agentflow_core::Report;
    let source = LocalSource::new();
    let task = source.add("Summarise", "");
    let report = |run: &str, kind, body: &str| Report { run: run.into(), kind, body: body.into() };
    source.report(&task.id, &report("r1", ReportKind::Progress, "working")).await.unwrap();
    source.report(&task.id, &report("r1", ReportKind::Progress, "still working")).await.unwrap();
    source.report(&task.id, &report("r1", ReportKind::Summary, "done")).await.unwrap();
    source.report(&task.id, &report("r1", ReportKind::Summary, "done")).await.unwrap();
    source.report(&task.id, &report("r2", ReportKind::Summary, "done again")).await.unwrap();
    let bodies: Vec<String> = source.reports(&task.id).into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, ["still working", "done", "done again"]);
}
