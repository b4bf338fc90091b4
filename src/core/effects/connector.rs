//! The contract every connector (static site, webhook, email, payments…) implements.
//!
//! The effects ledger calls `perform` with an idempotency key it has already written down;
//! after a crash between sending and recording it calls `lookup` instead of sending again.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Whether and how an action can be undone. Shown on approval cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reversibility {
    /// Can be undone exactly (e.g. unpublish a page).
    Reversible,
    /// Cannot be undone, but a compensating action exists (e.g. a refund, a correction).
    Compensable,
    /// Cannot be undone (e.g. an email that was sent). May have a hold window.
    Irreversible,
}

/// What a connector declares about one of its actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionSpec {
    /// e.g. `site.publish`
    pub name: String,
    pub reversibility: Reversibility,
    /// The action that undoes or compensates this one, if any (e.g. `site.unpublish`).
    pub compensation: Option<String>,
    /// One line for the operator: what this does to the outside world.
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// Worth retrying (timeouts, 429, 5xx, connection refused).
    #[error("{target}: temporary failure: {message}")]
    Transient { target: String, message: String },
    /// Will fail again (4xx other than 429, 409/422 conflicts, bad arguments, path escape).
    #[error("{target}: {message}")]
    Permanent { target: String, message: String },
}

/// A target in the outside world. Implementations must be safe to call with the same
/// idempotency key more than once (HTTP targets receive it as `Idempotency-Key`).
pub trait Connector: Send + Sync {
    /// e.g. `site`, `webhook`
    fn name(&self) -> &str;
    fn actions(&self) -> Vec<ActionSpec>;
    /// Performs `action` with `args`; returns what the target answered.
    fn perform(&self, action: &str, args: &Value, key: &str) -> Result<Value, ConnectorError>;
    /// Asks the target whether the effect with `key` was applied; `Ok(None)` means not.
    /// Connectors that cannot tell return `Err(Permanent)`, and the ledger escalates.
    fn lookup(&self, action: &str, args: &Value, key: &str)
    -> Result<Option<Value>, ConnectorError>;
    /// Undoes or compensates a completed effect, given its stored result.
    fn compensate(
        &self,
        action: &str,
        args: &Value,
        result: &Value,
        key: &str,
    ) -> Result<Value, ConnectorError>;
}
