//! The knowledge base: adding items (validated, chunked, embedded, checked for
//! near-duplicates), forgetting them, moving them between tiers, and sweeping expired
//! task-state artifacts. Every write commits with its audit entry; the vectors are written
//! inside the same `SQLite` transaction, so a failed vector write leaves nothing behind.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::vectors::Hit;
use super::{Memory, Tier, chunk, versions};
use crate::core::audit::{self, Actor};
use crate::core::canonical::sha256_hex;
use crate::core::clock::Millis;
use crate::core::error::{Error, Result};
use crate::core::ids::new_id;
use crate::core::store::Store;

/// What to store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewItem {
    pub text: String,
    pub kind: String,
    pub tier: Option<Tier>,
    pub source: String,
    pub object: Option<crate::protocol::ObjectRef>,
    pub tags: Vec<String>,
    /// The run a task-state artifact belongs to.
    pub run_id: Option<String>,
    /// Time-to-live in milliseconds (task tier; defaults to `[memory] task_ttl_hours`).
    pub ttl_ms: Option<i64>,
    /// Store even when a near-duplicate exists (linked to it through `duplicate_of`).
    pub allow_duplicate: bool,
}

/// The result of an add.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Added {
    Stored {
        id: String,
        chunks: usize,
        /// A near-duplicate that was found but stored anyway (`allow_duplicate`).
        duplicate_of: Option<Duplicate>,
    },
    /// Not stored: an existing item says the same thing.
    Duplicate(Duplicate),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Duplicate {
    pub existing: String,
    pub similarity: f32,
}

/// A stored item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub version: i64,
    pub kind: String,
    pub tier: String,
    pub text: String,
    pub source: String,
    pub object: Option<crate::protocol::ObjectRef>,
    pub tags: Vec<String>,
    pub run_id: Option<String>,
    pub expires_ms: Option<Millis>,
    pub duplicate_of: Option<String>,
    pub created_ms: Millis,
    pub updated_ms: Millis,
}

/// Rejects texts that cannot be stored, with the reason.
pub fn validate_text(text: &str, max_bytes: usize) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::invalid("memory text", "it is empty"));
    }
    if text.len() > max_bytes {
        return Err(Error::invalid(
            "memory text",
            format!(
                "it is {} bytes, more than the {max_bytes}-byte limit ([memory] max_text_bytes); split it or import it as a file",
                text.len()
            ),
        ));
    }
    if text.contains('\0') {
        return Err(Error::invalid(
            "memory text",
            "it contains NUL bytes (binary data?)",
        ));
    }
    Ok(())
}

fn clean_tags(tags: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = tags
        .iter()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(bad) = out
        .iter()
        .find(|t| t.contains(',') || t.chars().any(char::is_whitespace))
    {
        return Err(Error::invalid(
            "tag",
            format!("{bad:?} (no spaces or commas)"),
        ));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

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
fn expiry(memory: &Memory, tier: Tier, ttl_ms: Option<i64>, now: Millis) -> Result<Option<Millis>> {
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
fn figures(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')'))
        .map(|t| {
            t.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|t| t.chars().any(|c| c.is_ascii_digit()))
        .collect()
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<Item>> {
    Ok(conn
        .query_row(
            "SELECT id, version, kind, tier, text, source, object_kind, object_id, object_version,
                    tags, run_id, expires_ms, duplicate_of, created_ms, updated_ms
             FROM memory_items WHERE id = ?1",
            [id],
            |r| {
                let object_kind: Option<String> = r.get(6)?;
                let object_id: Option<String> = r.get(7)?;
                let object_version: Option<i64> = r.get(8)?;
                let tags: String = r.get(9)?;
                Ok(Item {
                    id: r.get(0)?,
                    version: r.get(1)?,
                    kind: r.get(2)?,
                    tier: r.get(3)?,
                    text: r.get(4)?,
                    source: r.get(5)?,
                    object: match (object_kind, object_id) {
                        (Some(kind), Some(id)) => Some(crate::protocol::ObjectRef {
                            kind,
                            id,
                            version: object_version.unwrap_or(0),
                        }),
                        _ => None,
                    },
                    tags: serde_json::from_str(&tags).unwrap_or_default(),
                    run_id: r.get(10)?,
                    expires_ms: r.get(11)?,
                    duplicate_of: r.get(12)?,
                    created_ms: r.get(13)?,
                    updated_ms: r.get(14)?,
                })
            },
        )
        .optional()?)
}

/// Deletes items and their vectors inside `tx`. Returns the chunk count removed.
fn delete_items(tx: &Transaction<'_>, memory: &Memory, ids: &[String]) -> Result<usize> {
    let mut chunks = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT id FROM memory_chunks WHERE item = ?1")?;
        for id in ids {
            for c in stmt.query_map([id], |r| r.get::<_, u32>(0))? {
                chunks.push(c?);
            }
        }
    }
    let mut stmt = tx.prepare("DELETE FROM memory_items WHERE id = ?1")?;
    for id in ids {
        stmt.execute([id])?;
    }
    for row in versions::list(tx)? {
        memory.vectors.remove(row.arroy_index, row.dims, &chunks)?;
    }
    // Crash tests stop here: vectors removed in LMDB, the deletion not yet in SQLite.
    crate::core::failpoint::pause("memory.after_vectors");
    Ok(chunks.len())
}

/// Forgets an item: its text, chunks and vectors are deleted; the audit keeps its hash.
pub fn forget(
    store: &mut Store,
    memory: &Memory,
    actor: &Actor,
    id: &str,
    reason: &str,
) -> Result<()> {
    let item = get(store.conn(), id)?.ok_or_else(|| Error::NotFound {
        kind: "memory".into(),
        id: id.into(),
    })?;
    let now = memory.clock.now_ms();
    store.write(|tx| {
        let chunks = delete_items(tx, memory, &[id.to_string()])?;
        let hash = sha256_hex(item.text.trim().as_bytes());
        audit::append(
            tx,
            now,
            actor,
            "memory.forget",
            &format!("memory/{id}"),
            &json!({"kind": item.kind, "tier": item.tier, "version": item.version, "hash": hash, "chunks": chunks, "reason": reason}),
        )?;
        Ok(())
    })
}

/// Moves an item to `tier` (promote to long-term, demote to task state with a TTL).
pub fn set_tier(
    store: &mut Store,
    memory: &Memory,
    actor: &Actor,
    id: &str,
    tier: Tier,
    ttl_ms: Option<i64>,
) -> Result<i64> {
    let item = get(store.conn(), id)?.ok_or_else(|| Error::NotFound {
        kind: "memory".into(),
        id: id.into(),
    })?;
    let now = memory.clock.now_ms();
    // Long-term items never expire, whatever TTL was passed.
    let expires = match tier {
        Tier::Long => None,
        Tier::Task => expiry(memory, tier, ttl_ms, now)?,
    };
    let action = if tier == Tier::Long {
        "memory.promote"
    } else {
        "memory.demote"
    };
    store.write(|tx| {
        tx.execute(
            "UPDATE memory_items SET tier = ?2, expires_ms = ?3, version = version + 1, updated_ms = ?4 WHERE id = ?1",
            params![id, tier.as_str(), expires, now],
        )?;
        audit::append(
            tx,
            now,
            actor,
            action,
            &format!("memory/{id}"),
            &json!({"from": item.tier, "to": tier.as_str(), "version": item.version + 1, "expires_ms": expires}),
        )?;
        Ok(item.version + 1)
    })
}

/// Deletes task-state items whose time-to-live has passed. Returns their ids.
pub fn sweep(store: &mut Store, memory: &Memory) -> Result<Vec<String>> {
    let now = memory.clock.now_ms();
    store.write(|tx| {
        let expired: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT id FROM memory_items WHERE expires_ms IS NOT NULL AND expires_ms <= ?1 ORDER BY id",
            )?;
            stmt.query_map([now], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        if expired.is_empty() {
            return Ok(expired);
        }
        let chunks = delete_items(tx, memory, &expired)?;
        audit::append(
            tx,
            now,
            &Actor::system("memory"),
            "memory.sweep",
            "memory",
            &json!({"expired": expired, "chunks": chunks}),
        )?;
        Ok(expired)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model's stand-in: fails like a missing model until `ready` is set.
    struct LateModel {
        ready: std::sync::atomic::AtomicBool,
    }

    impl crate::core::memory::embed::Embed for LateModel {
        fn version(&self) -> crate::core::memory::embed::EmbeddingVersion {
            crate::core::memory::embed::EmbeddingVersion {
                name: "late".into(),
                sha256: "0123456789abcdef".into(),
                dims: 4,
            }
        }
        fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
            if !self.ready.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(Error::Other(
                    "the embedding model is missing (keel models fetch)".into(),
                ));
            }
            Ok(texts
                .iter()
                .map(|t| {
                    let n = f32::from(u8::try_from(t.len() % 7).unwrap()) + 1.0;
                    let v = [n, 1.0, 0.5, 0.25];
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                    v.iter().map(|x| x / norm).collect()
                })
                .collect())
        }
    }

    #[test]
    fn without_the_model_items_are_deferred_then_embedded_by_repair() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(
            &dir.path().join("keel.db"),
            crate::core::store::Durability::Normal,
        )
        .unwrap();
        let model = std::sync::Arc::new(LateModel {
            ready: false.into(),
        });
        let memory = Memory::with_embedders(
            &dir.path().join("vectors"),
            crate::core::memory::MemoryConfig::default(),
            &mut store,
            vec![model.clone()],
            std::sync::Arc::new(crate::core::clock::ManualClock::at(1_000)),
        )
        .unwrap();
        let item = NewItem {
            text: "Pricing teardowns outperform everything".into(),
            kind: "insight".into(),
            source: "test".into(),
            ..NewItem::default()
        };
        assert!(
            add(&mut store, &memory, &Actor::Operator, &item).is_err(),
            "plain add needs the model"
        );
        let Added::Stored { id, .. } =
            add_or_defer(&mut store, &memory, &Actor::Operator, &item).unwrap()
        else {
            panic!("stored")
        };
        let found: String = store
            .conn()
            .query_row(
                "SELECT c.item FROM memory_fts f JOIN memory_chunks c ON c.id = f.rowid WHERE memory_fts MATCH 'teardowns'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, id, "keyword-searchable at once");
        assert!(
            !crate::core::memory::check::check(store.conn(), &memory)
                .unwrap()
                .is_consistent()
        );
        model.ready.store(true, std::sync::atomic::Ordering::SeqCst);
        let after = crate::core::memory::check::repair(&mut store, &memory).unwrap();
        assert!(after.is_consistent(), "{after:?}");
    }

    #[test]
    fn figures_tell_apart_facts_that_differ_in_numbers() {
        assert_eq!(
            figures("Contract ACME-77 renews on 1 July."),
            figures("contract acme-77 renews, on 1 july")
        );
        assert_ne!(
            figures("Contract ACME-77 renews on 1 July."),
            figures("Contract ACME-71 renews on 1 June.")
        );
        assert!(figures("no numbers here").is_empty());
    }

    #[test]
    fn tags_are_normalised_and_validated() {
        assert_eq!(
            clean_tags(&[" B".into(), "a".into(), "b".into(), String::new()]).unwrap(),
            vec!["a", "b"]
        );
        assert!(clean_tags(&["two words".into()]).is_err());
    }

    #[test]
    fn texts_are_validated() {
        assert!(validate_text("ok", 10).is_ok());
        assert!(validate_text(" \n", 10).is_err());
        assert!(validate_text("0123456789x", 10).is_err());
        assert!(validate_text("a\0b", 10).is_err());
    }
}
