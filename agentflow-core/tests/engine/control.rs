//! The handle: pause/resume, budget, concurrency limit, manual cancel and retry, ordering.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agentflow_core::engine::EngineConfig;
use agentflow_core::{
    Error, JobFilter, JobKind, JobQueue, JobState, Page, Priority, Progress, ReportKind,
    RunOutcome, Task, TaskStatus, Usage,
};

use super::support::*;

#[tokio::test(start_paused = true)]
async fn a_paused_engine_claims_nothing_until_resumed() {
    let fx = Fixture::new();
    let exec = Scripted::ok("ok");
    let engine = fx.engine(exec.clone(), paused_config());
    let handle = engine.handle();
    handle.pause();
    let task = fx.source.add("Summarise", "");
    let (shutdown, join, handle) = spawn(engine);
    // Five poll intervals go by.
    tokio::time::sleep(Duration::from_secs(150)).await;
    assert_eq!(fx.status(&task.id), TaskStatus::Todo);
    assert!(exec.calls().is_empty());
    let stats = handle.stats().await.unwrap();
    assert!(stats.paused && handle.is_paused());

    handle.resume();
    fx.wait_status(&task.id, TaskStatus::Done).await;
    assert!(!handle.stats().await.unwrap().paused);
    stop(shutdown, join).await;
}

#[tokio::test(start_paused = true)]
async fn the_worker_count_is_a_real_concurrency_limit() {
    let fx = Fixture::new();
    let tasks: Vec<Task> = (0..6).map(|i| fx.source.add(format!("Summarise {i}"), "")).collect();
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n, p) = (now.clone(), peak.clone());
    let exec = Scripted::new(move |_, _, _| {
        let (n, p) = (n.clone(), p.clone());
        async move {
            let running = n.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(running, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(5)).await;
            n.fetch_sub(1, Ordering::SeqCst);
            Ok(RunOutcome::default())
        }
    });
    let (shutdown, join, _) =
        spawn(fx.engine(exec.clone(), EngineConfig { workers: 2, ..paused_config() }));
    for t in &tasks {
        fx.wait_status(&t.id, TaskStatus::Done).await;
    }
    stop(shutdown, join).await;
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    assert_eq!(exec.calls().len(), 6);
}

#[tokio::test(start_paused = true)]
async fn tasks_start_urgent_first_none_last_then_oldest() {
    let fx = Fixture::new();
    let mut ids = Vec::new();
    for (i, p) in
        [Priority::NONE, Priority::LOW, Priority::URGENT, Priority::MEDIUM, Priority::URGENT]
            .into_iter()
            .enumerate()
    {
        let mut t = Task::new(format!("t{i}"), format!("T-{i}"), "Summarise");
        t.priority = p;
        t.updated_at = chrono::Utc::now() - chrono::Duration::minutes(10 - i as i64);
        ids.push(fx.source.add_task(t).unwrap().id);
    }
    let exec = Scripted::ok("ok");
    let (shutdown, join, _) =
        spawn(fx.engine(exec.clone(), EngineConfig { workers: 1, ..paused_config() }));
    for id in &ids {
        fx.wait_status(id, TaskStatus::Done).await;
    }
    stop(shutdown, join).await;
    let order: Vec<String> = exec.calls().into_iter().map(|c| c.task.0).collect();
    assert_eq!(order, ["t2", "t4", "t3", "t1", "t0"]);
}

#[tokio::test(start_paused = true)]
async fn reaching_the_daily_budget_pauses_new_runs() {
    let fx = Fixture::new();
    let tasks: Vec<Task> = (0..3).map(|i| fx.source.add(format!("Summarise {i}"), "")).collect();
    let exec = Scripted::new(|_, _, _| async {
        Ok(RunOutcome {
            usage: Usage { cost_usd: 0.6, ..Default::default() },
            ..Default::default()
        })
    });
    let config = EngineConfig { workers: 1, daily_budget_usd: Some(1.0), ..paused_config() };
    let (shutdown, join, handle) = spawn(fx.engine(exec.clone(), config));
    wait_for("two runs", || exec.calls().len() == 2).await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(exec.calls().len(), 2, "the third run waits for budget");
    let stats = handle.stats().await.unwrap();
    assert!(stats.budget_exhausted, "{stats:?}");
    assert!((stats.cost_today - 1.2).abs() < 1e-9);
    assert_eq!(stats.queued, 1);
    let done = tasks.iter().filter(|t| fx.status(&t.id) == TaskStatus::Done).count();
    assert_eq!(done, 2);
    // Raising the budget lets it run.
    assert!(!handle.set_daily_budget(Some(5.0)).await.unwrap().budget_exhausted);
    for t in &tasks {
        fx.wait_status(&t.id, TaskStatus::Done).await;
    }
    assert_eq!(exec.calls().len(), 3);
    stop(shutdown, join).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_cancel_fails_the_task_and_manual_retry_resumes_its_session() {
    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let exec = Scripted::new(|req, progress, cancel| async move {
        if req.kind == JobKind::Retry {
            return Ok(RunOutcome { summary: "second time lucky".into(), ..Default::default() });
        }
        progress.send(Progress::Session { id: "sess-7".into() });
        until_cancelled(cancel).await
    });
    let (shutdown, join, handle) = spawn(fx.engine(exec.clone(), fast_config()));
    wait_for("the run", || exec.calls().len() == 1).await;
    assert!(matches!(handle.retry(&task.id).await, Err(Error::Conflict(_))), "running");

    assert!(handle.cancel(&task.id).await.unwrap());
    fx.wait_status(&task.id, TaskStatus::Failed).await;
    // The status is written first, the summary right after.
    wait_for("the cancellation's summary", || {
        fx.source.reports(&task.id).last().is_some_and(|r| r.kind == ReportKind::Summary)
    })
    .await;
    let last = fx.source.reports(&task.id).pop().unwrap();
    assert_eq!(last.kind, ReportKind::Summary);
    assert!(last.body.contains("Cancelled"), "{}", last.body);
    assert!(!handle.cancel(&task.id).await.unwrap(), "nothing left to cancel");
    let jobs = fx.queue.list(&JobFilter::task(task.id.clone()), Page::first(5)).await.unwrap();
    assert_eq!(jobs[0].state, JobState::Cancelled);

    let job = handle.retry(&task.id).await.unwrap();
    fx.wait_status(&task.id, TaskStatus::Done).await;
    stop(shutdown, join).await;
    let calls = exec.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].kind, JobKind::Retry);
    assert_eq!(calls[1].resume.as_deref(), Some("sess-7"));
    assert_eq!(fx.queue.get(job).await.unwrap().unwrap().state, JobState::Completed);
    assert!(
        matches!(handle.retry(&task.id).await, Err(Error::Conflict(_))),
        "done tasks are not retried"
    );
    assert!(matches!(handle.retry(&"nope".into()).await, Err(Error::NotFound { .. })));
}

#[tokio::test(start_paused = true)]
async fn the_handle_exposes_config_and_changes_it_live() {
    let fx = Fixture::new();
    // No watch stream: only the poll interval finds new tasks.
    let source = Counting::new(fx.source.clone());
    let engine = fx
        .builder(Scripted::ok("ok"), fx.queue.clone(), paused_config())
        .source(source)
        .build()
        .unwrap();
    let handle = engine.handle();
    assert_eq!(handle.config().workers, 3);
    handle.set_workers(5);
    handle.set_poll_interval(Duration::from_millis(30));
    assert_eq!(handle.config().workers, 5);
    assert_eq!(handle.config().poll_interval, Duration::from_millis(30));
    let (shutdown, join, handle) = spawn(engine);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let task = fx.source.add("Summarise", "");
    // Well before the 30 s default would poll again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fx.status(&task.id), TaskStatus::Done);
    handle.set_poll_interval(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = fx.source.add("Summarise", "");
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(fx.status(&later.id), TaskStatus::Todo, "the hour-long interval is honoured");
    handle.wake();
    fx.wait_status(&later.id, TaskStatus::Done).await;
    assert_eq!(handle.tasks().len(), 2);
    assert_eq!(handle.task(&task.id).unwrap().status, TaskStatus::Done);
    stop(shutdown, join).await;
}

#[tokio::test]
async fn the_builder_names_missing_parts_and_bad_config_and_run_is_exclusive() {
    let fx = Fixture::new();
    let err = agentflow_core::Engine::builder()
        .queue(fx.queue.clone())
        .executor(Scripted::ok("ok"))
        .store(fx.store.clone())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("engine.source"), "{err}");
    let err = fx
        .builder(
            Scripted::ok("ok"),
            fx.queue.clone(),
            EngineConfig { workers: 0, ..paused_config() },
        )
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("workers"), "{err}");

    let engine = Arc::new(fx.engine(Scripted::ok("ok"), paused_config()));
    let shutdown = agentflow_core::CancellationToken::new();
    let first = tokio::spawn({
        let (engine, shutdown) = (engine.clone(), shutdown.clone());
        async move { engine.run(shutdown).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = engine.run(shutdown.clone()).await;
    assert!(matches!(second, Err(Error::Conflict(_))), "{second:?}");
    shutdown.cancel();
    first.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn source_events_and_queue_wakeups_start_work_before_the_next_poll() {
    let fx = Fixture::new();
    let hour = Duration::from_secs(3600);
    let config = EngineConfig {
        poll_interval: hour,
        feedback_interval: hour,
        queue_poll_interval: hour,
        reaper_interval: hour,
        ..paused_config()
    };
    let exec = Scripted::ok("ok");
    let (shutdown, join, _) = spawn(fx.engine(exec.clone(), config));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A task added in Todo: the source's watch stream wakes the poller.
    let pushed = fx.source.add("Summarise", "");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(fx.status(&pushed.id), TaskStatus::Done);

    // A job enqueued by someone else: the queue's wakeup stream wakes the workers.
    let mut t = Task::new("direct", "DIR-1", "Summarise");
    t.status = TaskStatus::InProgress;
    let direct = fx.source.add_task(t).unwrap();
    fx.queue
        .enqueue(agentflow_core::JobSpec::new(JobKind::Execute, direct.id.clone()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(fx.status(&direct.id), TaskStatus::Done);
    stop(shutdown, join).await;
    assert_eq!(exec.calls().len(), 2);
}
