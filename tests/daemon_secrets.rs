//! Secrets never leave the daemon: run the built daemon with known secret values (Linear API
//! key, Anthropic API key, dashboard token, webhook secret), drive it through a successful run,
//! a failed run, a Linear outage and a settings save, and assert that no output line (stdout and
//! stderr at `debug` level), no API response and no `check` output contains any of them — nor a
//! long piece of one.

#[path = "daemon/support.rs"]
mod support;

use agentflow_testkit::fake_anthropic::{FakeAnthropic, Reply};
use agentflow_testkit::fake_linear::{FakeLinear, NewIssue};
use serde_json::json;
use support::{Answer, DaemonCmd, claude_bin};

const ANTHROPIC_KEY: &str = "sk-ant-api03-SECRETe2eKEY-5f1c9a7b3d";
const DASHBOARD_TOKEN: &str = "dash-SECRETe2eTOKEN-8e2b4c6d0a";
const WEBHOOK_SECRET: &str = "whsec-SECRETe2eHOOK-3a9f7c1d42";

fn secrets() -> [&'static str; 4] {
    [FakeLinear::API_KEY, ANTHROPIC_KEY, DASHBOARD_TOKEN, WEBHOOK_SECRET]
}

/// Panics when `text` contains a secret or its middle (all but the first and last four
/// characters, which is more than any mask shows).
fn assert_clean(what: &str, text: &str) {
    for secret in secrets() {
        let middle = &secret[4..secret.len() - 4];
        assert!(
            !text.contains(secret) && !text.contains(middle),
            "{what} contains the secret {secret:?}:\n{text}"
        );
    }
}

fn daemon_env(cmd: DaemonCmd, linear: &FakeLinear, anthropic: &FakeAnthropic) -> DaemonCmd {
    let claude = claude_bin().expect("checked by the caller");
    cmd.env("AGENTFLOW_LOG", "debug")
        .env("AGENTFLOW_LINEAR_API_KEY", FakeLinear::API_KEY)
        .env("AGENTFLOW_LINEAR_API_URL", linear.url())
        .env("AGENTFLOW_LINEAR_TEAMS", "ENG")
        .env("AGENTFLOW_LINEAR_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("AGENTFLOW_CLAUDE_BINARY", claude)
        .env("AGENTFLOW_CLAUDE_API_KEY", ANTHROPIC_KEY)
        .env("AGENTFLOW_CLAUDE_BASE_URL", anthropic.url())
        .env("AGENTFLOW_DASHBOARD_TOKEN", DASHBOARD_TOKEN)
        .env("CLAUDE_CODE_MAX_RETRIES", "1")
        .env("AGENTFLOW_ENGINE_POLL_INTERVAL", "300ms")
        .env("AGENTFLOW_ENGINE_PROGRESS_INTERVAL", "100ms")
        .env("AGENTFLOW_ENGINE_MAX_ATTEMPTS", "1")
        .env("AGENTFLOW_ENGINE_TIMEOUT", "60s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_log_line_api_response_or_check_output() {
    if claude_bin().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let linear = FakeLinear::start().await;
    let anthropic = FakeAnthropic::start().await;
    let mut bodies: Vec<(String, Answer)> = Vec::new();

    // `check` first: it reaches Linear and the CLI with the secrets in hand.
    let check =
        daemon_env(DaemonCmd::new(dir.path()), &linear, &anthropic).args(["check"]).finish();
    assert!(check.status.success(), "check passes: {check:?}");
    assert!(check.stdout.contains("linear") && check.stdout.contains("claude"), "{check:?}");
    assert_clean("`check` stdout", &check.stdout);
    assert_clean("`check` stderr", &check.stderr);

    let daemon = daemon_env(DaemonCmd::new(dir.path()), &linear, &anthropic).start();

    // A run that succeeds (the agent uses a tool, so its output is logged) …
    anthropic.push(Reply::bash("echo the notes are tidy"));
    anthropic.push(Reply::text("Summarised the notes."));
    let ok = linear.create_issue(NewIssue::new("ENG", "Summarise the notes"));
    daemon
        .eventually("the first issue to be Done", || async {
            support::settled(&linear, &ok.id, "Done").then_some(())
        })
        .await;
    // … one the model's API refuses (the CLI's error lands in the run record and the log) …
    anthropic.set_fallback(Reply::unauthorized());
    let refused = linear.create_issue(NewIssue::new("ENG", "Summarise the changelog"));
    daemon
        .eventually("the second issue to fail", || async {
            support::settled(&linear, &refused.id, "Failed").then_some(())
        })
        .await;
    // … and Linear rejecting the key for a few polls.
    linear.set_auth_failure(Some(401));
    let polls = linear.total_requests();
    daemon
        .eventually("polls against the failing Linear", || async {
            (linear.total_requests() >= polls + 3).then_some(())
        })
        .await;
    linear.set_auth_failure(None);

    for path in [
        "/api/settings",
        "/api/needs-configuration",
        "/api/tasks",
        &format!("/api/tasks/{}", ok.id),
        &format!("/api/tasks/{}/logs", ok.id),
        &format!("/api/tasks/{}", refused.id),
        &format!("/api/tasks/{}/logs", refused.id),
        "/api/runs",
        "/api/runs?q=notes",
        "/api/stats",
        "/api/session",
        "/healthz",
        "/metrics",
        "/",
        "/login",
        "/api/tasks/no-such-task",
    ] {
        let answer = daemon.get(path).await;
        bodies.push((format!("GET {path}"), answer));
    }
    let runs = bodies.iter().find(|(w, _)| w == "GET /api/runs").unwrap().1.json();
    assert_eq!(runs["total"], 2, "{runs}");
    assert!(
        runs["runs"].as_array().unwrap().iter().any(|r| r["status"] == "failed"),
        "the refused run is recorded as failed: {runs}"
    );
    let settings = bodies[0].1.json().to_string();
    assert!(settings.contains("…6789"), "the Linear key shows masked: {settings}");

    // Saving a secret answers with the masked settings; the engine rebuilds with it.
    let saved = daemon
        .put("/api/settings", &json!({ "values": { "claude.api_key": ANTHROPIC_KEY } }))
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    bodies.push(("PUT /api/settings".into(), saved));
    let bad = daemon.put("/api/settings", &json!({ "values": { "engine.workers": "lots" } })).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    bodies.push(("PUT /api/settings (invalid)".into(), bad));
    daemon
        .eventually("the rebuilt engine to answer", || async {
            let h = daemon.get("/healthz").await;
            (h.status == 200).then_some(())
        })
        .await;

    // Without the token, or with a wrong one: refused, and the refusal does not echo anything.
    let http = reqwest::Client::new();
    for (what, token) in [("no token", None), ("wrong token", Some("dash-wrong-token-000000"))] {
        let mut req = http.get(format!("{}/api/settings", daemon.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert_eq!(status, 401, "{what}: {body}");
        bodies.push((format!("GET /api/settings ({what})"), Answer { status, body }));
    }

    let lines = daemon.lines.clone();
    let status = daemon.terminate();
    assert!(status.success(), "{status}");
    for (what, answer) in &bodies {
        assert_clean(what, &answer.body);
    }
    let lines = lines.all();
    // The log is the real thing: debug lines of the runs, the failure and the outage.
    assert!(lines.iter().any(|l| l.contains("DEBUG")), "logging at debug");
    assert!(lines.iter().any(|l| l.contains("attempt succeeded")), "the run is logged");
    assert!(
        lines.iter().any(|l| l.contains("401") || l.contains("uthenticat")),
        "the auth failures are logged"
    );
    for line in &lines {
        assert_clean("a daemon output line", line);
    }
}
