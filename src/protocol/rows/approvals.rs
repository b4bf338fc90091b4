//! Approvals: the card, everything stored about it, the operator's decisions and the
//! "always allow" rules made from them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{MemorySliceRow, ObjectRef};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ApprovalRow {
    pub id: String,
    pub task: Option<String>,
    pub agent: String,
    /// e.g. `site.publish`, `invoice.send`
    pub action: String,
    pub target: String,
    pub summary: String,
    pub rationale: String,
    pub cost_usd: f64,
    pub amount: Option<f64>,
    /// low | medium | high
    pub risk: String,
    /// reversible | compensable | irreversible
    pub reversibility: String,
    pub undo_available: bool,
    pub rule: String,
    /// pending | approved | rejected | expired
    pub status: String,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    /// The affected object and the version the agent proposed.
    pub object: Option<ObjectRef>,
    /// The proposed body (what an "edit then approve" starts from).
    pub proposed_body: Option<Value>,
    /// Unified diff of the affected object against its current version.
    pub diff: String,
    pub memory: Vec<MemorySliceRow>,
}

/// Everything stored about one approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalDetail {
    #[serde(flatten)]
    pub row: ApprovalRow,
    pub request_key: String,
    pub workflow: Option<String>,
    /// Why the rule asked for approval.
    pub rule_reason: String,
    /// `reject` | `approve`: what expiry does.
    pub on_expiry: String,
    pub hold_ms: i64,
    /// When an approved, held action is released (cancellable until then).
    pub send_after_ms: Option<i64>,
    pub decided_ms: Option<i64>,
    pub decided_by: Option<String>,
    /// The rejection or cancellation reason, given back to the agent on retry.
    pub reason: Option<String>,
    /// The operator's edit of the proposed body, if any.
    pub edited_body: Option<Value>,
    /// The object version the edit was stored as (when an edit writer was given).
    pub edited_version: Option<i64>,
    /// The typed request the policy evaluated.
    pub request: Value,
    /// The connector arguments.
    pub args: Value,
}

/// A narrow "always allow" rule: exactly this agent, this action, this target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllowRule {
    pub id: String,
    pub agent: String,
    pub action: String,
    pub target: String,
    pub approval: Option<String>,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// The result of one approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approved {
    pub approval: ApprovalDetail,
    /// The "always allow" rule created with it, if asked.
    pub allow_rule: Option<String>,
}

/// One line of a batch approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchItem {
    pub id: String,
    pub approved: bool,
    /// Why it was skipped (not pending, expired, unknown).
    pub error: Option<String>,
}
