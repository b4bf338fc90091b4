//! The memory ops: adds, imports, forgetting, tiers, sweeps, index rebuilds and repairs, runs'
//! recorded retrievals, and triage, all as the operator, on the memory the core keeps open.

use std::path::Path;

use crate::core::audit::Actor;
use crate::core::error::{Error, Result};
use crate::core::memory::triage::Triage;
use crate::core::memory::{check, import, kb, retrieval, versions};
use crate::protocol::{Answer, Op};

use super::CoreContext;

pub fn op(ctx: &mut CoreContext, op: Op) -> Result<Answer> {
    let memory = ctx.memory()?;
    let actor = Actor::Operator;
    let store = &mut ctx.store;
    let answer = match op {
        Op::AddMemory { item } => {
            Answer::MemoryAdded(Box::new(kb::add(store, &memory, &actor, &item)?))
        }
        Op::ImportMemory {
            path,
            kind,
            tier,
            tags,
        } => {
            let options = import::ImportOptions { kind, tier, tags };
            Answer::MemoryImported(Box::new(import::import(
                store,
                &memory,
                &actor,
                Path::new(&path),
                &options,
            )?))
        }
        Op::ForgetMemory { id, reason } => {
            kb::forget(store, &memory, &actor, &id, &reason)?;
            Answer::Done
        }
        Op::SetMemoryTier { id, tier, ttl_ms } => {
            Answer::MemoryVersion(kb::set_tier(store, &memory, &actor, &id, tier, ttl_ms)?)
        }
        Op::SweepMemory => Answer::MemorySwept(kb::sweep(store, &memory)?),
        Op::ReindexMemory => Answer::MemoryReindexed(reindex(ctx, &memory)?),
        Op::RepairMemory => Answer::MemoryChecked(Box::new(check::repair(store, &memory)?)),
        Op::RetrieveForRun { run, text, params } => Answer::Retrieved(Box::new(
            retrieval::retrieve(store, &memory, &run, &text, &params)?,
        )),
        Op::TriageText { text } => {
            Answer::Triaged(triage(ctx, &memory).classify(&mut ctx.store, &actor, &text)?)
        }
        Op::LabelTriage { decision, label } => {
            triage(ctx, &memory).resolve(&mut ctx.store, &actor, &decision, &label)?;
            Answer::Done
        }
        other => return Err(Error::Other(format!("not a memory op: {other:?}"))),
    };
    ctx.notify("memory", "memory.changed");
    Ok(answer)
}

/// The triage classifier over the current embedder and the workspace's `[triage]` settings.
fn triage(ctx: &CoreContext, memory: &crate::core::memory::Memory) -> Triage {
    Triage::new(
        std::sync::Arc::clone(&memory.embedders[0]),
        ctx.workspace.config.triage.clone(),
        ctx.clock.clone(),
    )
}

/// Finishes a migration to a new embedding model, or rebuilds the current index (on a
/// thread of its own connection, as `keel run`'s background rebuild does).
fn reindex(ctx: &mut CoreContext, memory: &crate::core::memory::Memory) -> Result<String> {
    let current = memory.current_version().id();
    let state = versions::get(ctx.store.conn(), &current)?
        .map(|v| v.state)
        .unwrap_or_default();
    if state == "building" {
        let report = versions::migrate(&mut ctx.store, memory, &|done, total| {
            tracing::info!(done, total, "re-embedding");
        })?;
        return Ok(format!(
            "re-embedded {} chunk(s) with {}; retired {:?}",
            report.embedded, report.version, report.retired
        ));
    }
    let copied = versions::rebuild_in_background(
        ctx.store.path().to_path_buf(),
        ctx.workspace.config.store.durability,
        memory.clone(),
    )
    .join()
    .map_err(|_| Error::Other("the index rebuild thread panicked".into()))??;
    Ok(format!(
        "rebuilt the index for {current} ({copied} vectors)"
    ))
}
