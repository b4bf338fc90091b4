//! `keel memory add|import|search|explain|forget|promote|demote|sweep|reindex|stats|check|triage|decide`.
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
use std::sync::Arc;

use anyhow::Context as _;

use crate::cli::{say, say_json};
use crate::core::audit::Actor;
use crate::core::clock::SystemClock;
use crate::core::memory::kb::{self};
use crate::core::memory::{Memory, Tier};
use crate::core::store::Store;
use crate::core::workspace::Workspace;
use index::{check_index, reindex, triage, triage_item};
use query::{explain_run, search_items};
use write::{add_item, import_files};

pub(super) fn open(ws: &Workspace) -> anyhow::Result<(Store, Memory)> {
    let mut store = ws.store()?;
    let memory = Memory::open(ws, &mut store, Arc::new(SystemClock))?;
    Ok((store, memory))
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
    let actor = Actor::Operator;
    match cmd {
        MemoryCommand::Add(args) => add_item(ws, &actor, args),
        MemoryCommand::Import(args) => import_files(ws, &actor, args),
        MemoryCommand::Search(args) => search_items(ws, args),
        MemoryCommand::Explain { run, json } => explain_run(ws, run, *json),
        MemoryCommand::Forget { id, reason } => {
            let (mut store, memory) = open(ws)?;
            kb::forget(&mut store, &memory, &actor, id, reason)?;
            say(&format!("forgot {id}"));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Promote { id } => {
            let (mut store, memory) = open(ws)?;
            let v = kb::set_tier(&mut store, &memory, &actor, id, Tier::Long, None)?;
            say(&format!("{id} is long-term memory (version {v})"));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Demote { id, ttl_hours } => {
            let (mut store, memory) = open(ws)?;
            let v = kb::set_tier(
                &mut store,
                &memory,
                &actor,
                id,
                Tier::Task,
                ttl_hours.map(hours),
            )?;
            say(&format!("{id} is task state (version {v})"));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Sweep => {
            let (mut store, memory) = open(ws)?;
            let gone = kb::sweep(&mut store, &memory)?;
            say(&format!("swept {} expired item(s)", gone.len()));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Reindex => reindex(ws),
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
        MemoryCommand::Triage { text, json } => triage_item(ws, &actor, text, *json),
        MemoryCommand::Decide {
            decision,
            label,
            task: true,
        } => {
            let catalog = crate::core::queue::RoleCatalog::load(&ws.root)?;
            let mut store = ws.store()?;
            let now = crate::core::clock::Clock::now_ms(&crate::core::clock::SystemClock);
            store.write(|tx| {
                crate::core::roles::triage::decide(tx, now, &actor, &catalog, decision, label)
            })?;
            say(&format!(
                "task {decision}: routed by the operator as {label}; the label is learned"
            ));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Decide {
            decision, label, ..
        } => {
            let (mut store, memory) = open(ws)?;
            triage(ws, &memory).resolve(&mut store, &actor, decision, label)?;
            say(&format!("decision {decision} labelled {label}"));
            Ok(ExitCode::SUCCESS)
        }
    }
}
