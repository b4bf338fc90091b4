//! The agents' tables: runs, checkpointed steps, recorded model calls and retrieved memory.
//! Writers take the caller's transaction so each change commits with its audit entry.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::Value;

use super::template::Loaded;
use super::tools::Retrieval;
use crate::core::clock::Millis;
use crate::core::error::Result;
use crate::core::llm::ChatResponse;

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: String,
    pub task: String,
    pub role: String,
    pub template_hash: String,
    pub status: String,
    pub step: i64,
    pub current: String,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub provider: String,
    pub input: Value,
    pub output: Option<Value>,
    pub raw_output: Option<String>,
    pub error: Option<String>,
    pub output_preview: String,
    pub replay_of: Option<String>,
    pub started_ms: Millis,
    pub finished_ms: Option<Millis>,
}

/// One checkpointed step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub idx: i64,
    pub kind: String,
    pub name: String,
    pub input_hash: String,
    pub input: Value,
    pub output: Value,
    pub rationale: String,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub latency_ms: i64,
}

impl StepRecord {
    #[must_use]
    pub fn new(
        idx: i64,
        kind: &str,
        name: &str,
        input: Value,
        output: Value,
        rationale: &str,
    ) -> Self {
        StepRecord {
            idx,
            kind: kind.into(),
            name: name.into(),
            input_hash: crate::core::canonical::hash_value(&input),
            input,
            output,
            rationale: rationale.into(),
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
            latency_ms: 0,
        }
    }
}

/// UTC calendar day of `ms` (daily budgets reset at midnight UTC).
#[must_use]
pub fn day_of(ms: Millis) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
        .unwrap_or_default()
}

pub fn save_template(tx: &Transaction<'_>, t: &Loaded, now: Millis) -> Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO agent_templates (hash, name, origin, body, first_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![t.hash, t.name, t.origin, crate::core::canonical::to_string(&t.canonical()), now],
    )?;
    Ok(())
}

/// The stored JSON of a template version.
pub fn template_body(conn: &Connection, hash: &str) -> Result<Option<(String, Value)>> {
    Ok(conn
        .query_row(
            "SELECT name, body FROM agent_templates WHERE hash = ?1",
            [hash],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?
        .map(|(n, b)| (n, serde_json::from_str(&b).unwrap_or(Value::Null))))
}

pub fn create_run(tx: &Transaction<'_>, r: &RunRecord) -> Result<()> {
    tx.execute(
        "INSERT INTO agent_runs (id, task, role, template_hash, status, input, replay_of, started_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![r.id, r.task, r.role, r.template_hash, r.status, r.input.to_string(), r.replay_of, r.started_ms],
    )?;
    Ok(())
}

const RUN_COLUMNS: &str = "id, task, role, template_hash, status, step, current, tokens_in, tokens_out, cost_usd,
     provider, input, output, raw_output, error, output_preview, replay_of, started_ms, finished_ms";

fn row_to_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    Ok(RunRecord {
        id: r.get(0)?,
        task: r.get(1)?,
        role: r.get(2)?,
        template_hash: r.get(3)?,
        status: r.get(4)?,
        step: r.get(5)?,
        current: r.get(6)?,
        tokens_in: r.get(7)?,
        tokens_out: r.get(8)?,
        cost_usd: r.get(9)?,
        provider: r.get(10)?,
        input: json(r.get(11)?).unwrap_or(Value::Null),
        output: json(r.get(12)?),
        raw_output: r.get(13)?,
        error: r.get(14)?,
        output_preview: r.get(15)?,
        replay_of: r.get(16)?,
        started_ms: r.get(17)?,
        finished_ms: r.get(18)?,
    })
}

pub fn load_run(conn: &Connection, id: &str) -> Result<Option<RunRecord>> {
    Ok(conn
        .query_row(
            &format!("SELECT {RUN_COLUMNS} FROM agent_runs WHERE id = ?1"),
            [id],
            row_to_run,
        )
        .optional()?)
}

/// Runs, newest first, optionally of one task.
pub fn list_runs(
    conn: &Connection,
    task: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<(Vec<RunRecord>, u64)> {
    let filter = if task.is_some() {
        "WHERE task = ?1"
    } else {
        "WHERE ?1 IS NULL"
    };
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM agent_runs {filter}"),
        [task],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {RUN_COLUMNS} FROM agent_runs {filter} ORDER BY started_ms DESC, id DESC LIMIT {limit} OFFSET {offset}"
    ))?;
    let rows = stmt
        .query_map([task], row_to_run)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, u64::try_from(total).unwrap_or(0)))
}

/// Runs left `running` by a crash or a stop: the coordinator resumes them by id.
pub fn unfinished_runs(conn: &Connection) -> Result<Vec<RunRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {RUN_COLUMNS} FROM agent_runs WHERE status = 'running' AND replay_of IS NULL ORDER BY started_ms"
    ))?;
    let rows = stmt
        .query_map([], row_to_run)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Earlier runs of the same task (the task-state artifacts a retry starts from).
pub fn earlier_runs(conn: &Connection, task: &str, except: &str) -> Result<Vec<RunRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {RUN_COLUMNS} FROM agent_runs WHERE task = ?1 AND id <> ?2 AND replay_of IS NULL
         AND status <> 'running' ORDER BY started_ms"
    ))?;
    let rows = stmt
        .query_map([task, except], row_to_run)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn set_progress(
    tx: &Transaction<'_>,
    run: &str,
    step: i64,
    current: &str,
    preview: &str,
) -> Result<()> {
    tx.execute(
        "UPDATE agent_runs SET step = ?2, current = ?3, output_preview = ?4 WHERE id = ?1",
        params![run, step, current, preview],
    )?;
    Ok(())
}

/// How a run's `current` starts while it waits inside keel for a free model slot.
pub const WAITING_FOR_SLOT: &str = "waiting for a model slot";

/// Says what the run is doing now (waiting for a model slot, calling a model).
pub fn set_progress_current(tx: &Transaction<'_>, run: &str, current: &str) -> Result<()> {
    tx.execute(
        "UPDATE agent_runs SET current = ?2 WHERE id = ?1",
        params![run, current],
    )?;
    Ok(())
}

/// Ends a run (or marks it running again on resume, with `finished` None).
#[allow(clippy::too_many_arguments)]
pub fn set_status(
    tx: &Transaction<'_>,
    run: &str,
    status: &str,
    output: Option<&Value>,
    raw: Option<&str>,
    error: Option<&str>,
    finished: Option<Millis>,
) -> Result<()> {
    tx.execute(
        "UPDATE agent_runs SET status = ?2, output = ?3, raw_output = coalesce(?4, raw_output), error = ?5,
         finished_ms = ?6, current = ?2 WHERE id = ?1",
        params![run, status, output.map(Value::to_string), raw, error, finished],
    )?;
    Ok(())
}

/// Stores a step (a resumed run re-deriving a deterministic step keeps the first copy).
pub fn save_step(tx: &Transaction<'_>, run: &str, s: &StepRecord, now: Millis) -> Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO agent_run_steps (run, idx, kind, name, input_hash, input, output, rationale,
         tokens_in, tokens_out, cost_usd, latency_ms, created_ms) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
        params![
            run, s.idx, s.kind, s.name, s.input_hash, s.input.to_string(), s.output.to_string(), s.rationale,
            s.tokens_in, s.tokens_out, s.cost_usd, s.latency_ms, now
        ],
    )?;
    Ok(())
}

pub fn steps(conn: &Connection, run: &str) -> Result<Vec<StepRecord>> {
    let mut stmt = conn.prepare(
        "SELECT idx, kind, name, input_hash, input, output, rationale, tokens_in, tokens_out, cost_usd, latency_ms
         FROM agent_run_steps WHERE run = ?1 ORDER BY idx",
    )?;
    let rows = stmt
        .query_map([run], |r| {
            let parse = |s: String| serde_json::from_str(&s).unwrap_or(Value::String(s));
            Ok(StepRecord {
                idx: r.get(0)?,
                kind: r.get(1)?,
                name: r.get(2)?,
                input_hash: r.get(3)?,
                input: parse(r.get(4)?),
                output: parse(r.get(5)?),
                rationale: r.get(6)?,
                tokens_in: r.get(7)?,
                tokens_out: r.get(8)?,
                cost_usd: r.get(9)?,
                latency_ms: r.get(10)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// What a recorded model call says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCall<'a> {
    pub run: &'a str,
    pub step: i64,
    pub role: &'a str,
    pub tier: &'a str,
    pub request_hash: &'a str,
    pub response: &'a ChatResponse,
    pub cost_usd: f64,
    pub latency_ms: i64,
}

/// Records a paid call and adds it to the run's totals.
pub fn save_model_call(tx: &Transaction<'_>, c: &ModelCall<'_>, now: Millis) -> Result<()> {
    let tin = i64::try_from(c.response.usage.input).unwrap_or(i64::MAX);
    let tout = i64::try_from(c.response.usage.output).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO model_calls (id, run, step, role, request_hash, provider, model, tier, tokens_in, tokens_out,
         cost_usd, latency_ms, retries, response, created_ms, day) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)",
        params![
            crate::core::ids::new_id(), c.run, c.step, c.role, c.request_hash, c.response.provider, c.response.model,
            c.tier, tin, tout, c.cost_usd, c.latency_ms, c.response.retries,
            serde_json::to_string(c.response).unwrap_or_default(), now, day_of(now)
        ],
    )?;
    add_usage(tx, c.run, tin, tout, c.cost_usd, &c.response.provider)
}

pub fn add_usage(
    tx: &Transaction<'_>,
    run: &str,
    tin: i64,
    tout: i64,
    cost: f64,
    provider: &str,
) -> Result<()> {
    tx.execute(
        "UPDATE agent_runs SET tokens_in = tokens_in + ?2, tokens_out = tokens_out + ?3, cost_usd = cost_usd + ?4,
         provider = ?5 WHERE id = ?1",
        params![run, tin, tout, cost, provider],
    )?;
    Ok(())
}

/// Tokens and dollars a role spent on `day`.
pub fn day_spend(conn: &Connection, role: &str, day: &str) -> Result<(u64, f64)> {
    let (t, c): (i64, f64) = conn.query_row(
        "SELECT coalesce(sum(tokens_in + tokens_out), 0), coalesce(sum(cost_usd), 0) FROM model_calls WHERE role = ?1 AND day = ?2",
        [role, day],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((u64::try_from(t).unwrap_or(0), c))
}

/// Tokens and dollars every live run of `task` has spent (replays cost nothing).
pub fn task_spend(conn: &Connection, task: &str) -> Result<(u64, f64)> {
    let (t, c): (i64, f64) = conn.query_row(
        "SELECT coalesce(sum(tokens_in + tokens_out), 0), coalesce(sum(cost_usd), 0) FROM agent_runs
         WHERE task = ?1 AND replay_of IS NULL",
        [task],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((u64::try_from(t).unwrap_or(0), c))
}

/// Average tokens and cost of the role's last finished live runs (for estimates).
pub fn role_history(conn: &Connection, role: &str) -> Result<Option<(u64, f64, u64)>> {
    let (n, t, c): (i64, Option<f64>, Option<f64>) = conn.query_row(
        "SELECT count(*), avg(tokens_in + tokens_out), avg(cost_usd) FROM (SELECT tokens_in, tokens_out, cost_usd
         FROM agent_runs WHERE role = ?1 AND replay_of IS NULL AND status = 'succeeded' ORDER BY started_ms DESC LIMIT 20)",
        [role],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok((n > 0).then(|| {
        (
            t.unwrap_or(0.0).round() as u64,
            c.unwrap_or(0.0),
            u64::try_from(n).unwrap_or(0),
        )
    }))
}

pub fn save_memory(tx: &Transaction<'_>, run: &str, r: &Retrieval) -> Result<()> {
    for (rank, s) in r.slices.iter().enumerate() {
        tx.execute(
            "INSERT OR IGNORE INTO agent_run_memory (run, rank, item, version, kind, score, preview, params)
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
            params![run, i64::try_from(rank).unwrap_or(0), s.item, s.version, s.kind, s.score, s.text, r.params.to_string()],
        )?;
    }
    Ok(())
}

/// The memory a run retrieved, in rank order, with the parameters used.
pub fn memory(conn: &Connection, run: &str) -> Result<Retrieval> {
    let mut stmt = conn.prepare(
        "SELECT item, version, kind, score, preview, params FROM agent_run_memory WHERE run = ?1 ORDER BY rank",
    )?;
    let mut params_json = Value::Null;
    let slices = stmt
        .query_map([run], |r| {
            Ok((
                super::tools::MemorySlice {
                    item: r.get(0)?,
                    version: r.get(1)?,
                    kind: r.get(2)?,
                    score: r.get(3)?,
                    text: r.get(4)?,
                },
                r.get::<_, String>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|(s, p)| {
            params_json = serde_json::from_str(&p).unwrap_or(Value::Null);
            s
        })
        .collect();
    Ok(Retrieval {
        slices,
        params: params_json,
    })
}
