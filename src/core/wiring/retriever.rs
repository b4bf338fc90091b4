//! [`MemoryRetriever`] over vector memory: `memory::retrieval::retrieve` (hybrid search,
//! recorded with provenance under the run's id, so `Query::MemoryUsed` and `keel memory
//! explain` show it). Filters come from the role's memory scope.
//!
//! Without the embedding model (not fetched, or failed to load) the search falls back to
//! keyword-only and says so in the recorded parameters: a run never fails for want of the
//! model, and the demo works on a machine that has not fetched it.

use std::sync::Mutex;

use serde_json::json;

use crate::core::agents::template::MemoryTier;
use crate::core::agents::tools::{MemoryRetriever, MemorySlice, Retrieval, RetrievalRequest};
use crate::core::error::{Error, Result};
use crate::core::memory::search::{Filters, Fusion, SearchParams};
use crate::core::memory::{Memory, Tier, retrieval};
use crate::core::store::Store;

pub struct VectorRetriever {
    store: Mutex<Store>,
    memory: Memory,
    run: String,
}

impl VectorRetriever {
    /// Retrieves for `run` (its provenance rows carry that id).
    #[must_use]
    pub fn new(store: Store, memory: Memory, run: &str) -> Self {
        VectorRetriever {
            store: Mutex::new(store),
            memory,
            run: run.to_string(),
        }
    }

    fn params(&self, req: &RetrievalRequest, tiers: Vec<Tier>, fusion: Fusion) -> SearchParams {
        SearchParams {
            k: req.k.max(1),
            candidates: self.memory.config.candidates.max(req.k),
            fusion,
            filters: Filters {
                kinds: req.kinds.clone(),
                tiers,
                ..Filters::default()
            },
            ..SearchParams::default()
        }
    }
}

/// The stored tiers a role's memory scope covers (short-term lives in the run itself).
fn stored_tiers(tiers: &[MemoryTier]) -> Vec<Tier> {
    let mut out: Vec<Tier> = tiers
        .iter()
        .filter_map(|t| match t {
            MemoryTier::ShortTerm => None,
            MemoryTier::TaskState => Some(Tier::Task),
            MemoryTier::LongTerm => Some(Tier::Long),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

impl MemoryRetriever for VectorRetriever {
    fn retrieve(&self, req: &RetrievalRequest) -> Result<Retrieval> {
        let tiers = stored_tiers(&req.tiers);
        if tiers.is_empty() || req.query.trim().is_empty() {
            return Ok(Retrieval {
                slices: Vec::new(),
                params: json!({"retriever": "memory", "skipped": "no stored tier in scope or empty query",
                    "tiers": req.tiers}),
            });
        }
        let mut store = self
            .store
            .lock()
            .map_err(|_| Error::Other("the retriever's store lock is poisoned".into()))?;
        let hybrid = self.params(req, tiers.clone(), Fusion::Rrf);
        let (recorded, fallback) =
            match retrieval::retrieve(&mut store, &self.memory, &self.run, &req.query, &hybrid) {
                Ok(r) => (r, None),
                Err(e) => {
                    // Most often the model is missing; keyword search still answers.
                    tracing::warn!(run = %self.run, error = %e,
                        "vector retrieval failed; falling back to keyword-only");
                    let keyword = self.params(req, tiers, Fusion::KeywordOnly);
                    let r = retrieval::retrieve(
                        &mut store,
                        &self.memory,
                        &self.run,
                        &req.query,
                        &keyword,
                    )?;
                    (r, Some(format!("keyword-only: {e}")))
                }
            };
        let slices = recorded
            .hits
            .iter()
            .map(|h| MemorySlice {
                item: h.item.clone(),
                version: h.item_version,
                kind: h.kind.clone(),
                score: h.score,
                text: h.preview.clone(),
            })
            .collect();
        Ok(Retrieval {
            slices,
            params: json!({
                "retriever": "memory",
                "retrieval": recorded.id,
                "embedding": recorded.embedding,
                "search": recorded.params,
                "fallback": fallback,
            }),
        })
    }
}
