//! The typed input of a policy decision.

use serde::{Deserialize, Serialize};

use crate::core::effects::{ActionSpec, Reversibility};

/// What an agent wants to do to the outside world, as code describes it.
///
/// Built from the connector's [`ActionSpec`] and typed fields of the task, never parsed from
/// text an agent or a model produced. There is deliberately no field for a rationale, a
/// memory note or a model's claim of permission: those are shown to the operator on the
/// approval card, but cannot influence the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// The agent role asking (e.g. `publisher`).
    pub agent: String,
    /// The connector action (e.g. `site.publish`).
    pub action: String,
    /// The kind of the business object affected, if any (e.g. `draft`).
    pub object_kind: Option<String>,
    /// Money the action moves or commits, in the policy's currency.
    pub amount: Option<f64>,
    /// Declared by the connector, not by the agent.
    pub reversibility: Reversibility,
    /// Recipient, slug, URL or account the action touches.
    pub target: String,
    /// What running the action costs (fees, paid API calls), in the policy's currency.
    pub cost: f64,
    /// The workflow the task belongs to, for per-workflow budgets.
    pub workflow: Option<String>,
}

impl ActionRequest {
    /// A request for `spec` with no money involved; set the other fields as needed.
    #[must_use]
    pub fn for_action(agent: &str, spec: &ActionSpec, target: &str) -> Self {
        ActionRequest {
            agent: agent.to_string(),
            action: spec.name.clone(),
            object_kind: None,
            amount: None,
            reversibility: spec.reversibility,
            target: target.to_string(),
            cost: 0.0,
            workflow: None,
        }
    }

    /// Refuses requests no rule could judge sensibly (empty names, non-finite money).
    pub fn validate(&self) -> crate::core::error::Result<()> {
        let bad = |m: &str| Err(crate::core::error::Error::invalid("action request", m));
        if self.agent.trim().is_empty() || self.action.trim().is_empty() {
            return bad("agent and action must be named");
        }
        if !self.cost.is_finite() || self.cost < 0.0 {
            return bad("cost must be a finite, non-negative number");
        }
        if self.amount.is_some_and(|a| !a.is_finite()) {
            return bad("amount must be a finite number");
        }
        Ok(())
    }

    /// What this action spends against a budget: its cost plus the money it moves.
    #[must_use]
    pub fn spend(&self) -> f64 {
        self.cost + self.amount.unwrap_or(0.0).max(0.0)
    }
}
