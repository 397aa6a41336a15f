//! Reads (`get`, `list`, `stats`) and `destroy`: plain commands, no state change.

use std::collections::HashMap;

use agentflow_core::{Job, JobFilter, JobId, JobState, Page, QueueStats};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::codec::job_from_hash;
use crate::error::Error;
use crate::keys::Keys;

/// Jobs fetched per round trip while listing.
const LIST_CHUNK: usize = 256;

pub(super) async fn get(
    conn: &ConnectionManager,
    keys: &Keys,
    id: JobId,
) -> agentflow_core::Result<Option<Job>> {
    let id = id.to_string();
    let h: HashMap<String, String> =
        conn.clone().hgetall(keys.job(&id)).await.map_err(|e| Error::command("get", e))?;
    Ok(job_from_hash("get", &id, &h)?)
}

async fn fetch(conn: &ConnectionManager, keys: &Keys, ids: &[String]) -> Result<Vec<Job>, Error> {
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.hgetall(keys.job(id));
    }
    let hashes: Vec<HashMap<String, String>> =
        pipe.query_async(&mut conn.clone()).await.map_err(|e| Error::command("list", e))?;
    let mut out = Vec::with_capacity(ids.len());
    for (id, h) in ids.iter().zip(&hashes) {
        // A job pruned between the index read and this fetch is simply gone.
        if let Some(job) = job_from_hash("list", id, h)? {
            out.push(job);
        }
    }
    Ok(out)
}

fn state_key(keys: &Keys, state: JobState) -> &str {
    match state {
        JobState::Available => keys.available(),
        JobState::Scheduled => keys.scheduled(),
        JobState::Retryable => keys.retryable(),
        JobState::Running => keys.running(),
        JobState::Completed => keys.completed(),
        JobState::Failed => keys.failed(),
        JobState::Cancelled => keys.cancelled(),
    }
}

/// Newest first, filtered, paged. Candidates come from the task's set when the filter names a
/// task, else from the state sets the filter allows (every job is in exactly one); they are
/// sorted by id (UUID v7: creation order) and fetched in chunks until the page is full.
pub(super) async fn list(
    conn: &ConnectionManager,
    keys: &Keys,
    filter: &JobFilter,
    page: Page,
) -> agentflow_core::Result<Vec<Job>> {
    let limit = page.limit as usize;
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut c = conn.clone();
    let mut ids: Vec<String> = if let Some(task) = &filter.task {
        c.smembers(keys.task(task.as_str())).await.map_err(|e| Error::command("list", e))?
    } else {
        let states: &[JobState] =
            if filter.states.is_empty() { &JobState::ALL } else { &filter.states };
        let mut pipe = redis::pipe();
        for state in states {
            pipe.zrange(state_key(keys, *state), 0, -1);
        }
        let sets: Vec<Vec<String>> =
            pipe.query_async(&mut c).await.map_err(|e| Error::command("list", e))?;
        let mut ids = Vec::with_capacity(sets.iter().map(Vec::len).sum());
        for (state, members) in states.iter().zip(sets) {
            // Members of the available set are `<13-digit run_at><id>`.
            let strip = if *state == JobState::Available { 13 } else { 0 };
            ids.extend(members.into_iter().map(|m| m.get(strip..).unwrap_or_default().to_owned()));
        }
        ids
    };
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    let mut skip = page.offset;
    let mut out = Vec::new();
    for chunk in ids.chunks(LIST_CHUNK) {
        for job in fetch(conn, keys, chunk).await? {
            if !filter.matches(&job) {
                continue;
            }
            if skip > 0 {
                skip -= 1;
            } else if out.len() < limit {
                out.push(job);
            }
        }
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

pub(super) async fn stats(
    conn: &ConnectionManager,
    keys: &Keys,
) -> agentflow_core::Result<QueueStats> {
    let mut pipe = redis::pipe();
    for state in JobState::ALL {
        pipe.zcard(state_key(keys, state));
    }
    let counts: Vec<u64> =
        pipe.query_async(&mut conn.clone()).await.map_err(|e| Error::command("stats", e))?;
    let mut stats = QueueStats::default();
    for (state, n) in JobState::ALL.into_iter().zip(counts) {
        *stats.get_mut(state) = n;
    }
    Ok(stats)
}

pub(super) async fn destroy(conn: &ConnectionManager, keys: &Keys) -> agentflow_core::Result<u64> {
    let mut c = conn.clone();
    let pattern = keys.pattern();
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    // Bounded: each round visits up to 1000 slots of the keyspace; 100k rounds covers 10^8 keys.
    for _ in 0..100_000 {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await
            .map_err(|e| Error::command("destroy", e))?;
        if !found.is_empty() {
            let n: u64 = c.unlink(&found).await.map_err(|e| Error::command("destroy", e))?;
            deleted += n;
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    Ok(deleted)
}
