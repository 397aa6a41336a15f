//! Linear's rate-limit headers, the pause after a `RATELIMITED` answer, and request counters.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::HeaderMap;
use serde::Serialize;

/// The request and complexity budget Linear last reported (`x-ratelimit-*` headers), and the
/// time until which this client holds back because Linear said to slow down.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests_limit: Option<u64>,
    /// Requests left in the current window.
    pub requests_remaining: Option<u64>,
    /// When the request window resets.
    pub requests_reset: Option<DateTime<Utc>>,
    /// Complexity points allowed per window.
    pub complexity_limit: Option<u64>,
    /// Complexity points left.
    pub complexity_remaining: Option<u64>,
    /// When the complexity window resets.
    pub complexity_reset: Option<DateTime<Utc>>,
    /// No request is sent before this time (set by a rate-limited answer).
    pub paused_until: Option<DateTime<Utc>>,
}

/// Counters of requests this client sent, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Of which retries (after a 5xx or a timeout).
    pub retries: u64,
    /// Answers (or held-back requests) that were rate limited.
    pub rate_limited: u64,
    /// Requests that ended in any error.
    pub failures: u64,
    /// HTTP requests per operation name.
    pub by_operation: BTreeMap<&'static str, u64>,
    /// When Linear last answered a request (whatever the answer, unless it said to slow down).
    pub last_answer_at: Option<DateTime<Utc>>,
    /// When a request last failed because Linear was unreachable, failing (5xx, timeouts),
    /// refusing the credentials or rate limiting us.
    pub last_outage_at: Option<DateTime<Utc>>,
    /// What that failure was.
    pub last_outage: Option<String>,
}

impl RequestStats {
    /// The last outage, when it is more recent than the last answer: Linear is degraded now.
    pub fn degraded(&self) -> Option<(DateTime<Utc>, &str)> {
        let at = self.last_outage_at?;
        if self.last_answer_at.is_some_and(|ok| ok > at) {
            return None;
        }
        Some((at, self.last_outage.as_deref().unwrap_or("unknown error")))
    }
}

fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Linear sends reset times as UTC epoch milliseconds.
fn epoch_ms(headers: &HeaderMap, name: &str) -> Option<DateTime<Utc>> {
    let ms = i64::try_from(number(headers, name)?).ok()?;
    Utc.timestamp_millis_opt(ms).single()
}

/// How long to wait: `retry-after` (seconds) first, else until `x-ratelimit-requests-reset`.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    if let Some(secs) = number(headers, "retry-after") {
        return Some(Duration::from_secs(secs));
    }
    let reset = epoch_ms(headers, "x-ratelimit-requests-reset")
        .or_else(|| epoch_ms(headers, "x-ratelimit-complexity-reset"))?;
    Some((reset - now).to_std().unwrap_or(Duration::ZERO))
}

impl RateLimit {
    /// Records the budget headers of an answer.
    pub(crate) fn observe(&mut self, headers: &HeaderMap, _now: DateTime<Utc>) {
        if let Some(v) = number(headers, "x-ratelimit-requests-limit") {
            self.requests_limit = Some(v);
        }
        if let Some(v) = number(headers, "x-ratelimit-requests-remaining") {
            self.requests_remaining = Some(v);
        }
        if let Some(v) = epoch_ms(headers, "x-ratelimit-requests-reset") {
            self.requests_reset = Some(v);
        }
        if let Some(v) = number(headers, "x-ratelimit-complexity-limit") {
            self.complexity_limit = Some(v);
        }
        if let Some(v) = number(headers, "x-ratelimit-complexity-remaining") {
            self.complexity_remaining = Some(v);
        }
        if let Some(v) = epoch_ms(headers, "x-ratelimit-complexity-reset") {
            self.complexity_reset = Some(v);
        }
    }

    /// Holds requests back for `wait` from `now`.
    pub(crate) fn pause(&mut self, wait: Option<Duration>, now: DateTime<Utc>) {
        if let Some(wait) = wait.filter(|w| !w.is_zero()) {
            let until = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
        }
    }

    /// How much longer requests are held back, `None` when they may go.
    pub(crate) fn paused_for(&mut self, now: DateTime<Utc>) -> Option<Duration> {
        match self.paused_until {
            Some(until) if until > now => (until - now).to_std().ok(),
            Some(_) => {
                self.paused_until = None;
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn retry_after_prefers_the_header_then_the_reset_time() {
        let now = Utc::now();
        let reset = (now + chrono::Duration::seconds(30)).timestamp_millis().to_string();
        let h =
            headers(&[("retry-after", "7".into()), ("x-ratelimit-requests-reset", reset.clone())]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let h = headers(&[("x-ratelimit-requests-reset", reset)]);
        let wait = retry_after(&h, now).unwrap();
        assert!(wait > Duration::from_secs(29) && wait <= Duration::from_secs(30), "{wait:?}");
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn pause_holds_until_the_reset_then_clears() {
        let now = Utc::now();
        let mut rl = RateLimit::default();
        rl.pause(Some(Duration::from_secs(5)), now);
        assert_eq!(rl.paused_for(now), Some(Duration::from_secs(5)));
        assert_eq!(rl.paused_for(now + chrono::Duration::seconds(6)), None);
        assert_eq!(rl.paused_until, None);
    }

    #[test]
    fn degraded_until_linear_answers_again() {
        let now = Utc::now();
        let mut stats = RequestStats::default();
        assert_eq!(stats.degraded(), None);
        stats.last_outage_at = Some(now);
        stats.last_outage = Some("HTTP 503".into());
        assert_eq!(stats.degraded(), Some((now, "HTTP 503")));
        stats.last_answer_at = Some(now - chrono::Duration::seconds(1));
        assert!(stats.degraded().is_some(), "an older answer does not heal");
        stats.last_answer_at = Some(now + chrono::Duration::seconds(1));
        assert_eq!(stats.degraded(), None);
    }

    #[test]
    fn observe_reads_every_budget_header() {
        let mut rl = RateLimit::default();
        let h = headers(&[
            ("x-ratelimit-requests-limit", "1500".into()),
            ("x-ratelimit-requests-remaining", "1499".into()),
            ("x-ratelimit-complexity-limit", "250000".into()),
            ("x-ratelimit-complexity-remaining", "249000".into()),
            ("x-ratelimit-requests-reset", "1767225600000".into()),
        ]);
        rl.observe(&h, Utc::now());
        assert_eq!(rl.requests_limit, Some(1500));
        assert_eq!(rl.requests_remaining, Some(1499));
        assert_eq!(rl.complexity_remaining, Some(249_000));
        assert_eq!(rl.requests_reset.unwrap().timestamp(), 1_767_225_600);
    }
}
