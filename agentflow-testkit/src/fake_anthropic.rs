//! A fake of the Anthropic Messages API for running the real Claude Code CLI in tests.
//!
//! It serves `POST /v1/messages` (with or without `?beta=true`) on `127.0.0.1:<random port>`,
//! answering each request with the next scripted [`Reply`] (or the fallback reply when the script
//! is empty) as a server-sent event stream shaped like the real API's. It accepts both auth
//! headers the CLI sends (`x-api-key` for `ANTHROPIC_API_KEY`, `Authorization: Bearer` for
//! `ANTHROPIC_AUTH_TOKEN`) and `role: "system"` entries in `messages`, and records every request
//! (any path) for assertions.
//!
//! ```
//! use agentflow_testkit::fake_anthropic::{FakeAnthropic, Reply};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let fake = FakeAnthropic::start().await;
//! fake.push(Reply::bash("echo hi > out.txt"));
//! fake.push(Reply::text("Done."));
//! // point the CLI at it: ANTHROPIC_BASE_URL=fake.url(), ANTHROPIC_API_KEY=anything
//! assert!(fake.url().starts_with("http://127.0.0.1:"));
//! # }
//! ```

mod script;
mod sse;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use agentflow_core::CancellationToken;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::Value;

pub use script::{Block, Reply};

/// A request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query, e.g. `/v1/messages?beta=true`.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Null` when empty or not JSON).
    pub body: Value,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// Whether this is a Messages API call.
    pub fn is_messages(&self) -> bool {
        self.method == "POST" && self.path.split('?').next() == Some("/v1/messages")
    }

    /// The `messages` array of a Messages API call (empty otherwise).
    pub fn messages(&self) -> &[Value] {
        self.body.get("messages").and_then(Value::as_array).map_or(&[], Vec::as_slice)
    }

    /// The text of the last text block of the last user message that has one: the prompt, or
    /// the message a live session was sent.
    pub fn last_user_text(&self) -> Option<String> {
        self.messages()
            .iter()
            .rev()
            .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .find_map(|m| match m.get("content") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Array(blocks)) => blocks
                    .iter()
                    .rev()
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                    .find_map(|b| b.get("text").and_then(Value::as_str).map(str::to_owned)),
                _ => None,
            })
    }

    /// Whether `needle` occurs anywhere in the serialized `messages` (conversation history).
    pub fn conversation_contains(&self, needle: &str) -> bool {
        self.messages().iter().any(|m| m.to_string().contains(needle))
    }
}

#[derive(Debug)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Reply>,
    requests: Mutex<Vec<RecordedRequest>>,
    stop: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running fake server. Dropping it stops the server and ends hanging responses.
#[derive(Debug)]
pub struct FakeAnthropic {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeAnthropic {
    /// Starts the server on `127.0.0.1:0`. The fallback reply is [`Reply::Echo`].
    pub async fn start() -> FakeAnthropic {
        let shared = Arc::new(Shared {
            script: Mutex::new(VecDeque::new()),
            fallback: Mutex::new(Reply::Echo),
            requests: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind fake Anthropic on 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let stop = shared.stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
        });
        FakeAnthropic { addr, shared }
    }

    /// The base URL for `ANTHROPIC_BASE_URL`, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Appends `reply` to the script: it answers the next Messages request not yet answered.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.script).push_back(reply);
    }

    /// Appends every reply of `replies` to the script.
    pub fn push_all(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared.script).extend(replies);
    }

    /// Sets the reply used when the script is empty (default [`Reply::Echo`]). An error here is
    /// returned to every retry the CLI makes.
    pub fn set_fallback(&self, reply: Reply) {
        *lock(&self.shared.fallback) = reply;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The Messages API requests received so far, in order.
    pub fn message_requests(&self) -> Vec<RecordedRequest> {
        self.requests().into_iter().filter(RecordedRequest::is_messages).collect()
    }

    /// Stops the server and ends hanging responses.
    pub fn stop(&self) {
        self.shared.stop.cancel();
    }
}

impl Drop for FakeAnthropic {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = RecordedRequest {
        method: method.to_string(),
        path: uri.path_and_query().map_or_else(|| uri.path().to_owned(), |p| p.to_string()),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())
            })
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    lock(&shared.requests).push(recorded.clone());
    if !recorded.is_messages() {
        if method == Method::HEAD {
            return StatusCode::OK.into_response();
        }
        return error_response(
            404,
            "not_found_error",
            &format!("no route {}", recorded.path),
            None,
        );
    }
    let has_auth = recorded.header("x-api-key").is_some_and(|v| !v.is_empty())
        || recorded.header("authorization").is_some_and(|v| v.starts_with("Bearer "));
    if !has_auth {
        return error_response(
            401,
            "authentication_error",
            "missing x-api-key or bearer token",
            None,
        );
    }
    let reply = {
        let next = lock(&shared.script).pop_front();
        next.unwrap_or_else(|| lock(&shared.fallback).clone())
    };
    answer(&shared, &recorded, reply).await
}

async fn answer(shared: &Shared, request: &RecordedRequest, reply: Reply) -> Response {
    let model =
        request.body.get("model").and_then(Value::as_str).unwrap_or("claude-fake").to_owned();
    let input_tokens = (request.body.to_string().len() as u64 / 4).max(1);
    let message_id = format!("msg_fake_{}", hex_id(16));
    let tool_salt = hex_id(8);
    let tool_id = move |i: usize| format!("toolu_fake_{i}_{tool_salt}");
    let blocks = match reply {
        Reply::Message(blocks) => blocks,
        Reply::Echo => vec![Block::Text(format!(
            "Reply [last user: {}]",
            request.last_user_text().unwrap_or_default()
        ))],
        Reply::Error { status, kind, message, retry_after } => {
            return error_response(status, &kind, &message, retry_after);
        }
        Reply::HangBeforeFirstByte { max } => {
            tokio::select! {
                () = shared.stop.cancelled() => {}
                () = tokio::time::sleep(max) => {}
            }
            return error_response(500, "api_error", "fake hang ended", None);
        }
        Reply::StallAfterMessageStart { max } => {
            let start = sse::frame(&sse::message_start(&message_id, &model, input_tokens));
            let stop = shared.stop.clone();
            let stream =
                futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(start)) })
                    .chain(futures::stream::once(async move {
                        tokio::select! {
                            () = stop.cancelled() => {}
                            () = tokio::time::sleep(max) => {}
                        }
                        Err(std::io::Error::other("fake stall ended"))
                    }));
            return sse_response(Body::from_stream(stream));
        }
    };
    let mut events = vec![sse::message_start(&message_id, &model, input_tokens)];
    events.extend(sse::message_body(&blocks, tool_id));
    let frames: Vec<Result<Bytes, Infallible>> =
        events.iter().map(|e| Ok(Bytes::from(sse::frame(e)))).collect();
    sse_response(Body::from_stream(futures::stream::iter(frames)))
}

fn sse_response(body: Body) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("request-id", format!("req_fake_{}", hex_id(12)))
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn error_response(status: u16, kind: &str, message: &str, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header("request-id", format!("req_fake_{}", hex_id(12)));
    if let Some(secs) = retry_after {
        builder = builder.header(header::RETRY_AFTER, secs.to_string());
    }
    builder
        .body(Body::from(sse::error_body(kind, message).to_string()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn hex_id(len: usize) -> String {
    (0..len).map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn last_user_text_skips_tool_results_and_system_entries() {
        let r = RecordedRequest {
            method: "POST".into(),
            path: "/v1/messages?beta=true".into(),
            headers: vec![],
            body: json!({"messages": [
                {"role": "user", "content": [{"type": "text", "text": "reminder"}, {"type": "text", "text": "hi"}]},
                {"role": "system", "content": "# Environment"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}]}
            ]}),
        };
        assert!(r.is_messages());
        assert_eq!(r.last_user_text().as_deref(), Some("hi"));
        assert!(r.conversation_contains("# Environment"));
    }
}
