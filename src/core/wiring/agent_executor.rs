//! Runs agent roles (`agents/*.toml`) for the coordinator through [`Runtime::execute`].
//!
//! One run, one id: a new agent run takes the coordinator's run id, so `agent:<run>` signs
//! both the run's steps and its object versions. **Source of truth:** `agent_run_steps` for
//! everything the agent did (context, model calls, tool calls, output); the coordinator's
//! `run_steps` hold only the side effects of tool calls (findings, spawned tasks, gated
//! actions), keyed `<run>#<agent step>` (see [`super::host`]), because those must commit
//! with their checkpoint. Nothing is recorded twice.
//!
//! Which run a task execution continues (the latest non-replay run of the task):
//! - `running` (a crash, a stop, a lost lease): resumed by id, so completed model and tool
//!   calls are reused, not paid again;
//! - `succeeded`: not run again; its external actions that were waiting for the operator
//!   are settled through the gate (approved ones are performed now), then the task ends
//!   with the stored output;
//! - otherwise (failed, escalated, cancelled) or none: a new run; earlier ones are its
//!   task-state artifacts.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rusqlite::OptionalExtension;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::host::{WiredHost, gated_action, sub_run};
use super::retriever::VectorRetriever;
use crate::core::actions::{Gated, perform_gated};
use crate::core::agents::local_host::LocalHost;
use crate::core::agents::runtime::RunSink;
use crate::core::agents::template::Templates;
use crate::core::agents::tools::MemoryRetriever;
use crate::core::agents::tools::PENDING;
use crate::core::agents::{AgentTask, RunOutcome, Runtime, record};
use crate::core::audit::Actor;
use crate::core::clock::Clock;
use crate::core::coordinator::{
    Interrupt, Outcome, RunControl, RunError, StepContext, TaskExecutor,
};
use crate::core::error::{Error, Result};
use crate::core::llm::Registry;
use crate::core::memory::Memory;
use crate::core::objects::Kinds;
use crate::core::workspace::Workspace;
use crate::protocol::ObjectRef;

pub struct AgentExecutor {
    ws: Workspace,
    clock: Arc<dyn Clock>,
    templates: Templates,
    /// The workspace's kinds plus each role's output kind (checked against its schema).
    kinds: Kinds,
    sink: RunSink,
    /// Built on first use, on a worker thread (an `auto` provider is probed then).
    registry: OnceLock<Registry>,
    /// Opened on first use; `None` when vector memory cannot open (keyword search then).
    memory: OnceLock<Option<Memory>>,
}

impl AgentExecutor {
    /// An executor over the templates of `ws` (shipped ones overlaid with `agents/*.toml`).
    pub fn new(ws: &Workspace, clock: Arc<dyn Clock>, sink: RunSink) -> Result<Self> {
        let templates = Templates::load(&ws.root.join(crate::core::agents::service::AGENTS_DIR))?;
        let kinds = crate::core::agents::service::kinds_with_outputs(&ws.config, &templates)?;
        Ok(AgentExecutor {
            ws: ws.clone(),
            clock,
            templates,
            kinds,
            sink,
            registry: OnceLock::new(),
            memory: OnceLock::new(),
        })
    }

    /// Uses `registry` instead of the configured providers (tests).
    #[must_use]
    pub fn with_registry(self, registry: Registry) -> Self {
        let _ = self.registry.set(registry);
        self
    }

    fn registry(&self, rt: &tokio::runtime::Runtime) -> Result<Registry> {
        if let Some(r) = self.registry.get() {
            return Ok(r.clone());
        }
        let built = rt
            .block_on(Registry::from_config(
                &self.ws.config.providers,
                &self.ws.config.routing,
            ))
            .map_err(Error::wrap)?;
        Ok(self.registry.get_or_init(|| built).clone())
    }

    fn memory(&self) -> Option<Memory> {
        self.memory
            .get_or_init(|| {
                let opened = self
                    .ws
                    .store()
                    .and_then(|mut s| Memory::open(&self.ws, &mut s, self.clock.clone()));
                match opened {
                    Ok(m) => Some(m),
                    Err(e) => {
                        tracing::warn!(error = %e, "vector memory unavailable; agents retrieve by keyword");
                        None
                    }
                }
            })
            .clone()
    }

    fn retriever(&self, run: &str) -> Result<Arc<dyn MemoryRetriever>> {
        Ok(match self.memory() {
            Some(memory) => Arc::new(VectorRetriever::new(self.ws.store()?, memory, run)),
            None => Arc::new(LocalHost::new(
                self.ws.store()?,
                self.clock.clone(),
                self.kinds.clone(),
            )),
        })
    }

    /// Runs left `running` whose task is over (finished, failed, cancelled or gone) will
    /// never be resumed by the queue: they are closed as cancelled. Runs of live tasks are
    /// resumed when the coordinator claims the task again.
    pub fn close_orphaned_runs(&self) -> Result<usize> {
        let mut store = self.ws.store()?;
        let now = self.clock.now_ms();
        let mut closed = 0;
        for run in record::unfinished_runs(store.conn())? {
            let state: Option<String> = store
                .conn()
                .query_row("SELECT state FROM tasks WHERE id = ?1", [&run.task], |r| {
                    r.get(0)
                })
                .optional()?;
            let Some(state) = state else { continue }; // not a queued task (e.g. `keel agents run`)
            if matches!(
                state.as_str(),
                "succeeded" | "failed" | "cancelled" | "escalated"
            ) {
                store.write(|tx| {
                    let why = format!("its task is {state}; closed on start");
                    record::set_status(
                        tx,
                        &run.id,
                        "cancelled",
                        None,
                        None,
                        Some(&why),
                        Some(now),
                    )?;
                    crate::core::audit::append(
                        tx,
                        now,
                        &Actor::agent(&run.id),
                        "agent.run_cancelled",
                        &format!("run/{}", run.id),
                        &serde_json::json!({"task": run.task, "reason": why}),
                    )?;
                    Ok(())
                })?;
                closed += 1;
            }
        }
        Ok(closed)
    }
}

impl AgentExecutor {
    /// Whether the unfinished `run` can continue: it must have used the role's current
    /// template (its recorded steps were made for that version). One that cannot is closed
    /// as cancelled, with the reason, and a new run starts.
    fn resumable(&self, ctx: &StepContext<'_>, run: &str) -> std::result::Result<bool, RunError> {
        let Some(rec) = record::load_run(ctx.conn(), run)? else {
            return Ok(false);
        };
        let current = self.templates.get(&rec.role).map(|t| t.hash.clone()).ok();
        if current.as_deref() == Some(rec.template_hash.as_str()) {
            return Ok(true);
        }
        let now = self.clock.now_ms();
        let why = format!(
            "the {} template changed since this run started; a new run takes over",
            rec.role
        );
        self.ws.store()?.write(|tx| {
            record::set_status(tx, run, "cancelled", None, None, Some(&why), Some(now))?;
            crate::core::audit::append(
                tx,
                now,
                &Actor::agent(run),
                "agent.run_cancelled",
                &format!("run/{run}"),
                &serde_json::json!({"task": rec.task, "reason": why}),
            )?;
            Ok(())
        })?;
        Ok(false)
    }
}

/// The latest non-replay run of `task`: (id, status).
fn latest_run(conn: &rusqlite::Connection, task: &str) -> Result<Option<(String, String)>> {
    Ok(conn
        .query_row(
            "SELECT id, status FROM agent_runs WHERE task = ?1 AND replay_of IS NULL
             ORDER BY started_ms DESC, id DESC LIMIT 1",
            [task],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

impl TaskExecutor for AgentExecutor {
    fn handles(&self, role: &str) -> bool {
        self.templates.by_name.contains_key(role) || self.templates.broken.contains_key(role)
    }

    fn execute(&self, ctx: &mut StepContext<'_>) -> std::result::Result<Outcome, RunError> {
        let task = ctx.task().clone();
        let latest = latest_run(ctx.conn(), &task.id)?;
        let mut agent_task = AgentTask {
            task: task.id.clone(),
            role: task.role.clone(),
            input: task.input.clone(),
            // `target_id` in the input names the object the output becomes a new version
            // of (the content workflow: the idea's id, so the editor revises the writer's
            // draft and both stay attached to the idea).
            target_id: task
                .input
                .get("target_id")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
            ..AgentTask::default()
        };
        match latest {
            Some((run, status)) if status == "succeeded" => {
                let settled = settle(ctx, &run)?;
                if let Outcome::Succeeded(output) = &settled {
                    self.record_ideas(ctx, &task.role, &run, output)?;
                }
                return Ok(settled);
            }
            Some((run, status)) if status == "running" && self.resumable(ctx, &run)? => {
                agent_task.resume = Some(run);
            }
            _ => {
                // A retry after a failed run keeps the task's run id: take a fresh one.
                let taken = record::load_run(ctx.conn(), ctx.run_id())?.is_some();
                agent_task.run_id = Some(if taken {
                    crate::core::ids::new_id()
                } else {
                    ctx.run_id().to_string()
                });
            }
        }
        let run = agent_task
            .resume
            .clone()
            .or_else(|| agent_task.run_id.clone())
            .unwrap_or_default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RunError::Retryable(format!("cannot start the agent runtime: {e}")))?;
        let host = Arc::new(
            WiredHost::new(
                self.ws.store()?,
                ctx.env,
                task.clone(),
                ctx.control.deadline_ms,
                self.kinds.clone(),
            )
            .with_mcp(crate::core::mcp::manager::for_workspace(&self.ws))
            .with_memory(self.memory()),
        );
        let mut runtime = Runtime {
            store: self.ws.store()?,
            clock: self.clock.clone(),
            templates: self.templates.clone(),
            registry: self.registry(&rt)?,
            retriever: self.retriever(&run)?,
            host: host.clone(),
            on_delta: self.sink.clone(),
        };
        let cancel = CancellationToken::new();
        let control: &RunControl = ctx.control;
        let clock = self.clock.clone();
        let outcome = rt.block_on(async {
            let watch = async {
                // The coordinator interrupts through `RunControl`; the runtime listens to a
                // token and records its own cancellation, so this never ends the select.
                loop {
                    if control.interrupted().is_some() || clock.now_ms() > control.deadline_ms {
                        cancel.cancel();
                        std::future::pending::<()>().await;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            tokio::select! {
                out = runtime.execute(&agent_task, &cancel) => out,
                () = watch => unreachable_watch(),
            }
        });
        let outcome = outcome.map_err(RunError::from)?;
        let waiting = host.waiting();
        if let RunOutcome::Succeeded { run, output, .. } = &outcome
            && waiting.is_empty()
        {
            self.record_ideas(ctx, &task.role, run, output)?;
        }
        to_result(ctx, outcome, &waiting)
    }
}

impl AgentExecutor {
    /// A role whose output is an `idea_list` (the researcher) ranks ideas: each becomes an
    /// `idea` object (a new version for a title seen before) with its score, rank and
    /// rationale, authored by the run. One step of the task, so it commits once even when
    /// the task is claimed again after a crash (then from [`settle`]).
    fn record_ideas(
        &self,
        ctx: &mut StepContext<'_>,
        role: &str,
        run: &str,
        output: &Value,
    ) -> std::result::Result<(), RunError> {
        let lists_ideas = self
            .templates
            .get(role)
            .is_ok_and(|t| t.template.output.kind == "idea_list");
        let ranked = crate::core::research::ranked_from(output);
        if !lists_ideas || ranked.is_empty() {
            return Ok(());
        }
        let stamp = crate::core::objects::Stamp::new(Actor::agent(run), self.clock.now_ms());
        let kinds = self.kinds.clone();
        let input = serde_json::json!({"ideas": output["ideas"]});
        let changed: Vec<String> = ctx.db_step("ideas", &input, |tx, _| {
            crate::core::research::record_ranking(tx, &kinds, &stamp, &ranked)
        })?;
        for id in changed {
            ctx.env.notify(&format!("idea/{id}"), "object.put");
        }
        Ok(())
    }
}

/// The watch loop above only ends by waiting forever.
fn unreachable_watch() -> Result<RunOutcome> {
    Err(Error::Other("the run watcher ended".into()))
}

/// Maps a run's end to the coordinator's.
fn to_result(
    ctx: &StepContext<'_>,
    outcome: RunOutcome,
    waiting: &[String],
) -> std::result::Result<Outcome, RunError> {
    match outcome {
        RunOutcome::Succeeded { .. } if !waiting.is_empty() => {
            Ok(Outcome::WaitApproval(waiting.join("; ")))
        }
        RunOutcome::Succeeded { output, object, .. } => {
            Ok(Outcome::Succeeded(with_object(output, object)))
        }
        // Budget stops, failed validation after repair, tool loops: the operator decides.
        RunOutcome::Escalated { run, reason, .. } => {
            Err(RunError::Escalate(format!("agent run {run}: {reason}")))
        }
        RunOutcome::Failed {
            run,
            error,
            retryable: true,
        } => Err(RunError::Retryable(format!("agent run {run}: {error}"))),
        RunOutcome::Failed { run, error, .. } => {
            Err(RunError::Permanent(format!("agent run {run}: {error}")))
        }
        RunOutcome::Cancelled { .. } => Err(RunError::Interrupted(
            ctx.control.interrupted().unwrap_or(Interrupt::Shutdown),
        )),
    }
}

/// The task's output: the run's output plus `object_ref`, the version it wrote (a later
/// stage, e.g. the publisher, puts it on its approval card).
fn with_object(output: Value, object: Option<ObjectRef>) -> Value {
    match (output, object) {
        (Value::Object(mut map), Some(object)) if !map.contains_key("object_ref") => {
            map.insert("object_ref".into(), serde_json::json!(object));
            Value::Object(map)
        }
        (output, _) => output,
    }
}

/// The gated action of an MCP call that waited for the operator, named as it was then.
fn waited_mcp_action(
    ctx: &StepContext<'_>,
    role: &str,
    run: &str,
    idx: i64,
    action: &str,
    args: &Value,
) -> std::result::Result<crate::core::actions::GatedAction, RunError> {
    let (server, tool) = crate::core::mcp::connector::parse_action(action)
        .ok_or_else(|| RunError::Permanent(format!("{action} is not an MCP action")))?;
    let gates = ctx.env.gates.clone().ok_or_else(|| {
        RunError::Permanent("external actions need a coordinator opened on a workspace".into())
    })?;
    let mcp = gates.mcp().ok_or_else(|| {
        RunError::Permanent(format!(
            "{action} waited, but config.toml has no [mcp.servers] now"
        ))
    })?;
    let info = mcp
        .manager()
        .tool(&server, &tool)
        .map_err(|e| RunError::Retryable(e.to_string()))?;
    Ok(super::host::mcp_gated_action(role, run, idx, &info, args))
}

/// A succeeded run met again: its external actions that waited for the operator go through
/// the gate once more (same step keys, so an approved one is performed exactly once), then
/// the task ends with the run's output.
fn settle(ctx: &mut StepContext<'_>, run: &str) -> std::result::Result<Outcome, RunError> {
    let rec = record::load_run(ctx.conn(), run)?.ok_or_else(|| Error::NotFound {
        kind: "run".into(),
        id: run.to_string(),
    })?;
    let steps = record::steps(ctx.conn(), run)?;
    let object = steps
        .iter()
        .find(|s| s.kind == "output")
        .and_then(|s| serde_json::from_value(s.input["object"].clone()).ok());
    for step in steps {
        let content = &step.output["content"];
        let waited = content["error"]
            .as_str()
            .is_some_and(|e| e.starts_with(PENDING));
        let mcp_action = content["mcp_action"].as_str();
        if !waited || (step.name != "external_action" && mcp_action.is_none()) {
            continue;
        }
        let args: Value = match &step.input["arguments"] {
            Value::String(raw) => serde_json::from_str(raw).unwrap_or(Value::Null),
            other => other.clone(),
        };
        let action = match mcp_action {
            Some(name) => waited_mcp_action(ctx, &rec.role, run, step.idx, name, &args)?,
            None => gated_action(
                &rec.role,
                args["action"].as_str().unwrap_or_default(),
                &args["args"],
            ),
        };
        let mut sub = StepContext::new(
            &mut *ctx.store,
            ctx.env,
            ctx.task,
            sub_run(run, step.idx),
            ctx.control,
        );
        sub.set_actor(Actor::agent(run));
        match perform_gated(&mut sub, &action)? {
            Gated::Done(_) => {}
            Gated::Wait(wait) => return Ok(wait),
        }
    }
    Ok(Outcome::Succeeded(with_object(
        rec.output.unwrap_or(Value::Null),
        object,
    )))
}
