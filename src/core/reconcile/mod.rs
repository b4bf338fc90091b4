//! Reconciliation: compares canonical state with each target and lists mismatches, each with
//! the fixes an operator can choose. It only reads; applying a fix is a separate, gated action.
//!
//! - Site: publication objects (not archived) against `<slug>.md` pages.
//! - Webhooks: each completed effect is looked up at the target by its idempotency key.

pub mod canonical_source;
pub mod site;
pub mod webhook;

use serde::{Deserialize, Serialize};

pub use canonical_source::{CanonicalPublications, PublicationObjects, PublishedRecord};
pub use site::reconcile_site;
pub use webhook::reconcile_webhook;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchKind {
    /// Canonical says it should be there; the target does not have it.
    Missing,
    /// Both have it, but they differ (version or content).
    Drifted,
    /// The target has it; canonical state does not (or archived it).
    Orphaned,
    /// The target's copy cannot be read (truncated, no front matter).
    Unreadable,
    /// A temp file left by an interrupted write.
    StaleTemp,
    /// The target could not be asked (unreachable, no lookup endpoint).
    Unverifiable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fix {
    /// Write the canonical version to the target again.
    Republish,
    /// Make the target's version the canonical one (a new version authored by the operator).
    AdoptExternal,
    /// Remove it from the target (or archive the canonical object).
    Archive,
    /// Delete the leftover temp file.
    RemoveTemp,
    /// Retry the check later.
    Recheck,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    /// `site` or `webhook.<name>`.
    pub target: String,
    pub kind: MismatchKind,
    /// The slug, or the effect id.
    pub subject: String,
    pub detail: String,
    pub canonical_version: Option<i64>,
    pub external_version: Option<i64>,
    /// Proposed fixes, the recommended one first.
    pub fixes: Vec<Fix>,
}
