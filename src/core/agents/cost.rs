//! The cost ledger of model use: tokens and money per call (`model_calls`), per run, per
//! task, per role and per day, from the recorded calls (replays cost nothing and are not
//! counted). Workflow totals are the sum over a workflow's tasks (the coordinator knows
//! which tasks belong to which workflow).

use rusqlite::Connection;
use serde::Serialize;

use crate::core::error::Result;

/// One line of a spend report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendRow {
    /// The role, task, run or day this line totals.
    pub key: String,
    pub calls: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
}

/// What to total by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Role,
    Task,
    Run,
    Day,
}

/// Totals of recorded calls grouped `by`, optionally only on `day` (UTC, `YYYY-MM-DD`),
/// most expensive first.
pub fn spend(conn: &Connection, by: By, day: Option<&str>) -> Result<Vec<SpendRow>> {
    let key = match by {
        By::Role => "c.role",
        By::Task => "r.task",
        By::Run => "c.run",
        By::Day => "c.day",
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {key}, count(*), sum(c.tokens_in), sum(c.tokens_out), sum(c.cost_usd)
         FROM model_calls c JOIN agent_runs r ON r.id = c.run
         WHERE (?1 IS NULL OR c.day = ?1) GROUP BY {key} ORDER BY sum(c.cost_usd) DESC, {key}"
    ))?;
    let rows = stmt
        .query_map([day], |r| {
            Ok(SpendRow {
                key: r.get(0)?,
                calls: r.get(1)?,
                tokens_in: r.get(2)?,
                tokens_out: r.get(3)?,
                cost_usd: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Total dollars spent on `day` by every role (for the console's "spend today").
pub fn day_total(conn: &Connection, day: &str) -> Result<f64> {
    Ok(conn.query_row(
        "SELECT coalesce(sum(cost_usd), 0) FROM model_calls WHERE day = ?1",
        [day],
        |r| r.get(0),
    )?)
}
