//! This crate's error, and how it maps into [`agentflow_core::Error`].

use std::path::PathBuf;

use rusqlite::ErrorCode;

/// What can go wrong in the SQLite backend.
///
/// Every public method returns [`agentflow_core::Error`]; this type is kept as its source, so a
/// caller that needs the detail can `downcast_ref::<SqliteError>()` it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// The URL or path given to open a database is not usable.
    #[error(
        "invalid sqlite URL `{url}`: {message} (expected `sqlite://relative.db`, `sqlite:///absolute/path.db` or a plain path)"
    )]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        message: String,
    },

    /// The database file (or its directory) cannot be written.
    #[error(
        "cannot write the database {path}: {reason}; make the file and its directory writable by this user, or point the URL at another path"
    )]
    NotWritable {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        reason: String,
        /// The SQLite error.
        #[source]
        source: Option<rusqlite::Error>,
    },

    /// The file exists but is not an SQLite database (or is corrupt).
    #[error(
        "{path} is not an SQLite database or is corrupt ({reason}); move it aside (keep a copy if it matters) and agentflow will create a fresh one, or point the URL at another path"
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        reason: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// The file was written by a newer agentflow whose schema this build does not know.
    #[error(
        "the database {path} has schema version {found}, but this build of agentflow-sqlite knows versions up to {known}; upgrade agentflow, or point the URL at another file (this one is left untouched)"
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// The version found in `schema_version`.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },

    /// A pragma did not take the value it was set to.
    #[error(
        "the database {path} refused `PRAGMA {pragma} = {wanted}` (it reports `{got}`); WAL needs a local file system that supports shared memory"
    )]
    Pragma {
        /// The file.
        path: PathBuf,
        /// The pragma.
        pragma: &'static str,
        /// The value set.
        wanted: String,
        /// The value read back.
        got: String,
    },

    /// A migration failed.
    #[error("migrating the database {path} to schema version {version} failed: {source}")]
    Migration {
        /// The file.
        path: PathBuf,
        /// The migration that failed.
        version: i64,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// A query failed.
    #[error("sqlite query failed ({op}): {source}")]
    Query {
        /// What was being done (`reserve`, `append_logs`, …).
        op: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// A stored value could not be decoded.
    #[error("corrupt row in {table}: {message}")]
    Decode {
        /// The table.
        table: &'static str,
        /// What is wrong.
        message: String,
    },

    /// The database's background thread stopped (the process is shutting down, or it panicked).
    #[error("the sqlite {thread} thread of {path} has stopped")]
    ThreadGone {
        /// `writer` or `reader`.
        thread: &'static str,
        /// The file.
        path: PathBuf,
    },

    /// A background thread could not be started.
    #[error("cannot start the sqlite {thread} thread: {source}")]
    Spawn {
        /// Which thread.
        thread: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl SqliteError {
    /// A failed query doing `op`.
    pub(crate) fn query(op: &'static str) -> impl FnOnce(rusqlite::Error) -> SqliteError {
        move |source| SqliteError::Query { op, source }
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            SqliteError::Query { source, .. } => matches!(
                code_of(source),
                Some(
                    ErrorCode::DatabaseBusy
                        | ErrorCode::DatabaseLocked
                        | ErrorCode::SystemIoFailure
                        | ErrorCode::DiskFull
                        | ErrorCode::OutOfMemory
                        | ErrorCode::OperationInterrupted
                )
            ),
            SqliteError::ThreadGone { .. } | SqliteError::Spawn { .. } => true,
            _ => false,
        }
    }
}

/// The SQLite result code of an error, when it came from SQLite.
pub(crate) fn code_of(e: &rusqlite::Error) -> Option<ErrorCode> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    }
}

impl From<SqliteError> for agentflow_core::Error {
    fn from(e: SqliteError) -> Self {
        match e {
            SqliteError::Url { .. } => agentflow_core::Error::config("database.url", e.to_string()),
            SqliteError::ThreadGone { .. } => agentflow_core::Error::Unavailable {
                service: "sqlite",
                message: e.to_string(),
                source: Some(Box::new(e)),
            },
            _ => {
                let retryable = e.is_retryable();
                agentflow_core::Error::backend("sqlite", e.to_string(), retryable, e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_retryable_and_constraint_is_not() {
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(5), None);
        let constraint = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(19), None);
        let e: agentflow_core::Error = SqliteError::query("reserve")(busy).into();
        assert!(e.is_retryable(), "{e}");
        let e: agentflow_core::Error = SqliteError::query("enqueue")(constraint).into();
        assert!(!e.is_retryable(), "{e}");
    }

    #[test]
    fn source_is_kept() {
        let e: agentflow_core::Error =
            SqliteError::NewerSchema { path: "/tmp/x.db".into(), found: 9, known: 2 }.into();
        let src = std::error::Error::source(&e).expect("source kept");
        assert!(src.downcast_ref::<SqliteError>().is_some());
        assert!(e.to_string().contains("/tmp/x.db"));
    }
}
