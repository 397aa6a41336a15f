//! The run history: filters, sorting and paging.
//!
//! The store pages runs newest first, so sorting by start time in either direction is one store
//! page at any depth (ascending pages are read from the far end). Other columns are sorted here,
//! over at most [`SORT_CAP`] matching runs; past that the caller is asked to narrow the filter.

use std::cmp::Ordering;

use agentflow_core::{Page, Run, RunFilter, RunStatus};
use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Most runs sorted in memory by a column other than the start time.
pub(crate) const SORT_CAP: u64 = 10_000;
/// Largest page.
const MAX_PER_PAGE: u32 = 200;
/// Chunk read from the store when sorting in memory.
const CHUNK: u32 = 1000;

#[derive(Debug, Deserialize)]
pub(crate) struct RunQuery {
    /// Comma-separated outcomes.
    status: Option<String>,
    /// Started at or after (RFC 3339 or `YYYY-MM-DD`).
    since: Option<String>,
    /// Started before (RFC 3339, or `YYYY-MM-DD` meaning the end of that day).
    until: Option<String>,
    /// Text search over key, title, summary and error.
    q: Option<String>,
    /// `started`, `duration`, `turns`, `tokens`, `cost` or `outcome`.
    sort: Option<String>,
    /// `asc` or `desc` (default).
    order: Option<String>,
    /// 1-based.
    page: Option<u64>,
    per_page: Option<u32>,
}

/// A run with the derived numbers the table shows.
#[derive(Debug, Serialize)]
pub(crate) struct RunView {
    #[serde(flatten)]
    run: Run,
    duration_secs: Option<f64>,
    tokens: u64,
}

impl From<Run> for RunView {
    fn from(run: Run) -> Self {
        RunView {
            duration_secs: duration(&run),
            tokens: run.usage.input_tokens + run.usage.output_tokens,
            run,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct RunList {
    runs: Vec<RunView>,
    total: u64,
    page: u64,
    per_page: u32,
    pages: u64,
    sort: &'static str,
    order: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SortKey {
    Started,
    Duration,
    Turns,
    Tokens,
    Cost,
    Outcome,
}

impl SortKey {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "started" => SortKey::Started,
            "duration" => SortKey::Duration,
            "turns" => SortKey::Turns,
            "tokens" => SortKey::Tokens,
            "cost" => SortKey::Cost,
            "outcome" => SortKey::Outcome,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            SortKey::Started => "started",
            SortKey::Duration => "duration",
            SortKey::Turns => "turns",
            SortKey::Tokens => "tokens",
            SortKey::Cost => "cost",
            SortKey::Outcome => "outcome",
        }
    }

    fn compare(self, a: &Run, b: &Run) -> Ordering {
        let by = match self {
            SortKey::Started => Ordering::Equal,
            SortKey::Duration => {
                duration(a).unwrap_or(f64::MAX).total_cmp(&duration(b).unwrap_or(f64::MAX))
            }
            SortKey::Turns => a.usage.turns.cmp(&b.usage.turns),
            SortKey::Tokens => (a.usage.input_tokens + a.usage.output_tokens)
                .cmp(&(b.usage.input_tokens + b.usage.output_tokens)),
            SortKey::Cost => a.usage.cost_usd.total_cmp(&b.usage.cost_usd),
            SortKey::Outcome => a.status.as_str().cmp(b.status.as_str()),
        };
        by.then(a.started_at.cmp(&b.started_at)).then(a.id.cmp(&b.id))
    }
}

fn duration(run: &Run) -> Option<f64> {
    run.finished_at.map(|f| (f - run.started_at).num_milliseconds().max(0) as f64 / 1e3)
}

fn parse_time(field: &str, s: &str, end_of_day: bool) -> ApiResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let d = if end_of_day { d.succ_opt().unwrap_or(d) } else { d };
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(ApiError::bad_request(format!(
        "`{field}` must be a date like 2026-01-31 or a time like 2026-01-31T09:00:00Z, got `{s}`"
    )))
}

fn filter_of(q: &RunQuery) -> ApiResult<RunFilter> {
    let mut filter = RunFilter::default();
    if let Some(list) = q.status.as_deref() {
        for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let status = RunStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown status `{s}`: use running, succeeded, failed, timed_out or cancelled"
                ))
            })?;
            filter.statuses.push(status);
        }
    }
    if let Some(s) = q.since.as_deref().filter(|s| !s.is_empty()) {
        filter.since = Some(parse_time("since", s, false)?);
    }
    if let Some(s) = q.until.as_deref().filter(|s| !s.is_empty()) {
        filter.until = Some(parse_time("until", s, true)?);
    }
    filter.text = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(filter)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Query(q): Query<RunQuery>,
) -> ApiResult<Json<RunList>> {
    let filter = filter_of(&q)?;
    let sort = match q.sort.as_deref().filter(|s| !s.is_empty()) {
        None => SortKey::Started,
        Some(s) => SortKey::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "cannot sort by `{s}`: use started, duration, turns, tokens, cost or outcome"
            ))
        })?,
    };
    let asc = match q.order.as_deref() {
        None | Some("") | Some("desc") => false,
        Some("asc") => true,
        Some(o) => {
            return Err(ApiError::bad_request(format!("order must be `asc` or `desc`, got `{o}`")));
        }
    };
    let per_page = q.per_page.unwrap_or(50).clamp(1, MAX_PER_PAGE);
    let page = q.page.unwrap_or(1).max(1);
    let offset = (page - 1).saturating_mul(per_page as u64);

    let (runs, total) = if sort == SortKey::Started {
        if !asc {
            let p = state.store.list_runs(&filter, Page { offset, limit: per_page }).await?;
            (p.runs, p.total)
        } else {
            // Oldest first: read the newest-first listing from its far end.
            let total = state.store.list_runs(&filter, Page::first(1)).await?.total;
            let end = total.saturating_sub(offset);
            let start = end.saturating_sub(per_page as u64);
            let mut runs = if end == 0 {
                Vec::new()
            } else {
                state
                    .store
                    .list_runs(&filter, Page { offset: start, limit: (end - start) as u32 })
                    .await?
                    .runs
            };
            runs.reverse();
            (runs, total)
        }
    } else {
        let first = state.store.list_runs(&filter, Page::first(CHUNK)).await?;
        let total = first.total;
        if total > SORT_CAP {
            return Err(ApiError::bad_request(format!(
                "{total} runs match; sorting by {} works on at most {SORT_CAP}: narrow the filter \
                 (outcome, dates or search) or sort by start time",
                sort.as_str()
            )));
        }
        let mut all = first.runs;
        let mut bounded = 0;
        while (all.len() as u64) < total && bounded < SORT_CAP / CHUNK as u64 + 1 {
            bounded += 1;
            let next = state
                .store
                .list_runs(&filter, Page { offset: all.len() as u64, limit: CHUNK })
                .await?;
            if next.runs.is_empty() {
                break;
            }
            all.extend(next.runs);
        }
        all.sort_by(|a, b| if asc { sort.compare(a, b) } else { sort.compare(b, a) });
        let runs = all.into_iter().skip(offset as usize).take(per_page as usize).collect();
        (runs, total)
    };
    Ok(Json(RunList {
        runs: runs.into_iter().map(RunView::from).collect(),
        total,
        page,
        per_page,
        pages: total.div_ceil(per_page as u64).max(1),
        sort: sort.as_str(),
        order: if asc { "asc" } else { "desc" },
    }))
}
