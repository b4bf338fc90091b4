//! The approval inbox. A gated action becomes a row here; the task that asked holds no
//! worker while it waits (the row is all there is). The operator approves (optionally after
//! editing the proposed body, optionally creating a narrow "always allow" rule), rejects with
//! a reason the agent gets back on retry, or lets it expire into its stated default outcome.
//! An approved irreversible action may be held for a while, during which it can be cancelled.

pub mod allow_rules;
pub mod decide;
pub mod gate;
pub mod resume;
pub mod rows;

pub use allow_rules::AllowRule;
pub use decide::{
    Approved, EditWriter, approve, approve_with, batch_approve, cancel, reject, sweep_expired,
};
pub use gate::{GateResult, NewApproval, gate};
pub use resume::{housekeeping, on_decision};
pub use rows::{ApprovalDetail, get, list, rejection_for_task};
