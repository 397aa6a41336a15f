//! [`EngineConfig`]: every knob of the engine, with its defaults in one place.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the engine polls, runs and retries. Durations are human-readable in config files
/// (`"30s"`, `"3h"`).
///
/// ```
/// use std::time::Duration;
/// use agentflow_core::engine::EngineConfig;
///
/// let config: EngineConfig = serde_json::from_str(r#"{"workers": 5, "timeout": "1h"}"#).unwrap();
/// assert_eq!(config.workers, 5);
/// assert_eq!(config.timeout, Duration::from_secs(3600));
/// assert_eq!(config.poll_interval, Duration::from_secs(30));
/// assert_eq!(config.retry.delay(1), Duration::from_secs(5));
/// assert_eq!(config.retry.delay(3), Duration::from_secs(20));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// How often the Todo poller (and the reconciliation of running tasks) runs.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How often the feedback poller runs.
    #[serde(with = "humantime_serde")]
    pub feedback_interval: Duration,
    /// How often idle workers look for due jobs when the queue has no wakeup stream (retries
    /// that became due, jobs enqueued by another process).
    #[serde(with = "humantime_serde")]
    pub queue_poll_interval: Duration,
    /// How many jobs run at once.
    pub workers: usize,
    /// Lease length; the worker heartbeats every `lease / 3`.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often expired leases are recovered (the lease reaper).
    #[serde(with = "humantime_serde")]
    pub reaper_interval: Duration,
    /// How often In Progress tasks are checked for a live job, besides the check at start. A
    /// task found without one on two checks in a row (so not one caught between its claim and
    /// its enqueue) is enqueued again, resuming its session: this heals a queue wiped or
    /// restored from an old backup under a running engine.
    #[serde(with = "humantime_serde")]
    pub reconcile_interval: Duration,
    /// How long one attempt may run.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per job.
    pub max_attempts: u32,
    /// Backoff between attempts.
    pub retry: RetryConfig,
    /// At most one progress report (tracker comment edit) per task per interval. Every line
    /// still goes to `log:new` and the store.
    #[serde(with = "humantime_serde")]
    pub progress_interval: Duration,
    /// On shutdown, how long running jobs may finish before they are cancelled and released.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// After a run is cancelled, how long the executor may take to stop before it is dropped.
    #[serde(with = "humantime_serde")]
    pub cancel_grace: Duration,
    /// Todo tasks claimed per poll cycle at most.
    pub todo_batch: usize,
    /// Comments handled per feedback cycle at most (the rest wait for the next cycle).
    pub feedback_batch: usize,
    /// The directory under which each task gets its workspace (`<root>/<task key>`), passed to
    /// the executor. `None`: the executor decides.
    pub workspace_root: Option<PathBuf>,
    /// When today's cost (UTC) reaches this many US dollars, no new run starts until tomorrow
    /// or until the budget is raised; [`Stats::budget_exhausted`](crate::Stats::budget_exhausted)
    /// says so.
    pub daily_budget_usd: Option<f64>,
    /// How many tasks the live board keeps (finished ones are dropped oldest first).
    pub board_capacity: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            poll_interval: Duration::from_secs(30),
            feedback_interval: Duration::from_secs(30),
            queue_poll_interval: Duration::from_secs(1),
            workers: 3,
            lease: Duration::from_secs(60),
            reaper_interval: Duration::from_secs(30),
            reconcile_interval: Duration::from_secs(300),
            timeout: Duration::from_secs(3 * 3600),
            max_attempts: 3,
            retry: RetryConfig::default(),
            progress_interval: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            cancel_grace: Duration::from_secs(10),
            todo_batch: 20,
            feedback_batch: 100,
            workspace_root: None,
            daily_budget_usd: None,
            board_capacity: 500,
        }
    }
}

impl EngineConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self) -> crate::Result<()> {
        let positive = [
            ("poll_interval", self.poll_interval),
            ("feedback_interval", self.feedback_interval),
            ("queue_poll_interval", self.queue_poll_interval),
            ("lease", self.lease),
            ("reaper_interval", self.reaper_interval),
            ("reconcile_interval", self.reconcile_interval),
            ("timeout", self.timeout),
        ];
        for (key, d) in positive {
            if d.is_zero() {
                return Err(crate::Error::config(key, "must be greater than zero"));
            }
        }
        if self.workers == 0 {
            return Err(crate::Error::config("workers", "must be at least 1"));
        }
        if self.max_attempts == 0 {
            return Err(crate::Error::config("max_attempts", "must be at least 1"));
        }
        if self.todo_batch == 0 || self.feedback_batch == 0 {
            return Err(crate::Error::config("todo_batch", "batch sizes must be at least 1"));
        }
        if self.retry.factor < 1.0 || !self.retry.factor.is_finite() {
            return Err(crate::Error::config("retry.factor", "must be a finite number >= 1"));
        }
        if let Some(b) = self.daily_budget_usd
            && !(b >= 0.0 && b.is_finite())
        {
            return Err(crate::Error::config("daily_budget_usd", "must be a non-negative number"));
        }
        Ok(())
    }

    /// The heartbeat period: a third of the lease.
    pub fn heartbeat_every(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(10))
    }
}

/// Exponential backoff between attempts: `base × factor^(attempt-1)`, capped at `max`, with
/// optional full jitter (a random delay between half and all of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Delay after the first failed attempt.
    #[serde(with = "humantime_serde")]
    pub base: Duration,
    /// Growth per attempt.
    pub factor: f64,
    /// Upper bound.
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    /// Whether to randomise each delay between 50 % and 100 %.
    pub jitter: bool,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            base: Duration::from_secs(5),
            factor: 2.0,
            max: Duration::from_secs(3600),
            jitter: false,
        }
    }
}

impl RetryConfig {
    /// The delay after failed attempt number `attempt` (1-based): 5 s, 10 s, 20 s … by default.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(63) as i32;
        let secs = self.base.as_secs_f64() * self.factor.powi(exp);
        let capped = secs.min(self.max.as_secs_f64());
        let secs = if self.jitter { capped * (0.5 + fastrand::f64() * 0.5) } else { capped };
        Duration::try_from_secs_f64(secs).unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_five_seconds_and_is_capped() {
        let r = RetryConfig::default();
        let secs: Vec<u64> = (1..=4).map(|a| r.delay(a).as_secs()).collect();
        assert_eq!(secs, vec![5, 10, 20, 40]);
        let capped = RetryConfig { max: Duration::from_secs(12), ..r.clone() };
        assert_eq!(capped.delay(3), Duration::from_secs(12));
        assert_eq!(r.delay(500), r.max);
    }

    #[test]
    fn jitter_stays_between_half_and_all() {
        let r = RetryConfig { jitter: true, ..RetryConfig::default() };
        for _ in 0..100 {
            let d = r.delay(2);
            assert!(d >= Duration::from_secs(5) && d <= Duration::from_secs(10), "{d:?}");
        }
    }

    #[test]
    fn defaults_match_the_seed() {
        let c = EngineConfig::default();
        assert_eq!(c.poll_interval, Duration::from_secs(30));
        assert_eq!(c.workers, 3);
        assert_eq!(c.timeout, Duration::from_secs(3 * 3600));
        assert_eq!(c.max_attempts, 3);
        assert_eq!(c.heartbeat_every(), Duration::from_secs(20));
        c.validate().unwrap();
    }

    #[test]
    fn durations_round_trip_in_human_form() {
        let c = EngineConfig { daily_budget_usd: Some(2.5), ..EngineConfig::default() };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["timeout"], "3h");
        assert_eq!(json["retry"]["base"], "5s");
        assert_eq!(serde_json::from_value::<EngineConfig>(json).unwrap(), c);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        assert!(serde_json::from_str::<EngineConfig>(r#"{"worker": 2}"#).is_err());
        let c: EngineConfig = serde_json::from_str(r#"{"workers": 0}"#).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("workers"), "{err}");
        let c: EngineConfig =
            serde_json::from_str(r#"{"retry": {"base": "1s", "jitter": true}}"#).unwrap();
        assert_eq!(c.retry.base, Duration::from_secs(1));
        assert!(c.retry.jitter);
    }
}
