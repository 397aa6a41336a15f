//! How jobs are laid out in a Redis hash, and how script replies turn back into jobs.

use std::collections::HashMap;
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

/// A job from its hash (`HGETALL`); `None` when the hash is empty (no such job).
pub(crate) fn job_from_hash(
    op: &'static str,
    id: &str,
    h: &HashMap<String, String>,
) -> Result<Option<Job>, Error> {
    if h.is_empty() {
        return Ok(None);
    }
    let field = |name: &str| {
        h.get(name).ok_or_else(|| Error::reply(op, format!("job {id} has no field `{name}`")))
    };
    let num = |name: &str| -> Result<i64, Error> {
        field(name)?
            .parse::<f64>()
            .map(|f| f as i64)
            .map_err(|_| Error::reply(op, format!("job {id}: field `{name}` is not a number")))
    };
    let data = decode_data(op, field("d")?)?;
    let state = JobState::parse(field("s")?)
        .ok_or_else(|| Error::reply(op, format!("job {id}: unknown state")))?;
    let err = h.get("e").filter(|e| !e.is_empty()).cloned();
    Ok(Some(Job {
        id: parse_id(op, id)?,
        kind: data.kind,
        task: data.task,
        payload: data.payload,
        unique_key: data.unique_key,
        priority: data.priority,
        attempt: u32::try_from(num("a")?).unwrap_or(0),
        max_attempts: data.max_attempts,
        run_at: ms_to_time(op, num("r")?)?,
        timeout: Duration::from_millis(data.timeout_ms),
        state,
        last_error: err,
        created_at: ms_to_time(op, num("c")?)?,
        updated_at: ms_to_time(op, num("m")?)?,
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
        let h: HashMap<String, String> = [
            ("d", args[2].as_str()),
            ("s", "scheduled"),
            ("a", "0"),
            ("r", "1700000000123"),
            ("c", "1700000000000"),
            ("m", "1700000000000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let job = job_from_hash("get", &id.to_string(), &h).unwrap().unwrap();
        assert_eq!(job.id, id);
        assert_eq!(job.kind, JobKind::Feedback);
        assert_eq!(job.payload, spec.payload);
        assert_eq!(job.unique_key.as_deref(), Some("feedback:task-1"));
        assert_eq!(job.run_at, at);
        assert_eq!(job.timeout, spec.timeout);
        assert_eq!(job.state, JobState::Scheduled);
        assert!(job_from_hash("get", "x", &HashMap::new()).unwrap().is_none());
    }
}
