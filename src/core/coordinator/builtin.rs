//! The roles the orchestrator runs itself (`workflow`, `noop`, `webhook`, and the gated
//! `publisher` and `effect` of `core::gate::roles`); every other role
//! goes to the agent runtime given as `agents`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::executor::{Outcome, RunError, StepContext, TaskExecutor};
use crate::core::effects::webhook::{self, WebhookConnector};

#[derive(Default, Clone)]
pub struct BuiltinExecutor {
    /// The agent runtime, for every role that is not built in.
    pub agents: Option<Arc<dyn TaskExecutor>>,
}

impl BuiltinExecutor {
    #[must_use]
    pub fn with_agents(agents: Arc<dyn TaskExecutor>) -> Self {
        BuiltinExecutor {
            agents: Some(agents),
        }
    }
}

impl TaskExecutor for BuiltinExecutor {
    fn handles(&self, role: &str) -> bool {
        matches!(
            role,
            "workflow"
                | "noop"
                | "webhook"
                | "publisher"
                | "effect"
                | "analytics-import"
                | "triage"
        ) || self.agents.as_ref().is_some_and(|a| a.handles(role))
    }

    fn execute(&self, ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
        match ctx.task().role.as_str() {
            "workflow" => crate::core::workflow::runner::run(ctx),
            "noop" => Ok(Outcome::Succeeded(json!({}))),
            "webhook" => run_webhook(ctx),
            "publisher" => crate::core::gate::roles::publish(ctx),
            "effect" => crate::core::gate::roles::effect(ctx),
            "analytics-import" => crate::core::outcomes::import_task(ctx),
            "triage" => crate::core::triage_route::run(ctx),
            role => match &self.agents {
                Some(agents) => agents.execute(ctx),
                None => Err(RunError::Permanent(format!(
                    "no executor for role {role:?} in this build"
                ))),
            },
        }
    }
}

/// `webhook` input: `{"url": "http://127.0.0.1:PORT/…", "steps": N, "body": any}`. Each of
/// the N steps POSTs `{"task", "step", "body"}` through the effects ledger.
fn run_webhook(ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
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
