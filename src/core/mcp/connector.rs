//! MCP tools as a [`Connector`]: every MCP call is an external action, so it reaches a server
//! only through the effects ledger (key written before the send, result stored, a resume
//! reuses it) after the policy gate has decided. The connector is the only product code that
//! sends `tools/call` (through [`call_tool`]).
//!
//! Actions are named `mcp:SERVER/TOOL`. What the policy sees about one comes from the tool's
//! annotations ([`ToolHints`]): read-only tools are reversible (nothing to undo), everything
//! else is irreversible. After a crash between sending and recording, an idempotent tool is
//! sent again with the same key; any other is escalated, never blindly sent again.

use std::sync::Arc;

use serde_json::{Value, json};

use super::McpError;
use super::call::{McpCall, call_tool};
use super::manager::Manager;
use super::tools::{McpToolPattern, ToolHints, ToolInfo};
use crate::core::effects::{ActionSpec, Connector, ConnectorError, Reversibility};

/// The connector name the ledger records for MCP calls.
pub const CONNECTOR: &str = "mcp";

/// One MCP tool, resolved and checked, ready for the gate.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub spec: ActionSpec,
    pub hints: ToolHints,
    pub info: ToolInfo,
}

pub struct McpConnector {
    manager: Arc<Manager>,
}

impl std::fmt::Debug for McpConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpConnector").finish_non_exhaustive()
    }
}

/// `mcp:SERVER/TOOL` split, or None for anything else.
#[must_use]
pub fn parse_action(action: &str) -> Option<(String, String)> {
    match McpToolPattern::parse(action)? {
        Ok(McpToolPattern {
            server,
            tool: Some(tool),
        }) => Some((server, tool)),
        _ => None,
    }
}

impl McpConnector {
    #[must_use]
    pub fn new(manager: Arc<Manager>) -> Self {
        McpConnector { manager }
    }

    #[must_use]
    pub fn manager(&self) -> &Arc<Manager> {
        &self.manager
    }

    /// Resolves `action` (starting its server if needed) and checks `args` against the
    /// tool's input schema, before anything is written to the ledger: a call refused here
    /// was never sent.
    pub fn prepare(&self, action: &str, args: &Value) -> Result<Prepared, McpError> {
        let (server, tool) = parse_action(action).ok_or_else(|| McpError::Protocol {
            server: action.to_string(),
            message: "an MCP action is named mcp:SERVER/TOOL".into(),
        })?;
        let info = self.manager.tool(&server, &tool)?;
        let bad = |message: String| McpError::BadArguments {
            server: server.clone(),
            tool: tool.clone(),
            message,
        };
        if !args.is_object() {
            return Err(bad("the arguments must be one JSON object".into()));
        }
        let problems = info.argument_problems(args);
        if !problems.is_empty() {
            return Err(bad(problems.join("; ")));
        }
        let hints = info.hints();
        let spec = ActionSpec {
            name: action.to_string(),
            reversibility: if hints.read_only {
                Reversibility::Reversible
            } else {
                Reversibility::Irreversible
            },
            compensation: None,
            description: describe(&info, hints),
        };
        Ok(Prepared { spec, hints, info })
    }
}

/// One line for the approval card: what the tool is and what its server says about it.
fn describe(info: &ToolInfo, hints: ToolHints) -> String {
    let mut marks = Vec::new();
    if hints.read_only {
        marks.push("read-only");
    }
    if hints.destructive {
        marks.push("destructive");
    }
    if hints.idempotent {
        marks.push("idempotent");
    }
    if hints.open_world {
        marks.push("external");
    }
    if info.annotations.is_null() {
        marks.push("no annotations");
    }
    let first_line = info.description.lines().next().unwrap_or_default();
    format!(
        "MCP tool {}/{} [{}] {first_line}",
        info.server,
        info.name,
        marks.join(", ")
    )
    .trim_end()
    .to_string()
}

fn connector_error(e: &McpError) -> ConnectorError {
    let target = format!("mcp:{}", e.server());
    let message = e.to_string();
    match *e {
        McpError::Start { .. }
        | McpError::Crashed { .. }
        | McpError::BackingOff { .. }
        | McpError::Timeout { .. } => ConnectorError::Transient { target, message },
        _ => ConnectorError::Permanent { target, message },
    }
}

impl Connector for McpConnector {
    fn name(&self) -> &str {
        CONNECTOR
    }

    /// MCP actions are named by the servers' tool lists, resolved with [`Self::prepare`].
    fn actions(&self) -> Vec<ActionSpec> {
        Vec::new()
    }

    fn perform(&self, action: &str, args: &Value, _key: &str) -> Result<Value, ConnectorError> {
        let (server, tool) = parse_action(action).ok_or_else(|| ConnectorError::Permanent {
            target: action.to_string(),
            message: "not an MCP action".into(),
        })?;
        let call = McpCall {
            server,
            tool,
            arguments: args.clone(),
        };
        match call_tool(&self.manager, &call) {
            Ok(outcome) => Ok(json!(outcome)),
            // The call was made and applied; only its answer is unusable. Recorded as done
            // (never sent again) with the error the model and operator are shown.
            Err(e @ McpError::TooLarge { .. }) => Ok(json!({
                "server": call.server, "tool": call.tool, "is_error": true,
                "text": e.to_string(), "result": Value::Null, "bytes": 0})),
            Err(e) => Err(connector_error(&e)),
        }
    }

    /// MCP has no way to ask a server whether an earlier call arrived. An idempotent tool
    /// is safe to send again; for any other the operator decides.
    fn lookup(
        &self,
        action: &str,
        _args: &Value,
        _key: &str,
    ) -> Result<Option<Value>, ConnectorError> {
        let permanent = |message: String| ConnectorError::Permanent {
            target: action.to_string(),
            message,
        };
        let (server, tool) =
            parse_action(action).ok_or_else(|| permanent("not an MCP action".into()))?;
        let info = self
            .manager
            .tool(&server, &tool)
            .map_err(|e| connector_error(&e))?;
        if info.hints().idempotent {
            return Ok(None);
        }
        Err(permanent(format!(
            "{action} is not marked idempotent and MCP cannot tell whether the earlier call arrived; check the server, then retry or cancel the task"
        )))
    }

    fn compensate(
        &self,
        action: &str,
        _args: &Value,
        _result: &Value,
        _key: &str,
    ) -> Result<Value, ConnectorError> {
        Err(ConnectorError::Permanent {
            target: action.to_string(),
            message: "MCP tools have no undo in keel".into(),
        })
    }
}
