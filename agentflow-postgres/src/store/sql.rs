//! The store's statements, rendered once per schema.

use std::sync::Arc;

const RUN_COLS: &str = "id, task, task_key, title, job, kind, attempt, worker, started_at, \
     finished_at, status, error, summary, session_id, input_tokens, output_tokens, cost_usd, turns";

/// SQL text for one schema.
#[derive(Debug)]
pub(crate) struct StoreSql {
    pub(crate) get_session: Arc<str>,
    pub(crate) put_session: Arc<str>,
    pub(crate) mark_processed: Arc<str>,
    pub(crate) start_run: Arc<str>,
    pub(crate) finish_run: Arc<str>,
    pub(crate) get_run: Arc<str>,
    pub(crate) list_runs: Arc<str>,
    pub(crate) count_runs: Arc<str>,
    pub(crate) totals_since: Arc<str>,
    pub(crate) log_head: Arc<str>,
    pub(crate) insert_logs: Arc<str>,
    pub(crate) trim_logs: Arc<str>,
    pub(crate) mark_dropped: Arc<str>,
    pub(crate) logs: Arc<str>,
    pub(crate) get_setting: Arc<str>,
    pub(crate) put_setting: Arc<str>,
    pub(crate) delete_setting: Arc<str>,
    pub(crate) list_settings: Arc<str>,
    pub(crate) get_cursor: Arc<str>,
    pub(crate) put_cursor: Arc<str>,
}

impl StoreSql {
    pub(crate) fn new(s: &str) -> Self {
        let q = |x: String| -> Arc<str> { x.into() };
        // $1 task, $2 statuses (empty = all), $3 since, $4 until, $5 text.
        let run_filter = "($1::text IS NULL OR task = $1) \
             AND (cardinality($2::text[]) = 0 OR status = ANY($2::text[])) \
             AND ($3::timestamptz IS NULL OR started_at >= $3) \
             AND ($4::timestamptz IS NULL OR started_at < $4) \
             AND ($5::text IS NULL OR strpos(lower(task_key), lower($5)) > 0 \
                  OR strpos(lower(title), lower($5)) > 0 \
                  OR strpos(lower(coalesce(summary, '')), lower($5)) > 0 \
                  OR strpos(lower(coalesce(error, '')), lower($5)) > 0)";
        StoreSql {
            get_session: q(format!(
                "SELECT task, session_id, workspace, input_tokens, output_tokens, cost_usd, turns, \
                     updated_at FROM {s}.sessions WHERE task = $1"
            )),
            put_session: q(format!(
                "INSERT INTO {s}.sessions (task, session_id, workspace, input_tokens, \
                     output_tokens, cost_usd, turns, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (task) DO UPDATE SET session_id = EXCLUDED.session_id, \
                     workspace = EXCLUDED.workspace, input_tokens = EXCLUDED.input_tokens, \
                     output_tokens = EXCLUDED.output_tokens, cost_usd = EXCLUDED.cost_usd, \
                     turns = EXCLUDED.turns, updated_at = EXCLUDED.updated_at"
            )),
            mark_processed: q(format!(
                "INSERT INTO {s}.processed_comments (comment_id) VALUES ($1) \
                 ON CONFLICT DO NOTHING"
            )),
            start_run: q(format!(
                "INSERT INTO {s}.runs ({RUN_COLS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                     $17, $18)
                 ON CONFLICT (id) DO NOTHING"
            )),
            finish_run: q(format!(
                "UPDATE {s}.runs SET status = $2, finished_at = $3, error = $4, summary = $5, \
                     session_id = COALESCE($6, session_id), input_tokens = $7, \
                     output_tokens = $8, cost_usd = $9, turns = $10
                 WHERE id = $1"
            )),
            get_run: q(format!("SELECT {RUN_COLS} FROM {s}.runs WHERE id = $1")),
            list_runs: q(format!(
                "SELECT {RUN_COLS} FROM {s}.runs WHERE {run_filter}
                 ORDER BY started_at DESC, id DESC OFFSET $6 LIMIT $7"
            )),
            count_runs: q(format!("SELECT count(*) FROM {s}.runs WHERE {run_filter}")),
            totals_since: q(format!(
                "SELECT coalesce(sum(input_tokens), 0)::int8, coalesce(sum(output_tokens), 0)::int8, \
                     coalesce(sum(cost_usd), 0)::float8, coalesce(sum(turns), 0)::int8, \
                     count(*) FILTER (WHERE status = 'succeeded'), \
                     count(*) FILTER (WHERE status IN ('failed', 'timed_out'))
                 FROM {s}.runs WHERE started_at >= $1"
            )),
            // Takes the run's row lock: appends to one run are serialised, across processes.
            log_head: q(format!(
                "INSERT INTO {s}.run_log_heads (run, last_seq) VALUES ($1, $2)
                 ON CONFLICT (run) DO UPDATE \
                     SET last_seq = {s}.run_log_heads.last_seq + EXCLUDED.last_seq
                 RETURNING last_seq, dropped"
            )),
            insert_logs: q(format!(
                "INSERT INTO {s}.run_logs (run, seq, at, level, kind, line, detail)
                 SELECT $1, seq, at, level, kind, line, detail::jsonb
                 FROM unnest($2::int8[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], \
                     $7::text[]) AS t(seq, at, level, kind, line, detail)"
            )),
            trim_logs: q(format!("DELETE FROM {s}.run_logs WHERE run = $1 AND seq <= $2")),
            mark_dropped: q(format!(
                "UPDATE {s}.run_log_heads SET dropped = $2, dropped_at = now() WHERE run = $1"
            )),
            // The marker stands just before the first kept line, so paging by seq stays in order.
            logs: q(format!(
                "SELECT seq, at, level, kind, line, detail FROM (
                     SELECT h.dropped AS seq, coalesce(h.dropped_at, now()) AS at, \
                         'warn' AS level, 'marker' AS kind, \
                         h.dropped || ' earlier log lines dropped (limit per run reached)' AS line, \
                         jsonb_build_object('dropped', h.dropped) AS detail
                     FROM {s}.run_log_heads h WHERE h.run = $1 AND h.dropped > 0 AND h.dropped > $2
                     UNION ALL
                     (SELECT seq, at, level, kind, line, detail FROM {s}.run_logs
                      WHERE run = $1 AND seq > $2 ORDER BY seq LIMIT $3)
                 ) x ORDER BY seq LIMIT $3"
            )),
            get_setting: q(format!(
                "SELECT key, value, secret, updated_at FROM {s}.settings WHERE key = $1"
            )),
            put_setting: q(format!(
                "INSERT INTO {s}.settings (key, value, secret, updated_at) VALUES ($1, $2, $3, now())
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, \
                     secret = EXCLUDED.secret, updated_at = EXCLUDED.updated_at"
            )),
            delete_setting: q(format!("DELETE FROM {s}.settings WHERE key = $1")),
            list_settings: q(format!(
                "SELECT key, value, secret, updated_at FROM {s}.settings ORDER BY key"
            )),
            get_cursor: q(format!("SELECT value FROM {s}.cursors WHERE name = $1")),
            put_cursor: q(format!(
                "INSERT INTO {s}.cursors (name, value, updated_at) VALUES ($1, $2, now())
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
            )),
        }
    }
}
