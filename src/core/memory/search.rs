//! Hybrid search: the vector index and the FTS5 keyword index each rank chunks, reciprocal
//! rank fusion combines the two rankings, and chunks collapse into their items. Filters
//! (kind, tier, tags, linked object) restrict both retrievers. Ties break by item id, so
//! the same query over the same data always answers the same ids in the same order.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;

use roaring::RoaringBitmap;
use rusqlite::{Connection, params_from_iter, types::Value as SqlValue};

use super::{Memory, versions};
use crate::core::error::{Error, Result};

/// The search's parameters and answers are protocol rows: clients send and see them as
/// they are.
pub use crate::protocol::{
    Fusion, SearchFilters as Filters, SearchHit, SearchParams, SearchResult,
};

/// The constant of reciprocal rank fusion (the customary 60).
pub const RRF_K: f64 = 60.0;

impl Filters {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
            && self.tiers.is_empty()
            && self.tags.is_empty()
            && self.object.is_none()
    }

    /// SQL condition over `memory_items` aliased `i`, and its parameters.
    fn sql(&self) -> (String, Vec<SqlValue>) {
        let mut cond = vec!["(i.expires_ms IS NULL OR i.expires_ms > ?)".to_string()];
        let mut args = Vec::new();
        if !self.kinds.is_empty() {
            cond.push(format!(
                "i.kind IN ({})",
                vec!["?"; self.kinds.len()].join(",")
            ));
            args.extend(self.kinds.iter().map(|k| SqlValue::Text(k.clone())));
        }
        if !self.tiers.is_empty() {
            cond.push(format!(
                "i.tier IN ({})",
                vec!["?"; self.tiers.len()].join(",")
            ));
            args.extend(self.tiers.iter().map(|t| SqlValue::Text(t.as_str().into())));
        }
        for tag in &self.tags {
            cond.push(
                "EXISTS (SELECT 1 FROM memory_tags t WHERE t.item = i.id AND t.tag = ?)".into(),
            );
            args.push(SqlValue::Text(tag.trim().to_lowercase()));
        }
        if let Some((kind, id)) = &self.object {
            cond.push("i.object_kind = ? AND i.object_id = ?".into());
            args.push(SqlValue::Text(kind.clone()));
            args.push(SqlValue::Text(id.clone()));
        }
        (cond.join(" AND "), args)
    }
}

/// English function words: matching on them would let the keyword retriever vote for
/// documents that merely share "for" or "the" with the query.
const STOPWORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "did", "do", "does", "for",
    "from", "has", "have", "how", "i", "in", "is", "it", "its", "me", "my", "of", "on", "or",
    "our", "so", "that", "the", "their", "them", "there", "this", "to", "was", "we", "were",
    "what", "when", "where", "which", "who", "why", "will", "with", "you", "your",
];

/// Turns free text into an FTS5 query: each content word quoted, joined with OR (bm25
/// ranks). Only stopwords? Then they are used after all.
#[must_use]
pub fn fts_query(text: &str) -> Option<String> {
    let all: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let content: Vec<String> = all
        .iter()
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .cloned()
        .collect();
    let mut words = if content.is_empty() { all } else { content };
    words.sort();
    words.dedup();
    if words.is_empty() {
        return None;
    }
    Some(
        words
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" OR "),
    )
}

pub fn search(
    conn: &Connection,
    memory: &Memory,
    query: &str,
    params: &SearchParams,
) -> Result<SearchResult> {
    if query.trim().is_empty() {
        return Err(Error::invalid("query", "it is empty"));
    }
    if params.k == 0 || params.candidates == 0 {
        return Err(Error::invalid(
            "search parameters",
            "k and candidates must be at least 1",
        ));
    }
    let version = match &params.embedding {
        Some(id) => versions::get(conn, id)?.ok_or_else(|| Error::NotFound {
            kind: "embedding version".into(),
            id: id.clone(),
        })?,
        None => versions::query_version(conn, memory)?,
    };
    let now = memory.clock.now_ms();
    let mut vector_ranks = HashMap::new();
    if params.fusion != Fusion::KeywordOnly {
        let mut row = version.clone();
        // A background rebuild switches a version to a new index and then clears the old
        // one; a search that read the old number just before the switch may have found it
        // cleared. The number is re-read after the search, and the search redone if it moved.
        for _ in 0..3 {
            vector_ranks = vector_candidates(conn, memory, &row, query, params, now)?;
            match versions::get(conn, &row.id)? {
                Some(now_row) if now_row.arroy_index != row.arroy_index => row = now_row,
                _ => break,
            }
        }
    }
    let keyword_ranks = if params.fusion == Fusion::VectorOnly {
        HashMap::new()
    } else {
        keyword_candidates(conn, query, params, now)?
    };
    let hits = fuse(conn, params, &vector_ranks, &keyword_ranks, now)?;
    Ok(SearchResult {
        embedding: version.id,
        hits,
    })
}

/// Chunk id → (rank, cosine similarity) from the vector index.
fn vector_candidates(
    conn: &Connection,
    memory: &Memory,
    version: &versions::VersionRow,
    query: &str,
    params: &SearchParams,
    now: i64,
) -> Result<HashMap<u32, (usize, f32)>> {
    let embedder = memory.embedder_for(&version.id).ok_or_else(|| {
        Error::Other(format!(
            "the query is pinned to embedding {} but that model is not loaded",
            version.id
        ))
    })?;
    let qv = embedder
        .embed(&[query.to_string()])?
        .pop()
        .ok_or_else(|| Error::Other("the embedder returned no vector".into()))?;
    let allowed = if params.filters.is_empty() {
        None
    } else {
        Some(filtered_chunks(conn, &params.filters, now)?)
    };
    let hits = memory.vectors.search(
        version.arroy_index,
        &qv,
        params.candidates,
        params.search_k.and_then(NonZeroUsize::new),
        allowed.as_ref(),
    )?;
    Ok(hits
        .into_iter()
        .enumerate()
        .map(|(i, h)| (h.id, (i + 1, h.similarity)))
        .collect())
}

/// Chunk id → (rank, -bm25) from the FTS5 index.
fn keyword_candidates(
    conn: &Connection,
    query: &str,
    params: &SearchParams,
    now: i64,
) -> Result<HashMap<u32, (usize, f64)>> {
    let Some(fq) = fts_query(query) else {
        return Ok(HashMap::new());
    };
    let (where_sql, where_args) = params.filters.sql();
    let sql = format!(
        "SELECT f.rowid, bm25(memory_fts) AS s FROM memory_fts f
         JOIN memory_chunks c ON c.id = f.rowid JOIN memory_items i ON i.id = c.item
         WHERE memory_fts MATCH ? AND {where_sql} ORDER BY s, f.rowid LIMIT ?"
    );
    let mut args = vec![SqlValue::Text(fq), SqlValue::Integer(now)];
    args.extend(where_args);
    args.push(SqlValue::Integer(
        i64::try_from(params.candidates).unwrap_or(i64::MAX),
    ));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok((r.get::<_, u32>(0)?, r.get::<_, f64>(1)?))
    })?;
    let mut out = HashMap::new();
    for (i, row) in rows.enumerate() {
        let (id, bm25) = row?;
        out.insert(id, (i + 1, -bm25));
    }
    Ok(out)
}

fn rrf(rank: usize) -> f64 {
    1.0 / (RRF_K + f64::from(u32::try_from(rank).unwrap_or(u32::MAX)))
}

/// Scores every chunk, keeps each item's best chunk, orders by (score desc, item id).
fn fuse(
    conn: &Connection,
    params: &SearchParams,
    vector_ranks: &HashMap<u32, (usize, f32)>,
    keyword_ranks: &HashMap<u32, (usize, f64)>,
    now: i64,
) -> Result<Vec<SearchHit>> {
    let mut chunk_scores: BTreeMap<u32, f64> = BTreeMap::new();
    for (&id, &(rank, sim)) in vector_ranks {
        let s = match params.fusion {
            Fusion::VectorOnly => f64::from(sim),
            _ => rrf(rank),
        };
        *chunk_scores.entry(id).or_default() += s;
    }
    for (&id, &(rank, score)) in keyword_ranks {
        let s = match params.fusion {
            Fusion::KeywordOnly => score,
            _ => rrf(rank),
        };
        *chunk_scores.entry(id).or_default() += s;
    }
    let details = chunk_details(conn, chunk_scores.keys().copied(), now)?;
    let mut best: BTreeMap<String, (f64, u32)> = BTreeMap::new();
    for (&chunk, &score) in &chunk_scores {
        // Chunks unknown to SQLite (orphan vectors) or expired are dropped here.
        let Some(d) = details.get(&chunk) else {
            continue;
        };
        let e = best.entry(d.item.clone()).or_insert((score, chunk));
        if score > e.0 || (score.total_cmp(&e.0).is_eq() && chunk < e.1) {
            *e = (score, chunk);
        }
    }
    let mut ranked: Vec<(String, f64, u32)> = best
        .into_iter()
        .map(|(item, (s, c))| (item, s, c))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(params.k);
    Ok(ranked
        .into_iter()
        .enumerate()
        .filter_map(|(i, (item, score, chunk))| {
            let d = details.get(&chunk)?;
            Some(SearchHit {
                rank: i + 1,
                item,
                item_version: d.version,
                chunk,
                score,
                vector_rank: vector_ranks.get(&chunk).map(|v| v.0),
                keyword_rank: keyword_ranks.get(&chunk).map(|v| v.0),
                similarity: vector_ranks.get(&chunk).map(|v| v.1),
                kind: d.kind.clone(),
                tier: d.tier.clone(),
                preview: preview(&d.text),
            })
        })
        .collect())
}

/// The first line of a text, cut to 120 characters.
#[must_use]
pub fn preview(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("");
    let mut out: String = line.chars().take(120).collect();
    if out.len() < line.len() || text.trim().lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

fn filtered_chunks(conn: &Connection, filters: &Filters, now: i64) -> Result<RoaringBitmap> {
    let (where_sql, where_args) = filters.sql();
    let sql = format!(
        "SELECT c.id FROM memory_chunks c JOIN memory_items i ON i.id = c.item WHERE {where_sql}"
    );
    let mut args = vec![SqlValue::Integer(now)];
    args.extend(where_args);
    let mut stmt = conn.prepare(&sql)?;
    let mut out = RoaringBitmap::new();
    for id in stmt.query_map(params_from_iter(args), |r| r.get::<_, u32>(0))? {
        out.insert(id?);
    }
    Ok(out)
}

struct ChunkDetail {
    item: String,
    version: i64,
    kind: String,
    tier: String,
    text: String,
}

fn chunk_details(
    conn: &Connection,
    ids: impl Iterator<Item = u32>,
    now: i64,
) -> Result<HashMap<u32, ChunkDetail>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.item, i.version, i.kind, i.tier, c.text FROM memory_chunks c JOIN memory_items i ON i.id = c.item
         WHERE c.id = ?1 AND (i.expires_ms IS NULL OR i.expires_ms > ?2)",
    )?;
    let mut out = HashMap::new();
    for id in ids {
        let mut rows = stmt.query(rusqlite::params![id, now])?;
        if let Some(r) = rows.next()? {
            out.insert(
                id,
                ChunkDetail {
                    item: r.get(0)?,
                    version: r.get(1)?,
                    kind: r.get(2)?,
                    tier: r.get(3)?,
                    text: r.get(4)?,
                },
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
