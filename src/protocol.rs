//! The core's protocol: `Op`s go in, `Event`s come out. Serde types only — no UI types —
//! so the console, the CLI and tests are all clients of the same handle.
//!
//! A request's answer is a JSON value; the row types below are the contract between the
//! module that answers a query and the clients that show it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Commands into the core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Ask for a page of a list or a detail view; answered with the types below.
    Query {
        query: Query,
    },

    // Objects (foundation).
    /// Write an object version based on `based_on` (None for a new object).
    PutObject {
        kind: String,
        id: String,
        based_on: Option<i64>,
        body: Value,
    },
    RevertObject {
        kind: String,
        id: String,
        to_version: i64,
        based_on: i64,
    },
    ArchiveObject {
        kind: String,
        id: String,
        based_on: i64,
    },
    /// Bring an archived object back (a new version; nothing was ever deleted).
    UnarchiveObject {
        kind: String,
        id: String,
        based_on: i64,
    },

    // Queue (orchestrator).
    /// Submit a work item (the JSON shape of `core::queue::NewTask`). Answer: `TaskRow`.
    SubmitTask {
        task: Value,
    },
    RetryTask {
        id: String,
        new_input: Option<Value>,
    },
    CancelTask {
        id: String,
    },
    PauseTask {
        id: String,
    },
    ResumeTask {
        id: String,
    },
    PauseQueue,
    ResumeQueue,
    /// Route an escalated triage item: `label` is a role, a workflow or `spam`. The label
    /// is learned as a triage example and the item is retried with it.
    DecideTriage {
        id: String,
        label: String,
    },
    /// Run a background task now, ignoring the off-peak window.
    RunNow {
        id: String,
    },

    // Approvals (policy).
    Approve {
        id: String,
        /// The operator's edited body, stored as a new version authored by the operator.
        edited_body: Option<Value>,
        /// Also create a narrowly scoped "always allow" rule from this decision.
        always_allow: bool,
    },
    Reject {
        id: String,
        reason: String,
    },
    /// Undo a completed external action through its compensation.
    UndoEffect {
        id: String,
    },
    /// Cancel an approved irreversible action during its hold window.
    CancelApproval {
        id: String,
        reason: String,
    },
    /// Revoke an "always allow" rule created from an approval.
    RevokeAllowRule {
        id: String,
    },

    // Runs (agents).
    ReplayRun {
        id: String,
    },

    /// Stop the core cleanly.
    Shutdown,
}

/// Read-only requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "query", rename_all = "snake_case")]
pub enum Query {
    /// Answer: `Vec<core::audit::Entry>`, newest first (oldest first with `oldest_first`).
    AuditPage {
        filter: crate::core::audit::Filter,
        limit: usize,
        #[serde(default)]
        oldest_first: bool,
    },
    /// Answer: `core::audit::Verification`.
    AuditVerify,
    /// Answer: `Page<ObjectRow>`.
    Objects {
        kind: Option<String>,
        text: Option<String>,
        include_archived: bool,
        offset: usize,
        limit: usize,
    },
    /// Answer: `Vec<ObjectVersionRow>`, oldest first.
    ObjectHistory { kind: String, id: String },
    /// Answer: `String` (a unified line diff).
    ObjectDiff {
        kind: String,
        id: String,
        from: i64,
        to: i64,
    },
    /// Answer: `Page<TaskRow>`.
    Tasks {
        state: Option<String>,
        text: Option<String>,
        offset: usize,
        limit: usize,
    },
    /// Answer: `Page<RunRow>` (newest first; only `task` when given).
    Runs {
        task: Option<String>,
        offset: usize,
        limit: usize,
    },
    /// Answer: `RunDetail`.
    RunDetail { id: String },
    /// Answer: `Vec<MemorySliceRow>` — the memory a run retrieved.
    MemoryUsed { run: String },
    /// Answer: `Page<ApprovalRow>`, pending first.
    Approvals {
        pending_only: bool,
        offset: usize,
        limit: usize,
    },
    /// Answer: `core::approvals::ApprovalDetail` (the row plus decision, hold and edit).
    ApprovalDetail { id: String },
    /// Answer: `Vec<core::approvals::AllowRule>`, newest first.
    AllowRules { include_revoked: bool },
    /// Answer: `Page<FindingRow>`.
    Blackboard {
        topic: Option<String>,
        offset: usize,
        limit: usize,
    },
    /// Answer: `Vec<core::effects::ledger::Effect>`, most recently changed first (only
    /// those in `state` when given: intended, done, failed, compensated).
    Effects { state: Option<String>, limit: usize },
    /// Answer: `Metrics`.
    Metrics,
    /// Answer: `Health`.
    Health,
}

/// One page of a list and the total number of matching rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ObjectRow {
    pub kind: String,
    pub id: String,
    pub version: i64,
    pub title: String,
    pub archived: bool,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ObjectVersionRow {
    pub version: i64,
    pub parent: Option<i64>,
    pub author: String,
    pub hash: String,
    pub note: String,
    pub created_ms: i64,
    pub body: Value,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ObjectRef {
    pub kind: String,
    pub id: String,
    pub version: i64,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Metrics {
    pub spend_today_usd: f64,
    pub budget_today_usd: f64,
    pub rows: Vec<ValueRow>,
}

/// One line of the value ledger (per workflow or per agent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ValueRow {
    /// `workflow` | `agent`
    pub scope: String,
    pub name: String,
    pub tasks_done: i64,
    pub minutes_saved: f64,
    pub model_spend_usd: f64,
    pub revenue_usd: f64,
    pub approval_rate: f64,
    pub failure_rate: f64,
    pub escalation_rate: f64,
    /// Succeeded + failed + escalated: what the failure and escalation rates are over.
    #[serde(default)]
    pub tasks_finished: i64,
    /// Approvals decided (anything but pending): what the approval rate is over.
    #[serde(default)]
    pub approvals_decided: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Health {
    pub workspace: String,
    pub schema_version: i64,
    /// `present` (files in place) | `missing: run …` from the health query; an embedder's
    /// `ModelState` events say `loading` | `ready` | `failed: <reason>`.
    pub embedding_model: String,
    pub providers: Vec<ProviderHealth>,
    pub schedules: Vec<ScheduleRow>,
    pub queue_paused: bool,
    pub audit_entries: i64,
    /// Configured MCP servers and their state (`not started` until first use).
    #[serde(default)]
    pub mcp_servers: Vec<McpServerHealth>,
}

/// One `[mcp.servers.NAME]`: how it is reached and how it is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct McpServerHealth {
    pub name: String,
    /// `stdio` | `http`.
    pub transport: String,
    /// The command line or the URL.
    pub target: String,
    /// `not started` | `starting` | `ready` | `crashed` | `failed`.
    pub state: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub tools: usize,
    #[serde(default)]
    pub restarts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProviderHealth {
    pub name: String,
    pub kind: String,
    /// Plainly says `offline` for the built-in offline provider.
    pub status: String,
    /// The context window keel fits prompts into, and where it was learnt (the fields
    /// below are absent for offline providers and servers that did not answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowHealth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<SlotsHealth>,
    /// `llama.cpp`, `ollama`, `vllm`, `hosted` or `openai-compatible`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The structured-output mode of the provider's newest recorded call that asked for
    /// one (`json_schema`, `json_object`, `prompt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_mode: Option<String>,
    /// Latency and time to first token of the provider's newest recorded call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_first_token_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WindowHealth {
    pub tokens: u32,
    /// `config`, `llama.cpp /props n_ctx`, `hosted default`…
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SlotsHealth {
    /// Calls at once; absent is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ScheduleRow {
    pub name: String,
    pub cron: String,
    pub next_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

/// Notifications out of the core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Something changed; clients refresh what they show of `subject`
    /// (e.g. `task/ID`, `approval/ID`, `draft/ID`, `audit`).
    Changed { subject: String, action: String },
    /// Partial output of a running model call, as it streams.
    RunOutput { run: String, delta: String },
    /// Progress of the embedding model load (`loading`, `ready`, `missing: run …`).
    ModelState { state: String },
    /// The core is stopping.
    ShuttingDown,
}
