//! Long-term memory: a knowledge base in `SQLite` (items, chunks, FTS5) with vectors in
//! LMDB/arroy, hybrid search, retrieval provenance, memory tiers and embedding triage.
//!
//! - [`embed`] — the fastembed model on its own thread; model state and embedding version.
//! - [`vectors`] — heed + arroy, one index per embedding version, map growth.
//! - [`versions`] — which embedding versions exist, which is queried, re-embedding migration.
//! - [`kb`] — add (chunking, near-duplicates), forget, promote/demote, TTL sweep.
//! - [`search`] — hybrid search (vector + keyword, reciprocal rank fusion) with filters.
//! - [`retrieval`] — `retrieve(run, …)` with provenance; `explain` as a diff.
//! - [`check`] — `SQLite` and the vector index agree on which items exist; repair.
//! - [`short_term`] — the running task's context (lives in the run's checkpoint).
//! - [`triage`] — label + confidence from labelled examples; low confidence goes to the operator.
//! - [`import`] — files and directories into the knowledge base, with a skip report.

pub mod check;
pub mod chunk;
pub mod embed;
pub mod import;
pub mod kb;
pub mod retrieval;
pub mod search;
pub mod short_term;
pub mod triage;
pub mod vectors;
pub mod versions;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::core::clock::Clock;
use crate::core::error::{Error, Result};
use crate::core::store::Store;
use crate::core::workspace::Workspace;

pub use embed::{Embed, Embedder, EmbeddingVersion, ModelState};
pub use search::{Filters, Fusion, SearchHit, SearchParams};

/// `[memory]` in config.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Cosine similarity at or above which a new item is a near-duplicate of an old one.
    pub duplicate_threshold: f32,
    /// Largest text accepted by `add`, in bytes.
    pub max_text_bytes: usize,
    /// Time-to-live of task-state artifacts when none is given, in hours.
    pub task_ttl_hours: u64,
    /// Results returned by a search when `k` is not given.
    pub default_k: usize,
    /// How many candidates each retriever (vector, keyword) feeds into the fusion.
    pub candidates: usize,
    /// Trees per vector index (more: better recall, slower builds, larger files; 0 lets
    /// arroy grow trees until they hold as many nodes as there are items).
    pub n_trees: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            duplicate_threshold: 0.95,
            max_text_bytes: 1 << 20,
            task_ttl_hours: 72,
            default_k: 8,
            candidates: 50,
            n_trees: vectors::DEFAULT_TREES,
        }
    }
}

/// Which tier an item lives in (a protocol row). Short-term memory is not stored here (see
/// [`short_term`]).
pub use crate::protocol::Tier;

impl Tier {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Task => "task",
            Tier::Long => "long",
        }
    }
}

impl std::str::FromStr for Tier {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "task" => Ok(Tier::Task),
            "long" | "long-term" => Ok(Tier::Long),
            other => Err(Error::invalid(
                "tier",
                format!("{other:?} (expected task or long)"),
            )),
        }
    }
}

/// The memory subsystem: embedders (the first is current), the vector store, settings.
#[derive(Clone)]
pub struct Memory {
    pub(crate) embedders: Vec<Arc<dyn Embed>>,
    pub(crate) vectors: Arc<vectors::VectorStore>,
    pub config: MemoryConfig,
    pub(crate) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("embedding", &self.current_version().id())
            .field("vectors", &self.vectors)
            .finish_non_exhaustive()
    }
}

/// Opens the store and memory for a client that only reads (search, explain, stats, check).
/// Its one write is the idempotent registration of the embedding version, done here in the
/// core; clients write memory through the core handle.
pub fn open_for_reading(workspace: &Workspace) -> Result<(Store, Memory)> {
    let mut store = workspace.store()?;
    let memory = Memory::open(
        workspace,
        &mut store,
        Arc::new(crate::core::clock::SystemClock),
    )?;
    Ok((store, memory))
}

impl Memory {
    /// Opens memory for `workspace` with the process's shared model (loading in the
    /// background) and checks that `SQLite` and the vector index agree.
    pub fn open(workspace: &Workspace, store: &mut Store, clock: Arc<dyn Clock>) -> Result<Self> {
        let embedder: Arc<dyn Embed> = Arc::new(Embedder::shared()?);
        Self::with_embedders(
            &workspace.vectors_dir(),
            workspace.config.memory.clone(),
            store,
            vec![embedder],
            clock,
        )
    }

    /// Opens memory with explicit embedders (the first is current; others keep older
    /// versions queryable) over the vector directory `vectors_dir`.
    pub fn with_embedders(
        vectors_dir: &std::path::Path,
        config: MemoryConfig,
        store: &mut Store,
        embedders: Vec<Arc<dyn Embed>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        if embedders.is_empty() {
            return Err(Error::invalid("memory", "at least one embedder is needed"));
        }
        let memory = Memory {
            embedders,
            vectors: vectors::VectorStore::open(vectors_dir)?,
            config,
            clock,
        };
        memory.vectors.set_n_trees(memory.config.n_trees);
        versions::register(store, &memory.current_version(), memory.clock.now_ms())?;
        let report = check::check(store.conn(), &memory)?;
        if !report.is_consistent() {
            tracing::warn!(
                ?report,
                "memory: SQLite and the vector index disagree; run `keel memory check --repair`"
            );
        }
        Ok(memory)
    }

    /// The version new vectors are written with.
    #[must_use]
    pub fn current_version(&self) -> EmbeddingVersion {
        self.embedders[0].version()
    }

    /// The embedder for version id `id`, if one is loaded.
    #[must_use]
    pub fn embedder_for(&self, id: &str) -> Option<&Arc<dyn Embed>> {
        self.embedders.iter().find(|e| e.version().id() == id)
    }

    #[must_use]
    pub fn vectors(&self) -> &Arc<vectors::VectorStore> {
        &self.vectors
    }
}

/// Starts loading the shared embedding model in the background and forwards every state
/// change as `Event::ModelState` (for the core handle to call at startup, so the console
/// is usable at once and shows the model's progress).
pub fn forward_model_state(
    events: tokio::sync::broadcast::Sender<crate::protocol::Event>,
) -> Result<Embedder> {
    let embedder = Embedder::shared()?;
    embedder.on_state(move |state| {
        let _ = events.send(crate::protocol::Event::ModelState {
            state: state.label(),
        });
    });
    embedder.preload();
    Ok(embedder)
}
