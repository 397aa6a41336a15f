//! No secret in any response or log line. Alone in its test binary: tracing caches per call
//! site whether anyone listens, so tests running beside it without a collector would hide
//! lines from this one.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/http.rs"]
mod http;
#[path = "support/schema.rs"]
mod schema;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use harness::Harness;
use http::{call_bytes, call_with};
use schema::{ENV_KEY, LINEAR_KEY, NEW_KEY, schema};
use serde_json::json;

/// Collects every log line.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread, so the log collector set for it sees the engine's and the dashboard's lines.
#[tokio::test(flavor = "current_thread")]
async fn no_secret_in_any_response_or_log_line() {
    let logs = Logs::default();
    let writer = logs.clone();
    let _logging = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(_logging);
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
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let r = call_bytes(&router, "/login", "token=dashboard-token-0123456789-SECRET", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = call_bytes(&router, "/login", "token=almost-dashboard-token-0123456789-SECRET", &form)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    all.push_str(&r.text);
    let r = call_with(
        &router,
        "PUT",
        "/api/settings",
        Some(json!({"values": {"linear.api_key": NEW_KEY}})),
        &auth,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    all.push_str(&r.text);
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for secret in [LINEAR_KEY, ENV_KEY, NEW_KEY, token, "SECRET-0123456789"] {
        assert!(!all.contains(secret), "secret {secret:.8}… leaked into a response");
        assert!(!logged.contains(secret), "secret {secret:.8}… leaked into the log");
    }
    assert!(all.contains("lin_api_…wxyz"));
    assert!(logged.contains("setting saved from the dashboard"), "the log was captured: {logged}");
    assert!(logged.contains("dashboard sign-in with a wrong token"), "{logged}");
}
