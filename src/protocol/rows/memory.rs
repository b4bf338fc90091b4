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

/// Which tier a memory item lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Task state: checkpointed artifacts with a time-to-live.
    Task,
    /// Long-term: curated facts, preferences, contracts, published work.
    Long,
}

/// What to store (`Op::AddMemory`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewMemoryItem {
    pub text: String,
    pub kind: String,
    pub tier: Option<Tier>,
    pub source: String,
    pub object: Option<ObjectRef>,
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

/// `Op::ImportMemory`: what a directory or file import stored, found duplicated, skipped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryImportReport {
    pub added: Vec<ImportedItem>,
    pub duplicates: Vec<ImportedItem>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedItem {
    pub source: String,
    pub id: String,
    pub chunks: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// How `SQLite` and the vector index agree, per embedding version.
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

/// One nearest triage example and its similarity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbour {
    pub label: String,
    pub similarity: f32,
    pub source: String,
    pub text: String,
}

/// A triage decision on one facet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriageDecision {
    pub id: String,
    pub facet: String,
    pub label: Option<String>,
    pub confidence: f32,
    /// `auto` or `operator` (confidence below the threshold).
    pub routed: String,
    pub neighbours: Vec<Neighbour>,
}

/// How the vector and keyword rankings combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Fusion {
    /// Reciprocal rank fusion: score = Σ 1 / (k + rank).
    #[default]
    Rrf,
    VectorOnly,
    KeywordOnly,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchFilters {
    /// Any of these kinds (empty: all).
    pub kinds: Vec<String>,
    /// Any of these tiers (empty: all).
    pub tiers: Vec<Tier>,
    /// All of these tags.
    pub tags: Vec<String>,
    /// Linked to this canonical object (kind, id).
    pub object: Option<(String, String)>,
}

/// Pinned retrieval parameters; stored with every retrieval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchParams {
    pub k: usize,
    /// Candidates each retriever contributes to the fusion.
    pub candidates: usize,
    /// arroy `search_k` (nodes inspected); `None` lets arroy pick `n_trees × candidates`.
    pub search_k: Option<usize>,
    pub fusion: Fusion,
    pub filters: SearchFilters,
    /// Embedding version id; `None` uses the newest complete one (and is recorded as such).
    pub embedding: Option<String>,
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            k: 8,
            candidates: 50,
            search_k: None,
            fusion: Fusion::Rrf,
            filters: SearchFilters::default(),
            embedding: None,
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub rank: usize,
    pub item: String,
    pub item_version: i64,
    /// The best-matching chunk of the item.
    pub chunk: u32,
    pub score: f64,
    pub vector_rank: Option<usize>,
    pub keyword_rank: Option<usize>,
    /// Cosine similarity of the best chunk, when the vector retriever found it.
    pub similarity: Option<f32>,
    pub kind: String,
    pub tier: String,
    pub preview: String,
}

/// A search's answer and the embedding version it used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResult {
    pub embedding: String,
    pub hits: Vec<SearchHit>,
}

/// A search recorded for a run (`Op::RetrieveForRun`): replayable with its pinned parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retrieval {
    pub id: String,
    pub run_id: String,
    pub ts_ms: i64,
    pub query: String,
    pub embedding: String,
    pub params: SearchParams,
    pub hits: Vec<SearchHit>,
}
