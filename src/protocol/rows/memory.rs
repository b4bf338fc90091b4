//! Memory as clients search it: ranked hits with where each item came from.

use serde::{Deserialize, Serialize};

use super::ObjectRef;

/// One search hit and its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MemoryHitRow {
    pub rank: usize,
    pub item: String,
    pub item_version: i64,
    pub kind: String,
    pub tier: String,
    /// Fused rank score (reciprocal rank fusion of the vector and keyword retrievers).
    pub score: f64,
    /// The best-matching passage.
    pub preview: String,
    /// Where the item came from: a file, `operator`, `agent:RUN`, `mcp:SERVER/TOOL`…
    pub source: String,
    /// The object it was taken from, at the version it was taken.
    pub object: Option<ObjectRef>,
    pub tags: Vec<String>,
    /// The run that wrote it, when an agent did.
    pub run: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// `Query::MemorySearch`: the hits and the embedding version that ranked them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MemoryHits {
    pub embedding: String,
    pub hits: Vec<MemoryHitRow>,
}
