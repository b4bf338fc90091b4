//! The runtime's first two steps: the context (retrieved memory, earlier attempts, the
//! objects the input names, fitted to the provider's window) and the first route.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use super::context::{self, Fit};
use super::record::{self, StepRecord};
use super::routing::{self, Route};
use super::runtime::{AgentTask, RunState, Runtime, Stop};
use super::template::Loaded;
use super::tools::{Retrieval, RetrievalRequest};

impl Runtime {
    /// Context and first route (steps 0 and 1).
    pub(super) async fn prepare(
        &mut self,
        run: &str,
        task: &AgentTask,
        tpl: &Loaded,
        prior: &BTreeMap<i64, StepRecord>,
        replay: bool,
    ) -> Result<RunState, Stop> {
        let now = self.clock.now_ms();
        let (retrieval, earlier, objects) = self.gather(run, task, tpl, prior, replay)?;
        let input = super::references::apply(&task.input, &objects);
        // Route first: the prompt is fitted to the window of the provider it goes to.
        let (route, why) = if replay {
            (
                super::runtime_steps::recorded_route(prior, 2, tpl),
                "replay: providers as recorded".to_string(),
            )
        } else {
            routing::initial(tpl, &self.registry).map_err(|e| Stop::Fail {
                error: e.to_string(),
                retryable: false,
            })?
        };
        let fit = self
            .plan_prompt(prior, &route, tpl, &input, &retrieval, &earlier)
            .await;
        let ctx = context::render(tpl, &input, &retrieval, &earlier, &fit);
        let rationale = if ctx.notes.is_empty() {
            format!(
                "retrieved {} memory item(s); {} earlier attempt(s)",
                retrieval.slices.len(),
                earlier.len()
            )
        } else {
            format!(
                "retrieved {} memory item(s), kept {}: {}",
                retrieval.slices.len(),
                ctx.kept_memory,
                ctx.notes.join("; ")
            )
        };
        let step0 = StepRecord::new(
            0,
            "context",
            "context",
            json!({"input": task.input}),
            json!({"memory": retrieval, "earlier": earlier, "notes": ctx.notes, "objects": objects, "fit": fit}),
            &rationale,
        );
        let step1 = StepRecord::new(
            1,
            "route",
            route.provider.name(),
            route.describe(),
            json!({"cascade": route.cascade}),
            &why,
        );
        self.store.write(|tx| {
            record::save_step(tx, run, &step0, now)?;
            record::save_memory(tx, run, &retrieval)?;
            record::save_step(tx, run, &step1, now)?;
            record::set_progress(tx, run, 2, "context ready", "")?;
            Ok(())
        })?;
        let mut structured = ctx.structured;
        structured["schema"] = tpl.schema.clone();
        let rec = record::load_run(self.store.conn(), run)?;
        Ok(RunState {
            run: run.to_string(),
            task: task.task.clone(),
            tpl: tpl.clone(),
            idx: 2,
            messages: ctx.messages,
            structured,
            route,
            run_tokens: rec.as_ref().map_or(0, |r| {
                u64::try_from(r.tokens_in + r.tokens_out).unwrap_or(0)
            }),
            run_usd: rec.as_ref().map_or(0.0, |r| r.cost_usd),
            repairs_left: tpl.template.retry.repair_attempts,
            calls_seen: HashMap::new(),
            last_raw: None,
            pending: Vec::new(),
            prior: prior.clone(),
            replay,
            slot_waits: Arc::default(),
            mcp_offers: if tpl.template.tools.mcp.is_empty() {
                Vec::new()
            } else {
                self.host.mcp_offers(&tpl.template.tools.mcp)
            },
        })
    }

    /// What the first prompt keeps: as recorded when the run already has its context step
    /// (runs recorded before token budgets were fitted by characters), else fitted to the
    /// provider's window, or by characters for a provider without one (offline).
    async fn plan_prompt(
        &self,
        prior: &BTreeMap<i64, StepRecord>,
        route: &Route,
        tpl: &Loaded,
        input: &Value,
        retrieval: &Retrieval,
        earlier: &[Value],
    ) -> Fit {
        if let Some(p) = prior.get(&0).filter(|p| p.kind == "context") {
            return serde_json::from_value(p.output["fit"].clone())
                .unwrap_or_else(|_| context::char_plan(tpl, input, retrieval, earlier));
        }
        match route.provider.state() {
            Some(state) => {
                super::window::plan_first(
                    state,
                    route.provider.name(),
                    tpl,
                    input,
                    retrieval,
                    earlier,
                )
                .await
            }
            None => context::char_plan(tpl, input, retrieval, earlier),
        }
    }

    /// Retrieved memory, earlier attempts and the objects the input names: a resumed or
    /// replayed run uses exactly the recorded ones, a new run asks the retriever, the record
    /// and the host.
    fn gather(
        &self,
        run: &str,
        task: &AgentTask,
        tpl: &Loaded,
        prior: &BTreeMap<i64, StepRecord>,
        replay: bool,
    ) -> Result<(Retrieval, Vec<Value>, Vec<Value>), Stop> {
        if let Some(p) = prior.get(&0).filter(|p| p.kind == "context") {
            let r: Retrieval =
                serde_json::from_value(p.output["memory"].clone()).unwrap_or_default();
            return Ok((
                r,
                p.output["earlier"].as_array().cloned().unwrap_or_default(),
                p.output["objects"].as_array().cloned().unwrap_or_default(),
            ));
        }
        if replay {
            return Err(Stop::Fail {
                error: "the original run has no recorded context step".into(),
                retryable: false,
            });
        }
        let m = &tpl.template.memory;
        let req = RetrievalRequest {
            query: crate::core::canonical::to_string(&task.input),
            kinds: m.kinds.clone(),
            tiers: m.tiers.clone(),
            k: m.k,
        };
        let retrieval = self.retriever.retrieve(&req).unwrap_or_else(|e| {
            tracing::warn!(run, error = %e, "memory retrieval failed; running without memory");
            Retrieval {
                slices: Vec::new(),
                params: json!({"error": e.to_string()}),
            }
        });
        let mut earlier: Vec<Value> = record::earlier_runs(self.store.conn(), &task.task, run)?
            .into_iter()
            .map(|r| {
                let raw = r.raw_output.as_deref().map(|s| s.chars().take(1500).collect::<String>());
                json!({"run": r.id, "status": r.status, "error": r.error, "output": r.output, "raw": raw})
            })
            .collect();
        earlier.extend(task.earlier.iter().cloned());
        let cx = super::tools::CallContext {
            run: run.to_string(),
            task: task.task.clone(),
            role: tpl.name.clone(),
            step: 0,
        };
        let objects = super::references::resolve(self.host.as_ref(), &cx, tpl, &task.input);
        Ok((retrieval, earlier, objects))
    }
}
