-- Policy and approvals: the operator's desk for gated side effects.

-- One row per gated action. A waiting task holds no worker: it is just this row.
CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,
    request_key     TEXT NOT NULL,             -- hash of (task, request, args): a retry finds its row
    task            TEXT,                      -- plain text: the queue may live elsewhere
    workflow        TEXT,
    agent           TEXT NOT NULL,
    action          TEXT NOT NULL,
    target          TEXT NOT NULL,
    summary         TEXT NOT NULL DEFAULT '',
    rationale       TEXT NOT NULL DEFAULT '',
    cost_usd        REAL NOT NULL DEFAULT 0,
    amount          REAL,
    risk            TEXT NOT NULL,
    reversibility   TEXT NOT NULL,
    undo_available  INTEGER NOT NULL,
    rule            TEXT NOT NULL,             -- id of the policy rule that required approval
    rule_reason     TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL CHECK (status IN
                        ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
    created_ms      INTEGER NOT NULL,
    expires_ms      INTEGER,
    on_expiry       TEXT NOT NULL DEFAULT 'reject' CHECK (on_expiry IN ('reject', 'approve')),
    hold_ms         INTEGER NOT NULL DEFAULT 0, -- delay between approval and release
    send_after_ms   INTEGER,                   -- set on approval when hold_ms > 0
    object_kind     TEXT,
    object_id       TEXT,
    object_version  INTEGER,
    proposed_body   TEXT,                      -- JSON
    edited_body     TEXT,                      -- JSON: the operator's edit, if any
    edited_version  INTEGER,                   -- the object version the edit became
    diff            TEXT NOT NULL DEFAULT '',
    memory          TEXT NOT NULL DEFAULT '[]', -- JSON array of MemorySliceRow
    request         TEXT NOT NULL,             -- JSON ActionRequest (what policy evaluated)
    args            TEXT NOT NULL DEFAULT 'null', -- JSON connector arguments
    decided_ms      INTEGER,
    decided_by      TEXT,
    reason          TEXT                       -- rejection / cancellation reason, given back on retry
);
CREATE INDEX approvals_by_status ON approvals(status, created_ms);
CREATE INDEX approvals_by_request ON approvals(request_key, created_ms);
CREATE INDEX approvals_by_task ON approvals(task);

-- Narrow "always allow" rules created from an operator's decision; revocable, never deleted.
CREATE TABLE policy_allow_rules (
    id          TEXT PRIMARY KEY,
    agent       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    approval    TEXT,                          -- the decision it came from
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);
CREATE INDEX policy_allow_rules_lookup ON policy_allow_rules(agent, action, target);

-- Money spent by allowed actions, for per-agent-per-day and per-workflow budgets.
CREATE TABLE policy_spend (
    id          TEXT PRIMARY KEY,
    agent       TEXT NOT NULL,
    workflow    TEXT,
    action      TEXT NOT NULL,
    day         TEXT NOT NULL,                 -- UTC date, YYYY-MM-DD
    amount      REAL NOT NULL,
    ts_ms       INTEGER NOT NULL
);
CREATE INDEX policy_spend_by_agent ON policy_spend(agent, day);
CREATE INDEX policy_spend_by_workflow ON policy_spend(workflow);
