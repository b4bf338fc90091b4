//! The rows and reports clients see, split by concern. Every type here is plain data.

mod analytics;
mod approvals;
mod audit;
mod effects;
mod memory;
mod objects;
mod status;
mod work;

use serde::{Deserialize, Serialize};

pub use analytics::{AnalyticsImported, ImportReport, Ranked, Reconciled, Rejected};
pub use approvals::{AllowRule, ApprovalDetail, ApprovalRow, Approved, BatchItem};
pub use audit::{AuditEntry, AuditFilter, Broken, Verification};
pub use effects::{EffectRow, EffectState, McpCalled, Undone};
pub use memory::{
    Added, CheckReport, Duplicate, Fusion, ImportedItem, MemoryHitRow, MemoryHits,
    MemoryImportReport, Neighbour, NewMemoryItem, Retrieval, SearchFilters, SearchHit,
    SearchParams, SearchResult, Skipped, Tier, TriageDecision, VersionCheck,
};
pub use objects::{ObjectRef, ObjectRow, ObjectVersionRow, Written};
pub use status::{
    Health, McpServerHealth, Metrics, ProviderHealth, ScheduleRow, SlotsHealth, ValueRow,
    WindowHealth,
};
pub use work::{
    FindingRow, MemorySliceRow, NewTask, ReplayReport, RunDetail, RunRow, RunStep, TaskRow,
};

/// One page of a list and the total number of matching rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}
