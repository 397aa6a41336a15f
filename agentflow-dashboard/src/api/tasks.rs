//! Tasks: the board, one task with its runs and log, the buttons, and new local tasks.

use agentflow_core::{JobId, LogLine, LogPage, Page, Run, RunFilter, RunId, TaskId, TaskUpdate};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Runs listed on a task page.
const TASK_RUNS: u32 = 200;
/// Log lines per page at most.
const MAX_LOG_PAGE: u32 = 2000;

/// A task as the board shows it: its live state plus the time it has been running.
#[derive(Debug, Serialize)]
pub(crate) struct TaskView {
    #[serde(flatten)]
    update: TaskUpdate,
    /// Seconds since the current run started, while one runs.
    elapsed_secs: Option<i64>,
}

impl From<TaskUpdate> for TaskView {
    fn from(update: TaskUpdate) -> Self {
        let running = update.state.phase == agentflow_core::lifecycle::Phase::Running;
        let elapsed_secs =
            update.started_at.filter(|_| running).map(|s| (Utc::now() - s).num_seconds().max(0));
        TaskView { update, elapsed_secs }
    }
}

#[derive(Serialize)]
pub(crate) struct TaskList {
    tasks: Vec<TaskView>,
    /// Whether `POST /api/tasks` adds tasks (a local source is configured).
    can_create: bool,
}

pub(crate) async fn list(State(state): State<AppState>) -> Json<TaskList> {
    let tasks = state.todo.merge(state.engine.tasks());
    Json(TaskList {
        tasks: tasks.into_iter().map(TaskView::from).collect(),
        can_create: state.local.is_some(),
    })
}

#[derive(Serialize)]
pub(crate) struct TaskDetail {
    task: Option<TaskView>,
    runs: Vec<Run>,
    runs_total: u64,
    /// Whether `GET /api/sessions/{id}/transcript` serves session transcripts.
    transcripts: bool,
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<TaskDetail>> {
    let id = TaskId(id);
    let task = state
        .todo
        .merge(state.engine.task(&id).into_iter().collect())
        .into_iter()
        .find(|t| t.task == id)
        .map(TaskView::from);
    let filter = RunFilter { task: Some(id.clone()), ..Default::default() };
    let page = state.store.list_runs(&filter, Page::first(TASK_RUNS)).await?;
    if task.is_none() && page.runs.is_empty() {
        return Err(ApiError::not_found(format!(
            "task `{id}` not found: it is not on the board and has no runs; it may have been \
             finished before the daemon started"
        )));
    }
    Ok(Json(TaskDetail {
        task,
        runs: page.runs,
        runs_total: page.total,
        transcripts: state.transcripts.is_some(),
    }))
}

#[derive(Deserialize)]
pub(crate) struct LogQuery {
    /// The run; the task's latest when absent.
    run: Option<String>,
    #[serde(default)]
    after: u64,
    limit: Option<u32>,
}

#[derive(Serialize)]
pub(crate) struct LogView {
    run: Option<RunId>,
    lines: Vec<LogLine>,
    /// Pass as `after` for the next page.
    next_after: u64,
    /// Whether more lines may follow right away.
    more: bool,
}

pub(crate) async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Json<LogView>> {
    let id = TaskId(id);
    let run = match q.run.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => {
            let uuid = Uuid::parse_str(r).map_err(|_| {
                ApiError::bad_request(format!(
                    "`{r}` is not a run id: runs are UUIDs as listed in `runs`"
                ))
            })?;
            let run = state.store.get_run(RunId(uuid)).await?;
            match run {
                Some(run) if run.task == id => Some(run.id),
                _ => return Err(ApiError::not_found(format!("run {r} of task `{id}` not found"))),
            }
        }
        None => {
            let live = state.engine.task(&id).and_then(|t| t.run);
            match live {
                Some(r) => Some(r),
                None => {
                    let filter = RunFilter { task: Some(id.clone()), ..Default::default() };
                    state.store.list_runs(&filter, Page::first(1)).await?.runs.first().map(|r| r.id)
                }
            }
        }
    };
    let Some(run) = run else {
        return Ok(Json(LogView {
            run: None,
            lines: Vec::new(),
            next_after: q.after,
            more: false,
        }));
    };
    let limit = q.limit.unwrap_or(500).clamp(1, MAX_LOG_PAGE);
    let lines = state.store.logs(run, LogPage { after: q.after, limit }).await?;
    let next_after = lines.last().map(|l| l.seq).unwrap_or(q.after);
    let more = lines.len() as u32 == limit;
    Ok(Json(LogView { run: Some(run), lines, next_after, more }))
}

#[derive(Serialize)]
pub(crate) struct Retried {
    job: JobId,
}

pub(crate) async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Retried>> {
    let id = TaskId(id);
    let job = state.engine.retry(&id).await?;
    tracing::info!(task = %id, job = %job, "retry requested from the dashboard");
    Ok(Json(Retried { job }))
}

#[derive(Serialize)]
pub(crate) struct Cancelled {
    cancelled: bool,
    message: String,
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Cancelled>> {
    let id = TaskId(id);
    let cancelled = state.engine.cancel(&id).await?;
    tracing::info!(task = %id, cancelled, "cancel requested from the dashboard");
    let message = if cancelled {
        format!("task `{id}` cancelled")
    } else {
        format!("task `{id}` had nothing running or queued; nothing to cancel")
    };
    Ok(Json(Cancelled { cancelled, message }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTask {
    title: String,
    #[serde(default)]
    body: String,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Json(new): Json<NewTask>,
) -> ApiResult<(StatusCode, Json<agentflow_core::Task>)> {
    let Some(local) = &state.local else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "tasks come from the issue tracker here: create the issue there (in its Todo state) \
             and agentflow picks it up",
        ));
    };
    let title = new.title.trim();
    if title.is_empty() {
        let mut fields = std::collections::BTreeMap::new();
        fields.insert("title".to_owned(), "a task needs a title".to_owned());
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: "the task was not added: give it a title".to_owned(),
            fields,
        });
    }
    if title.chars().count() > 500 || new.body.len() > 100_000 {
        return Err(ApiError::bad_request(
            "task too large: keep the title under 500 characters and the body under 100 kB",
        ));
    }
    let task = local.add(title, new.body);
    tracing::info!(task = %task.id, "task added from the dashboard");
    Ok((StatusCode::CREATED, Json(task)))
}
