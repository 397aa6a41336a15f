//! Switches that make the fake misbehave the way Linear does under load or misconfiguration.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The fault state, checked in this order for every request: slow, auth, 429, 5xx, RATELIMITED.
#[derive(Debug)]
pub(crate) struct Faults {
    /// Responses still to delay, and by how much.
    pub(crate) slow: (u32, Duration),
    /// Responses held back after the request was carried out: (count, delay).
    pub(crate) late: (u32, Duration),
    /// When set, every request fails authentication with this HTTP status.
    pub(crate) auth_failure: Option<u16>,
    /// Requests still to answer with 429, and the `retry-after` to send.
    pub(crate) too_many: (u32, Duration),
    /// Requests still to answer with this 5xx status.
    pub(crate) server_errors: (u32, u16),
    /// The request budget of one window (Linear: 1500 per hour for API keys).
    pub(crate) limit: u64,
    /// How long a window lasts.
    pub(crate) window: Duration,
    /// Requests used in the current window.
    pub(crate) used: u64,
    /// When the current window ends.
    pub(crate) reset_at: DateTime<Utc>,
    /// Byte strings replaced in every answer's body (`from`, `to`): raw JSON a real server may
    /// send but `serde_json` would never write, such as lone surrogate escapes.
    pub(crate) rewrites: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Default for Faults {
    fn default() -> Self {
        let window = Duration::from_secs(3600);
        Faults {
            slow: (0, Duration::ZERO),
            late: (0, Duration::ZERO),
            auth_failure: None,
            too_many: (0, Duration::ZERO),
            server_errors: (0, 503),
            limit: 1500,
            window,
            used: 0,
            reset_at: Utc::now() + window,
            rewrites: Vec::new(),
        }
    }
}

/// What to do with one request before looking at it.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    Proceed,
    Auth(u16),
    TooMany(Duration),
    ServerError(u16),
    RateLimited,
}

impl Faults {
    /// The delay to apply to this response (consumes one slow response).
    pub(crate) fn take_delay(&mut self) -> Option<Duration> {
        if self.slow.0 > 0 {
            self.slow.0 -= 1;
            Some(self.slow.1)
        } else {
            None
        }
    }

    /// How long to hold back the answer to a request already carried out (consumes one late
    /// response).
    pub(crate) fn take_late(&mut self) -> Option<Duration> {
        if self.late.0 > 0 {
            self.late.0 -= 1;
            Some(self.late.1)
        } else {
            None
        }
    }

    /// Decides the fate of a request with valid-looking credentials (`authorized`).
    pub(crate) fn verdict(&mut self, authorized: bool) -> Verdict {
        if let Some(status) = self.auth_failure {
            return Verdict::Auth(status);
        }
        if !authorized {
            return Verdict::Auth(401);
        }
        if self.too_many.0 > 0 {
            self.too_many.0 -= 1;
            return Verdict::TooMany(self.too_many.1);
        }
        if self.server_errors.0 > 0 {
            self.server_errors.0 -= 1;
            return Verdict::ServerError(self.server_errors.1);
        }
        let now = Utc::now();
        if now >= self.reset_at {
            self.used = 0;
            self.reset_at = now + self.window;
        }
        if self.used >= self.limit {
            return Verdict::RateLimited;
        }
        self.used += 1;
        Verdict::Proceed
    }

    /// Starts a fresh window of `limit` requests lasting `window`.
    pub(crate) fn set_limit(&mut self, limit: u64, window: Duration) {
        self.limit = limit;
        self.window = window;
        self.used = 0;
        self.reset_at = Utc::now() + window;
    }

    pub(crate) fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}
