//! MCP calls made outside a queued task: the operator's `keel mcp call`, and agent runs
//! outside the queue (`keel agents run`), which have no approval card to wait on. Each call
//! still passes the workspace's policy (a denial is final; a tool that needs approval runs
//! only when the operator approves it here and now), the effects ledger and the audit log.
//! Queued runs take the full gate instead (`crate::core::actions::perform_gated`).

use serde_json::json;

use super::McpError;
use super::call::{McpCall, McpOutcome};
use super::connector::McpConnector;
use crate::core::audit::{self, Actor};
use crate::core::clock::Clock;
use crate::core::effects::ledger;
use crate::core::error::{Error, Result};
use crate::core::policy::{ActionRequest, Outcome, Policy, engine};
use crate::core::store::Store;

/// Who stands behind a direct call, and whether they approve what needs approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// The operator by hand; `approve` (`keel mcp call --yes`) approves anything the policy
    /// does not deny.
    Operator { approve: bool },
    /// An agent run outside the queue: nobody can approve now, so only what the policy
    /// allows outright runs.
    OutsideQueue,
}

/// Where the call's ledger row is filed: its key is derived from these and the arguments.
#[derive(Debug, Clone, Copy)]
pub struct LedgerSlot<'a> {
    pub task: &'a str,
    pub step: &'a str,
}

/// The outcome of a direct call, with the ledger key and the deciding rule.
#[derive(Debug, Clone)]
pub struct Direct {
    pub outcome: McpOutcome,
    pub effect: String,
    pub rule: String,
}

/// Calls `call` for `agent` (a role, or `operator`) through policy, ledger and audit.
#[allow(clippy::too_many_arguments)] // the store, who, what, and where the ledger files it
pub fn call(
    store: &mut Store,
    clock: &dyn Clock,
    actor: &Actor,
    agent: &str,
    connector: &McpConnector,
    call: &McpCall,
    approval: &Approval,
    slot: LedgerSlot<'_>,
) -> Result<Direct> {
    let action = format!("mcp:{}/{}", call.server, call.tool);
    let prepared = connector
        .prepare(&action, &call.arguments)
        .map_err(Error::wrap)?;
    let policy = Policy::load(connector.manager().root())?;
    let req = ActionRequest::for_action(agent, &prepared.spec, "");
    let now = clock.now_ms();
    let decision = engine::evaluate(&policy, &req, now, store.conn(), store.conn())?;
    let approved_here = decision.outcome == Outcome::RequireApproval
        && *approval == Approval::Operator { approve: true };
    store.write(|tx| {
        audit::append(
            tx,
            now,
            actor,
            "policy.decide",
            &format!("action/{action}"),
            &json!({"request": req, "outcome": decision.outcome.as_str(), "rule": decision.rule,
                    "reason": decision.reason, "policy": policy.source.display().to_string(),
                    "approved_by_operator_at_call": approved_here}),
        )?;
        Ok(())
    })?;
    match decision.outcome {
        Outcome::Deny => {
            return Err(Error::invalid(
                "MCP call",
                format!(
                    "{action} denied by policy rule {}: {}",
                    decision.rule, decision.reason
                ),
            ));
        }
        Outcome::RequireApproval if !approved_here => {
            let how = match approval {
                Approval::Operator { .. } => "run it again with --yes to approve it yourself",
                Approval::OutsideQueue => {
                    "a run outside the task queue cannot wait for approval: submit the task to the queue instead"
                }
            };
            return Err(Error::invalid(
                "MCP call",
                format!(
                    "{action} needs approval (rule {}: {}); {how}",
                    decision.rule, decision.reason
                ),
            ));
        }
        _ => {}
    }
    let request = ledger::Request {
        task: slot.task,
        step: slot.step,
        action: &action,
        args: &call.arguments,
    };
    let effect = ledger::key(slot.task, slot.step, &call.arguments);
    let value = ledger::perform(store, clock, actor, connector, request)
        .map_err(|e| Error::failed(format!("MCP call {action}"), e))?;
    let outcome: McpOutcome = serde_json::from_value(value).map_err(|e| {
        Error::wrap(McpError::Protocol {
            server: call.server.clone(),
            message: format!("the recorded result of {} is unreadable: {e}", call.tool),
        })
    })?;
    Ok(Direct {
        outcome,
        effect,
        rule: decision.rule,
    })
}
