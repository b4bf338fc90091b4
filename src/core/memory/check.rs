//! Consistency between `SQLite` (the source of truth) and the vector index: for every live
//! embedding version, the chunks `SQLite` says are indexed must be exactly the index's items.
//! Checked on open; repaired on request (missing vectors re-embedded, orphans removed).

use roaring::RoaringBitmap;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Memory, versions};
use crate::core::audit::{self, Actor};
use crate::core::error::Result;
use crate::core::store::Store;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionCheck {
    pub embedding: String,
    pub state: String,
    pub indexed: u64,
    /// Chunks without a vector in this version's index (or without a record of one).
    pub missing: Vec<u32>,
    /// Vectors in the index whose chunk `SQLite` does not know.
    pub orphans: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub chunks: u64,
    pub versions: Vec<VersionCheck>,
}

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

/// Re-embeds missing chunks and removes orphan vectors, then checks again.
pub fn repair(store: &mut Store, memory: &Memory) -> Result<CheckReport> {
    let before = check(store.conn(), memory)?;
    for vc in &before.versions {
        if vc.missing.is_empty() && vc.orphans.is_empty() {
            continue;
        }
        let Some(row) = versions::get(store.conn(), &vc.embedding)? else {
            continue;
        };
        let Some(embedder) = memory.embedder_for(&row.id).cloned() else {
            tracing::warn!(embedding = %row.id, "cannot repair: model not loaded");
            continue;
        };
        let mut texts = Vec::with_capacity(vc.missing.len());
        {
            let mut stmt = store
                .conn()
                .prepare("SELECT text FROM memory_chunks WHERE id = ?1")?;
            for id in &vc.missing {
                texts.push(stmt.query_row([id], |r| r.get::<_, String>(0))?);
            }
        }
        let vectors = embedder.embed(&texts)?;
        let items: Vec<(u32, Vec<f32>)> = vc.missing.iter().copied().zip(vectors).collect();
        let now = memory.clock.now_ms();
        store.write(|tx| {
            memory.vectors.add(row.arroy_index, row.dims, &items)?;
            memory
                .vectors
                .remove(row.arroy_index, row.dims, &vc.orphans)?;
            for (id, _) in &items {
                tx.execute(
                    "INSERT OR IGNORE INTO memory_vectors (chunk, embedding) VALUES (?1, ?2)",
                    params![id, row.id],
                )?;
            }
            audit::append(
                tx,
                now,
                &Actor::system("memory"),
                "memory.repair",
                &format!("embedding/{}", row.id),
                &json!({"reembedded": vc.missing, "removed_orphans": vc.orphans}),
            )?;
            Ok(())
        })?;
    }
    check(store.conn(), memory)
}
