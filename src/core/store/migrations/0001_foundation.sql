-- Foundation: versioned business objects and the hash-chained audit log.

CREATE TABLE objects (
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    version     INTEGER NOT NULL,          -- current version number
    archived    INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    title       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE INDEX objects_by_updated ON objects(updated_ms);

-- Every version ever written; rows are never updated or deleted.
CREATE TABLE object_versions (
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    parent      INTEGER,                   -- version this one was based on
    author      TEXT NOT NULL,             -- 'operator' | 'agent:<run id>' | 'system:<component>'
    body        TEXT NOT NULL,             -- JSON
    hash        TEXT NOT NULL,             -- sha256 of the canonical body
    note        TEXT NOT NULL DEFAULT '',  -- e.g. 'revert to 2', 'archive'
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (kind, id, version)
) WITHOUT ROWID;

CREATE TRIGGER object_versions_no_update BEFORE UPDATE ON object_versions
BEGIN SELECT RAISE(ABORT, 'object versions are immutable'); END;
CREATE TRIGGER object_versions_no_delete BEFORE DELETE ON object_versions
BEGIN SELECT RAISE(ABORT, 'object versions are immutable'); END;

CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,       -- 1, 2, 3… gapless
    ts_ms       INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    payload     TEXT NOT NULL,             -- canonical JSON, secrets redacted
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_by_subject ON audit(subject, seq);
CREATE INDEX audit_by_actor ON audit(actor, seq);
CREATE INDEX audit_by_action ON audit(action, seq);
CREATE INDEX audit_by_time ON audit(ts_ms);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Small key/value facts about the workspace (created time, demo flag…).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
