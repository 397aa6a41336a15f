//! `/admin`: a small JSON API to play the humans (create issues, move them, comment) and to flip
//! fault switches while trying the daemon by hand against the `fake-linear` binary.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{CommentAuthor, FakeComment, FakeData, FakeIssue, FakeLinear, NewIssue};

pub(crate) fn router(data: FakeData) -> Router {
    Router::new()
        .route("/admin", get(help))
        .route("/admin/issues", get(list_issues).post(create_issue))
        .route("/admin/issues/{id}/state", post(move_issue))
        .route("/admin/issues/{id}/comments", get(list_comments).post(add_comment))
        .route("/admin/faults", post(faults))
        .route("/admin/requests", get(requests))
        .with_state(data)
}

const HELP: &str = "fake Linear admin API (JSON):
  GET  /admin/issues                      every issue with its state
  POST /admin/issues                      {\"title\", \"description\"?, \"team\"?, \"state\"?, \"labels\"?, \"priority\"?}
  POST /admin/issues/{id}/state           {\"state\": \"In Review\"}   (id or key, e.g. ENG-1)
  GET  /admin/issues/{id}/comments
  POST /admin/issues/{id}/comments        {\"body\", \"as\"?: \"human\" | \"viewer\" | \"bot\"}
  POST /admin/faults                      {\"auth_failure\"?: 401, \"rate_limit_after\"?: [n, secs],
                                           \"too_many_requests\"?: [count, secs],
                                           \"server_errors\"?: [count, status], \"slow\"?: [count, ms]}
  GET  /admin/requests                    requests per GraphQL operation
";

async fn help() -> &'static str {
    HELP
}

fn bad(message: String) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": message }))).into_response()
}

fn issue_json(data: &FakeData, i: &FakeIssue) -> Value {
    json!({
        "id": i.id, "identifier": i.identifier, "title": i.title, "description": i.description,
        "state": data.issue_state_name(&i.id), "labels": i.labels, "priority": i.priority,
    })
}

fn comment_json(c: &FakeComment) -> Value {
    json!({
        "id": c.id, "body": c.body, "user": c.user_id, "bot": c.bot_actor,
        "created_at": c.created_at, "edits": c.edits,
    })
}

async fn list_issues(State(data): State<FakeData>) -> Response {
    let issues: Vec<Value> = data.issues().iter().map(|i| issue_json(&data, i)).collect();
    axum::Json(issues).into_response()
}

async fn create_issue(
    State(data): State<FakeData>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let Some(title) = body["title"].as_str() else { return bad("`title` is required".into()) };
    let mut new = NewIssue::new(body["team"].as_str().unwrap_or("ENG"), title);
    if let Some(d) = body["description"].as_str() {
        new = new.description(d);
    }
    if let Some(s) = body["state"].as_str() {
        new = new.state(s);
    }
    for l in body["labels"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        new = new.label(l);
    }
    if let Some(p) = body["priority"].as_u64() {
        new = new.priority(p.min(4) as u8);
    }
    match data.try_create_issue(new) {
        Ok(issue) => (StatusCode::CREATED, axum::Json(issue_json(&data, &issue))).into_response(),
        Err(e) => bad(e),
    }
}

async fn move_issue(
    State(data): State<FakeData>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let Some(state) = body["state"].as_str() else { return bad("`state` is required".into()) };
    match data.try_move_issue(&id, state) {
        Ok(previous) => axum::Json(json!({ "previous_state_id": previous })).into_response(),
        Err(e) => bad(e),
    }
}

async fn list_comments(State(data): State<FakeData>, Path(id): Path<String>) -> Response {
    let comments: Vec<Value> = data.comments(&id).iter().map(comment_json).collect();
    axum::Json(comments).into_response()
}

async fn add_comment(
    State(data): State<FakeData>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let Some(text) = body["body"].as_str() else { return bad("`body` is required".into()) };
    let author = match body["as"].as_str().unwrap_or("human") {
        "human" => CommentAuthor::User(FakeLinear::HUMAN_ID.to_owned()),
        "viewer" => CommentAuthor::Viewer,
        "bot" => CommentAuthor::Bot("bot".to_owned()),
        other => return bad(format!("`as` must be human, viewer or bot, not {other}")),
    };
    match data.try_add_comment(&id, author, text) {
        Ok(c) => (StatusCode::CREATED, axum::Json(comment_json(&c))).into_response(),
        Err(e) => bad(e),
    }
}

fn pair(v: &Value) -> Option<(u64, u64)> {
    Some((v.get(0)?.as_u64()?, v.get(1)?.as_u64()?))
}

async fn faults(State(data): State<FakeData>, axum::Json(body): axum::Json<Value>) -> Response {
    if let Some(v) = body.get("auth_failure") {
        data.set_auth_failure(v.as_u64().map(|s| s as u16));
    }
    if let Some((n, secs)) = body.get("rate_limit_after").and_then(pair) {
        data.rate_limit_after(n, Duration::from_secs(secs));
    }
    if let Some((count, secs)) = body.get("too_many_requests").and_then(pair) {
        data.too_many_requests(count as u32, Duration::from_secs(secs));
    }
    if let Some((count, status)) = body.get("server_errors").and_then(pair) {
        data.server_errors(count as u32, status as u16);
    }
    if let Some((count, ms)) = body.get("slow").and_then(pair) {
        data.slow_responses(count as u32, Duration::from_millis(ms));
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn requests(State(data): State<FakeData>) -> Response {
    axum::Json(data.request_counts()).into_response()
}
