//! The built-in `webhook` role: POSTs each of its steps to a loopback URL through the
//! effects ledger (benchmarks and crash tests of the ledger).

use serde_json::{Value, json};

use crate::core::coordinator::{Outcome, RunError, StepContext};
use crate::core::effects::webhook::{self, WebhookConnector};

/// The role's name in tasks, schedules and workflow stages.
pub const NAME: &str = "webhook";

/// `webhook` input: `{"url": "http://127.0.0.1:PORT/…", "steps": N, "body": any}`. Each of
/// the N steps POSTs `{"task", "step", "body"}` through the effects ledger.
pub fn run(ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
    let input = ctx.task().input.clone();
    let url = input
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| RunError::Permanent("webhook input needs \"url\"".into()))?;
    let steps = input.get("steps").and_then(Value::as_u64).unwrap_or(1);
    let connector = WebhookConnector::loopback(url)?;
    let mut responses = Vec::new();
    for i in 0..steps {
        let args = json!({"task": ctx.task().id, "step": i, "body": input.get("body")});
        responses.push(ctx.effect(&connector, &format!("post-{i}"), webhook::ACTION, &args)?);
    }
    Ok(Outcome::Succeeded(json!({"responses": responses})))
}
