-- The state store. `{schema}` is replaced by the configured schema name.
CREATE TABLE {schema}.sessions (
    task          text             PRIMARY KEY,
    session_id    text             NOT NULL,
    workspace     text,
    input_tokens  bigint           NOT NULL,
    output_tokens bigint           NOT NULL,
    cost_usd      double precision NOT NULL,
    turns         bigint           NOT NULL,
    updated_at    timestamptz      NOT NULL
);

CREATE TABLE {schema}.processed_comments (
    comment_id   text        PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {schema}.runs (
    id            uuid             PRIMARY KEY,
    task          text             NOT NULL,
    task_key      text             NOT NULL,
    title         text             NOT NULL,
    job           uuid             NOT NULL,
    kind          text             NOT NULL,
    attempt       bigint           NOT NULL,
    worker        text             NOT NULL,
    started_at    timestamptz      NOT NULL,
    finished_at   timestamptz,
    status        text             NOT NULL,
    error         text,
    summary       text,
    session_id    text,
    input_tokens  bigint           NOT NULL DEFAULT 0,
    output_tokens bigint           NOT NULL DEFAULT 0,
    cost_usd      double precision NOT NULL DEFAULT 0,
    turns         bigint           NOT NULL DEFAULT 0
);

CREATE INDEX runs_started_idx ON {schema}.runs (started_at DESC, id DESC);
CREATE INDEX runs_task_idx ON {schema}.runs (task, started_at DESC);

-- Log lines of a run; `run_log_heads` hands out sequence numbers (its row lock orders appends).
CREATE TABLE {schema}.run_logs (
    run    uuid        NOT NULL,
    seq    bigint      NOT NULL,
    at     timestamptz NOT NULL,
    level  text        NOT NULL,
    kind   text        NOT NULL,
    line   text        NOT NULL,
    detail jsonb,
    PRIMARY KEY (run, seq)
);

CREATE TABLE {schema}.run_log_heads (
    run      uuid   PRIMARY KEY,
    last_seq   bigint      NOT NULL,
    dropped    bigint      NOT NULL DEFAULT 0,
    dropped_at timestamptz
);

CREATE TABLE {schema}.settings (
    key        text        PRIMARY KEY,
    value      text        NOT NULL,
    secret     boolean     NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE {schema}.cursors (
    name       text        PRIMARY KEY,
    value      text        NOT NULL,
    updated_at timestamptz NOT NULL
);
