//! `/metrics` in the Prometheus text format, and the sources callers add to it.

mod collector;
mod text;

use std::sync::Arc;

use agentflow_core::{JobState, Page, RunFilter, RunStatus, TaskStatus};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::DateTime;

pub(crate) use collector::RunCollector;
pub use text::{MetricKind, Sample};

use crate::error::ApiResult;
use crate::state::AppState;

/// Something that adds samples to `/metrics` (Linear requests, rate-limit budget, …).
///
/// Closures returning `Vec<Sample>` are sources:
///
/// ```
/// use agentflow_dashboard::{MetricSource, Sample};
/// let budget = || vec![Sample::gauge("agentflow_linear_ratelimit_remaining", "Requests left.", 1450.0)];
/// assert_eq!(budget.samples()[0].value, 1450.0);
/// ```
pub trait MetricSource: Send + Sync + 'static {
    /// The current samples. Must be cheap and must not block.
    fn samples(&self) -> Vec<Sample>;
}

impl<F> MetricSource for F
where
    F: Fn() -> Vec<Sample> + Send + Sync + 'static,
{
    fn samples(&self) -> Vec<Sample> {
        self()
    }
}

pub(crate) type Sources = Vec<Arc<dyn MetricSource>>;

pub(crate) async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let mut out: Vec<Sample> = Vec::new();

    let queue = state.queue.stats().await?;
    for s in JobState::ALL {
        out.push(
            Sample::gauge("agentflow_jobs", "Jobs in the queue by state.", queue.get(s) as f64)
                .label("state", s.as_str()),
        );
    }
    out.push(Sample::gauge(
        "agentflow_queue_depth",
        "Jobs waiting to run (scheduled, available, retryable).",
        queue.queued() as f64,
    ));

    for status in [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::TimedOut,
        RunStatus::Cancelled,
    ] {
        let filter = RunFilter { statuses: vec![status], ..Default::default() };
        let page = state.store.list_runs(&filter, Page::first(1)).await?;
        out.push(
            Sample::counter(
                "agentflow_runs_total",
                "Runs recorded, by outcome.",
                page.total as f64,
            )
            .label("outcome", status.as_str()),
        );
    }
    let totals = state.store.totals_since(DateTime::UNIX_EPOCH).await?;
    out.push(
        Sample::counter(
            "agentflow_tokens_total",
            "Tokens used by every recorded run.",
            totals.usage.input_tokens as f64,
        )
        .label("direction", "input"),
    );
    out.push(
        Sample::counter(
            "agentflow_tokens_total",
            "Tokens used by every recorded run.",
            totals.usage.output_tokens as f64,
        )
        .label("direction", "output"),
    );
    out.push(Sample::counter(
        "agentflow_cost_usd_total",
        "Cost of every recorded run, in US dollars.",
        totals.usage.cost_usd,
    ));

    let stats = state.engine.stats().await?;
    out.push(Sample::gauge("agentflow_running", "Runs in progress.", stats.running as f64));
    out.push(Sample::gauge(
        "agentflow_cost_today_usd",
        "Cost of today's runs (UTC), in US dollars.",
        stats.cost_today,
    ));
    out.push(Sample::gauge(
        "agentflow_paused",
        "1 when new pickups are paused.",
        if state.engine.is_paused() { 1.0 } else { 0.0 },
    ));
    let tasks = state.engine.tasks();
    for status in TaskStatus::MANAGED {
        let n = tasks.iter().filter(|t| t.status == status).count();
        out.push(
            Sample::gauge("agentflow_tasks", "Tasks the engine tracks, by status.", n as f64)
                .label("status", status.as_str()),
        );
    }

    state.collector.samples(&mut out);
    out.push(Sample::gauge(
        "agentflow_dashboard_ws_clients",
        "WebSocket clients connected.",
        state.ws.clients() as f64,
    ));
    out.push(Sample::counter(
        "agentflow_dashboard_ws_dropped_total",
        "WebSocket clients dropped for falling behind.",
        state.ws.dropped() as f64,
    ));

    for source in state.metric_sources.iter() {
        out.extend(source.samples());
    }

    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text::render(&out))
        .into_response())
}
