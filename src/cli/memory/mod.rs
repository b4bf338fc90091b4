//! `keel memory add|import|search|explain|forget|promote|demote|sweep|reindex|stats|check|triage|decide`.
//! Every write goes through the core handle ([`request`]); searches, explanations, stats and
//! checks read directly.
//!
//! - [`args`] — the subcommands and their arguments.
//! - [`write`] — adding and importing items.
//! - [`query`] — searching memory and explaining what a run retrieved.
//! - [`index`] — reindex, check, stats and triage.

mod args;
mod index;
mod query;
mod write;

pub use args::MemoryCommand;
pub use index::stats;

use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::{say, say_json};
use crate::core::handle::CoreHandle;
use crate::core::memory::{Memory, Tier};
use crate::core::store::Store;
use crate::core::workspace::Workspace;
use crate::protocol::{Answer, Op};
use index::{check_index, triage_item};
use query::{explain_run, search_items};
use write::{add_item, import_files};

pub(super) fn open(ws: &Workspace) -> anyhow::Result<(Store, Memory)> {
    Ok(crate::core::memory::open_for_reading(ws)?)
}

/// Sends one memory op to a core started on `ws` for it.
pub(super) fn request(ws: &Workspace, op: Op) -> anyhow::Result<Answer> {
    let handle = CoreHandle::start(ws.clone())?;
    let answer = handle.request_blocking(op);
    handle.shutdown();
    Ok(answer?)
}

pub(super) fn hours(h: u64) -> i64 {
    i64::try_from(h)
        .unwrap_or(i64::MAX / 3_600_000)
        .saturating_mul(3_600_000)
}

pub(super) fn parse_object(s: &str) -> anyhow::Result<crate::protocol::ObjectRef> {
    let (kind, rest) = s
        .split_once('/')
        .context("--object must look like KIND/ID@VERSION")?;
    let (id, version) = rest
        .split_once('@')
        .context("--object must look like KIND/ID@VERSION")?;
    Ok(crate::protocol::ObjectRef {
        kind: kind.into(),
        id: id.into(),
        version: version
            .parse()
            .context("the object version must be a number")?,
    })
}

pub fn run(ws: &Workspace, cmd: &MemoryCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        MemoryCommand::Add(args) => add_item(ws, args),
        MemoryCommand::Import(args) => import_files(ws, args),
        MemoryCommand::Search(args) => search_items(ws, args),
        MemoryCommand::Explain { run, json } => explain_run(ws, run, *json),
        MemoryCommand::Forget { id, reason } => {
            request(
                ws,
                Op::ForgetMemory {
                    id: id.clone(),
                    reason: reason.clone(),
                },
            )?;
            say(&format!("forgot {id}"));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Promote { id } => {
            let v = set_tier(ws, id, Tier::Long, None)?;
            say(&format!("{id} is long-term memory (version {v})"));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Demote { id, ttl_hours } => {
            let v = set_tier(ws, id, Tier::Task, ttl_hours.map(hours))?;
            say(&format!("{id} is task state (version {v})"));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Sweep => {
            let gone: Vec<String> = request(ws, Op::SweepMemory)?.try_into()?;
            say(&format!("swept {} expired item(s)", gone.len()));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Reindex => {
            let done: String = request(ws, Op::ReindexMemory)?.try_into()?;
            say(&done);
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Stats { json } => {
            let (store, memory) = open(ws)?;
            let stats = stats(&store, &memory)?;
            if *json {
                say_json(&stats)?;
            } else {
                say(&serde_json::to_string_pretty(&stats)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Check { repair, json } => check_index(ws, *repair, *json),
        MemoryCommand::Triage { text, json } => triage_item(ws, text, *json),
        MemoryCommand::Decide {
            decision,
            label,
            task: true,
        } => {
            request(
                ws,
                Op::DecideTriage {
                    id: decision.clone(),
                    label: label.clone(),
                },
            )?;
            say(&format!(
                "task {decision}: routed by the operator as {label}; the label is learned"
            ));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Decide {
            decision, label, ..
        } => {
            request(
                ws,
                Op::LabelTriage {
                    decision: decision.clone(),
                    label: label.clone(),
                },
            )?;
            say(&format!("decision {decision} labelled {label}"));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn set_tier(ws: &Workspace, id: &str, tier: Tier, ttl_ms: Option<i64>) -> anyhow::Result<i64> {
    Ok(request(
        ws,
        Op::SetMemoryTier {
            id: id.to_string(),
            tier,
            ttl_ms,
        },
    )?
    .try_into()?)
}
