-- Orchestrator: the durable task queue, run checkpoints, scheduler state, blackboard and the
-- effects ledger.

CREATE TABLE tasks (
    id                TEXT PRIMARY KEY,
    role              TEXT NOT NULL,
    title             TEXT NOT NULL DEFAULT '',
    input             TEXT NOT NULL,               -- JSON, checked against the role's schema
    output_schema     TEXT,                        -- JSON Schema for the output, if any
    output            TEXT,                        -- JSON result once succeeded
    state             TEXT NOT NULL,               -- queued|running|waiting|succeeded|failed|escalated|cancelled
    wait_for          TEXT NOT NULL DEFAULT '',    -- approval|children|timer while waiting
    detail            TEXT NOT NULL DEFAULT '',    -- why it waits / escalated (suggested fix)
    priority          INTEGER NOT NULL DEFAULT 0,  -- higher runs first
    not_before_ms     INTEGER NOT NULL DEFAULT 0,
    timeout_ms        INTEGER NOT NULL,
    cost_estimate_usd REAL NOT NULL DEFAULT 0,
    attempts          INTEGER NOT NULL DEFAULT 0,  -- failed attempts so far
    max_attempts      INTEGER NOT NULL,
    escalate          INTEGER NOT NULL DEFAULT 1,  -- 0: exhausting attempts ends in 'failed'
    idempotency_key   TEXT UNIQUE,
    parent            TEXT REFERENCES tasks(id),
    workflow          TEXT,
    stage             TEXT,                        -- the workflow stage this task runs
    tags              TEXT NOT NULL DEFAULT '[]',
    background        INTEGER NOT NULL DEFAULT 0,  -- waits for the off-peak window
    run_now           INTEGER NOT NULL DEFAULT 0,  -- operator override of the window
    paused            INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_ms  INTEGER,
    lease_losses      INTEGER NOT NULL DEFAULT 0,
    run_id            TEXT,                        -- checkpoints of the current run
    errors            TEXT NOT NULL DEFAULT '[]',  -- error history, oldest first
    created_ms        INTEGER NOT NULL,
    updated_ms        INTEGER NOT NULL
);
CREATE INDEX tasks_due ON tasks(priority DESC, not_before_ms, created_ms) WHERE state = 'queued';
CREATE INDEX tasks_by_state ON tasks(state, updated_ms);
CREATE INDEX tasks_running ON tasks(lease_owner, lease_expires_ms) WHERE state = 'running';
CREATE INDEX tasks_by_parent ON tasks(parent) WHERE parent IS NOT NULL;

-- One row per completed step of a run; a resumed run returns these instead of redoing them.
CREATE TABLE run_steps (
    run_id      TEXT NOT NULL,
    step_index  INTEGER NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    input_hash  TEXT NOT NULL,
    output      TEXT NOT NULL,                     -- JSON
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (run_id, step_index)
) WITHOUT ROWID;

-- Small orchestrator flags: queue paused, blackboard delivery cursor.
CREATE TABLE orchestrator_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE schedules (
    name      TEXT PRIMARY KEY,
    cron      TEXT NOT NULL,
    timezone  TEXT NOT NULL,
    next_ms   INTEGER,
    last_ms   INTEGER
) WITHOUT ROWID;

CREATE TABLE findings (
    seq         INTEGER PRIMARY KEY,               -- delivery order
    id          TEXT NOT NULL UNIQUE,
    topic       TEXT NOT NULL,
    author      TEXT NOT NULL,
    text        TEXT NOT NULL,
    data        TEXT NOT NULL,                     -- JSON
    task        TEXT,
    created_ms  INTEGER NOT NULL
);
CREATE INDEX findings_by_topic ON findings(topic, seq);

-- The effects ledger: one row per external action, written before the action is sent.
CREATE TABLE effects (
    key         TEXT PRIMARY KEY,                  -- sha256(task, step, canonical args)
    task        TEXT NOT NULL,
    step        TEXT NOT NULL,
    connector   TEXT NOT NULL,
    action      TEXT NOT NULL,
    args        TEXT NOT NULL,                     -- canonical JSON
    state       TEXT NOT NULL,                     -- intended|done|failed|compensated
    result      TEXT,                              -- JSON
    error       TEXT,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX effects_by_task ON effects(task);
