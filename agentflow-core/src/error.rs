//! The one error type every trait in agentflow returns.

use std::time::Duration;

use crate::job::JobId;

/// A boxed error kept as the source of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with agentflow's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in agentflow, classified so that callers can act on it.
///
/// Adapters map their private errors (`rusqlite::Error`, `redis::RedisError`, `sqlx::Error`,
/// `reqwest::Error`, …) into one of these kinds and keep the original as the source. The engine
/// decides whether to retry from [`Error::is_retryable`] alone, so every backend behaves alike.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The lease presented is no longer the current one: it expired and was recovered, the job
    /// was cancelled, or another worker holds it now. Nothing was changed.
    #[error("lease lost for job {job}: the lease expired, was recovered or the job was cancelled")]
    LeaseLost {
        /// The job whose lease was presented.
        job: JobId,
    },

    /// A thing that was asked for by id does not exist.
    #[error("{what} not found: {id}")]
    NotFound {
        /// What kind of thing (`"job"`, `"task"`, `"run"`, …).
        what: &'static str,
        /// The id that was looked up.
        id: String,
    },

    /// The request conflicts with the current state (e.g. retrying a task that is running).
    #[error("conflict: {0}")]
    Conflict(String),

    /// A backend or remote service could not be reached or answered with a transient failure.
    #[error("{service} unavailable: {message}")]
    Unavailable {
        /// The service (`"redis"`, `"postgres"`, `"linear"`, …).
        service: &'static str,
        /// What happened, for a person.
        message: String,
        /// The underlying cause.
        #[source]
        source: Option<BoxError>,
    },

    /// An argument or a piece of input data is not acceptable.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A configuration value is missing or wrong.
    #[error("invalid configuration `{key}`: {message}")]
    InvalidConfig {
        /// The configuration key, e.g. `linear.api_key`.
        key: String,
        /// What is wrong and, where possible, how to fix it.
        message: String,
    },

    /// A remote service asked us to slow down.
    #[error("{service} rate limited{}: {message}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited {
        /// The service that limited us.
        service: &'static str,
        /// How long to wait, when the service said.
        retry_after: Option<Duration>,
        /// The service's message.
        message: String,
    },

    /// The executor (agent) failed.
    #[error("executor failed: {message}")]
    Executor {
        /// What happened, for a person (shown in the task's failure report).
        message: String,
        /// Whether running the attempt again may succeed.
        retryable: bool,
        /// The underlying cause.
        #[source]
        source: Option<BoxError>,
    },

    /// An operation did not finish in time.
    #[error("timed out after {}", humantime_fmt(*after))]
    Timeout {
        /// The limit that was reached.
        after: Duration,
    },

    /// The operation was cancelled.
    #[error("cancelled: {reason}")]
    Cancelled {
        /// Why, for a person.
        reason: String,
    },

    /// A backend failed in a way none of the other kinds describe.
    #[error("{service} error: {message}")]
    Backend {
        /// The backend (`"sqlite"`, `"postgres"`, …).
        service: &'static str,
        /// What happened, for a person.
        message: String,
        /// Whether trying again may succeed.
        retryable: bool,
        /// The underlying cause.
        #[source]
        source: Option<BoxError>,
    },
}

fn humantime_fmt(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        format!("{}ms", d.as_millis())
    } else if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

impl Error {
    /// Whether the failed operation may succeed if tried again later.
    ///
    /// ```
    /// use agentflow_core::Error;
    /// assert!(Error::unavailable("redis", "connection reset").is_retryable());
    /// assert!(!Error::InvalidInput("empty title".into()).is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unavailable { .. } | Error::RateLimited { .. } | Error::Timeout { .. } => true,
            Error::Executor { retryable, .. } | Error::Backend { retryable, .. } => *retryable,
            Error::LeaseLost { .. }
            | Error::NotFound { .. }
            | Error::Conflict(_)
            | Error::InvalidInput(_)
            | Error::InvalidConfig { .. }
            | Error::Cancelled { .. } => false,
        }
    }

    /// How long the remote service asked us to wait, for [`Error::RateLimited`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A transient failure of `service` without a source error.
    pub fn unavailable(service: &'static str, message: impl Into<String>) -> Self {
        Error::Unavailable { service, message: message.into(), source: None }
    }

    /// A [`Error::NotFound`] for `what` with `id`.
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        Error::NotFound { what, id: id.to_string() }
    }

    /// A [`Error::InvalidConfig`] for `key`.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidConfig { key: key.into(), message: message.into() }
    }

    /// An executor failure; `retryable` says whether another attempt may succeed.
    pub fn executor(message: impl Into<String>, retryable: bool) -> Self {
        Error::Executor { message: message.into(), retryable, source: None }
    }

    /// A backend failure with its source kept.
    pub fn backend(
        service: &'static str,
        message: impl Into<String>,
        retryable: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Backend { service, message: message.into(), retryable, source: Some(source.into()) }
    }
}
