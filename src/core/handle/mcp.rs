//! `Op::CallMcpTool`: the operator's call of an MCP tool by hand, through policy, the
//! effects ledger and the audit log ([`crate::core::mcp::operator`]).

use crate::core::audit::Actor;
use crate::core::error::{Error, Result};
use crate::core::mcp::operator::{self, Approval, LedgerSlot};
use crate::core::mcp::{McpCall, McpConnector, manager};
use crate::protocol::{Answer, McpCalled};

use super::CoreContext;

pub fn call(
    ctx: &mut CoreContext,
    server: String,
    tool: String,
    arguments: serde_json::Value,
    approve: bool,
) -> Result<Answer> {
    let manager = manager::for_workspace(&ctx.workspace).ok_or_else(|| {
        Error::invalid(
            "MCP call",
            "no MCP servers are configured (add [mcp.servers.NAME] to config.toml)",
        )
    })?;
    let connector = McpConnector::new(manager);
    // Every call by hand is a call of its own: its ledger step is the moment it was asked.
    let step = format!("by-hand:{}", crate::core::ids::new_id());
    let call = McpCall {
        server,
        tool,
        arguments,
    };
    let approval = Approval::Operator { approve };
    let done = operator::call(
        &mut ctx.store,
        ctx.clock.as_ref(),
        &Actor::Operator,
        "operator",
        &connector,
        &call,
        &approval,
        LedgerSlot {
            task: "operator",
            step: &step,
        },
    )?;
    ctx.notify(&format!("effect/{}", done.effect), "mcp.call");
    ctx.notify("audit", "mcp.call");
    let o = done.outcome;
    Ok(Answer::McpCalled(Box::new(McpCalled {
        server: o.server,
        tool: o.tool,
        is_error: o.is_error,
        text: o.text,
        result: o.result,
        bytes: o.bytes,
        effect: done.effect,
        rule: done.rule,
    })))
}
