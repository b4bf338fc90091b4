//! Answers for the console and the CLI: `Query::Runs` and `Query::RunDetail`.

use rusqlite::Connection;

use super::record::{self, RunRecord};
use crate::core::error::{Error, Result};
use crate::protocol::{MemorySliceRow, Page, RunDetail, RunRow, RunStep};

fn row(r: &RunRecord) -> RunRow {
    RunRow {
        id: r.id.clone(),
        task: r.task.clone(),
        role: r.role.clone(),
        status: r.status.clone(),
        step: r.step,
        current: r.current.clone(),
        tokens_in: r.tokens_in,
        tokens_out: r.tokens_out,
        cost_usd: r.cost_usd,
        provider: r.provider.clone(),
        started_ms: r.started_ms,
        finished_ms: r.finished_ms,
        output_preview: r.output_preview.clone(),
    }
}

/// Runs, newest first.
pub fn runs(
    conn: &Connection,
    task: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<Page<RunRow>> {
    let (items, total) = record::list_runs(conn, task, offset, limit)?;
    Ok(Page {
        items: items.iter().map(row).collect(),
        total,
    })
}

/// Everything about one run: steps with rationale, memory used, template version.
pub fn run_detail(conn: &Connection, id: &str) -> Result<RunDetail> {
    let r = record::load_run(conn, id)?.ok_or_else(|| Error::NotFound {
        kind: "run".into(),
        id: id.into(),
    })?;
    let steps = record::steps(conn, id)?
        .into_iter()
        .map(|s| RunStep {
            index: s.idx,
            kind: s.kind,
            name: s.name,
            input: s.input,
            output: s.output,
            rationale: s.rationale,
            tokens_in: s.tokens_in,
            tokens_out: s.tokens_out,
            cost_usd: s.cost_usd,
            latency_ms: s.latency_ms,
        })
        .collect();
    let memory = memory_used(conn, id)?;
    let template = record::template_body(conn, &r.template_hash)?
        .map_or_else(|| r.role.clone(), |(name, _)| name);
    Ok(RunDetail {
        run: row(&r),
        input: r.input.clone(),
        template,
        template_hash: r.template_hash.clone(),
        steps,
        memory,
        error: r.error.clone(),
    })
}

/// The memory a run retrieved (`Query::MemoryUsed`), in rank order.
pub fn memory_used(conn: &Connection, run: &str) -> Result<Vec<MemorySliceRow>> {
    Ok(record::memory(conn, run)?
        .slices
        .into_iter()
        .enumerate()
        .map(|(rank, s)| MemorySliceRow {
            item: s.item,
            version: s.version,
            rank: i64::try_from(rank).unwrap_or(0),
            score: s.score,
            kind: s.kind,
            preview: s.text.chars().take(200).collect(),
        })
        .collect())
}
