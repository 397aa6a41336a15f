//! How jobs are laid out in a Redis hash, and how script replies turn back into jobs.

use std::time::Duration;

use agentflow_core::{Job, JobId, JobKind, JobSpec, JobState, Lease, TaskId, WorkerId};
use chrono::{DateTime, Utc};
use redis::Value;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

/// The parts of a job that never change, stored as one JSON field (`d`) that scripts pass
/// through without parsing.
#[derive(Serialize, Deserialize)]
struct Data {
    kind: JobKind,
    task: TaskId,
    #[serde(default)]
    payload: serde_json::Value,
    #[serde(default)]
    unique_key: Option<String>,
    priority: i16,
    max_attempts: u32,
    timeout_ms: u64,
}

/// The seven script arguments of one job to enqueue.
pub(crate) fn spec_args(id: JobId, spec: &JobSpec) -> Result<[String; 7], Error> {
    let data = Data {
        kind: spec.kind,
        task: spec.task.clone(),
        payload: spec.payload.clone(),
        unique_key: spec.unique_key.clone(),
        priority: spec.priority,
        max_attempts: spec.max_attempts.max(1),
        timeout_ms: u64::try_from(spec.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let d = serde_json::to_string(&data).map_err(|e| Error::reply("enqueue", e.to_string()))?;
    Ok([
        id.to_string(),
        spec.task.as_str().to_owned(),
        d,
        spec.priority.to_string(),
        data.max_attempts.to_string(),
        spec.unique_key.clone().unwrap_or_default(),
        spec.run_at.map(|t| t.timestamp_millis().max(0).to_string()).unwrap_or_default(),
    ])
}

pub(crate) fn ms_to_time(op: &'static str, ms: i64) -> Result<DateTime<Utc>, Error> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| Error::reply(op, format!("timestamp {ms} ms is out of range")))
}

pub(crate) fn int(op: &'static str, v: &Value) -> Result<i64, Error> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .map(|f| f as i64)
            .ok_or_else(|| Error::reply(op, format!("expected a number, got {v:?}"))),
        Value::SimpleString(s) => {
            s.parse().map_err(|_| Error::reply(op, format!("expected a number, got {s:?}")))
        }
        other => Err(Error::reply(op, format!("expected a number, got {other:?}"))),
    }
}

pub(crate) fn text<'a>(op: &'static str, v: &'a Value) -> Result<&'a str, Error> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b)
            .map_err(|_| Error::reply(op, "a reply string is not UTF-8".to_owned())),
        Value::SimpleString(s) => Ok(s),
        Value::Nil => Ok(""),
        other => Err(Error::reply(op, format!("expected a string, got {other:?}"))),
    }
}

pub(crate) fn array(op: &'static str, v: Value) -> Result<Vec<Value>, Error> {
    match v {
        Value::Array(items) => Ok(items),
        other => Err(Error::reply(op, format!("expected an array, got {other:?}"))),
    }
}

fn parse_id(op: &'static str, s: &str) -> Result<JobId, Error> {
    Uuid::parse_str(s).map(JobId).map_err(|e| Error::reply(op, format!("job id `{s}`: {e}")))
}

fn decode_data(op: &'static str, d: &str) -> Result<Data, Error> {
    serde_json::from_str(d).map_err(|e| Error::reply(op, format!("job data: {e}")))
}

/// Decodes the leases a reserve appended: `exp` then 7 fields per job.
pub(crate) fn leases(
    op: &'static str,
    items: &[Value],
    now: i64,
    worker: &WorkerId,
) -> Result<Vec<Lease>, Error> {
    let (exp, jobs) =
        items.split_first().ok_or_else(|| Error::reply(op, "missing the lease expiry"))?;
    let expires_at = ms_to_time(op, int(op, exp)?)?;
    let now = ms_to_time(op, now)?;
    if jobs.len() % 7 != 0 {
        return Err(Error::reply(op, format!("{} job fields is not a multiple of 7", jobs.len())));
    }
    jobs.chunks_exact(7)
        .map(|f| {
            let id = parse_id(op, text(op, &f[0])?)?;
            let data = decode_data(op, text(op, &f[1])?)?;
            let err = text(op, &f[4])?;
            let job = Job {
                id,
                kind: data.kind,
                task: data.task,
                payload: data.payload,
                unique_key: data.unique_key,
                priority: data.priority,
                attempt: u32::try_from(int(op, &f[2])?).unwrap_or(0),
                max_attempts: data.max_attempts,
                run_at: ms_to_time(op, int(op, &f[3])?)?,
                timeout: Duration::from_millis(data.timeout_ms),
                state: JobState::Running,
                last_error: (!err.is_empty()).then(|| err.to_owned()),
                created_at: ms_to_time(op, int(op, &f[5])?)?,
                updated_at: now,
            };
            let token = Uuid::parse_str(text(op, &f[6])?)
                .map_err(|e| Error::reply(op, format!("lease token: {e}")))?;
            Ok(Lease { job, token, worker: worker.clone(), expires_at })
        })
        .collect()
}

/// A job's fields as read from the columns of [`JOB_COLUMNS`](crate::keys::JOB_COLUMNS):
/// data, state, attempt, run_at, created, updated, error.
pub(crate) type Columns = [Option<String>; 7];

/// A job from its columns; `None` when it has no data (no such job, or pruned).
pub(crate) fn job_from_columns(
    op: &'static str,
    id: &str,
    c: &Columns,
) -> Result<Option<Job>, Error> {
    let [Some(d), state, attempt, run, created, updated, error] = c else {
        return Ok(None);
    };
    let num = |name: &str, v: &Option<String>| -> Result<i64, Error> {
        v.as_deref().and_then(|s| s.parse::<f64>().ok()).map(|f| f as i64).ok_or_else(|| {
            Error::reply(op, format!("job {id}: `{name}` is missing or not a number"))
        })
    };
    let data = decode_data(op, d)?;
    let state = state
        .as_deref()
        .and_then(JobState::parse)
        .ok_or_else(|| Error::reply(op, format!("job {id}: missing or unknown state")))?;
    Ok(Some(Job {
        id: parse_id(op, id)?,
        kind: data.kind,
        task: data.task,
        payload: data.payload,
        unique_key: data.unique_key,
        priority: data.priority,
        attempt: u32::try_from(num("attempt", attempt)?).unwrap_or(0),
        max_attempts: data.max_attempts,
        run_at: ms_to_time(op, num("run_at", run)?)?,
        timeout: Duration::from_millis(data.timeout_ms),
        state,
        last_error: error.clone().filter(|e| !e.is_empty()),
        created_at: ms_to_time(op, num("created_at", created)?)?,
        updated_at: ms_to_time(op, num("updated_at", updated)?)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_args_round_trip_through_a_hash() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let spec = JobSpec::new(JobKind::Feedback, "task-1")
            .unique_key("feedback:task-1")
            .priority(2)
            .payload(serde_json::json!({"comments": ["c1"]}))
            .run_at(at);
        let id = JobId::new();
        let args = spec_args(id, &spec).unwrap();
        assert_eq!(args[1], "task-1");
        assert_eq!(args[5], "feedback:task-1");
        assert_eq!(args[6], "1700000000123");
        let some = |v: &str| Some(v.to_owned());
        let columns: Columns = [
            some(&args[2]),
            some("scheduled"),
            some("0"),
            some("1700000000123"),
            some("1700000000000"),
            some("1700000000000"),
            None,
        ];
        let job = job_from_columns("get", &id.to_string(), &columns).unwrap().unwrap();
        assert_eq!(job.id, id);
        assert_eq!(job.kind, JobKind::Feedback);
        assert_eq!(job.payload, spec.payload);
        assert_eq!(job.unique_key.as_deref(), Some("feedback:task-1"));
        assert_eq!(job.run_at, at);
        assert_eq!(job.timeout, spec.timeout);
        assert_eq!(job.state, JobState::Scheduled);
        assert!(job_from_columns("get", "x", &Default::default()).unwrap().is_none());
        assert_eq!(job.last_error, None);
    }
}
