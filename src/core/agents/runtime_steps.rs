//! The runtime's loop and its model steps: call (or reuse) the model, hand tool calls to
//! `runtime_tools`, validate the final answer, repair once, cascade or escalate.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::budget;
use super::context;
use super::record::{self, ModelCall, StepRecord};
use super::routing::{self, Route};
use super::runtime::{AgentTask, RunState, Runtime, Stop};
use super::template::Loaded;
use super::tools::CallContext;
use crate::core::audit::{self, Actor};
use crate::core::llm::recorded::Recorded;
use crate::core::llm::{ChatRequest, ChatResponse, LlmError, Message, Role};
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

/// Parses and validates the model's final text against the role's schema.
pub(crate) fn validate(tpl: &Loaded, text: &str) -> Result<Value, String> {
    let value: Value = serde_json::from_str(unfence(text))
        .map_err(|e| format!("the answer is not a JSON object: {e}"))?;
    let validator = jsonschema::validator_for(&tpl.schema)
        .map_err(|e| format!("the role's schema does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .take(5)
        .map(|e| {
            format!(
                "at {}: {e}",
                if e.instance_path().as_str().is_empty() {
                    "/"
                } else {
                    e.instance_path().as_str()
                }
            )
        })
        .collect();
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
                Err(problem) => self.after_invalid(st, &resp.text, &problem)?,
            }
        }
    }

    /// Repair once, then cascade to a stronger tier, then escalate.
    fn after_invalid(&mut self, st: &mut RunState, raw: &str, problem: &str) -> Result<(), Stop> {
        let now = self.clock.now_ms();
        let repairing = st.repairs_left > 0;
        let next = if repairing || st.replay {
            None
        } else {
            routing::escalate(&st.route, &st.tpl, &self.registry).map_err(|e| Stop::Fail {
                error: e.to_string(),
                retryable: false,
            })?
        };
        let (decision, rationale) = if repairing {
            (
                "repair",
                format!("output failed the schema ({problem}); asking the model to repair it once"),
            )
        } else if let Some(n) = &next {
            let saved = st.spent.run_usd;
            (
                "cascade",
                format!(
                    "output still fails the schema after repair; moving from {} ({}) to {} ({}); ${saved:.4} spent at the cheaper tier, price per Mtok {:.2}/{:.2} → {:.2}/{:.2}",
                    st.route.tier.as_str(),
                    st.route.provider.name(),
                    n.tier.as_str(),
                    n.provider.name(),
                    st.route.provider.price().input_per_mtok,
                    st.route.provider.price().output_per_mtok,
                    n.provider.price().input_per_mtok,
                    n.provider.price().output_per_mtok
                ),
            )
        } else if st.replay
            && st
                .prior
                .get(&(st.idx + 1))
                .is_some_and(|p| p.kind == "route")
        {
            (
                "cascade",
                "replay: the original run cascaded here".to_string(),
            )
        } else {
            (
                "escalate",
                format!(
                    "output fails the schema after {} repair attempt(s): {problem}",
                    st.tpl.template.retry.repair_attempts
                ),
            )
        };
        let step = StepRecord::new(
            st.idx,
            "validation",
            decision,
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
                &json!({"decision": decision, "errors": problem}),
            )?;
            Ok(())
        })?;
        st.idx += 1;
        match decision {
            "repair" => {
                st.repairs_left -= 1;
                st.messages.push(Message::new(Role::Assistant, raw));
                st.messages.push(Message::new(Role::User, format!(
                    "Your answer failed validation against the output schema: {problem}\nReturn the corrected JSON object only."
                )));
                Ok(())
            }
            "cascade" => {
                if let Some(n) = next {
                    let step = StepRecord::new(
                        st.idx,
                        "route",
                        n.provider.name(),
                        n.describe(),
                        json!({"cascade": n.cascade, "from": st.route.describe()}),
                        &rationale,
                    );
                    self.store
                        .write(|tx| record::save_step(tx, &run, &step, now))?;
                    st.route = n;
                } else {
                    st.route = recorded_route(&st.prior, st.idx + 1, &st.tpl);
                }
                st.idx += 1;
                st.repairs_left = st.tpl.template.retry.repair_attempts;
                st.messages.push(Message::new(Role::Assistant, raw));
                st.messages.push(Message::new(Role::User, format!(
                    "Your answer failed validation against the output schema: {problem}\nReturn the corrected JSON object only."
                )));
                Ok(())
            }
            _ => Err(Stop::Escalate(rationale)),
        }
    }

    /// Writes the accepted output as a new object version and records the decision.
    fn accept(
        &mut self,
        st: &mut RunState,
        task: &AgentTask,
        output: Value,
    ) -> Result<(Value, Option<ObjectRef>), Stop> {
        let now = self.clock.now_ms();
        let kind = st.tpl.template.output.kind.clone();
        let object = if st.replay {
            None // replay never writes objects
        } else {
            let id = task
                .target_id
                .clone()
                .unwrap_or_else(crate::core::ids::new_id);
            let cx = CallContext {
                run: st.run.clone(),
                task: st.task.clone(),
                role: st.tpl.name.clone(),
                step: st.idx,
            };
            let based_on = self
                .host
                .object_read(&cx, &kind, &id)
                .map_err(|e| Stop::Fail {
                    error: e.to_string(),
                    retryable: true,
                })?
                .map(|(v, _)| v);
            let version = self
                .host
                .object_write(&cx, &kind, &id, based_on, &output)
                .map_err(|e| Stop::Fail {
                    error: format!("writing the output as {kind}/{id}: {e}"),
                    retryable: true,
                })?;
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
        let run = st.run.clone();
        self.store
            .write(|tx| record::save_step(tx, &run, &step, now))?;
        st.idx += 1;
        Ok((output, object))
    }

    /// One model call, reused from the record when this step already happened.
    async fn model_step(
        &mut self,
        st: &mut RunState,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, Stop> {
        // A budget stop recorded here: a resumed run checks again one step further on; a
        // replay that ends here reproduces the stop.
        while let Some(p) = st.prior.get(&st.idx).filter(|p| p.kind == "budget") {
            let last = st.prior.keys().next_back() == Some(&st.idx);
            if st.replay && last {
                return Err(Stop::Escalate(p.rationale.clone()));
            }
            st.idx += 1;
        }
        if st.replay {
            st.route = recorded_route(&st.prior, st.idx, &st.tpl);
        }
        let req = ChatRequest {
            model: st.route.model.clone(),
            messages: st.messages.clone(),
            tools: context::tool_specs(&st.tpl),
            json_output: true,
            max_tokens: st.tpl.template.model.max_tokens,
            context: st.structured.clone(),
        };
        let provider = st.route.provider.clone();
        let hash = req.hash(provider.name());
        if let Some(p) = st.prior.get(&st.idx) {
            if p.kind == "model" && p.input_hash == hash {
                let resp: ChatResponse =
                    serde_json::from_value(p.output.clone()).map_err(|e| Stop::Fail {
                        error: format!("recorded step {} is unreadable: {e}", st.idx),
                        retryable: false,
                    })?;
                if st.replay {
                    let mut copy = p.clone();
                    copy.cost_usd = 0.0;
                    let now = self.clock.now_ms();
                    let run = st.run.clone();
                    self.store
                        .write(|tx| record::save_step(tx, &run, &copy, now))?;
                }
                st.idx += 1;
                return Ok(resp);
            }
            return Err(diverged(
                st,
                &format!(
                    "model request {} differs from the recorded {}",
                    &hash[..12],
                    &p.input_hash[..p.input_hash.len().min(12)]
                ),
            ));
        }
        if st.replay {
            return Err(diverged(st, "the original run made no model call here"));
        }
        self.check_budget(st, &req)?;
        let run = st.run.clone();
        let sink_fn = self.on_delta.clone();
        let sink = move |d: &str| sink_fn(&run, d);
        let attempts = st.tpl.template.retry.model_attempts.max(1);
        let started = Instant::now();
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            match provider.chat(&req, &sink, cancel).await {
                Ok(r) => break r,
                Err(LlmError::Cancelled { .. }) => return Err(Stop::Cancelled),
                Err(e) if e.is_transient() && attempt < attempts => {
                    let now = self.clock.now_ms();
                    let run = st.run.clone();
                    let msg = e.to_string();
                    self.store.write(|tx| {
                        audit::append(
                            tx,
                            now,
                            &Actor::agent(&run),
                            "agent.model_retry",
                            &format!("run/{run}"),
                            &json!({"attempt": attempt, "error": msg}),
                        )
                    })?;
                }
                Err(e) => {
                    return Err(Stop::Fail {
                        error: e.to_string(),
                        retryable: e.is_transient(),
                    });
                }
            }
        };
        let latency = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let cost = provider.price().cost(resp.usage);
        let rationale = if resp.tool_calls.is_empty() {
            format!("{} answered", provider.name())
        } else {
            format!(
                "{} asked for {} tool call(s)",
                provider.name(),
                resp.tool_calls.len()
            )
        };
        let mut step = StepRecord::new(
            st.idx,
            "model",
            provider.name(),
            json!({"route": st.route.describe(), "request": req}),
            serde_json::to_value(&resp).unwrap_or_default(),
            &rationale,
        );
        step.input_hash.clone_from(&hash);
        step.tokens_in = i64::try_from(resp.usage.input).unwrap_or(i64::MAX);
        step.tokens_out = i64::try_from(resp.usage.output).unwrap_or(i64::MAX);
        step.cost_usd = cost;
        step.latency_ms = latency;
        let now = self.clock.now_ms();
        let run = st.run.clone();
        let preview: String = resp
            .text
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let tier = st.route.tier.as_str();
        let role = st.tpl.name.clone();
        let idx = st.idx;
        self.store.write(|tx| {
            record::save_model_call(
                tx,
                &ModelCall {
                    run: &run,
                    step: idx,
                    role: &role,
                    tier,
                    request_hash: &hash,
                    response: &resp,
                    cost_usd: cost,
                    latency_ms: latency,
                },
                now,
            )?;
            record::save_step(tx, &run, &step, now)?;
            record::set_progress(
                tx,
                &run,
                idx + 1,
                &format!("model {}", provider.name()),
                &preview,
            )?;
            audit::append(
                tx,
                now,
                &Actor::agent(&run),
                "agent.model_call",
                &format!("run/{run}"),
                &json!({
                "provider": resp.provider, "model": resp.model, "tier": tier, "request_hash": hash,
                "usage": {"input": resp.usage.input, "output": resp.usage.output},
                "cost_usd": cost, "latency_ms": latency, "retries": resp.retries}),
            )?;
            Ok(())
        })?;
        st.spent.run_tokens += resp.usage.input + resp.usage.output;
        st.spent.run_usd += cost;
        st.idx += 1;
        Ok(resp)
    }

    fn check_budget(&mut self, st: &mut RunState, req: &ChatRequest) -> Result<(), Stop> {
        let price = st.route.provider.price();
        let (tokens, usd) =
            budget::call_estimate(price, req.estimated_input_tokens(), req.max_tokens);
        let day = record::day_of(self.clock.now_ms());
        let (day_tokens, day_usd) = record::day_spend(self.store.conn(), &st.tpl.name, &day)?;
        // The offline provider uses no tokens and costs nothing.
        if st.route.provider.kind() == "offline" {
            return Ok(());
        }
        let spent = budget::Spent {
            day_tokens,
            day_usd,
            ..st.spent
        };
        if let Some(reason) = budget::check(&st.tpl.template.budget, spent, tokens, usd) {
            let now = self.clock.now_ms();
            let run = st.run.clone();
            let step = StepRecord::new(
                st.idx,
                "budget",
                "stop",
                json!({"estimate": {"tokens": tokens, "usd": usd}}),
                json!({"spent": {"run_usd": spent.run_usd, "day_usd": day_usd}}),
                &reason,
            );
            self.store.write(|tx| {
                record::save_step(tx, &run, &step, now)?;
                audit::append(
                    tx,
                    now,
                    &Actor::agent(&run),
                    "agent.budget_stop",
                    &format!("run/{run}"),
                    &json!({"reason": reason}),
                )
            })?;
            return Err(Stop::Escalate(reason));
        }
        Ok(())
    }
}

fn diverged(st: &RunState, what: &str) -> Stop {
    let mode = if st.replay { "replay" } else { "resume" };
    Stop::Fail {
        error: format!("{mode} diverged at step {}: {what}", st.idx),
        retryable: false,
    }
}
