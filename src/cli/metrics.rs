//! `keel metrics [--json]`: the value ledger — per workflow and per agent: tasks done,
//! operator minutes saved, model spend, attributable revenue, approval, failure and
//! escalation rates — and today's model spend against the daily budget.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;

use super::{say, say_json};
use crate::core::handle::CoreHandle;
use crate::core::workspace::Workspace;
use crate::protocol::{Metrics, Op, Query};

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// One JSON object (the protocol's `Metrics`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ws: &Workspace, args: &MetricsArgs) -> anyhow::Result<ExitCode> {
    let handle = CoreHandle::start(ws.clone())?;
    let answer = handle.request_blocking(Op::Query {
        query: Query::Metrics,
    });
    handle.shutdown();
    let metrics: Metrics = answer?.try_into()?;
    if args.json {
        say_json(&metrics)?;
    } else {
        say(&table(&metrics));
    }
    Ok(ExitCode::SUCCESS)
}

/// The ledger as a plain-text table; a rate over nothing shows `-`.
#[must_use]
pub fn table(m: &Metrics) -> String {
    let mut out = format!(
        "spend today ${:.4} of ${:.2} daily budget\n\n{:<9} {:<14} {:>5} {:>8} {:>10} {:>10} {:>8} {:>7} {:>9}\n",
        m.spend_today_usd,
        m.budget_today_usd,
        "scope",
        "name",
        "done",
        "minutes",
        "model $",
        "revenue $",
        "approved",
        "failed",
        "escalated"
    );
    if m.rows.is_empty() {
        out.push_str("(no work recorded yet)\n");
    }
    for r in &m.rows {
        let _ = writeln!(
            out,
            "{:<9} {:<14} {:>5} {:>8.0} {:>10.4} {:>10.2} {:>8} {:>7} {:>9}",
            r.scope,
            r.name,
            r.tasks_done,
            r.minutes_saved,
            r.model_spend_usd,
            r.revenue_usd,
            percent(r.approval_rate, r.approvals_decided),
            percent(r.failure_rate, r.tasks_finished),
            percent(r.escalation_rate, r.tasks_finished),
        );
    }
    out.trim_end().to_string()
}

fn percent(rate: f64, over: i64) -> String {
    if over == 0 {
        "-".into()
    } else {
        format!("{:.0}%", rate * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ValueRow;

    #[test]
    fn a_rate_over_nothing_is_a_dash_not_zero_percent() {
        let m = Metrics {
            spend_today_usd: 0.0123,
            budget_today_usd: 7.9,
            rows: vec![ValueRow {
                scope: "agent".into(),
                name: "writer".into(),
                tasks_done: 2,
                tasks_finished: 2,
                ..ValueRow::default()
            }],
        };
        let text = table(&m);
        let line = text.lines().last().unwrap();
        // No approval decided: a dash; two finished tasks, none failed: 0%.
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[cols.len() - 3..], ["-", "0%", "0%"], "{line}");
        assert!(text.starts_with("spend today $0.0123 of $7.90"), "{text}");
    }
}
