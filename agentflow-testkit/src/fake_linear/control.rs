//! Counters, fault switches and webhook delivery of a [`FakeData`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::{FakeData, lock, post_webhook, sign, webhook};

impl FakeData {
    // ---- counters ----

    /// Requests received for operation `name` (e.g. `AgentflowIssues`), whatever the answer.
    pub fn requests(&self, name: &str) -> u64 {
        lock(&self.shared.counters).get(name).copied().unwrap_or(0)
    }

    /// Requests received in total.
    pub fn total_requests(&self) -> u64 {
        lock(&self.shared.counters).values().sum()
    }

    /// Requests per operation name.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        lock(&self.shared.counters).clone()
    }

    /// Every request answered so far, oldest answer first.
    pub fn request_log(&self) -> Vec<super::FakeRequest> {
        lock(&self.shared.log).clone()
    }

    /// Sets every counter back to zero.
    pub fn reset_requests(&self) {
        lock(&self.shared.counters).clear();
    }

    // ---- faults ----

    /// Fails every request's authentication with `status` (401 or 403); `None` heals.
    pub fn set_auth_failure(&self, status: Option<u16>) {
        lock(&self.shared.faults).auth_failure = status;
    }

    /// Allows `n` more requests in a window of `window`, then answers HTTP 400 with
    /// `extensions.code = "RATELIMITED"` until the window resets.
    pub fn rate_limit_after(&self, n: u64, window: Duration) {
        lock(&self.shared.faults).set_limit(n, window);
    }

    /// Answers the next `count` requests with HTTP 429 and `retry-after: <secs>`.
    pub fn too_many_requests(&self, count: u32, retry_after: Duration) {
        lock(&self.shared.faults).too_many = (count, retry_after);
    }

    /// Answers the next `count` requests with HTTP `status` (a 5xx).
    pub fn server_errors(&self, count: u32, status: u16) {
        lock(&self.shared.faults).server_errors = (count, status);
    }

    /// From now on, replaces every occurrence of `from` in an answer's body with the raw bytes
    /// `to` (e.g. a marker in a description with `\\ud800`, a lone surrogate escape that
    /// JavaScript servers emit and `serde_json` never writes). Cumulative; `clear_rewrites` ends.
    pub fn rewrite_responses(&self, from: &str, to: &str) {
        lock(&self.shared.faults).rewrites.push((from.as_bytes().to_vec(), to.as_bytes().to_vec()));
    }

    /// Stops rewriting answers.
    pub fn clear_rewrites(&self) {
        lock(&self.shared.faults).rewrites.clear();
    }

    /// Delays the next `count` responses by `delay`.
    pub fn slow_responses(&self, count: u32, delay: Duration) {
        lock(&self.shared.faults).slow = (count, delay);
    }

    /// Carries out the next `count` requests at once but holds their answers back by `delay`:
    /// a client that times out meanwhile sees a failure for a change Linear made.
    pub fn late_responses(&self, count: u32, delay: Duration) {
        lock(&self.shared.faults).late = (count, delay);
    }

    // ---- webhooks ----

    /// From now on, delivers a signed webhook to `url` (signed with `secret`) for every change
    /// made through these methods: issue created, issue moved, comment added, like a Linear
    /// webhook subscription for Issues and Comments. `None` stops. Changes made through the
    /// GraphQL API (the client's own mutations) are not delivered.
    pub fn deliver_webhooks(&self, target: Option<(&str, &str)>) {
        *lock(&self.shared.webhook) = target.map(|(u, s)| (u.to_owned(), s.to_owned()));
    }

    pub(super) fn notify(&self, payload: Option<Value>) {
        let Some(payload) = payload else { return };
        let Some((url, secret)) = lock(&self.shared.webhook).clone() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let body = serde_json::to_vec(&payload).unwrap_or_default();
            let signature = sign(&secret, &body);
            if let Err(e) = post_webhook(&url, body, Some(&signature)).await {
                tracing::warn!(url, error = %e, "fake Linear could not deliver a webhook");
            }
        });
    }

    /// The payload Linear sends when an issue changes (`action` is `create` or `update`);
    /// `previous_state` (an id) fills `updatedFrom.stateId`.
    pub fn issue_webhook(
        &self,
        issue_id: &str,
        action: &str,
        previous_state: Option<&str>,
    ) -> Value {
        webhook::issue_payload(&lock(&self.shared.db), issue_id, action, previous_state)
            .unwrap_or_else(|| panic!("no issue {issue_id}"))
    }

    /// The payload Linear sends when a comment is created.
    pub fn comment_webhook(&self, comment_id: &str) -> Value {
        webhook::comment_payload(&lock(&self.shared.db), comment_id)
            .unwrap_or_else(|| panic!("no comment {comment_id}"))
    }

    /// Signs `payload` with `secret` and posts it to `url`; returns the HTTP status.
    pub async fn send_webhook(
        &self,
        url: &str,
        secret: &str,
        payload: &Value,
    ) -> Result<u16, String> {
        let body = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
        let sig = sign(secret, &body);
        post_webhook(url, body, Some(&sig)).await
    }
}
