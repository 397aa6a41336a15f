//! The GraphQL-over-HTTP client: auth, retries with backoff and jitter, rate-limit bookkeeping,
//! typed decoding and request counters.

mod ratelimit;

use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::Instrument;

pub use ratelimit::{RateLimit, RequestStats};

use crate::config::{Auth, LinearConfig};
use crate::error::LinearError;

/// Sends operations to Linear's GraphQL endpoint.
pub(crate) struct Client {
    http: reqwest::Client,
    url: String,
    auth: Auth,
    timeout: Duration,
    max_retries: u32,
    backoff: Duration,
    limits: Mutex<RateLimit>,
    stats: Mutex<RequestStats>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn snippet(body: &[u8]) -> String {
    agentflow_core::run::truncate(String::from_utf8_lossy(body).trim(), 300)
}

/// Every `errors[].message` of a GraphQL answer, and the first `extensions.code`.
fn graphql_errors(body: &Value) -> Option<(String, Option<String>)> {
    let errors = body.get("errors")?.as_array()?;
    if errors.is_empty() {
        return None;
    }
    let message = errors
        .iter()
        .map(|e| e.get("message").and_then(Value::as_str).unwrap_or("unknown error"))
        .collect::<Vec<_>>()
        .join("; ");
    let code = errors
        .iter()
        .find_map(|e| e.pointer("/extensions/code").and_then(Value::as_str))
        .map(str::to_owned);
    Some((message, code))
}

/// Parses an answer; JSON whose strings hold lone UTF-16 surrogate escapes (`"\ud800"`, which
/// JavaScript servers emit for broken text and `serde_json` rejects) is parsed with each lone
/// surrogate replaced by U+FFFD, so one issue with a broken description cannot fail every
/// request that lists it.
fn parse_json(body: &[u8]) -> Option<Value> {
    match serde_json::from_slice(body) {
        Ok(v) => Some(v),
        Err(_) => serde_json::from_slice(&replace_lone_surrogates(body)?).ok(),
    }
}

/// `body` with every lone surrogate escape replaced by `\ufffd`; `None` when there is none.
/// Backslashes only occur inside JSON strings, so escapes are found without parsing.
pub(crate) fn replace_lone_surrogates(body: &[u8]) -> Option<Vec<u8>> {
    fn escape_at(b: &[u8], i: usize) -> Option<u16> {
        let hex = b.get(i..i + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    }
    let mut out = Vec::with_capacity(body.len());
    let mut changed = false;
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        match escape_at(body, i) {
            Some(0xD800..=0xDBFF)
                if escape_at(body, i + 6).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low)) =>
            {
                out.extend_from_slice(&body[i..i + 12]);
                i += 12;
            }
            Some(0xD800..=0xDFFF) => {
                out.extend_from_slice(b"\\ufffd");
                changed = true;
                i += 6;
            }
            _ => {
                // Any other escape: copy it with the escaped character (`\\`, `\"`, …).
                let end = (i + 2).min(body.len());
                out.extend_from_slice(&body[i..end]);
                i = end;
            }
        }
    }
    changed.then_some(out)
}

impl Client {
    pub(crate) fn new(config: &LinearConfig, auth: Auth) -> Result<Self, agentflow_core::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("agentflow-linear/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                agentflow_core::Error::backend("linear", "building the HTTP client", false, e)
            })?;
        Ok(Client {
            http,
            url: config.api_url.clone(),
            auth,
            timeout: config.request_timeout,
            max_retries: config.max_retries,
            backoff: config.retry_backoff,
            limits: Mutex::new(RateLimit::default()),
            stats: Mutex::new(RequestStats::default()),
        })
    }

    pub(crate) fn rate_limit(&self) -> RateLimit {
        lock(&self.limits).clone()
    }

    pub(crate) fn stats(&self) -> RequestStats {
        lock(&self.stats).clone()
    }

    fn authorization(&self) -> String {
        match &self.auth {
            Auth::ApiKey(k) => k.expose_secret().to_owned(),
            Auth::OAuth(t) => format!("Bearer {}", t.expose_secret()),
        }
    }

    fn delay(&self, attempt: u32) -> Duration {
        let base = self.backoff.saturating_mul(1u32 << attempt.min(10));
        base.mul_f64(0.5 + fastrand::f64())
    }

    /// Sends `query` as `operation` and decodes its `data` into `T`.
    pub(crate) async fn request<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        query: &'static str,
        variables: Value,
    ) -> Result<T, LinearError> {
        let span = tracing::debug_span!("linear.request", operation);
        let result = self.request_inner(operation, query, variables).instrument(span).await;
        self.note_outcome(result.as_ref().err());
        result
    }

    /// Records whether Linear answered, or was out (for the dashboard's degraded state).
    fn note_outcome(&self, error: Option<&LinearError>) {
        let now = Utc::now();
        let mut stats = lock(&self.stats);
        match error {
            Some(
                e @ (LinearError::Transport { .. }
                | LinearError::Timeout { .. }
                | LinearError::Server { .. }
                | LinearError::Auth { .. }
                | LinearError::RateLimited { .. }),
            ) => {
                stats.last_outage_at = Some(now);
                stats.last_outage = Some(e.to_string());
            }
            _ => stats.last_answer_at = Some(now),
        }
    }

    async fn request_inner<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        query: &'static str,
        variables: Value,
    ) -> Result<T, LinearError> {
        if let Some(wait) = lock(&self.limits).paused_for(Utc::now()) {
            lock(&self.stats).rate_limited += 1;
            return Err(LinearError::RateLimited {
                retry_after: Some(wait),
                message: "waiting for Linear's rate-limit window to reset".into(),
            });
        }
        let payload = json!({ "query": query, "variables": variables, "operationName": operation });
        let mut attempt = 0;
        loop {
            {
                let mut stats = lock(&self.stats);
                stats.requests += 1;
                *stats.by_operation.entry(operation).or_default() += 1;
                if attempt > 0 {
                    stats.retries += 1;
                }
            }
            let failure = match self.send(&payload).await {
                Err(e) => e,
                Ok((status, headers, body)) => {
                    lock(&self.limits).observe(&headers, Utc::now());
                    if !status.is_server_error() {
                        return self.decode(operation, status, &headers, &body);
                    }
                    LinearError::Server {
                        status: status.as_u16(),
                        attempts: attempt + 1,
                        body: snippet(&body),
                    }
                }
            };
            self.note_failure();
            if attempt >= self.max_retries {
                return Err(failure);
            }
            tracing::warn!(operation, attempt, error = %failure, "retrying Linear request");
            tokio::time::sleep(self.delay(attempt)).await;
            attempt += 1;
        }
    }

    /// One HTTP exchange; transport failures and timeouts (sending or reading) are errors.
    async fn send(
        &self,
        payload: &Value,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>), LinearError> {
        let classify = |e: reqwest::Error| {
            if e.is_timeout() {
                LinearError::Timeout { url: self.url.clone(), after: self.timeout }
            } else {
                LinearError::Transport { url: self.url.clone(), source: e }
            }
        };
        let resp = self
            .http
            .post(&self.url)
            .header("authorization", self.authorization())
            .json(payload)
            .send()
            .await
            .map_err(classify)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(classify)?;
        Ok((status, headers, body.to_vec()))
    }

    fn note_failure(&self) {
        lock(&self.stats).failures += 1;
    }

    fn rate_limited(&self, headers: &reqwest::header::HeaderMap, message: String) -> LinearError {
        let now = Utc::now();
        let retry_after = ratelimit::retry_after(headers, now);
        lock(&self.limits).pause(retry_after, now);
        let mut stats = lock(&self.stats);
        stats.rate_limited += 1;
        stats.failures += 1;
        tracing::warn!(?retry_after, "Linear rate limit reached");
        LinearError::RateLimited { retry_after, message }
    }

    fn decode<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        status: StatusCode,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> Result<T, LinearError> {
        let parsed: Option<Value> = parse_json(body);
        let errors = parsed.as_ref().and_then(graphql_errors);
        let code = errors.as_ref().and_then(|(_, c)| c.as_deref());
        if status == StatusCode::TOO_MANY_REQUESTS || code == Some("RATELIMITED") {
            let message = errors.map(|(m, _)| m).unwrap_or_else(|| "too many requests".into());
            return Err(self.rate_limited(headers, message));
        }
        if status == StatusCode::UNAUTHORIZED
            || status == StatusCode::FORBIDDEN
            || matches!(code, Some("AUTHENTICATION_ERROR"))
        {
            self.note_failure();
            let message = errors.map(|(m, _)| m).unwrap_or_else(|| snippet(body));
            return Err(LinearError::Auth {
                mode: self.auth.mode(),
                status: status.as_u16(),
                message,
            });
        }
        if let Some((message, code)) = errors {
            self.note_failure();
            return Err(LinearError::GraphQl { operation, message, code });
        }
        let Some(mut parsed) = parsed.filter(|_| status.is_success()) else {
            self.note_failure();
            return Err(LinearError::Status {
                operation,
                status: status.as_u16(),
                body: snippet(body),
            });
        };
        let data = parsed.get_mut("data").map(Value::take).unwrap_or(Value::Null);
        serde_json::from_value(data).map_err(|source| {
            self.note_failure();
            LinearError::Decode { operation, source }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let body = br#"{"a":"x\ud800y","b":"\udc00","ok":"\ud83d\ude00","esc":"\\ud800","q":"\""}"#;
        assert!(serde_json::from_slice::<Value>(body).is_err(), "serde_json refuses it");
        let v = parse_json(body).expect("parsed after the repair");
        assert_eq!(v["a"], "x\u{fffd}y");
        assert_eq!(v["b"], "\u{fffd}");
        assert_eq!(v["ok"], "\u{1f600}", "a valid pair is kept");
        assert_eq!(v["esc"], "\\ud800", "an escaped backslash is not an escape");
        assert_eq!(v["q"], "\"");
        assert_eq!(replace_lone_surrogates(br#"{"a":"\u0041"}"#), None);
        assert_eq!(replace_lone_surrogates(b"\\"), None, "a trailing backslash");
        assert_eq!(parse_json(b"not json"), None);
    }
}
