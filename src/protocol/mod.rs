//! The core's protocol: `Op`s go in, an [`Answer`] comes back for each, `Event`s come out.
//! Serde types only — no UI types, and nothing from the core (the core depends on this
//! module, never the reverse) — so the console, the CLI and tests are all clients of
//! the same handle, and a new client needs nothing else.
//!
//! - [`ops`] — [`Op`], the commands.
//! - [`queries`] — [`Query`], the read-only requests (sent as `Op::Query`).
//! - [`answers`] — [`Answer`], one variant per query and per kind of op outcome.
//! - [`rows`] — the rows and reports those answers carry, split by concern.

pub mod answers;
pub mod ops;
pub mod queries;
pub mod rows;

use serde::{Deserialize, Serialize};

pub use answers::{Answer, UnexpectedAnswer};
pub use ops::Op;
pub use queries::Query;
pub use rows::{
    Added, AllowRule, AnalyticsImported, ApprovalDetail, ApprovalRow, Approved, AuditEntry,
    AuditFilter, BatchItem, Broken, CheckReport, Duplicate, EffectRow, EffectState, FindingRow,
    Fusion, Health, ImportReport, ImportedItem, McpCalled, McpServerHealth, MemoryHitRow,
    MemoryHits, MemoryImportReport, MemorySliceRow, Metrics, Neighbour, NewMemoryItem, NewTask,
    ObjectRef, ObjectRow, ObjectVersionRow, Page, ProviderHealth, Ranked, Reconciled, Rejected,
    ReplayReport, Retrieval, RunDetail, RunRow, RunStep, ScheduleRow, SearchFilters, SearchHit,
    SearchParams, SearchResult, Skipped, SlotsHealth, TaskRow, Tier, TriageDecision, Undone,
    ValueRow, Verification, VersionCheck, WindowHealth, Written,
};

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
