//! The knowledge base: adding items (validated, chunked, embedded, checked for
//! near-duplicates), forgetting them, moving them between tiers, and sweeping expired
//! task-state artifacts. Every write commits with its audit entry; the vectors are written
//! inside the same `SQLite` transaction, so a failed vector write leaves nothing behind.

mod add;
mod lifecycle;
#[cfg(test)]
mod tests;

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

pub use add::{add, add_or_defer};
pub use lifecycle::{forget, set_tier, sweep};

use crate::core::clock::Millis;
use crate::core::error::{Error, Result};

/// What to store, and what an add did (protocol rows).
pub use crate::protocol::{Added, Duplicate, NewMemoryItem as NewItem};

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
