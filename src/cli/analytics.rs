//! `keel analytics import FILE` (the analyst's weekly job: metric rows become `metric`
//! objects linked to publications, then reconciled onto publications, ideas and memory) and
//! `keel analytics rank` (the researcher's ranking over ideas and measured outcomes, with
//! the built-in offline rules).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;

use super::{say, say_json};
use crate::core::audit::Actor;
use crate::core::clock::{Clock, SystemClock};
use crate::core::memory::Memory;
use crate::core::objects::Kinds;
use crate::core::workspace::Workspace;

#[derive(Debug, Subcommand)]
pub enum AnalyticsCommand {
    /// Import a CSV (columns publication,metric,value,date) and reconcile it.
    Import {
        /// The CSV file to import.
        file: PathBuf,
        /// One JSON object (import report and reconciliation) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Rank ideas against the goals, weighing measured outcomes; records them on ideas.
    Rank {
        /// A goal to rank against (repeat); defaults to the demo business's goal.
        #[arg(long = "goal")]
        goals: Vec<String>,
        /// The ranking as a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ws: &Workspace, cmd: &AnalyticsCommand) -> anyhow::Result<ExitCode> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now_ms();
    let kinds = Kinds::from_config(&ws.config)?;
    let mut store = ws.store()?;
    let actor = Actor::Operator;
    match cmd {
        AnalyticsCommand::Import { file, json } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let source = file.display().to_string();
            let report =
                crate::core::outcomes::import_csv(&mut store, &kinds, &actor, now, &text, &source)?;
            let memory = Memory::open(ws, &mut store, clock.clone())?;
            let rec =
                crate::core::outcomes::reconcile(&mut store, &kinds, Some(&memory), &actor, now)?;
            if *json {
                say_json(&json!({"import": report, "reconciled": rec}))?;
            } else {
                let mut out = format!(
                    "imported {} rows from {source}; {} rejected\n",
                    report.imported,
                    report.rejected.len()
                );
                for r in &report.rejected {
                    let _ = writeln!(out, "  line {}: {}", r.line, r.message);
                }
                let _ = write!(
                    out,
                    "reconciled: {} publications, {} ideas updated, {} outcome notes added to memory",
                    rec.publications.len(),
                    rec.ideas.len(),
                    rec.notes
                );
                say(&out);
            }
            Ok(if report.rejected.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AnalyticsCommand::Rank { goals, json } => {
            let goals: Vec<String> = if goals.is_empty() {
                crate::core::demo::GOALS
                    .iter()
                    .map(|g| (*g).to_string())
                    .collect()
            } else {
                goals.clone()
            };
            let ranked =
                crate::core::research::rank_ideas(&mut store, &kinds, &actor, now, &goals)?;
            if *json {
                say_json(&ranked)?;
            } else {
                let lines: Vec<String> = ranked
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        format!(
                            "{:>2}. {:<40} {:>5.2}  {}",
                            i + 1,
                            r.id,
                            r.score,
                            r.rationale
                        )
                    })
                    .collect();
                say(&format!(
                    "offline researcher (rules, not a language model)\n{}",
                    lines.join("\n")
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
