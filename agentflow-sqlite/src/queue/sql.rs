//! The queue's SQL. Writes run on the writer connection inside a group commit (so inside a
//! `BEGIN IMMEDIATE` transaction: atomic across processes); reads on a reader.

use std::time::Duration;

use agentflow_core::{
    Enqueued, Error, Job, JobFilter, JobId, JobKind, JobSpec, JobState, Lease, Page, QueueStats,
    Result, TaskId, WorkerId,
};
use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use uuid::Uuid;

use crate::codec::{Ctx, decode_err, from_ts, millis, plus, ts};

/// The columns [`job_from_row`] reads, in order (a macro, for `concat!`).
macro_rules! job_cols {
    () => {
        "id, kind, task, payload, unique_key, priority, attempt, max_attempts, run_at, \
         timeout_ms, state, last_error, created_at, updated_at"
    };
}
const JOB_COLS: &str = job_cols!();

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<std::result::Result<Job, Error>> {
    let id: String = r.get(0)?;
    let kind: String = r.get(1)?;
    let payload: String = r.get(3)?;
    let state: String = r.get(10)?;
    let timeout_ms: i64 = r.get(9)?;
    let parsed = (|| -> std::result::Result<Job, DecodeOrSql> {
        Ok(Job {
            id: id.parse().map_err(|_| decode_err("jobs", format!("bad id `{id}`")))?,
            kind: JobKind::parse(&kind)
                .ok_or_else(|| decode_err("jobs", format!("job {id}: bad kind `{kind}`")))?,
            task: TaskId(r.get(2)?),
            payload: serde_json::from_str(&payload)
                .map_err(|e| decode_err("jobs", format!("job {id}: bad payload: {e}")))?,
            unique_key: r.get(4)?,
            priority: r.get(5)?,
            attempt: r.get(6)?,
            max_attempts: r.get(7)?,
            run_at: from_ts(r.get(8)?),
            timeout: Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0)),
            state: JobState::parse(&state)
                .ok_or_else(|| decode_err("jobs", format!("job {id}: bad state `{state}`")))?,
            last_error: r.get(11)?,
            created_at: from_ts(r.get(12)?),
            updated_at: from_ts(r.get(13)?),
        })
    })();
    // Keep SQLite errors (from `r.get`) apart from decode errors.
    match parsed {
        Ok(job) => Ok(Ok(job)),
        Err(DecodeOrSql::Sql(e)) => Err(e),
        Err(DecodeOrSql::Decode(e)) => Ok(Err(e)),
    }
}

enum DecodeOrSql {
    Sql(rusqlite::Error),
    Decode(Error),
}

impl From<rusqlite::Error> for DecodeOrSql {
    fn from(e: rusqlite::Error) -> Self {
        DecodeOrSql::Sql(e)
    }
}

impl From<Error> for DecodeOrSql {
    fn from(e: Error) -> Self {
        DecodeOrSql::Decode(e)
    }
}

/// Adds a job, or returns the live one holding its unique key.
pub(crate) fn enqueue(conn: &Connection, spec: &JobSpec, now: DateTime<Utc>) -> Result<Enqueued> {
    if spec.max_attempts == 0 {
        return Err(Error::InvalidInput("max_attempts must be at least 1".into()));
    }
    if let Some(key) = &spec.unique_key {
        let existing: Option<String> = conn
            .prepare_cached("SELECT id FROM jobs WHERE unique_key = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .ctx("enqueue")?;
        if let Some(id) = existing {
            return Ok(Enqueued::Existing(id.parse()?));
        }
    }
    let id = JobId::new();
    let run_at = spec.run_at.unwrap_or(now);
    let state = if run_at > now { JobState::Scheduled } else { JobState::Available };
    let payload = serde_json::to_string(&spec.payload)
        .map_err(|e| Error::InvalidInput(format!("job payload is not serializable: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO jobs (id, kind, task, payload, unique_key, priority, attempt, max_attempts,
                           run_at, timeout_ms, state, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, ?10, ?11, ?11)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id.to_string(),
            spec.kind.as_str(),
            spec.task.as_str(),
            payload,
            spec.unique_key,
            spec.priority,
            spec.max_attempts,
            ts(run_at),
            millis(spec.timeout),
            state.as_str(),
            ts(now),
        ])
    })
    .ctx("enqueue")?;
    Ok(Enqueued::New(id))
}

/// Reserve hands out at most this many jobs per call.
const MAX_RESERVE: usize = 10_000;

/// Reserves up to `max` due jobs, in priority, `run_at`, id order.
pub(crate) fn reserve(
    conn: &Connection,
    worker: &WorkerId,
    lease_for: Duration,
    max: usize,
    now: DateTime<Utc>,
) -> Result<Vec<Lease>> {
    if max == 0 {
        return Ok(Vec::new());
    }
    // One read of the due rows, then one small UPDATE per job (a cached statement without
    // RETURNING, which would build a temporary table per call). The writer holds the write
    // lock, so nothing can take these rows in between.
    // LIMIT is written into the SQL, not bound: SQLite re-prepares a statement on every run
    // when its LIMIT is a parameter. A caller uses one or two values, so the cache holds them.
    let sql = format!(
        concat!(
            "SELECT ",
            job_cols!(),
            " FROM jobs WHERE state <> 'running' AND run_at <= ?1
             ORDER BY priority, run_at, id LIMIT {}"
        ),
        max.min(MAX_RESERVE)
    );
    let due: Vec<std::result::Result<Job, Error>> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_map([ts(now)], job_from_row)?.collect())
        .ctx("reserve")?;
    let expires_at = plus(now, lease_for);
    let mut stmt = conn
        .prepare_cached(
            "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_token = ?1,
                 lease_worker = ?2, lease_expires_at = ?3, updated_at = ?4
             WHERE id = ?5",
        )
        .ctx("reserve")?;
    let mut leases = Vec::with_capacity(due.len());
    for job in due {
        let mut job = job?;
        let token = Uuid::new_v4();
        stmt.execute(params![
            token.to_string(),
            worker.as_str(),
            ts(expires_at),
            ts(now),
            job.id.to_string()
        ])
        .ctx("reserve")?;
        job.state = JobState::Running;
        job.attempt += 1;
        job.updated_at = now;
        leases.push(Lease { job, token, worker: worker.clone(), expires_at });
    }
    Ok(leases)
}

/// Extends a lease.
pub(crate) fn heartbeat(
    conn: &Connection,
    lease: &Lease,
    lease_for: Duration,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    let expires_at = plus(now, lease_for);
    let n = conn
        .prepare_cached(
            "UPDATE jobs SET lease_expires_at = ?1, updated_at = ?2
             WHERE id = ?3 AND lease_token = ?4 AND state = 'running'",
        )
        .and_then(|mut s| {
            s.execute(params![
                ts(expires_at),
                ts(now),
                lease.job.id.to_string(),
                lease.token.to_string()
            ])
        })
        .ctx("heartbeat")?;
    if n == 0 {
        return Err(Error::LeaseLost { job: lease.job.id });
    }
    Ok(expires_at)
}

/// Moves a live job to `finished_jobs` in `state`. With `token`, only if that lease is current.
/// Returns whether a job was moved.
fn finish(
    conn: &Connection,
    id: JobId,
    token: Option<Uuid>,
    state: JobState,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let id = id.to_string();
    let token = token.map(|t| t.to_string());
    let n = conn
        .prepare_cached(
            "INSERT INTO finished_jobs (id, kind, task, payload, unique_key, priority, attempt,
                 max_attempts, run_at, timeout_ms, state, last_error, created_at, updated_at,
                 finished_at)
             SELECT id, kind, task, payload, unique_key, priority, attempt, max_attempts, run_at,
                 timeout_ms, ?1, COALESCE(?2, last_error), created_at, ?3, ?3
             FROM jobs
             WHERE id = ?4 AND (?5 IS NULL OR (lease_token = ?5 AND state = 'running'))",
        )
        .and_then(|mut s| s.execute(params![state.as_str(), error, ts(now), id, token]))
        .ctx("finish")?;
    if n == 0 {
        return Ok(false);
    }
    conn.prepare_cached("DELETE FROM jobs WHERE id = ?1")
        .and_then(|mut s| s.execute([&id]))
        .ctx("finish")?;
    Ok(true)
}

/// Marks a leased job completed.
pub(crate) fn complete(conn: &Connection, lease: &Lease, now: DateTime<Utc>) -> Result<()> {
    if finish(conn, lease.job.id, Some(lease.token), JobState::Completed, None, now)? {
        Ok(())
    } else {
        Err(Error::LeaseLost { job: lease.job.id })
    }
}

/// Records a failed attempt.
pub(crate) fn fail(
    conn: &Connection,
    lease: &Lease,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<JobState> {
    let id = lease.job.id.to_string();
    let attempts: Option<(u32, u32)> = conn
        .prepare_cached(
            "SELECT attempt, max_attempts FROM jobs
             WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
        )
        .and_then(|mut s| {
            s.query_row((&id, lease.token.to_string()), |r| Ok((r.get(0)?, r.get(1)?))).optional()
        })
        .ctx("fail")?;
    let Some((attempt, max_attempts)) = attempts else {
        return Err(Error::LeaseLost { job: lease.job.id });
    };
    match retry_at {
        Some(at) if attempt < max_attempts => {
            retry(conn, &id, at, error, now, "fail")?;
            Ok(JobState::Retryable)
        }
        _ => {
            finish(conn, lease.job.id, Some(lease.token), JobState::Failed, Some(error), now)?;
            Ok(JobState::Failed)
        }
    }
}

/// Makes a running job retryable at `at`, dropping its lease.
fn retry(
    conn: &Connection,
    id: &str,
    at: DateTime<Utc>,
    error: &str,
    now: DateTime<Utc>,
    op: &'static str,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE jobs SET state = 'retryable', run_at = ?1, last_error = ?2, updated_at = ?3,
             lease_token = NULL, lease_worker = NULL, lease_expires_at = NULL
         WHERE id = ?4",
    )
    .and_then(|mut s| s.execute(params![ts(at), error, ts(now), id]))
    .ctx(op)?;
    Ok(())
}

/// Gives a leased job back without consuming the attempt.
pub(crate) fn release(conn: &Connection, lease: &Lease, now: DateTime<Utc>) -> Result<()> {
    let n = conn
        .prepare_cached(
            "UPDATE jobs SET state = 'available', attempt = MAX(attempt - 1, 0), run_at = ?1,
                 updated_at = ?1,
                 lease_token = NULL, lease_worker = NULL, lease_expires_at = NULL
             WHERE id = ?2 AND lease_token = ?3 AND state = 'running'",
        )
        .and_then(|mut s| {
            s.execute(params![ts(now), lease.job.id.to_string(), lease.token.to_string()])
        })
        .ctx("release")?;
    if n == 0 {
        return Err(Error::LeaseLost { job: lease.job.id });
    }
    Ok(())
}

/// Cancels a live job: `Ok(false)` when it already finished, `NotFound` when it never existed.
pub(crate) fn cancel(conn: &Connection, id: JobId, now: DateTime<Utc>) -> Result<bool> {
    if finish(conn, id, None, JobState::Cancelled, None, now)? {
        return Ok(true);
    }
    let finished: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM finished_jobs WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.to_string()], |r| r.get(0)).optional())
        .ctx("cancel")?;
    match finished {
        Some(_) => Ok(false),
        None => Err(Error::not_found("job", id)),
    }
}

/// Turns expired leases into retryable (due now) or failed jobs. Returns how many.
pub(crate) fn recover_expired(conn: &Connection, now: DateTime<Utc>) -> Result<u64> {
    let expired: Vec<(String, u32, u32, Option<String>)> = conn
        .prepare_cached(
            "SELECT id, attempt, max_attempts, lease_worker FROM jobs
             WHERE state = 'running' AND lease_expires_at <= ?1",
        )
        .and_then(|mut s| {
            s.query_map([ts(now)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect()
        })
        .ctx("recover_expired")?;
    for (id, attempt, max_attempts, worker) in &expired {
        let error = format!(
            "lease expired: worker {} stopped heartbeating",
            worker.as_deref().unwrap_or("?")
        );
        if attempt < max_attempts {
            retry(conn, id, now, &error, now, "recover_expired")?;
        } else {
            finish(conn, id.parse()?, None, JobState::Failed, Some(&error), now)?;
        }
    }
    Ok(expired.len() as u64)
}

/// One job, live or finished.
pub(crate) fn get(conn: &Connection, id: JobId) -> Result<Option<Job>> {
    let sql = concat!(
        "SELECT ",
        job_cols!(),
        " FROM jobs WHERE id = ?1 UNION ALL SELECT ",
        job_cols!(),
        " FROM finished_jobs WHERE id = ?1"
    );
    let job = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row([id.to_string()], job_from_row).optional())
        .ctx("get")?;
    job.transpose()
}

/// Jobs matching `filter`, newest first.
pub(crate) fn list(conn: &Connection, filter: &JobFilter, page: Page) -> Result<Vec<Job>> {
    let mut conds = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if !filter.states.is_empty() {
        let marks = vec!["?"; filter.states.len()].join(", ");
        conds.push(format!("state IN ({marks})"));
        args.extend(filter.states.iter().map(|s| Value::Text(s.as_str().into())));
    }
    if let Some(kind) = filter.kind {
        conds.push("kind = ?".into());
        args.push(Value::Text(kind.as_str().into()));
    }
    if let Some(task) = &filter.task {
        conds.push("task = ?".into());
        args.push(Value::Text(task.0.clone()));
    }
    let cond =
        if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    let live = filter.states.is_empty() || filter.states.iter().any(|s| s.is_live());
    let done = filter.states.is_empty() || filter.states.iter().any(|s| !s.is_live());
    let mut parts = Vec::new();
    let mut all_args = Vec::new();
    if live {
        parts.push(format!("SELECT {JOB_COLS} FROM jobs{cond}"));
        all_args.extend(args.iter().cloned());
    }
    if done {
        parts.push(format!("SELECT {JOB_COLS} FROM finished_jobs{cond}"));
        all_args.extend(args.iter().cloned());
    }
    let sql = format!(
        "{} ORDER BY id DESC LIMIT {} OFFSET {}",
        parts.join(" UNION ALL "),
        page.limit,
        page.offset.min(i64::MAX as u64)
    );
    let rows: Vec<_> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_map(params_from_iter(all_args), job_from_row)?.collect())
        .ctx("list")?;
    rows.into_iter().collect()
}

/// Jobs per state: live ones counted (the live table is small), finished ones from the
/// trigger-kept `finished_counts`.
pub(crate) fn stats(conn: &Connection) -> Result<QueueStats> {
    let mut stats = QueueStats::default();
    for sql in
        ["SELECT state, COUNT(*) FROM jobs GROUP BY state", "SELECT state, n FROM finished_counts"]
    {
        let counts: Vec<(String, u64)> = conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .ctx("stats")?;
        for (state, n) in counts {
            let state = JobState::parse(&state)
                .ok_or_else(|| decode_err("jobs", format!("bad state `{state}`")))?;
            *stats.get_mut(state) += n;
        }
    }
    Ok(stats)
}
