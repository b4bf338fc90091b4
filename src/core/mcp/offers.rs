//! MCP tools for agent runs: what a role's `mcp:` entries offer the model, and a model's
//! call turned into an [`McpCall`] through [`call_tool`]. Used by the tool hosts.

use std::collections::BTreeSet;

use serde_json::Value;

use super::call::{Caller, McpCall, call_tool};
use super::manager::Manager;
use super::tools::{McpToolPattern, model_name};
use crate::core::agents::tools::{CallContext, McpOffer, ToolError};

/// The tools of every server the patterns name that match them. A server that cannot start
/// and a tool whose schema is unusable are left out, with a warning in the log naming them;
/// the run goes on with the rest.
#[must_use]
pub fn offers(manager: &Manager, patterns: &[McpToolPattern]) -> Vec<McpOffer> {
    let servers: BTreeSet<&str> = patterns.iter().map(|p| p.server.as_str()).collect();
    let mut out = Vec::new();
    for server in servers {
        let tools = match manager.tools(server) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(target: "keel::mcp", server, "MCP tools not offered: {e}");
                continue;
            }
        };
        for t in tools
            .iter()
            .filter(|t| patterns.iter().any(|p| p.matches(server, &t.name)))
        {
            if let Some(e) = &t.schema_error {
                tracing::warn!(target: "keel::mcp", server, tool = %t.name, "MCP tool not offered: its input schema is not valid JSON Schema: {e}");
                continue;
            }
            out.push(McpOffer {
                server: server.to_string(),
                tool: t.name.clone(),
                spec: t.spec(&model_name(server, &t.name)),
            });
        }
    }
    out
}

/// An agent's call of an offered tool. A tool that reports failure (`isError`) is an error
/// the model is told about; so is every server problem, naming the server.
pub fn agent_call(
    manager: &Manager,
    cx: &CallContext,
    server: &str,
    tool: &str,
    args: &Value,
) -> Result<Value, ToolError> {
    let call = McpCall {
        server: server.to_string(),
        tool: tool.to_string(),
        arguments: args.clone(),
        caller: Caller::Agent {
            run: cx.run.clone(),
            task: cx.task.clone(),
            role: cx.role.clone(),
            step: cx.step,
        },
    };
    let outcome = call_tool(manager, &call).map_err(|e| ToolError::Failed(e.to_string()))?;
    if outcome.is_error {
        return Err(ToolError::Failed(format!(
            "MCP tool {server}/{tool} reported an error: {}",
            outcome.text
        )));
    }
    Ok(outcome.for_model())
}
