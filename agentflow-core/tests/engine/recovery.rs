//! Crashes and restarts: lease expiry, startup reconciliation, graceful shutdown, lost leases.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use agentflow_core::engine::EngineConfig;
use agentflow_core::{
    Error, JobFilter, JobQueue, JobState, Page, ReportKind, RunFilter, RunOutcome, RunStatus,
    Session, StateStore, Task, TaskId, TaskStatus, ToolProvider, ToolServer, async_trait,
};
use agentflow_core::{Result, RunId};

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_engine_s_job_is_finished_exactly_once_by_another_after_its_lease_expires() {
    trace();
    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let config = EngineConfig {
        lease: Duration::from_millis(300),
        reaper_interval: Duration::from_millis(100),
        ..fast_config()
    };
    // Engine A starts the job and is dropped mid-run, without shutdown.
    let hung = Scripted::new(|_, _, cancel| until_cancelled(cancel));
    let (_never, join_a, _) = spawn(fx.engine(hung.clone(), config.clone()));
    wait_for("engine A to start the run", || hung.calls().len() == 1).await;
    join_a.abort();
    let _ = join_a.await;

    // Engine B picks the job up once A's lease expires, and finishes it.
    let queue = Intercept::new(fx.queue.clone());
    let exec = Scripted::ok("finished by B");
    let (shutdown, join_b, _) = spawn(fx.engine_with_queue(exec.clone(), queue.clone(), config));
    fx.wait_status(&task.id, TaskStatus::Done).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop(shutdown, join_b).await;

    assert_eq!(hung.calls().len(), 1, "A never ran it again");
    assert_eq!(exec.calls().len(), 1, "B ran it once");
    assert_eq!(exec.calls()[0].attempt, 2, "A's attempt counted");
    assert_eq!(queue.completes.load(Ordering::SeqCst), 1, "completed exactly once");
    let jobs = fx.queue.list(&JobFilter::task(task.id.clone()), Page::first(5)).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, JobState::Completed);
    let runs = fx.store.list_runs(&RunFilter::default(), Page::first(5)).await.unwrap();
    let succeeded = runs.runs.iter().filter(|r| r.status == RunStatus::Succeeded).count();
    assert_eq!(succeeded, 1);
    // A's run does not stay "running" forever: B closed it when it took the job over.
    assert_eq!(runs.runs.len(), 2, "{runs:?}");
    let a = runs.runs.iter().find(|r| r.status != RunStatus::Succeeded).unwrap();
    assert_eq!(a.status, RunStatus::Cancelled, "{a:?}");
    assert!(a.error.as_deref().is_some_and(|e| e.contains("abandoned")), "{a:?}");
    assert!(a.finished_at.is_some());
}

#[tokio::test(start_paused = true)]
async fn an_in_progress_task_without_a_job_is_enqueued_again_on_start_resuming_its_session() {
    let fx = Fixture::new();
    let mut t = Task::new("orphan", "ORP-1", "Summarise");
    t.status = TaskStatus::InProgress;
    fx.source.add_task(t).unwrap();
    let id = "orphan".into();
    fx.store
        .put_session(&Session {
            task: "orphan".into(),
            session_id: "sess-old".into(),
            workspace: None,
            usage: Default::default(),
            updated_at: chrono::Utc::now() - chrono::Duration::hours(1),
        })
        .await
        .unwrap();
    let exec = Scripted::ok("healed");
    let (shutdown, join, _) = spawn(fx.engine(exec.clone(), paused_config()));
    fx.wait_status(&id, TaskStatus::Done).await;
    stop(shutdown, join).await;
    let calls = exec.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].resume.as_deref(), Some("sess-old"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_progress_task_that_loses_its_job_under_a_running_engine_is_enqueued_again() {
    let fx = Fixture::new();
    let first = fx.source.add("Summarise first", "");
    let config = EngineConfig { reconcile_interval: Duration::from_millis(100), ..fast_config() };
    let exec = Scripted::ok("healed");
    let (shutdown, join, _) = spawn(fx.engine(exec.clone(), config));
    // The engine is past its start-up reconciliation once it has finished a task.
    fx.wait_status(&first.id, TaskStatus::Done).await;
    // As if the queue had been wiped under it: In Progress in the tracker, no job anywhere.
    let mut lost = Task::new("lost", "LOST-1", "Summarise lost");
    lost.status = TaskStatus::InProgress;
    fx.source.add_task(lost).unwrap();
    fx.wait_status(&"lost".into(), TaskStatus::Done).await;
    stop(shutdown, join).await;
    let calls = exec.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let jobs = fx.queue.list(&JobFilter::task("lost"), Page::first(5)).await.unwrap();
    assert_eq!(jobs.len(), 1, "enqueued once: {jobs:?}");
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_grace_period_then_releases_without_using_the_attempt() {
    let fx = Fixture::new();
    let quick = fx.source.add("Summarise quick", "");
    let slow = fx.source.add("Summarise slow", "");
    let exec = Scripted::new(|req, _, cancel| async move {
        if req.task.title.ends_with("quick") {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(RunOutcome { summary: "quick one".into(), ..Default::default() })
        } else {
            until_cancelled(cancel).await
        }
    });
    let config = EngineConfig { shutdown_grace: Duration::from_secs(5), ..paused_config() };
    let (shutdown, join, _) = spawn(fx.engine(exec.clone(), config));
    wait_for("both runs", || exec.calls().len() == 2).await;
    stop(shutdown, join).await;

    assert_eq!(fx.status(&quick.id), TaskStatus::Done, "finished within the grace period");
    assert_eq!(fx.status(&slow.id), TaskStatus::InProgress, "no status written for a release");
    let job =
        fx.queue.list(&JobFilter::task(slow.id.clone()), Page::first(1)).await.unwrap().remove(0);
    assert_eq!(job.state, JobState::Available);
    assert_eq!(job.attempt, 0, "the attempt was given back");
    let runs = fx
        .store
        .list_runs(&RunFilter { task: Some(slow.id.clone()), ..Default::default() }, Page::first(1))
        .await
        .unwrap();
    assert_eq!(runs.runs[0].status, RunStatus::Cancelled);
    assert!(runs.runs[0].error.as_deref().unwrap().contains("shut down"));
}

#[tokio::test(start_paused = true)]
async fn a_lost_lease_cancels_the_run_and_nothing_is_completed_or_written() {
    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let queue = Intercept::new(fx.queue.clone());
    queue.lose_lease.store(true, Ordering::SeqCst);
    let exec = Scripted::new(|_, _, cancel| until_cancelled(cancel));
    let (shutdown, join, handle) =
        spawn(fx.engine_with_queue(exec.clone(), queue.clone(), paused_config()));
    wait_for("the run to stop", || {
        handle.task(&task.id).and_then(|u| u.error).is_some_and(|e| e.contains("lease"))
    })
    .await;
    assert_eq!(exec.calls().len(), 1);
    stop(shutdown, join).await;
    assert_eq!(queue.completes.load(Ordering::SeqCst), 0);
    assert!(queue.delays_secs().is_empty(), "no fail either: the job is someone else's now");
    assert_eq!(fx.status(&task.id), TaskStatus::InProgress);
    let run =
        fx.store.list_runs(&RunFilter::default(), Page::first(1)).await.unwrap().runs.remove(0);
    assert!(run.error.unwrap().contains("lease"));
}

/// Records grants and revocations.
#[derive(Default)]
struct Tools {
    log: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl ToolProvider for Tools {
    async fn grant(&self, task: &Task, run: RunId, _ttl: Duration) -> Result<Vec<ToolServer>> {
        self.log.lock().unwrap().push(format!("grant {} {run}", task.key));
        Ok(vec![ToolServer {
            name: "linear".into(),
            url: "http://127.0.0.1:1/mcp".into(),
            headers: vec![("Authorization".into(), format!("Bearer {run}"))],
            tools: vec!["add_comment".into()],
        }])
    }

    async fn revoke(&self, run: RunId) {
        self.log.lock().unwrap().push(format!("revoke {run}"));
    }
}

#[tokio::test(start_paused = true)]
async fn tools_are_granted_for_each_run_and_revoked_after() {
    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let tools = Arc::new(Tools::default());
    let exec = Scripted::new(|req, _, _| async move {
        assert_eq!(req.tool_servers.len(), 1);
        assert_eq!(req.tool_servers[0].headers[0].1, format!("Bearer {}", req.run));
        Ok(RunOutcome::default())
    });
    let engine = fx
        .builder(exec.clone(), fx.queue.clone(), paused_config())
        .tools(tools.clone())
        .build()
        .unwrap();
    let (shutdown, join, _) = spawn(engine);
    fx.wait_status(&task.id, TaskStatus::Done).await;
    stop(shutdown, join).await;
    let log = tools.log.lock().unwrap().clone();
    let run =
        fx.store.list_runs(&RunFilter::default(), Page::first(1)).await.unwrap().runs.remove(0);
    assert_eq!(log, [format!("grant LOC-1 {}", run.id), format!("revoke {}", run.id)]);
}

/// Runs engine A with a source that hangs at `stall` and a script that ends the run with
/// `outcome`, aborts it once the hang is reached (a daemon killed at that instant), then lets
/// engine B take the job over once A's lease expires (`meanwhile` runs in between). Returns
/// the fixture, A's and B's executors and the task.
async fn crash_at_the_end(
    stall: Stall,
    max_attempts: u32,
    outcome: fn() -> Result<RunOutcome>,
    meanwhile: fn(&Fixture, &TaskId),
) -> (Fixture, Arc<Scripted>, Arc<Scripted>, TaskId) {
    trace();
    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let config = EngineConfig {
        lease: Duration::from_millis(300),
        reaper_interval: Duration::from_millis(100),
        // A job on its last attempt is failed by the queue when its lease expires; then
        // reconciliation (two checks in a row) finds the ending.
        reconcile_interval: Duration::from_millis(200),
        max_attempts,
        ..fast_config()
    };
    let stalling = Counting::stalling_at(fx.source.clone(), Some(stall));
    let a_exec = Scripted::new(move |_, _, _| async move { outcome() });
    let a = fx
        .builder_on(stalling.clone(), a_exec.clone(), fx.queue.clone(), config.clone())
        .build()
        .unwrap();
    let (_never, join_a, _) = spawn(a);
    wait_for("engine A to hang at the end of the attempt", || {
        stalling.stalled.load(Ordering::SeqCst)
    })
    .await;
    join_a.abort();
    let _ = join_a.await;
    meanwhile(&fx, &task.id);

    let b_exec = Scripted::ok("B ran the agent again");
    let (shutdown, join_b, _) = spawn(fx.engine(b_exec.clone(), config));
    wait_for("a summary", || {
        fx.source.reports(&task.id).iter().any(|r| r.kind == ReportKind::Summary)
    })
    .await;
    for _ in 0..200 {
        let jobs = fx.queue.list(&JobFilter::task(task.id.clone()), Page::first(5)).await.unwrap();
        if jobs.iter().all(|j| !j.state.is_live()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(shutdown, join_b).await;
    (fx, a_exec, b_exec, task.id)
}

/// What every crash-at-the-end test checks: A ran the agent once, B never did; the task ended in
/// `status` with one summary containing `mark`; its one job ended in `job_state`.
async fn assert_ended_once(
    (fx, a, b, task): &(Fixture, Arc<Scripted>, Arc<Scripted>, TaskId),
    status: TaskStatus,
    mark: &str,
    job_state: JobState,
) -> agentflow_core::Job {
    assert_eq!(a.calls().len(), 1);
    assert!(b.calls().is_empty(), "the agent did not run again: {:?}", b.calls());
    assert_eq!(fx.status(task), status);
    let reports = fx.source.reports(task);
    let summaries: Vec<_> = reports.iter().filter(|r| r.kind == ReportKind::Summary).collect();
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert!(summaries[0].body.contains(mark), "{summaries:?}");
    let mut jobs = fx.queue.list(&JobFilter::task(task.clone()), Page::first(5)).await.unwrap();
    assert_eq!(jobs.len(), 1, "nothing enqueued again: {jobs:?}");
    assert_eq!(jobs[0].state, job_state);
    jobs.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_between_the_status_and_the_summary_leaves_its_summary_to_the_next() {
    let ok = || Ok(RunOutcome { summary: "all done by A".into(), ..Default::default() });
    let crashed = crash_at_the_end(Stall::Summary, 3, ok, |_, _| {}).await;
    assert_ended_once(&crashed, TaskStatus::Done, "all done by A", JobState::Completed).await;
    let runs = crashed.0.store.list_runs(&RunFilter::default(), Page::first(5)).await.unwrap();
    assert_eq!(runs.runs.len(), 1, "{runs:?}");
    assert_eq!(runs.runs[0].status, RunStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_before_the_status_write_of_a_finished_run_does_not_run_it_again() {
    let ok = || Ok(RunOutcome { summary: "all done by A".into(), ..Default::default() });
    let crashed = crash_at_the_end(Stall::Status(TaskStatus::Done), 3, ok, |_, _| {}).await;
    assert_ended_once(&crashed, TaskStatus::Done, "all done by A", JobState::Completed).await;
}

/// A non-retryable failure ends the task whatever attempts are left; the next attempt of the
/// job (its lease expired and it was retried) finishes the failure instead of running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_failing_a_task_for_good_leaves_the_failure_to_the_next() {
    let fail = || Err(Error::executor("the model refused", false));
    let crashed = crash_at_the_end(Stall::Status(TaskStatus::Failed), 3, fail, |_, _| {}).await;
    let job =
        assert_ended_once(&crashed, TaskStatus::Failed, "the model refused", JobState::Failed)
            .await;
    assert_eq!(job.last_error.as_deref(), Some("executor failed: the model refused"));
}

/// On the last attempt the queue fails the job itself when the lease expires, so no worker takes
/// it over: reconciliation finds the task In Progress without a live job and finishes the
/// recorded failure rather than enqueueing the task again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_failing_its_last_attempt_leaves_the_failure_to_reconciliation() {
    let fail = || Err(Error::executor("the model refused", true));
    let crashed = crash_at_the_end(Stall::Status(TaskStatus::Failed), 1, fail, |_, _| {}).await;
    assert_ended_once(&crashed, TaskStatus::Failed, "the model refused", JobState::Failed).await;
}

/// A tracker slower than the lease while the end of an attempt is written: the worker keeps its
/// lease alive meanwhile, so nobody takes the job over and nothing is written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracker_slower_than_the_lease_at_the_end_neither_loses_the_lease_nor_writes_twice() {
    trace();
    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let config = EngineConfig {
        lease: Duration::from_millis(300),
        reaper_interval: Duration::from_millis(50),
        ..fast_config()
    };
    let slow = Counting::new(fx.source.clone());
    *slow.slow.lock().unwrap() =
        Some((Stall::Status(TaskStatus::Done), Duration::from_millis(1500)));
    let exec = Scripted::ok("all done");
    let queue = Intercept::new(fx.queue.clone());
    let engine = fx.builder_on(slow.clone(), exec.clone(), queue.clone(), config).build().unwrap();
    let (shutdown, join, _) = spawn(engine);
    wait_for("a summary", || {
        fx.source.reports(&task.id).iter().any(|r| r.kind == ReportKind::Summary)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop(shutdown, join).await;
    assert_eq!(exec.calls().len(), 1);
    let reports = fx.source.reports(&task.id);
    let summaries = reports.iter().filter(|r| r.kind == ReportKind::Summary).count();
    assert_eq!(summaries, 1, "{reports:?}");
    assert_eq!(queue.completes.load(Ordering::SeqCst), 1, "completed once, by its worker");
    let jobs = fx.queue.list(&JobFilter::task(task.id.clone()), Page::first(5)).await.unwrap();
    assert_eq!(jobs[0].state, JobState::Completed);
    assert_eq!(jobs[0].attempt, 1, "never taken over: {jobs:?}");
}

/// A person moved the task (here out of the flow) after A wrote the status and before the
/// summary: B posts the summary but leaves the task where the person put it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_ending_leaves_a_task_a_person_moved_meanwhile_where_it_is() {
    let ok = || Ok(RunOutcome { summary: "all done by A".into(), ..Default::default() });
    let moved = |fx: &Fixture, task: &TaskId| fx.source.move_to(task, TaskStatus::Other).unwrap();
    let crashed = crash_at_the_end(Stall::Summary, 3, ok, moved).await;
    assert_ended_once(&crashed, TaskStatus::Other, "all done by A", JobState::Completed).await;
}
