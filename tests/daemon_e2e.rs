//! End to end: the built daemon binary (`examples/daemon`) as a separate process.
//!
//! - Against the fake Linear, the real Claude Code CLI and the fake Anthropic API, on SQLite: a
//!   Todo issue is claimed, run, and ends In Review (the review gate: its title says "Write"),
//!   with one progress comment edited in place and the summary posted; the agent's MCP call
//!   reaches Linear through the daemon's own listener; a human comment on the In Review issue
//!   resumes the same session (the model sees the earlier conversation) and the task ends In
//!   Review again, as the gate says.
//! - With the `command` executor and the local source: tasks added by `POST /api/tasks` and by
//!   `daemon task add` end Done and show in `/api/tasks`, `/api/runs` and the task's log; SIGTERM
//!   shuts down cleanly and the history survives a restart.

#[path = "daemon/support.rs"]
mod support;

use agentflow_testkit::fake_anthropic::{FakeAnthropic, Reply};
use agentflow_testkit::fake_linear::{CommentAuthor, FakeComment, FakeLinear, NewIssue};
use serde_json::{Value, json};
use support::{DaemonCmd, claude_bin};

const PROGRESS: &str = "⏳ **Working on it**";
const REVIEW: &str = "👀 **Ready for review**";

fn by_viewer(comments: &[FakeComment], prefix: &str) -> Vec<FakeComment> {
    comments
        .iter()
        .filter(|c| {
            c.user_id.as_deref() == Some(FakeLinear::VIEWER_ID) && c.body.starts_with(prefix)
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_issue_runs_through_the_real_cli_and_feedback_resumes_the_session() {
    let Some(claude) = claude_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let linear = FakeLinear::start().await;
    let anthropic = FakeAnthropic::start().await;

    // Run 1: a slow tool call (so the progress comment is edited after it is created), a call
    // of the issue-scoped Linear MCP tool, then the answer.
    anthropic.push(Reply::bash("sleep 1; echo 'queues wait in line' > haiku.txt"));
    anthropic.push(Reply::tool(
        "mcp__linear__add_comment",
        json!({ "body": "MCP-MARK: a note from the agent" }),
    ));
    anthropic.push(Reply::text("Wrote the haiku to haiku.txt. FIRST-MARK"));
    let issue = linear.create_issue(
        NewIssue::new("ENG", "Write a haiku about queues").description("In haiku.txt"),
    );

    let daemon = linear_claude_daemon(dir.path(), &linear, &anthropic, &claude)
        .env("AGENTFLOW_ENGINE_POLL_INTERVAL", "500ms")
        .env("AGENTFLOW_ENGINE_PROGRESS_INTERVAL", "100ms")
        .start();

    daemon
        .eventually("the issue to reach In Review", || async {
            support::settled(&linear, &issue.id, "In Review").then_some(())
        })
        .await;
    let comments = linear.comments(&issue.id);
    let progress = by_viewer(&comments, PROGRESS);
    assert_eq!(progress.len(), 1, "one progress comment for the run: {comments:#?}");
    assert!(progress[0].edits >= 1, "the progress comment is edited in place: {:#?}", progress[0]);
    assert!(progress[0].body.contains("sleep 1"), "it shows the tool call: {}", progress[0].body);
    let summaries = by_viewer(&comments, REVIEW);
    assert_eq!(summaries.len(), 1, "{comments:#?}");
    assert!(summaries[0].body.contains("FIRST-MARK"), "{}", summaries[0].body);
    assert!(
        comments.iter().any(|c| c.body == "MCP-MARK: a note from the agent"),
        "the agent's MCP comment reached Linear through the daemon: {comments:#?}"
    );
    let first_requests = anthropic.message_requests().len();
    assert_eq!(first_requests, 3, "one model request per scripted turn");

    // The dashboard tells the same story.
    let runs = daemon.get_json("/api/runs").await;
    let run = &runs["runs"][0];
    assert_eq!(run["status"], "succeeded", "{runs}");
    assert_eq!(run["task_key"], issue.identifier.as_str());
    let session = run["session_id"].as_str().expect("the run's session").to_owned();
    let logs = daemon.get_json(&format!("/api/tasks/{}/logs", issue.id)).await;
    assert!(logs["lines"].to_string().contains("FIRST-MARK"), "{logs}");
    // Linear's request counters and budget are on /metrics, and Linear is part of readiness.
    let metrics = daemon.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    let requests = metrics
        .body
        .lines()
        .find_map(|l| l.strip_prefix("agentflow_linear_requests_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(requests.is_some_and(|n| n >= 3.0), "Linear requests in /metrics: {}", metrics.body);
    assert!(
        metrics.body.contains("agentflow_linear_operation_requests_total{operation="),
        "{}",
        metrics.body
    );
    let health = daemon.get_json("/healthz").await;
    assert!(health["components"].to_string().contains("\"linear\""), "{health}");

    // A human asks for more on the In Review issue: the feedback run resumes the session.
    anthropic.push(Reply::bash("sleep 1; echo 'a second stanza' >> haiku.txt"));
    anthropic.push(Reply::text("Added the second stanza. SECOND-MARK"));
    linear.add_comment(
        &issue.id,
        CommentAuthor::User(FakeLinear::HUMAN_ID.to_owned()),
        "Lovely. Please add a second stanza ADA-ASKS",
    );
    daemon
        .eventually("the feedback run's summary", || async {
            let c = linear.comments(&issue.id);
            (by_viewer(&c, REVIEW).len() == 2).then_some(())
        })
        .await;
    assert_eq!(linear.issue_state_name(&issue.id).as_deref(), Some("In Review"), "the gate again");
    let comments = linear.comments(&issue.id);
    assert!(by_viewer(&comments, REVIEW)[1].body.contains("SECOND-MARK"), "{comments:#?}");
    let progress = by_viewer(&comments, PROGRESS);
    assert_eq!(progress.len(), 2, "one progress comment per run: {comments:#?}");
    assert!(progress[1].edits >= 1, "{:#?}", progress[1]);

    let requests = anthropic.message_requests();
    assert_eq!(requests.len(), first_requests + 2);
    let resumed = &requests[first_requests];
    assert!(resumed.conversation_contains("Write a haiku about queues"), "the first prompt");
    assert!(resumed.conversation_contains("FIRST-MARK"), "the first answer");
    assert!(resumed.conversation_contains("MCP-MARK"), "the first run's tool call");
    assert!(
        resumed.last_user_text().is_some_and(|t| t.contains("ADA-ASKS")),
        "the comment is the new message: {:?}",
        resumed.last_user_text()
    );
    let runs = daemon.get_json("/api/runs").await;
    assert_eq!(runs["total"], 2, "{runs}");
    let feedback = &runs["runs"][0];
    assert_eq!(feedback["kind"], "feedback", "{runs}");
    assert_eq!(feedback["status"], "succeeded", "{runs}");
    assert_eq!(feedback["session_id"], session.as_str(), "the same session");

    // The workspace is the task's, kept between the runs.
    let haiku = walk_find(&dir.path().join("workspaces"), "haiku.txt").expect("haiku.txt");
    assert_eq!(std::fs::read_to_string(haiku).unwrap(), "queues wait in line\na second stanza\n");

    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_on_an_issue_in_progress_reaches_the_running_agent() {
    let Some(claude) = claude_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let linear = FakeLinear::start().await;
    let anthropic = FakeAnthropic::start().await;
    // A slow first turn keeps the run live while the comment comes in.
    anthropic.push(Reply::bash("sleep 5; echo 'draft' > notes.txt"));
    anthropic.push(Reply::text("Wrote the notes, in French as asked. LIVE-MARK"));
    let issue = linear.create_issue(NewIssue::new("ENG", "Write release notes"));
    let daemon = linear_claude_daemon(dir.path(), &linear, &anthropic, &claude)
        .env("AGENTFLOW_ENGINE_POLL_INTERVAL", "300ms")
        .start();

    daemon
        .eventually("the agent's first turn", || async {
            (anthropic.message_requests().len() == 1).then_some(())
        })
        .await;
    assert_eq!(linear.issue_state_name(&issue.id).as_deref(), Some("In Progress"));
    linear.add_comment(
        &issue.id,
        CommentAuthor::User(FakeLinear::HUMAN_ID.to_owned()),
        "Please write them in French COMMENT-MARK",
    );
    daemon
        .eventually("the issue to reach In Review", || async {
            support::settled(&linear, &issue.id, "In Review").then_some(())
        })
        .await;

    // The model saw the comment within the same run: no second run was needed for it.
    let requests = anthropic.message_requests();
    assert!(
        requests.iter().any(|r| r.conversation_contains("COMMENT-MARK")),
        "the comment reached the running session: {requests:?}"
    );
    let logs = daemon.get_json(&format!("/api/tasks/{}/logs", issue.id)).await;
    assert!(logs["lines"].to_string().contains("delivered a comment"), "{logs}");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let runs = daemon.get_json("/api/runs").await;
    assert_eq!(runs["total"], 1, "one run, no feedback run for a delivered comment: {runs}");
    let summaries = by_viewer(&linear.comments(&issue.id), REVIEW);
    assert_eq!(summaries.len(), 1);
    assert!(summaries[0].body.contains("LIVE-MARK"), "{}", summaries[0].body);
    assert!(daemon.terminate().success());
}

/// The daemon on the fake Linear (team ENG) with the real CLI against the fake Anthropic API,
/// one model retry, a 90 s run timeout.
fn linear_claude_daemon(
    dir: &std::path::Path,
    linear: &FakeLinear,
    anthropic: &FakeAnthropic,
    claude: &std::path::Path,
) -> DaemonCmd {
    DaemonCmd::new(dir)
        .env("AGENTFLOW_LINEAR_API_KEY", FakeLinear::API_KEY)
        .env("AGENTFLOW_LINEAR_API_URL", linear.url())
        .env("AGENTFLOW_LINEAR_TEAMS", "ENG")
        .env("AGENTFLOW_CLAUDE_BINARY", claude)
        .env("AGENTFLOW_CLAUDE_API_KEY", "sk-ant-e2e-test-key")
        .env("AGENTFLOW_CLAUDE_BASE_URL", anthropic.url())
        .env("AGENTFLOW_CLAUDE_ENV", "API_TIMEOUT_MS")
        .env("API_TIMEOUT_MS", "60000")
        .env("CLAUDE_CODE_MAX_RETRIES", "1")
        .env("AGENTFLOW_ENGINE_TIMEOUT", "90s")
}

/// The first file named `name` under `root` (depth ≤ 3).
fn walk_find(root: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    let mut dirs = vec![(root.to_owned(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == name) {
                return Some(path);
            }
            if path.is_dir() && depth < 3 {
                dirs.push((path, depth + 1));
            }
        }
    }
    None
}

fn command_daemon(dir: &std::path::Path) -> DaemonCmd {
    DaemonCmd::new(dir)
        .env("AGENTFLOW_EXECUTOR_KIND", "command")
        .env(
            "AGENTFLOW_EXECUTOR_COMMAND",
            "sh,-c,echo ::review::false; echo working on $AGENTFLOW_TASK_KEY; sleep 0.2; \
             echo finished \"$AGENTFLOW_TASK_TITLE\"",
        )
        .env("AGENTFLOW_ENGINE_POLL_INTERVAL", "300ms")
        .env("AGENTFLOW_ENGINE_PROGRESS_INTERVAL", "100ms")
}

async fn task_status(daemon: &support::Daemon, id: &str) -> Option<Value> {
    let tasks = daemon.get_json("/api/tasks").await;
    tasks["tasks"].as_array()?.iter().find(|t| t["task"] == id).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_tasks_run_with_the_command_executor() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = command_daemon(dir.path()).start();

    let health = daemon.get_json("/healthz").await;
    assert_eq!(health["status"], "ok", "{health}");
    let tasks = daemon.get_json("/api/tasks").await;
    assert_eq!(tasks["can_create"], true, "no Linear key: the local source: {tasks}");

    let created = daemon
        .post("/api/tasks", &json!({ "title": "Tidy the changelog", "body": "sort entries" }))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let task = created.json();
    let id = task["id"].as_str().expect("task id").to_owned();
    let key = task["key"].as_str().expect("task key").to_owned();

    let done = daemon
        .eventually("the task to be done", || async {
            task_status(&daemon, &id).await.filter(|t| t["status"] == "done")
        })
        .await;
    assert_eq!(done["key"], key.as_str());
    let runs = daemon.get_json("/api/runs").await;
    assert_eq!(runs["total"], 1, "{runs}");
    let run = &runs["runs"][0];
    assert_eq!(run["task"], id.as_str());
    assert_eq!(run["status"], "succeeded");
    assert!(
        run["summary"].as_str().is_some_and(|s| s.contains("finished Tidy the changelog")),
        "{run}"
    );
    let logs = daemon.get_json(&format!("/api/tasks/{id}/logs")).await;
    assert!(logs["lines"].to_string().contains(&format!("working on {key}")), "{logs}");
    let detail = daemon.get_json(&format!("/api/tasks/{id}")).await;
    assert_eq!(detail["runs_total"], 1, "{detail}");

    // `daemon task add` talks to the running daemon.
    let addr = daemon.url.trim_start_matches("http://").to_owned();
    let added = DaemonCmd::new(dir.path())
        .env("AGENTFLOW_DASHBOARD_ADDR", &addr)
        .args(["task", "add", "Rename the module", "--body", "from util to paths"])
        .finish();
    assert!(added.status.success(), "{added:?}");
    let second: Value = serde_json::from_str(added.stdout.trim()).expect("the task as JSON");
    let second_id = second["id"].as_str().expect("id").to_owned();
    daemon
        .eventually("the second task to be done", || async {
            task_status(&daemon, &second_id).await.filter(|t| t["status"] == "done")
        })
        .await;

    // SIGTERM: a clean exit; the history is in SQLite and survives a restart.
    let status = daemon.terminate();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let daemon = command_daemon(dir.path()).start();
    let runs = daemon.get_json("/api/runs?status=succeeded").await;
    assert_eq!(runs["total"], 2, "{runs}");
    // The local tasks survive too (kept in the state store), so their ids are never handed
    // out again: a new task after the restart is LOC-3, not a second LOC-1 that would inherit
    // LOC-1's stored session and runs.
    let third = daemon.post("/api/tasks", &json!({ "title": "Bump the version" })).await;
    assert_eq!(third.status, 201, "{}", third.body);
    let third = third.json();
    assert_eq!(third["key"], "LOC-3", "numbering continues after a restart: {third}");
    let stats = daemon.get_json("/api/stats").await;
    assert!(stats.is_object(), "{stats}");
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_daemon_idles_and_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing configured: no Linear key, no Anthropic credentials, a CLI that is not on PATH,
    // the default database URL (`sqlite://agentflow.db` in the working directory).
    let daemon = DaemonCmd::new(dir.path())
        .env_remove("AGENTFLOW_STORAGE_DATABASE_URL")
        .env("AGENTFLOW_CLAUDE_BINARY", "agentflow-no-such-claude")
        .start();
    assert!(dir.path().join("agentflow.db").is_file(), "the SQLite file is created");
    let missing = daemon.get_json("/api/needs-configuration").await;
    let keys: Vec<&str> =
        missing["missing"].as_array().unwrap().iter().filter_map(|m| m["key"].as_str()).collect();
    for key in ["linear.api_key", "claude.api_key", "claude.binary"] {
        assert!(keys.contains(&key), "{key} is reported missing: {missing}");
    }
    let stderr: Vec<String> =
        daemon.lines.all().into_iter().filter(|l| l.starts_with("stderr| ")).collect();
    for needle in ["No Linear API key", "No Anthropic credentials", "agentflow-no-such-claude"] {
        assert_eq!(
            stderr.iter().filter(|l| l.contains(needle)).count(),
            1,
            "one log line about {needle}:\n{}",
            stderr.join("\n")
        );
    }
    let health = daemon.get_json("/healthz").await;
    assert_eq!(health["paused"], true, "runs are paused until the agent can run: {health}");
    // A task added now waits …
    let early = daemon.post("/api/tasks", &json!({ "title": "Check the links" })).await;
    assert_eq!(early.status, 201, "{}", early.body);
    let early = early.json()["id"].as_str().unwrap().to_owned();

    // … until the settings page switches to the command executor: the engine is rebuilt and
    // resumes without a restart, and the waiting task survives the rebuild and runs.
    let saved = daemon
        .put(
            "/api/settings",
            &json!({ "values": { "executor.kind": "command", "executor.command": "true" } }),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let succeeded = |id: String| {
        let daemon = &daemon;
        async move {
            let runs = daemon.get_json("/api/runs").await;
            runs["runs"]
                .as_array()?
                .iter()
                .find(|r| r["task"] == id && r["status"] == "succeeded")
                .cloned()
        }
    };
    daemon
        .eventually("the task added before configuring to run", || succeeded(early.clone()))
        .await;
    assert_eq!(daemon.get_json("/healthz").await["paused"], false);
    let late = daemon.post("/api/tasks", &json!({ "title": "Check the anchors" })).await;
    assert_eq!(late.status, 201, "{}", late.body);
    let late = late.json()["id"].as_str().unwrap().to_owned();
    daemon.eventually("the task added after configuring to run", || succeeded(late.clone())).await;
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_of_tasks_no_longer_in_play_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("workspaces");
    for name in ["OLD-1", "NEW-1"] {
        std::fs::create_dir_all(root.join(name).join("src")).unwrap();
    }
    // OLD-1 was last touched ten days ago; NEW-1 just now.
    let ten_days = std::time::SystemTime::now() - std::time::Duration::from_secs(10 * 24 * 3600);
    std::fs::File::open(root.join("OLD-1")).unwrap().set_modified(ten_days).unwrap();

    let daemon = DaemonCmd::new(dir.path())
        .env("AGENTFLOW_CLAUDE_BINARY", "agentflow-no-such-claude")
        .env("AGENTFLOW_CLAUDE_WORKSPACE_MAX_AGE", "2days")
        .start();
    daemon
        .eventually("the old workspace to be pruned", || async {
            (!root.join("OLD-1").exists()).then_some(())
        })
        .await;
    assert!(root.join("NEW-1").join("src").is_dir(), "a recent workspace stays");
    // The log line follows the removal: wait for it rather than racing it.
    let lines = daemon.lines.clone();
    daemon
        .eventually("the pruning to be logged", || {
            let lines = lines.clone();
            async move { lines.all().iter().any(|l| l.contains("pruned old workspaces")).then_some(()) }
        })
        .await;
    assert!(daemon.terminate().success());
}

/// Whether `/api/needs-configuration` has an item for `key` whose message contains `needle`.
async fn reports_missing(daemon: &support::Daemon, key: &str, needle: &str) -> bool {
    let m = daemon.get_json("/api/needs-configuration").await;
    m["missing"].as_array().is_some_and(|items| {
        items
            .iter()
            .any(|i| i["key"] == key && i["message"].as_str().is_some_and(|t| t.contains(needle)))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_down_or_a_bad_key_pauses_the_daemon_instead_of_stopping_it() {
    let dir = tempfile::tempdir().unwrap();
    let linear = FakeLinear::start().await;
    linear.set_auth_failure(Some(401));
    let first = linear.create_issue(NewIssue::new("ENG", "Tidy the notes"));
    let daemon = command_daemon(dir.path())
        .env("AGENTFLOW_LINEAR_API_KEY", FakeLinear::API_KEY)
        .env("AGENTFLOW_LINEAR_API_URL", linear.url())
        .env("AGENTFLOW_LINEAR_TEAMS", "ENG")
        .start();

    // Linear refuses at start: the dashboard serves and says why; nothing runs.
    daemon
        .eventually("the Linear problem on the dashboard", || async {
            reports_missing(&daemon, "linear.api_key", "Cannot connect to Linear")
                .await
                .then_some(())
        })
        .await;
    assert_eq!(daemon.get_json("/healthz").await["paused"], true);
    assert_eq!(linear.issue_state_name(&first.id).as_deref(), Some("Todo"));

    // Linear answers again: the daemon connects by itself and does the work.
    linear.set_auth_failure(None);
    daemon
        .eventually("the first issue to be done once Linear answers", || async {
            support::settled(&linear, &first.id, "Done").then_some(())
        })
        .await;

    // A wrong key saved from the settings page: the daemon keeps serving so it can be fixed.
    let wrong = "lin_api_WRONGkeyWRONGkey0000";
    let saved =
        daemon.put("/api/settings", &json!({ "values": { "linear.api_key": wrong } })).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    daemon
        .eventually("the wrong key to be reported", || async {
            reports_missing(&daemon, "linear.api_key", "Cannot connect to Linear")
                .await
                .then_some(())
        })
        .await;
    assert!(daemon.exited().is_none(), "the daemon is still running");
    // Removing the saved value falls back to the environment's key, which works.
    let reset = daemon.put("/api/settings", &json!({ "values": { "linear.api_key": null } })).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let second = linear.create_issue(NewIssue::new("ENG", "Tidy the changelog"));
    daemon
        .eventually("the second issue to be done with the right key again", || async {
            support::settled(&linear, &second.id, "Done").then_some(())
        })
        .await;
    let lines = daemon.lines.clone();
    assert!(daemon.terminate().success());
    assert!(!lines.all().iter().any(|l| l.contains(wrong)), "the wrong key is never printed");
}

/// The daemon with its job queue on Redis (`storage.queue_url`), state in SQLite. Redis must
/// answer on 127.0.0.1:6379 under `CI`; elsewhere the test is skipped when it does not.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_task_runs_on_the_redis_queue() {
    use agentflow::{JobFilter, JobQueue, JobState, Page};
    // A database index of its own, so other suites' queues on this Redis are not touched.
    const URL: &str = "redis://127.0.0.1:6379/13";
    let addr = "127.0.0.1:6379".parse().unwrap();
    if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).is_err() {
        assert!(std::env::var_os("CI").is_none(), "Redis is not answering on {addr}");
        eprintln!("skipping: Redis is not answering on {addr}");
        return;
    }
    support::cancel_live_redis_jobs(URL).await;
    let queue = agentflow::redis::RedisQueue::connect(agentflow::redis::RedisQueueConfig::new(URL))
        .await
        .unwrap();

    let started = chrono::Utc::now() - chrono::Duration::milliseconds(10);
    let dir = tempfile::tempdir().unwrap();
    let daemon = command_daemon(dir.path()).env("AGENTFLOW_STORAGE_QUEUE_URL", URL).start();
    let created = daemon.post("/api/tasks", &json!({ "title": "Tidy the queue notes" })).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    daemon
        .eventually("the task to be done", || async {
            task_status(&daemon, &id).await.filter(|t| t["status"] == "done")
        })
        .await;
    // The job went through Redis: it is there, completed. (Local ids restart at LOC-1 with
    // every fresh database, so earlier runs' jobs of the same id are told apart by their age.)
    let jobs: Vec<_> = queue
        .list(&JobFilter::task(id.as_str()), Page::first(1000))
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.created_at >= started)
        .collect();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].state, JobState::Completed, "{jobs:?}");
    let health = daemon.get_json("/healthz").await;
    assert_eq!(health["status"], "ok", "{health}");
    assert!(daemon.terminate().success());
}
