//! The tools a server offers, as cached after its start: name, description, input schema
//! (compiled once; a schema that is not valid JSON Schema marks the tool unusable instead of
//! failing the server) and annotations. Also `mcp:SERVER/TOOL` patterns and the names models
//! see (`mcp__SERVER__TOOL`: providers accept only `[A-Za-z0-9_-]{1,64}`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::core::llm::ToolSpec;

#[derive(Clone)]
pub struct ToolInfo {
    pub server: String,
    pub name: String,
    pub description: String,
    pub input_schema: Value,
    /// The server's hints (`readOnlyHint`, `destructiveHint`, …) as sent; `Null` when none.
    pub annotations: Value,
    /// Why the input schema is unusable, when it is.
    pub schema_error: Option<String>,
    pub(crate) validator: Option<Arc<jsonschema::Validator>>,
}

impl std::fmt::Debug for ToolInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolInfo")
            .field("server", &self.server)
            .field("name", &self.name)
            .field("schema_error", &self.schema_error)
            .finish_non_exhaustive()
    }
}

impl ToolInfo {
    /// The server says the tool only reads (`readOnlyHint`) and does not say it destroys.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.hints().read_only
    }

    /// The server's hints read with the protocol's defaults for the ones it leaves out
    /// (not read-only, destructive, not idempotent, open world): a tool that says nothing
    /// is treated as the most dangerous kind.
    #[must_use]
    pub fn hints(&self) -> ToolHints {
        let hint = |name: &str, default: bool| self.annotations[name].as_bool().unwrap_or(default);
        let destructive = hint("destructiveHint", true);
        let read_only = hint("readOnlyHint", false) && self.annotations["destructiveHint"] != true;
        ToolHints {
            read_only,
            destructive: !read_only && destructive,
            idempotent: read_only || hint("idempotentHint", false),
            open_world: hint("openWorldHint", true),
        }
    }

    /// Builds the entry from the tool as the server listed it (rmcp's `Tool`, as JSON).
    #[must_use]
    pub fn from_listed(server: &str, tool: &Value) -> Self {
        let name = tool["name"].as_str().unwrap_or_default().to_string();
        let input_schema = tool["inputSchema"].clone();
        let (validator, schema_error) = match compile(&input_schema) {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        ToolInfo {
            server: server.to_string(),
            description: tool["description"].as_str().unwrap_or_default().to_string(),
            annotations: tool["annotations"].clone(),
            input_schema,
            schema_error,
            validator,
            name,
        }
    }

    /// Up to three problems of `args` against the input schema (empty when they fit).
    #[must_use]
    pub fn argument_problems(&self, args: &Value) -> Vec<String> {
        self.validator.as_ref().map_or_else(Vec::new, |v| {
            crate::core::agents::schemas::errors(v, args, 3)
        })
    }

    /// The spec a model is offered under `model_name`.
    #[must_use]
    pub fn spec(&self, model_name: &str) -> ToolSpec {
        ToolSpec {
            name: model_name.to_string(),
            description: format!("[MCP {}/{}] {}", self.server, self.name, self.description),
            parameters: self.input_schema.clone(),
        }
    }

    /// What `keel mcp tools` prints and the JSON output carries.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "server": self.server,
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "annotations": self.annotations,
            "schema_error": self.schema_error,
        })
    }
}

/// A tool's annotations as keel acts on them (see [`ToolInfo::hints`]). They only ever set
/// defaults: the operator's policy rules decide first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[allow(clippy::struct_excessive_bools)] // the four hints of the MCP spec, one flag each
pub struct ToolHints {
    /// Changes nothing: allowed without approval unless a rule says otherwise.
    pub read_only: bool,
    /// May destroy or overwrite: irreversible, approval required by default.
    pub destructive: bool,
    /// Calling it again with the same arguments changes nothing more: after a crash between
    /// sending and recording it is sent again (same key) instead of escalated.
    pub idempotent: bool,
    /// Reaches beyond the server's own data (the web, other services): marked external.
    pub open_world: bool,
}

fn compile(schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
    if !schema.is_object() {
        return Err(format!("expected a JSON object, got {schema}"));
    }
    if schema.get("type").is_some_and(|t| t != "object") {
        return Err(format!(
            "MCP tool inputs are objects, but the schema's type is {}",
            schema["type"]
        ));
    }
    jsonschema::validator_for(schema)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// `mcp:SERVER/TOOL` or `mcp:SERVER/*` as a role lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct McpToolPattern {
    pub server: String,
    /// `None` for `*` (every tool of the server).
    pub tool: Option<String>,
}

impl McpToolPattern {
    pub const PREFIX: &'static str = "mcp:";

    /// Parses `mcp:SERVER/TOOL`; `None` when `text` does not start with `mcp:`.
    pub fn parse(text: &str) -> Option<Result<Self, String>> {
        let rest = text.strip_prefix(Self::PREFIX)?;
        let Some((server, tool)) = rest.split_once('/') else {
            return Some(Err(format!(
                "{text:?}: write mcp:SERVER/TOOL or mcp:SERVER/* (a server alone is not enough)"
            )));
        };
        if server.is_empty() || tool.is_empty() {
            return Some(Err(format!(
                "{text:?}: the server and the tool must not be empty"
            )));
        }
        Some(Ok(McpToolPattern {
            server: server.to_string(),
            tool: (tool != "*").then(|| tool.to_string()),
        }))
    }

    #[must_use]
    pub fn matches(&self, server: &str, tool: &str) -> bool {
        self.server == server && self.tool.as_deref().is_none_or(|t| t == tool)
    }
}

impl std::fmt::Display for McpToolPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}/{}",
            Self::PREFIX,
            self.server,
            self.tool.as_deref().unwrap_or("*")
        )
    }
}

/// The name a model calls `server`'s `tool` by: `mcp__SERVER__TOOL`, other characters as
/// `_`, and a hash suffix when that would pass 64 characters.
#[must_use]
pub fn model_name(server: &str, tool: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let name = format!("mcp__{}__{}", clean(server), clean(tool));
    if name.len() <= 64 {
        return name;
    }
    let hash = crate::core::canonical::hash_value(&json!([server, tool]));
    format!("{}_{}", &name[..51], &hash[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_and_match() {
        let all = McpToolPattern::parse("mcp:git/*").unwrap().unwrap();
        assert!(all.matches("git", "status") && !all.matches("fetch", "status"));
        let one = McpToolPattern::parse("mcp:fetch/fetch").unwrap().unwrap();
        assert!(one.matches("fetch", "fetch") && !one.matches("fetch", "other"));
        assert_eq!(one.to_string(), "mcp:fetch/fetch");
        assert!(McpToolPattern::parse("memory_search").is_none());
        assert!(McpToolPattern::parse("mcp:git").unwrap().is_err());
    }

    #[test]
    fn model_names_fit_providers() {
        assert_eq!(
            model_name("time", "get_current_time"),
            "mcp__time__get_current_time"
        );
        assert_eq!(model_name("fs", "read.file"), "mcp__fs__read_file");
        let long = model_name("server", &"x".repeat(80));
        assert!(long.len() <= 64, "{long}");
    }

    #[test]
    fn an_invalid_schema_marks_the_tool() {
        let t = ToolInfo::from_listed(
            "bad",
            &json!({"name": "t", "inputSchema": {"type": "object", "properties": {"a": {"type": 12}}}}),
        );
        assert!(t.schema_error.is_some());
        let ok = ToolInfo::from_listed(
            "good",
            &json!({"name": "t", "inputSchema": {"type": "object", "required": ["a"]}}),
        );
        assert!(ok.schema_error.is_none());
        assert!(!ok.argument_problems(&json!({})).is_empty());
    }
}
