//! [`ToolHost`] over the real modules: objects (versions authored by `agent:<run>`, optimistic
//! writes with `based_on`), the blackboard, the queue and the policy gate.
//!
//! Blackboard findings, spawned tasks and external actions run on a step context of their
//! own, keyed `<run>#<agent step>` in `run_steps`: each commits with its checkpoint, so a run
//! resumed after a crash between the tool call and the agent's own step record finds it
//! done instead of doing it twice. External actions go through
//! [`gate::perform_gated`](crate::core::actions::perform_gated) — policy, approval, effects
//! ledger — so nothing a model asks for can bypass policy.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::core::actions::{Gated, GatedAction, perform_gated};
use crate::core::agents::local_host::read_current;
use crate::core::agents::tools::{CallContext, ToolError, ToolHost};
use crate::core::audit::Actor;
use crate::core::clock::Clock;
use crate::core::coordinator::{Env, Outcome, RunControl, RunError, StepContext};
use crate::core::objects::{self, Kinds, Stamp};
use crate::core::queue::{NewTask, Task};
use crate::core::store::Store;

/// The `run_steps` key of the side effects of one agent step.
#[must_use]
pub fn sub_run(run: &str, step: i64) -> String {
    format!("{run}#{step}")
}

/// What one execution of an agent role owns to reach the rest of keel.
struct Parts {
    store: Store,
    env: Env,
    task: Task,
    control: RunControl,
}

pub struct WiredHost {
    parts: Mutex<Parts>,
    kinds: Kinds,
    clock: Arc<dyn Clock>,
    /// External actions that wait for the operator (approval or hold window).
    waiting: Mutex<Vec<String>>,
    /// The workspace's MCP servers, when it has any.
    mcp: Option<Arc<crate::core::mcp::Manager>>,
    /// Vector memory, where results of servers with `remember = true` are kept.
    memory: Option<crate::core::memory::Memory>,
}

impl WiredHost {
    /// A host for one execution of `task`. `env` is the coordinator's (copied: the host has
    /// its own store connection and write gate; the lease owner is the same).
    #[must_use]
    pub fn new(store: Store, env: &Env, task: Task, deadline_ms: i64, kinds: Kinds) -> Self {
        let env = Env {
            clock: env.clock.clone(),
            catalog: env.catalog.clone(),
            config: env.config.clone(),
            scheduler: env.scheduler.clone(),
            owner: env.owner.clone(),
            owners_dir: env.owners_dir.clone(),
            notifier: env.notifier.clone(),
            write_gate: Mutex::new(()),
            gates: env.gates.clone(),
        };
        WiredHost {
            clock: env.clock.clone(),
            parts: Mutex::new(Parts {
                store,
                env,
                task,
                control: RunControl::new(deadline_ms),
            }),
            kinds,
            waiting: Mutex::new(Vec::new()),
            mcp: None,
            memory: None,
        }
    }

    /// Offers the role's `mcp:` tools from `mcp`'s servers.
    #[must_use]
    pub fn with_mcp(mut self, mcp: Option<Arc<crate::core::mcp::Manager>>) -> Self {
        self.mcp = mcp;
        self
    }

    /// Keeps results of `remember = true` servers in `memory`.
    #[must_use]
    pub fn with_memory(mut self, memory: Option<crate::core::memory::Memory>) -> Self {
        self.memory = memory;
        self
    }

    /// The external actions of this execution that wait for the operator.
    #[must_use]
    pub fn waiting(&self) -> Vec<String> {
        self.waiting.lock().map(|w| w.clone()).unwrap_or_default()
    }

    fn with_parts<T>(
        &self,
        f: impl FnOnce(&mut Parts) -> Result<T, ToolError>,
    ) -> Result<T, ToolError> {
        let mut guard = self
            .parts
            .lock()
            .map_err(|_| ToolError::Failed("the host lock is poisoned".into()))?;
        f(&mut guard)
    }

    /// `gated` through [`perform_gated`] on this agent step's context: the connector's
    /// answer, or `Pending` (remembered) when it waits for the operator.
    fn gate(&self, cx: &CallContext, gated: &GatedAction) -> Result<Value, ToolError> {
        match self.with_step(cx, |ctx| perform_gated(ctx, gated))? {
            Gated::Done(out) => Ok(out),
            Gated::Wait(outcome) => {
                let why = match outcome {
                    Outcome::WaitApproval(why) => why,
                    Outcome::WaitTimer(until) => format!("held until {until} (hold window)"),
                    other => format!("{other:?}"),
                };
                if let Ok(mut w) = self.waiting.lock() {
                    w.push(why.clone());
                }
                Err(ToolError::Pending(why))
            }
        }
    }

    /// Keeps an MCP result in memory with its provenance. The call itself is done and
    /// recorded; a failure to keep it is logged, not turned into a failed call.
    fn remember(&self, cx: &CallContext, args: &Value, recorded: &Value) {
        let Some(memory) = &self.memory else { return };
        let Ok(outcome) = serde_json::from_value::<crate::core::mcp::McpOutcome>(recorded.clone())
        else {
            return;
        };
        let Some(item) = crate::core::mcp::remember::item(&outcome, args, &cx.run) else {
            return;
        };
        let kept = self.with_parts(|p| {
            crate::core::memory::kb::add_or_defer(
                &mut p.store,
                memory,
                &Actor::agent(&cx.run),
                &item,
            )
            .map_err(|e| failed(&e))
        });
        if let Err(e) = kept {
            tracing::warn!(target: "keel::mcp", server = %outcome.server, tool = %outcome.tool, "MCP result not kept in memory: {e}");
        }
    }

    /// Runs `f` on the step context of agent step `cx.step`, signed `agent:<run>`.
    fn with_step<T>(
        &self,
        cx: &CallContext,
        f: impl FnOnce(&mut StepContext<'_>) -> Result<T, RunError>,
    ) -> Result<T, ToolError> {
        self.with_parts(|p| {
            let mut ctx = StepContext::new(
                &mut p.store,
                &p.env,
                &p.task,
                sub_run(&cx.run, cx.step),
                &p.control,
            );
            ctx.set_actor(Actor::agent(&cx.run));
            f(&mut ctx).map_err(|e| match e {
                RunError::Refused(m) => ToolError::Failed(format!("refused by policy: {m}")),
                RunError::Escalate(m) => ToolError::Escalate(m),
                other => ToolError::Failed(other.to_string()),
            })
        })
    }
}

fn failed(e: &crate::core::Error) -> ToolError {
    ToolError::Failed(e.to_string())
}

impl ToolHost for WiredHost {
    fn object_read(
        &self,
        _cx: &CallContext,
        kind: &str,
        id: &str,
    ) -> Result<Option<(i64, Value)>, ToolError> {
        self.with_parts(|p| read_current(p.store.conn(), kind, id).map_err(|e| failed(&e)))
    }

    fn object_write(
        &self,
        cx: &CallContext,
        kind: &str,
        id: &str,
        based_on: Option<i64>,
        body: &Value,
    ) -> Result<i64, ToolError> {
        let stamp = Stamp::new(Actor::agent(&cx.run), self.clock.now_ms());
        let written = self.with_parts(|p| {
            p.store
                .write(|tx| objects::put(tx, &self.kinds, &stamp, kind, id, based_on, body))
                .map_err(|e| failed(&e))
        })?;
        self.with_parts(|p| {
            p.env.notify(&objects::subject(kind, id), "object.put");
            Ok(())
        })?;
        Ok(written.version)
    }

    fn blackboard_publish(
        &self,
        cx: &CallContext,
        topic: &str,
        text: &str,
        data: &Value,
    ) -> Result<String, ToolError> {
        self.with_step(cx, |ctx| ctx.publish(topic, text, data))
    }

    fn spawn_task(
        &self,
        cx: &CallContext,
        role: &str,
        title: &str,
        input: &Value,
    ) -> Result<String, ToolError> {
        let child = NewTask {
            role: role.to_string(),
            title: title.to_string(),
            input: input.clone(),
            ..NewTask::default()
        };
        let key = sub_run(&cx.run, cx.step);
        let ids = self.with_step(cx, |ctx| ctx.spawn(&key, vec![child]))?;
        ids.into_iter()
            .next()
            .ok_or_else(|| ToolError::Failed("the queue returned no task".into()))
    }

    fn external_action(
        &self,
        cx: &CallContext,
        action: &str,
        args: &Value,
    ) -> Result<Value, ToolError> {
        self.gate(cx, &gated_action(&cx.role, action, args))
    }

    /// An offered MCP tool, as an external action like any other: policy (with the tool's
    /// annotations as defaults), approval, effects ledger, audit.
    fn mcp_call(
        &self,
        cx: &CallContext,
        server: &str,
        tool: &str,
        args: &Value,
    ) -> Result<Value, ToolError> {
        let manager = self
            .mcp
            .as_deref()
            .ok_or_else(|| ToolError::Unavailable(format!("MCP tool {server}/{tool}")))?;
        let info = manager
            .tool(server, tool)
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        let gated = mcp_gated_action(&cx.role, &cx.run, cx.step, &info, args);
        let recorded = self.gate(cx, &gated)?;
        if manager.server(server).is_ok_and(|s| s.cfg.remember) {
            self.remember(cx, args, &recorded);
        }
        crate::core::mcp::offers::for_model(server, tool, recorded)
    }

    fn mcp(&self) -> Option<&crate::core::mcp::manager::Manager> {
        self.mcp.as_deref()
    }
}

/// What a model's `external_action` call asks the gate for. Only typed fields reach the
/// policy; the model's rationale is shown to the operator, never obeyed.
#[must_use]
pub fn gated_action(role: &str, action: &str, args: &Value) -> GatedAction {
    let text = |key: &str| args.get(key).and_then(Value::as_str).map(str::to_string);
    let target = ["target", "slug", "url", "to", "recipient"]
        .iter()
        .find_map(|k| text(k))
        .unwrap_or_default();
    let proposed_body = text("body").map(|body| json!({"title": text("title"), "body": body}));
    GatedAction {
        step: "external_action".into(),
        action: action.to_string(),
        args: args.clone(),
        summary: format!("{role} asks for {action} on {target}"),
        target,
        object_kind: text("kind"),
        amount: args.get("amount").and_then(Value::as_f64),
        cost: args.get("cost").and_then(Value::as_f64).unwrap_or(0.0),
        rationale: text("rationale").unwrap_or_default(),
        proposed_body,
        current_body: None,
        object: args
            .get("object")
            .and_then(|v| serde_json::from_value(v.clone()).ok()),
    }
}

/// What an agent's call of MCP tool `info` asks the gate for: the `mcp:SERVER/TOOL` action
/// with the model's arguments, named in the ledger by [`crate::core::mcp::offers::gate_step`].
#[must_use]
pub fn mcp_gated_action(
    role: &str,
    run: &str,
    step: i64,
    info: &crate::core::mcp::ToolInfo,
    args: &Value,
) -> GatedAction {
    let action = format!("mcp:{}/{}", info.server, info.name);
    let mut gated = gated_action(role, &action, args);
    gated.step = crate::core::mcp::offers::gate_step(run, step, info.is_read_only());
    gated.summary = format!("{role} asks to call {action}");
    gated
}
