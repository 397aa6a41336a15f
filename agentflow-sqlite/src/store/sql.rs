//! The state store's SQL.

use std::path::PathBuf;

use agentflow_core::{
    Error, JobKind, LogLevel, LogLine, LogPage, Page, Result, Run, RunFilter, RunFinish, RunId,
    RunPage, RunStatus, RunTotals, Session, Setting, TaskId, Usage,
};
use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use crate::codec::{Ctx, decode_err, from_ts, ts};

pub(crate) fn get_session(conn: &Connection, task: &TaskId) -> Result<Option<Session>> {
    conn.prepare_cached(
        "SELECT session_id, workspace, input_tokens, output_tokens, cost_usd, turns, updated_at
         FROM sessions WHERE task = ?1",
    )
    .and_then(|mut s| {
        s.query_row([task.as_str()], |r| {
            Ok(Session {
                task: task.clone(),
                session_id: r.get(0)?,
                workspace: r.get::<_, Option<String>>(1)?.map(PathBuf::from),
                usage: Usage {
                    input_tokens: r.get(2)?,
                    output_tokens: r.get(3)?,
                    cost_usd: r.get(4)?,
                    turns: r.get(5)?,
                },
                updated_at: from_ts(r.get(6)?),
            })
        })
        .optional()
    })
    .ctx("get_session")
}

pub(crate) fn put_session(conn: &Connection, s: &Session) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO sessions (task, session_id, workspace, input_tokens, output_tokens, cost_usd,
                               turns, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (task) DO UPDATE SET session_id = excluded.session_id,
             workspace = excluded.workspace, input_tokens = excluded.input_tokens,
             output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd,
             turns = excluded.turns, updated_at = excluded.updated_at",
    )
    .and_then(|mut st| {
        st.execute(params![
            s.task.as_str(),
            s.session_id,
            s.workspace.as_ref().map(|w| w.to_string_lossy().into_owned()),
            int(s.usage.input_tokens),
            int(s.usage.output_tokens),
            s.usage.cost_usd,
            s.usage.turns,
            ts(s.updated_at),
        ])
    })
    .ctx("put_session")?;
    Ok(())
}

pub(crate) fn mark_processed(conn: &Connection, comment: &str, now: DateTime<Utc>) -> Result<bool> {
    let n = conn
        .prepare_cached("INSERT OR IGNORE INTO processed_comments (id, at) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute((comment, ts(now))))
        .ctx("mark_processed")?;
    Ok(n == 1)
}

const RUN_COLS: &str = "id, task, task_key, title, job, kind, attempt, worker, started_at, \
                        finished_at, status, error, summary, session_id, input_tokens, \
                        output_tokens, cost_usd, turns";

fn run_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Run>> {
    let id: String = r.get(0)?;
    let job: String = r.get(4)?;
    let kind: String = r.get(5)?;
    let status: String = r.get(10)?;
    let bad = |what: &str, v: &str| decode_err("runs", format!("run {id}: bad {what} `{v}`"));
    let (Ok(uuid), Ok(job_id), Some(kind), Some(status)) = (
        id.parse::<uuid::Uuid>(),
        job.parse::<agentflow_core::JobId>(),
        JobKind::parse(&kind),
        RunStatus::parse(&status),
    ) else {
        return Ok(Err(bad("id, job, kind or status", &format!("{job}/{kind}/{status}"))));
    };
    Ok(Ok(Run {
        id: RunId(uuid),
        task: TaskId(r.get(1)?),
        task_key: r.get(2)?,
        title: r.get(3)?,
        job: job_id,
        kind,
        attempt: r.get(6)?,
        worker: r.get(7)?,
        started_at: from_ts(r.get(8)?),
        finished_at: r.get::<_, Option<i64>>(9)?.map(from_ts),
        status,
        error: r.get(11)?,
        summary: r.get(12)?,
        session_id: r.get(13)?,
        usage: Usage {
            input_tokens: r.get(14)?,
            output_tokens: r.get(15)?,
            cost_usd: r.get(16)?,
            turns: r.get(17)?,
        },
    }))
}

pub(crate) fn start_run(conn: &Connection, run: &Run) -> Result<()> {
    let res = conn
        .prepare_cached(&format!(
            "INSERT INTO runs ({RUN_COLS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
        ))
        .and_then(|mut s| {
            s.execute(params![
                run.id.to_string(),
                run.task.as_str(),
                run.task_key,
                run.title,
                run.job.to_string(),
                run.kind.as_str(),
                run.attempt,
                run.worker,
                ts(run.started_at),
                run.finished_at.map(ts),
                run.status.as_str(),
                run.error,
                run.summary,
                run.session_id,
                int(run.usage.input_tokens),
                int(run.usage.output_tokens),
                run.usage.cost_usd,
                run.usage.turns,
            ])
        });
    match res {
        Err(e) if crate::error::code_of(&e) == Some(rusqlite::ErrorCode::ConstraintViolation) => {
            Err(Error::Conflict(format!("run {} was already started", run.id)))
        }
        other => other.ctx("start_run").map(|_| ()),
    }
}

pub(crate) fn finish_run(conn: &Connection, id: RunId, f: &RunFinish) -> Result<()> {
    let n = conn
        .prepare_cached(
            "UPDATE runs SET status = ?1, finished_at = ?2, error = ?3, summary = ?4,
                 session_id = COALESCE(?5, session_id), input_tokens = ?6, output_tokens = ?7,
                 cost_usd = ?8, turns = ?9
             WHERE id = ?10",
        )
        .and_then(|mut s| {
            s.execute(params![
                f.status.as_str(),
                ts(f.finished_at),
                f.error,
                f.summary,
                f.session_id,
                int(f.usage.input_tokens),
                int(f.usage.output_tokens),
                f.usage.cost_usd,
                f.usage.turns,
                id.to_string(),
            ])
        })
        .ctx("finish_run")?;
    if n == 0 {
        return Err(Error::not_found("run", id));
    }
    Ok(())
}

pub(crate) fn get_run(conn: &Connection, id: RunId) -> Result<Option<Run>> {
    conn.prepare_cached(&format!("SELECT {RUN_COLS} FROM runs WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id.to_string()], run_from_row).optional())
        .ctx("get_run")?
        .transpose()
}

pub(crate) fn list_runs(conn: &Connection, filter: &RunFilter, page: Page) -> Result<RunPage> {
    let mut conds = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(task) = &filter.task {
        conds.push("task = ?".to_owned());
        args.push(Value::Text(task.0.clone()));
    }
    if !filter.statuses.is_empty() {
        conds.push(format!("status IN ({})", vec!["?"; filter.statuses.len()].join(", ")));
        args.extend(filter.statuses.iter().map(|s| Value::Text(s.as_str().into())));
    }
    if let Some(since) = filter.since {
        conds.push("started_at >= ?".into());
        args.push(Value::Integer(ts(since)));
    }
    if let Some(until) = filter.until {
        conds.push("started_at < ?".into());
        args.push(Value::Integer(ts(until)));
    }
    let cond =
        if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    let order = " ORDER BY started_at DESC, id DESC";
    let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
    let offset = usize::try_from(page.offset).unwrap_or(usize::MAX);
    if filter.text.is_some() {
        // Text search folds case like `RunFilter::matches` does (Unicode), which SQL's LIKE
        // does not: filter the candidates here.
        let mut total = 0u64;
        let mut runs = Vec::new();
        let sql = format!("SELECT {RUN_COLS} FROM runs{cond}{order}");
        let mut stmt = conn.prepare(&sql).ctx("list_runs")?;
        let mut rows = stmt.query(params_from_iter(args)).ctx("list_runs")?;
        while let Some(row) = rows.next().ctx("list_runs")? {
            let run = run_from_row(row).ctx("list_runs")??;
            if filter.matches(&run) {
                if total as usize >= offset && runs.len() < limit {
                    runs.push(run);
                }
                total += 1;
            }
        }
        return Ok(RunPage { runs, total });
    }
    let total: u64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM runs{cond}"))
        .and_then(|mut s| s.query_row(params_from_iter(args.iter()), |r| r.get(0)))
        .ctx("list_runs")?;
    // LIMIT and OFFSET are written in: as parameters they make SQLite re-prepare every run.
    let rows: Vec<_> = conn
        .prepare_cached(&format!(
            "SELECT {RUN_COLS} FROM runs{cond}{order} LIMIT {} OFFSET {}",
            page.limit,
            page.offset.min(i64::MAX as u64)
        ))
        .and_then(|mut s| s.query_map(params_from_iter(args), run_from_row)?.collect())
        .ctx("list_runs")?;
    Ok(RunPage { runs: rows.into_iter().collect::<Result<_>>()?, total })
}

pub(crate) fn totals_since(conn: &Connection, since: DateTime<Utc>) -> Result<RunTotals> {
    conn.prepare_cached(
        "SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
                COALESCE(SUM(cost_usd), 0.0), COALESCE(SUM(turns), 0),
                COALESCE(SUM(status = 'succeeded'), 0),
                COALESCE(SUM(status IN ('failed', 'timed_out')), 0)
         FROM runs WHERE started_at >= ?1",
    )
    .and_then(|mut s| {
        s.query_row([ts(since)], |r| {
            Ok(RunTotals {
                usage: Usage {
                    input_tokens: r.get(0)?,
                    output_tokens: r.get(1)?,
                    cost_usd: r.get(2)?,
                    turns: r.get(3)?,
                },
                succeeded: r.get(4)?,
                failed: r.get(5)?,
            })
        })
    })
    .ctx("totals_since")
}

fn level_str(l: LogLevel) -> &'static str {
    match l {
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

fn level_parse(s: &str) -> LogLevel {
    match s {
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        _ => LogLevel::Info,
    }
}

fn insert_log(conn: &Connection, run: &str, l: &LogLine) -> Result<()> {
    let detail = l.detail.as_ref().map(|d| d.to_string());
    conn.prepare_cached(
        "INSERT INTO run_logs (run_id, seq, at, level, kind, line, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![run, int(l.seq), ts(l.at), level_str(l.level), l.kind, l.line, detail])
    })
    .ctx("append_logs")?;
    Ok(())
}

/// Appends lines, keeping at most `max` per run: the oldest go, and one `marker` line (taking
/// the sequence number of the last line dropped) says how many.
pub(crate) fn append_logs(
    conn: &Connection,
    run: RunId,
    lines: Vec<LogLine>,
    max: u32,
    now: DateTime<Utc>,
) -> Result<Vec<LogLine>> {
    let max = u64::from(max.max(2));
    let run_id = run.to_string();
    let (next, dropped): (u64, u64) = conn
        .prepare_cached("SELECT next_seq, dropped FROM run_log_meta WHERE run_id = ?1")
        .and_then(|mut s| s.query_row([&run_id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .ctx("append_logs")?
        .unwrap_or((1, 0));
    let mut stored = Vec::with_capacity(lines.len());
    let mut seq = next;
    for mut line in lines {
        line.seq = seq;
        seq += 1;
        insert_log(conn, &run_id, &line)?;
        stored.push(line);
    }
    let written = seq - 1;
    let mut new_dropped = dropped;
    // Lines in the table: the ones not dropped, plus the marker once anything was dropped.
    if written - dropped + u64::from(dropped > 0) > max {
        new_dropped = written - (max - 1);
        conn.prepare_cached("DELETE FROM run_logs WHERE run_id = ?1 AND seq <= ?2")
            .and_then(|mut s| s.execute((&run_id, int(new_dropped))))
            .ctx("append_logs")?;
        let marker = LogLine {
            seq: new_dropped,
            at: now,
            level: LogLevel::Warn,
            kind: "marker".into(),
            line: format!(
                "… {new_dropped} earlier log lines dropped (this store keeps {max} lines per run)"
            ),
            detail: Some(serde_json::json!({ "dropped": new_dropped })),
        };
        insert_log(conn, &run_id, &marker)?;
    }
    conn.prepare_cached(
        "INSERT INTO run_log_meta (run_id, next_seq, dropped) VALUES (?1, ?2, ?3)
         ON CONFLICT (run_id) DO UPDATE SET next_seq = excluded.next_seq, dropped = excluded.dropped",
    )
    .and_then(|mut s| s.execute((&run_id, int(seq), int(new_dropped))))
    .ctx("append_logs")?;
    Ok(stored)
}

pub(crate) fn logs(conn: &Connection, run: RunId, page: LogPage) -> Result<Vec<LogLine>> {
    conn.prepare_cached(&format!(
        "SELECT seq, at, level, kind, line, detail FROM run_logs
         WHERE run_id = ?1 AND seq > ?2 ORDER BY seq LIMIT {}",
        page.limit
    ))
    .and_then(|mut s| {
        s.query_map((run.to_string(), int(page.after)), |r| {
            let level: String = r.get(2)?;
            let detail: Option<String> = r.get(5)?;
            Ok(LogLine {
                seq: r.get(0)?,
                at: from_ts(r.get(1)?),
                level: level_parse(&level),
                kind: r.get(3)?,
                line: r.get(4)?,
                detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
            })
        })?
        .collect()
    })
    .ctx("logs")
}

fn setting_from_row(r: &Row<'_>) -> rusqlite::Result<Setting> {
    Ok(Setting {
        key: r.get(0)?,
        value: r.get(1)?,
        secret: r.get(2)?,
        updated_at: from_ts(r.get(3)?),
    })
}

pub(crate) fn get_setting(conn: &Connection, key: &str) -> Result<Option<Setting>> {
    conn.prepare_cached("SELECT key, value, secret, updated_at FROM settings WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], setting_from_row).optional())
        .ctx("get_setting")
}

pub(crate) fn put_setting(
    conn: &Connection,
    key: &str,
    value: &str,
    secret: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO settings (key, value, secret, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, secret = excluded.secret,
             updated_at = excluded.updated_at",
    )
    .and_then(|mut s| s.execute(params![key, value, secret, ts(now)]))
    .ctx("put_setting")?;
    Ok(())
}

pub(crate) fn delete_setting(conn: &Connection, key: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM settings WHERE key = ?1")
        .and_then(|mut s| s.execute([key]))
        .ctx("delete_setting")?;
    Ok(n > 0)
}

pub(crate) fn list_settings(conn: &Connection) -> Result<Vec<Setting>> {
    let all: Vec<Setting> = conn
        .prepare_cached("SELECT key, value, secret, updated_at FROM settings ORDER BY key")
        .and_then(|mut s| s.query_map([], setting_from_row)?.collect())
        .ctx("list_settings")?;
    Ok(all.into_iter().map(Setting::masked).collect())
}

pub(crate) fn get_cursor(conn: &Connection, name: &str) -> Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM cursors WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .ctx("get_cursor")
}

pub(crate) fn put_cursor(
    conn: &Connection,
    name: &str,
    value: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO cursors (name, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .and_then(|mut s| s.execute(params![name, value, ts(now)]))
    .ctx("put_cursor")?;
    Ok(())
}

/// SQLite integers are signed 64-bit; counters beyond that saturate.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
