//! The ledger's queries: three grouped reads (tasks, model calls, approvals), each by
//! (workflow, role), folded into one row per workflow and one per agent.

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::ValueConfig;
use crate::core::error::Result;
use crate::protocol::ValueRow;

#[derive(Debug, Default)]
struct Tally {
    done: i64,
    failed: i64,
    escalated: i64,
    finished: i64,
    minutes: f64,
    spend: f64,
    revenue: f64,
    approved: i64,
    decided: i64,
}

impl Tally {
    fn row(&self, scope: &str, name: &str) -> ValueRow {
        ValueRow {
            scope: scope.to_string(),
            name: name.to_string(),
            tasks_done: self.done,
            minutes_saved: self.minutes,
            model_spend_usd: self.spend,
            revenue_usd: self.revenue,
            approval_rate: ratio(self.approved, self.decided),
            failure_rate: ratio(self.failed, self.finished),
            escalation_rate: ratio(self.escalated, self.finished),
            tasks_finished: self.finished,
            approvals_decided: self.decided,
        }
    }
}

/// `part / whole`, 0 when nothing was counted (the row's counts say so).
#[allow(clippy::cast_precision_loss)] // task counts stay far below 2^52
fn ratio(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Accumulates into the workflow row (when there is a workflow) and the agent row.
struct Ledger {
    workflows: BTreeMap<String, Tally>,
    agents: BTreeMap<String, Tally>,
}

impl Ledger {
    fn add(&mut self, workflow: Option<&str>, role: &str, f: impl Fn(&mut Tally)) {
        if let Some(w) = workflow.filter(|w| !w.is_empty()) {
            f(self.workflows.entry(w.to_string()).or_default());
        }
        f(self.agents.entry(role.to_string()).or_default());
    }
}

/// One row per workflow, then one per agent, each sorted by name.
pub fn rows(conn: &Connection, value: &ValueConfig) -> Result<Vec<ValueRow>> {
    let mut ledger = Ledger {
        workflows: BTreeMap::new(),
        agents: BTreeMap::new(),
    };
    add_tasks(conn, value, &mut ledger)?;
    add_spend(conn, &mut ledger)?;
    add_approvals(conn, &mut ledger)?;
    let mut rows: Vec<ValueRow> = ledger
        .workflows
        .iter()
        .map(|(n, t)| t.row("workflow", n))
        .collect();
    rows.extend(ledger.agents.iter().map(|(n, t)| t.row("agent", n)));
    Ok(rows)
}

fn add_tasks(conn: &Connection, value: &ValueConfig, ledger: &mut Ledger) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT workflow, role,
                sum(state = 'succeeded'), sum(state = 'failed'), sum(state = 'escalated'),
                sum(state IN ('succeeded', 'failed', 'escalated')),
                coalesce(sum(CASE WHEN state = 'succeeded' AND json_valid(output)
                                   AND json_type(output, '$.revenue_usd') IN ('integer', 'real')
                              THEN json_extract(output, '$.revenue_usd') END), 0.0)
         FROM tasks WHERE role != 'workflow' GROUP BY workflow, role",
    )?;
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        let workflow: Option<String> = r.get(0)?;
        let role: String = r.get(1)?;
        let (done, failed, escalated, finished): (i64, i64, i64, i64) =
            (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
        let revenue: f64 = r.get(6)?;
        #[allow(clippy::cast_precision_loss)] // task counts stay far below 2^52
        let minutes = done as f64 * value.minutes_for(&role);
        ledger.add(workflow.as_deref(), &role, |t| {
            t.done += done;
            t.failed += failed;
            t.escalated += escalated;
            t.finished += finished;
            t.minutes += minutes;
            t.revenue += revenue;
        });
    }
    Ok(())
}

fn add_spend(conn: &Connection, ledger: &mut Ledger) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT t.workflow, c.role, sum(c.cost_usd)
         FROM model_calls c JOIN agent_runs r ON r.id = c.run
         LEFT JOIN tasks t ON t.id = r.task
         GROUP BY t.workflow, c.role",
    )?;
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        let workflow: Option<String> = r.get(0)?;
        let role: String = r.get(1)?;
        let spend: f64 = r.get(2)?;
        ledger.add(workflow.as_deref(), &role, |t| t.spend += spend);
    }
    Ok(())
}

fn add_approvals(conn: &Connection, ledger: &mut Ledger) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT workflow, agent, sum(status = 'approved'), sum(status != 'pending')
         FROM approvals GROUP BY workflow, agent",
    )?;
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        let workflow: Option<String> = r.get(0)?;
        let agent: String = r.get(1)?;
        let (approved, decided): (i64, i64) = (r.get(2)?, r.get(3)?);
        ledger.add(workflow.as_deref(), &agent, |t| {
            t.approved += approved;
            t.decided += decided;
        });
    }
    Ok(())
}
