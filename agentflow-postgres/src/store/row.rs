//! Rows to sessions, runs, log lines and settings.

use std::path::PathBuf;

use agentflow_core::{
    JobId, JobKind, LogLevel, LogLine, Result, Run, RunId, RunStatus, Session, Setting, TaskId,
    Usage,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::error::PgError;

fn corrupt(table: &'static str, message: String) -> agentflow_core::Error {
    PgError::CorruptRow { table, message }.into()
}

fn col<'r, T>(row: &'r PgRow, table: &'static str, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(name).map_err(|e| PgError::sqlx(format!("decoding {table}.{name}"), e).into())
}

/// `u64` → `bigint`, saturating.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn usage(row: &PgRow, table: &'static str) -> Result<Usage> {
    Ok(Usage {
        input_tokens: to_u64(col(row, table, "input_tokens")?),
        output_tokens: to_u64(col(row, table, "output_tokens")?),
        cost_usd: col(row, table, "cost_usd")?,
        turns: u32::try_from(col::<i64>(row, table, "turns")?).unwrap_or(u32::MAX),
    })
}

pub(crate) fn session(row: &PgRow) -> Result<Session> {
    let t = "sessions";
    Ok(Session {
        task: TaskId(col(row, t, "task")?),
        session_id: col(row, t, "session_id")?,
        workspace: col::<Option<String>>(row, t, "workspace")?.map(PathBuf::from),
        usage: usage(row, t)?,
        updated_at: col(row, t, "updated_at")?,
    })
}

pub(crate) fn run(row: &PgRow) -> Result<Run> {
    let t = "runs";
    let kind: String = col(row, t, "kind")?;
    let status: String = col(row, t, "status")?;
    Ok(Run {
        id: RunId(col(row, t, "id")?),
        task: TaskId(col(row, t, "task")?),
        task_key: col(row, t, "task_key")?,
        title: col(row, t, "title")?,
        job: JobId(col(row, t, "job")?),
        kind: JobKind::parse(&kind).ok_or_else(|| corrupt(t, format!("unknown kind `{kind}`")))?,
        attempt: u32::try_from(col::<i64>(row, t, "attempt")?).unwrap_or(u32::MAX),
        worker: col(row, t, "worker")?,
        started_at: col(row, t, "started_at")?,
        finished_at: col(row, t, "finished_at")?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| corrupt(t, format!("unknown status `{status}`")))?,
        error: col(row, t, "error")?,
        summary: col(row, t, "summary")?,
        session_id: col(row, t, "session_id")?,
        usage: usage(row, t)?,
    })
}

pub(crate) fn level_str(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

fn parse_level(s: &str) -> Option<LogLevel> {
    Some(match s {
        "info" => LogLevel::Info,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        _ => return None,
    })
}

pub(crate) fn log_line(row: &PgRow) -> Result<LogLine> {
    let t = "run_logs";
    let level: String = col(row, t, "level")?;
    Ok(LogLine {
        seq: to_u64(col(row, t, "seq")?),
        at: col(row, t, "at")?,
        level: parse_level(&level).ok_or_else(|| corrupt(t, format!("unknown level `{level}`")))?,
        kind: col(row, t, "kind")?,
        line: col(row, t, "line")?,
        detail: col(row, t, "detail")?,
    })
}

pub(crate) fn setting(row: &PgRow) -> Result<Setting> {
    let t = "settings";
    Ok(Setting {
        key: col(row, t, "key")?,
        value: col(row, t, "value")?,
        secret: col(row, t, "secret")?,
        updated_at: col(row, t, "updated_at")?,
    })
}
