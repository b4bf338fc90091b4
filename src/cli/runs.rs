//! `keel runs list|show|replay` — through the core handle, like the console.

use std::process::ExitCode;

use clap::Subcommand;

use crate::core::handle::CoreHandle;
use crate::core::workspace::Workspace;
use crate::protocol::{Op, Page, Query, ReplayReport, RunDetail, RunRow};

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Agent runs, newest first.
    List {
        /// Only the runs of this task.
        #[arg(long)]
        task: Option<String>,
        /// Show at most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One run: its steps with rationale, cost, memory used and template version.
    Show {
        /// The run id.
        run: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Model spend from the recorded calls, totalled by role, task, run or day.
    Cost {
        /// role | task | run | day
        #[arg(long, default_value = "role")]
        by: String,
        /// Only this UTC day (YYYY-MM-DD; `today` for today).
        #[arg(long)]
        day: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Re-execute a run from its recorded calls (no network) and say whether it matches.
    Replay {
        /// The run id.
        run: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ws: &Workspace, cmd: &RunsCommand) -> anyhow::Result<ExitCode> {
    if let RunsCommand::Cost { by, day, json } = cmd {
        return cost(ws, by, day.as_deref(), *json);
    }
    let core = CoreHandle::start(ws.clone())?;
    let result = run_with(&core, cmd);
    core.shutdown();
    result
}

fn run_with(core: &CoreHandle, cmd: &RunsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RunsCommand::List { task, limit, json } => {
            let page: Page<RunRow> = core
                .request_blocking(Op::Query {
                    query: Query::Runs {
                        task: task.clone(),
                        offset: 0,
                        limit: *limit,
                    },
                })?
                .try_into()?;
            for r in &page.items {
                if *json {
                    super::say_json(r)?;
                } else {
                    super::say(&format!(
                        "{}  {:<10} {:<10} {:>3} steps  ${:.4}  {}+{} tok  {}  {}",
                        r.id,
                        r.role,
                        r.status,
                        r.step,
                        r.cost_usd,
                        r.tokens_in,
                        r.tokens_out,
                        r.provider,
                        crate::core::clock::rfc3339(r.started_ms)
                    ));
                }
            }
            if !*json {
                super::say(&format!("{} of {} runs", page.items.len(), page.total));
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Show { run, json } => {
            let d: RunDetail = core
                .request_blocking(Op::Query {
                    query: Query::RunDetail { id: run.clone() },
                })?
                .try_into()?;
            if *json {
                super::say_json(&d)?;
                return Ok(ExitCode::SUCCESS);
            }
            let r = &d.run;
            super::say(&format!(
                "run {} — {} for task {} — {}",
                r.id, r.role, r.task, r.status
            ));
            super::say(&format!("template {} {}", d.template, d.template_hash));
            super::say(&format!(
                "cost ${:.4}, {} in + {} out tokens, provider {}",
                r.cost_usd, r.tokens_in, r.tokens_out, r.provider
            ));
            if let Some(e) = &d.error {
                super::say(&format!("reason: {e}"));
            }
            for s in &d.steps {
                super::say(&format!(
                    "  #{:<3} {:<10} {:<20} {}",
                    s.index, s.kind, s.name, s.rationale
                ));
            }
            for m in &d.memory {
                super::say(&format!(
                    "  memory #{} {} v{} score {:.3}",
                    m.rank, m.item, m.version, m.score
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Cost { .. } => Ok(ExitCode::SUCCESS),
        RunsCommand::Replay { run, json } => replay(core, run, *json),
    }
}

/// `keel runs replay`: exit code 1 when the outcome differs.
fn replay(core: &CoreHandle, run: &str, json: bool) -> anyhow::Result<ExitCode> {
    let report: ReplayReport = core
        .request_blocking(Op::ReplayRun {
            id: run.to_string(),
        })?
        .try_into()?;
    let matches = report.matches;
    if json {
        super::say_json(&report)?;
    } else {
        super::say(&format!(
            "replay {} of {}: {} (then {}, now {})",
            report.replay,
            run,
            if matches {
                "outcome matches"
            } else {
                "OUTCOME DIFFERS"
            },
            report.original_status,
            report.replay_status
        ));
        for d in &report.differences {
            super::say(&format!("  {d}"));
        }
        for n in &report.notes {
            super::say(&format!("  note: {n}"));
        }
    }
    Ok(if matches {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cost(ws: &Workspace, by: &str, day: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    use crate::core::agents::cost::{self, By};
    let by = match by {
        "role" => By::Role,
        "task" => By::Task,
        "run" => By::Run,
        "day" => By::Day,
        other => anyhow::bail!("--by {other:?}: expected role, task, run or day"),
    };
    let today;
    let day = match day {
        Some("today") => {
            today = crate::core::agents::record::day_of(jiff::Timestamp::now().as_millisecond());
            Some(today.as_str())
        }
        other => other,
    };
    let store = ws.store()?;
    let rows = cost::spend(store.conn(), by, day)?;
    for r in &rows {
        if json {
            super::say_json(r)?;
        } else {
            super::say(&format!(
                "{:<38} {:>5} calls {:>9} in {:>8} out  ${:.4}",
                r.key, r.calls, r.tokens_in, r.tokens_out, r.cost_usd
            ));
        }
    }
    if !json {
        let total: f64 = rows.iter().map(|r| r.cost_usd).sum();
        super::say(&format!("total ${total:.4}"));
    }
    Ok(ExitCode::SUCCESS)
}
