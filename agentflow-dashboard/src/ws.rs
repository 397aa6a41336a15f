//! `/ws`: the engine's events as `{"event": …, "data": …}` text frames.
//!
//! On connect the client gets one `snapshot` (`{"tasks": [TaskUpdate…], "stats": Stats}`), then
//! every `task:update` and `stats:update`. `log:new` goes only to clients that asked for the
//! task with `{"subscribe": "<task id>"}` (`{"unsubscribe": …}` stops it). A client that falls
//! behind the engine's broadcast, or whose socket does not take a frame within five seconds, is
//! closed with code 1013 and reconnects to a fresh snapshot: the engine never waits for it.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agentflow_core::{Event, Stats, TaskId, TaskUpdate};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use crate::state::AppState;

/// How long one frame may take to go out before the client counts as too slow.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Log subscriptions one client may hold.
const MAX_SUBSCRIPTIONS: usize = 64;
/// Close code for "try again later" (RFC 6455 registry).
const CLOSE_TRY_AGAIN: u16 = 1013;

/// Counts connected and dropped clients, for `/metrics`, and closes them all on request.
#[derive(Clone)]
pub(crate) struct WsHub {
    clients: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    /// Bumped to close every connected client (new ones are unaffected).
    close: Arc<watch::Sender<u64>>,
}

impl Default for WsHub {
    fn default() -> Self {
        WsHub {
            clients: Arc::default(),
            dropped: Arc::default(),
            close: Arc::new(watch::channel(0).0),
        }
    }
}

impl WsHub {
    /// Closes every connected client with 1001 (going away); they reconnect by themselves.
    pub(crate) fn close_all(&self) {
        self.close.send_modify(|g| *g += 1);
    }

    pub(crate) fn clients(&self) -> u64 {
        self.clients.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

struct Connected(Arc<AtomicU64>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Serialize)]
struct Snapshot {
    tasks: Vec<TaskUpdate>,
    stats: Stats,
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    event: &'a str,
    data: T,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
enum ClientMessage {
    #[serde(rename = "subscribe")]
    Subscribe(String),
    #[serde(rename = "unsubscribe")]
    Unsubscribe(String),
}

pub(crate) async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(16 * 1024).on_upgrade(move |socket| client(state, socket))
}

enum End {
    Gone,
    TooSlow,
    EngineStopped,
    Closing,
}

async fn client(state: AppState, socket: WebSocket) {
    state.ws.clients.fetch_add(1, Ordering::Relaxed);
    let _connected = Connected(state.ws.clients.clone());
    // Subscribe before reading the snapshot, so nothing falls between the two.
    let mut events = state.engine.subscribe();
    let mut todo = state.todo.subscribe();
    let mut close = state.ws.close.subscribe();
    close.mark_unchanged();
    let (mut tx, mut rx) = socket.split();

    let mut stats = state.engine.stats().await.unwrap_or_default();
    stats.paused = state.engine.is_paused();
    let snapshot = Envelope {
        event: "snapshot",
        data: Snapshot { tasks: state.todo.merge(state.engine.tasks()), stats },
    };
    let mut subscriptions: HashSet<TaskId> = HashSet::new();

    let end = 'conn: {
        if !send(&mut tx, &snapshot).await {
            break 'conn End::TooSlow;
        }
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(Event::Log(line)) if !subscriptions.contains(&line.task) => {}
                    Ok(ev) => {
                        if !send(&mut tx, &ev).await {
                            break 'conn End::TooSlow;
                        }
                    }
                    Err(RecvError::Lagged(_)) => break 'conn End::TooSlow,
                    Err(RecvError::Closed) => break 'conn End::EngineStopped,
                },
                ev = todo.recv() => match ev {
                    Ok(ev) => {
                        if !send(&mut tx, &ev).await {
                            break 'conn End::TooSlow;
                        }
                    }
                    Err(RecvError::Lagged(_)) => break 'conn End::TooSlow,
                    // The dashboard is going away with the engine; the engine branch ends it.
                    Err(RecvError::Closed) => {}
                },
                _ = close.changed() => break 'conn End::Closing,
                msg = rx.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        match serde_json::from_str::<ClientMessage>(text.as_str()) {
                            Ok(ClientMessage::Subscribe(id)) => {
                                if subscriptions.len() < MAX_SUBSCRIPTIONS {
                                    subscriptions.insert(TaskId(id));
                                }
                            }
                            Ok(ClientMessage::Unsubscribe(id)) => {
                                subscriptions.remove(&TaskId(id));
                            }
                            Err(_) => {
                                let err = Envelope {
                                    event: "error",
                                    data: "unknown message: send {\"subscribe\": \"<task id>\"} or {\"unsubscribe\": \"<task id>\"}",
                                };
                                if !send(&mut tx, &err).await {
                                    break 'conn End::TooSlow;
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break 'conn End::Gone,
                    Some(Ok(_)) => {}
                },
            }
        }
    };

    let close = match end {
        End::Gone => return,
        End::TooSlow => {
            state.ws.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::info!("dashboard websocket client fell behind; closing it");
            CloseFrame {
                code: CLOSE_TRY_AGAIN,
                reason: "too slow: reconnect for a fresh snapshot".into(),
            }
        }
        End::EngineStopped => CloseFrame { code: 1001, reason: "the engine stopped".into() },
        End::Closing => CloseFrame { code: 1001, reason: "the dashboard is going away".into() },
    };
    let _ = tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::Close(Some(close)))).await;
}

async fn send<S, T>(tx: &mut S, value: &T) -> bool
where
    S: futures::Sink<Message> + Unpin,
    T: Serialize,
{
    let Ok(text) = serde_json::to_string(value) else { return false };
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}
