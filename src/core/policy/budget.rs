//! Spend accounting for budgets: what each agent spent today and each workflow in total.

use rusqlite::{Connection, Transaction, params};

use super::request::ActionRequest;
use crate::core::clock::Millis;
use crate::core::error::Result;
use crate::core::ids;

/// Where the engine learns what has been spent already.
pub trait SpendLookup {
    /// Spent by `agent` on the UTC day `day` (`YYYY-MM-DD`).
    fn spent_by_agent(&self, agent: &str, day: &str) -> Result<f64>;
    /// Spent by `workflow` in total.
    fn spent_by_workflow(&self, workflow: &str) -> Result<f64>;
}

impl SpendLookup for Connection {
    fn spent_by_agent(&self, agent: &str, day: &str) -> Result<f64> {
        Ok(self.query_row(
            "SELECT COALESCE(SUM(amount), 0) FROM policy_spend WHERE agent = ?1 AND day = ?2",
            params![agent, day],
            |r| r.get(0),
        )?)
    }

    fn spent_by_workflow(&self, workflow: &str) -> Result<f64> {
        Ok(self.query_row(
            "SELECT COALESCE(SUM(amount), 0) FROM policy_spend WHERE workflow = ?1",
            params![workflow],
            |r| r.get(0),
        )?)
    }
}

/// Records what an allowed action spent (call it in the transaction that records the effect).
pub fn record_spend(tx: &Transaction<'_>, req: &ActionRequest, now_ms: Millis) -> Result<()> {
    let amount = req.spend();
    if amount <= 0.0 {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO policy_spend (id, agent, workflow, action, day, amount, ts_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            ids::new_id(),
            req.agent,
            req.workflow,
            req.action,
            utc_day(now_ms),
            amount,
            now_ms
        ],
    )?;
    Ok(())
}

/// `YYYY-MM-DD` of `ms` in UTC.
#[must_use]
pub fn utc_day(ms: Millis) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(
        |_| "invalid-date".to_string(),
        |t| t.strftime("%Y-%m-%d").to_string(),
    )
}
