//! The shape of `policy.toml` and how one rule matches a request.

use serde::{Deserialize, Serialize};

use super::glob;
use super::request::ActionRequest;
use crate::core::effects::Reversibility;

/// What a decision says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    RequireApproval,
    Deny,
}

impl Outcome {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::RequireApproval => "require_approval",
            Outcome::Deny => "deny",
        }
    }
}

/// What happens to a pending approval nobody decided before it expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryOutcome {
    #[default]
    Reject,
    Approve,
}

impl ExpiryOutcome {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryOutcome::Reject => "reject",
            ExpiryOutcome::Approve => "approve",
        }
    }
}

/// The whole policy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// The currency amounts, costs and budgets are expressed in.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// What happens when no rule matches (safe default: ask the operator).
    #[serde(default = "default_fallback")]
    pub fallback: Outcome,
    #[serde(default)]
    pub budgets: Budgets,
    /// Rules, in priority order: the first match wins.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

fn default_currency() -> String {
    "USD".to_string()
}

fn default_fallback() -> Outcome {
    Outcome::RequireApproval
}

/// Spending limits. An action that would exceed one needs approval even when a rule allows it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Budgets {
    /// Per agent per UTC day, for agents not listed in `agents`.
    pub per_agent_per_day: Option<f64>,
    /// Per agent per UTC day, by agent role.
    pub agents: std::collections::BTreeMap<String, f64>,
    /// Total per workflow, by workflow name.
    pub workflows: std::collections::BTreeMap<String, f64>,
}

/// A range of money: `min` inclusive, `max` exclusive; either may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Range {
    #[must_use]
    pub fn contains(&self, x: f64) -> bool {
        self.min.is_none_or(|m| x >= m) && self.max.is_none_or(|m| x < m)
    }

    /// Whether every value in `other` is in `self`.
    #[must_use]
    pub fn covers(&self, other: &Range) -> bool {
        let low = match (self.min, other.min) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a <= b,
        };
        let high = match (self.max, other.max) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a >= b,
        };
        low && high
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        matches!((self.min, self.max), (Some(a), Some(b)) if a >= b)
    }

    fn describe(&self) -> String {
        match (self.min, self.max) {
            (Some(a), Some(b)) => format!("[{a}, {b})"),
            (Some(a), None) => format!(">= {a}"),
            (None, Some(b)) => format!("< {b}"),
            (None, None) => "any".into(),
        }
    }
}

/// One rule. Every condition left out matches anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Recorded in the audit entry of every decision it makes.
    pub id: String,
    /// Agent role (glob).
    pub agent: Option<String>,
    /// Connector action (glob), e.g. `site.*`.
    pub action: Option<String>,
    /// Object kind (glob).
    pub kind: Option<String>,
    /// Money moved; a request that moves no money never matches a rule with `amount`.
    pub amount: Option<Range>,
    /// Cost of running the action.
    pub cost: Option<Range>,
    /// Any of these.
    pub reversibility: Option<Vec<Reversibility>>,
    /// Target or recipient (glob), e.g. `*@example.com`.
    pub target: Option<String>,
    pub outcome: Outcome,
    /// Shown to the operator and recorded with the decision.
    pub reason: String,
    /// For approved irreversible actions: delay before release, cancellable until then.
    #[serde(default)]
    pub hold_secs: u64,
    /// Approvals this rule creates expire after this long, if set.
    pub expires_secs: Option<u64>,
    /// What an expired approval becomes.
    #[serde(default)]
    pub on_expiry: ExpiryOutcome,
}

impl Rule {
    /// `Ok(())` when the rule matches `req`, else the first condition that did not.
    pub fn check(&self, req: &ActionRequest) -> Result<(), String> {
        glob_field("agent", self.agent.as_deref(), Some(&req.agent))?;
        glob_field("action", self.action.as_deref(), Some(&req.action))?;
        glob_field("kind", self.kind.as_deref(), req.object_kind.as_deref())?;
        range_field("amount", self.amount.as_ref(), req.amount)?;
        range_field("cost", self.cost.as_ref(), Some(req.cost))?;
        if let Some(allowed) = &self.reversibility
            && !allowed.contains(&req.reversibility)
        {
            return Err(format!(
                "reversibility {} is not one of {}",
                rev_name(req.reversibility),
                allowed
                    .iter()
                    .map(|r| rev_name(*r))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        glob_field("target", self.target.as_deref(), Some(&req.target))?;
        Ok(())
    }

    /// The conditions this rule sets, for display.
    #[must_use]
    pub fn conditions(&self) -> String {
        let mut parts = Vec::new();
        for (name, v) in [
            ("agent", &self.agent),
            ("action", &self.action),
            ("kind", &self.kind),
            ("target", &self.target),
        ] {
            if let Some(v) = v {
                parts.push(format!("{name}={v}"));
            }
        }
        if let Some(r) = &self.amount {
            parts.push(format!("amount {}", r.describe()));
        }
        if let Some(r) = &self.cost {
            parts.push(format!("cost {}", r.describe()));
        }
        if let Some(rs) = &self.reversibility {
            let names: Vec<_> = rs.iter().map(|r| rev_name(*r)).collect();
            parts.push(format!("reversibility in [{}]", names.join(", ")));
        }
        if parts.is_empty() {
            "everything".into()
        } else {
            parts.join(", ")
        }
    }
}

#[must_use]
pub fn rev_name(r: Reversibility) -> &'static str {
    match r {
        Reversibility::Reversible => "reversible",
        Reversibility::Compensable => "compensable",
        Reversibility::Irreversible => "irreversible",
    }
}

fn glob_field(name: &str, pattern: Option<&str>, value: Option<&str>) -> Result<(), String> {
    match (pattern, value) {
        (None, _) => Ok(()),
        (Some(p), Some(v)) if glob::matches(p, v) => Ok(()),
        (Some(p), Some(v)) => Err(format!("{name} {v:?} does not match {p:?}")),
        (Some(p), None) => Err(format!("the request has no {name} (rule wants {p:?})")),
    }
}

fn range_field(name: &str, range: Option<&Range>, value: Option<f64>) -> Result<(), String> {
    match (range, value) {
        (None, _) => Ok(()),
        (Some(r), Some(v)) if r.contains(v) => Ok(()),
        (Some(r), Some(v)) => Err(format!("{name} {v} is not in {}", r.describe())),
        (Some(r), None) => Err(format!(
            "the request moves no {name} (rule wants {})",
            r.describe()
        )),
    }
}
