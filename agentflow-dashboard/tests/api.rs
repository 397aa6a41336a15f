//! The REST API through the router (no network), with a real engine on in-memory backends.

#[path = "support/harness.rs"]
mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use agentflow_core::{Error, TaskStatus};
use agentflow_dashboard::{MissingItem, Sample, SettingField, SettingsSchema};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use harness::Harness;
use serde_json::{Value, json};
use tower::ServiceExt;

const LINEAR_KEY: &str = "lin_api_0123456789abcdefghij0123456789wxyz";
const ENV_KEY: &str = "sk-ant-api03-ENVSECRETenvsecret0123456789-9876";
const NEW_KEY: &str = "lin_api_NEWSECRETnewsecret0123456789abcd";

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

async fn call(router: &Router, method: &str, uri: &str, body: Option<Value>) -> Reply {
    call_with(router, method, uri, body, &[]).await
}

async fn call_with(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri).header(header::HOST, "127.0.0.1:8080");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string()))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20).await.unwrap();
    Reply { status, headers, text: String::from_utf8_lossy(&bytes).into_owned() }
}

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
}

fn schema(h: &Harness, applied: Arc<AtomicUsize>) -> SettingsSchema {
    let live = h.handle.clone();
    SettingsSchema::new()
        .field(
            SettingField::new("linear.api_key", "Linear")
                .label("API key")
                .secret()
                .required()
                .env("LINEAR_API_KEY")
                .validate(|v| {
                    if v.starts_with("lin_") {
                        Ok(())
                    } else {
                        Err("a Linear key starts with lin_".into())
                    }
                }),
        )
        .field(SettingField::new("linear.team", "Linear").label("Team key").required())
        .field(
            SettingField::new("claude.api_key", "Claude")
                .label("Anthropic API key")
                .secret()
                .env("ANTHROPIC_API_KEY"),
        )
        .field(
            SettingField::new("engine.workers", "Engine")
                .label("Concurrent tasks")
                .integer(1, 64)
                .default_value("3")
                .live(),
        )
        .field(
            SettingField::new("engine.poll_interval", "Engine")
                .label("Poll interval")
                .duration()
                .default_value("30s")
                .live(),
        )
        .field(
            SettingField::new("storage.database_url", "Storage")
                .label("Database URL")
                .url(["sqlite", "postgres"]),
        )
        .file_value("storage.database_url", "sqlite://agentflow.db")
        .environment(|name| (name == "ANTHROPIC_API_KEY").then(|| ENV_KEY.to_owned()))
        .on_apply(move |change| {
            let live = live.clone();
            let applied = applied.clone();
            async move {
                applied.fetch_add(1, Ordering::SeqCst);
                match change.key.as_str() {
                    "engine.workers" => live.set_workers(
                        change
                            .expose()
                            .unwrap_or("3")
                            .parse()
                            .map_err(|_| Error::InvalidInput("workers".into()))?,
                    ),
                    "engine.poll_interval" => live.set_poll_interval(
                        humantime::parse_duration(change.expose().unwrap_or("30s"))
                            .map_err(|e| Error::InvalidInput(e.to_string()))?,
                    ),
                    _ => {}
                }
                Ok(())
            }
        })
}

fn field<'a>(settings: &'a Value, key: &str) -> &'a Value {
    settings["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["fields"].as_array().unwrap())
        .find(|f| f["key"] == key)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_masked_with_sources_validated_and_applied_live() {
    let h = Harness::start(false).await;
    h.store.put_setting("linear.api_key", LINEAR_KEY, true).await.unwrap();
    let applied = Arc::new(AtomicUsize::new(0));
    let router = h
        .dashboard()
        .settings(schema(&h, applied.clone()))
        .needs_configuration(|| async {
            vec![MissingItem { key: None, message: "Claude CLI not found".into() }]
        })
        .build()
        .router();
    let mut seen = String::new();

    let r = call(&router, "GET", "/api/settings", None).await;
    seen.push_str(&r.text);
    let s = r.json();
    let groups: Vec<_> =
        s["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(groups, ["Linear", "Claude", "Engine", "Storage"]);
    assert_eq!(field(&s, "linear.api_key")["value"], "lin_api_…wxyz");
    assert_eq!(field(&s, "linear.api_key")["source"], "database");
    assert_eq!(field(&s, "claude.api_key")["value"], "…9876");
    assert_eq!(field(&s, "claude.api_key")["source"], "environment");
    assert_eq!(field(&s, "engine.workers")["source"], "default");
    assert_eq!(field(&s, "storage.database_url")["source"], "file");
    assert_eq!(field(&s, "linear.team")["source"], Value::Null);
    let missing: Vec<_> =
        s["missing"].as_array().unwrap().iter().map(|m| m["key"].clone()).collect();
    assert_eq!(missing, [json!("linear.team"), Value::Null]);

    // Bad values: errors per field, nothing saved, no secret echoed.
    let r = call(
        &router,
        "PUT",
        "/api/settings",
        Some(json!({"values": {"engine.workers": "0", "engine.poll_interval": "soon", "linear.api_key": NEW_KEY.replace("lin_", "bad_"), "nope.key": "1"}})),
    )
    .await;
    seen.push_str(&r.text);
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let e = r.json();
    assert_eq!(e["error"]["fields"]["engine.workers"], "must be between 1 and 64, got 0");
    assert!(
        e["error"]["fields"]["engine.poll_interval"].as_str().unwrap().contains("not a duration")
    );
    assert_eq!(e["error"]["fields"]["linear.api_key"], "a Linear key starts with lin_");
    assert!(e["error"]["fields"]["nope.key"].as_str().unwrap().contains("unknown setting"));
    assert_eq!(h.store.get_setting("engine.workers").await.unwrap(), None);
    assert_eq!(applied.load(Ordering::SeqCst), 0);

    // Good values: live ones applied, the rest need a restart.
    let r = call(
        &router,
        "PUT",
        "/api/settings",
        Some(json!({"values": {"engine.workers": "5", "engine.poll_interval": "2s", "storage.database_url": "sqlite://other.db", "linear.api_key": NEW_KEY, "linear.team": "ENG"}})),
    )
    .await;
    seen.push_str(&r.text);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let saved = r.json();
    let outcome = |k: &str| {
        saved["results"].as_array().unwrap().iter().find(|x| x["key"] == k).unwrap()["outcome"]
            .clone()
    };
    assert_eq!(outcome("engine.workers"), "applied_live");
    assert_eq!(outcome("engine.poll_interval"), "applied_live");
    assert_eq!(outcome("storage.database_url"), "needs_restart");
    assert_eq!(outcome("linear.api_key"), "needs_restart");
    assert_eq!(h.handle.config().workers, 5);
    assert_eq!(h.handle.config().poll_interval, std::time::Duration::from_secs(2));
    assert_eq!(h.store.get_setting("linear.api_key").await.unwrap().unwrap().value, NEW_KEY);
    assert_eq!(field(&saved["settings"], "linear.api_key")["value"], "lin_api_…abcd");
    assert_eq!(field(&saved["settings"], "storage.database_url")["source"], "database");
    assert_eq!(saved["settings"]["missing"].as_array().unwrap().len(), 1);

    // Reset falls back to the next layer and applies it.
    let r =
        call(&router, "PUT", "/api/settings", Some(json!({"values": {"engine.workers": null}})))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(field(&r.json()["settings"], "engine.workers")["source"], "default");
    assert_eq!(h.handle.config().workers, 3);

    let r = call(&router, "GET", "/api/needs-configuration", None).await;
    assert_eq!(r.json()["missing"][0]["message"], "Claude CLI not found");

    for secret in [LINEAR_KEY, ENV_KEY, NEW_KEY, &NEW_KEY.replace("lin_", "bad_")] {
        assert!(!seen.contains(secret), "a secret leaked into a response");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_response() {
    let h = Harness::start(false).await;
    h.store.put_setting("linear.api_key", LINEAR_KEY, true).await.unwrap();
    let token = "dashboard-token-0123456789-SECRET";
    let router =
        h.dashboard().settings(schema(&h, Arc::default())).token(token.into()).build().router();
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let mut all = String::new();
    for (method, uri, body) in [
        ("GET", "/api/settings", None),
        ("GET", "/api/tasks", None),
        ("GET", "/api/stats", None),
        ("GET", "/api/runs", None),
        ("GET", "/metrics", None),
        ("GET", "/healthz", None),
        ("GET", "/", None),
        (
            "PUT",
            "/api/settings",
            Some(json!({"values": {"linear.api_key": "not-a-linear-key-but-SECRET-0123456789"}})),
        ),
        (
            "PUT",
            "/api/settings",
            Some(json!({"values": {"claude.api_key": " padded-SECRET-0123456789 "}})),
        ),
    ] {
        let r = call_with(&router, method, uri, body, &auth).await;
        all.push_str(&r.text);
        for v in r.headers.values() {
            all.push_str(v.to_str().unwrap_or_default());
        }
    }
    let r = call_with(
        &router,
        "POST",
        "/login",
        None,
        &[("content-type", "application/x-www-form-urlencoded")],
    )
    .await;
    all.push_str(&r.text);
    for secret in [LINEAR_KEY, ENV_KEY, token, "SECRET-0123456789"] {
        assert!(!all.contains(secret), "secret {secret:.8}… leaked");
    }
    assert!(all.contains("lin_api_…wxyz"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_guards_api_ws_and_metrics() {
    let h = Harness::start(false).await;
    let token = "s3cret-dashboard-token";
    let router = h.dashboard().token(token.into()).build().router();

    for uri in ["/api/tasks", "/api/settings", "/metrics", "/ws"] {
        let r = call(&router, "GET", uri, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("Authorization: Bearer"));
    }
    let r = call(&router, "POST", "/api/pause", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!h.handle.is_paused());
    let r =
        call_with(&router, "GET", "/api/tasks", None, &[("authorization", "Bearer wrong")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call_with(
        &router,
        "GET",
        "/api/tasks",
        None,
        &[("authorization", "Bearer s3cret-dashboard-token")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    // Pages send a person to the login form; health stays open for probes.
    let r = call(&router, "GET", "/", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/login");
    assert_eq!(call(&router, "GET", "/healthz", None).await.status, StatusCode::OK);
    let r = call(&router, "GET", "/login", None).await;
    assert!(r.text.contains("<form") && r.text.contains("Dashboard token"));

    let form = [("content-type", "application/x-www-form-urlencoded")];
    let r = call_bytes(&router, "/login", "token=wrong", &form).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    let r = call_bytes(&router, "/login", "token=s3cret-dashboard-token", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && !cookie.contains(token)
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let r = call_with(&router, "POST", "/api/pause", None, &[("cookie", pair.as_str())]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(h.handle.is_paused());

    // Another site cannot drive it through the browser's cookie.
    let r = call_with(
        &router,
        "POST",
        "/api/resume",
        None,
        &[("cookie", pair.as_str()), ("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(h.handle.is_paused());
}

async fn call_bytes(
    router: &Router,
    uri: &str,
    body: &'static str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method("POST").uri(uri).header(header::HOST, "127.0.0.1:8080");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    Reply { status, headers, text: String::from_utf8_lossy(&bytes).into_owned() }
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
