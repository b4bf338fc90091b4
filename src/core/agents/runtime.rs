//! The agent runtime: runs one task for one role, step by step, every step checkpointed.
//!
//! Steps, in order: `context` (input, retrieved memory with provenance, earlier attempts),
//! `route` (which tier and provider, and why), then model calls and tool calls until the
//! model answers with output that passes the role's schema (`validation` steps record each
//! failure and the repair or cascade that follows), and finally `output` (written as a new
//! object version authored by `agent:<run>`).
//!
//! A resumed run (same run id) re-derives each step and reuses the recorded answer of every
//! completed model or tool call instead of repeating it. Replay does the same against
//! another run's record, with no network and no writes outside its own run record.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::record::{self, RunRecord, StepRecord};
use super::routing::Route;
use super::template::{Loaded, Templates};
use super::tools::{MemoryRetriever, ToolHost};
use crate::core::audit::{self, Actor};
use crate::core::clock::Clock;
use crate::core::error::{Error, Result};
use crate::core::llm::{Message, Registry};
use crate::core::store::Store;
use crate::protocol::ObjectRef;

/// A unit of work for the runtime (what the coordinator's executor hands over).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentTask {
    pub task: String,
    pub role: String,
    pub input: Value,
    /// Continue this run (after a crash or an operator's resume) instead of starting one.
    pub resume: Option<String>,
    /// The object id the output is written to (a new object when None).
    pub target_id: Option<String>,
    /// Extra task-state artifacts from the coordinator (earlier runs of the same task are
    /// found automatically).
    pub earlier: Vec<Value>,
    /// The id a new run takes (the coordinator passes its own run id, so the agent run and
    /// the task's run are one); a fresh id when None.
    pub run_id: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RunOutcome {
    Succeeded {
        run: String,
        output: Value,
        object: Option<ObjectRef>,
    },
    /// Stopped to ask the operator (budget, failed validation after repair, tool loop…).
    Escalated {
        run: String,
        reason: String,
        raw: Option<String>,
    },
    Failed {
        run: String,
        error: String,
        retryable: bool,
    },
    Cancelled {
        run: String,
    },
}

impl RunOutcome {
    #[must_use]
    pub fn run(&self) -> &str {
        match self {
            RunOutcome::Succeeded { run, .. }
            | RunOutcome::Escalated { run, .. }
            | RunOutcome::Failed { run, .. }
            | RunOutcome::Cancelled { run } => run,
        }
    }

    #[must_use]
    pub fn status(&self) -> &'static str {
        match self {
            RunOutcome::Succeeded { .. } => "succeeded",
            RunOutcome::Escalated { .. } => "escalated",
            RunOutcome::Failed { .. } => "failed",
            RunOutcome::Cancelled { .. } => "cancelled",
        }
    }
}

/// Why a step stopped the run.
#[derive(Debug)]
pub(crate) enum Stop {
    Escalate(String),
    Fail { error: String, retryable: bool },
    Cancelled,
    Store(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Store(e)
    }
}

/// Receives streamed partial output: (run id, text delta).
pub type RunSink = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Everything a run needs. One per worker; it owns its store connection.
pub struct Runtime {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub templates: Templates,
    pub registry: Registry,
    pub retriever: Arc<dyn MemoryRetriever>,
    pub host: Arc<dyn ToolHost>,
    pub on_delta: RunSink,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// The mutable state of one run.
pub(crate) struct RunState {
    pub run: String,
    pub task: String,
    pub tpl: Loaded,
    pub idx: i64,
    pub messages: Vec<Message>,
    pub structured: Value,
    pub route: Route,
    /// Tokens and dollars this run has spent so far.
    pub run_tokens: u64,
    pub run_usd: f64,
    pub repairs_left: u32,
    pub calls_seen: HashMap<String, u32>,
    pub last_raw: Option<String>,
    /// Steps to record together with the run's end.
    pub pending: Vec<StepRecord>,
    /// Steps recorded earlier: this run's own (resume) or the original's (replay).
    pub prior: BTreeMap<i64, StepRecord>,
    pub replay: bool,
    /// Time spent waiting for a model slot, which the run's timeout does not count.
    pub slot_waits: Arc<SlotWaits>,
    /// The MCP tools the role opted into, as offered to the model (empty when none).
    pub mcp_offers: Vec<super::tools::McpOffer>,
}

/// Time a run spent waiting for a free model slot inside keel.
#[derive(Debug, Default)]
pub(crate) struct SlotWaits {
    total_ms: AtomicU64,
    /// When the current wait began (ms on the run's monotonic clock), 0 when not waiting.
    since_ms: AtomicU64,
    origin: std::sync::OnceLock<tokio::time::Instant>,
}

impl SlotWaits {
    fn now_ms(&self) -> u64 {
        let origin = *self.origin.get_or_init(tokio::time::Instant::now);
        u64::try_from(origin.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    pub fn begin(&self) {
        self.since_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    pub fn end(&self) {
        let since = self.since_ms.swap(0, Ordering::Relaxed);
        if since > 0 {
            self.total_ms
                .fetch_add(self.now_ms().saturating_sub(since), Ordering::Relaxed);
        }
    }

    fn waiting(&self) -> bool {
        self.since_ms.load(Ordering::Relaxed) > 0
    }

    fn total(&self) -> Duration {
        Duration::from_millis(self.total_ms.load(Ordering::Relaxed))
    }
}

impl Runtime {
    /// Runs `task` to an outcome. Errors are only store failures; everything the model or a
    /// tool does wrong ends in an outcome with a reason.
    pub async fn execute(
        &mut self,
        task: &AgentTask,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome> {
        let tpl = self.templates.get(&task.role)?.clone();
        let (run, prior) = self.open_run(task, &tpl, None)?;
        // A resumed run continues from the input it started with.
        let mut task = task.clone();
        if task.resume.is_some()
            && let Some(rec) = record::load_run(self.store.conn(), &run)?
        {
            task.input = rec.input;
            task.task = rec.task;
        }
        self.drive(run, &task, tpl, prior, false, cancel).await
    }

    /// Re-executes `original` from its recorded calls (no network, no object writes) as a new
    /// run marked `replay_of`; returns the new run's outcome.
    pub async fn replay(&mut self, original: &RunRecord) -> Result<RunOutcome> {
        // The template version the run used, even if the role's file has changed since.
        let tpl = match record::template_body(self.store.conn(), &original.template_hash)? {
            Some((_, body)) => Loaded::from_stored(&body, &original.template_hash)?,
            None => self.templates.get(&original.role)?.clone(),
        };
        let prior: BTreeMap<i64, StepRecord> = record::steps(self.store.conn(), &original.id)?
            .into_iter()
            .map(|s| (s.idx, s))
            .collect();
        let task = AgentTask {
            task: original.task.clone(),
            role: original.role.clone(),
            input: original.input.clone(),
            ..AgentTask::default()
        };
        let (run, _) = self.open_run(&task, &tpl, Some(&original.id))?;
        self.drive(run, &task, tpl, prior, true, &CancellationToken::new())
            .await
    }

    fn open_run(
        &mut self,
        task: &AgentTask,
        tpl: &Loaded,
        replay_of: Option<&str>,
    ) -> Result<(String, BTreeMap<i64, StepRecord>)> {
        let now = self.clock.now_ms();
        if let Some(id) = &task.resume {
            let existing =
                record::load_run(self.store.conn(), id)?.ok_or_else(|| Error::NotFound {
                    kind: "run".into(),
                    id: id.clone(),
                })?;
            if existing.template_hash != tpl.hash {
                return Err(Error::invalid(
                    "resume",
                    format!(
                        "run {id} used template {} but {} is now {}; start a new run",
                        short(&existing.template_hash),
                        tpl.name,
                        short(&tpl.hash)
                    ),
                ));
            }
            if existing.status == "succeeded" {
                return Err(Error::invalid(
                    "resume",
                    format!("run {id} already succeeded"),
                ));
            }
            let prior = record::steps(self.store.conn(), id)?
                .into_iter()
                .map(|s| (s.idx, s))
                .collect();
            self.store.write(|tx| {
                record::set_status(tx, id, "running", None, None, None, None)?;
                audit::append(
                    tx,
                    now,
                    &Actor::agent(id),
                    "agent.run_resumed",
                    &format!("run/{id}"),
                    &json!({"task": task.task}),
                )?;
                Ok(())
            })?;
            return Ok((id.clone(), prior));
        }
        let id = task.run_id.clone().unwrap_or_else(crate::core::ids::new_id);
        let rec = RunRecord {
            id: id.clone(),
            task: task.task.clone(),
            role: task.role.clone(),
            template_hash: tpl.hash.clone(),
            status: "running".into(),
            step: 0,
            current: String::new(),
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
            provider: String::new(),
            input: task.input.clone(),
            output: None,
            raw_output: None,
            error: None,
            output_preview: String::new(),
            replay_of: replay_of.map(str::to_string),
            started_ms: now,
            finished_ms: None,
        };
        self.store.write(|tx| {
            record::save_template(tx, tpl, now)?;
            record::create_run(tx, &rec)?;
            audit::append(tx, now, &Actor::agent(&id), "agent.run_started", &format!("run/{id}"), &json!({
                "task": task.task, "role": task.role, "template": tpl.hash, "replay_of": replay_of}))?;
            Ok(())
        })?;
        Ok((id, BTreeMap::new()))
    }

    async fn drive(
        &mut self,
        run: String,
        task: &AgentTask,
        tpl: Loaded,
        prior: BTreeMap<i64, StepRecord>,
        replay: bool,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome> {
        let timeout = Duration::from_secs(tpl.template.limits.timeout_secs.max(1));
        let state = self.prepare(&run, task, &tpl, &prior, replay).await;
        let mut st = match state {
            Ok(st) => st,
            Err(stop) => return self.finish(&run, &task.task, None, &[], Err(stop)),
        };
        let waits = st.slot_waits.clone();
        let started = tokio::time::Instant::now();
        // The timeout counts working time: waiting for a model slot pushes it back.
        let result = {
            let work = self.run_loop(&mut st, task, cancel);
            tokio::pin!(work);
            loop {
                let deadline = if waits.waiting() {
                    tokio::time::Instant::now() + Duration::from_secs(1)
                } else {
                    started + timeout + waits.total()
                };
                tokio::select! {
                    r = &mut work => break r,
                    () = tokio::time::sleep_until(deadline) => {
                        if !waits.waiting() && tokio::time::Instant::now() >= started + timeout + waits.total() {
                            break Err(Stop::Fail {
                                error: format!("the run timed out after {} s of work", timeout.as_secs()),
                                retryable: true,
                            });
                        }
                    }
                }
            }
        };
        let raw = st.last_raw.clone();
        self.finish(&run, &task.task, raw.as_deref(), &st.pending, result)
    }

    /// Records the end of a run and turns the loop's result into an outcome.
    fn finish(
        &mut self,
        run: &str,
        task: &str,
        raw: Option<&str>,
        pending: &[StepRecord],
        result: Result<(Value, Option<ObjectRef>), Stop>,
    ) -> Result<RunOutcome> {
        let now = self.clock.now_ms();
        let outcome = match result {
            Ok((output, object)) => RunOutcome::Succeeded {
                run: run.into(),
                output,
                object,
            },
            Err(Stop::Escalate(reason)) => RunOutcome::Escalated {
                run: run.into(),
                reason,
                raw: raw.map(str::to_string),
            },
            Err(Stop::Fail { error, retryable }) => RunOutcome::Failed {
                run: run.into(),
                error,
                retryable,
            },
            Err(Stop::Cancelled) => RunOutcome::Cancelled { run: run.into() },
            Err(Stop::Store(e)) => return Err(e),
        };
        let (output, error) = match &outcome {
            RunOutcome::Succeeded { output, .. } => (Some(output.clone()), None),
            RunOutcome::Escalated { reason, .. } => (None, Some(reason.clone())),
            RunOutcome::Failed { error, .. } => (None, Some(error.clone())),
            RunOutcome::Cancelled { .. } => (None, Some("cancelled".to_string())),
        };
        let status = outcome.status();
        self.store.write(|tx| {
            for step in pending {
                record::save_step(tx, run, step, now)?;
            }
            record::set_status(tx, run, status, output.as_ref(), raw, error.as_deref(), Some(now))?;
            let rec = record::load_run(tx, run)?;
            audit::append(tx, now, &Actor::agent(run), &format!("agent.run_{status}"), &format!("run/{run}"), &json!({
                "task": task,
                "reason": error,
                "object": if let RunOutcome::Succeeded { object, .. } = &outcome { json!(object) } else { Value::Null },
                "cost_usd": rec.as_ref().map_or(0.0, |r| r.cost_usd),
                "usage": {"input": rec.as_ref().map_or(0, |r| r.tokens_in), "output": rec.as_ref().map_or(0, |r| r.tokens_out)},
            }))?;
            Ok(())
        })?;
        Ok(outcome)
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
