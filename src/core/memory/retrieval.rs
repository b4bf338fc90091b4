//! Retrieval with provenance: every retrieval a run makes records its query, embedding
//! version, pinned parameters and results (ids, item versions, ranks, scores). `explain`
//! replays a run's queries with the same pinned parameters and diffs the answers.

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Memory;
use super::search::{self, SearchHit, SearchParams};
use crate::core::audit::{self, Actor};
use crate::core::canonical;
use crate::core::clock::Millis;
use crate::core::error::Result;
use crate::core::ids::new_id;
use crate::core::store::Store;
use crate::protocol::MemorySliceRow;

/// A recorded retrieval (a protocol row).
pub use crate::protocol::Retrieval;

/// Searches and records the retrieval for `run_id` (with its audit entry) in one transaction.
pub fn retrieve(
    store: &mut Store,
    memory: &Memory,
    run_id: &str,
    query: &str,
    params: &SearchParams,
) -> Result<Retrieval> {
    let result = search::search(store.conn(), memory, query, params)?;
    // Record the version actually used, so replaying pins it even if the default moves on.
    let mut pinned = params.clone();
    pinned.embedding = Some(result.embedding.clone());
    let id = new_id();
    let now = memory.clock.now_ms();
    let params_json = canonical::to_string(&serde_json::to_value(&pinned).map_err(json_err)?);
    store.write(|tx| {
        tx.execute(
            "INSERT INTO retrievals (id, run_id, ts_ms, query, embedding, params) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, run_id, now, query, result.embedding, params_json],
        )?;
        for h in &result.hits {
            tx.execute(
                "INSERT INTO retrieval_results (retrieval, rank, item, item_version, chunk, score, kind, preview)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![id, i64::try_from(h.rank).unwrap_or(i64::MAX), h.item, h.item_version, h.chunk, h.score, h.kind, h.preview],
            )?;
        }
        audit::append(
            tx,
            now,
            &Actor::agent(run_id),
            "memory.retrieve",
            &format!("retrieval/{id}"),
            &json!({
                "run": run_id, "query_hash": canonical::sha256_hex(query.as_bytes()),
                "embedding": result.embedding, "params": pinned,
                "results": result.hits.iter().map(|h| json!([h.item, h.item_version, h.rank, h.score])).collect::<Vec<_>>(),
            }),
        )?;
        Ok(())
    })?;
    Ok(Retrieval {
        id,
        run_id: run_id.to_string(),
        ts_ms: now,
        query: query.to_string(),
        embedding: result.embedding,
        params: pinned,
        hits: result.hits,
    })
}

/// The retrievals of a run, oldest first, with their recorded results.
pub fn for_run(conn: &Connection, run_id: &str) -> Result<Vec<Retrieval>> {
    let mut stmt = conn.prepare(
        "SELECT id, ts_ms, query, embedding, params FROM retrievals WHERE run_id = ?1 ORDER BY ts_ms, id",
    )?;
    let heads: Vec<(String, Millis, String, String, String)> = stmt
        .query_map([run_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut results = conn.prepare(
        "SELECT rank, item, item_version, chunk, score, kind, preview FROM retrieval_results WHERE retrieval = ?1 ORDER BY rank",
    )?;
    let mut out = Vec::with_capacity(heads.len());
    for (id, ts_ms, query, embedding, params) in heads {
        let hits = results
            .query_map([&id], |r| {
                Ok(SearchHit {
                    rank: usize::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    item: r.get(1)?,
                    item_version: r.get(2)?,
                    chunk: r.get(3)?,
                    score: r.get(4)?,
                    vector_rank: None,
                    keyword_rank: None,
                    similarity: None,
                    kind: r.get(5)?,
                    tier: String::new(),
                    preview: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        out.push(Retrieval {
            id,
            run_id: run_id.to_string(),
            ts_ms,
            query,
            embedding,
            params: serde_json::from_str(&params).map_err(json_err)?,
            hits,
        });
    }
    Ok(out)
}

/// Answer to `Query::MemoryUsed`: every slice a run retrieved, in retrieval then rank order.
pub fn memory_used(conn: &Connection, run_id: &str) -> Result<Vec<MemorySliceRow>> {
    let mut stmt = conn.prepare(
        "SELECT r.item, r.item_version, r.rank, r.score, r.kind, r.preview
         FROM retrieval_results r JOIN retrievals q ON q.id = r.retrieval
         WHERE q.run_id = ?1 ORDER BY q.ts_ms, q.id, r.rank",
    )?;
    let rows = stmt
        .query_map([run_id], |r| {
            Ok(MemorySliceRow {
                item: r.get(0)?,
                version: r.get(1)?,
                rank: r.get(2)?,
                score: r.get(3)?,
                kind: r.get(4)?,
                preview: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// One replayed retrieval: what the run saw, what the same query answers now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub retrieval: String,
    pub query: String,
    pub embedding: String,
    pub params: SearchParams,
    pub then: Vec<SearchHit>,
    /// `None` when the query cannot be replayed (e.g. its model is no longer loaded).
    pub now: Option<Vec<SearchHit>>,
    pub replay_error: Option<String>,
    /// True when the same ids, versions and order come back.
    pub unchanged: bool,
    /// A unified diff of `rank item vVERSION score` lines, then against now.
    pub diff: String,
}

fn line(h: &SearchHit) -> String {
    format!(
        "{:>2} {} v{} {:.6} {}",
        h.rank, h.item, h.item_version, h.score, h.preview
    )
}

/// Replays every retrieval of `run_id` with its pinned parameters (without recording).
pub fn explain(conn: &Connection, memory: &Memory, run_id: &str) -> Result<Vec<Explanation>> {
    let mut out = Vec::new();
    for r in for_run(conn, run_id)? {
        let (now, replay_error) = match search::search(conn, memory, &r.query, &r.params) {
            Ok(res) => (Some(res.hits), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let then_text: String = r.hits.iter().map(|h| line(h) + "\n").collect();
        let now_text: String = now
            .as_ref()
            .map(|hits| hits.iter().map(|h| line(h) + "\n").collect())
            .unwrap_or_default();
        let unchanged = now.as_ref().is_some_and(|hits| {
            hits.len() == r.hits.len()
                && hits
                    .iter()
                    .zip(&r.hits)
                    .all(|(a, b)| a.item == b.item && a.item_version == b.item_version)
        });
        let diff = similar::TextDiff::from_lines(&then_text, &now_text)
            .unified_diff()
            .header("then", "now")
            .to_string();
        out.push(Explanation {
            retrieval: r.id,
            query: r.query,
            embedding: r.embedding,
            params: r.params,
            then: r.hits,
            now,
            replay_error,
            unchanged,
            diff,
        });
    }
    Ok(out)
}

#[allow(clippy::needless_pass_by_value)] // used as map_err(json_err)
fn json_err(e: serde_json::Error) -> crate::core::error::Error {
    crate::core::error::Error::failed("retrieval parameters", e)
}
