//! The built-in `noop` role: does nothing and succeeds (benchmarks, smoke tests).

use serde_json::json;

use crate::core::coordinator::{Outcome, RunError, StepContext};

/// The role's name in tasks, schedules and workflow stages.
pub const NAME: &str = "noop";

/// Succeeds with an empty output.
#[allow(clippy::unnecessary_wraps)] // Why: every role has the same signature (`Run`).
pub fn run(_ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
    Ok(Outcome::Succeeded(json!({})))
}
