//! Adding an item: validated, chunked, embedded (or deferred) and checked for
//! near-duplicates, in one transaction with its audit entry.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::{Added, Duplicate, NewItem, clean_tags, validate_text};
use crate::core::audit::{self, Actor};
use crate::core::canonical::sha256_hex;
use crate::core::clock::Millis;
use crate::core::error::{Error, Result};
use crate::core::ids::new_id;
use crate::core::memory::vectors::Hit;
use crate::core::memory::{Memory, Tier, chunk, versions};
use crate::core::store::Store;

/// Adds an item. The current embedding model must be available (its absence is reported
/// with the command that fetches it).
pub fn add(store: &mut Store, memory: &Memory, actor: &Actor, item: &NewItem) -> Result<Added> {
    add_inner(store, memory, actor, item, false)
}

/// Like [`add`], but when the embedding model cannot embed (missing, still failing to
/// load) the item is stored without vectors: it is keyword-searchable at once, and
/// `keel memory check --repair` embeds it once the model is there (the check reports its
/// chunks as missing until then). Used by the demo, which must work on a fresh machine.
pub fn add_or_defer(
    store: &mut Store,
    memory: &Memory,
    actor: &Actor,
    item: &NewItem,
) -> Result<Added> {
    add_inner(store, memory, actor, item, true)
}

#[allow(clippy::too_many_lines)] // one transaction: item, tags, chunks, vectors, audit
fn add_inner(
    store: &mut Store,
    memory: &Memory,
    actor: &Actor,
    item: &NewItem,
    defer_embedding: bool,
) -> Result<Added> {
    validate_text(&item.text, memory.config.max_text_bytes)?;
    let kind = item.kind.trim();
    if kind.is_empty() {
        return Err(Error::invalid("memory kind", "it is empty"));
    }
    let tags = clean_tags(&item.tags)?;
    let tier = item.tier.unwrap_or(Tier::Long);
    let chunks = chunk::chunk(&item.text);
    let targets = versions::writable(store.conn(), memory)?;
    let current = memory.current_version().id();
    let mut embedded = Vec::with_capacity(targets.len());
    for (row, embedder) in &targets {
        match embedder.embed(&chunks) {
            Ok(vectors) => embedded.push((row.clone(), vectors)),
            Err(e) if defer_embedding => {
                tracing::warn!(error = %e, "memory: storing without vectors until the model is available");
                embedded.clear();
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let hash = sha256_hex(item.text.trim().as_bytes());
    let duplicate = find_duplicate(store.conn(), memory, &item.text, &hash, &current, &embedded)?;
    if let Some(dup) = &duplicate
        && !item.allow_duplicate
    {
        let now = memory.clock.now_ms();
        store.write(|tx| {
            audit::append(
                tx,
                now,
                actor,
                "memory.duplicate",
                &format!("memory/{}", dup.existing),
                &json!({"similarity": dup.similarity, "hash": hash, "kind": kind, "source": item.source}),
            )?;
            Ok(())
        })?;
        return Ok(Added::Duplicate(dup.clone()));
    }
    let now = memory.clock.now_ms();
    let expires = expiry(memory, tier, item.ttl_ms, now)?;
    let id = new_id();
    store.write(|tx| {
        tx.execute(
            "INSERT INTO memory_items (id, kind, tier, text, source, object_kind, object_id, object_version,
                 tags, run_id, expires_ms, duplicate_of, content_hash, created_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
            params![
                id,
                kind,
                tier.as_str(),
                item.text,
                item.source,
                item.object.as_ref().map(|o| &o.kind),
                item.object.as_ref().map(|o| &o.id),
                item.object.as_ref().map(|o| o.version),
                serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into()),
                item.run_id,
                expires,
                duplicate.as_ref().map(|d| &d.existing),
                hash,
                now
            ],
        )?;
        for tag in &tags {
            tx.execute("INSERT INTO memory_tags (item, tag) VALUES (?1, ?2)", params![id, tag])?;
        }
        let mut chunk_ids = Vec::with_capacity(chunks.len());
        for (seq, text) in chunks.iter().enumerate() {
            tx.execute(
                "INSERT INTO memory_chunks (item, seq, text) VALUES (?1, ?2, ?3)",
                params![id, i64::try_from(seq).unwrap_or(i64::MAX), text],
            )?;
            chunk_ids.push(chunk_id(tx.last_insert_rowid())?);
        }
        for (row, vectors) in &embedded {
            let items: Vec<(u32, Vec<f32>)> =
                chunk_ids.iter().copied().zip(vectors.iter().cloned()).collect();
            memory.vectors.add(row.arroy_index, row.dims, &items)?;
            for c in &chunk_ids {
                tx.execute(
                    "INSERT INTO memory_vectors (chunk, embedding) VALUES (?1, ?2)",
                    params![c, row.id],
                )?;
            }
        }
        // Crash tests stop here: vectors committed in LMDB, rows not yet in SQLite.
        crate::core::failpoint::pause("memory.after_vectors");
        audit::append(
            tx,
            now,
            actor,
            "memory.add",
            &format!("memory/{id}"),
            &json!({
                "kind": kind, "tier": tier.as_str(), "source": item.source, "hash": hash,
                "bytes": item.text.len(), "chunks": chunks.len(), "tags": tags,
                "object": item.object, "run": item.run_id, "expires_ms": expires,
                "duplicate_of": duplicate, "embedding": embedded.iter().map(|(r, _)| &r.id).collect::<Vec<_>>(),
            }),
        )?;
        Ok(())
    })?;
    Ok(Added::Stored {
        id,
        chunks: chunks.len(),
        duplicate_of: duplicate,
    })
}

/// When an item of `tier` with time-to-live `ttl_ms` expires (task state always does).
pub(super) fn expiry(
    memory: &Memory,
    tier: Tier,
    ttl_ms: Option<i64>,
    now: Millis,
) -> Result<Option<Millis>> {
    let default_ttl = i64::try_from(memory.config.task_ttl_hours)
        .unwrap_or(i64::MAX / 4)
        .saturating_mul(3_600_000);
    match (tier, ttl_ms) {
        (_, Some(ttl)) if ttl <= 0 => Err(Error::invalid("ttl", "it must be positive")),
        (_, Some(ttl)) => Ok(Some(now.saturating_add(ttl))),
        (Tier::Task, None) => Ok(Some(now.saturating_add(default_ttl))),
        (Tier::Long, None) => Ok(None),
    }
}

fn chunk_id(rowid: i64) -> Result<u32> {
    u32::try_from(rowid)
        .map_err(|_| Error::Other("memory chunk ids exhausted (over 4 billion)".into()))
}

/// Same text (by hash), or a first chunk whose nearest neighbour is above the threshold.
fn find_duplicate(
    conn: &Connection,
    memory: &Memory,
    text: &str,
    hash: &str,
    current: &str,
    embedded: &[(versions::VersionRow, Vec<Vec<f32>>)],
) -> Result<Option<Duplicate>> {
    let same: Option<String> = conn
        .query_row(
            "SELECT id FROM memory_items WHERE content_hash = ?1 ORDER BY id LIMIT 1",
            [hash],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(existing) = same {
        return Ok(Some(Duplicate {
            existing,
            similarity: 1.0,
        }));
    }
    let Some((row, vectors)) = embedded.iter().find(|(r, _)| r.id == current) else {
        return Ok(None);
    };
    let Some(first) = vectors.first() else {
        return Ok(None);
    };
    let hits: Vec<Hit> = memory
        .vectors
        .search(row.arroy_index, first, 1, None, None)?;
    let Some(best) = hits.first() else {
        return Ok(None);
    };
    if best.similarity < memory.config.duplicate_threshold {
        return Ok(None);
    }
    let existing: Option<(String, String)> = conn
        .query_row(
            "SELECT item, text FROM memory_chunks WHERE id = ?1",
            [best.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let new_first = chunk::chunk(text).into_iter().next().unwrap_or_default();
    Ok(existing
        .filter(|(_, old)| figures(old) == figures(&new_first))
        .map(|(existing, _)| Duplicate {
            existing,
            similarity: best.similarity,
        }))
}

/// The tokens that carry digits (amounts, dates, invoice and contract numbers). Two texts
/// that differ in them state different facts however close their embeddings are
/// ("ACME-71 renews in June" is not a duplicate of "ACME-77 renews in July").
pub(super) fn figures(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')'))
        .map(|t| {
            t.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|t| t.chars().any(|c| c.is_ascii_digit()))
        .collect()
}
