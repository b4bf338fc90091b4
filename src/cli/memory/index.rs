//! `keel memory reindex|check|stats|triage`: the index and the triage of new text.

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

use crate::cli::{say, say_json};
use crate::core::audit::Actor;
use crate::core::clock::SystemClock;
use crate::core::memory::triage::Triage;
use crate::core::memory::{Memory, check, versions};
use crate::core::store::Store;
use crate::core::workspace::Workspace;

use super::open;

pub(super) fn reindex(ws: &Workspace) -> anyhow::Result<ExitCode> {
    let (mut store, memory) = open(ws)?;
    let current = memory.current_version().id();
    let state = versions::get(store.conn(), &current)?
        .map(|v| v.state)
        .unwrap_or_default();
    if state == "building" {
        let report = versions::migrate(&mut store, &memory, &|done, total| {
            tracing::info!(done, total, "re-embedding");
        })?;
        say(&format!(
            "re-embedded {} chunk(s) with {}; retired {:?}",
            report.embedded, report.version, report.retired
        ));
    } else {
        let handle = versions::rebuild_in_background(
            store.path().to_path_buf(),
            ws.config.store.durability,
            memory,
        );
        let copied = handle
            .join()
            .map_err(|_| anyhow::anyhow!("the rebuild thread panicked"))??;
        say(&format!(
            "rebuilt the index for {current} ({copied} vectors)"
        ));
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn check_index(ws: &Workspace, repair: bool, json: bool) -> anyhow::Result<ExitCode> {
    let (mut store, memory) = open(ws)?;
    let report = if repair {
        check::repair(&mut store, &memory)?
    } else {
        check::check(store.conn(), &memory)?
    };
    if json {
        say_json(&report)?;
    } else {
        for v in &report.versions {
            say(&format!(
                "{} ({}): {} indexed, {} missing, {} orphan(s)",
                v.embedding,
                v.state,
                v.indexed,
                v.missing.len(),
                v.orphans.len()
            ));
        }
        say(if report.is_consistent() {
            "consistent"
        } else {
            "inconsistent: run `keel memory check --repair`"
        });
    }
    Ok(if report.is_consistent() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The triage classifier over the current embedder and the workspace's `[triage]` settings.
pub(super) fn triage(ws: &Workspace, memory: &Memory) -> Triage {
    Triage::new(
        Arc::clone(&memory.embedders[0]),
        ws.config.triage.clone(),
        Arc::new(SystemClock),
    )
}

pub(super) fn triage_item(
    ws: &Workspace,
    actor: &Actor,
    text: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (mut store, memory) = open(ws)?;
    let decisions = triage(ws, &memory).classify(&mut store, actor, text)?;
    if json {
        say_json(&decisions)?;
    } else {
        for d in &decisions {
            say(&format!(
                "{}: {} (confidence {:.2}) → {}  [decision {}]",
                d.facet,
                d.label.as_deref().unwrap_or("?"),
                d.confidence,
                d.routed,
                d.id
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Counts and state for `keel memory stats`.
pub fn stats(store: &Store, memory: &Memory) -> anyhow::Result<serde_json::Value> {
    let conn = store.conn();
    let count = |sql: &str| -> anyhow::Result<i64> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
    Ok(json!({
        "items": count("SELECT count(*) FROM memory_items")?,
        "long_term": count("SELECT count(*) FROM memory_items WHERE tier = 'long'")?,
        "task_state": count("SELECT count(*) FROM memory_items WHERE tier = 'task'")?,
        "chunks": count("SELECT count(*) FROM memory_chunks")?,
        "retrievals": count("SELECT count(*) FROM retrievals")?,
        "triage_decisions": count("SELECT count(*) FROM triage_decisions")?,
        "embedding_versions": versions::list(conn)?,
        "current_embedding": memory.current_version().id(),
        "vector_disk_bytes": memory.vectors().disk_size()?,
        "vector_map_bytes": memory.vectors().map_size(),
    }))
}
