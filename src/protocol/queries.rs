//! Read-only requests. Each one is answered by the [`super::Answer`] variant of the same
//! name, whose payload type is named here.

use serde::{Deserialize, Serialize};

use super::AuditFilter;

/// Read-only requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "query", rename_all = "snake_case")]
pub enum Query {
    /// `Vec<AuditEntry>`, newest first (oldest first with `oldest_first`).
    AuditPage {
        filter: AuditFilter,
        limit: usize,
        #[serde(default)]
        oldest_first: bool,
    },
    /// `Verification`.
    AuditVerify,
    /// `Page<ObjectRow>`.
    Objects {
        kind: Option<String>,
        text: Option<String>,
        include_archived: bool,
        offset: usize,
        limit: usize,
    },
    /// `Vec<ObjectVersionRow>`, oldest first.
    ObjectHistory { kind: String, id: String },
    /// `String` (a unified line diff).
    ObjectDiff {
        kind: String,
        id: String,
        from: i64,
        to: i64,
    },
    /// `TaskRow` (answered as `Answer::Task`).
    Task { id: String },
    /// `Page<TaskRow>`.
    Tasks {
        state: Option<String>,
        text: Option<String>,
        offset: usize,
        limit: usize,
    },
    /// `Page<RunRow>` (newest first; only `task` when given).
    Runs {
        task: Option<String>,
        offset: usize,
        limit: usize,
    },
    /// `RunDetail`.
    RunDetail { id: String },
    /// `MemoryHits`: hybrid (vector and keyword) search over memory, with provenance.
    /// `kinds` limits the item kinds (empty: every kind); `k` the hits (default: the
    /// workspace's `[memory] default_k`).
    MemorySearch {
        text: String,
        #[serde(default)]
        kinds: Vec<String>,
        #[serde(default)]
        k: Option<usize>,
    },
    /// `Vec<MemorySliceRow>` — the memory a run retrieved.
    MemoryUsed { run: String },
    /// `Page<ApprovalRow>`, pending first.
    Approvals {
        pending_only: bool,
        offset: usize,
        limit: usize,
    },
    /// `ApprovalDetail` (the row plus decision, hold and edit).
    ApprovalDetail { id: String },
    /// `Vec<AllowRule>`, newest first.
    AllowRules { include_revoked: bool },
    /// `Page<FindingRow>`.
    Blackboard {
        topic: Option<String>,
        offset: usize,
        limit: usize,
    },
    /// `Vec<EffectRow>`, most recently changed first (only those in `state` when given:
    /// intended, done, failed, compensated).
    Effects { state: Option<String>, limit: usize },
    /// `Metrics`.
    Metrics,
    /// `Health`.
    Health,
}
