//! `keel memory check|stats|triage`: the index and the triage of new text.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::{say, say_json};
use crate::core::memory::{Memory, check, versions};
use crate::core::store::Store;
use crate::core::workspace::Workspace;
use crate::protocol::{CheckReport, Op, TriageDecision};

use super::{open, request};

pub(super) fn check_index(ws: &Workspace, repair: bool, json: bool) -> anyhow::Result<ExitCode> {
    let report: CheckReport = if repair {
        request(ws, Op::RepairMemory)?.try_into()?
    } else {
        let (store, memory) = open(ws)?;
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

pub(super) fn triage_item(ws: &Workspace, text: &str, json: bool) -> anyhow::Result<ExitCode> {
    let decisions: Vec<TriageDecision> = request(
        ws,
        Op::TriageText {
            text: text.to_string(),
        },
    )?
    .try_into()?;
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
