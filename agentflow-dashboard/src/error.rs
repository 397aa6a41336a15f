//! The crate's error, and the JSON error every API call answers with when it fails.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What can go wrong starting or serving the dashboard.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// A non-loopback address was asked for without an auth token.
    #[error(
        "refusing to serve the dashboard on {addr} without a token: it is not a loopback address; \
         set `dashboard.token` or bind 127.0.0.1"
    )]
    TokenRequired {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("dashboard server failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl From<DashboardError> for agentflow_core::Error {
    fn from(e: DashboardError) -> Self {
        match e {
            DashboardError::TokenRequired { .. } => {
                agentflow_core::Error::config("dashboard.token", e.to_string())
            }
            DashboardError::Bind { ref source, .. } => {
                // Address in use may free up; permission denied or a bad address will not.
                let retryable = source.kind() == std::io::ErrorKind::AddrInUse;
                agentflow_core::Error::backend("dashboard", e.to_string(), retryable, e)
            }
            DashboardError::Serve(_) => {
                agentflow_core::Error::backend("dashboard", e.to_string(), true, e)
            }
        }
    }
}

/// An API failure: an HTTP status and a message a person can act on, plus per-field messages
/// for form validation. Serialized as `{"error": {"message": …, "fields": {…}}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong and what to do about it.
    pub message: String,
    /// Per-field messages (settings validation), keyed by setting key.
    pub fields: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorInner<'a>,
}

#[derive(Serialize)]
struct ErrorInner<'a> {
    message: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    fields: &'a BTreeMap<String, String>,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), fields: BTreeMap::new() }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 422 with per-field messages.
    pub fn invalid_fields(fields: BTreeMap<String, String>) -> Self {
        let n = fields.len();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!(
                "{n} setting{} not saved: fix the field{} marked and save again; nothing was changed",
                if n == 1 { "" } else { "s" },
                if n == 1 { "" } else { "s" }
            ),
            fields,
        }
    }
}

impl From<agentflow_core::Error> for ApiError {
    fn from(e: agentflow_core::Error) -> Self {
        use agentflow_core::Error as E;
        let status = match &e {
            E::NotFound { .. } => StatusCode::NOT_FOUND,
            E::Conflict(_) => StatusCode::CONFLICT,
            E::InvalidInput(_) | E::InvalidConfig { .. } => StatusCode::BAD_REQUEST,
            E::Unavailable { .. } | E::RateLimited { .. } | E::Timeout { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // Core errors are written for people and never carry secrets; the source chain may hold
        // driver detail, so only the top-level message goes out.
        let mut message = e.to_string();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            message.push_str("; try again in a moment");
        }
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "dashboard request failed");
        }
        ApiError::new(status, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorInner { message: &self.message, fields: &self.fields } };
        (self.status, Json(body)).into_response()
    }
}

/// Result of an API handler.
pub(crate) type ApiResult<T> = Result<T, ApiError>;
