//! Commands into the core. What each one answers is listed in [`super::Answer`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{NewMemoryItem, NewTask, Query, SearchParams, Tier};

/// Commands into the core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Ask for a page of a list or a detail view; answered by the `Answer` variant named
    /// like the query.
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
    /// Submit a work item.
    SubmitTask {
        task: Box<NewTask>,
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
    /// Approve each pending id in one transaction; the others are reported, not failed.
    BatchApprove {
        ids: Vec<String>,
    },
    Reject {
        id: String,
        reason: String,
    },
    /// Apply the stated default outcome to every pending approval past its expiry (every
    /// approvals op does this first; `keel approvals` asks for it before it reads).
    SweepApprovals,
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

    /// The operator calls an MCP tool by hand: policy first (a tool that needs approval
    /// runs only with `approve`, the operator approving it now; a denial is final), then the
    /// effects ledger and the audit log, like an agent's call.
    CallMcpTool {
        server: String,
        tool: String,
        arguments: Value,
        approve: bool,
    },

    /// A request of an MCP client of `keel mcp serve`, named by its handshake: the core
    /// checks `request` against the workspace's `[mcp.serve]` profile, runs it as the client
    /// (`mcp:CLIENT` authors what it writes), and audits the call. Deciding approvals, rules
    /// and effects is the operator's alone and always refused. `request` is `None` when the
    /// client called a tool keel does not have (refused and audited too).
    AsClient {
        client: String,
        tool: String,
        request: Option<Box<Op>>,
    },

    // Memory.
    /// Store one item (embedded now; a near-duplicate is not stored unless
    /// `allow_duplicate`): `MemoryAdded`.
    AddMemory {
        item: Box<NewMemoryItem>,
    },
    /// Import a file or a directory of text files, one item each: `MemoryImported`.
    ImportMemory {
        path: String,
        kind: String,
        tier: Option<Tier>,
        tags: Vec<String>,
    },
    ForgetMemory {
        id: String,
        reason: String,
    },
    /// Move an item to `tier` (`ttl_ms` for the task tier): `MemoryVersion`.
    SetMemoryTier {
        id: String,
        tier: Tier,
        ttl_ms: Option<i64>,
    },
    /// Remove the expired task-state items: `MemorySwept`.
    SweepMemory,
    /// Rebuild the current embedding version's index, or finish moving to a new model:
    /// `MemoryReindexed`.
    ReindexMemory,
    /// Embed the chunks that lack vectors and drop orphan vectors: `MemoryChecked`.
    RepairMemory,
    /// Search and record the retrieval for `run`, replayable with its pinned parameters:
    /// `Retrieved`.
    RetrieveForRun {
        run: String,
        text: String,
        params: SearchParams,
    },
    /// Classify `text` against the triage examples (each facet's decision is recorded):
    /// `Triaged`.
    TriageText {
        text: String,
    },
    /// Label a triage decision; the label is learned as an example.
    LabelTriage {
        decision: String,
        label: String,
    },

    // Outcomes (analytics).
    /// Import analytics rows (CSV: publication,metric,value,date) as `metric` objects, then
    /// reconcile them onto publications, ideas and memory. `source` names the file.
    ImportAnalytics {
        csv: String,
        source: String,
    },
    /// Rank ideas against `goals` with the offline researcher and record the ranking on them.
    RankIdeas {
        goals: Vec<String>,
    },

    // Runs (agents).
    ReplayRun {
        id: String,
    },

    /// Stop the core cleanly.
    Shutdown,
}
