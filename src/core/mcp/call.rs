//! [`call_tool`]: the MCP client's send. It resolves the tool (starting the server lazily),
//! checks the arguments against the tool's input schema, sends `tools/call` and bounds the
//! result. In keel it is called only by [`super::connector::McpConnector`], inside the
//! effects ledger and after the policy gate (see `crate::core::actions`): every MCP call a
//! person or an agent makes is an external action.

use serde::Serialize;
use serde_json::{Value, json};

use super::McpError;
use super::manager::Manager;
use super::tools::{McpToolPattern, ToolInfo};

#[derive(Debug, Clone, PartialEq)]
pub struct McpCall {
    pub server: String,
    pub tool: String,
    /// A JSON object (the tool's input schema is checked before anything is sent).
    pub arguments: Value,
}

impl McpCall {
    /// `mcp:SERVER/TOOL`: how policy rules and audit entries will name the action.
    #[must_use]
    pub fn action_name(&self) -> String {
        McpToolPattern {
            server: self.server.clone(),
            tool: Some(self.tool.clone()),
        }
        .to_string()
    }
}

/// A completed call.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct McpOutcome {
    pub server: String,
    pub tool: String,
    /// The server said the tool failed (`isError`): a result, not a transport error.
    pub is_error: bool,
    /// The text parts of the content, joined.
    pub text: String,
    /// The whole `CallToolResult` as the server sent it.
    pub result: Value,
    pub bytes: usize,
}

impl McpOutcome {
    /// What a model is given back: structured content if any, else the text.
    #[must_use]
    pub fn for_model(&self) -> Value {
        let mut v = json!({"server": self.server, "tool": self.tool, "is_error": self.is_error});
        match self
            .result
            .get("structuredContent")
            .filter(|s| !s.is_null())
        {
            Some(s) => v["structured"] = s.clone(),
            None => v["text"] = Value::String(self.text.clone()),
        }
        v
    }
}

/// Calls one MCP tool (see the module docs for who may).
pub fn call_tool(manager: &Manager, call: &McpCall) -> Result<McpOutcome, McpError> {
    let info: ToolInfo = manager.tool(&call.server, &call.tool)?;
    let Some(args) = call.arguments.as_object() else {
        return Err(bad_args(
            call,
            "the arguments must be one JSON object".into(),
        ));
    };
    let problems = info.argument_problems(&call.arguments);
    if !problems.is_empty() {
        return Err(bad_args(call, problems.join("; ")));
    }
    let raw = manager.invoke(&call.server, &call.tool, args.clone())?;
    shape(
        call,
        raw,
        manager.server(&call.server)?.cfg.max_result_bytes,
    )
}

fn bad_args(call: &McpCall, message: String) -> McpError {
    McpError::BadArguments {
        server: call.server.clone(),
        tool: call.tool.clone(),
        message,
    }
}

/// Bounds and summarises a `CallToolResult`.
fn shape(call: &McpCall, result: Value, limit: usize) -> Result<McpOutcome, McpError> {
    let bytes = result.to_string().len();
    if bytes > limit {
        return Err(McpError::TooLarge {
            server: call.server.clone(),
            tool: call.tool.clone(),
            bytes,
            limit,
        });
    }
    let text = result["content"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| match p["type"].as_str() {
                    Some("text") => p["text"].as_str().map(str::to_string),
                    Some(other) => Some(format!("[{other} content]")),
                    None => None,
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    Ok(McpOutcome {
        server: call.server.clone(),
        tool: call.tool.clone(),
        is_error: result["isError"].as_bool().unwrap_or(false),
        text,
        result,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> McpCall {
        McpCall {
            server: "fs".into(),
            tool: "read".into(),
            arguments: json!({}),
        }
    }

    #[test]
    fn big_results_are_refused_naming_the_server() {
        let big = json!({"content": [{"type": "text", "text": "x".repeat(5000)}]});
        let err = shape(&call(), big, 1000).unwrap_err().to_string();
        assert!(
            err.contains("\"fs\"") && err.contains("max_result_bytes"),
            "{err}"
        );
    }

    #[test]
    fn text_parts_are_joined() {
        let r = json!({"content": [{"type": "text", "text": "a"}, {"type": "image", "data": ""}, {"type": "text", "text": "b"}]});
        let out = shape(&call(), r, 10_000).unwrap();
        assert_eq!(out.text, "a\n[image content]\nb");
        assert_eq!(call().action_name(), "mcp:fs/read");
    }
}
