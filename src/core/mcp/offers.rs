//! MCP tools for agent runs: what a role's `mcp:` entries offer the model, how a call is
//! named in the gate and the ledger, and what the model is told back. Used by the tool
//! hosts, which send every call through the policy gate and the effects ledger.

use std::collections::BTreeSet;

use serde_json::Value;

use super::call::McpOutcome;
use super::manager::Manager;
use super::tools::{McpToolPattern, model_name};
use crate::core::agents::tools::{McpOffer, ToolError};

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

/// The step name an agent's MCP call has in the gate and the ledger. A read-only call is
/// keyed to its run and step (reading again later is a new read); any other call is keyed to
/// the task and its arguments only, so a retried task that asks for the same change again
/// finds it done instead of making it twice.
#[must_use]
pub fn gate_step(run: &str, step: i64, read_only: bool) -> String {
    if read_only {
        format!("mcp@{run}#{step}")
    } else {
        "mcp".into()
    }
}

/// What the model is told about a call the ledger recorded: the result, or the tool's own
/// failure (`isError`) as an error naming the tool.
pub fn for_model(server: &str, tool: &str, recorded: Value) -> Result<Value, ToolError> {
    let outcome: McpOutcome = serde_json::from_value(recorded).map_err(|e| {
        ToolError::Failed(format!(
            "MCP tool {server}/{tool}: the recorded result is unreadable: {e}"
        ))
    })?;
    if outcome.is_error {
        return Err(ToolError::Failed(format!(
            "MCP tool {server}/{tool} reported an error: {}",
            outcome.text
        )));
    }
    Ok(outcome.for_model())
}
