//! Embedded, versioned schema migrations.
//!
//! Each migration runs once, in order, inside the same `BEGIN IMMEDIATE` transaction as the
//! check of the current version, so two processes opening a fresh file at once cannot both
//! migrate it. Applied versions are recorded in `schema_version`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::SqliteError;

/// The migrations, in order: `(version, sql)`. Never edit one that has shipped; add another.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[(1, V1_QUEUE), (2, V2_STATE), (3, V3_COUNTS)];

/// The newest schema version this build knows.
pub(crate) const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Jobs: live ones in `jobs` (small, hot), finished ones in `finished_jobs` (history), so the
/// size of the history never slows reserve or complete. The history's indexes only ever grow
/// at their end (ids are UUID v7, `finished_at` is the time of the insert): an index on the
/// task would take each insert to a random page, and a commit would then write as many pages
/// as it finished jobs. (The state checks are written with
/// `OR`, not `IN (…)`: SQLite builds a temporary table for an `IN` list on every write.)
const V1_QUEUE: &str = r#"
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY NOT NULL,
    kind             TEXT NOT NULL,
    task             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    unique_key       TEXT,
    priority         INTEGER NOT NULL,
    attempt          INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    timeout_ms       INTEGER NOT NULL,
    state            TEXT NOT NULL CHECK (state = 'scheduled' OR state = 'available' OR state = 'running'
                                   OR state = 'retryable'),
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    lease_token      TEXT,
    lease_worker     TEXT,
    lease_expires_at INTEGER
);
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX jobs_due ON jobs (priority, run_at, id) WHERE state <> 'running';
CREATE INDEX jobs_lease_expiry ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_task ON jobs (task);

CREATE TABLE finished_jobs (
    id           TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,
    task         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    unique_key   TEXT,
    priority     INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    timeout_ms   INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state = 'completed' OR state = 'failed' OR state = 'cancelled'),
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL
);
CREATE INDEX finished_jobs_finished_at ON finished_jobs (finished_at);
"#;

/// The state store: sessions, processed comments, runs and their logs, settings, cursors.
const V2_STATE: &str = r#"
CREATE TABLE sessions (
    task          TEXT PRIMARY KEY NOT NULL,
    session_id    TEXT NOT NULL,
    workspace     TEXT,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd      REAL NOT NULL,
    turns         INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE processed_comments (
    id TEXT PRIMARY KEY NOT NULL,
    at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE runs (
    id            TEXT PRIMARY KEY NOT NULL,
    task          TEXT NOT NULL,
    task_key      TEXT NOT NULL,
    title         TEXT NOT NULL,
    job           TEXT NOT NULL,
    kind          TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    worker        TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    status        TEXT NOT NULL,
    error         TEXT,
    summary       TEXT,
    session_id    TEXT,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd      REAL NOT NULL,
    turns         INTEGER NOT NULL
);
CREATE INDEX runs_started_at ON runs (started_at);
CREATE INDEX runs_task ON runs (task, started_at);

CREATE TABLE run_logs (
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    level  TEXT NOT NULL,
    kind   TEXT NOT NULL,
    line   TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- Per run: the next sequence number and how many of the oldest lines were dropped.
CREATE TABLE run_log_meta (
    run_id   TEXT PRIMARY KEY NOT NULL,
    next_seq INTEGER NOT NULL,
    dropped  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE settings (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    secret     INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE cursors (
    name       TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// Finished-job counts per state, kept by triggers, so `stats()` costs the same with a history
/// of a hundred jobs or a million.
const V3_COUNTS: &str = r#"
CREATE TABLE finished_counts (
    state TEXT PRIMARY KEY NOT NULL,
    n     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO finished_counts (state, n)
    SELECT s, (SELECT COUNT(*) FROM finished_jobs WHERE state = s)
    FROM (SELECT 'completed' AS s UNION ALL SELECT 'failed' UNION ALL SELECT 'cancelled');
CREATE TRIGGER finished_jobs_count_insert AFTER INSERT ON finished_jobs BEGIN
    UPDATE finished_counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TRIGGER finished_jobs_count_delete AFTER DELETE ON finished_jobs BEGIN
    UPDATE finished_counts SET n = n - 1 WHERE state = OLD.state;
END;
"#;

/// The schema version of an open database, 0 when it has none yet (a new file).
pub(crate) fn current_version(conn: &Connection) -> rusqlite::Result<i64> {
    let has_table: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if has_table.is_none() {
        return Ok(0);
    }
    conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))
}

/// Fails with [`SqliteError::NewerSchema`] when the file was written by a newer build.
pub(crate) fn check_not_newer(path: &Path, found: i64) -> Result<(), SqliteError> {
    if found > LATEST {
        return Err(SqliteError::NewerSchema { path: path.to_owned(), found, known: LATEST });
    }
    Ok(())
}

/// Brings the database up to version `upto` (normally [`LATEST`]). Returns the versions applied.
pub(crate) fn migrate(
    conn: &mut Connection,
    path: &Path,
    upto: i64,
) -> Result<Vec<i64>, SqliteError> {
    let fail = |version: i64| {
        move |source| SqliteError::Migration { path: path.to_owned(), version, source }
    };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail(0))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )
    .map_err(fail(0))?;
    let found = current_version(&tx).map_err(fail(0))?;
    check_not_newer(path, found)?;
    let now = crate::codec::ts(chrono::Utc::now());
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found && *v <= upto) {
        tx.execute_batch(sql).map_err(fail(*version))?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
            (version, now),
        )
        .map_err(fail(*version))?;
        applied.push(*version);
    }
    tx.commit().map_err(fail(upto))?;
    if !applied.is_empty() {
        tracing::info!(path = %path.display(), ?applied, "sqlite schema migrated");
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_increasing() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(MIGRATIONS[0].0, 1);
    }

    #[test]
    fn migrates_from_nothing_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut conn = Connection::open(&path).unwrap();
        assert_eq!(migrate(&mut conn, &path, LATEST).unwrap(), vec![1, 2, 3]);
        assert_eq!(migrate(&mut conn, &path, LATEST).unwrap(), Vec::<i64>::new());
        assert_eq!(current_version(&conn).unwrap(), LATEST);
    }
}
