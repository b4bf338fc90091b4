//! The effects ledger as clients see it, and what an undo did.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where an external action stands in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EffectState {
    Intended,
    Done,
    Failed,
    Compensated,
}

impl EffectState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EffectState::Intended => "intended",
            EffectState::Done => "done",
            EffectState::Failed => "failed",
            EffectState::Compensated => "compensated",
        }
    }
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectRow {
    pub key: String,
    pub task: String,
    pub step: String,
    pub connector: String,
    pub action: String,
    pub args: Value,
    pub state: EffectState,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// What `Op::UndoEffect` did: the compensation the connector ran and its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Undone {
    /// The full ledger key (the op may name a unique prefix).
    pub key: String,
    pub action: String,
    pub compensation: Option<String>,
    pub result: Value,
}

/// A tool called by hand through the gate and the ledger (`Op::CallMcpTool`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct McpCalled {
    pub server: String,
    pub tool: String,
    /// The server said the tool failed (`isError`): a result, not a transport error.
    pub is_error: bool,
    /// The text parts of the content, joined.
    pub text: String,
    /// The whole `CallToolResult` as the server sent it.
    pub result: serde_json::Value,
    pub bytes: usize,
    /// The effects-ledger key of the call.
    pub effect: String,
    /// The policy rule that let it run.
    pub rule: String,
}
