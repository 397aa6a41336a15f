//! The HTTP side of the fake: auth, faults, rate-limit headers, validation, execution.

use std::sync::Arc;

use apollo_compiler::ExecutableDocument;
use apollo_compiler::executable::OperationType;
use apollo_compiler::resolvers::Execution;
use apollo_compiler::response::JsonMap;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::exec::{Kind, Obj};
use super::faults::Verdict;
use super::{FakeLinear, FakeRequest, Shared, lock, schema};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().route("/graphql", post(graphql)).route("/", post(graphql)).with_state(shared)
}

fn error_body(message: &str, code: &str, extra: Value) -> Value {
    let mut ext = json!({ "code": code, "userPresentableMessage": message });
    if let (Value::Object(e), Value::Object(x)) = (&mut ext, extra) {
        e.extend(x);
    }
    json!({ "errors": [{ "message": message, "extensions": ext }] })
}

fn reply(status: StatusCode, body: Value, headers: HeaderMap) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().extend(headers);
    resp
}

fn header(v: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&v.to_string()).expect("ASCII header value")
}

async fn graphql(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let received_at = chrono::Utc::now();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let op_name = request.get("operationName").and_then(Value::as_str).map(str::to_owned);
    let operation = op_name.clone().unwrap_or_else(|| "<anonymous>".to_owned());
    *lock(&shared.counters).entry(operation.clone()).or_default() += 1;
    let (response, code) = answer(&shared, &headers, &request, op_name.as_deref()).await;
    let rewrites = lock(&shared.faults).rewrites.clone();
    let response = if rewrites.is_empty() { response } else { rewrite(response, &rewrites).await };
    lock(&shared.log).push(FakeRequest {
        received_at,
        answered_at: chrono::Utc::now(),
        operation,
        status: response.status().as_u16(),
        code: code.map(str::to_owned),
    });
    response
}

/// Replaces byte strings in a response body (the `rewrite_responses` switch).
async fn rewrite(response: Response, rewrites: &[(Vec<u8>, Vec<u8>)]) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut out = bytes.to_vec();
    for (from, to) in rewrites.iter().filter(|(f, _)| !f.is_empty()) {
        let mut next = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            if out[i..].starts_with(from) {
                next.extend_from_slice(to);
                i += from.len();
            } else {
                next.push(out[i]);
                i += 1;
            }
        }
        out = next;
    }
    let mut parts = parts;
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(out))
}

/// The answer to one request, and the error code it carries when a fault produced it.
async fn answer(
    shared: &Shared,
    headers: &HeaderMap,
    request: &Value,
    op_name: Option<&str>,
) -> (Response, Option<&'static str>) {
    let query = request.get("query").and_then(Value::as_str).unwrap_or_default();

    let delay = lock(&shared.faults).take_delay();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }

    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let authorized =
        auth == FakeLinear::API_KEY || auth == format!("Bearer {}", FakeLinear::OAUTH_TOKEN);
    let (verdict, limit, remaining, reset_ms) = {
        let mut f = lock(&shared.faults);
        let v = f.verdict(authorized);
        (v, f.limit, f.remaining(), f.reset_at.timestamp_millis())
    };
    let mut rl = HeaderMap::new();
    rl.insert("x-ratelimit-requests-limit", header(limit));
    rl.insert("x-ratelimit-requests-remaining", header(remaining));
    rl.insert("x-ratelimit-requests-reset", header(reset_ms));
    rl.insert("x-ratelimit-complexity-limit", header(250_000));
    rl.insert("x-ratelimit-complexity-remaining", header(250_000u64.saturating_sub(100)));
    rl.insert("x-ratelimit-complexity-reset", header(reset_ms));

    match verdict {
        Verdict::Proceed => {}
        Verdict::Auth(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED);
            let (msg, code) = if status == StatusCode::FORBIDDEN {
                ("Forbidden - you do not have access to this resource", "FORBIDDEN")
            } else {
                ("Authentication required, not authenticated", "AUTHENTICATION_ERROR")
            };
            return (
                reply(
                    status,
                    error_body(msg, code, json!({"type": "authentication error"})),
                    HeaderMap::new(),
                ),
                Some(code),
            );
        }
        Verdict::TooMany(after) => {
            let mut h = rl;
            h.insert("retry-after", header(after.as_secs().max(1)));
            let reset = chrono::Utc::now().timestamp_millis() + after.as_millis() as i64;
            h.insert("x-ratelimit-requests-reset", header(reset));
            h.insert("x-ratelimit-requests-remaining", header(0));
            return (
                reply(
                    StatusCode::TOO_MANY_REQUESTS,
                    error_body("Too many requests", "RATELIMITED", json!({})),
                    h,
                ),
                Some("RATELIMITED"),
            );
        }
        Verdict::ServerError(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return ((status, "upstream connect error").into_response(), None);
        }
        Verdict::RateLimited => {
            let body = error_body(
                "Rate limit exceeded",
                "RATELIMITED",
                json!({"type": "ratelimited", "userError": true, "statusCode": 400}),
            );
            return (reply(StatusCode::BAD_REQUEST, body, rl), Some("RATELIMITED"));
        }
    }

    let (status, body) = execute(shared, query, op_name, request.get("variables"));
    // Carried out, answered late: a client that gives up meanwhile does not know it happened.
    let late = lock(&shared.faults).take_late();
    if let Some(d) = late {
        tokio::time::sleep(d).await;
    }
    (reply(status, body, rl), None)
}

/// Validates and executes one GraphQL request against the store.
fn execute(
    shared: &Shared,
    query: &str,
    op_name: Option<&str>,
    variables: Option<&Value>,
) -> (StatusCode, Value) {
    let schema = schema();
    let doc = match ExecutableDocument::parse_and_validate(schema, query, "request.graphql") {
        Ok(doc) => doc,
        Err(with_errors) => {
            let errors: Vec<Value> = with_errors
                .errors
                .iter()
                .map(|d| {
                    let mut e = serde_json::to_value(d.to_json()).unwrap_or(Value::Null);
                    e["extensions"] = json!({"code": "GRAPHQL_VALIDATION_FAILED", "type": "graphql error", "userError": true});
                    e
                })
                .collect();
            return (StatusCode::BAD_REQUEST, json!({ "errors": errors }));
        }
    };
    let operation = match doc.operations.get(op_name) {
        Ok(op) => op,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                error_body(&e.message().to_string(), "GRAPHQL_VALIDATION_FAILED", json!({})),
            );
        }
    };
    let vars: JsonMap = match variables {
        None | Some(Value::Null) => JsonMap::new(),
        Some(v) => match serde_json::from_value(v.clone()) {
            Ok(m) => m,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    error_body(
                        &format!("variables must be an object: {e}"),
                        "BAD_USER_INPUT",
                        json!({}),
                    ),
                );
            }
        },
    };
    let root = Obj {
        db: &shared.db,
        kind: if operation.operation_type == OperationType::Mutation {
            Kind::Mutation
        } else {
            Kind::Query
        },
    };
    let result = Execution::new(schema, &doc)
        .operation(operation)
        .raw_variable_values(&vars)
        .execute_sync(&root);
    match result {
        Ok(resp) => {
            let mut body = serde_json::to_value(&resp).unwrap_or(Value::Null);
            // Linear tags "not found" answers as invalid input; clients key off the code.
            if let Some(errors) = body.get_mut("errors").and_then(Value::as_array_mut) {
                for e in errors {
                    let msg =
                        e.get("message").and_then(Value::as_str).unwrap_or_default().to_owned();
                    let code = if msg.starts_with("Entity not found") {
                        "INVALID_INPUT"
                    } else if msg.starts_with("Forbidden") {
                        "FORBIDDEN"
                    } else {
                        "INTERNAL_SERVER_ERROR"
                    };
                    e["extensions"] = json!({"code": code, "userPresentableMessage": msg});
                }
            }
            (StatusCode::OK, body)
        }
        Err(e) => {
            let err = e.to_graphql_error(&doc.sources);
            let mut v = serde_json::to_value(err).unwrap_or(Value::Null);
            v["extensions"] = json!({"code": "BAD_USER_INPUT", "userError": true});
            (StatusCode::BAD_REQUEST, json!({ "errors": [v] }))
        }
    }
}
