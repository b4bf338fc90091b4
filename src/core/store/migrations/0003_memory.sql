-- Memory: knowledge-base items, their chunks (the unit that is embedded and indexed), an FTS5
-- keyword index, embedding versions, retrieval provenance and triage decisions.

CREATE TABLE memory_items (
    id              TEXT PRIMARY KEY,
    version         INTEGER NOT NULL DEFAULT 1,   -- bumped by every change (tier, tags…)
    kind            TEXT NOT NULL,                -- fact | preference | contract | note | artifact…
    tier            TEXT NOT NULL CHECK (tier IN ('task', 'long')),
    text            TEXT NOT NULL,
    source          TEXT NOT NULL DEFAULT '',     -- file path, 'operator', 'agent:<run>'…
    object_kind     TEXT,                         -- link to a canonical object version
    object_id       TEXT,
    object_version  INTEGER,
    tags            TEXT NOT NULL DEFAULT '[]',   -- JSON array, sorted, for display
    run_id          TEXT,                         -- the run a task-state artifact belongs to
    expires_ms      INTEGER,                      -- time-to-live end (task tier)
    duplicate_of    TEXT,                         -- set when stored despite a near-duplicate
    content_hash    TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);
CREATE INDEX memory_items_by_kind ON memory_items(kind);
CREATE INDEX memory_items_by_tier ON memory_items(tier);
CREATE INDEX memory_items_by_object ON memory_items(object_kind, object_id);
CREATE INDEX memory_items_by_expiry ON memory_items(expires_ms) WHERE expires_ms IS NOT NULL;
CREATE INDEX memory_items_by_hash ON memory_items(content_hash);

CREATE TABLE memory_tags (
    item  TEXT NOT NULL REFERENCES memory_items(id) ON DELETE CASCADE,
    tag   TEXT NOT NULL,
    PRIMARY KEY (item, tag)
) WITHOUT ROWID;
CREATE INDEX memory_tags_by_tag ON memory_tags(tag, item);

-- A chunk's rowid is its item id in the vector index (arroy item ids are u32).
CREATE TABLE memory_chunks (
    id    INTEGER PRIMARY KEY,
    item  TEXT NOT NULL REFERENCES memory_items(id) ON DELETE CASCADE,
    seq   INTEGER NOT NULL,
    text  TEXT NOT NULL,
    UNIQUE (item, seq)
);

CREATE VIRTUAL TABLE memory_fts USING fts5(
    text, content = 'memory_chunks', content_rowid = 'id', tokenize = 'porter unicode61'
);
CREATE TRIGGER memory_chunks_fts_insert AFTER INSERT ON memory_chunks BEGIN
    INSERT INTO memory_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER memory_chunks_fts_delete AFTER DELETE ON memory_chunks BEGIN
    INSERT INTO memory_fts(memory_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;

-- One row per embedding model identity; each has its own arroy index in the LMDB env.
CREATE TABLE embedding_versions (
    id            TEXT PRIMARY KEY,               -- name@sha256-prefix/dims
    name          TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    dims          INTEGER NOT NULL,
    arroy_index   INTEGER NOT NULL UNIQUE,
    state         TEXT NOT NULL CHECK (state IN ('building', 'complete', 'retired')),
    created_ms    INTEGER NOT NULL,
    completed_ms  INTEGER
);

-- Which chunk has a vector in which version's index (the SQLite side of the check).
CREATE TABLE memory_vectors (
    chunk      INTEGER NOT NULL REFERENCES memory_chunks(id) ON DELETE CASCADE,
    embedding  TEXT NOT NULL REFERENCES embedding_versions(id),
    PRIMARY KEY (chunk, embedding)
) WITHOUT ROWID;
CREATE INDEX memory_vectors_by_embedding ON memory_vectors(embedding, chunk);

-- Provenance: every retrieval a run made, with pinned parameters and its results.
CREATE TABLE retrievals (
    id         TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    ts_ms      INTEGER NOT NULL,
    query      TEXT NOT NULL,
    embedding  TEXT NOT NULL,
    params     TEXT NOT NULL                      -- canonical JSON: k, search_k, filters, fusion
);
CREATE INDEX retrievals_by_run ON retrievals(run_id, ts_ms);

CREATE TABLE retrieval_results (
    retrieval     TEXT NOT NULL REFERENCES retrievals(id),
    rank          INTEGER NOT NULL,               -- 1-based
    item          TEXT NOT NULL,                  -- no foreign key: a forgotten item stays named
    item_version  INTEGER NOT NULL,
    chunk         INTEGER NOT NULL,
    score         REAL NOT NULL,
    kind          TEXT NOT NULL,
    preview       TEXT NOT NULL,
    PRIMARY KEY (retrieval, rank)
) WITHOUT ROWID;

-- Triage: labelled examples (config and operator decisions) and every decision made.
CREATE TABLE triage_examples (
    id          INTEGER PRIMARY KEY,
    facet       TEXT NOT NULL,                    -- route | priority | spam…
    text        TEXT NOT NULL,
    label       TEXT NOT NULL,
    source      TEXT NOT NULL,                    -- 'operator' (config examples live in config)
    decision    TEXT,                             -- the decision it came from
    created_ms  INTEGER NOT NULL,
    UNIQUE (facet, text, label, source)
);

CREATE TABLE triage_decisions (
    id            TEXT PRIMARY KEY,
    ts_ms         INTEGER NOT NULL,
    facet         TEXT NOT NULL,
    text          TEXT NOT NULL,
    label         TEXT,                           -- the best label found
    confidence    REAL NOT NULL,
    routed        TEXT NOT NULL CHECK (routed IN ('auto', 'operator')),
    embedding     TEXT NOT NULL,
    neighbours    TEXT NOT NULL,                  -- JSON: nearest examples and similarities
    final_label   TEXT,                           -- the operator's answer, when asked
    decided_by    TEXT
);
CREATE INDEX triage_decisions_by_time ON triage_decisions(ts_ms);
