//! Linear data-change webhooks: verified, then turned into [`SourceEvent`]s on
//! [`TaskSource::watch`](agentflow_core::TaskSource::watch).

use std::sync::atomic::Ordering;
use std::time::Duration;

use agentflow_core::{SourceEvent, TaskId, TaskStatus};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::Sha256;

use crate::LinearSource;
use crate::source::lock;

/// How far a delivery's `webhookTimestamp` may be from now (Linear's recommendation).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// No `Linear-Signature` header, or it does not match the body.
    #[error("missing or invalid Linear-Signature")]
    BadSignature,
    /// The body is not a JSON webhook payload.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// `webhookTimestamp` is more than [`MAX_CLOCK_SKEW`] away from now (a replay, or a clock
    /// problem).
    #[error("stale webhookTimestamp: {skew_ms} ms from now")]
    Stale {
        /// How far off it was.
        skew_ms: i64,
    },
}

/// Receives Linear webhooks for a [`LinearSource`].
///
/// Created by [`LinearSource::webhooks`], which also makes
/// [`watch`](agentflow_core::TaskSource::watch) return a stream. Mount
/// [`router`](LinearWebhooks::router) into the daemon's HTTP router.
#[derive(Clone)]
pub struct LinearWebhooks {
    source: LinearSource,
    secret: SecretString,
}

impl std::fmt::Debug for LinearWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearWebhooks").field("secret", &"[REDACTED]").finish_non_exhaustive()
    }
}

impl LinearSource {
    /// Enables webhooks with the signing `secret` shown in Linear's webhook settings.
    pub fn webhooks(&self, secret: SecretString) -> LinearWebhooks {
        self.inner.webhooks_enabled.store(true, Ordering::Release);
        LinearWebhooks { source: self.clone(), secret }
    }
}

impl LinearWebhooks {
    /// An axum router answering `POST path` (e.g. `/webhooks/linear`).
    pub fn router(&self, path: &str) -> Router {
        Router::new().route(path, post(receive)).with_state(self.clone())
    }

    /// Checks the signature and timestamp of a delivery and returns its parsed payload.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Value, WebhookRejection> {
        let sig = headers
            .get("linear-signature")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| hex::decode(s.trim()).ok())
            .ok_or(WebhookRejection::BadSignature)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose_secret().as_bytes())
            .map_err(|_| WebhookRejection::BadSignature)?;
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&sig).map_err(|_| WebhookRejection::BadSignature)?;
        let payload: Value =
            serde_json::from_slice(body).map_err(|e| WebhookRejection::Malformed(e.to_string()))?;
        let ts = payload
            .get("webhookTimestamp")
            .and_then(Value::as_f64)
            .ok_or_else(|| WebhookRejection::Malformed("no webhookTimestamp".into()))?;
        // Saturating: a signed payload may carry any number (`ts as i64` saturates too).
        let skew_ms = Utc::now().timestamp_millis().saturating_sub(ts as i64);
        if skew_ms.unsigned_abs() > MAX_CLOCK_SKEW.as_millis() as u64 {
            return Err(WebhookRejection::Stale { skew_ms });
        }
        Ok(payload)
    }

    /// The events a verified payload stands for (none when it is not about our issues).
    pub async fn events(&self, payload: &Value) -> Vec<SourceEvent> {
        let Ok(map) = self.source.states().await else { return Vec::new() };
        let data = &payload["data"];
        let str_at = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        match (payload["type"].as_str(), payload["action"].as_str()) {
            (Some("Issue"), Some(action @ ("create" | "update"))) => {
                let (Some(id), Some(team), Some(state)) =
                    (str_at(data, "id"), str_at(data, "teamId"), str_at(data, "stateId"))
                else {
                    return Vec::new();
                };
                if !map.has_team(&team) {
                    return Vec::new();
                }
                let moved = action == "create"
                    || payload.pointer("/updatedFrom/stateId").is_some_and(|v| !v.is_null());
                if !moved {
                    return Vec::new();
                }
                let status = map.status_of(&state);
                self.source.note_status(&id, status);
                let labels: Vec<&str> = data["labels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l["name"].as_str())
                    .collect();
                let wanted = &self.source.inner.config.labels;
                let labelled = wanted.is_empty()
                    || wanted.iter().any(|w| labels.iter().any(|l| l.eq_ignore_ascii_case(w)));
                if status == TaskStatus::Todo && labelled {
                    vec![SourceEvent::TaskReady(TaskId(id))]
                } else if status == TaskStatus::Todo {
                    Vec::new()
                } else {
                    vec![SourceEvent::StatusChanged(TaskId(id), status)]
                }
            }
            (Some("Comment"), Some("create")) => {
                let (Some(comment), Some(issue)) = (str_at(data, "id"), str_at(data, "issueId"))
                else {
                    return Vec::new();
                };
                let by_us = str_at(data, "userId").is_none_or(|u| u == map.viewer_id)
                    || !data["botActor"].is_null()
                    || self.source.is_own(&comment);
                let open = lock(&self.source.inner.open_issues).contains(&issue);
                if by_us || !open {
                    return Vec::new();
                }
                vec![SourceEvent::Comment(TaskId(issue))]
            }
            _ => Vec::new(),
        }
    }
}

async fn receive(
    State(hooks): State<LinearWebhooks>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let payload = match hooks.verify(&headers, &body) {
        Ok(p) => p,
        Err(rejection) => {
            tracing::warn!(%rejection, "Linear webhook refused");
            return match rejection {
                WebhookRejection::BadSignature => StatusCode::UNAUTHORIZED,
                _ => StatusCode::BAD_REQUEST,
            };
        }
    };
    for event in hooks.events(&payload).await {
        tracing::debug!(?event, "Linear webhook event");
        // No receiver (the engine is not watching yet) is fine: polling catches up.
        let _ = hooks.source.inner.events.send(event);
    }
    StatusCode::OK
}
