//! The runtime's loop and its model steps: call (or reuse) the model, hand tool calls to
//! `runtime_tools`, validate the final answer, repair once, cascade or escalate.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::record::{self, StepRecord};
use super::routing::{self, Route};
use super::runtime::{AgentTask, RunState, Runtime, Stop};
use super::template::Loaded;
use super::tools::CallContext;
use crate::core::audit::{self, Actor};
use crate::core::llm::recorded::Recorded;
use crate::core::llm::structured::first_json_value;
use crate::core::llm::{Message, Role};
use crate::protocol::ObjectRef;

/// The route of a replayed model step: the recorded provider, answering from the record.
pub(crate) fn recorded_route(prior: &BTreeMap<i64, StepRecord>, from: i64, tpl: &Loaded) -> Route {
    let step = prior
        .range(from..)
        .map(|(_, s)| s)
        .find(|s| s.kind == "model");
    let name = step
        .and_then(|s| s.output["provider"].as_str())
        .unwrap_or("offline")
        .to_string();
    let model = step
        .and_then(|s| s.output["model"].as_str())
        .unwrap_or_default()
        .to_string();
    Route {
        tier: tpl.template.model.tier,
        provider: Arc::new(Recorded::new(&name, &model, Arc::default())),
        model: step
            .and_then(|s| s.input["request"]["model"].as_str())
            .unwrap_or(&model)
            .to_string(),
        cascade: false,
    }
}

/// Strips a Markdown code fence around JSON, which models often add.
fn unfence(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

/// Parses and validates the model's final text against the role's schema. Small models
/// wrap JSON in fences or prose, or add a second value: the first complete JSON value in
/// the text is the answer.
pub(crate) fn validate(tpl: &Loaded, text: &str) -> Result<Value, String> {
    let value: Value = match serde_json::from_str(unfence(text)) {
        Ok(v) => v,
        Err(e) => match first_json_value(text) {
            Some((v, _)) => v,
            None => return Err(format!("the answer holds no complete JSON value: {e}")),
        },
    };
    let validator = super::schemas::validator(&format!("output:{}", tpl.hash), &tpl.schema)?;
    let errors = super::schemas::errors(&validator, &value, 5);
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(errors.join("; "))
    }
}

impl Runtime {
    pub(crate) async fn run_loop(
        &mut self,
        st: &mut RunState,
        task: &AgentTask,
        cancel: &CancellationToken,
    ) -> Result<(Value, Option<ObjectRef>), Stop> {
        let max_steps = i64::from(st.tpl.template.limits.max_steps) + 2;
        loop {
            if cancel.is_cancelled() {
                return Err(Stop::Cancelled);
            }
            if st.idx >= max_steps {
                return Err(Stop::Escalate(format!(
                    "step cap: {} model and tool steps without an accepted answer (limits.max_steps); the raw response is kept",
                    st.tpl.template.limits.max_steps
                )));
            }
            let resp = self.model_step(st, cancel).await?;
            if !resp.tool_calls.is_empty() {
                let mut assistant = Message::new(Role::Assistant, resp.text.clone());
                assistant.tool_calls.clone_from(&resp.tool_calls);
                st.messages.push(assistant);
                for call in &resp.tool_calls {
                    let signature = format!("{}:{}", call.name, call.arguments.trim());
                    let seen = st.calls_seen.entry(signature).or_insert(0);
                    *seen += 1;
                    if *seen > 2 {
                        return Err(Stop::Escalate(format!(
                            "tool-call loop: the model called {} with the same arguments {} times",
                            call.name, seen
                        )));
                    }
                    let content = self.tool_step(st, call, &resp.text)?;
                    st.messages.push(Message::tool_result(&call.id, content));
                }
                continue;
            }
            st.last_raw = Some(resp.text.clone());
            match validate(&st.tpl, &resp.text) {
                Ok(output) => return self.accept(st, task, output),
                Err(problem) if resp.finish == "length" => {
                    let problem = format!(
                        "the answer was cut off at its token limit before it was complete ({problem}); answer more briefly"
                    );
                    self.after_invalid(st, &resp.text, &problem)?;
                }
                Err(problem) => self.after_invalid(st, &resp.text, &problem)?,
            }
        }
    }

    /// What to do about output that failed its schema: repair once, then cascade to a
    /// stronger tier, then escalate. Returns the decision, its rationale and the new route.
    fn decide(
        &self,
        st: &RunState,
        problem: &str,
    ) -> Result<(Decision, String, Option<Route>), Stop> {
        if st.repairs_left > 0 {
            let why =
                format!("output failed the schema ({problem}); asking the model to repair it once");
            return Ok((Decision::Repair, why, None));
        }
        if st.replay {
            if st
                .prior
                .get(&(st.idx + 1))
                .is_some_and(|p| p.kind == "route")
            {
                return Ok((
                    Decision::Cascade,
                    "replay: the original run cascaded here".into(),
                    None,
                ));
            }
        } else if let Some(n) =
            routing::escalate(&st.route, &st.tpl, &self.registry).map_err(|e| Stop::Fail {
                error: e.to_string(),
                retryable: false,
            })?
        {
            let (from, to) = (st.route.provider.price(), n.provider.price());
            let why = format!(
                "output still fails the schema after repair; moving from {} ({}) to {} ({}); ${:.4} spent at the cheaper tier, price per Mtok {:.2}/{:.2} → {:.2}/{:.2}",
                st.route.tier.as_str(),
                st.route.provider.name(),
                n.tier.as_str(),
                n.provider.name(),
                st.run_usd,
                from.input_per_mtok,
                from.output_per_mtok,
                to.input_per_mtok,
                to.output_per_mtok
            );
            return Ok((Decision::Cascade, why, Some(n)));
        }
        let why = format!(
            "output fails the schema after {} repair attempt(s): {problem}",
            st.tpl.template.retry.repair_attempts
        );
        Ok((Decision::Escalate, why, None))
    }

    /// Records the failed validation and acts on the decision.
    fn after_invalid(&mut self, st: &mut RunState, raw: &str, problem: &str) -> Result<(), Stop> {
        let now = self.clock.now_ms();
        let (decision, rationale, next) = self.decide(st, problem)?;
        let step = StepRecord::new(
            st.idx,
            "validation",
            decision.as_str(),
            json!({"raw": raw}),
            json!({"errors": problem}),
            &rationale,
        );
        let run = st.run.clone();
        self.store.write(|tx| {
            record::save_step(tx, &run, &step, now)?;
            audit::append(
                tx,
                now,
                &Actor::agent(&run),
                "agent.validation_failed",
                &format!("run/{run}"),
                &json!({"decision": decision.as_str(), "errors": problem}),
            )?;
            Ok(())
        })?;
        st.idx += 1;
        match decision {
            Decision::Escalate => return Err(Stop::Escalate(rationale)),
            Decision::Repair => st.repairs_left -= 1,
            Decision::Cascade => {
                let step = match next {
                    Some(n) => {
                        let step = StepRecord::new(
                            st.idx,
                            "route",
                            n.provider.name(),
                            n.describe(),
                            json!({"cascade": n.cascade, "from": st.route.describe()}),
                            &rationale,
                        );
                        st.route = n;
                        Some(step)
                    }
                    // Replay: the next model step names its recorded provider.
                    None => st.prior.get(&st.idx).cloned(),
                };
                if let Some(step) = step {
                    self.store
                        .write(|tx| record::save_step(tx, &run, &step, now))?;
                }
                st.idx += 1;
                st.repairs_left = st.tpl.template.retry.repair_attempts;
            }
        }
        st.messages.push(Message::new(Role::Assistant, raw));
        st.messages.push(Message::new(Role::User, format!(
            "Your answer failed validation against the output schema: {problem}\nReturn the corrected JSON object only."
        )));
        Ok(())
    }

    /// Writes the accepted output as a new object version and records the decision.
    fn accept(
        &mut self,
        st: &mut RunState,
        task: &AgentTask,
        output: Value,
    ) -> Result<(Value, Option<ObjectRef>), Stop> {
        let kind = st.tpl.template.output.kind.clone();
        let object = if st.replay {
            None // replay never writes objects
        } else {
            // Without a target the object is named after the run, so a run resumed after a
            // crash between writing the object and recording the step finds its own write.
            let id = task.target_id.clone().unwrap_or_else(|| st.run.clone());
            let cx = CallContext {
                run: st.run.clone(),
                task: st.task.clone(),
                role: st.tpl.name.clone(),
                step: st.idx,
            };
            let current = self
                .host
                .object_read(&cx, &kind, &id)
                .map_err(|e| Stop::Fail {
                    error: e.to_string(),
                    retryable: true,
                })?;
            let version = match current {
                Some((v, body)) if task.target_id.is_none() && body == output => v,
                current => self
                    .host
                    .object_write(&cx, &kind, &id, current.map(|(v, _)| v), &output)
                    .map_err(|e| Stop::Fail {
                        error: format!("writing the output as {kind}/{id}: {e}"),
                        retryable: true,
                    })?,
            };
            Some(ObjectRef {
                kind: kind.clone(),
                id,
                version,
            })
        };
        let rationale = output["rationale"]
            .as_str()
            .unwrap_or("output accepted")
            .to_string();
        let step = StepRecord::new(
            st.idx,
            "output",
            &kind,
            json!({"object": object}),
            output.clone(),
            &rationale,
        );
        // Written with the run's final status, in the same transaction.
        st.pending.push(step);
        st.idx += 1;
        Ok((output, object))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Repair,
    Cascade,
    Escalate,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Repair => "repair",
            Decision::Cascade => "cascade",
            Decision::Escalate => "escalate",
        }
    }
}

pub(crate) fn diverged(st: &RunState, what: &str) -> Stop {
    let mode = if st.replay { "replay" } else { "resume" };
    Stop::Fail {
        error: format!("{mode} diverged at step {}: {what}", st.idx),
        retryable: false,
    }
}
