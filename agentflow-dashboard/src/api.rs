//! The REST API under `/api`.

mod runs;
mod settings;
mod tasks;

use agentflow_core::{QueueStats, Stats};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/tasks", get(tasks::list).post(tasks::create))
        .route("/tasks/{id}", get(tasks::detail))
        .route("/tasks/{id}/logs", get(tasks::logs))
        .route("/tasks/{id}/retry", post(tasks::retry))
        .route("/tasks/{id}/cancel", post(tasks::cancel))
        .route("/runs", get(runs::list))
        .route("/sessions/{id}/transcript", get(crate::transcript::transcript))
        .route("/stats", get(stats))
        .route("/pause", post(pause))
        .route("/resume", post(resume))
        .route("/settings", get(settings::get).put(settings::put))
        .route("/needs-configuration", get(settings::needs_configuration))
        .route("/session", get(session))
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint: see the crate README for the list under /api")
}

#[derive(Serialize)]
struct StatsView {
    #[serde(flatten)]
    stats: Stats,
    queue: QueueStats,
}

async fn stats(State(state): State<AppState>) -> ApiResult<Json<StatsView>> {
    let mut stats = state.engine.stats().await?;
    stats.paused = state.engine.is_paused();
    let queue = state.queue.stats().await?;
    Ok(Json(StatsView { stats, queue }))
}

#[derive(Serialize)]
struct Paused {
    paused: bool,
}

async fn pause(State(state): State<AppState>) -> Json<Paused> {
    state.engine.pause();
    tracing::info!("pickups paused from the dashboard");
    Json(Paused { paused: state.engine.is_paused() })
}

async fn resume(State(state): State<AppState>) -> Json<Paused> {
    state.engine.resume();
    tracing::info!("pickups resumed from the dashboard");
    Json(Paused { paused: state.engine.is_paused() })
}

#[derive(Serialize)]
struct Session {
    /// Whether a token protects the dashboard (the UI then offers "Sign out").
    auth: bool,
}

async fn session(State(state): State<AppState>) -> Json<Session> {
    Json(Session { auth: state.auth.is_some() })
}
