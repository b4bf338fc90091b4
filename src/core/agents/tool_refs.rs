//! A role's `[tools] allowed` list: keel's own tools by name and MCP tools as
//! `mcp:SERVER/TOOL` or `mcp:SERVER/*`. `tools = [...]` (a bare list) is read the same.
//! It is written back as `{allowed: [...]}` in the given order, so the template hash of a
//! role without MCP tools is what it was before MCP existed.

use serde::{Deserialize, Serialize};

use super::tools::ToolName;
use crate::core::mcp::McpToolPattern;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawTools", into = "RawTools")]
pub struct ToolsSpec {
    pub allowed: Vec<ToolName>,
    /// MCP tools the role opts into; the model is offered exactly these.
    pub mcp: Vec<McpToolPattern>,
    /// The entries as written (kept for the hash and for display).
    written: Vec<String>,
}

impl ToolsSpec {
    /// Whether `server`'s `tool` is opted into.
    #[must_use]
    pub fn allows_mcp(&self, server: &str, tool: &str) -> bool {
        self.mcp.iter().any(|p| p.matches(server, tool))
    }

    /// The entries as written, for the system prompt.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.written
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum RawTools {
    Table { allowed: Vec<String> },
    List(Vec<String>),
}

impl TryFrom<RawTools> for ToolsSpec {
    type Error = String;

    fn try_from(raw: RawTools) -> Result<Self, String> {
        let (RawTools::Table { allowed: written } | RawTools::List(written)) = raw;
        let mut spec = ToolsSpec {
            allowed: Vec::new(),
            mcp: Vec::new(),
            written: written.clone(),
        };
        for entry in &written {
            if let Some(pattern) = McpToolPattern::parse(entry) {
                spec.mcp.push(pattern?);
            } else if let Some(tool) = ToolName::parse(entry) {
                spec.allowed.push(tool);
            } else {
                let known: Vec<&str> = ToolName::ALL.iter().map(|t| t.as_str()).collect();
                return Err(format!(
                    "unknown tool {entry:?}; keel's tools are {}, and MCP tools are written mcp:SERVER/TOOL or mcp:SERVER/*",
                    known.join(", ")
                ));
            }
        }
        Ok(spec)
    }
}

impl From<ToolsSpec> for RawTools {
    fn from(spec: ToolsSpec) -> Self {
        RawTools::Table {
            allowed: spec.written,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_and_mcp_entries_split() {
        let spec: ToolsSpec = serde_json::from_value(
            serde_json::json!({"allowed": ["memory_search", "mcp:fetch/fetch", "mcp:git/*"]}),
        )
        .unwrap();
        assert_eq!(spec.allowed, vec![ToolName::MemorySearch]);
        assert!(spec.allows_mcp("git", "log") && spec.allows_mcp("fetch", "fetch"));
        assert!(!spec.allows_mcp("fetch", "other"));
        let back = serde_json::to_value(&spec).unwrap();
        assert_eq!(back["allowed"][1], "mcp:fetch/fetch");
        let list: ToolsSpec = serde_json::from_value(serde_json::json!(["mcp:time/*"])).unwrap();
        assert!(list.allows_mcp("time", "get_current_time"));
    }

    #[test]
    fn unknown_entries_are_named() {
        let err = serde_json::from_value::<ToolsSpec>(serde_json::json!({"allowed": ["rm_rf"]}))
            .unwrap_err();
        assert!(err.to_string().contains("rm_rf"), "{err}");
    }
}
