//! Settings, secrets and the access token, through the router.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/http.rs"]
mod http;
#[path = "support/schema.rs"]
mod schema;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use agentflow_dashboard::MissingItem;
use axum::http::{StatusCode, header};
use harness::Harness;
use http::{call, call_bytes, call_with};
use schema::{ENV_KEY, LINEAR_KEY, NEW_KEY, schema};
use serde_json::{Value, json};

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
    let bearer = [("authorization", "Bearer s3cret-dashboard-token")];
    assert_eq!(call_with(&router, "GET", "/api/session", None, &bearer).await.json()["auth"], true);

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
