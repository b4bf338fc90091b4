//! `keel analytics import FILE` (the analyst's weekly job: metric rows become `metric`
//! objects linked to publications, then reconciled onto publications, ideas and memory) and
//! `keel analytics rank` (the researcher's ranking over ideas and measured outcomes, with
//! the built-in offline rules). Both write, so both go through the core handle.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;

use super::{say, say_json};
use crate::core::handle::CoreHandle;
use crate::core::workspace::Workspace;
use crate::protocol::{AnalyticsImported, Op, Ranked};

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
    let handle = CoreHandle::start(ws.clone())?;
    let code = match cmd {
        AnalyticsCommand::Import { file, json } => import(&handle, file, *json),
        AnalyticsCommand::Rank { goals, json } => rank(&handle, goals, *json),
    };
    handle.shutdown();
    code
}

fn import(handle: &CoreHandle, file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let csv =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let source = file.display().to_string();
    let done: AnalyticsImported = handle
        .request_blocking(Op::ImportAnalytics {
            csv,
            source: source.clone(),
        })?
        .try_into()?;
    let (report, rec) = (&done.import, &done.reconciled);
    if json {
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

fn rank(handle: &CoreHandle, goals: &[String], json: bool) -> anyhow::Result<ExitCode> {
    let goals: Vec<String> = if goals.is_empty() {
        crate::core::demo::GOALS
            .iter()
            .map(|g| (*g).to_string())
            .collect()
    } else {
        goals.to_vec()
    };
    let ranked: Vec<Ranked> = handle
        .request_blocking(Op::RankIdeas { goals })?
        .try_into()?;
    if json {
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
