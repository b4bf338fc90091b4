-- Agents: template versions, runs, their checkpointed steps, recorded model calls and the
-- memory slices each run retrieved.

-- Every template version ever used (procedural memory): runs point at a hash here.
CREATE TABLE agent_templates (
    hash        TEXT PRIMARY KEY,          -- sha256 of the canonical template JSON
    name        TEXT NOT NULL,
    origin      TEXT NOT NULL,             -- 'shipped' or the file it came from
    body        TEXT NOT NULL,             -- canonical JSON of the parsed template
    first_ms    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE agent_runs (
    id              TEXT PRIMARY KEY,
    task            TEXT NOT NULL,
    role            TEXT NOT NULL,
    template_hash   TEXT NOT NULL,
    -- running | succeeded | failed | escalated | cancelled
    status          TEXT NOT NULL,
    step            INTEGER NOT NULL DEFAULT 0,
    current         TEXT NOT NULL DEFAULT '',
    tokens_in       INTEGER NOT NULL DEFAULT 0,
    tokens_out      INTEGER NOT NULL DEFAULT 0,
    cost_usd        REAL NOT NULL DEFAULT 0,
    provider        TEXT NOT NULL DEFAULT '',
    input           TEXT NOT NULL,         -- JSON
    output          TEXT,                  -- JSON of the accepted output
    raw_output      TEXT,                  -- the last raw model text (kept on escalation)
    error           TEXT,
    output_preview  TEXT NOT NULL DEFAULT '',
    replay_of       TEXT,
    started_ms      INTEGER NOT NULL,
    finished_ms     INTEGER
) WITHOUT ROWID;
CREATE INDEX agent_runs_by_task ON agent_runs(task, started_ms);
CREATE INDEX agent_runs_by_started ON agent_runs(started_ms);
CREATE INDEX agent_runs_by_role ON agent_runs(role, started_ms);

-- One row per completed step (model call or tool call): a resumed run reuses these.
CREATE TABLE agent_run_steps (
    run         TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    kind        TEXT NOT NULL,             -- model | tool | route | refusal | validation
    name        TEXT NOT NULL,
    input_hash  TEXT NOT NULL,
    input       TEXT NOT NULL,             -- JSON
    output      TEXT NOT NULL,             -- JSON
    rationale   TEXT NOT NULL DEFAULT '',
    tokens_in   INTEGER NOT NULL DEFAULT 0,
    tokens_out  INTEGER NOT NULL DEFAULT 0,
    cost_usd    REAL NOT NULL DEFAULT 0,
    latency_ms  INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (run, idx)
) WITHOUT ROWID;

-- Every model call, stored by request hash so a resume or a replay never pays again.
CREATE TABLE model_calls (
    id            TEXT PRIMARY KEY,
    run           TEXT NOT NULL,
    step          INTEGER NOT NULL,
    role          TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    provider      TEXT NOT NULL,
    model         TEXT NOT NULL,
    tier          TEXT NOT NULL,
    tokens_in     INTEGER NOT NULL,
    tokens_out    INTEGER NOT NULL,
    cost_usd      REAL NOT NULL,
    latency_ms    INTEGER NOT NULL,
    retries       INTEGER NOT NULL DEFAULT 0,
    response      TEXT NOT NULL,           -- JSON of the provider's normalised answer
    created_ms    INTEGER NOT NULL,
    day           TEXT NOT NULL            -- UTC date, for daily budgets
) WITHOUT ROWID;
CREATE INDEX model_calls_by_run ON model_calls(run, step);
CREATE INDEX model_calls_by_hash ON model_calls(request_hash);
CREATE INDEX model_calls_by_day ON model_calls(day, role);

-- The memory a run retrieved, with the parameters used (provenance).
CREATE TABLE agent_run_memory (
    run       TEXT NOT NULL,
    rank      INTEGER NOT NULL,
    item      TEXT NOT NULL,
    version   INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    score     REAL NOT NULL,
    preview   TEXT NOT NULL,
    params    TEXT NOT NULL,               -- JSON: query, k, kinds, tiers, retriever
    PRIMARY KEY (run, rank)
) WITHOUT ROWID;

CREATE TRIGGER model_calls_no_update BEFORE UPDATE ON model_calls
BEGIN SELECT RAISE(ABORT, 'recorded model calls are immutable'); END;
CREATE TRIGGER agent_run_steps_no_update BEFORE UPDATE ON agent_run_steps
BEGIN SELECT RAISE(ABORT, 'recorded steps are immutable'); END;
