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
        self.request_inner(operation, query, variables).instrument(span).await
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
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
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
