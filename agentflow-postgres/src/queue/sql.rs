//! The queue's statements, rendered once per schema.

use std::sync::Arc;

/// Columns every job row is read with (both tables).
const JOB_COLS: &str = "id, kind, task, payload, unique_key, priority, attempt, max_attempts, \
     run_at, timeout_ms, state, last_error, created_at, updated_at";

/// Moves the rows of CTE `src` into `jobs_done` with `state`/`last_error` expressions.
fn move_to_done(s: &str, src: &str, state: &str, last_error: &str) -> String {
    format!(
        "INSERT INTO {s}.jobs_done (id, kind, task, payload, unique_key, priority, attempt, \
             max_attempts, run_at, timeout_ms, state, last_error, created_at, updated_at)
         SELECT id, kind, task, payload, unique_key, priority, attempt, max_attempts, run_at, \
             timeout_ms, {state}, {last_error}, created_at, now() FROM {src}"
    )
}

/// `list` over the live table, the finished table or both: the engine asks for a task's live
/// jobs on every run, which must not read the history.
fn list_sql(s: &str, live: bool, finished: bool) -> Arc<str> {
    let filter = "(cardinality($1::text[]) = 0 OR state = ANY($1::text[])) \
         AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR task = $3)";
    let parts: Vec<String> = [(live, "jobs"), (finished, "jobs_done")]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, t)| format!("SELECT {JOB_COLS} FROM {s}.{t} WHERE {filter}"))
        .collect();
    format!(
        "SELECT {JOB_COLS} FROM ({}) x ORDER BY id DESC OFFSET $4 LIMIT $5",
        parts.join(" UNION ALL ")
    )
    .into()
}

/// SQL text for one schema. `Arc<str>` so that handing it to sqlx costs a refcount.
#[derive(Debug)]
pub(crate) struct QueueSql {
    pub(crate) enqueue: Arc<str>,
    pub(crate) existing: Arc<str>,
    pub(crate) reserve: Arc<str>,
    pub(crate) heartbeat: Arc<str>,
    pub(crate) complete: Arc<str>,
    pub(crate) fail: Arc<str>,
    pub(crate) release: Arc<str>,
    pub(crate) cancel: Arc<str>,
    pub(crate) finished_exists: Arc<str>,
    pub(crate) recover: Arc<str>,
    pub(crate) get: Arc<str>,
    /// Listing over both tables, over `jobs` only (every state asked for is live), over
    /// `jobs_done` only (every state asked for is finished).
    pub(crate) list: Arc<str>,
    pub(crate) list_live: Arc<str>,
    pub(crate) list_finished: Arc<str>,
    pub(crate) stats: Arc<str>,
    pub(crate) prune: Arc<str>,
    pub(crate) notify: Arc<str>,
    /// The `LISTEN` channel.
    pub(crate) channel: String,
}

impl QueueSql {
    pub(crate) fn new(s: &str) -> Self {
        let ready = "state IN ('scheduled', 'available', 'retryable')";
        let ready_scan = format!(
            "SELECT id FROM {s}.jobs WHERE {ready} AND run_at <= now() \
             ORDER BY priority, run_at, id LIMIT $1 FOR UPDATE SKIP LOCKED"
        );
        let q = |x: String| -> Arc<str> { x.into() };
        QueueSql {
            // One row per spec; the first spec of a batch wins a unique key it shares with
            // another, the rest come back missing and are looked up as `existing`.
            enqueue: q(format!(
                "INSERT INTO {s}.jobs (id, kind, task, payload, unique_key, priority, attempt, \
                     max_attempts, run_at, timeout_ms, state, created_at, updated_at)
                 SELECT id, kind, task, payload::jsonb, unique_key, priority, 0, max_attempts, \
                     COALESCE(run_at, now()), timeout_ms, \
                     CASE WHEN run_at > now() THEN 'scheduled' ELSE 'available' END, now(), now()
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
                     $6::int2[], $7::int4[], $8::timestamptz[], $9::int8[]) WITH ORDINALITY \
                     AS t(id, kind, task, payload, unique_key, priority, max_attempts, run_at, \
                     timeout_ms, ord)
                 ORDER BY ord
                 ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
                 RETURNING id"
            )),
            existing: q(format!(
                "SELECT unique_key, id FROM {s}.jobs WHERE unique_key = ANY($1::text[])"
            )),
            reserve: q(format!(
                "WITH picked AS ({ready_scan})
                 UPDATE {s}.jobs j SET state = 'running', attempt = j.attempt + 1, \
                     lease_token = gen_random_uuid(), lease_worker = $2, \
                     lease_expires_at = now() + $3::interval, updated_at = now()
                 WHERE j.id = ANY(ARRAY(SELECT id FROM picked))
                 RETURNING j.id, j.kind, j.task, j.payload, j.unique_key, j.priority, j.attempt, \
                     j.max_attempts, j.run_at, j.timeout_ms, j.state, j.last_error, \
                     j.created_at, j.updated_at, j.lease_token, j.lease_worker, j.lease_expires_at"
            )),
            heartbeat: q(format!(
                "UPDATE {s}.jobs SET lease_expires_at = now() + $3::interval, updated_at = now()
                 WHERE id = $1 AND lease_token = $2 AND state = 'running'
                 RETURNING lease_expires_at"
            )),
            // Tokens are random per reservation, so matching `id = ANY` and `token = ANY`
            // finds exactly the rows whose current token was presented; the caller pairs the
            // returned (id, token) with its own. Both are index-friendly, a join on unnest()
            // is not always planned as one.
            complete: q(format!(
                "WITH done AS (
                     DELETE FROM {s}.jobs j
                     WHERE j.id = ANY($1::uuid[]) AND j.lease_token = ANY($2::uuid[]) \
                         AND j.state = 'running'
                     RETURNING j.*),
                 moved AS ({})
                 SELECT id, lease_token FROM done",
                move_to_done(s, "done", "'completed'", "last_error")
            )),
            fail: q(format!(
                "WITH cur AS (
                     SELECT id, attempt, max_attempts FROM {s}.jobs
                     WHERE id = $1 AND lease_token = $2 AND state = 'running' FOR UPDATE),
                 retry AS (
                     UPDATE {s}.jobs j SET state = 'retryable', run_at = $4, last_error = $3, \
                         lease_token = NULL, lease_worker = NULL, lease_expires_at = NULL, \
                         updated_at = now()
                     FROM cur WHERE j.id = $1 AND j.id = cur.id AND $4::timestamptz IS NOT NULL \
                         AND cur.attempt < cur.max_attempts
                     RETURNING j.id),
                 dead AS (
                     DELETE FROM {s}.jobs j USING cur WHERE j.id = $1 AND j.id = cur.id \
                         AND ($4::timestamptz IS NULL OR cur.attempt >= cur.max_attempts)
                     RETURNING j.*),
                 moved AS ({} RETURNING id)
                 SELECT 'retryable' AS state FROM retry UNION ALL SELECT 'failed' FROM moved",
                move_to_done(s, "dead", "'failed'", "$3")
            )),
            release: q(format!(
                "UPDATE {s}.jobs SET state = 'available', attempt = GREATEST(attempt - 1, 0), \
                     lease_token = NULL, lease_worker = NULL, lease_expires_at = NULL, \
                     updated_at = now()
                 WHERE id = $1 AND lease_token = $2 AND state = 'running'"
            )),
            cancel: q(format!(
                "WITH dead AS (DELETE FROM {s}.jobs WHERE id = $1 RETURNING *)
                 {} RETURNING id",
                move_to_done(s, "dead", "'cancelled'", "last_error")
            )),
            finished_exists: q(format!(
                "SELECT EXISTS (SELECT 1 FROM {s}.jobs_done WHERE id = $1)"
            )),
            recover: q(format!(
                "WITH expired AS (
                     SELECT id, attempt, max_attempts, lease_worker FROM {s}.jobs
                     WHERE state = 'running' AND lease_expires_at < now()
                     FOR UPDATE SKIP LOCKED),
                 retry AS (
                     UPDATE {s}.jobs j SET state = 'retryable', run_at = now(), \
                         last_error = 'lease expired during attempt ' || e.attempt || \
                             ' (worker ' || coalesce(e.lease_worker, '?') || ')', \
                         lease_token = NULL, lease_worker = NULL, lease_expires_at = NULL, \
                         updated_at = now()
                     FROM expired e
                     WHERE j.id = ANY(ARRAY(SELECT id FROM expired)) AND j.id = e.id \
                         AND e.attempt < e.max_attempts
                     RETURNING j.id),
                 dead AS (
                     DELETE FROM {s}.jobs j USING expired e
                     WHERE j.id = ANY(ARRAY(SELECT id FROM expired)) AND j.id = e.id \
                         AND e.attempt >= e.max_attempts
                     RETURNING j.*),
                 moved AS ({} RETURNING id)
                 SELECT (SELECT count(*) FROM retry) + (SELECT count(*) FROM moved)",
                move_to_done(
                    s,
                    "dead",
                    "'failed'",
                    "'lease expired during attempt ' || attempt || ' (worker ' || coalesce(lease_worker, '?') || ')'"
                )
            )),
            get: q(format!(
                "SELECT {JOB_COLS} FROM {s}.jobs WHERE id = $1
                 UNION ALL SELECT {JOB_COLS} FROM {s}.jobs_done WHERE id = $1
                 LIMIT 1"
            )),
            list: list_sql(s, true, true),
            list_live: list_sql(s, true, false),
            list_finished: list_sql(s, false, true),
            stats: q(format!(
                "SELECT state, count(*) FROM {s}.jobs GROUP BY state
                 UNION ALL SELECT state, count(*) FROM {s}.jobs_done GROUP BY state"
            )),
            prune: q(format!(
                "DELETE FROM {s}.jobs_done WHERE id IN (
                     SELECT id FROM {s}.jobs_done
                     WHERE id < $1 AND updated_at < now() - $2::interval LIMIT $3)"
            )),
            notify: q("SELECT pg_notify($1, '')".to_owned()),
            channel: format!("{s}_jobs"),
        }
    }
}
