//! MCP results kept in memory (`remember = true` on a server): each result an agent gets is
//! stored as a task-tier memory item of kind [`KIND`] with its provenance: the source
//! `mcp:SERVER/TOOL`, tags naming the server, the tool and the arguments' hash, and the time
//! it was stored. Roles retrieve them by adding the kind to their memory scope.

use serde_json::Value;

use super::call::McpOutcome;
use crate::core::memory::Tier;
use crate::core::memory::kb::NewItem;

/// The memory kind of kept MCP results.
pub const KIND: &str = "mcp_result";

/// Longest text kept from one result (the ledger keeps the whole result).
const MAX_TEXT: usize = 20_000;

/// The memory item for `outcome` of a call with `arguments` in `run`, or None when there is
/// nothing to keep (an error, an empty answer).
#[must_use]
pub fn item(outcome: &McpOutcome, arguments: &Value, run: &str) -> Option<NewItem> {
    let text = match outcome
        .result
        .get("structuredContent")
        .filter(|s| !s.is_null())
    {
        Some(s) if outcome.text.trim().is_empty() => s.to_string(),
        _ => outcome.text.clone(),
    };
    if outcome.is_error || text.trim().is_empty() {
        return None;
    }
    let cut = text.floor_char_boundary(MAX_TEXT);
    let hash = crate::core::canonical::hash_value(arguments);
    Some(NewItem {
        text: text[..cut].to_string(),
        kind: KIND.into(),
        tier: Some(Tier::Task),
        source: format!("mcp:{}/{}", outcome.server, outcome.tool),
        object: None,
        tags: vec![
            "mcp".into(),
            format!("server:{}", outcome.server),
            format!("tool:{}", outcome.tool),
            format!("args:{}", &hash[..hash.len().min(16)]),
        ],
        run_id: Some(run.to_string()),
        ttl_ms: None,
        allow_duplicate: false,
    })
}
