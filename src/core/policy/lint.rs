//! `keel policy check`: finds rules that can never fire (shadowed), rules that say opposite
//! things about the same actions (contradictory), duplicate ids and impossible conditions.
//! Parse errors (unknown fields, bad values) are reported by [`super::Policy::parse`] with
//! `file:line:column` before the lint runs.

use serde::Serialize;

use super::engine::Policy;
use super::glob;
use super::rules::{ExpiryOutcome, Outcome, Rule};
use crate::core::effects::Reversibility;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, located at the rule's `[[rule]]` header.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub rule: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {sev}: rule {:?}: {}",
            self.file, self.line, self.column, self.rule, self.message
        )
    }
}

/// Lints a parsed policy.
#[must_use]
pub fn check(policy: &Policy) -> Vec<Finding> {
    let lines = rule_lines(&policy.text);
    let line_of = |i: usize| lines.get(i).copied().unwrap_or(1);
    let file = policy.source.display().to_string();
    let rules = &policy.file.rules;
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let mut problems = self_checks(rule);
        if let Some(first) = rules[..i].iter().position(|r| r.id == rule.id) {
            problems.push((
                Severity::Error,
                format!(
                    "duplicate id (first used by the rule at line {})",
                    line_of(first)
                ),
            ));
        }
        if let Some(j) = rules[..i].iter().position(|earlier| covers(earlier, rule)) {
            let earlier = &rules[j];
            problems.push(if covers(rule, earlier) && earlier.outcome != rule.outcome {
                (Severity::Error, format!(
                    "contradicts rule {:?} (line {}): same conditions, but {} instead of {}; only the first can fire",
                    earlier.id, line_of(j), rule.outcome.as_str(), earlier.outcome.as_str()
                ))
            } else {
                (Severity::Warning, format!(
                    "shadowed by rule {:?} (line {}), which matches everything this rule matches: it never fires",
                    earlier.id, line_of(j)
                ))
            });
        }
        out.extend(problems.into_iter().map(|(severity, message)| Finding {
            severity,
            file: file.clone(),
            line: line_of(i),
            column: 1,
            rule: rule.id.clone(),
            message,
        }));
    }
    out
}

/// Problems a rule has on its own.
fn self_checks(rule: &Rule) -> Vec<(Severity, String)> {
    let mut out = Vec::new();
    if rule.id.trim().is_empty() {
        out.push((Severity::Error, "the id is empty".into()));
    }
    if rule.reason.trim().is_empty() {
        out.push((
            Severity::Warning,
            "no reason: the operator will not know why".into(),
        ));
    }
    for (name, range) in [("amount", &rule.amount), ("cost", &rule.cost)] {
        if range.is_some_and(|r| r.is_empty()) {
            out.push((
                Severity::Error,
                format!("{name} range is empty (min >= max): the rule never matches"),
            ));
        }
    }
    if rule.reversibility.as_ref().is_some_and(Vec::is_empty) {
        out.push((
            Severity::Error,
            "reversibility is an empty list: the rule never matches".into(),
        ));
    }
    let can_be_irreversible = rule
        .reversibility
        .as_ref()
        .is_none_or(|rs| rs.contains(&Reversibility::Irreversible));
    if rule.hold_secs > 0 && !can_be_irreversible {
        out.push((
            Severity::Warning,
            "hold_secs only applies to irreversible actions, which this rule excludes".into(),
        ));
    }
    if rule.hold_secs > 0 && rule.outcome != Outcome::RequireApproval {
        out.push((
            Severity::Warning,
            "hold_secs only applies to approved actions; this rule does not ask for approval"
                .into(),
        ));
    }
    if rule.expires_secs.is_some()
        && rule.on_expiry == ExpiryOutcome::Approve
        && can_be_irreversible
    {
        out.push((
            Severity::Warning,
            "approves irreversible actions nobody looked at when they expire".into(),
        ));
    }
    out
}

/// Whether every request matched by `narrow` is matched by `wide`.
#[must_use]
pub fn covers(wide: &Rule, narrow: &Rule) -> bool {
    let g = |w: &Option<String>, n: &Option<String>| match (w, n) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(w), Some(n)) => glob::covers(w, n),
    };
    let r = |w: &Option<super::rules::Range>, n: &Option<super::rules::Range>| match (w, n) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(w), Some(n)) => w.covers(n),
    };
    let rev = match (&wide.reversibility, &narrow.reversibility) {
        (None, _) => true,
        (Some(w), None) => [
            Reversibility::Reversible,
            Reversibility::Compensable,
            Reversibility::Irreversible,
        ]
        .iter()
        .all(|x| w.contains(x)),
        (Some(w), Some(n)) => n.iter().all(|x| w.contains(x)),
    };
    g(&wide.agent, &narrow.agent)
        && g(&wide.action, &narrow.action)
        && g(&wide.kind, &narrow.kind)
        && g(&wide.target, &narrow.target)
        && r(&wide.amount, &narrow.amount)
        && r(&wide.cost, &narrow.cost)
        && rev
}

/// 1-based line of each `[[rule]]` header, in order.
fn rule_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim();
            t.starts_with("[[rule]]") || t.starts_with("[[ rule ]]")
        })
        .map(|(i, _)| i + 1)
        .collect()
}
