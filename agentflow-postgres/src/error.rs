//! The crate's error type and its mapping into [`agentflow_core::Error`].

use agentflow_core::Error;

/// Everything this crate can fail with, before it becomes an [`agentflow_core::Error`].
///
/// Callers see [`agentflow_core::Error`]; this type exists so the classification (retryable or
/// not) lives in one place and the original error is kept as the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// A query or connection failed.
    #[error("{context}: {source}")]
    Sqlx {
        /// What we were doing (`reserve`, `migration 0002_store`, …).
        context: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A row held a value this version does not understand.
    #[error("corrupt row in {table}: {message}")]
    CorruptRow {
        /// The table.
        table: &'static str,
        /// What was wrong.
        message: String,
    },
}

impl PgError {
    /// Wraps a driver error with what we were doing.
    pub(crate) fn sqlx(context: impl Into<String>, source: sqlx::Error) -> Self {
        PgError::Sqlx { context: context.into(), source }
    }

    /// Whether trying again later may succeed (connection loss, server restart, serialization
    /// failure, deadlock, resource exhaustion).
    pub fn is_retryable(&self) -> bool {
        match self {
            PgError::Sqlx { source, .. } => sqlx_is_retryable(source),
            PgError::CorruptRow { .. } => false,
        }
    }
}

/// SQLSTATE classes and codes that describe a transient condition.
fn sqlstate_is_retryable(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources
        || code.starts_with("57P") // admin/crash shutdown, cannot connect now
        || code == "40001" // serialization failure
        || code == "40P01" // deadlock detected
        || code == "55P03" // lock not available
        || code == "55006" // object in use
        || code == "25006" // read-only transaction (failover in progress)
        || code == "57014" // query cancelled (statement timeout)
}

/// The connection or the pool failed, not the statement: always worth another try.
fn is_transport_error(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_)
    )
}

fn sqlx_is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| sqlstate_is_retryable(&c)),
        other => is_transport_error(other),
    }
}

fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P"))
        }
        other => is_transport_error(other),
    }
}

impl From<PgError> for Error {
    fn from(e: PgError) -> Self {
        let retryable = e.is_retryable();
        let message = e.to_string();
        let unavailable = matches!(&e, PgError::Sqlx { source, .. } if is_connection_error(source));
        if unavailable {
            Error::Unavailable { service: "postgres", message, source: Some(Box::new(e)) }
        } else {
            Error::backend("postgres", message, retryable, e)
        }
    }
}

/// Shorthand: maps a driver error with context straight into the core error.
pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| PgError::sqlx(context, e).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_are_retryable_and_unavailable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e: Error = PgError::sqlx("reserve", sqlx::Error::Io(io)).into();
        assert!(e.is_retryable());
        assert!(matches!(e, Error::Unavailable { service: "postgres", .. }), "{e:?}");
        let e: Error = PgError::sqlx("reserve", sqlx::Error::PoolTimedOut).into();
        assert!(e.is_retryable());
    }

    #[test]
    fn data_errors_are_not_retryable() {
        let e: Error = PgError::sqlx("get", sqlx::Error::ColumnNotFound("x".into())).into();
        assert!(!e.is_retryable());
        let e: Error = PgError::CorruptRow { table: "jobs", message: "bad state".into() }.into();
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("jobs"));
    }

    #[test]
    fn sqlstates() {
        for code in ["08006", "57P01", "40001", "40P01", "53300"] {
            assert!(sqlstate_is_retryable(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02"] {
            assert!(!sqlstate_is_retryable(code), "{code}");
        }
    }
}
