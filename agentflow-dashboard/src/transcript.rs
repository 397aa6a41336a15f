//! `GET /api/sessions/{id}/transcript`: the agent's session transcript, as a download.
//!
//! Where transcripts live is the executor's business (the Claude Code CLI keeps one JSONL file
//! per session), so the daemon supplies a function from session id to file.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Finds the transcript file of a session; `None` when there is none.
pub type TranscriptFn = Arc<dyn Fn(&str) -> Option<PathBuf> + Send + Sync>;

/// Largest transcript served.
const MAX_BYTES: u64 = 64 << 20;

pub(crate) async fn transcript(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let Some(find) = &state.transcripts else {
        return Err(ApiError::not_found("transcripts are not available from this dashboard"));
    };
    // Session ids are UUIDs or similar; anything else could walk the file system.
    if id.is_empty()
        || id.len() > 128
        || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::bad_request(format!("`{id}` is not a session id")));
    }
    let not_found = || {
        ApiError::not_found(format!(
            "no transcript for session {id}: the agent may have run on another machine or the file was removed"
        ))
    };
    let path = find(&id).ok_or_else(not_found)?;
    let meta = tokio::fs::metadata(&path).await.map_err(|_| not_found())?;
    if meta.len() > MAX_BYTES {
        return Err(ApiError::bad_request(format!(
            "the transcript of session {id} is {} MB, more than the {} MB served here; read it on the machine",
            meta.len() >> 20,
            MAX_BYTES >> 20
        )));
    }
    let body = tokio::fs::read(&path).await.map_err(|_| not_found())?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{id}.jsonl\"")),
        ],
        body,
    )
        .into_response())
}
