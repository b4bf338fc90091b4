//! Model steps: reuse a recorded answer when the step already happened (resume, replay),
//! otherwise check the budget, call the provider (retrying transient failures as the
//! template allows) and record the call, its cost and the step in one transaction.

use std::time::Instant;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use serde_json::Value;

use super::budget;
use super::context;
use super::record::{self, ModelCall, StepRecord};
use super::runtime::{RunState, Runtime, Stop};
use super::runtime_steps::{diverged, recorded_route};
use super::window;
use crate::core::audit::{self, Actor};
use crate::core::llm::state::Slot;
use crate::core::llm::{ChatRequest, ChatResponse, LlmError, OutputMode, OutputSchema};

/// Windows up to this size are small models: their decoding schema gets bounds.
const SMALL_WINDOW: u64 = 16_384;

/// Bounds the schema a small model decodes by to the answer's token budget (a large model
/// keeps the role's schema as written: it closes its strings, and the bounds would only
/// shorten its answers).
fn bound_decoding(req: &mut ChatRequest, fit: &Value) {
    let small = fit["window"].as_u64().is_some_and(|w| w <= SMALL_WINDOW);
    let max_tokens = req.max_tokens;
    if let Some(out) = req.output.as_mut().filter(|_| small) {
        out.schema = crate::core::llm::structured::decoding_schema(&out.schema, max_tokens);
    }
}

/// How much of a model's answer the run keeps as its preview.
const PREVIEW_CHARS: usize = 4_000;

impl Runtime {
    /// One model call, reused from the record when this step already happened.
    pub(crate) async fn model_step(
        &mut self,
        st: &mut RunState,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, Stop> {
        // A budget stop recorded here: a resumed run checks again one step further on; a
        // replay that ends here reproduces the stop.
        while let Some(p) = st.prior.get(&st.idx).filter(|p| p.kind == "budget") {
            if st.replay && st.prior.keys().next_back() == Some(&st.idx) {
                return Err(Stop::Escalate(p.rationale.clone()));
            }
            st.idx += 1;
        }
        if st.replay {
            st.route = recorded_route(&st.prior, st.idx, &st.tpl);
        }
        let mut req = ChatRequest {
            model: st.route.model.clone(),
            messages: st.messages.clone(),
            tools: context::tool_specs(&st.tpl)
                .into_iter()
                .chain(st.mcp_offers.iter().map(|o| o.spec.clone()))
                .collect(),
            json_output: true,
            max_tokens: st.tpl.template.model.max_tokens,
            context: st.structured.clone(),
            output: Some(OutputSchema {
                name: st.tpl.name.clone(),
                schema: st.tpl.schema.clone(),
            }),
        };
        // Resume and replay send what was sent: the recorded fit, not a new count.
        let recorded_fit = st
            .prior
            .get(&st.idx)
            .filter(|p| p.kind == "model")
            .map(|p| p.input["fit"].clone())
            .filter(|f| !f.is_null());
        let mut fit = Value::Null;
        if let Some(f) = &recorded_fit {
            window::apply_recorded(&mut req, f);
            fit = f.clone();
        }
        if recorded_fit.is_none() && !st.replay {
            fit = self.fit(st, &mut req).await?;
        }
        bound_decoding(&mut req, &fit);
        let hash = req.hash(st.route.provider.name());
        if let Some(resp) = self.reuse(st, &hash)? {
            return Ok(resp);
        }
        self.check_budget(st, &req)?;
        let permit = self.wait_for_slot(st).await?;
        let started = Instant::now();
        let fit_sent = fit.clone();
        let resp = self.call_with_retries(st, &mut req, &mut fit, cancel).await;
        drop(permit);
        let resp = resp?;
        let latency = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        // A request refitted after the server said it did not fit is recorded as sent.
        let hash = if fit == fit_sent {
            hash
        } else {
            req.hash(st.route.provider.name())
        };
        self.record_call(st, &req, &fit, &hash, &resp, latency)?;
        Ok(resp)
    }

    /// Fits the request into the provider's window (providers without one, like offline,
    /// take it as built).
    async fn fit(&self, st: &RunState, req: &mut ChatRequest) -> Result<Value, Stop> {
        let provider = st.route.provider.clone();
        let Some(state) = provider.state() else {
            return Ok(Value::Null);
        };
        window::fit_request(
            state,
            provider.name(),
            req,
            st.tpl.template.model.max_tokens,
        )
        .await
        .map_err(|e| Stop::Fail {
            error: e.to_string(),
            retryable: false,
        })
    }

    /// Waits inside keel for a free slot of the provider; the run shows that it waits.
    async fn wait_for_slot(
        &mut self,
        st: &RunState,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Stop> {
        let provider = st.route.provider.clone();
        let Some(state) = provider.state() else {
            return Ok(None);
        };
        let sem = match state.try_slot().await {
            Slot::Unlimited => return Ok(None),
            Slot::Free(p) => return Ok(Some(p)),
            Slot::Busy(sem) => sem,
        };
        let shown = format!(
            "{} ({}, {} ahead)",
            record::WAITING_FOR_SLOT,
            provider.name(),
            state.waiting() + 1
        );
        let run = st.run.clone();
        self.store
            .write(|tx| record::set_progress_current(tx, &run, &shown))?;
        st.slot_waits.begin();
        let permit = state.wait_slot(sem).await;
        st.slot_waits.end();
        // Only a run that waited wrote a progress line before its call: a call straight
        // away costs no extra commit.
        let calling = format!("model {}", provider.name());
        self.store
            .write(|tx| record::set_progress_current(tx, &run, &calling))?;
        Ok(permit)
    }
    /// The recorded answer of this step, if it happened with the same request.
    fn reuse(&mut self, st: &mut RunState, hash: &str) -> Result<Option<ChatResponse>, Stop> {
        let Some(p) = st.prior.get(&st.idx) else {
            return if st.replay {
                Err(diverged(st, "the original run made no model call here"))
            } else {
                Ok(None)
            };
        };
        if p.kind != "model" || p.input_hash != hash {
            let recorded = &p.input_hash[..p.input_hash.len().min(12)];
            return Err(diverged(
                st,
                &format!(
                    "model request {} differs from the recorded {recorded}",
                    &hash[..12]
                ),
            ));
        }
        let resp: ChatResponse =
            serde_json::from_value(p.output.clone()).map_err(|e| Stop::Fail {
                error: format!("recorded step {} is unreadable: {e}", st.idx),
                retryable: false,
            })?;
        if st.replay {
            // The replay run keeps its own copy of the step (at no cost: nothing was paid).
            let mut copy = p.clone();
            copy.cost_usd = 0.0;
            let (now, run) = (self.clock.now_ms(), st.run.clone());
            self.store
                .write(|tx| record::save_step(tx, &run, &copy, now))?;
        }
        st.idx += 1;
        Ok(Some(resp))
    }

    async fn call_with_retries(
        &mut self,
        st: &RunState,
        req: &mut ChatRequest,
        fit: &mut Value,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, Stop> {
        let provider = st.route.provider.clone();
        let run = st.run.clone();
        let sink_fn = self.on_delta.clone();
        let sink = move |d: &str| sink_fn(&run, d);
        let attempts = st.tpl.template.retry.model_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match provider.chat(req, &sink, cancel).await {
                Ok(r) => return Ok(r),
                Err(LlmError::Cancelled { .. }) => return Err(Stop::Cancelled),
                Err(e) if e.is_transient() && attempt < attempts => {
                    let (now, run, msg) = (self.clock.now_ms(), st.run.clone(), e.to_string());
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
                    // The server's window may have shrunk (a restart): ask again and refit.
                    if let (LlmError::ContextOverflow { .. }, Some(state)) = (&e, provider.state())
                    {
                        state.invalidate().await;
                        req.messages.clone_from(&st.messages);
                        req.max_tokens = st.tpl.template.model.max_tokens;
                        req.output = Some(OutputSchema {
                            name: st.tpl.name.clone(),
                            schema: st.tpl.schema.clone(),
                        });
                        *fit = self.fit(st, req).await?;
                        bound_decoding(req, fit);
                    }
                }
                Err(e) => {
                    return Err(Stop::Fail {
                        error: e.to_string(),
                        retryable: e.is_transient(),
                    });
                }
            }
        }
    }

    /// Records the paid call, the step, the run's progress and the audit entry together.
    fn record_call(
        &mut self,
        st: &mut RunState,
        req: &ChatRequest,
        fit: &Value,
        hash: &str,
        resp: &ChatResponse,
        latency: i64,
    ) -> Result<(), Stop> {
        let provider = st.route.provider.clone();
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
            json!({"route": st.route.describe(), "request": req, "fit": fit}),
            serde_json::to_value(resp).unwrap_or_default(),
            &rationale,
        );
        step.input_hash = hash.to_string();
        step.tokens_in = i64::try_from(resp.usage.input).unwrap_or(i64::MAX);
        step.tokens_out = i64::try_from(resp.usage.output).unwrap_or(i64::MAX);
        step.cost_usd = cost;
        step.latency_ms = latency;
        let (now, run, role, idx, tier) = (
            self.clock.now_ms(),
            st.run.clone(),
            st.tpl.name.clone(),
            st.idx,
            st.route.tier.as_str(),
        );
        // The console shows this for the run: the whole answer when it is of a readable
        // size (a JSON answer then reads as fields), else its newest part.
        let tail: Vec<char> = resp.text.chars().rev().take(PREVIEW_CHARS).collect();
        let preview: String = tail.into_iter().rev().collect();
        self.store.write(|tx| {
            let call = ModelCall {
                run: &run,
                step: idx,
                role: &role,
                tier,
                request_hash: hash,
                response: resp,
                cost_usd: cost,
                latency_ms: latency,
            };
            record::save_model_call(tx, &call, now)?;
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
                "cost_usd": cost, "latency_ms": latency, "retries": resp.retries,
                "output_mode": resp.output_mode.map(OutputMode::as_str),
                "first_token_ms": resp.first_token_ms,
                "prompt_tokens_fitted": fit.get("prompt_tokens"), "window": fit.get("window")}),
            )?;
            Ok(())
        })?;
        st.run_tokens += resp.usage.input + resp.usage.output;
        st.run_usd += cost;
        st.idx += 1;
        Ok(())
    }

    /// Stops the run (recording why) when the next call would go over a budget.
    fn check_budget(&mut self, st: &mut RunState, req: &ChatRequest) -> Result<(), Stop> {
        // The offline provider uses no tokens and costs nothing.
        if st.route.provider.kind() == "offline" {
            return Ok(());
        }
        let (tokens, usd) = budget::call_estimate(
            st.route.provider.price(),
            req.estimated_input_tokens(),
            req.max_tokens,
        );
        let day = record::day_of(self.clock.now_ms());
        let (day_tokens, day_usd) = record::day_spend(self.store.conn(), &st.tpl.name, &day)?;
        // The task budget covers every run of the task (earlier attempts included).
        let (task_tokens_spent, task_usd_spent) = record::task_spend(self.store.conn(), &st.task)?;
        let spent = budget::Spent {
            task_tokens_spent,
            task_usd_spent,
            day_tokens,
            day_usd,
        };
        let Some(reason) = budget::check(&st.tpl.template.budget, spent, tokens, usd) else {
            return Ok(());
        };
        let (now, run) = (self.clock.now_ms(), st.run.clone());
        let step = StepRecord::new(
            st.idx,
            "budget",
            "stop",
            json!({"estimate": {"tokens": tokens, "usd": usd}}),
            json!({"spent": {"task_usd": task_usd_spent, "task_tokens": task_tokens_spent, "day_usd": day_usd, "day_tokens": day_tokens}}),
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
        Err(Stop::Escalate(reason))
    }
}
