//! Embedding versions: each model identity has its own arroy index. A new model is
//! registered as `building`; the re-embedding migration fills its index while queries keep
//! using the old, `complete` one; when it is done the new version becomes `complete` and the
//! old one `retired` (kept, so a query pinned to it still answers).

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Embed, EmbeddingVersion, Memory};
use crate::core::audit::{self, Actor};
use crate::core::clock::Millis;
use crate::core::error::{Error, Result};
use crate::core::store::Store;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRow {
    pub id: String,
    pub name: String,
    pub sha256: String,
    pub dims: usize,
    pub arroy_index: u16,
    /// building | complete | retired
    pub state: String,
    pub created_ms: Millis,
    pub completed_ms: Option<Millis>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        id: r.get(0)?,
        name: r.get(1)?,
        sha256: r.get(2)?,
        dims: usize::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
        arroy_index: u16::try_from(r.get::<_, i64>(4)?).unwrap_or(u16::MAX),
        state: r.get(5)?,
        created_ms: r.get(6)?,
        completed_ms: r.get(7)?,
    })
}

const COLUMNS: &str = "id, name, sha256, dims, arroy_index, state, created_ms, completed_ms";

/// Adds `items` to `row`'s vector index and records their chunks as embedded by it, inside
/// `tx` (the caller audits what the batch was: a migration or a repair).
pub(super) fn add_vectors(
    tx: &rusqlite::Transaction<'_>,
    memory: &Memory,
    row: &VersionRow,
    items: &[(u32, Vec<f32>)],
) -> Result<()> {
    memory.vectors.add(row.arroy_index, row.dims, items)?;
    for (id, _) in items {
        tx.execute(
            "INSERT OR IGNORE INTO memory_vectors (chunk, embedding) VALUES (?1, ?2)",
            params![id, row.id],
        )?;
    }
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<VersionRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM embedding_versions WHERE id = ?1"),
            [id],
            row,
        )
        .optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<VersionRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM embedding_versions ORDER BY created_ms, id"
    ))?;
    let rows = stmt.query_map([], row)?.collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Registers `version` if new. The first version (or one on an empty knowledge base) is
/// complete at once; a later one starts `building` and needs [`migrate`].
pub fn register(store: &mut Store, version: &EmbeddingVersion, now: Millis) -> Result<VersionRow> {
    if let Some(existing) = get(store.conn(), &version.id())? {
        return Ok(existing);
    }
    store.write(|tx| {
        // Checked again under the write lock: another process (a console, `keel run`, a CLI
        // writer) may have registered it since the read above.
        if get(tx, &version.id())?.is_some() {
            return Ok(());
        }
        let next: i64 = tx.query_row(
            "SELECT coalesce(max(arroy_index) + 1, 0) FROM embedding_versions",
            [],
            |r| r.get(0),
        )?;
        let index = u16::try_from(next)
            .map_err(|_| Error::Other("no free vector index number left".into()))?;
        let chunks: i64 = tx.query_row("SELECT count(*) FROM memory_chunks", [], |r| r.get(0))?;
        let state = if chunks == 0 { "complete" } else { "building" };
        tx.execute(
            "UPDATE embedding_versions SET state = 'retired' WHERE state = 'complete' AND ?1 = 'complete'",
            [state],
        )?;
        tx.execute(
            "INSERT INTO embedding_versions (id, name, sha256, dims, arroy_index, state, created_ms, completed_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CASE WHEN ?6 = 'complete' THEN ?7 END)",
            params![
                version.id(),
                version.name,
                version.sha256,
                i64::try_from(version.dims).unwrap_or(i64::MAX),
                index,
                state,
                now
            ],
        )?;
        audit::append(
            tx,
            now,
            &Actor::system("memory"),
            "memory.embedding_register",
            &format!("embedding/{}", version.id()),
            &json!({"name": version.name, "sha256": version.sha256, "dims": version.dims, "arroy_index": index, "state": state}),
        )?;
        Ok(())
    })?;
    get(store.conn(), &version.id())?
        .ok_or_else(|| Error::Other("embedding version vanished after registering".into()))
}

/// The version a query uses when none is pinned: the newest complete one with a loaded
/// embedder.
pub fn query_version(conn: &Connection, memory: &Memory) -> Result<VersionRow> {
    let rows = list(conn)?;
    rows.into_iter()
        .rev()
        .find(|v| v.state == "complete" && memory.embedder_for(&v.id).is_some())
        .ok_or_else(|| {
            Error::Other(
                "no complete embedding index is loaded; run `keel memory reindex` to finish the re-embedding migration".into(),
            )
        })
}

/// Versions that receive new vectors: every non-retired one whose embedder is loaded.
pub fn writable(
    conn: &Connection,
    memory: &Memory,
) -> Result<Vec<(VersionRow, std::sync::Arc<dyn Embed>)>> {
    Ok(list(conn)?
        .into_iter()
        .filter(|v| v.state != "retired")
        .filter_map(|v| {
            memory
                .embedder_for(&v.id)
                .map(|e| (v, std::sync::Arc::clone(e)))
        })
        .collect())
}

/// Progress of a re-embedding migration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationReport {
    pub version: String,
    pub embedded: u64,
    pub completed: bool,
    pub retired: Vec<String>,
}

/// Chunks per migration step (one embed call, one LMDB write, one `SQLite` write).
const MIGRATION_BATCH: usize = 256;

/// Embeds every chunk that has no vector in the current version, then marks the version
/// complete and retires the older ones. Resumable: a crash only loses the current batch.
pub fn migrate(
    store: &mut Store,
    memory: &Memory,
    progress: &dyn Fn(u64, u64),
) -> Result<MigrationReport> {
    let version = memory.current_version();
    let row = register(store, &version, memory.clock.now_ms())?;
    let embedder = std::sync::Arc::clone(&memory.embedders[0]);
    let total: i64 = store.conn().query_row(
        "SELECT count(*) FROM memory_chunks WHERE id NOT IN (SELECT chunk FROM memory_vectors WHERE embedding = ?1)",
        [&row.id],
        |r| r.get(0),
    )?;
    let total = u64::try_from(total).unwrap_or(0);
    let mut report = MigrationReport {
        version: row.id.clone(),
        ..MigrationReport::default()
    };
    loop {
        let batch: Vec<(u32, String)> = {
            let mut stmt = store.conn().prepare(
                "SELECT id, text FROM memory_chunks WHERE id NOT IN (SELECT chunk FROM memory_vectors WHERE embedding = ?1) ORDER BY id LIMIT ?2",
            )?;
            stmt.query_map(
                params![row.id, i64::try_from(MIGRATION_BATCH).unwrap_or(256)],
                |r| Ok((r.get::<_, u32>(0)?, r.get(1)?)),
            )?
            .collect::<rusqlite::Result<_>>()?
        };
        if batch.is_empty() {
            break;
        }
        let texts: Vec<String> = batch.iter().map(|(_, t)| t.clone()).collect();
        let vectors = embedder.embed(&texts)?;
        let items: Vec<(u32, Vec<f32>)> = batch.iter().map(|(id, _)| *id).zip(vectors).collect();
        let now = memory.clock.now_ms();
        store.write(|tx| {
            add_vectors(tx, memory, &row, &items)?;
            audit::append(
                tx,
                now,
                &Actor::system("memory"),
                "memory.embed",
                &format!("embedding/{}", row.id),
                &json!({"chunks": items.len(), "first": items.first().map(|i| i.0), "last": items.last().map(|i| i.0)}),
            )?;
            Ok(())
        })?;
        report.embedded += items.len() as u64;
        progress(report.embedded, total);
    }
    if row.state == "building" {
        let now = memory.clock.now_ms();
        report.retired = store.write(|tx| {
            let retired: Vec<String> = {
                let mut stmt = tx.prepare(
                    "SELECT id FROM embedding_versions WHERE state = 'complete' AND id != ?1 ORDER BY id",
                )?;
                stmt.query_map([&row.id], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?
            };
            tx.execute(
                "UPDATE embedding_versions SET state = 'retired' WHERE state = 'complete' AND id != ?1",
                [&row.id],
            )?;
            tx.execute(
                "UPDATE embedding_versions SET state = 'complete', completed_ms = ?2 WHERE id = ?1",
                params![row.id, now],
            )?;
            audit::append(
                tx,
                now,
                &Actor::system("memory"),
                "memory.migrate",
                &format!("embedding/{}", row.id),
                &json!({"embedded": report.embedded, "retired": retired}),
            )?;
            Ok(retired)
        })?;
    }
    report.completed = true;
    Ok(report)
}

/// Rebuilds the current version's index from scratch into a fresh index number on a
/// background thread, then switches over; readers use the old index until the switch.
pub fn rebuild_in_background(
    db_path: std::path::PathBuf,
    durability: crate::core::store::Durability,
    memory: Memory,
) -> std::thread::JoinHandle<Result<u64>> {
    std::thread::spawn(move || {
        let mut store = Store::open(&db_path, durability)?;
        let id = memory.current_version().id();
        let row = get(store.conn(), &id)?.ok_or_else(|| Error::NotFound {
            kind: "embedding".into(),
            id: id.clone(),
        })?;
        let next: i64 = store.conn().query_row(
            "SELECT max(arroy_index) + 1 FROM embedding_versions",
            [],
            |r| r.get(0),
        )?;
        let to = u16::try_from(next)
            .map_err(|_| Error::Other("no free vector index number left".into()))?;
        let copied = memory.vectors.copy_rebuild(row.arroy_index, to, row.dims)?;
        let now = memory.clock.now_ms();
        // Adds write LMDB inside their SQLite transaction, so while this one holds the write
        // lock nothing can slip in between the catch-up and the switch.
        store.write(|tx| {
            memory.vectors.catch_up(row.arroy_index, to, row.dims)?;
            tx.execute(
                "UPDATE embedding_versions SET arroy_index = ?2 WHERE id = ?1",
                params![id, to],
            )?;
            audit::append(
                tx,
                now,
                &Actor::system("memory"),
                "memory.reindex",
                &format!("embedding/{id}"),
                &json!({"from_index": row.arroy_index, "to_index": to, "vectors": copied}),
            )?;
            Ok(())
        })?;
        memory.vectors.clear(row.arroy_index, row.dims)?;
        Ok(copied)
    })
}

/// Runs [`migrate`] on its own thread and connection, for the core to start when it opens
/// memory with a new model: queries keep using the old index until the new one is complete.
pub fn migrate_in_background(
    db_path: std::path::PathBuf,
    durability: crate::core::store::Durability,
    memory: Memory,
) -> std::thread::JoinHandle<Result<MigrationReport>> {
    std::thread::spawn(move || {
        let mut store = Store::open(&db_path, durability)?;
        migrate(&mut store, &memory, &|done, total| {
            tracing::info!(done, total, "re-embedding memory");
        })
    })
}
