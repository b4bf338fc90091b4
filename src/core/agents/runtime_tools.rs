//! Tool steps: capability checks (tool allowed, object kind and memory kind in scope),
//! argument checks, dispatch to the host, and the record. A refused call is audited and
//! the model is told why; nothing the model sends can crash the run.

use serde_json::{Value, json};

use super::record::{self, StepRecord};
use super::runtime::{RunState, Runtime, Stop};
use super::tools::{CallContext, PENDING, RetrievalRequest, ToolError, ToolName};
use crate::core::audit::{self, Actor};
use crate::core::llm::ToolCall;

/// What a tool call produced.
struct Outcome {
    /// Returned to the model.
    content: Value,
    /// Set when the call was refused by the capability profile.
    refusal: Option<String>,
    /// Set when the operator must decide before the run goes on: it ends escalated.
    escalate: Option<String>,
}

fn ok(content: Value) -> Outcome {
    Outcome {
        content,
        refusal: None,
        escalate: None,
    }
}

fn error(message: impl Into<String>) -> Outcome {
    ok(json!({"error": message.into()}))
}

fn refuse(reason: String) -> Outcome {
    Outcome {
        content: json!({"error": format!("refused: {reason}")}),
        refusal: Some(reason),
        escalate: None,
    }
}

impl Runtime {
    /// Runs (or reuses) one tool call and returns the text the model gets back.
    pub(crate) fn tool_step(
        &mut self,
        st: &mut RunState,
        call: &ToolCall,
        said: &str,
    ) -> Result<String, Stop> {
        let input = json!({"tool": call.name, "arguments": call.arguments, "call_id": call.id});
        let hash = crate::core::canonical::hash_value(&input);
        if let Some(p) = st.prior.get(&st.idx) {
            if matches!(p.kind.as_str(), "tool" | "refusal") && p.input_hash == hash {
                if st.replay {
                    let (now, run, copy) = (self.clock.now_ms(), st.run.clone(), p.clone());
                    self.store
                        .write(|tx| record::save_step(tx, &run, &copy, now))?;
                }
                st.idx += 1;
                return Ok(for_model(&p.output["content"]));
            }
            let mode = if st.replay { "replay" } else { "resume" };
            return Err(Stop::Fail {
                error: format!(
                    "{mode} diverged at step {}: tool call {} differs from the record",
                    st.idx, call.name
                ),
                retryable: false,
            });
        }
        if st.replay {
            return Err(Stop::Fail {
                error: format!(
                    "replay diverged at step {}: the original run made no tool call here",
                    st.idx
                ),
                retryable: false,
            });
        }
        let cx = CallContext {
            run: st.run.clone(),
            task: st.task.clone(),
            role: st.tpl.name.clone(),
            step: st.idx,
        };
        let out = self.run_tool(st, &cx, call);
        let kind = if out.refusal.is_some() {
            "refusal"
        } else {
            "tool"
        };
        let rationale = match &out.refusal {
            Some(r) => format!("refused: {r}"),
            None if said.trim().is_empty() => format!("the model asked for {}", call.name),
            None => said.trim().chars().take(300).collect(),
        };
        let mut step = StepRecord::new(
            st.idx,
            kind,
            &call.name,
            input,
            json!({"content": out.content}),
            &rationale,
        );
        step.input_hash = hash;
        let now = self.clock.now_ms();
        let run = st.run.clone();
        let idx = st.idx;
        self.store.write(|tx| {
            record::save_step(tx, &run, &step, now)?;
            record::set_progress(tx, &run, idx + 1, &format!("tool {}", call.name), "")?;
            if let Some(reason) = &out.refusal {
                audit::append(tx, now, &Actor::agent(&run), "agent.refused", &format!("run/{run}"), &json!({
                    "role": st.tpl.name, "tool": call.name, "arguments": call.arguments, "reason": reason, "step": idx}))?;
            }
            Ok(())
        })?;
        st.idx += 1;
        if let Some(reason) = out.escalate {
            return Err(Stop::Escalate(format!("tool {}: {reason}", call.name)));
        }
        Ok(for_model(&out.content))
    }

    /// Checks the call against the profile and its arguments, then dispatches it.
    fn run_tool(&self, st: &RunState, cx: &CallContext, call: &ToolCall) -> Outcome {
        let profile = &st.tpl.template;
        if let Some(offer) = st.mcp_offers.iter().find(|o| o.spec.name == call.name) {
            return match parse_arguments(call) {
                Ok(args) => {
                    let mut out =
                        host_result(self.host.mcp_call(cx, &offer.server, &offer.tool, &args));
                    // A call waiting for approval names its action, so the task can perform
                    // it once the operator approves (`wiring::agent_executor::settle`).
                    if out.content["error"]
                        .as_str()
                        .is_some_and(|e| e.starts_with(PENDING))
                    {
                        out.content["mcp_action"] =
                            json!(format!("mcp:{}/{}", offer.server, offer.tool));
                    }
                    out
                }
                Err(e) => e,
            };
        }
        let Some(tool) = ToolName::parse(&call.name) else {
            let allowed: Vec<&str> = profile
                .tools
                .allowed
                .iter()
                .map(|t| t.as_str())
                .chain(st.mcp_offers.iter().map(|o| o.spec.name.as_str()))
                .collect();
            return refuse(format!(
                "unknown tool {:?}; the {} role may call: {}",
                call.name,
                st.tpl.name,
                allowed.join(", ")
            ));
        };
        if !profile.tools.allowed.contains(&tool) {
            return refuse(format!(
                "tool {} is not in the {} role's profile",
                tool.as_str(),
                st.tpl.name
            ));
        }
        let args = match parse_arguments(call) {
            Ok(args) => args,
            Err(e) => return e,
        };
        if let Ok(v) =
            super::schemas::validator(&format!("tool:{}", tool.as_str()), &tool.spec().parameters)
        {
            let problems = super::schemas::errors(&v, &args, 3);
            if !problems.is_empty() {
                return error(format!(
                    "bad arguments for {}: {}",
                    call.name,
                    problems.join("; ")
                ));
            }
        }
        match tool {
            ToolName::MemorySearch => self.memory_search(st, &args),
            ToolName::ObjectRead | ToolName::ObjectWrite => self.object_tool(st, cx, tool, &args),
            ToolName::BlackboardPublish => host_result(
                self.host
                    .blackboard_publish(
                        cx,
                        &text(&args, "topic"),
                        &text(&args, "text"),
                        &args["data"],
                    )
                    .map(|id| json!({"finding": id})),
            ),
            ToolName::SpawnTask => host_result(
                self.host
                    .spawn_task(
                        cx,
                        &text(&args, "role"),
                        &text(&args, "title"),
                        &args["input"],
                    )
                    .map(|id| json!({"task": id})),
            ),
            ToolName::ExternalAction => host_result(self.host.external_action(
                cx,
                &text(&args, "action"),
                &args["args"],
            )),
        }
    }

    /// Memory search, narrowed to the role's memory scope (a kind outside it is refused).
    fn memory_search(&self, st: &RunState, args: &Value) -> Outcome {
        let scope = &st.tpl.template.memory;
        let kinds: Vec<String> = match args["kinds"].as_array() {
            Some(k) => k
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            None => scope.kinds.clone(),
        };
        if let Some(bad) = kinds.iter().find(|k| !scope.kinds.contains(k)) {
            return refuse(format!(
                "memory kind {bad:?} is outside the {} role's memory scope",
                st.tpl.name
            ));
        }
        let k = usize::try_from(args["k"].as_u64().unwrap_or(5))
            .unwrap_or(5)
            .min(50);
        let req = RetrievalRequest {
            query: text(args, "query"),
            kinds,
            tiers: scope.tiers.clone(),
            k,
        };
        match self.retriever.retrieve(&req) {
            Ok(r) => ok(json!({"items": r.slices, "params": r.params})),
            Err(e) => error(format!("memory search failed: {e}")),
        }
    }

    /// Object read or write, within the role's read or write scope.
    fn object_tool(
        &self,
        st: &RunState,
        cx: &CallContext,
        tool: ToolName,
        args: &Value,
    ) -> Outcome {
        let (kind, id) = (text(args, "kind"), text(args, "id"));
        let objects = &st.tpl.template.objects;
        if tool == ToolName::ObjectRead {
            if !objects.read.contains(&kind) {
                return refuse(format!(
                    "reading objects of kind {kind:?} is outside the {} role's read scope",
                    st.tpl.name
                ));
            }
            return host_result(self.host.object_read(cx, &kind, &id).map(|o| match o {
                Some((version, body)) => {
                    json!({"kind": kind, "id": id, "version": version, "body": body})
                }
                None => json!({"error": format!("{kind}/{id} not found")}),
            }));
        }
        if !objects.write.contains(&kind) {
            return refuse(format!(
                "writing objects of kind {kind:?} is outside the {} role's write scope",
                st.tpl.name
            ));
        }
        host_result(
            self.host
                .object_write(cx, &kind, &id, args["based_on"].as_i64(), &args["body"])
                .map(|v| json!({"kind": kind, "id": id, "version": v})),
        )
    }
}

/// Longest tool result handed back to the model; the step keeps the whole result.
pub const MAX_TOOL_RESULT: usize = 16_000;

/// The tool result as the model sees it: cut to [`MAX_TOOL_RESULT`] with a note.
fn for_model(content: &Value) -> String {
    let text = content.to_string();
    if text.len() <= MAX_TOOL_RESULT {
        return text;
    }
    let cut = text.floor_char_boundary(MAX_TOOL_RESULT);
    format!(
        "{}…[{} characters cut to fit; ask for less]",
        &text[..cut],
        text.len() - cut
    )
}

/// The call's arguments as JSON (empty means `{}`), or the error the model is told.
fn parse_arguments(call: &ToolCall) -> Result<Value, Outcome> {
    let raw = if call.arguments.trim().is_empty() {
        "{}"
    } else {
        &call.arguments
    };
    serde_json::from_str(raw).map_err(|e| {
        error(format!(
            "invalid JSON in the arguments of {} ({e}); send them again as one JSON object",
            call.name
        ))
    })
}

fn text(args: &Value, key: &str) -> String {
    args[key].as_str().unwrap_or_default().to_string()
}

fn host_result(r: Result<Value, ToolError>) -> Outcome {
    match r {
        Ok(v) => ok(v),
        Err(ToolError::Escalate(reason)) => Outcome {
            content: json!({"error": format!("the operator must decide: {reason}")}),
            refusal: None,
            escalate: Some(reason),
        },
        Err(e) => error(e.to_string()),
    }
}
