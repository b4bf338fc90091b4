//! An item's life after it is stored: forgotten, moved between tiers, swept when its
//! time-to-live passes. Each deletion removes the vectors in the same transaction.

use rusqlite::{Transaction, params};
use serde_json::json;

use super::get;
use crate::core::audit::{self, Actor};
use crate::core::canonical::sha256_hex;
use crate::core::error::{Error, Result};
use crate::core::memory::{Memory, Tier, versions};
use crate::core::store::Store;

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
        Tier::Task => super::add::expiry(memory, tier, ttl_ms, now)?,
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
