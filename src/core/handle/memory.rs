//! `Query::MemorySearch`: hybrid search over memory, each hit with its provenance. Memory
//! (the embedder and the vector index) is opened on the first search and kept.

use crate::core::error::Result;
use crate::core::memory::kb;
use crate::core::memory::search::{self, Filters, Fusion, SearchParams};
use crate::protocol::{Answer, MemoryHitRow, MemoryHits};

use super::CoreContext;

pub fn search(
    ctx: &mut CoreContext,
    text: &str,
    kinds: Vec<String>,
    k: Option<usize>,
) -> Result<Answer> {
    let memory = ctx.memory()?;
    let params = SearchParams {
        k: k.unwrap_or(memory.config.default_k).max(1),
        candidates: memory.config.candidates,
        search_k: None,
        fusion: Fusion::Rrf,
        filters: Filters {
            kinds,
            ..Filters::default()
        },
        embedding: None,
    };
    let found = search::search(ctx.store.conn(), &memory, text, &params)?;
    let mut hits = Vec::with_capacity(found.hits.len());
    for h in found.hits {
        // An item forgotten between the search and this read is simply left out.
        let Some(item) = kb::get(ctx.store.conn(), &h.item)? else {
            continue;
        };
        hits.push(MemoryHitRow {
            rank: h.rank,
            item: h.item,
            item_version: h.item_version,
            kind: h.kind,
            tier: h.tier,
            score: h.score,
            preview: h.preview,
            source: item.source,
            object: item.object,
            tags: item.tags,
            run: item.run_id,
            created_ms: item.created_ms,
            updated_ms: item.updated_ms,
        });
    }
    Ok(Answer::MemorySearch(Box::new(MemoryHits {
        embedding: found.embedding,
        hits,
    })))
}
