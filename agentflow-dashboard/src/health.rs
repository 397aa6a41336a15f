//! `/healthz`: liveness plus the readiness of each component.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentflow_core::Result;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use futures::future::{BoxFuture, join_all};
use serde::Serialize;

use crate::state::AppState;

/// One component's readiness check (database, queue, Linear, …).
pub(crate) type ReadinessFn = Arc<dyn Fn() -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// How long one check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize)]
pub(crate) struct Health {
    /// `ok` when every component is ready, `degraded` otherwise; the process is alive either way.
    status: &'static str,
    paused: bool,
    components: Vec<Component>,
}

#[derive(Debug, Serialize)]
struct Component {
    name: String,
    ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    latency_ms: u64,
}

pub(crate) async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let mut checks: Vec<(String, ReadinessFn)> = Vec::new();
    let store = state.store.clone();
    checks.push((
        "store".to_owned(),
        Arc::new(move || {
            let store = store.clone();
            Box::pin(async move { store.get_cursor("agentflow.healthz").await.map(|_| ()) })
        }),
    ));
    let queue = state.queue.clone();
    checks.push((
        "queue".to_owned(),
        Arc::new(move || {
            let queue = queue.clone();
            Box::pin(async move { queue.stats().await.map(|_| ()) })
        }),
    ));
    let engine = state.engine.clone();
    checks.push((
        "engine".to_owned(),
        Arc::new(move || {
            let engine = engine.clone();
            Box::pin(async move { engine.stats().await.map(|_| ()) })
        }),
    ));
    checks.extend(state.readiness.iter().cloned());

    let components = join_all(checks.into_iter().map(|(name, check)| async move {
        let start = Instant::now();
        let result = tokio::time::timeout(CHECK_TIMEOUT, check()).await;
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
        };
        Component {
            name,
            ready: error.is_none(),
            error,
            latency_ms: start.elapsed().as_millis() as u64,
        }
    }))
    .await;
    let ready = components.iter().all(|c| c.ready);
    let health = Health {
        status: if ready { "ok" } else { "degraded" },
        paused: state.engine.is_paused(),
        components,
    };
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(health))
}
