//! The real Claude Code CLI (pinned version) driven by `ClaudeExecutor` against the fake
//! Anthropic API on loopback.

#[path = "cli/support.rs"]
mod support;

use std::time::Duration;

use agentflow_core::{CancellationToken, Error, Feedback, JobKind, Progress};
use agentflow_testkit::fake_anthropic::Reply;
use support::{Harness, leftovers, logs, request, run, run_with};

#[tokio::test]
async fn text_run_reports_session_text_and_usage() {
    let Some(h) = Harness::new().await else { return };
    h.fake.push(Reply::text("Hello from fake API."));
    let mut req = request("ENG-1", "Write a haiku about queues");
    req.task.body = "Five, seven, five.".into();
    let (res, progress) = run(&h.executor(), req).await;
    let outcome = res.expect("run succeeds");
    assert_eq!(outcome.summary, "Hello from fake API.");
    assert_eq!(outcome.usage.turns, 1);
    assert!(outcome.usage.input_tokens > 0 && outcome.usage.output_tokens > 0);
    assert!(outcome.usage.cost_usd > 0.0);
    let session = outcome.session_id.clone().expect("session id");
    // The session is reported first, before any text.
    assert!(
        matches!(progress.first(), Some(Progress::Session { id }) if *id == session),
        "{progress:?}"
    );
    assert!(
        progress
            .iter()
            .any(|p| matches!(p, Progress::Text { text } if text == "Hello from fake API."))
    );

    let requests = h.fake.message_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("x-api-key"), Some("test-key"));
    let prompt = requests[0].last_user_text().expect("prompt");
    assert!(
        prompt.contains("<untrusted-data kind=\"task\">")
            && prompt.contains("Write a haiku about queues")
    );
    assert!(prompt.contains("Five, seven, five."));
    // The CLI called nothing but the Messages API (no telemetry, no probes).
    assert!(h.fake.requests().iter().all(|r| r.is_messages()), "{:?}", h.fake.requests());
    // The transcript is where the executor says it is.
    let transcript = h.executor().transcript_path(&h.workspace("ENG-1"), &session).unwrap();
    assert!(transcript.is_file(), "{}", transcript.display());
}

#[tokio::test]
async fn bash_tool_writes_a_file_in_the_workspace() {
    let Some(h) = Harness::new().await else { return };
    h.fake.push(Reply::bash("echo hello-from-bash > bash_out.txt; echo printed"));
    h.fake.push(Reply::text("Done with tool."));
    let (res, progress) = run(&h.executor(), request("ENG-2", "Write a file")).await;
    assert_eq!(res.expect("run succeeds").summary, "Done with tool.");
    let written =
        std::fs::read_to_string(h.workspace("ENG-2").join("bash_out.txt")).expect("file written");
    assert_eq!(written.trim(), "hello-from-bash");
    assert!(progress.iter().any(|p| matches!(p, Progress::ToolUse { name, summary, .. }
        if name == "Bash" && summary.starts_with("echo hello-from-bash"))));
    assert!(
        progress
            .iter()
            .any(|p| matches!(p, Progress::ToolResult { name: Some(n), is_error: false, output }
        if n == "Bash" && output.contains("printed"))),
        "{progress:?}"
    );
}

#[tokio::test]
async fn resume_carries_the_earlier_conversation() {
    let Some(h) = Harness::new().await else { return };
    let exec = h.executor();
    h.fake.push(Reply::text("first answer FIRST-MARK"));
    let (first, _) = run(&exec, request("ENG-3", "Task alpha-title")).await;
    let first = first.expect("first run");
    let session = first.session_id.clone().expect("session");

    let mut req = request("ENG-3", "Task alpha-title");
    req.kind = JobKind::Feedback;
    req.resume_session = Some(session.clone());
    req.feedback = vec![Feedback {
        id: "c1".into(),
        task: req.task.id.clone(),
        author: "Ada".into(),
        body: "Please also do SECOND-MARK".into(),
        created_at: chrono::Utc::now(),
    }];
    let (second, progress) = run(&exec, req).await;
    let second = second.expect("second run");
    assert_eq!(second.session_id.as_deref(), Some(session.as_str()));
    assert!(!logs(&progress).iter().any(|l| l.contains("fresh session")));
    let requests = h.fake.message_requests();
    let last = requests.last().expect("request");
    assert!(last.conversation_contains("alpha-title"), "the first prompt is in the history");
    assert!(last.conversation_contains("FIRST-MARK"), "the first answer is in the history");
    assert!(
        last.last_user_text()
            .is_some_and(|t| t.contains("SECOND-MARK") && t.contains("Author: Ada"))
    );
    // Cost per run, not the session's cumulative cost.
    assert!(
        (second.usage.cost_usd - first.usage.cost_usd).abs() < first.usage.cost_usd,
        "{second:?} vs {first:?}"
    );
}

#[tokio::test]
async fn unknown_session_starts_fresh_and_says_so() {
    let Some(h) = Harness::new().await else { return };
    h.fake.push(Reply::text("fresh answer"));
    let mut req = request("ENG-4", "Resume me");
    req.kind = JobKind::Retry;
    req.resume_session = Some("0b7e3f4e-5b9e-4c43-9a52-1d1f1a7d9c11".into());
    let (res, progress) = run(&h.executor(), req).await;
    let outcome = res.expect("fresh run succeeds");
    assert_eq!(outcome.summary, "fresh answer");
    assert_ne!(outcome.session_id.as_deref(), Some("0b7e3f4e-5b9e-4c43-9a52-1d1f1a7d9c11"));
    assert!(
        logs(&progress)
            .iter()
            .any(|l| l.contains("not found") && l.contains("starting a fresh session")),
        "{progress:?}"
    );
}

#[tokio::test]
async fn max_turns_is_not_retryable() {
    let Some(mut h) = Harness::new().await else { return };
    h.cfg.max_turns = Some(1);
    h.fake.push_all([Reply::bash("echo one"), Reply::bash("echo two"), Reply::text("never")]);
    let (res, _) = run(&h.executor(), request("ENG-5", "Loop")).await;
    let err = res.expect_err("max turns");
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("maximum number of turns"), "{err}");
}

async fn api_error(reply: Reply) -> Error {
    let h = Harness::new().await.expect("checked by the caller");
    h.fake.set_fallback(reply);
    let (res, progress) = run(&h.executor(), request("ENG-6", "Fail")).await;
    let err = res.expect_err("api error");
    assert!(!h.fake.message_requests().is_empty());
    let _ = progress;
    err
}

#[tokio::test]
async fn api_errors_map_to_retry_decisions() {
    if support::claude_bin().is_none() {
        return;
    }
    let (unauthorized, server, overloaded, limited, too_long) = tokio::join!(
        api_error(Reply::unauthorized()),
        api_error(Reply::server_error()),
        api_error(Reply::overloaded()),
        api_error(Reply::rate_limited(1)),
        api_error(Reply::prompt_too_long()),
    );
    assert!(!unauthorized.is_retryable(), "{unauthorized}");
    assert!(unauthorized.to_string().contains("401"), "{unauthorized}");
    assert!(server.is_retryable(), "{server}");
    assert!(server.to_string().contains("500"), "{server}");
    assert!(overloaded.is_retryable(), "{overloaded}");
    assert!(limited.is_retryable(), "{limited}");
    assert!(matches!(limited, Error::RateLimited { .. }), "{limited}");
    assert!(!too_long.is_retryable(), "{too_long}");
    assert!(too_long.to_string().contains("too long"), "{too_long}");
}

#[tokio::test]
async fn not_logged_in_is_not_retryable() {
    let Some(mut h) = Harness::new().await else { return };
    h.cfg.auth = agentflow_claude::Auth::Cli;
    h.cfg.env.insert("ANTHROPIC_BASE_URL".into(), h.fake.url());
    h.cfg.env_passthrough.clear();
    let (res, _) = run(&h.executor(), request("ENG-7", "No key")).await;
    let err = res.expect_err("not logged in");
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("not logged in"), "{err}");
}

#[tokio::test]
async fn missing_binary_says_how_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = agentflow_claude::ClaudeConfig {
        binary: dir.path().join("no-such-claude"),
        workspace: agentflow_claude::WorkspaceConfig {
            root: dir.path().join("ws"),
            ..Default::default()
        },
        ..Default::default()
    };
    let exec = agentflow_claude::ClaudeExecutor::new(cfg).unwrap();
    let (res, _) = run(&exec, request("ENG-8", "x")).await;
    let err = res.expect_err("missing binary");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("npm install -g @anthropic-ai/claude-code@2.1.331"), "{err}");
}

#[tokio::test]
async fn cancel_interrupts_and_leaves_no_process() {
    let Some(h) = Harness::new().await else { return };
    // A detached grandchild (own session, survives its parent) and a foreground sleep.
    h.fake.push(Reply::bash("(setsid sleep 3018 &) ; sleep 3017"));
    h.fake.push(Reply::text("never reached"));
    let exec = h.executor();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let watcher = tokio::spawn(async move {
        let mut seen = false;
        for _ in 0..300 {
            seen = !support::processes_with("sleep 3018").is_empty()
                && !support::processes_with("sleep 3017").is_empty();
            if seen {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        trigger.cancel();
        seen
    });
    let (res, _) = run_with(&exec, request("ENG-9", "Sleep"), cancel).await;
    assert!(watcher.await.unwrap(), "the Bash tool's processes were running when cancelled");
    let err = res.expect_err("cancelled");
    assert!(matches!(err, Error::Cancelled { .. }), "{err}");
    assert_eq!(leftovers("sleep 3017").await, Vec::<u32>::new());
    assert_eq!(leftovers("sleep 3018").await, Vec::<u32>::new());
    assert!(agentflow_claude::processes_in(&h.workspace("ENG-9"), std::process::id()).is_empty());
}

#[tokio::test]
async fn timeout_during_a_tool_leaves_no_process() {
    let Some(h) = Harness::new().await else { return };
    // (A bare long `sleep` is refused by the CLI; in a shell it runs.)
    h.fake.push(Reply::bash("sh -c 'sleep 3027'"));
    let mut req = request("ENG-10", "Sleep");
    req.timeout = Duration::from_secs(4);
    let (res, _) = run(&h.executor(), req).await;
    let err = res.expect_err("timeout");
    assert!(matches!(err, Error::Timeout { .. }) && err.is_retryable(), "{err}");
    assert_eq!(leftovers("sleep 3027").await, Vec::<u32>::new());
    assert!(agentflow_claude::processes_in(&h.workspace("ENG-10"), std::process::id()).is_empty());
}

#[tokio::test]
async fn api_that_hangs_or_stalls_ends_in_timeout() {
    let Some(h) = Harness::new().await else { return };
    let h2 = Harness::new().await.expect("cli present");
    h.fake.set_fallback(Reply::hang());
    h2.fake.set_fallback(Reply::stall());
    let mut req = request("ENG-11", "Hang");
    req.timeout = Duration::from_secs(3);
    let mut req2 = request("ENG-12", "Stall");
    req2.timeout = Duration::from_secs(3);
    let (x1, x2) = (h.executor(), h2.executor());
    let (e1, e2) = tokio::join!(run(&x1, req), run(&x2, req2));
    for (res, ws) in [(e1.0, h.workspace("ENG-11")), (e2.0, h2.workspace("ENG-12"))] {
        let err = res.expect_err("timeout");
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert!(agentflow_claude::processes_in(&ws, std::process::id()).is_empty());
    }
}

#[tokio::test]
async fn comments_arriving_live_are_delivered_into_the_session() {
    let Some(h) = Harness::new().await else { return };
    h.fake.push(Reply::bash("sleep 1; echo slept"));
    h.fake.push(Reply::text("first turn done"));
    let mut req = request("ENG-13", "Live");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    req.inbox = Some(rx);
    tx.send(Feedback {
        id: "c9".into(),
        task: req.task.id.clone(),
        author: "Grace".into(),
        body: "LIVE-COMMENT-MARK please".into(),
        created_at: chrono::Utc::now(),
    })
    .unwrap();
    let (res, progress) = run(&h.executor(), req).await;
    let outcome = res.expect("run succeeds");
    assert!(logs(&progress).iter().any(|l| l.contains("delivered a comment by Grace")));
    let requests = h.fake.message_requests();
    // Written while the first turn runs, the comment is merged into it (or runs as a turn of
    // its own): either way the model sees it before the run ends.
    assert!(requests.iter().any(|r| r.conversation_contains("LIVE-COMMENT-MARK")), "{requests:?}");
    assert!(!outcome.summary.is_empty());
    // The inbox is closed once the run stops listening.
    assert!(tx.is_closed());
}

#[tokio::test]
async fn failed_mcp_server_fails_fast() {
    let Some(h) = Harness::new().await else { return };
    let mut req = request("ENG-14", "Needs tools");
    // A loopback port nobody listens on: the server cannot connect.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    req.tool_servers = vec![agentflow_core::ToolServer {
        name: "linear".into(),
        url: format!("http://127.0.0.1:{port}/mcp"),
        headers: vec![("Authorization".into(), "Bearer run-token".into())],
        tools: vec!["add_comment".into()],
    }];
    let (res, _) = run(&h.executor(), req).await;
    let err = res.expect_err("mcp failed");
    assert!(err.to_string().contains("MCP server(s) linear failed"), "{err}");
}

#[tokio::test]
async fn secrets_stay_out_of_the_agent_environment() {
    const CHILD: &str = "AGENTFLOW_SECRETS_CHILD";
    if std::env::var_os(CHILD).is_none() {
        if support::claude_bin().is_none() {
            return;
        }
        // Re-run this test in a child process whose environment holds the daemon's secrets.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "secrets_stay_out_of_the_agent_environment",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("LINEAR_API_KEY", "lin_api_PLANTED_SECRET")
            .env("DATABASE_URL", "postgres://PLANTED_DB_SECRET@127.0.0.1/x")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
        return;
    }
    let h = Harness::new().await.expect("cli present");
    h.fake.push(Reply::bash("env"));
    h.fake.push(Reply::text("printed the environment"));
    let (res, _) = run(&h.executor(), request("ENG-15", "Print env")).await;
    res.expect("run succeeds");
    let requests = h.fake.message_requests();
    let with_env = requests.last().expect("second request");
    assert!(
        with_env.conversation_contains("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1"),
        "env was printed"
    );
    for r in &requests {
        assert!(!r.conversation_contains("PLANTED"), "a daemon secret reached the agent");
        assert!(!r.body.to_string().contains("PLANTED"));
    }
}

#[tokio::test]
async fn proxy_auth_sends_a_bearer_token() {
    let Some(mut h) = Harness::new().await else { return };
    h.cfg.auth = agentflow_claude::Auth::Proxy {
        base_url: h.fake.url(),
        auth_token: String::from("proxy-token").into(),
    };
    h.fake.push(Reply::text("via proxy"));
    let (res, _) = run(&h.executor(), request("ENG-16", "Proxy")).await;
    assert_eq!(res.expect("run succeeds").summary, "via proxy");
    let r = &h.fake.message_requests()[0];
    assert_eq!(r.header("authorization"), Some("Bearer proxy-token"));
    assert_eq!(r.header("x-api-key"), None);
}
