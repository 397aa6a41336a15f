//! This crate's error, mapped into [`agentflow_core::Error`] with the cause kept.

use std::time::Duration;

use agentflow_core::Error;

/// Why a Linear request or a piece of Linear configuration failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinearError {
    /// The request could not be sent or the connection broke.
    #[error("request to {url} failed: {source}")]
    Transport {
        /// The API URL.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The request did not finish within the configured timeout.
    #[error("request to {url} timed out after {after:?}")]
    Timeout {
        /// The API URL.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// Linear answered with a server error (5xx) after every retry.
    #[error("Linear answered HTTP {status} after {attempts} attempt(s): {body}")]
    Server {
        /// The last status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The start of the body.
        body: String,
    },
    /// Linear refused the credentials (401/403, or `AUTHENTICATION_ERROR`).
    #[error("Linear rejected the {mode} (HTTP {status}): {message}")]
    Auth {
        /// `API key` or `OAuth token`.
        mode: &'static str,
        /// The HTTP status.
        status: u16,
        /// Linear's message.
        message: String,
    },
    /// Linear asked us to slow down (HTTP 400 `RATELIMITED` or 429), or we are still waiting for
    /// the window to reset.
    #[error("Linear rate limit reached: {message}")]
    RateLimited {
        /// How long to wait, when known.
        retry_after: Option<Duration>,
        /// Linear's message.
        message: String,
    },
    /// The answer carried GraphQL `errors`.
    #[error("Linear {operation} failed: {message}")]
    GraphQl {
        /// The operation name.
        operation: &'static str,
        /// Every error message, joined.
        message: String,
        /// The first error's `extensions.code`.
        code: Option<String>,
    },
    /// The answer was not the JSON we expected.
    #[error("unexpected answer to Linear {operation}: {source}")]
    Decode {
        /// The operation name.
        operation: &'static str,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// An HTTP status Linear should not send (a 4xx that is neither auth nor rate limit).
    #[error("Linear answered HTTP {status} to {operation}: {body}")]
    Status {
        /// The operation name.
        operation: &'static str,
        /// The status.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

impl LinearError {
    /// Whether this is Linear's "entity not found" for the thing asked for.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, LinearError::GraphQl { message, .. } if message.contains("Entity not found"))
    }

    /// Whether Linear said a workflow state id is unknown (our cache is stale).
    pub(crate) fn is_state_not_found(&self) -> bool {
        matches!(self, LinearError::GraphQl { message, .. }
            if message.contains("not found") && message.contains("WorkflowState"))
    }
}

impl From<LinearError> for Error {
    fn from(e: LinearError) -> Self {
        match e {
            LinearError::Auth { mode, .. } => {
                let key = if mode == "API key" { "linear.api_key" } else { "linear.oauth_token" };
                Error::config(key, e.to_string())
            }
            LinearError::RateLimited { retry_after, message } => {
                Error::RateLimited { service: "linear", retry_after, message }
            }
            LinearError::Timeout { after, .. } => Error::Timeout { after },
            LinearError::Transport { .. } | LinearError::Server { .. } => Error::Unavailable {
                service: "linear",
                message: e.to_string(),
                source: Some(Box::new(e)),
            },
            LinearError::GraphQl { .. }
            | LinearError::Decode { .. }
            | LinearError::Status { .. } => {
                let message = e.to_string();
                Error::Backend {
                    service: "linear",
                    message,
                    retryable: false,
                    source: Some(Box::new(e)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graphql(message: &str) -> LinearError {
        LinearError::GraphQl { operation: "Op", message: message.into(), code: None }
    }

    #[test]
    fn classification_follows_what_a_retry_can_fix() {
        let auth = LinearError::Auth { mode: "API key", status: 401, message: "nope".into() };
        let e = Error::from(auth);
        assert!(!e.is_retryable());
        assert!(matches!(&e, Error::InvalidConfig { key, .. } if key == "linear.api_key"));
        let oauth = LinearError::Auth { mode: "OAuth token", status: 403, message: "no".into() };
        assert!(
            matches!(Error::from(oauth), Error::InvalidConfig { key, .. } if key == "linear.oauth_token")
        );

        let limited = LinearError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
            message: "Rate limit exceeded".into(),
        };
        let e = Error::from(limited);
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));

        let server = LinearError::Server { status: 502, attempts: 4, body: "bad gateway".into() };
        assert!(Error::from(server).is_retryable());
        let timeout = LinearError::Timeout { url: "u".into(), after: Duration::from_secs(30) };
        assert!(matches!(Error::from(timeout), Error::Timeout { .. }));

        let e = Error::from(graphql("Argument Validation Error"));
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("Argument Validation Error"), "{e}");
        assert!(std::error::Error::source(&e).is_some(), "the cause is kept");
    }

    #[test]
    fn not_found_answers_are_recognised() {
        assert!(graphql("Entity not found: Issue").is_not_found());
        assert!(
            graphql("Entity not found: WorkflowState - Could not find it").is_state_not_found()
        );
        assert!(!graphql("Entity not found: Issue").is_state_not_found());
        assert!(!graphql("something else").is_not_found());
    }
}
