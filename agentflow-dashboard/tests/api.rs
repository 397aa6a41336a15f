//! The REST API through the router (no network), with a real engine on in-memory backends.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/http.rs"]
mod http;

use agentflow_core::{Error, TaskStatus};
use agentflow_dashboard::Sample;
use axum::Router;
use axum::http::{StatusCode, header};
use harness::Harness;
use http::call;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn board_task_logs_history_and_stats_follow_a_run() {
    let h = Harness::start(true).await;
    let router = h.dashboard().build().router();

    let r = call(
        &router,
        "POST",
        "/api/tasks",
        Some(json!({"title": "Write a haiku", "body": "<b>five</b> seven five"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();

    let t = h
        .wait_task(&id, "running", |t| t.state.phase == agentflow_core::lifecycle::Phase::Running)
        .await;
    assert_eq!(t.status, TaskStatus::InProgress);
    let r = call(&router, "GET", "/api/tasks", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let board = r.json();
    assert_eq!(board["can_create"], true);
    let card = board["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == id.as_str())
        .expect("task on the board");
    assert_eq!(card["status"], "in_progress");
    assert_eq!(card["attempt"], 1);
    assert!(card["elapsed_secs"].is_i64(), "{card}");

    // The log fills while the run goes on.
    let mut kinds = Vec::new();
    for _ in 0..100 {
        let r = call(&router, "GET", &format!("/api/tasks/{id}/logs"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        kinds = r.json()["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["kind"].as_str().unwrap().to_owned())
            .collect();
        if kinds.iter().filter(|k| *k == "tool_result").count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        kinds.contains(&"text".to_owned()) && kinds.contains(&"tool_use".to_owned()),
        "{kinds:?}"
    );
    let r = call(&router, "GET", &format!("/api/tasks/{id}/logs?after=2&limit=1"), None).await;
    let page = r.json();
    assert_eq!(page["lines"].as_array().unwrap().len(), 1);
    assert_eq!(page["lines"][0]["seq"], 3);
    assert_eq!(page["next_after"], 3);
    assert_eq!(page["more"], true);

    h.agent.release();
    h.wait_task(&id, "done", |t| t.status == TaskStatus::Done).await;

    let r = call(&router, "GET", &format!("/api/tasks/{id}"), None).await;
    let detail = r.json();
    assert_eq!(detail["task"]["status"], "done");
    assert_eq!(detail["runs"].as_array().unwrap().len(), 1);
    assert_eq!(detail["runs"][0]["status"], "succeeded");
    let run_id = detail["runs"][0]["id"].as_str().unwrap().to_owned();
    let r = call(&router, "GET", &format!("/api/tasks/{id}/logs?run={run_id}"), None).await;
    assert!(r.json()["lines"].as_array().unwrap().iter().any(|l| l["line"] == "All done."));
    let r = call(&router, "GET", &format!("/api/tasks/{id}/logs?run=not-a-uuid"), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("not a run id"));

    let r = call(&router, "GET", "/api/runs?status=succeeded&q=haiku", None).await;
    let runs = r.json();
    assert_eq!(runs["total"], 1, "{runs}");
    assert_eq!(runs["runs"][0]["tokens"], 1200);
    assert_eq!(runs["runs"][0]["usage"]["cost_usd"], 0.42);
    let r = call(&router, "GET", "/api/runs?status=failed", None).await;
    assert_eq!(r.json()["total"], 0);

    let r = call(&router, "GET", "/api/stats", None).await;
    let stats = r.json();
    assert_eq!(stats["done_today"], 1, "{stats}");
    assert_eq!(stats["cost_today"], 0.42);
    assert_eq!(stats["queue"]["completed"], 1);

    let r = call(&router, "GET", "/api/tasks/nope", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_pickups_until_resume() {
    let h = Harness::start(false).await;
    let router = h.dashboard().build().router();
    let r = call(&router, "POST", "/api/pause", None).await;
    assert_eq!(r.json()["paused"], true);
    assert!(h.handle.is_paused());
    let task = h.source.add("Paused task", "");
    // Several poll intervals pass; the task stays in Todo and shows there.
    let mut shown = false;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let board = call(&router, "GET", "/api/tasks", None).await.json();
        shown |= board["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["task"] == task.id.as_str() && t["status"] == "todo");
    }
    assert!(shown, "the waiting task shows in Todo");
    assert_eq!(h.source.task(&task.id).unwrap().status, TaskStatus::Todo);
    assert_eq!(call(&router, "GET", "/api/stats", None).await.json()["paused"], true);

    let r = call(&router, "POST", "/api/resume", None).await;
    assert_eq!(r.json()["paused"], false);
    h.wait_task(task.id.as_str(), "done", |t| t.status == TaskStatus::Done).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_then_retry() {
    let h = Harness::start(true).await;
    let router = h.dashboard().build().router();
    let task = h.source.add("Long job", "");
    let id = task.id.as_str();
    h.wait_task(id, "running", |t| t.state.phase == agentflow_core::lifecycle::Phase::Running)
        .await;

    let r = call(&router, "POST", &format!("/api/tasks/{id}/retry"), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("running"));

    let r = call(&router, "POST", &format!("/api/tasks/{id}/cancel"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["cancelled"], true);
    h.wait_task(id, "failed", |t| t.status == TaskStatus::Failed).await;

    let r = call(&router, "POST", &format!("/api/tasks/{id}/retry"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.json()["job"].is_string());
    // The second run has started once the store holds it (the board's phase can lag: the
    // engine's retry marks the task queued after enqueueing, racing the worker).
    for i in 0.. {
        let runs = call(&router, "GET", &format!("/api/tasks/{id}"), None).await.json()["runs"]
            .as_array()
            .unwrap()
            .len();
        if runs == 2 {
            break;
        }
        assert!(i < 400, "the retry never started");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    h.agent.release();
    h.wait_task(id, "done", |t| t.status == TaskStatus::Done).await;
    let detail = call(&router, "GET", &format!("/api/tasks/{id}"), None).await.json();
    let outcomes: Vec<_> =
        detail["runs"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["succeeded", "cancelled"]);

    let r = call(&router, "POST", "/api/tasks", Some(json!({"title": "  "}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json()["error"]["fields"]["title"].is_string());
    let r = call(&router, "POST", "/api/nope", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"]["message"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_task_without_local_source_says_where_tasks_come_from() {
    let h = Harness::start(false).await;
    let router =
        agentflow_dashboard::Dashboard::builder(h.handle.clone(), h.store.clone(), h.queue.clone())
            .build()
            .router();
    let r = call(&router, "POST", "/api/tasks", Some(json!({"title": "x"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("tracker"));
    assert_eq!(call(&router, "GET", "/api/tasks", None).await.json()["can_create"], false);
    assert_eq!(call(&router, "GET", "/api/session", None).await.json()["auth"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health() {
    let h = Harness::start(false).await;
    let router = h
        .dashboard()
        .metric_source(|| {
            vec![
                Sample::counter("agentflow_linear_requests_total", "Requests sent to Linear.", 7.0)
                    .label("outcome", "ok"),
                Sample::gauge(
                    "agentflow_linear_ratelimit_remaining",
                    "Linear requests left in the window.",
                    1450.0,
                ),
            ]
        })
        .readiness("linear", || async {
            Err(Error::unavailable("linear", "HTTP 503 from api.linear.app"))
        })
        .build()
        .router();
    let task = h.source.add("Measure me", "");
    h.wait_task(task.id.as_str(), "done", |t| t.status == TaskStatus::Done).await;

    let mut text = String::new();
    for _ in 0..100 {
        let r = call(&router, "GET", "/metrics", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        text = r.text;
        if text.contains("agentflow_run_duration_seconds_count{outcome=\"succeeded\"} 1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for needle in [
        "# TYPE agentflow_jobs gauge",
        "agentflow_jobs{state=\"completed\"} 1",
        "agentflow_queue_depth 0",
        "agentflow_runs_total{outcome=\"succeeded\"} 1",
        "agentflow_tokens_total{direction=\"input\"} 1000",
        "agentflow_cost_usd_total 0.42",
        "# TYPE agentflow_run_duration_seconds histogram",
        "agentflow_run_duration_seconds_bucket{outcome=\"succeeded\",le=\"+Inf\"} 1",
        "agentflow_run_duration_seconds_count{outcome=\"succeeded\"} 1",
        "agentflow_tasks{status=\"done\"} 1",
        "agentflow_paused 0",
        "agentflow_linear_requests_total{outcome=\"ok\"} 7",
        "agentflow_linear_ratelimit_remaining 1450",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }

    let r = call(&router, "GET", "/healthz", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let health = r.json();
    assert_eq!(health["status"], "degraded");
    let comps = health["components"].as_array().unwrap();
    let names: Vec<_> = comps.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["store", "queue", "engine", "linear"]);
    assert!(comps[..3].iter().all(|c| c["ready"] == true));
    assert!(comps[3]["error"].as_str().unwrap().contains("HTTP 503"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_is_served_with_a_strict_policy_and_never_writes_html_from_data() {
    let h = Harness::start(false).await;
    let router = h.dashboard().build().router();
    for path in ["/", "/history", "/settings", "/task/LOC-1"] {
        let r = call(&router, "GET", path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.text.contains(r#"<script type="module" src="/assets/js/app.js">"#));
        let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"));
        assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    let r = call(&router, "GET", "/assets/app.css", None).await;
    assert!(r.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));
    assert!(r.text.contains("prefers-color-scheme: dark"));
    assert!(!r.text.contains("@import") && !r.text.contains("url(http"), "no external resources");
    for module in
        ["app", "api", "live", "dom", "format", "board", "task", "history", "settings", "chrome"]
    {
        let r = call(&router, "GET", &format!("/assets/js/{module}.js"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{module}");
        assert!(r.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "http://",
            "https://",
        ] {
            assert!(!r.text.contains(sink), "{module}.js uses {sink}");
        }
    }
    assert_eq!(call(&router, "GET", "/assets/nope.js", None).await.status, StatusCode::NOT_FOUND);
    println!("embedded UI: {} bytes", agentflow_dashboard::ui_bytes());
    assert!(agentflow_dashboard::ui_bytes() < 150_000);
}

#[tokio::test]
async fn refuses_a_public_address_without_a_token() {
    let router = Router::new();
    let err = agentflow_dashboard::serve("0.0.0.0:0".parse().unwrap(), router, None, async {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfig { ref key, .. } if key == "dashboard.token"),
        "{err}"
    );
    assert!(err.to_string().contains("without a token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_transcripts_download_by_session_id_only() {
    let h = Harness::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("session-LOC-1.jsonl"), "{\"type\":\"system\"}\n").unwrap();
    let root = dir.path().to_owned();
    let router = h
        .dashboard()
        .transcripts(move |id| Some(root.join(format!("{id}.jsonl"))))
        .build()
        .router();
    let task = h.source.add("Talk", "");
    h.wait_task(task.id.as_str(), "done", |t| t.status == TaskStatus::Done).await;
    let detail = call(&router, "GET", "/api/tasks/LOC-1", None).await.json();
    assert_eq!(detail["transcripts"], true);
    assert_eq!(detail["runs"][0]["session_id"], "session-LOC-1");

    let r = call(&router, "GET", "/api/sessions/session-LOC-1/transcript", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text, "{\"type\":\"system\"}\n");
    assert!(r.headers[header::CONTENT_DISPOSITION].to_str().unwrap().starts_with("attachment"));
    assert!(r.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
    let r = call(&router, "GET", "/api/sessions/..%2F..%2Fetc%2Fpasswd/transcript", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(&router, "GET", "/api/sessions/session-LOC-9/transcript", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("no transcript"));

    let plain = h.dashboard().build().router();
    assert_eq!(call(&plain, "GET", "/api/tasks/LOC-1", None).await.json()["transcripts"], false);
    assert_eq!(
        call(&plain, "GET", "/api/sessions/session-LOC-1/transcript", None).await.status,
        StatusCode::NOT_FOUND
    );
}
