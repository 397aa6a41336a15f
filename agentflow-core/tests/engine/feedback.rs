//! Feedback: comments on a task in review resume its stored session, once each; comments on a
//! running task reach the live run, or wait for its end.

use std::sync::Arc;
use std::sync::Mutex;

use agentflow_core::memory::LocalSource;
use agentflow_core::{
    JobFilter, JobKind, JobQueue, Page, Progress, RunOutcome, StateStore, TaskStatus,
};

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_resumes_the_stored_session_once_and_the_task_is_in_progress_meanwhile() {
    trace();
    let fx = Fixture::new();
    let task = fx.source.add("Write a haiku", "");
    let source: LocalSource = fx.source.clone();
    let status_during_feedback = Arc::new(Mutex::new(None));
    let seen = status_during_feedback.clone();
    let exec = Scripted::new(move |req, progress, _| {
        let source = source.clone();
        let seen = seen.clone();
        async move {
            if req.kind == JobKind::Feedback {
                *seen.lock().unwrap() = source.task(&req.task.id).map(|t| t.status);
                Ok(RunOutcome { summary: "revised".into(), ..Default::default() })
            } else {
                progress.send(Progress::Session { id: "sess-1".into() });
                Ok(RunOutcome { summary: "first draft".into(), ..Default::default() })
            }
        }
    });
    let (shutdown, join, _) = spawn(fx.engine(exec.clone(), fast_config()));
    fx.wait_status(&task.id, TaskStatus::InReview).await;
    assert_eq!(exec.calls().len(), 1);

    fx.source.comment(&task.id, "Ada", "Make it rhyme").unwrap();
    wait_for("the feedback run", || exec.calls().len() == 2).await;
    fx.wait_status(&task.id, TaskStatus::InReview).await;
    // A few more poll cycles: the comment is not processed twice, our own reports never count.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    stop(shutdown, join).await;

    let calls = exec.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1].kind, JobKind::Feedback);
    assert_eq!(calls[1].resume.as_deref(), Some("sess-1"));
    assert_eq!(calls[1].feedback, ["Make it rhyme"]);
    assert_eq!(*status_during_feedback.lock().unwrap(), Some(TaskStatus::InProgress));
    let filter = JobFilter { kind: Some(JobKind::Feedback), ..JobFilter::task(task.id.clone()) };
    let jobs = fx.queue.list(&filter, Page::first(5)).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].unique_key.as_deref(), Some(format!("feedback:{}", task.id).as_str()));
    let comment_ids = &jobs[0].payload["comments"];
    assert_eq!(comment_ids.as_array().map(Vec::len), Some(1), "{comment_ids}");
    assert!(!fx.store.mark_processed(comment_ids[0].as_str().unwrap()).await.unwrap(), "marked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_arriving_while_a_feedback_job_waits_join_it() {
    let fx = Fixture::new();
    let task = fx.source.add("Write a haiku", "");
    let exec = Scripted::ok("draft");
    let (shutdown, join, handle) = spawn(fx.engine(exec.clone(), fast_config()));
    fx.wait_status(&task.id, TaskStatus::InReview).await;
    // Paused: the first comment's job waits in the queue, the second arrives meanwhile.
    handle.pause();
    fx.source.comment(&task.id, "Ada", "first").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    fx.source.comment(&task.id, "Bob", "second").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(exec.calls().len(), 1, "nothing runs while paused");
    handle.resume();
    wait_for("the feedback run", || exec.calls().len() == 2).await;
    fx.wait_status(&task.id, TaskStatus::InReview).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop(shutdown, join).await;
    let calls = exec.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1].feedback, ["first", "second"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feedback_job_yields_to_the_execute_job_of_a_task_moved_back_to_todo() {
    let fx = Fixture::new();
    let task = fx.source.add("Write a haiku", "");
    let executes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let exec = Scripted::new(move |req, _, cancel| {
        let executes = executes.clone();
        async move {
            let n = if req.kind == JobKind::Execute {
                executes.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
            } else {
                0
            };
            if n == 2 {
                // The second Execute run holds the task In Progress until shutdown.
                return until_cancelled(cancel).await;
            }
            Ok(RunOutcome { summary: "draft".into(), ..Default::default() })
        }
    });
    let (shutdown, join, handle) = spawn(fx.engine(exec.clone(), fast_config()));
    fx.wait_status(&task.id, TaskStatus::InReview).await;
    // A comment queues a feedback job while paused; then a person sends the task back to Todo.
    handle.pause();
    fx.source.comment(&task.id, "Ada", "again").unwrap();
    wait_for("the feedback job", || {
        handle.task(&task.id).and_then(|u| u.kind) == Some(JobKind::Feedback)
    })
    .await;
    fx.source.move_to(&task.id, TaskStatus::Todo).unwrap();
    handle.resume();
    wait_for("the second execute run", || exec.calls().len() >= 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let kinds: Vec<JobKind> = exec.calls().iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [JobKind::Execute, JobKind::Execute], "the feedback job never ran");
    let filter = JobFilter { kind: Some(JobKind::Feedback), ..JobFilter::task(task.id.clone()) };
    let jobs = fx.queue.list(&filter, Page::first(5)).await.unwrap();
    assert!(!jobs[0].state.is_live(), "the feedback job was ended: {:?}", jobs[0].state);
    stop(shutdown, join).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_on_a_running_task_reaches_the_live_run() {
    let fx = Fixture::new();
    let task = fx.source.add("Write a haiku", "");
    // The run waits (at most 20 s) for a comment in its inbox and answers with it.
    let exec = Scripted::with_inbox(|mut req, _, _| async move {
        let inbox = req.inbox.as_mut().expect("an executor that accepts comments gets an inbox");
        let comment = tokio::time::timeout(std::time::Duration::from_secs(20), inbox.recv())
            .await
            .expect("a comment within 20 s")
            .expect("the inbox stays open during the run");
        Ok(RunOutcome {
            summary: format!("took into account: {}", comment.body),
            ..Default::default()
        })
    });
    let (shutdown, join, _) = spawn(fx.engine(exec.clone(), fast_config()));
    wait_for("the run", || exec.calls().len() == 1).await;
    fx.wait_status(&task.id, TaskStatus::InProgress).await;

    fx.source.comment(&task.id, "Ada", "Make it rhyme").unwrap();
    fx.wait_status(&task.id, TaskStatus::InReview).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop(shutdown, join).await;

    assert_eq!(exec.calls().len(), 1, "delivered live: no feedback run after it");
    let summaries: Vec<String> = fx.source.reports(&task.id).into_iter().map(|r| r.body).collect();
    assert!(
        summaries.iter().any(|s| s.contains("took into account: Make it rhyme")),
        "{summaries:?}"
    );
    let filter = JobFilter { kind: Some(JobKind::Feedback), ..JobFilter::task(task.id.clone()) };
    assert!(fx.queue.list(&filter, Page::first(5)).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_on_a_running_task_without_an_inbox_becomes_feedback_after_review() {
    let fx = Fixture::new();
    let task = fx.source.add("Write a haiku", "");
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = release.clone();
    // The first run holds until released (at most 20 s); it cannot take comments.
    let exec = Scripted::new(move |req, progress, _| {
        let gate = gate.clone();
        async move {
            if req.kind == JobKind::Execute {
                assert!(req.inbox.is_none(), "no inbox for an executor that does not read it");
                progress.send(Progress::Session { id: "sess-1".into() });
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(20), gate.notified()).await;
            }
            Ok(RunOutcome { summary: "draft".into(), ..Default::default() })
        }
    });
    let (shutdown, join, _) = spawn(fx.engine(exec.clone(), fast_config()));
    wait_for("the run", || exec.calls().len() == 1).await;
    fx.source.comment(&task.id, "Ada", "Make it rhyme").unwrap();
    // A few feedback cycles see the comment while the run goes on.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(exec.calls().len(), 1, "no second run while the first is live");
    release.notify_one();

    wait_for("the feedback run", || exec.calls().len() == 2).await;
    fx.wait_status(&task.id, TaskStatus::InReview).await;
    stop(shutdown, join).await;
    let calls = exec.calls();
    assert_eq!(calls[1].kind, JobKind::Feedback);
    assert_eq!(calls[1].resume.as_deref(), Some("sess-1"));
    assert_eq!(calls[1].feedback, ["Make it rhyme"]);
}
