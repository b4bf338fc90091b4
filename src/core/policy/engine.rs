//! Evaluation: first matching rule in file order (a deny is final), then the operator's
//! standing "always allow" decisions, then budgets (which only tighten). Deterministic: the
//! same request, rules, spend and decisions give the same answer.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::budget::{SpendLookup, utc_day};
use super::request::ActionRequest;
use super::rules::{ExpiryOutcome, Outcome, PolicyFile};
use super::{DEFAULT_POLICY, POLICY_FILE};
use crate::core::clock::Millis;
use crate::core::effects::Reversibility;
use crate::core::error::{Error, Result};
use crate::core::toml_text;

/// The rule id recorded when no rule matched.
pub const FALLBACK_RULE: &str = "fallback";

/// A loaded policy and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub file: PolicyFile,
    /// The workspace file, or `<built-in>` for the compiled defaults.
    pub source: PathBuf,
    pub text: String,
}

impl Policy {
    /// Loads `<root>/policy.toml`, or the compiled defaults when the workspace has none.
    pub fn load(root: &Path) -> Result<Self> {
        let path = root.join(POLICY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::built_in(),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    pub fn built_in() -> Result<Self> {
        Self::parse(DEFAULT_POLICY, Path::new("<built-in>/policy.toml"))
    }

    /// Parses `text`; unknown fields and bad values are reported as `file:line:column`.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let file: PolicyFile = toml_text::parse(text, path)?;
        Ok(Policy {
            file,
            source: path.to_path_buf(),
            text: text.to_string(),
        })
    }
}

/// The operator's standing decisions ("always allow this agent this action on this target").
pub trait StandingRules {
    /// The id of an active rule that allows exactly this (agent, action, target), if any.
    fn always_allowed(&self, agent: &str, action: &str, target: &str) -> Result<Option<String>>;
}

/// No standing decisions (for `policy explain` without a workspace, and tests).
#[derive(Debug, Default)]
pub struct NoStandingRules;

impl StandingRules for NoStandingRules {
    fn always_allowed(&self, _: &str, _: &str, _: &str) -> Result<Option<String>> {
        Ok(None)
    }
}

/// How one rule fared against the request (for `policy explain`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleTrace {
    pub rule: String,
    pub matched: bool,
    /// Why it did not match (empty when it matched).
    pub because: String,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    /// The rule that decided: a file rule id, `fallback`, `budget:…` or `always:<id>`.
    pub rule: String,
    pub reason: String,
    /// Hold window after approval for irreversible actions, in seconds.
    pub hold_secs: u64,
    pub expires_secs: Option<u64>,
    pub on_expiry: ExpiryOutcome,
    /// Every rule consulted, in order, up to the one that matched.
    pub trace: Vec<RuleTrace>,
}

/// Decides `req`. `now_ms` picks the budget day.
pub fn evaluate(
    policy: &Policy,
    req: &ActionRequest,
    now_ms: Millis,
    spend: &dyn SpendLookup,
    standing: &dyn StandingRules,
) -> Result<Decision> {
    req.validate()?;
    let mut decision =
        super::mcp_defaults::apply(&policy.file, req, match_rules(&policy.file, req));
    if decision.outcome == Outcome::Deny {
        return Ok(decision);
    }
    if decision.outcome == Outcome::RequireApproval
        && let Some(id) = standing.always_allowed(&req.agent, &req.action, &req.target)?
    {
        decision.reason = format!(
            "the operator always allows {} to {} on {} (rule {} would have asked: {})",
            req.agent, req.action, req.target, decision.rule, decision.reason
        );
        decision.outcome = Outcome::Allow;
        decision.rule = format!("always:{id}");
    }
    // A budget only tightens: an allowed action that would overspend needs approval.
    if decision.outcome == Outcome::Allow
        && let Some((rule, reason)) = over_budget(&policy.file, req, now_ms, spend)?
    {
        decision.outcome = Outcome::RequireApproval;
        decision.rule = rule;
        decision.reason = reason;
    }
    Ok(decision)
}

/// First match in file order, without budgets or standing decisions.
#[must_use]
pub fn match_rules(file: &PolicyFile, req: &ActionRequest) -> Decision {
    let mut trace = Vec::new();
    for rule in &file.rules {
        match rule.check(req) {
            Ok(()) => {
                trace.push(RuleTrace {
                    rule: rule.id.clone(),
                    matched: true,
                    because: String::new(),
                });
                let hold = if req.reversibility == Reversibility::Irreversible {
                    rule.hold_secs
                } else {
                    0
                };
                return Decision {
                    outcome: rule.outcome,
                    rule: rule.id.clone(),
                    reason: rule.reason.clone(),
                    hold_secs: hold,
                    expires_secs: rule.expires_secs,
                    on_expiry: rule.on_expiry,
                    trace,
                };
            }
            Err(because) => trace.push(RuleTrace {
                rule: rule.id.clone(),
                matched: false,
                because,
            }),
        }
    }
    Decision {
        outcome: file.fallback,
        rule: FALLBACK_RULE.into(),
        reason: "no rule matched; the policy's fallback applies".into(),
        hold_secs: 0,
        expires_secs: None,
        on_expiry: ExpiryOutcome::Reject,
        trace,
    }
}

fn over_budget(
    file: &PolicyFile,
    req: &ActionRequest,
    now_ms: Millis,
    spend: &dyn SpendLookup,
) -> Result<Option<(String, String)>> {
    let amount = req.spend();
    if amount <= 0.0 {
        return Ok(None);
    }
    let cur = &file.currency;
    let agent_limit = file
        .budgets
        .agents
        .get(&req.agent)
        .copied()
        .or(file.budgets.per_agent_per_day);
    if let Some(limit) = agent_limit {
        let day = utc_day(now_ms);
        let already = spend.spent_by_agent(&req.agent, &day)?;
        if already + amount > limit {
            return Ok(Some((
                format!("budget:agent:{}", req.agent),
                format!(
                    "{} has spent {already:.2} {cur} today; {amount:.2} more would exceed its daily budget of {limit:.2} {cur}",
                    req.agent
                ),
            )));
        }
    }
    if let Some(wf) = &req.workflow
        && let Some(limit) = file.budgets.workflows.get(wf)
    {
        let already = spend.spent_by_workflow(wf)?;
        if already + amount > *limit {
            return Ok(Some((
                format!("budget:workflow:{wf}"),
                format!(
                    "workflow {wf} has spent {already:.2} {cur}; {amount:.2} more would exceed its budget of {limit:.2} {cur}"
                ),
            )));
        }
    }
    Ok(None)
}
