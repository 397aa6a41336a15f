//! Fault suite, scenario 4 — Linear storms: the built daemon (command executor: the agent is not
//! the point) against the fake Linear while it answers 429 with `retry-after`, `RATELIMITED`
//! with a reset time, bursts of 503 and 10 s responses, on every storage backend.
//!
//! Each storm hits while an issue is being worked on, the last one just as its run finishes. Afterwards every issue is Done, moved
//! exactly Todo → In Progress → Done, with one summary comment and one run (the agent never
//! runs twice because the tracker hiccuped); no request reaches Linear while it said to wait;
//! `/healthz` and the dashboard's "needs attention" panel report Linear as rate limited or
//! degraded during the storm and healthy after it; the daemon never exits.

#[path = "daemon/support.rs"]
mod support;

use std::time::Duration;

use agentflow_testkit::fake_linear::{FakeLinear, FakeRequest, NewIssue};
use chrono::Utc;
use serde_json::Value;
use support::{Backend, Daemon, Storage, linear_daemon, on_backends, runs_of};

const DONE: &str = "✅ **Done**";

/// The Linear component of `/healthz` (which answers 503 while anything is not ready).
async fn linear_health(daemon: &Daemon) -> Value {
    let health = daemon.get("/healthz").await.json();
    health["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "linear").cloned())
        .unwrap_or_else(|| panic!("no linear component: {health}"))
}

/// The dashboard's "needs attention" messages.
async fn attention(daemon: &Daemon) -> Vec<String> {
    let m = daemon.get_json("/api/needs-configuration").await;
    m["missing"]
        .as_array()
        .map(|items| {
            items.iter().filter_map(|i| i["message"].as_str().map(str::to_owned)).collect()
        })
        .unwrap_or_default()
}

/// Waits until `/healthz` reports Linear not ready with an error containing `needle`, and the
/// dashboard panel says `panel`.
async fn reported_degraded(daemon: &Daemon, needle: &str, panel: &str) {
    daemon
        .eventually(
            &format!("/healthz to report Linear {needle} and the panel {panel}"),
            || async {
                let l = linear_health(daemon).await;
                let error = l["error"].as_str().unwrap_or_default().to_owned();
                let said = attention(daemon).await.iter().any(|m| m.contains(panel));
                (l["ready"] == false && error.contains(needle) && said).then_some(())
            },
        )
        .await;
}

async fn done(daemon: &Daemon, linear: &FakeLinear, id: &str) {
    daemon
        .eventually(&format!("{id} to be Done"), || async {
            let comments = linear.comments(id);
            (linear.issue_state_name(id).as_deref() == Some("Done")
                && comments.iter().any(|c| c.body.starts_with(DONE)))
            .then_some(())
        })
        .await;
}

/// No request arrived between `from` and `until` (requests already on their way when Linear
/// said to wait are allowed `slack` to arrive).
fn quiet_between(
    log: &[FakeRequest],
    from: chrono::DateTime<Utc>,
    until: chrono::DateTime<Utc>,
    slack: Duration,
) {
    let start = from + chrono::Duration::from_std(slack).unwrap();
    let early: Vec<_> =
        log.iter().filter(|r| r.received_at > start && r.received_at < until).collect();
    assert!(
        early.is_empty(),
        "requests reached Linear while it had said to wait until {until}: {early:#?}"
    );
}

async fn storms(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(storage) = Storage::shared(backend) else { return };
    let linear = FakeLinear::start().await;
    let daemon = linear_daemon(dir.path(), &linear.url(), FakeLinear::API_KEY, &storage)
        .env("AGENTFLOW_EXECUTOR_KIND", "command")
        .env(
            "AGENTFLOW_EXECUTOR_COMMAND",
            "sh,-c,echo ::review::false; echo working on $AGENTFLOW_TASK_KEY; \
             case \"$AGENTFLOW_TASK_TITLE\" in *finish*) sleep 3 ;; *) sleep 0.5 ;; esac; \
             echo finished $AGENTFLOW_TASK_KEY",
        )
        .env("AGENTFLOW_ENGINE_WORKERS", "4")
        .start();
    let calm = linear.create_issue(NewIssue::new("ENG", "Before the storm"));
    done(&daemon, &linear, &calm.id).await;
    assert_eq!(linear_health(&daemon).await["ready"], true);
    let mut issues = vec![calm.id.clone()];

    // 1. HTTP 429 with retry-after: 4 s. Requests stop until then; the dashboard says so.
    let started = Utc::now();
    linear.too_many_requests(1, Duration::from_secs(4));
    let a = linear.create_issue(NewIssue::new("ENG", "Storm A (429)"));
    reported_degraded(&daemon, "rate limit", "rate limiting").await;
    done(&daemon, &linear, &a.id).await;
    let log = linear.request_log();
    let limited = log.iter().find(|r| r.status == 429).expect("a 429 was answered");
    quiet_between(
        &log,
        limited.answered_at,
        limited.answered_at + chrono::Duration::seconds(4),
        Duration::from_secs(1),
    );
    eprintln!("[{backend:?}] 429 storm: issue Done {} after the fault", Utc::now() - started);
    issues.push(a.id.clone());

    // 2. RATELIMITED (HTTP 400) once one request of a 3 s window is used: paused until the
    //    window's reset time (x-ratelimit-requests-reset).
    let started = Utc::now();
    linear.rate_limit_after(1, Duration::from_secs(3));
    let window_end = started + chrono::Duration::seconds(3);
    let b = linear.create_issue(NewIssue::new("ENG", "Storm B (RATELIMITED)"));
    reported_degraded(&daemon, "rate limit", "rate limiting").await;
    linear.rate_limit_after(1500, Duration::from_secs(3600));
    done(&daemon, &linear, &b.id).await;
    let log = linear.request_log();
    let limited = log
        .iter()
        .find(|r| r.status == 400 && r.code.as_deref() == Some("RATELIMITED"))
        .expect("a RATELIMITED answer");
    quiet_between(&log, limited.answered_at, window_end, Duration::from_secs(1));
    eprintln!(
        "[{backend:?}] RATELIMITED storm: issue Done {} after the fault",
        Utc::now() - started
    );
    issues.push(b.id.clone());

    // 3. A burst of sixteen 503s, the first two of them after 10 s: each request is retried
    //    three times, some fail for good, the loops try again; the dashboard shows Linear
    //    degraded until it answers again.
    let started = Utc::now();
    linear.slow_responses(2, Duration::from_secs(10));
    linear.server_errors(16, 503);
    let c = linear.create_issue(NewIssue::new("ENG", "Storm C (503, slow)"));
    reported_degraded(&daemon, "503", "degraded").await;
    done(&daemon, &linear, &c.id).await;
    eprintln!("[{backend:?}] 503/slow storm: issue Done {} after the fault", Utc::now() - started);
    issues.push(c.id.clone());

    // 4. Rate limited just as a run finishes: the status change and the summary wait for the
    //    reset instead of failing the attempt (which would run the agent again).
    let started = Utc::now();
    let d = linear.create_issue(NewIssue::new("ENG", "Storm D (429 at the finish)"));
    daemon
        .eventually("D's run to start", || async {
            runs_of(&daemon, &d.id).await.first().filter(|r| r["status"] == "running").cloned()
        })
        .await;
    linear.too_many_requests(1, Duration::from_secs(5));
    reported_degraded(&daemon, "rate limit", "rate limiting").await;
    done(&daemon, &linear, &d.id).await;
    eprintln!(
        "[{backend:?}] 429 at the finish: issue Done {} after it started",
        Utc::now() - started
    );
    issues.push(d.id.clone());

    // Healed: healthy again, every issue Done exactly once.
    daemon
        .eventually("/healthz to report Linear ready again", || async {
            (linear_health(&daemon).await["ready"] == true).then_some(())
        })
        .await;
    assert!(
        !attention(&daemon).await.iter().any(|m| m.contains("Linear is")),
        "the panel is clear again"
    );
    for id in &issues {
        let moves: Vec<_> = linear.transitions(id).into_iter().map(|t| (t.from, t.to)).collect();
        assert_eq!(
            moves,
            [
                ("Todo".to_owned(), "In Progress".to_owned()),
                ("In Progress".to_owned(), "Done".to_owned())
            ],
            "{id}: no duplicate or missing transition"
        );
        let comments = linear.comments(id);
        let done: Vec<_> = comments.iter().filter(|c| c.body.starts_with(DONE)).collect();
        assert_eq!(done.len(), 1, "{id}: one summary: {comments:#?}");
        let progress = comments.iter().filter(|c| c.body.starts_with("⏳")).count();
        assert!(progress <= 1, "{id}: at most one progress comment: {comments:#?}");
        let runs = runs_of(&daemon, id).await;
        assert_eq!(runs.len(), 1, "{id}: the command ran once: {runs:#?}");
        assert_eq!(runs[0]["status"], "succeeded", "{runs:#?}");
    }
    let stats = daemon.get("/metrics").await.body;
    let rate_limited = stats
        .lines()
        .find_map(|l| l.strip_prefix("agentflow_linear_rate_limited_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(rate_limited.is_some_and(|n| n >= 2.0), "{stats}");
    assert!(daemon.exited().is_none(), "the daemon rode out every storm");
    assert!(daemon.terminate().success());
}

on_backends!(linear_storms_pause_requests_and_leave_no_duplicates => storms: sqlite, redis, postgres);
