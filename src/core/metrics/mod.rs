//! The value ledger: per workflow and per agent (role), what the work was worth — tasks
//! done, operator minutes saved, money spent on models, attributable revenue, approval
//! rate, failure and escalation rates — and today's model spend against the daily budget.
//!
//! Where each number comes from (nothing is estimated that the workspace does not record,
//! except minutes saved, which is the operator's own estimate):
//! - tasks: the queue (`tasks`); a task is *done* when it succeeded. Rates are over
//!   finished tasks (succeeded + failed + escalated); cancelled and unfinished ones are not
//!   outcomes. The `workflow` role (the orchestration task itself) is not an agent and is
//!   left out; its stage tasks count for their role and for the workflow.
//! - minutes saved: tasks done × `[value] minutes_saved` for the task's role.
//! - model spend: the recorded model calls (`model_calls`, replays are free), per role, and
//!   per workflow through the run's task.
//! - revenue: only what a succeeded task reports as a number in its output's `revenue_usd`
//!   field (an analyst reconciling paid analytics, an accountant's paid invoice). Revenue
//!   nobody reported is 0, never guessed.
//! - approvals: approved / decided (every status but pending), by the requesting agent and
//!   its workflow.
//! - budget today: the sum of the agents' `budget.day_usd` (a role with no daily limit adds
//!   nothing); spend today: every model call of the UTC day.

mod ledger;

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

pub use ledger::rows;

use crate::core::agents::service::AGENTS_DIR;
use crate::core::agents::template::Templates;
use crate::core::clock::Millis;
use crate::core::error::Result;
use crate::core::workspace::Workspace;
use crate::protocol::Metrics;

/// `[value]` in config.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValueConfig {
    /// Operator minutes one finished task of a role saves (a role not listed saves 0).
    pub minutes_saved: BTreeMap<String, f64>,
}

impl Default for ValueConfig {
    fn default() -> Self {
        let minutes = [
            ("accountant", 20.0),
            ("analyst", 30.0),
            ("editor", 20.0),
            ("publisher", 10.0),
            ("researcher", 30.0),
            ("scheduler", 5.0),
            ("writer", 45.0),
        ];
        ValueConfig {
            minutes_saved: minutes
                .into_iter()
                .map(|(role, m)| (role.to_string(), m))
                .collect(),
        }
    }
}

impl ValueConfig {
    #[must_use]
    pub fn minutes_for(&self, role: &str) -> f64 {
        self.minutes_saved.get(role).copied().unwrap_or(0.0)
    }
}

/// The sum of the agents' daily model budgets (`budget.day_usd`; zero means no limit and
/// adds nothing).
#[must_use]
pub fn daily_budget(templates: &Templates) -> f64 {
    templates
        .by_name
        .values()
        .map(|l| l.template.budget.day_usd)
        .filter(|usd| *usd > 0.0)
        .sum()
}

/// The ledger for `conn` on the UTC day of `now`.
pub fn compute(
    conn: &Connection,
    value: &ValueConfig,
    budget_today_usd: f64,
    now: Millis,
) -> Result<Metrics> {
    let today = crate::core::agents::record::day_of(now);
    Ok(Metrics {
        spend_today_usd: crate::core::agents::cost::day_total(conn, &today)?,
        budget_today_usd,
        rows: rows(conn, value)?,
    })
}

/// The ledger of `ws` (its config and agent templates) at `now`.
pub fn for_workspace(ws: &Workspace, conn: &Connection, now: Millis) -> Result<Metrics> {
    let templates = Templates::load(&ws.root.join(AGENTS_DIR))?;
    compute(conn, &ws.config.value, daily_budget(&templates), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_budgets_add_up_and_unlisted_roles_save_nothing() {
        let t = Templates::shipped().unwrap();
        let sum: f64 = t.by_name.values().map(|l| l.template.budget.day_usd).sum();
        assert!(sum > 0.0);
        assert!((daily_budget(&t) - sum).abs() < 1e-9);
        let v = ValueConfig::default();
        assert!((v.minutes_for("writer") - 45.0).abs() < f64::EPSILON);
        assert!(v.minutes_for("noop").abs() < f64::EPSILON);
    }
}
