//! [`RedisEventSink`]: events published on a Redis channel, and [`subscribe`] to re-emit the
//! events of every instance into a local sink.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agentflow_core::{Event, EventSink};
use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Error;

/// Where events go: a Redis URL and a channel.
///
/// ```
/// let config: agentflow_redis::RedisEventsConfig =
///     serde_json::from_str(r#"{ "channel": "team-a:events", "capacity": 256 }"#).unwrap();
/// assert_eq!(config.channel, "team-a:events");
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisEventsConfig {
    /// `redis://…`; may carry a password, so it is kept secret.
    #[serde(default = "default_url")]
    pub url: SecretString,
    /// The pub/sub channel (default `agentflow:events`).
    #[serde(default = "default_channel")]
    pub channel: String,
    /// Events queued for publishing before new ones are dropped (and counted).
    #[serde(default = "default_capacity")]
    pub capacity: usize,
}

fn default_url() -> SecretString {
    SecretString::from("redis://127.0.0.1:6379")
}
fn default_channel() -> String {
    "agentflow:events".to_owned()
}
fn default_capacity() -> usize {
    1024
}

impl RedisEventsConfig {
    /// Defaults with `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisEventsConfig {
            url: SecretString::from(url.into()),
            channel: default_channel(),
            capacity: default_capacity(),
        }
    }

    /// Sets the channel.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = channel.into();
        self
    }

    fn client(&self) -> agentflow_core::Result<redis::Client> {
        redis::Client::open(self.url.expose_secret())
            .map_err(|e| agentflow_core::Error::config("redis.url", e.to_string()))
    }
}

impl std::fmt::Debug for RedisEventsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEventsConfig")
            .field("url", &"[REDACTED]")
            .field("channel", &self.channel)
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// The wire form: `{"event": "task:update", "data": …, "origin": "<instance>"}`.
#[derive(Serialize)]
struct Outgoing<'a> {
    #[serde(flatten)]
    event: &'a Event,
    origin: &'a str,
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(flatten)]
    event: Event,
    #[serde(default)]
    origin: Option<String>,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    dropped: AtomicU64,
}

/// An [`EventSink`] that publishes every event as JSON on a Redis channel.
///
/// `emit` never blocks: it serializes the event and hands it to a bounded queue that a
/// background task publishes (pipelined); when the queue is full or Redis is down the event is
/// dropped and counted ([`dropped`](Self::dropped)), like tracing-appender's non-blocking
/// writer. Live events are a view, not a record: the store keeps the record.
pub struct RedisEventSink {
    tx: mpsc::Sender<String>,
    counters: Arc<Counters>,
    origin: String,
}

impl std::fmt::Debug for RedisEventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEventSink")
            .field("origin", &self.origin)
            .field("published", &self.published())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl RedisEventSink {
    /// Connects and starts the background publisher.
    pub async fn connect(config: RedisEventsConfig) -> agentflow_core::Result<Self> {
        let client = config.client()?;
        let conn = ConnectionManager::new_with_config(
            client,
            ConnectionManagerConfig::new()
                .set_response_timeout(Some(Duration::from_secs(5)))
                .set_connection_timeout(Some(Duration::from_secs(5)))
                .set_number_of_retries(1),
        )
        .await
        .map_err(|e| Error::command("connect", e))?;
        let (tx, rx) = mpsc::channel(config.capacity.max(1));
        let counters = Arc::new(Counters::default());
        // The publisher drains what is queued and ends when the sink (the sender) is dropped.
        tokio::spawn(publish(conn, config.channel, rx, counters.clone()));
        let origin = format!("{}:{:016x}", std::process::id(), fastrand::u64(..));
        Ok(RedisEventSink { tx, counters, origin })
    }

    /// This instance's id, sent with every event; pass it to [`subscribe`] to skip echoes.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Events published so far.
    pub fn published(&self) -> u64 {
        self.counters.published.load(Ordering::Relaxed)
    }

    /// Events dropped so far (queue full, or Redis failed to take them).
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }
}

impl EventSink for RedisEventSink {
    fn emit(&self, event: &Event) {
        let msg = match serde_json::to_string(&Outgoing { event, origin: &self.origin }) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::warn!(error = %e, event = event.name(), "event not serializable; dropped");
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if self.tx.try_send(msg).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn publish(
    mut conn: ConnectionManager,
    channel: String,
    mut rx: mpsc::Receiver<String>,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, 64).await > 0 {
        let mut pipe = redis::pipe();
        for msg in &batch {
            pipe.publish(&channel, msg).ignore();
        }
        let n = batch.len() as u64;
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => {
                counters.published.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                counters.dropped.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(error = %e, events = n, "publishing events failed; dropped");
                // Let the connection manager reconnect before the next batch.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        batch.clear();
    }
}

/// A running subscription; dropping it stops re-emitting.
#[derive(Debug)]
pub struct EventSubscription {
    task: JoinHandle<()>,
    received: Arc<AtomicU64>,
}

impl EventSubscription {
    /// Remote events re-emitted so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for EventSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Subscribes to the events channel and re-emits each event into `sink` (e.g. the dashboard's
/// broadcast sink), so one dashboard shows the events of every instance. Events whose origin is
/// `skip_origin` (this instance's own [`RedisEventSink::origin`]) are skipped, as the local sink
/// already saw them. Returns once subscribed; reconnects and resubscribes after errors.
pub async fn subscribe(
    config: &RedisEventsConfig,
    sink: Arc<dyn EventSink>,
    skip_origin: Option<String>,
) -> agentflow_core::Result<EventSubscription> {
    let client = config.client()?;
    let channel = config.channel.clone();
    let mut pubsub = client.get_async_pubsub().await.map_err(|e| Error::command("subscribe", e))?;
    pubsub.subscribe(&channel).await.map_err(|e| Error::command("subscribe", e))?;
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let task = tokio::spawn(async move {
        let mut first = Some(pubsub);
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut pubsub = match first.take() {
                Some(p) => p,
                None => {
                    let attempt = async {
                        let mut p = client.get_async_pubsub().await?;
                        p.subscribe(&channel).await?;
                        redis::RedisResult::Ok(p)
                    };
                    match attempt.await {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::debug!(error = %e, "event subscription failed; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                            continue;
                        }
                    }
                }
            };
            backoff = Duration::from_millis(100);
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                let Ok(payload) = msg.get_payload::<String>() else { continue };
                match serde_json::from_str::<Incoming>(&payload) {
                    Ok(incoming) => {
                        if skip_origin.is_some() && incoming.origin == skip_origin {
                            continue;
                        }
                        counter.fetch_add(1, Ordering::Relaxed);
                        sink.emit(&incoming.event);
                    }
                    Err(e) => tracing::debug!(error = %e, "ignored a malformed event"),
                }
            }
            tracing::debug!("event subscription lost; reconnecting");
        }
    });
    Ok(EventSubscription { task, received })
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentflow_core::Stats;

    #[test]
    fn wire_form_is_event_data_origin() {
        let event = Event::Stats(Stats { running: 2, ..Default::default() });
        let s = serde_json::to_string(&Outgoing { event: &event, origin: "me" }).unwrap();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["event"], "stats:update");
        assert_eq!(v["data"]["running"], 2);
        assert_eq!(v["origin"], "me");
        let back: Incoming = serde_json::from_str(&s).unwrap();
        assert_eq!(back.event, event);
        assert_eq!(back.origin.as_deref(), Some("me"));
        // Without an origin (another publisher) it still parses.
        let plain = serde_json::to_string(&event).unwrap();
        assert!(serde_json::from_str::<Incoming>(&plain).unwrap().origin.is_none());
    }
}
