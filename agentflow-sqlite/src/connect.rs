//! Parsing the database URL and opening connections with verified pragmas.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::config::{SqliteOptions, Synchronous};
use crate::error::{SqliteError, code_of};
use crate::migrate;

/// Turns `sqlite://relative.db`, `sqlite:///absolute.db`, `sqlite:relative.db` or a plain path
/// into a file path.
pub(crate) fn parse_target(target: &str) -> Result<PathBuf, SqliteError> {
    let bad = |message: &str| SqliteError::Url { url: target.to_owned(), message: message.into() };
    let path = if let Some(rest) = target.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = target.strip_prefix("sqlite:") {
        rest
    } else if target.contains("://") {
        return Err(bad("not a sqlite URL"));
    } else {
        target
    };
    if path.contains('?') {
        return Err(bad("query parameters are not supported; use SqliteOptions"));
    }
    if path.is_empty() {
        return Err(bad("no file path"));
    }
    if path == ":memory:" || path.starts_with("file:") {
        return Err(bad(
            "in-memory and URI databases are not supported (WAL needs a file); use `memory://` for an in-memory queue",
        ));
    }
    Ok(PathBuf::from(path))
}

/// Maps an error met while opening `path` to the error that tells the user what to do.
fn open_error(path: &Path, e: rusqlite::Error) -> SqliteError {
    let reason = e.to_string();
    match code_of(&e) {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            SqliteError::NotADatabase { path: path.to_owned(), reason, source: e }
        }
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
            SqliteError::NotWritable { path: path.to_owned(), reason, source: Some(e) }
        }
        _ => SqliteError::Query { op: "open", source: e },
    }
}

/// Opens the writer connection: sets and verifies the pragmas, then migrates the schema to
/// `upto` (normally the latest version).
pub(crate) fn open_writer(
    path: &Path,
    options: &SqliteOptions,
    upto: i64,
) -> Result<Connection, SqliteError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(options.busy_timeout).map_err(|e| open_error(path, e))?;
    // Look at the version before changing anything, so a newer file is left untouched; this is
    // also the first read of the file, where a non-database fails.
    let found = migrate::current_version(&conn).map_err(|e| open_error(path, e))?;
    migrate::check_not_newer(path, found)?;
    if conn.is_readonly("main").map_err(|e| open_error(path, e))? {
        return Err(SqliteError::NotWritable {
            path: path.to_owned(),
            reason: "SQLite opened it read-only".into(),
            source: None,
        });
    }
    set_pragmas(&conn, path, options)?;
    migrate::migrate(&mut conn, path, upto)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Opens the checkpointer's connection (after the writer created the file).
pub(crate) fn open_checkpointer(
    path: &Path,
    options: &SqliteOptions,
) -> Result<Connection, SqliteError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(options.busy_timeout).map_err(|e| open_error(path, e))?;
    Ok(conn)
}

/// Opens a reader connection (after the writer created and migrated the file).
pub(crate) fn open_reader(path: &Path, options: &SqliteOptions) -> Result<Connection, SqliteError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(options.busy_timeout).map_err(|e| open_error(path, e))?;
    conn.pragma_update(None, "query_only", true).map_err(|e| open_error(path, e))?;
    conn.pragma_update(None, "cache_size", READER_CACHE_KIB).map_err(|e| open_error(path, e))?;
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    expect(path, "journal_mode", "wal", &mode.to_lowercase())?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Page cache of the writer connection, in KiB (`PRAGMA cache_size = -N`).
const WRITER_CACHE_KIB: i64 = -64 * 1024;
/// Page cache of each reader connection, in KiB.
const READER_CACHE_KIB: i64 = -16 * 1024;

fn set_pragmas(conn: &Connection, path: &Path, options: &SqliteOptions) -> Result<(), SqliteError> {
    let err = |e| open_error(path, e);
    // `journal_mode` answers with the mode in force: anything but `wal` means it was refused.
    let mode: String =
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(err)?;
    expect(path, "journal_mode", "wal", &mode.to_lowercase())?;

    let sync = options.synchronous;
    conn.pragma_update(None, "synchronous", sync.keyword()).map_err(err)?;
    let got: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0)).map_err(err)?;
    expect(path, "synchronous", &sync.code().to_string(), &got.to_string())?;

    conn.pragma_update(None, "foreign_keys", true).map_err(err)?;
    let got: i64 = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0)).map_err(err)?;
    expect(path, "foreign_keys", "1", &got.to_string())?;

    // Statement journals and sorts stay in memory rather than in temporary files.
    conn.pragma_update(None, "temp_store", "MEMORY").map_err(err)?;
    // A page cache large enough for the indexes a large history touches (negative = KiB).
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB).map_err(err)?;
    // The checkpointer thread keeps the WAL short; the writer steps in only if it falls behind.
    conn.pragma_update(None, "wal_autocheckpoint", crate::checkpoint::WRITER_AUTOCHECKPOINT_PAGES)
        .map_err(err)?;
    // After a checkpoint, a WAL that grew under a burst is truncated back to this size.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024).map_err(err)?;

    let wanted = i64::try_from(options.busy_timeout.as_millis()).unwrap_or(i64::from(i32::MAX));
    let got: i64 = conn.pragma_query_value(None, "busy_timeout", |r| r.get(0)).map_err(err)?;
    expect(path, "busy_timeout", &wanted.min(i64::from(i32::MAX)).to_string(), &got.to_string())?;
    Ok(())
}

fn expect(path: &Path, pragma: &'static str, wanted: &str, got: &str) -> Result<(), SqliteError> {
    if wanted == got {
        return Ok(());
    }
    Err(SqliteError::Pragma {
        path: path.to_owned(),
        pragma,
        wanted: wanted.into(),
        got: got.into(),
    })
}

/// What the pragmas of an open database are, as read back from SQLite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pragmas {
    /// `PRAGMA journal_mode` (always `wal`).
    pub journal_mode: String,
    /// `PRAGMA synchronous`.
    pub synchronous: Synchronous,
    /// `PRAGMA busy_timeout`.
    pub busy_timeout: Duration,
    /// `PRAGMA foreign_keys`.
    pub foreign_keys: bool,
    /// The schema version (`schema_version` table).
    pub schema_version: i64,
}

/// Reads the pragmas of the writer connection.
pub(crate) fn read_pragmas(conn: &Connection) -> rusqlite::Result<Pragmas> {
    let journal_mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
    let busy: i64 = conn.pragma_query_value(None, "busy_timeout", |r| r.get(0))?;
    let fk: i64 = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    Ok(Pragmas {
        journal_mode: journal_mode.to_lowercase(),
        synchronous: if sync >= 2 { Synchronous::Full } else { Synchronous::Normal },
        busy_timeout: Duration::from_millis(u64::try_from(busy).unwrap_or(0)),
        foreign_keys: fk == 1,
        schema_version: migrate::current_version(conn)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_paths() {
        assert_eq!(parse_target("sqlite://agentflow.db").unwrap(), PathBuf::from("agentflow.db"));
        assert_eq!(parse_target("sqlite:///var/lib/a.db").unwrap(), PathBuf::from("/var/lib/a.db"));
        assert_eq!(parse_target("sqlite:a.db").unwrap(), PathBuf::from("a.db"));
        assert_eq!(parse_target("/tmp/a.db").unwrap(), PathBuf::from("/tmp/a.db"));
        for bad in ["redis://x", "sqlite://", "sqlite://:memory:", "sqlite://a.db?mode=ro"] {
            let e = parse_target(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
