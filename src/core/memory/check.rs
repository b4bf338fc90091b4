//! Consistency between `SQLite` (the source of truth) and the vector index: for every live
//! embedding version, the chunks `SQLite` says are indexed must be exactly the index's items.
//! Checked on open; repaired on request (missing vectors re-embedded, orphans removed) and
//! by [`reconcile`] when a long-running process starts.

use roaring::RoaringBitmap;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Memory, versions};
use crate::core::audit::{self, Actor};
use crate::core::clock::Millis;
use crate::core::error::Result;
use crate::core::store::Store;

/// What a check found (protocol rows).
pub use crate::protocol::{CheckReport, VersionCheck};

impl CheckReport {
    #[must_use]
    pub fn is_consistent(&self) -> bool {
        self.versions
            .iter()
            .all(|v| v.missing.is_empty() && v.orphans.is_empty())
    }
}

fn bitmap(conn: &Connection, sql: &str, arg: Option<&str>) -> Result<RoaringBitmap> {
    let mut stmt = conn.prepare(sql)?;
    let mut out = RoaringBitmap::new();
    let rows = match arg {
        Some(a) => stmt
            .query_map([a], |r| r.get::<_, u32>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?,
        None => stmt
            .query_map([], |r| r.get::<_, u32>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    };
    out.extend(rows);
    Ok(out)
}

/// Compares `SQLite` and the index for every version that is not retired.
pub fn check(conn: &Connection, memory: &Memory) -> Result<CheckReport> {
    let chunks = bitmap(conn, "SELECT id FROM memory_chunks", None)?;
    let mut report = CheckReport {
        chunks: chunks.len(),
        versions: Vec::new(),
    };
    for v in versions::list(conn)? {
        if v.state == "retired" {
            continue;
        }
        let recorded = bitmap(
            conn,
            "SELECT chunk FROM memory_vectors WHERE embedding = ?1",
            Some(&v.id),
        )?;
        let indexed = memory.vectors.ids(v.arroy_index)?;
        // A building version is expected to lack chunks that the migration has not reached.
        let should = if v.state == "building" {
            &recorded
        } else {
            &chunks
        };
        let missing = (should - &indexed) | (should - &recorded);
        let orphans = &indexed - &chunks;
        report.versions.push(VersionCheck {
            embedding: v.id,
            state: v.state,
            indexed: indexed.len(),
            missing: missing.iter().collect(),
            orphans: orphans.iter().collect(),
        });
    }
    Ok(report)
}

/// Removes orphan vectors and re-embeds missing chunks, then checks again.
///
/// Safe while other processes write memory: every vector write happens inside a `SQLite`
/// write transaction (see `kb`), so the orphans are decided while holding that lock (no
/// writer can then have vectors committed whose rows are not), and re-embedded vectors are
/// added only for chunks that still exist and still lack one when the lock is taken again.
/// The embedding itself (slow) runs without the lock.
pub fn repair(store: &mut Store, memory: &Memory) -> Result<CheckReport> {
    let now = memory.clock.now_ms();
    let before = store.write(|tx| {
        let report = check(tx, memory)?;
        for vc in report.versions.iter().filter(|v| !v.orphans.is_empty()) {
            let Some(row) = versions::get(tx, &vc.embedding)? else {
                continue;
            };
            memory
                .vectors
                .remove(row.arroy_index, row.dims, &vc.orphans)?;
            audit_repair(tx, now, &row.id, &[], &vc.orphans)?;
        }
        Ok(report)
    })?;
    for vc in before.versions.iter().filter(|v| !v.missing.is_empty()) {
        let Some(row) = versions::get(store.conn(), &vc.embedding)? else {
            continue;
        };
        let Some(embedder) = memory.embedder_for(&row.id).cloned() else {
            tracing::warn!(embedding = %row.id, "cannot repair: model not loaded");
            continue;
        };
        let (ids, texts) = chunk_texts(store.conn(), &vc.missing)?;
        if ids.is_empty() {
            continue;
        }
        let vectors = embedder.embed(&texts)?;
        let now = memory.clock.now_ms();
        store.write(|tx| {
            let now_missing = check(tx, memory)?
                .versions
                .into_iter()
                .find(|v| v.embedding == row.id)
                .map(|v| v.missing.into_iter().collect::<RoaringBitmap>())
                .unwrap_or_default();
            let items: Vec<(u32, Vec<f32>)> = ids
                .iter()
                .copied()
                .zip(vectors.iter().cloned())
                .filter(|(id, _)| now_missing.contains(*id))
                .collect();
            if items.is_empty() {
                return Ok(());
            }
            versions::add_vectors(tx, memory, &row, &items)?;
            let reembedded: Vec<u32> = items.iter().map(|(id, _)| *id).collect();
            audit_repair(tx, now, &row.id, &reembedded, &[])?;
            Ok(())
        })?;
    }
    check(store.conn(), memory)
}

/// Audits one repair of `embedding`'s index: chunks re-embedded, orphan vectors removed.
fn audit_repair(
    tx: &rusqlite::Transaction<'_>,
    now: Millis,
    embedding: &str,
    reembedded: &[u32],
    orphans: &[u32],
) -> Result<()> {
    audit::append(
        tx,
        now,
        &Actor::system("memory"),
        "memory.repair",
        &format!("embedding/{embedding}"),
        &json!({"reembedded": reembedded, "removed_orphans": orphans}),
    )?;
    Ok(())
}

/// The texts of the chunks among `ids` that still exist (a concurrent forget may have
/// deleted some since the check).
fn chunk_texts(conn: &Connection, ids: &[u32]) -> Result<(Vec<u32>, Vec<String>)> {
    let mut stmt = conn.prepare("SELECT text FROM memory_chunks WHERE id = ?1")?;
    let (mut found, mut texts) = (Vec::new(), Vec::new());
    for id in ids {
        if let Some(text) = stmt.query_row([id], |r| r.get::<_, String>(0)).optional()? {
            found.push(*id);
            texts.push(text);
        }
    }
    Ok((found, texts))
}

/// What [`reconcile`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciled {
    /// Chunks that lacked a vector, and orphan vectors, before the repair.
    pub missing: usize,
    pub orphans: usize,
    /// The check after the repair agreed.
    pub consistent: bool,
}

/// The start-up step of a long-running process (`keel run`, the console): a crash between
/// the vector index's commit and `SQLite`'s leaves them disagreeing (orphan vectors after
/// an interrupted add, missing ones after an interrupted forget); this repairs that.
/// `None` when the workspace has no vector index yet (nothing is created then).
pub fn reconcile(
    ws: &crate::core::workspace::Workspace,
    clock: std::sync::Arc<dyn crate::core::clock::Clock>,
) -> Result<Option<Reconciled>> {
    if !ws.vectors_dir().join("data.mdb").exists() {
        return Ok(None);
    }
    let mut store = ws.store()?;
    let memory = Memory::open(ws, &mut store, clock)?;
    let before = check(store.conn(), &memory)?;
    let count = |f: fn(&VersionCheck) -> usize| before.versions.iter().map(f).sum::<usize>();
    let mut out = Reconciled {
        missing: count(|v| v.missing.len()),
        orphans: count(|v| v.orphans.len()),
        consistent: before.is_consistent(),
    };
    if !out.consistent {
        out.consistent = repair(&mut store, &memory)?.is_consistent();
    }
    Ok(Some(out))
}

/// Runs [`reconcile`] on its own thread (it may wait for the embedding model) and logs the
/// outcome; a failure is logged, never fatal: `keel memory check --repair` remains.
pub fn reconcile_in_background(
    ws: &crate::core::workspace::Workspace,
    clock: std::sync::Arc<dyn crate::core::clock::Clock>,
) {
    let ws = ws.clone();
    let spawned = std::thread::Builder::new()
        .name("keel-memory-reconcile".into())
        .spawn(move || match reconcile(&ws, clock) {
            Ok(None) => tracing::info!("memory reconcile: no vector index yet"),
            Ok(Some(r)) if r.consistent => tracing::info!(
                missing = r.missing,
                orphans = r.orphans,
                "memory reconcile: SQLite and the vector index agree"
            ),
            Ok(Some(r)) => tracing::warn!(
                missing = r.missing,
                orphans = r.orphans,
                "memory reconcile: still inconsistent (model missing?); run `keel memory check --repair`"
            ),
            Err(e) => tracing::warn!(error = %e, "memory reconcile failed; run `keel memory check --repair`"),
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "memory reconcile: cannot start its thread");
    }
}
