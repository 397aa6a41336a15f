//! The happy paths: Todo → Done, Todo → In Review, reports and events.

use agentflow_core::{Event, ReportKind, RunFilter, StateStore, TaskStatus};
use agentflow_core::{JobFilter, JobKind, JobQueue, JobState, Page, RunStatus};

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_flow_to_done_or_in_review_through_the_review_gate() {
    let fx = Fixture::new();
    let plain = fx.source.add("Summarise the logs", "");
    let writing = fx.source.add("Write a haiku", "About Rust.");
    let exec = Scripted::ok("all good");
    let engine = fx.engine(exec.clone(), fast_config());
    let mut events = engine.handle().subscribe();
    let (shutdown, join, handle) = spawn(engine);

    fx.wait_status(&plain.id, TaskStatus::Done).await;
    fx.wait_status(&writing.id, TaskStatus::InReview).await;
    stop(shutdown, join).await;

    assert_eq!(exec.calls().len(), 2);
    for id in [&plain.id, &writing.id] {
        let jobs = fx.queue.list(&JobFilter::task(id.clone()), Page::first(5)).await.unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].kind, JobKind::Execute);
        assert_eq!(jobs[0].unique_key.as_deref(), Some(format!("execute:{id}").as_str()));
        assert_eq!(jobs[0].state, JobState::Completed);
    }
    for id in [&plain.id, &writing.id] {
        let summaries: Vec<_> =
            fx.source.reports(id).into_iter().filter(|r| r.kind == ReportKind::Summary).collect();
        assert_eq!(summaries.len(), 1, "one summary for {id}");
        assert!(summaries[0].body.contains("all good"));
    }
    let runs = fx.store.list_runs(&RunFilter::default(), Page::first(10)).await.unwrap();
    assert_eq!(runs.total, 2);
    assert!(runs.runs.iter().all(|r| r.status == RunStatus::Succeeded));
    assert_eq!(handle.task(&plain.id).unwrap().status, TaskStatus::Done);
    assert_eq!(handle.task(&writing.id).unwrap().status, TaskStatus::InReview);
    let mut names = std::collections::HashSet::new();
    while let Ok(e) = events.try_recv() {
        names.insert(e.name());
        if let Event::TaskUpdate(u) = e {
            assert!(u.task == plain.id || u.task == writing.id);
        }
    }
    assert!(names.contains("task:update") && names.contains("stats:update"), "{names:?}");
}
