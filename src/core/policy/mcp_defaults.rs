//! Defaults for MCP tools (`mcp:SERVER/TOOL`), from the tool's annotations: a read-only tool
//! (declared `reversible`) may run on its own, anything else waits for the operator. They
//! only tighten: a rule that names MCP tools (`action = "mcp:…"`) is the operator's own
//! choice for them and decides as written; any other rule, and the fallback, can be made
//! stricter by the defaults, never looser. A server cannot widen what the operator allowed.

use super::engine::Decision;
use super::request::ActionRequest;
use super::rules::{ExpiryOutcome, Outcome, PolicyFile};
use crate::core::effects::Reversibility;

/// The rule id recorded when a tool's annotations asked for approval.
pub const ANNOTATIONS_RULE: &str = "mcp-annotations";

const PREFIX: &str = "mcp:";

/// `decision` for `req`, tightened by the MCP defaults where they apply.
#[must_use]
pub fn apply(file: &PolicyFile, req: &ActionRequest, decision: Decision) -> Decision {
    if !req.action.starts_with(PREFIX) || decision.outcome != Outcome::Allow {
        return decision;
    }
    let operator_named_mcp = file.rules.iter().any(|r| {
        r.id == decision.rule && r.action.as_deref().is_some_and(|a| a.starts_with(PREFIX))
    });
    if operator_named_mcp || req.reversibility == Reversibility::Reversible {
        return decision;
    }
    Decision {
        outcome: Outcome::RequireApproval,
        rule: ANNOTATIONS_RULE.into(),
        reason: format!(
            "{} is not marked read-only by its server (rule {} would have allowed it): MCP tools that may change something wait for the operator unless a rule naming mcp:… allows them",
            req.action, decision.rule
        ),
        hold_secs: 0,
        expires_secs: None,
        on_expiry: ExpiryOutcome::Reject,
        trace: decision.trace,
    }
}
