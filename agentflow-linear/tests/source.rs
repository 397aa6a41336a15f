//! LinearSource against the fake Linear: discovery, request economy, claims, state mapping,
//! reports and feedback.

#[path = "support/helpers.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use agentflow_core::memory::MemoryQueue;
use agentflow_core::{
    Enqueued, Error, JobKind, JobQueue, JobSpec, Report, ReportKind, TaskId, TaskSource, TaskStatus,
};
use agentflow_linear::{LinearConfig, LinearSource};
use agentflow_testkit::fake_linear::{CommentAuthor, FakeLinear, NewIssue};

fn human() -> CommentAuthor {
    CommentAuthor::User(FakeLinear::HUMAN_ID.to_owned())
}

#[tokio::test]
async fn discovery_walks_pages_and_keeps_only_todo_issues_of_our_teams_and_labels() {
    let (fake, _) = support::setup().await;
    fake.add_team("OPS");
    let todo = fake.create_issues("ENG", "Todo", "todo", 120);
    fake.create_issues("ENG", "Backlog", "backlog", 5);
    fake.create_issues("OPS", "Todo", "other team", 5);

    let mut config = support::config(&fake);
    config.page_size = 50;
    let source = LinearSource::connect(config).await.unwrap();
    fake.reset_requests();
    let ready = source.ready(1000).await.unwrap();
    assert_eq!(ready.len(), 120);
    assert!(ready.iter().all(|t| t.status == TaskStatus::Todo && t.key.starts_with("ENG-")));
    let mut ids: Vec<_> = ready.iter().map(|t| t.id.0.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 120, "no issue is returned twice across pages");
    assert_eq!(fake.requests("AgentflowIssues"), 3, "120 issues in pages of 50");
    assert!(todo.iter().all(|i| ids.contains(&i.id)));

    // `limit` stops early: one page.
    fake.reset_requests();
    assert_eq!(source.ready(10).await.unwrap().len(), 10);
    assert_eq!(fake.total_requests(), 1);

    // The label filter narrows discovery on the server side.
    let labelled = fake.create_issue(NewIssue::new("ENG", "labelled").label("agent").priority(1));
    let mut config = support::config(&fake);
    config.labels = vec!["agent".into()];
    let source = LinearSource::connect(config).await.unwrap();
    let ready = source.ready(100).await.unwrap();
    assert_eq!(ready.iter().map(|t| t.id.0.as_str()).collect::<Vec<_>>(), [labelled.id.as_str()]);
    assert_eq!(ready[0].labels, ["agent"]);
    assert_eq!(ready[0].priority, agentflow_core::Priority::URGENT);
}

#[tokio::test]
async fn requests_per_cycle_stay_constant_as_issues_grow() {
    let mut per_size = Vec::new();
    for size in [1usize, 50, 500] {
        let (fake, source) = support::setup().await;
        let issues = fake.create_issues("ENG", "Todo", "t", size);
        let in_review = fake.create_issues("ENG", "In Review", "r", size);
        // Feedback pages by new comments (a handful per cycle), never by issues.
        for issue in in_review.iter().rev().take(3) {
            fake.add_comment(&issue.id, human(), "please change this");
        }
        let running: Vec<TaskId> = issues.iter().map(|i| TaskId(i.id.clone())).take(200).collect();
        fake.reset_requests();

        // One poll cycle of the engine: discovery, feedback, the batched status look-up.
        let ready = source.ready(50).await.unwrap();
        let batch = source.feedback(None).await.unwrap();
        let statuses = source.statuses(&running).await.unwrap();
        assert_eq!(ready.len(), size.min(50));
        assert_eq!(statuses.len(), running.len());
        assert_eq!(batch.items.len(), size.min(3));
        per_size.push((
            size,
            fake.requests("AgentflowIssues"),
            fake.requests("AgentflowIssueStates"),
            fake.total_requests(),
        ));
    }
    eprintln!("(size, issues requests, issue-state requests, total) = {per_size:?}");
    for (size, issues, states, total) in &per_size {
        assert_eq!((*issues, *states, *total), (1, 1, 3), "at {size} issues: {per_size:?}");
    }
}

#[tokio::test]
async fn claim_moves_todo_only_and_returns_false_when_a_human_moved_it() {
    let (fake, source) = support::setup().await;
    let issue = fake.create_issue(NewIssue::new("ENG", "claim me"));
    let id = TaskId(issue.id.clone());
    assert!(source.claim(&id).await.unwrap());
    assert_eq!(fake.issue_state_name(&issue.id).as_deref(), Some("In Progress"));
    assert!(!source.claim(&id).await.unwrap());

    let moved = fake.create_issue(NewIssue::new("ENG", "moved by a human"));
    fake.move_issue(&moved.id, "Canceled");
    fake.reset_requests();
    assert!(!source.claim(&TaskId(moved.id.clone())).await.unwrap());
    assert_eq!(fake.issue_state_name(&moved.id).as_deref(), Some("Canceled"));
    assert_eq!(fake.requests("AgentflowIssueUpdateState"), 0, "a refused claim writes nothing");

    let err = source.claim(&TaskId("issue-does-not-exist".into())).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claim_race_runs_once_because_the_queue_key_decides() {
    let fake = FakeLinear::start().await;
    let issue = fake.create_issue(NewIssue::new("ENG", "contended"));
    let queue: Arc<dyn JobQueue> = Arc::new(MemoryQueue::new());
    let engines: Vec<LinearSource> =
        futures::future::join_all((0..2).map(|_| LinearSource::connect(support::config(&fake))))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();

    // Both engines discover the issue before either claims it, the worst interleaving.
    let discovered = Arc::new(tokio::sync::Barrier::new(2));
    let attempts = engines.iter().map(|source| {
        let queue = queue.clone();
        let source = source.clone();
        let discovered = discovered.clone();
        async move {
            let ready = source.ready(10).await.unwrap();
            discovered.wait().await;
            let task = ready.into_iter().next().expect("both engines discover the issue");
            // Linear has no compare-and-set: both may see Todo and both may move it.
            let claimed = source.claim(&task.id).await.unwrap();
            let enqueued = queue
                .enqueue(
                    JobSpec::new(JobKind::Execute, task.id.clone())
                        .unique_key(format!("execute:{}", task.id)),
                )
                .await
                .unwrap();
            (claimed, enqueued)
        }
    });
    let results = futures::future::join_all(attempts).await;
    let new = results.iter().filter(|(_, e)| matches!(e, Enqueued::New(_))).count();
    let existing = results.iter().filter(|(_, e)| matches!(e, Enqueued::Existing(_))).count();
    assert_eq!((new, existing), (1, 1), "{results:?}");
    assert!(results.iter().any(|(claimed, _)| *claimed));
    assert_eq!(fake.issue_state_name(&issue.id).as_deref(), Some("In Progress"));
    assert_eq!(queue.stats().await.unwrap().available, 1, "one job, so one run");
}

#[tokio::test]
async fn a_missing_state_name_is_a_config_error_listing_the_real_states() {
    let fake = FakeLinear::start().await;
    fake.add_team_with_states(
        "MIN",
        &[("Todo", "unstarted"), ("Doing", "started"), ("Done", "completed")],
    );
    let mut config = support::config(&fake);
    config.teams = vec!["MIN".into()];
    let err = LinearSource::connect(config.clone()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::InvalidConfig { ref key, .. } if key == "linear.states.in_progress"),
        "{text}"
    );
    assert!(
        text.contains("\"Doing\"") && text.contains("\"Todo\"") && text.contains("\"Done\""),
        "{text}"
    );

    config.states.in_progress = "Doing".into();
    config.states.in_review = "Doing".into();
    config.states.failed = "Done".into();
    LinearSource::connect(config.clone()).await.expect("every mapped state exists now");

    config.teams = vec!["NOPE".into()];
    let err = LinearSource::connect(config).await.unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { ref key, .. } if key == "linear.teams"), "{err}");
    assert!(err.to_string().contains("`NOPE` not found"), "names the team: {err}");
}

#[tokio::test]
async fn invalid_configs_are_refused_before_any_request() {
    let mut c = LinearConfig::with_api_key("k", &Vec::<String>::new());
    assert!(
        matches!(LinearSource::new(c.clone()), Err(Error::InvalidConfig { key, .. }) if key == "linear.teams")
    );
    c.teams = vec!["ENG".into()];
    c.oauth_token = Some("t".to_owned().into());
    assert!(
        matches!(LinearSource::new(c), Err(Error::InvalidConfig { key, .. }) if key == "linear.oauth_token")
    );
    let parsed: Result<LinearConfig, _> =
        toml::from_str("api_key = \"k\"\nteams = [\"ENG\"]\nbogus = 1\n");
    assert!(parsed.is_err(), "unknown keys are refused");
    let config = LinearConfig::with_api_key("lin_api_secret_value", &["ENG"]);
    let debug = format!("{config:?}");
    assert!(!debug.contains("lin_api_secret_value"), "{debug}");
    let source = LinearSource::new(config).unwrap();
    let hooks = source.webhooks("webhook_secret_value".to_owned().into());
    let debug = format!("{source:?} {hooks:?}");
    assert!(!debug.contains("secret_value"), "{debug}");
}

#[tokio::test]
async fn oauth_tokens_are_sent_as_bearer() {
    let fake = FakeLinear::start().await;
    fake.create_issue(NewIssue::new("ENG", "via oauth"));
    let mut config = LinearConfig::with_oauth_token(FakeLinear::OAUTH_TOKEN, &["ENG"]);
    config.api_url = fake.url();
    let source = LinearSource::connect(config).await.expect("the fake accepts Bearer <token>");
    assert_eq!(source.ready(5).await.unwrap().len(), 1);

    // The OAuth token sent as a bare key is refused: the two forms are not interchangeable.
    let mut wrong = LinearConfig::with_api_key(FakeLinear::OAUTH_TOKEN, &["ENG"]);
    wrong.api_url = fake.url();
    assert!(matches!(LinearSource::connect(wrong).await, Err(Error::InvalidConfig { .. })));
}

#[tokio::test]
async fn progress_is_created_then_edited_and_summaries_are_new_comments() {
    let (fake, source) = support::setup().await;
    let issue = fake.create_issue(NewIssue::new("ENG", "report"));
    let id = TaskId(issue.id.clone());
    let report = |run: &str, kind, body: &str| Report { run: run.into(), kind, body: body.into() };

    source.report(&id, &report("run-1", ReportKind::Progress, "step 1")).await.unwrap();
    source.report(&id, &report("run-1", ReportKind::Progress, "step 2")).await.unwrap();
    source.report(&id, &report("run-1", ReportKind::Progress, "step 3")).await.unwrap();
    let comments = fake.comments(&issue.id);
    assert_eq!(comments.len(), 1);
    assert_eq!((comments[0].body.as_str(), comments[0].edits), ("step 3", 2));
    assert_eq!(fake.requests("AgentflowCommentCreate"), 1);
    assert_eq!(fake.requests("AgentflowCommentUpdate"), 2);

    // Another run gets its own progress comment; the summary is a new comment.
    source.report(&id, &report("run-2", ReportKind::Progress, "retrying")).await.unwrap();
    source.report(&id, &report("run-2", ReportKind::Summary, "All done.")).await.unwrap();
    let bodies: Vec<_> = fake.comments(&issue.id).into_iter().map(|c| c.body).collect();
    assert_eq!(bodies, ["step 3", "retrying", "All done."]);

    // Bodies are cut below the limit, safely.
    let mut config = support::config(&fake);
    config.max_comment_chars = 200;
    let small = LinearSource::connect(config).await.unwrap();
    let long = format!("```\n{}", "é".repeat(1000));
    small.report(&id, &report("run-3", ReportKind::Summary, &long)).await.unwrap();
    let last = fake.comments(&issue.id).pop().unwrap();
    assert!(last.body.chars().count() <= 200, "{}", last.body.chars().count());
    assert!(last.body.contains("truncated"));
}

#[tokio::test]
async fn feedback_advances_its_cursor_and_skips_our_own_comments() {
    let (fake, source) = support::setup().await;
    let review = fake.create_issue(NewIssue::new("ENG", "in review").state("In Review"));
    let working = fake.create_issue(NewIssue::new("ENG", "in progress").state("In Progress"));
    let done = fake.create_issue(NewIssue::new("ENG", "done").state("Done"));
    let rid = TaskId(review.id.clone());

    // Ours in three ways: as the viewer, as an app actor, and one we posted through the source.
    fake.add_comment(&review.id, CommentAuthor::Viewer, "agentflow progress");
    fake.add_comment(&review.id, CommentAuthor::Bot("agentflow-app".into()), "bot note");
    source
        .report(
            &rid,
            &Report { run: "r".into(), kind: ReportKind::Summary, body: "summary".into() },
        )
        .await
        .unwrap();
    fake.add_comment(&done.id, human(), "thanks, all good");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let live = fake.add_comment(&working.id, human(), "also cover the CLI");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let first = fake.add_comment(&review.id, human(), "please add tests");

    // People's comments on In Progress (for the live run) and In Review issues, oldest first;
    // not on Done ones.
    let batch = source.feedback(None).await.unwrap();
    let got: Vec<_> = batch.items.iter().map(|f| (f.id.as_str(), f.body.as_str())).collect();
    assert_eq!(
        got,
        [(live.id.as_str(), "also cover the CLI"), (first.id.as_str(), "please add tests")]
    );
    assert_eq!(batch.items[0].task, TaskId(working.id.clone()));
    assert_eq!(batch.items[1].task, rid);
    assert_eq!(batch.items[1].author, "ada");
    let cursor = batch.cursor.expect("a cursor after seeing comments");

    let again = source.feedback(Some(&cursor)).await.unwrap();
    assert!(again.items.is_empty(), "nothing new: {again:?}");
    assert_eq!(again.cursor, None, "no comments: keep the cursor");

    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = fake.add_comment(&review.id, human(), "and docs");
    fake.add_comment(&review.id, CommentAuthor::Viewer, "on it");
    let next = source.feedback(Some(&cursor)).await.unwrap();
    assert_eq!(next.items.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), [second.id.as_str()]);
    assert!(next.cursor.unwrap() > cursor);
    assert_eq!(fake.requests("AgentflowComments"), 3, "one request per feedback poll");
}

#[tokio::test]
async fn a_comment_surfacing_late_with_an_older_timestamp_is_not_missed() {
    let (fake, source) = support::setup().await;
    let review = fake.create_issue(NewIssue::new("ENG", "in review").state("In Review"));
    let first = fake.add_comment(&review.id, human(), "first");
    let batch = source.feedback(None).await.unwrap();
    assert_eq!(batch.items.len(), 1);
    let cursor = batch.cursor.expect("a cursor");

    // Written a moment before `first` was polled, but visible only now.
    let stamped = first.created_at - chrono::Duration::milliseconds(500);
    let late = fake.add_late_comment(&review.id, human(), "late", stamped);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let newer = fake.add_comment(&review.id, human(), "newer");
    let next = source.feedback(Some(&cursor)).await.unwrap();
    let ids: Vec<&str> = next.items.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, [late.id.as_str(), newer.id.as_str()], "nothing missed, nothing twice");
    let cursor = next.cursor.expect("the cursor moves on");
    let again = source.feedback(Some(&cursor)).await.unwrap();
    assert!(again.items.is_empty(), "the overlap read again returns nothing twice: {again:?}");
}

#[tokio::test]
async fn a_state_id_linear_no_longer_knows_refreshes_the_cache() {
    let (fake, source) = support::setup().await;
    let issue = fake.create_issue(NewIssue::new("ENG", "stale states"));
    source.ready(1).await.unwrap();
    // An admin recreates the team's workflow: the ids we cached are gone.
    fake.replace_state("ENG", "Done");
    fake.reset_requests();
    source.set_status(&TaskId(issue.id.clone()), TaskStatus::Done).await.unwrap();
    assert_eq!(fake.issue_state_name(&issue.id).as_deref(), Some("Done"));
    assert_eq!(fake.requests("AgentflowBootstrap"), 1, "states re-read once");
    assert_eq!(fake.requests("AgentflowIssueUpdateState"), 2);
}

#[tokio::test]
async fn feedback_walks_comment_pages_within_one_poll() {
    let fake = FakeLinear::start().await;
    let mut config = support::config(&fake);
    config.page_size = 3;
    let source = LinearSource::connect(config).await.unwrap();
    let review = fake.create_issue(NewIssue::new("ENG", "busy review").state("In Review"));
    let written: Vec<String> =
        (0..7).map(|k| fake.add_comment(&review.id, human(), &format!("note {k}")).id).collect();
    fake.reset_requests();
    let batch = source.feedback(None).await.unwrap();
    let got: Vec<String> = batch.items.into_iter().map(|f| f.id).collect();
    assert_eq!(got, written, "all seven, oldest first, none twice");
    assert_eq!(fake.requests("AgentflowComments"), 3, "pages of 3: 3 + 3 + 1");
}
