//! Runs stopped from outside: a person moving the task, a manual cancel, then a manual retry.

use agentflow_core::{
    JobFilter, JobQueue, JobState, Page, RunFilter, RunStatus, StateStore, TaskStatus,
};

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_moved_out_of_in_progress_cancels_its_run_without_writing_back() {
    trace();
    let fx = Fixture::new();
    let task = fx.source.add("Summarise the logs", "");
    let exec = Scripted::new(|_, _, cancel| until_cancelled(cancel));
    let (shutdown, join, handle) = spawn(fx.engine(exec.clone(), fast_config()));
    wait_for("the run to start", || exec.calls().len() == 1).await;

    fx.source.move_to(&task.id, TaskStatus::Other).unwrap();
    wait_for("the run to be recorded as cancelled", || {
        handle
            .task(&task.id)
            .is_some_and(|u| u.error.as_deref().is_some_and(|e| e.contains("moved")))
    })
    .await;
    stop(shutdown, join).await;

    assert_eq!(fx.status(&task.id), TaskStatus::Other, "no status written back");
    let runs = fx.store.list_runs(&RunFilter::default(), Page::first(10)).await.unwrap();
    assert_eq!(runs.runs.len(), 1);
    assert_eq!(runs.runs[0].status, RunStatus::Cancelled);
    assert!(
        runs.runs[0].error.as_deref().unwrap().contains("moved the task to other"),
        "{:?}",
        runs.runs[0].error
    );
    let jobs = fx.queue.list(&JobFilter::task(task.id.clone()), Page::first(10)).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(!jobs[0].state.is_live(), "job ended: {:?}", jobs[0].state);
    assert_eq!(jobs[0].state, JobState::Failed);
    assert_eq!(exec.calls().len(), 1, "never run again");
}
