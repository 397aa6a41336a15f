//! Settings, secrets and the access token, through the router.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/http.rs"]
mod http;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use agentflow_core::Error;
use agentflow_dashboard::{MissingItem, SettingField, SettingsSchema};
use axum::http::{StatusCode, header};
use harness::Harness;
use http::{call, call_bytes, call_with};
use serde_json::{Value, json};

const LINEAR_KEY: &str = "lin_api_0123456789abcdefghij0123456789wxyz";
const ENV_KEY: &str = "sk-ant-api03-ENVSECRETenvsecret0123456789-9876";
const NEW_KEY: &str = "lin_api_NEWSECRETnewsecret0123456789abcd";

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
