//! The cases themselves.

use std::sync::Arc;
use std::time::Duration;

use agentflow_core::{FeedbackBatch, Priority, Report, ReportKind, TaskId, TaskSource, TaskStatus};

use super::SourceFixture;

async fn status(src: &dyn TaskSource, id: &TaskId) -> TaskStatus {
    src.get(id)
        .await
        .unwrap_or_else(|e| panic!("get({id}) failed: {e}"))
        .unwrap_or_else(|| panic!("get({id}) returned None for an existing task"))
        .status
}

async fn ready_ids(src: &dyn TaskSource) -> Vec<TaskId> {
    let ready = src.ready(100).await.expect("ready");
    for t in &ready {
        assert_eq!(t.status, TaskStatus::Todo, "ready returned {} in {}", t.key, t.status);
    }
    ready.into_iter().map(|t| t.id).collect()
}

async fn feedback(src: &dyn TaskSource, cursor: Option<&str>) -> FeedbackBatch {
    src.feedback(cursor).await.unwrap_or_else(|e| panic!("feedback({cursor:?}) failed: {e}"))
}

fn report(run: &str, kind: ReportKind, body: &str) -> Report {
    Report { run: run.into(), kind, body: body.into() }
}

/// Let tracker timestamps move on, for sources whose cursors are times.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// `ready` returns Todo tasks (with their title, body and priority) and none in another status.
pub async fn ready_lists_todo_only(f: Arc<dyn SourceFixture>) {
    let src = f.source();
    let a = f.add_todo("Write a haiku", "About the sea.", Priority::NONE).await;
    let b = f.add_todo("Fix the login bug", "Users loop.", Priority::URGENT).await;
    let mut others = Vec::new();
    for status in [TaskStatus::InProgress, TaskStatus::InReview, TaskStatus::Done] {
        let id = f.add_todo(&format!("moved to {status}"), "", Priority::NONE).await;
        f.human_moves(&id, status).await;
        others.push(id);
    }
    let ready = src.ready(100).await.expect("ready");
    let ids: Vec<&TaskId> = ready.iter().map(|t| &t.id).collect();
    assert!(ids.contains(&&a) && ids.contains(&&b), "ready is missing a Todo task: {ids:?}");
    for id in &others {
        assert!(!ids.contains(&id), "ready returned {id}, which is not in Todo");
    }
    ready_ids(&*src).await;
    let haiku = ready.iter().find(|t| t.id == a).expect("task a");
    assert_eq!((haiku.title.as_str(), haiku.body.as_str()), ("Write a haiku", "About the sea."));
    assert!(!haiku.key.is_empty(), "a task has a human key");
    let urgent = ready.iter().find(|t| t.id == b).expect("task b");
    assert_eq!(urgent.priority, Priority::URGENT, "the task's priority is kept");
    assert!(src.ready(1).await.expect("ready").len() <= 1, "ready(1) returns at most one task");
}

/// `claim` moves a Todo task to In Progress and returns true; a second claim returns false and
/// changes nothing.
pub async fn claim_moves_todo_to_in_progress_once(f: Arc<dyn SourceFixture>) {
    let src = f.source();
    let id = f.add_todo("Claim me", "", Priority::NONE).await;
    assert!(src.claim(&id).await.expect("claim"), "claiming a Todo task returns true");
    assert_eq!(status(&*src, &id).await, TaskStatus::InProgress);
    assert!(!src.claim(&id).await.expect("claim"), "claiming it again returns false");
    assert_eq!(status(&*src, &id).await, TaskStatus::InProgress);
    assert!(!ready_ids(&*src).await.contains(&id), "a claimed task is not ready");
}

/// A task a person moved out of Todo cannot be claimed, and keeps the status the person set.
pub async fn claim_fails_after_human_moved_task(f: Arc<dyn SourceFixture>) {
    let src = f.source();
    for to in [TaskStatus::Done, TaskStatus::InProgress, TaskStatus::InReview] {
        let id = f.add_todo(&format!("Moved to {to}"), "", Priority::NONE).await;
        f.human_moves(&id, to).await;
        assert!(
            !src.claim(&id).await.expect("claim"),
            "claim of a task moved to {to} returned true"
        );
        assert_eq!(status(&*src, &id).await, to, "a failed claim changed the status");
    }
    let back = f.add_todo("Moved back", "", Priority::NONE).await;
    f.human_moves(&back, TaskStatus::InReview).await;
    f.human_moves(&back, TaskStatus::Todo).await;
    assert!(src.claim(&back).await.expect("claim"), "a task moved back to Todo can be claimed");
}

/// `set_status` sets every managed status, and the change reads back.
pub async fn set_status_changes_status(f: Arc<dyn SourceFixture>) {
    let src = f.source();
    let id = f.add_todo("Walk the lifecycle", "", Priority::NONE).await;
    for to in [
        TaskStatus::InProgress,
        TaskStatus::InReview,
        TaskStatus::Done,
        TaskStatus::Failed,
        TaskStatus::Todo,
    ] {
        src.set_status(&id, to).await.unwrap_or_else(|e| panic!("set_status({to}) failed: {e}"));
        assert_eq!(status(&*src, &id).await, to, "set_status({to}) did not stick");
    }
    assert!(ready_ids(&*src).await.contains(&id), "a task set back to Todo is ready");
}

/// `feedback` returns people's comments on In Review and In Progress tasks: not comments on
/// tasks in other statuses (Todo, Done), and never the source's own reports.
pub async fn feedback_only_human_comments_on_open_tasks(f: Arc<dyn SourceFixture>) {
    let src = f.source();
    let start = feedback(&*src, None).await.cursor;
    let review = f.add_todo("In review", "", Priority::NONE).await;
    f.human_moves(&review, TaskStatus::InReview).await;
    let progress = f.add_todo("In progress", "", Priority::NONE).await;
    f.human_moves(&progress, TaskStatus::InProgress).await;
    let done = f.add_todo("Done", "", Priority::NONE).await;
    f.human_moves(&done, TaskStatus::Done).await;
    let todo = f.add_todo("Todo", "", Priority::NONE).await;
    tick().await;

    src.report(&review, &report("run-1", ReportKind::Summary, "Done: wrote it."))
        .await
        .expect("report");
    src.report(&review, &report("run-1", ReportKind::Progress, "working")).await.expect("report");
    src.report(&progress, &report("run-2", ReportKind::Progress, "busy")).await.expect("report");
    let on_review = f.human_comments(&review, "Please make it shorter.").await;
    tick().await;
    let on_progress = f.human_comments(&progress, "Also update the docs.").await;
    f.human_comments(&done, "Thanks!").await;
    f.human_comments(&todo, "Not started yet.").await;

    let batch = feedback(&*src, start.as_deref()).await;
    let ids: Vec<&str> = batch.items.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [on_review.as_str(), on_progress.as_str()],
        "only the people's comments on the In Review and In Progress tasks, oldest first: \
         {batch:?}"
    );
    let item = &batch.items[0];
    assert_eq!(item.task, review);
    assert!(item.body.contains("Please make it shorter."), "the comment body: {:?}", item.body);
    assert!(!item.author.is_empty(), "the comment names its author");
    assert_eq!(batch.items[1].task, progress);
}

/// The cursor returned by `feedback` moves past what was returned, so a comment comes once, and
/// new comments come after, oldest first.
pub async fn feedback_cursor_advances(f: Arc<dyn SourceFixture>) {
    let src = f.source();
    let start = feedback(&*src, None).await.cursor;
    let id = f.add_todo("Review me", "", Priority::NONE).await;
    f.human_moves(&id, TaskStatus::InReview).await;
    tick().await;
    let first = f.human_comments(&id, "first").await;
    let batch = feedback(&*src, start.as_deref()).await;
    let got: Vec<&str> = batch.items.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(got, [first.as_str()]);
    let cursor = batch.cursor.or(start);

    let again = feedback(&*src, cursor.as_deref()).await;
    assert!(again.items.is_empty(), "a comment came twice: {:?}", again.items);
    let cursor = again.cursor.or(cursor);

    tick().await;
    let second = f.human_comments(&id, "second").await;
    tick().await;
    let third = f.human_comments(&id, "third").await;
    let batch = feedback(&*src, cursor.as_deref()).await;
    let got: Vec<&str> = batch.items.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(got, [second.as_str(), third.as_str()], "new comments, oldest first");
}

/// Progress reports of one run create one comment and then edit it; a summary is a new comment;
/// another run gets its own progress comment.
pub async fn progress_report_edits_one_comment(f: Arc<dyn SourceFixture>) {
    let src = f.source();
    let id = f.add_todo("Report on me", "", Priority::NONE).await;
    assert!(src.claim(&id).await.expect("claim"));
    src.report(&id, &report("run-1", ReportKind::Progress, "step one")).await.expect("report");
    let after_first = f.own_comments(&id).await;
    assert_eq!(after_first.len(), 1, "the first progress report creates a comment");
    assert!(after_first[0].body.contains("step one"), "{:?}", after_first[0].body);

    src.report(&id, &report("run-1", ReportKind::Progress, "step two")).await.expect("report");
    let after_second = f.own_comments(&id).await;
    assert_eq!(
        after_second.len(),
        1,
        "the second progress report edits the same comment: {after_second:?}"
    );
    assert_eq!(after_second[0].id, after_first[0].id, "same comment");
    assert!(
        after_second[0].body.contains("step two"),
        "edited in place: {:?}",
        after_second[0].body
    );

    src.report(&id, &report("run-1", ReportKind::Summary, "all done")).await.expect("report");
    let after_summary = f.own_comments(&id).await;
    assert_eq!(after_summary.len(), 2, "a summary is its own comment: {after_summary:?}");
    assert_eq!(after_summary[0].id, after_first[0].id);
    assert!(after_summary[1].body.contains("all done"));

    src.report(&id, &report("run-2", ReportKind::Progress, "retrying")).await.expect("report");
    let after_retry = f.own_comments(&id).await;
    assert_eq!(after_retry.len(), 3, "another run gets its own progress comment: {after_retry:?}");
    assert!(after_retry[2].body.contains("retrying"));
}

/// `get`, `list(status)` and the batched `statuses` agree with what people did.
pub async fn get_list_and_statuses(f: Arc<dyn SourceFixture>) {
    let src = f.source();
    let a = f.add_todo("Alpha", "first body", Priority::HIGH).await;
    let b = f.add_todo("Beta", "", Priority::NONE).await;
    let c = f.add_todo("Gamma", "", Priority::LOW).await;
    f.human_moves(&c, TaskStatus::Done).await;

    let task = src.get(&a).await.expect("get").expect("task a");
    assert_eq!(
        (task.id.clone(), task.title.as_str(), task.body.as_str()),
        (a.clone(), "Alpha", "first body")
    );
    assert_eq!((task.status, task.priority), (TaskStatus::Todo, Priority::HIGH));

    let todo: Vec<TaskId> =
        src.list(TaskStatus::Todo).await.expect("list").into_iter().map(|t| t.id).collect();
    assert!(todo.contains(&a) && todo.contains(&b) && !todo.contains(&c), "list(Todo): {todo:?}");
    let done = src.list(TaskStatus::Done).await.expect("list");
    assert!(done.iter().any(|t| t.id == c), "list(Done) is missing the task moved to Done");
    assert!(
        done.iter().all(|t| t.status == TaskStatus::Done),
        "list(Done) returned another status"
    );

    let statuses = src.statuses(&[a.clone(), b.clone(), c.clone()]).await.expect("statuses");
    assert_eq!(statuses.len(), 3, "{statuses:?}");
    assert_eq!(
        (statuses[&a], statuses[&b], statuses[&c]),
        (TaskStatus::Todo, TaskStatus::Todo, TaskStatus::Done)
    );
    assert!(src.statuses(&[]).await.expect("statuses of nothing").is_empty());
}
