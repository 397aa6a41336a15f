//! Fault suite, scenario 5 — the agent fails: the built daemon against the fake Linear, driving
//! the real Claude Code CLI over the fake Anthropic API, or a stand-in `claude` script where the
//! CLI itself is the fault.
//!
//! - The API answers 500, 529, 429 (with `retry-after`) or 401 (SQLite only: the backend plays
//!   no part in how the executor classifies an API error): retryable errors are retried after the
//!   configured backoff (a 429 no earlier than its `retry-after`), then the issue is Failed with
//!   one comment stating the cause; a 401 fails at once, "not retryable".
//! - The CLI exits non-zero without a result (every backend: the retry goes through the
//!   queue's retry schedule): retried, then Failed with the exit status and stderr in the comment.
//! - The CLI hangs (every backend): the attempt ends at the timeout and every process it started
//!   — its process group, and a `setsid` child outside it — is gone from /proc.

#[path = "daemon/support.rs"]
mod support;

use std::time::Duration;

use agentflow_testkit::fake_anthropic::{FakeAnthropic, Reply};
use agentflow_testkit::fake_linear::{FakeComment, FakeLinear, NewIssue};
use support::{
    Backend, Daemon, Storage, claude_bin, linear_daemon, on_backends, processes_with, runs_of,
    script, time_of,
};

const FAILED: &str = "❌ **Failed**";

fn failed_comments(linear: &FakeLinear, issue: &str) -> Vec<FakeComment> {
    linear
        .comments(issue)
        .into_iter()
        .filter(|c| {
            c.user_id.as_deref() == Some(FakeLinear::VIEWER_ID) && c.body.starts_with(FAILED)
        })
        .collect()
}

/// Waits until the issue is Failed in Linear and its failure comment is posted; returns it.
async fn failed(daemon: &Daemon, linear: &FakeLinear, issue: &str) -> FakeComment {
    daemon
        .eventually(&format!("{issue} to be Failed with a comment"), || async {
            let state = linear.issue_state_name(issue);
            let comments = failed_comments(linear, issue);
            (state.as_deref() == Some("Failed") && !comments.is_empty())
                .then(|| comments[0].clone())
        })
        .await
}

/// Asserts the runs of `issue` are `attempts` failed attempts, each starting at least `gap`
/// after the previous one ended; returns them.
async fn assert_attempts(
    daemon: &Daemon,
    issue: &str,
    attempts: usize,
    gap: Duration,
) -> Vec<serde_json::Value> {
    let runs = runs_of(daemon, issue).await;
    assert_eq!(runs.len(), attempts, "{runs:#?}");
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(run["attempt"], i + 1, "{runs:#?}");
        assert!(matches!(run["status"].as_str(), Some("failed" | "timed_out")), "{run}");
    }
    for pair in runs.windows(2) {
        let waited = time_of(&pair[1], "started_at") - time_of(&pair[0], "finished_at");
        assert!(
            waited.to_std().unwrap_or_default() >= gap,
            "attempt {} started {waited} after the previous one ended; the backoff is {gap:?}",
            pair[1]["attempt"]
        );
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_errors_are_retried_with_backoff_then_fail_with_the_cause() {
    let Some(claude) = claude_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::sqlite();
    let linear = FakeLinear::start().await;
    let anthropic = FakeAnthropic::start().await;
    anthropic.set_fallback(Reply::server_error());
    let daemon = linear_daemon(dir.path(), &linear.url(), FakeLinear::API_KEY, &storage)
        .env("AGENTFLOW_CLAUDE_BINARY", &claude)
        .env("AGENTFLOW_CLAUDE_API_KEY", "sk-ant-fault-test-key")
        .env("AGENTFLOW_CLAUDE_BASE_URL", anthropic.url())
        .env("CLAUDE_CODE_MAX_RETRIES", "1")
        .env("AGENTFLOW_ENGINE_MAX_ATTEMPTS", "2")
        .env("AGENTFLOW_ENGINE_RETRY_BACKOFF", "2s")
        .env("AGENTFLOW_ENGINE_TIMEOUT", "60s")
        .start();
    // Backoff 2 s without jitter: the second attempt starts at least 2 s after the first ended.
    let backoff = Duration::from_secs(2);

    // 500: the CLI retries once, gives up; the engine retries once after the backoff; Failed.
    let issue = linear.create_issue(NewIssue::new("ENG", "Tidy the 500 notes"));
    let comment = failed(&daemon, &linear, &issue.id).await;
    assert!(comment.body.contains("after 2 attempts"), "{}", comment.body);
    assert!(comment.body.contains("HTTP 500"), "the cause: {}", comment.body);
    let runs = assert_attempts(&daemon, &issue.id, 2, backoff).await;
    assert!(runs[1]["error"].as_str().is_some_and(|e| e.contains("HTTP 500")), "{runs:#?}");
    assert_eq!(failed_comments(&linear, &issue.id).len(), 1, "one failure comment");

    // 529 overloaded: the same path.
    anthropic.set_fallback(Reply::overloaded());
    let issue = linear.create_issue(NewIssue::new("ENG", "Tidy the 529 notes"));
    let comment = failed(&daemon, &linear, &issue.id).await;
    assert!(comment.body.contains("after 2 attempts"), "{}", comment.body);
    assert!(
        comment.body.contains("529") || comment.body.contains("verloaded"),
        "the cause: {}",
        comment.body
    );
    assert_attempts(&daemon, &issue.id, 2, backoff).await;

    // 429 with retry-after 4 s: the next attempt waits at least that long (longer than the
    // backoff).
    anthropic.set_fallback(Reply::rate_limited(4));
    let issue = linear.create_issue(NewIssue::new("ENG", "Tidy the 429 notes"));
    let comment = failed(&daemon, &linear, &issue.id).await;
    assert!(comment.body.contains("after 2 attempts"), "{}", comment.body);
    assert!(
        comment.body.contains("429") || comment.body.contains("rate limit"),
        "{}",
        comment.body
    );
    assert_attempts(&daemon, &issue.id, 2, Duration::from_secs(4)).await;

    // 401: a bad key is not retried.
    anthropic.set_fallback(Reply::unauthorized());
    let issue = linear.create_issue(NewIssue::new("ENG", "Tidy the 401 notes"));
    let comment = failed(&daemon, &linear, &issue.id).await;
    assert!(comment.body.contains("after 1 attempt (not retryable)"), "{}", comment.body);
    assert!(
        comment.body.contains("401") || comment.body.contains("API key"),
        "the cause: {}",
        comment.body
    );
    assert_attempts(&daemon, &issue.id, 1, Duration::ZERO).await;

    assert!(daemon.exited().is_none(), "the daemon survived every failure");
    assert!(daemon.terminate().success());
}

async fn cli_exits_non_zero(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(storage) = Storage::shared(backend) else { return };
    let linear = FakeLinear::start().await;
    let claude = script(
        dir.path(),
        "claude-crashes",
        "echo 'claude: FATAL cannot open session store' >&2\nexit 3\n",
    );
    let daemon = linear_daemon(dir.path(), &linear.url(), FakeLinear::API_KEY, &storage)
        .env("AGENTFLOW_CLAUDE_BINARY", &claude)
        .env("AGENTFLOW_CLAUDE_API_KEY", "sk-ant-fault-test-key")
        .env("AGENTFLOW_ENGINE_MAX_ATTEMPTS", "3")
        .env("AGENTFLOW_ENGINE_RETRY_BACKOFF", "400ms")
        .start();
    let issue = linear.create_issue(NewIssue::new("ENG", "Tidy the crash notes"));
    let comment = failed(&daemon, &linear, &issue.id).await;
    assert!(comment.body.contains("after 3 attempts"), "{}", comment.body);
    assert!(comment.body.contains("exit status: 3"), "the exit status: {}", comment.body);
    assert!(comment.body.contains("FATAL cannot open session store"), "stderr: {}", comment.body);
    // 400 ms, then 800 ms (doubling, no jitter).
    let runs = assert_attempts(&daemon, &issue.id, 3, Duration::from_millis(400)).await;
    let last_gap = time_of(&runs[2], "started_at") - time_of(&runs[1], "finished_at");
    assert!(last_gap.to_std().unwrap_or_default() >= Duration::from_millis(800), "{runs:#?}");
    assert_eq!(failed_comments(&linear, &issue.id).len(), 1, "one failure comment");
    let moves: Vec<_> = linear.transitions(&issue.id).into_iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        moves,
        [
            ("Todo".to_owned(), "In Progress".to_owned()),
            ("In Progress".to_owned(), "Failed".to_owned())
        ],
        "claimed once, failed once"
    );
    assert!(daemon.terminate().success());
}

on_backends!(the_cli_exiting_non_zero_is_retried_then_fails_with_its_stderr => cli_exits_non_zero: sqlite, redis, postgres);

async fn cli_hangs(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(storage) = Storage::shared(backend) else { return };
    let linear = FakeLinear::start().await;
    // A marker unique to this test run, in the command lines of everything the script starts.
    let marker = format!("97.{}", std::process::id() % 1000 * 10 + backend as u32);
    let claude = script(
        dir.path(),
        "claude-hangs",
        &format!(
            r#"echo '{{"type":"system","subtype":"init","session_id":"hang-1","tools":[],"mcp_servers":[]}}'
sleep {marker}1 &
sh -c 'sleep {marker}2' &
setsid sleep {marker}3 &
sleep {marker}4
"#
        ),
    );
    let daemon = linear_daemon(dir.path(), &linear.url(), FakeLinear::API_KEY, &storage)
        .env("AGENTFLOW_CLAUDE_BINARY", &claude)
        .env("AGENTFLOW_CLAUDE_API_KEY", "sk-ant-fault-test-key")
        .env("AGENTFLOW_ENGINE_MAX_ATTEMPTS", "1")
        .env("AGENTFLOW_ENGINE_TIMEOUT", "3s")
        .start();
    let issue = linear.create_issue(NewIssue::new("ENG", "Tidy the hang notes"));
    daemon
        .eventually("the hanging CLI and its children to run", || async {
            (processes_with(&marker).len() >= 4).then_some(())
        })
        .await;
    let comment = failed(&daemon, &linear, &issue.id).await;
    assert!(comment.body.contains("timed out after 3s"), "the cause: {}", comment.body);
    let runs = runs_of(&daemon, &issue.id).await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["status"], "timed_out", "{runs:#?}");
    // Everything the CLI started is gone: its group by killpg, the setsid child by the
    // workspace sweep. (The run is recorded after the executor reaped them.)
    let left = processes_with(&marker);
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert!(daemon.terminate().success());
}

on_backends!(a_hanging_cli_ends_at_the_timeout_with_every_process_killed => cli_hangs: sqlite, redis, postgres);
