//! `/ws` on a real 127.0.0.1 listener with a real WebSocket client.

#[path = "support/harness.rs"]
mod harness;

use std::net::SocketAddr;
use std::time::Duration;

use agentflow_core::TaskStatus;
use futures::{SinkExt, StreamExt};
use harness::Harness;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn serve(router: axum::Router) -> (SocketAddr, Guard) {
    let listener = agentflow_dashboard::bind("127.0.0.1:0".parse().unwrap(), false).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(agentflow_dashboard::serve_on(listener, router, async move {
        let _ = rx.await;
    }));
    (addr, Guard(Some(tx)))
}

/// Stops the server when dropped.
struct Guard(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

async fn connect(addr: SocketAddr, token: Option<&str>) -> Result<Ws, WsError> {
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.map(|(ws, _)| ws)
}

/// The next JSON frame, within 20 s.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a frame within 20 s")
            .expect("the socket stays open")
            .expect("a valid frame");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Frames until one satisfies `until` (at most 2000), returned with it last.
async fn collect(ws: &mut Ws, until: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..2000 {
        let v = next(ws).await;
        let done = until(&v);
        out.push(v);
        if done {
            return out;
        }
    }
    panic!("condition never met; last frames: {:?}", &out[out.len().saturating_sub(5)..]);
}

fn is_update(v: &Value, status: &str) -> bool {
    v["event"] == "task:update" && v["data"]["status"] == status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_updates_and_logs_only_for_subscribers() {
    let h = Harness::start(true).await;
    let (addr, _server) = serve(h.dashboard().build().router()).await;

    let mut watcher = connect(addr, None).await.unwrap();
    let mut bystander = connect(addr, None).await.unwrap();
    for ws in [&mut watcher, &mut bystander] {
        let snap = next(ws).await;
        assert_eq!(snap["event"], "snapshot");
        assert_eq!(snap["data"]["tasks"], json!([]));
        assert_eq!(snap["data"]["stats"]["paused"], false);
    }
    // LocalSource numbers tasks LOC-1, LOC-2, …: subscribe before the task exists.
    watcher.send(Message::Text(r#"{"subscribe": "LOC-1"}"#.into())).await.unwrap();
    bystander.send(Message::Text(r#"{"hello": 1}"#.into())).await.unwrap();
    let err = collect(&mut bystander, |v| v["event"] == "error").await;
    assert!(err.last().unwrap()["data"].as_str().unwrap().contains("subscribe"));

    h.source.add("Stream me", "");
    let frames =
        collect(&mut watcher, |v| v["event"] == "log:new" && v["data"]["level"] == "error").await;
    assert!(frames.iter().any(|v| is_update(v, "in_progress")));
    let logs: Vec<_> = frames
        .iter()
        .filter(|v| v["event"] == "log:new")
        .map(|v| v["data"]["line"].as_str().unwrap().to_owned())
        .collect();
    assert!(logs.contains(&"Reading LOC-1".to_owned()), "{logs:?}");
    assert!(logs.contains(&"Bash: cargo test".to_owned()), "{logs:?}");
    let seqs: Vec<_> = frames
        .iter()
        .filter(|v| v["event"] == "log:new")
        .map(|v| v["data"]["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "log lines in order: {seqs:?}");

    h.agent.release();
    let frames = collect(&mut watcher, |v| is_update(v, "done")).await;
    assert!(frames.iter().any(|v| v["event"] == "log:new" && v["data"]["line"] == "All done."));
    let seen = collect(&mut bystander, |v| is_update(v, "done")).await;
    assert!(seen.iter().any(|v| is_update(v, "in_progress")));
    assert!(seen.iter().all(|v| v["event"] != "log:new"), "no log lines without a subscription");

    // A stats update follows the run; a client connecting now gets the task in its snapshot.
    collect(&mut watcher, |v| v["event"] == "stats:update" && v["data"]["done_today"] == 1).await;
    let mut late = connect(addr, None).await.unwrap();
    let snap = next(&mut late).await;
    assert_eq!(snap["data"]["tasks"][0]["status"], "done");
    assert_eq!(snap["data"]["stats"]["done_today"], 1);

    // Unsubscribing stops the lines.
    watcher.send(Message::Text(r#"{"unsubscribe": "LOC-1"}"#.into())).await.unwrap();
    h.handle.pause();
    let frames =
        collect(&mut watcher, |v| v["event"] == "stats:update" && v["data"]["paused"] == true)
            .await;
    assert!(frames.iter().all(|v| v["event"] != "log:new"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todo_tasks_appear_and_move_live() {
    let h = Harness::start(false).await;
    h.handle.pause();
    let (addr, _server) = serve(h.dashboard().build().router()).await;
    let mut ws = connect(addr, None).await.unwrap();
    assert_eq!(next(&mut ws).await["event"], "snapshot");
    let task = h.source.add("Waiting", "");
    let frames = collect(&mut ws, |v| is_update(v, "todo")).await;
    assert_eq!(frames.last().unwrap()["data"]["task"], task.id.as_str());
    h.handle.resume();
    collect(&mut ws, |v| is_update(v, "in_progress")).await;
    collect(&mut ws, |v| is_update(v, "done")).await;

    // A Todo task a person moves away (not through the engine) leaves the board.
    h.handle.pause();
    let other = h.source.add("Moved away", "");
    collect(&mut ws, |v| is_update(v, "todo") && v["data"]["task"] == other.id.as_str()).await;
    h.source.move_to(&other.id, TaskStatus::Other).unwrap();
    collect(&mut ws, |v| is_update(v, "other") && v["data"]["task"] == other.id.as_str()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_dropped_and_the_engine_goes_on() {
    let h = Harness::start_with(false, 2000).await;
    let router = h.dashboard().build().router();
    let (addr, _server) = serve(router.clone()).await;
    let mut slow = connect(addr, None).await.unwrap();
    assert_eq!(next(&mut slow).await["event"], "snapshot");
    slow.send(Message::Text(r#"{"subscribe": "LOC-1"}"#.into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // 2000 lines of 16 kB while the client reads nothing: the engine finishes regardless.
    let task = h.source.add("Flood", "");
    h.wait_task(task.id.as_str(), "done", |t| t.status == TaskStatus::Done).await;

    // The client finds, after what was buffered, a close frame asking it to come back.
    let mut code = None;
    let mut frames = 0u32;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(15), slow.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                code = frame.map(|f| f.code);
                break;
            }
            Ok(Some(Ok(_))) => frames += 1,
            Ok(Some(Err(_))) | Ok(None) | Err(_) => break,
        }
    }
    assert_eq!(code, Some(CloseCode::Again), "closed with 1013 after {frames} frames");
    assert!(frames < 2000 + 20, "the server did not deliver everything to a stalled client");

    let mut metrics = String::new();
    for _ in 0..50 {
        let (_, body) = get(addr, "/metrics").await;
        metrics = body;
        if metrics.contains("agentflow_dashboard_ws_dropped_total 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metrics.contains("agentflow_dashboard_ws_dropped_total 1"), "{metrics}");

    // A new connection gets a fresh snapshot with the finished task.
    let mut again = connect(addr, None).await.unwrap();
    assert_eq!(next(&mut again).await["data"]["tasks"][0]["status"], "done");
}

/// A bare HTTP/1.1 GET (the dashboard speaks it; no client library needed).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text[9..12].parse().unwrap();
    (code, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_needs_the_token_and_the_same_origin() {
    let h = Harness::start(false).await;
    let (addr, _server) = serve(h.dashboard().token("ws-token-123".into()).build().router()).await;
    match connect(addr, None).await {
        Err(WsError::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    match connect(addr, Some("wrong")).await {
        Err(WsError::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    let mut ws = connect(addr, Some("ws-token-123")).await.unwrap();
    assert_eq!(next(&mut ws).await["event"], "snapshot");

    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut().insert("authorization", "Bearer ws-token-123".parse().unwrap());
    req.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(WsError::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    assert_eq!(get(addr, "/healthz").await.0, 200);
}
