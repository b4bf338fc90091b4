//! What the core answers: one [`Answer`] variant per query and per kind of op outcome.
//!
//! Why an enum rather than one typed request function per query: an answer crosses a
//! channel (the console's reply queue, and soon an MCP server's wire) as one type, and it
//! serializes as it is. A client that knows what it asked for takes the payload out with
//! `TryFrom` (`let page: Page<TaskRow> = answer.try_into()?`); a mismatch is a core bug,
//! reported as [`UnexpectedAnswer`] instead of a panic.

use serde::{Deserialize, Serialize};

use super::{
    Added, AllowRule, AnalyticsImported, ApprovalDetail, ApprovalRow, Approved, AuditEntry,
    BatchItem, CheckReport, EffectRow, FindingRow, Health, McpCalled, MemoryHits,
    MemoryImportReport, MemorySliceRow, Metrics, ObjectRow, ObjectVersionRow, Page, Ranked,
    ReplayReport, Retrieval, RunDetail, RunRow, TaskRow, TriageDecision, Undone, Verification,
    Written,
};

/// The answer to an [`super::Op`]. Large payloads are boxed so the enum stays small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", content = "body", rename_all = "snake_case")]
pub enum Answer {
    /// The op was done and has nothing to report (`RevokeAllowRule`, `Shutdown`).
    Done,

    // Queries, named as the query they answer.
    AuditPage(Vec<AuditEntry>),
    AuditVerify(Verification),
    Objects(Page<ObjectRow>),
    ObjectHistory(Vec<ObjectVersionRow>),
    ObjectDiff(String),
    Tasks(Page<TaskRow>),
    Runs(Page<RunRow>),
    RunDetail(Box<RunDetail>),
    MemorySearch(Box<MemoryHits>),
    MemoryUsed(Vec<MemorySliceRow>),
    Approvals(Page<ApprovalRow>),
    ApprovalDetail(Box<ApprovalDetail>),
    AllowRules(Vec<AllowRule>),
    Blackboard(Page<FindingRow>),
    Effects(Vec<EffectRow>),
    Metrics(Metrics),
    Health(Box<Health>),

    // Op outcomes.
    /// `PutObject`, `RevertObject`, `ArchiveObject`, `UnarchiveObject`.
    Written(Written),
    /// `Query::Task` and task ops (`SubmitTask`, `RetryTask`, `CancelTask`, `PauseTask`, `ResumeTask`,
    /// `RunNow`, `DecideTriage`): the task as it is now.
    Task(Box<TaskRow>),
    /// `PauseQueue`, `ResumeQueue`.
    Queue {
        paused: bool,
    },
    Approved(Box<Approved>),
    /// `BatchApprove`: one line per id, in the order given.
    BatchApproved(Vec<BatchItem>),
    /// `SweepApprovals`: `(id, new status)` for each approval that expired.
    Swept(Vec<(String, String)>),
    /// `Reject`, `CancelApproval`: the approval as decided.
    Decided(Box<ApprovalDetail>),
    /// `UndoEffect`.
    Undone(Undone),
    /// `ReplayRun`.
    Replayed(ReplayReport),
    /// `CallMcpTool`.
    McpCalled(Box<McpCalled>),
    /// `AddMemory`.
    MemoryAdded(Box<Added>),
    /// `ImportMemory`.
    MemoryImported(Box<MemoryImportReport>),
    /// `SetMemoryTier`: the item's new version.
    MemoryVersion(i64),
    /// `SweepMemory`: the items removed.
    MemorySwept(Vec<String>),
    /// `ReindexMemory`: what was rebuilt or re-embedded, in a sentence.
    MemoryReindexed(String),
    /// `RepairMemory`: the check after the repair.
    MemoryChecked(Box<CheckReport>),
    /// `RetrieveForRun`.
    Retrieved(Box<Retrieval>),
    /// `TriageText`: one decision per facet.
    Triaged(Vec<TriageDecision>),
    /// `ImportAnalytics`.
    AnalyticsImported(Box<AnalyticsImported>),
    /// `RankIdeas`: best first.
    Ranked(Vec<Ranked>),
}

impl Answer {
    /// The variant's name, for messages about an answer that was not the one expected.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Answer::Done => "done",
            Answer::AuditPage(_) => "audit_page",
            Answer::AuditVerify(_) => "audit_verify",
            Answer::Objects(_) => "objects",
            Answer::ObjectHistory(_) => "object_history",
            Answer::ObjectDiff(_) => "object_diff",
            Answer::Tasks(_) => "tasks",
            Answer::Runs(_) => "runs",
            Answer::RunDetail(_) => "run_detail",
            Answer::MemorySearch(_) => "memory_search",
            Answer::MemoryUsed(_) => "memory_used",
            Answer::Approvals(_) => "approvals",
            Answer::ApprovalDetail(_) => "approval_detail",
            Answer::AllowRules(_) => "allow_rules",
            Answer::Blackboard(_) => "blackboard",
            Answer::Effects(_) => "effects",
            Answer::Metrics(_) => "metrics",
            Answer::Health(_) => "health",
            Answer::Written(_) => "written",
            Answer::Task(_) => "task",
            Answer::Queue { .. } => "queue",
            Answer::Approved(_) => "approved",
            Answer::BatchApproved(_) => "batch_approved",
            Answer::Swept(_) => "swept",
            Answer::Decided(_) => "decided",
            Answer::Undone(_) => "undone",
            Answer::Replayed(_) => "replayed",
            Answer::McpCalled(_) => "mcp_called",
            Answer::MemoryAdded(_) => "memory_added",
            Answer::MemoryImported(_) => "memory_imported",
            Answer::MemoryVersion(_) => "memory_version",
            Answer::MemorySwept(_) => "memory_swept",
            Answer::MemoryReindexed(_) => "memory_reindexed",
            Answer::MemoryChecked(_) => "memory_checked",
            Answer::Retrieved(_) => "retrieved",
            Answer::Triaged(_) => "triaged",
            Answer::AnalyticsImported(_) => "analytics_imported",
            Answer::Ranked(_) => "ranked",
        }
    }
}

/// The core answered with another variant than the one the client asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected answer from the core: expected {expected}, got {got}")]
pub struct UnexpectedAnswer {
    pub expected: &'static str,
    pub got: &'static str,
}

/// `TryFrom<Answer>` for each payload type, from the variants that carry it (`box`: the
/// variants hold it boxed).
macro_rules! payload {
    ($ty:ty, $expected:literal, $($variant:ident),+) => {
        impl TryFrom<Answer> for $ty {
            type Error = UnexpectedAnswer;

            fn try_from(answer: Answer) -> Result<Self, UnexpectedAnswer> {
                match answer {
                    $(Answer::$variant(v) => Ok(v),)+
                    other => Err(UnexpectedAnswer {
                        expected: $expected,
                        got: other.name(),
                    }),
                }
            }
        }
    };
    (box $ty:ty, $expected:literal, $($variant:ident),+) => {
        impl TryFrom<Answer> for $ty {
            type Error = UnexpectedAnswer;

            fn try_from(answer: Answer) -> Result<Self, UnexpectedAnswer> {
                match answer {
                    $(Answer::$variant(v) => Ok(*v),)+
                    other => Err(UnexpectedAnswer {
                        expected: $expected,
                        got: other.name(),
                    }),
                }
            }
        }
    };
}

payload!(Vec<AuditEntry>, "audit_page", AuditPage);
payload!(Verification, "audit_verify", AuditVerify);
payload!(Page<ObjectRow>, "objects", Objects);
payload!(Vec<ObjectVersionRow>, "object_history", ObjectHistory);
payload!(
    String,
    "object_diff or memory_reindexed",
    ObjectDiff,
    MemoryReindexed
);
payload!(Page<TaskRow>, "tasks", Tasks);
payload!(Page<RunRow>, "runs", Runs);
payload!(box RunDetail, "run_detail", RunDetail);
payload!(box MemoryHits, "memory_search", MemorySearch);
payload!(
    box AnalyticsImported,
    "analytics_imported",
    AnalyticsImported
);
payload!(Vec<Ranked>, "ranked", Ranked);
payload!(Vec<MemorySliceRow>, "memory_used", MemoryUsed);
payload!(Page<ApprovalRow>, "approvals", Approvals);
payload!(
    box ApprovalDetail,
    "approval_detail",
    ApprovalDetail,
    Decided
);
payload!(Vec<AllowRule>, "allow_rules", AllowRules);
payload!(Page<FindingRow>, "blackboard", Blackboard);
payload!(Vec<EffectRow>, "effects", Effects);
payload!(Metrics, "metrics", Metrics);
payload!(box Health, "health", Health);
payload!(Written, "written", Written);
payload!(box TaskRow, "task", Task);
payload!(box Approved, "approved", Approved);
payload!(Vec<BatchItem>, "batch_approved", BatchApproved);
payload!(Vec<(String, String)>, "swept", Swept);
payload!(Undone, "undone", Undone);
payload!(ReplayReport, "replayed", Replayed);
payload!(box McpCalled, "mcp_called", McpCalled);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_comes_out_of_its_own_variant_only() {
        let page = Page {
            items: vec![TaskRow::default()],
            total: 1,
        };
        let back: Page<TaskRow> = Answer::Tasks(page.clone()).try_into().unwrap();
        assert_eq!(back, page);
        let err = Page::<TaskRow>::try_from(Answer::Done).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected answer from the core: expected tasks, got done"
        );
    }

    #[test]
    fn an_answer_serializes_tagged_with_its_name() {
        let json = serde_json::to_value(Answer::Queue { paused: true }).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"answer": "queue", "body": {"paused": true}})
        );
        let back: Answer = serde_json::from_value(json).unwrap();
        assert_eq!(back, Answer::Queue { paused: true });
    }
}
payload!(box Added, "memory_added", MemoryAdded);
payload!(box MemoryImportReport, "memory_imported", MemoryImported);
payload!(i64, "memory_version", MemoryVersion);
payload!(Vec<String>, "memory_swept", MemorySwept);
payload!(box CheckReport, "memory_checked", MemoryChecked);
payload!(box Retrieval, "retrieved", Retrieved);
payload!(Vec<TriageDecision>, "triaged", Triaged);
