//! This crate's error, mapped into [`agentflow_core::Error`].

use redis::{ErrorKind, ServerErrorKind};

/// What can go wrong talking to Redis. Converted into [`agentflow_core::Error`] with the cause
/// kept as the source: transient failures (connection refused or reset, timeouts, `LOADING`,
/// `TRYAGAIN`, `MASTERDOWN`, `CLUSTERDOWN`, `READONLY`) become
/// [`Error::Unavailable`](agentflow_core::Error::Unavailable), which is retryable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A command or script failed.
    #[error("redis `{op}` failed: {source}")]
    Command {
        /// The operation (`reserve`, `complete`, `publish`, …).
        op: &'static str,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// A reply did not have the expected shape (e.g. a foreign value under our keys).
    #[error("unexpected reply to redis `{op}`: {detail}")]
    Reply {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl Error {
    pub(crate) fn command(op: &'static str, source: redis::RedisError) -> Self {
        Error::Command { op, source }
    }

    pub(crate) fn reply(op: &'static str, detail: impl Into<String>) -> Self {
        Error::Reply { op, detail: detail.into() }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Command { source, .. } => is_transient(source),
            Error::Reply { .. } => false,
        }
    }
}

/// Whether a client error is a passing condition (network, restart, failover).
pub(crate) fn is_transient(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::ReadOnly
            )
        )
}

impl From<Error> for agentflow_core::Error {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        if e.is_transient() {
            agentflow_core::Error::Unavailable {
                service: "redis",
                message,
                source: Some(Box::new(e)),
            }
        } else {
            agentflow_core::Error::backend("redis", message, false, e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loading_and_resets_are_retryable_but_script_errors_are_not() {
        let loading = redis::RedisError::from((
            ErrorKind::Server(ServerErrorKind::BusyLoading),
            "Redis is loading the dataset in memory",
        ));
        let core: agentflow_core::Error = Error::command("reserve", loading).into();
        assert!(core.is_retryable(), "{core}");

        let reset =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let core: agentflow_core::Error = Error::command("complete", reset).into();
        assert!(core.is_retryable(), "{core}");

        let timeout = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(agentflow_core::Error::from(Error::command("get", timeout)).is_retryable());

        let script = redis::RedisError::from((
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "user_script:1: Script attempted to access nonexistent global variable",
        ));
        let core: agentflow_core::Error = Error::command("enqueue", script).into();
        assert!(!core.is_retryable(), "{core}");
        assert!(core.to_string().contains("enqueue"), "{core}");

        let reply: agentflow_core::Error = Error::reply("stats", "not an integer").into();
        assert!(!reply.is_retryable());
    }
}
