//! Work: tasks (as submitted and as listed), agent runs, their steps and memory, replay
//! reports and blackboard findings.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A work item as submitted (the JSON shape of `Op::SubmitTask`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewTask {
    /// The agent role (work item type) that runs it.
    pub role: String,
    /// One line for the operator; defaults to the role.
    pub title: String,
    /// Checked against the role's input schema.
    pub input: Value,
    /// JSON Schema the output must satisfy for the task to succeed.
    pub output_schema: Option<Value>,
    /// Higher runs first.
    pub priority: i64,
    /// Not claimed before this time (a one-off timer).
    pub not_before_ms: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub cost_estimate_usd: f64,
    pub max_attempts: Option<i64>,
    /// When attempts run out: escalate to the operator (default) or just fail.
    pub escalate: Option<bool>,
    /// Submitting an existing key returns the existing task instead of a new one.
    pub idempotency_key: Option<String>,
    pub parent: Option<String>,
    pub workflow: Option<String>,
    /// The workflow stage this task runs.
    pub stage: Option<String>,
    pub tags: Vec<String>,
    /// Waits for the off-peak window unless the operator runs it now.
    pub background: bool,
    /// Starts waiting for an approval instead of queued (workflow approval stages).
    pub await_approval: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TaskRow {
    pub id: String,
    pub role: String,
    pub title: String,
    /// queued | running | waiting | succeeded | failed | escalated | cancelled
    pub state: String,
    /// What a waiting task waits for (approval, children, timer) or why it escalated.
    pub detail: String,
    pub priority: i64,
    pub attempts: i64,
    pub max_attempts: i64,
    pub workflow: Option<String>,
    pub parent: Option<String>,
    pub not_before_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub cost_estimate_usd: f64,
    pub paused: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunRow {
    pub id: String,
    pub task: String,
    pub role: String,
    /// running | succeeded | failed | cancelled
    pub status: String,
    pub step: i64,
    pub current: String,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub provider: String,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    /// The latest output, possibly partial while streaming.
    pub output_preview: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunStep {
    pub index: i64,
    /// `model` | `tool`
    pub kind: String,
    pub name: String,
    pub input: Value,
    pub output: Value,
    pub rationale: String,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub latency_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunDetail {
    pub run: RunRow,
    pub input: Value,
    pub template: String,
    pub template_hash: String,
    pub steps: Vec<RunStep>,
    pub memory: Vec<MemorySliceRow>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MemorySliceRow {
    pub item: String,
    pub version: i64,
    pub rank: i64,
    pub score: f64,
    pub kind: String,
    pub preview: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FindingRow {
    pub id: String,
    pub topic: String,
    pub author: String,
    pub text: String,
    pub data: Value,
    pub created_ms: i64,
}

/// What `Op::ReplayRun` found: whether the replayed outcome matches the original.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayReport {
    pub original: String,
    pub replay: String,
    pub matches: bool,
    pub original_status: String,
    pub replay_status: String,
    /// sha256 of the canonical accepted output, when there is one.
    pub original_output: Option<String>,
    pub replay_output: Option<String>,
    /// What differs (empty when the outcome matches).
    pub differences: Vec<String>,
    /// Differences that do not count against a match (the wording of a failure the record
    /// cannot reproduce, such as a provider that was down).
    pub notes: Vec<String>,
}
