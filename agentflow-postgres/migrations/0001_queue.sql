-- The queue. `{schema}` is replaced by the configured schema name.
--
-- `jobs` is the hot table: it holds live jobs only (scheduled, available, running, retryable).
-- Finishing a job (completed, failed for good, cancelled) moves its row to `jobs_done` in the same
-- statement, so reserve never walks history, however long it grows.
CREATE TABLE {schema}.jobs (
    id               uuid        PRIMARY KEY,
    kind             text        NOT NULL,
    task             text        NOT NULL,
    payload          jsonb       NOT NULL,
    unique_key       text,
    priority         smallint    NOT NULL,
    attempt          integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL,
    run_at           timestamptz NOT NULL,
    timeout_ms       bigint      NOT NULL,
    state            text        NOT NULL
        CHECK (state IN ('scheduled', 'available', 'running', 'retryable')),
    last_error       text,
    lease_token      uuid,
    lease_worker     text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- Reserve walks this index in order and stops after N rows: only waiting jobs are in it.
CREATE INDEX jobs_ready_idx ON {schema}.jobs (priority, run_at, id)
    WHERE state IN ('scheduled', 'available', 'retryable');

-- No index on lease_expires_at: every index on this table costs an entry on each reserve
-- (the state change makes the update non-HOT). Recovery scans the live jobs instead, a few
-- times a minute; `jobs` holds only live jobs, so the scan is as small as the backlog.

-- Dedup: at most one live job per unique key (every row of `jobs` is live).
CREATE UNIQUE INDEX jobs_unique_key_idx ON {schema}.jobs (unique_key)
    WHERE unique_key IS NOT NULL;

-- A queue table churns: vacuum it early so dead index entries do not pile up.
ALTER TABLE {schema}.jobs SET (
    autovacuum_vacuum_scale_factor = 0.0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_analyze_scale_factor = 0.05
);

CREATE TABLE {schema}.jobs_done (
    id           uuid        PRIMARY KEY,
    kind         text        NOT NULL,
    task         text        NOT NULL,
    payload      jsonb       NOT NULL,
    unique_key   text,
    priority     smallint    NOT NULL,
    attempt      integer     NOT NULL,
    max_attempts integer     NOT NULL,
    run_at       timestamptz NOT NULL,
    timeout_ms   bigint      NOT NULL,
    state        text        NOT NULL CHECK (state IN ('completed', 'failed', 'cancelled')),
    last_error   text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE INDEX jobs_done_task_idx ON {schema}.jobs_done (task);
