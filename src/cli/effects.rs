//! `keel effects list|show|undo`: the effects ledger from the command line.

use std::process::ExitCode;

use clap::Subcommand;

use super::args::ListPage;
use crate::core::actions::undo;
use crate::core::clock::rfc3339;
use crate::core::effects::ledger::{self, Effect};
use crate::core::handle::CoreHandle;
use crate::core::workspace::Workspace;
use crate::protocol::{Op, Undone};

#[derive(Debug, Subcommand)]
pub enum EffectsCommand {
    /// List external actions, most recently changed first.
    List {
        /// Only effects in this state: intended, done, failed, compensated.
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        page: ListPage,
    },
    /// Show one effect (its key, or a unique prefix of 8+ characters).
    Show {
        /// The effect key, or a unique prefix of 8+ characters.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Undo a completed effect through its connector's compensation.
    Undo {
        /// The effect key, or a unique prefix of 8+ characters.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ws: &Workspace, cmd: &EffectsCommand) -> anyhow::Result<ExitCode> {
    let store = ws.store()?;
    match cmd {
        EffectsCommand::List {
            state,
            page: ListPage { limit, json },
        } => {
            if let Some(s) = state
                && !["intended", "done", "failed", "compensated"].contains(&s.as_str())
            {
                anyhow::bail!("unknown state {s:?}: use intended, done, failed or compensated");
            }
            let rows = ledger::list(store.conn(), state.as_deref(), *limit)?;
            for e in &rows {
                if *json {
                    super::say_json(e)?;
                } else {
                    super::say(&line(e));
                }
            }
            if !*json {
                super::say(&format!("{} effects", rows.len()));
            }
        }
        EffectsCommand::Show { id, json } => {
            let key = undo::resolve_key(store.conn(), id)?;
            let e = ledger::get(store.conn(), &key)?
                .ok_or_else(|| anyhow::anyhow!("no effect {key}"))?;
            if *json {
                super::say_json(&e)?;
            } else {
                super::say(&line(&e));
                super::say(&format!("task     {} (step {})", e.task, e.step));
                super::say(&format!("args     {}", e.args));
                if let Some(r) = &e.result {
                    super::say(&format!("result   {r}"));
                }
                if let Some(err) = &e.error {
                    super::say(&format!("error    {err}"));
                }
            }
        }
        EffectsCommand::Undo { id, json } => {
            let handle = CoreHandle::start(ws.clone())?;
            let answer = handle.request_blocking(Op::UndoEffect { id: id.clone() });
            handle.shutdown();
            let out: Undone = answer?.try_into()?;
            if *json {
                super::say_json(&out)?;
            } else {
                super::say(&format!("undone: {} ({})", out.action, out.key));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn line(e: &Effect) -> String {
    format!(
        "{:.16}  {:<11} {:<16} {}",
        e.key,
        e.state.as_str(),
        e.action,
        rfc3339(e.updated_ms)
    )
}
