//! The built-in `triage` role: routes an incoming item by local embeddings first.
//!
//! Input `{"text": "..."}` (one incoming item) or `{"kind": "request"}` (every long-term
//! memory note of that kind becomes one child `triage` task, once per note by idempotency
//! key, so a daily schedule triages only new notes). One item is classified by
//! [`crate::core::memory::triage`] (decisions recorded there); then, as the run's `route`
//! step (audited `triage.route`):
//! - `spam` above the threshold: discarded;
//! - a route label above the threshold: `operator` escalates to the inbox, a workflow
//!   name spawns that workflow, any other known role gets a child task (with this task as
//!   parent) whose input carries the item as `incoming`;
//! - below the threshold, an unknown label, or no embedding model: escalated to the
//!   operator with the candidate labels (or the `keel models fetch` hint).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::core::coordinator::{Outcome, RunError, StepContext};
use crate::core::memory::Memory;
use crate::core::memory::triage::{Decision, Triage};
use crate::core::queue::NewTask;
use crate::core::workspace::Workspace;

/// Runs one `triage` task.
pub fn run(ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
    let input = ctx.task().input.clone();
    if let Some(kind) = input.get("kind").and_then(Value::as_str) {
        return fan_out(ctx, kind);
    }
    let text = input
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| RunError::Permanent("triage input needs \"text\" or \"kind\"".into()))?
        .to_string();
    let ws = workspace(ctx)?;
    let clock = ctx_clock(ctx);
    let decisions: Result<Vec<Decision>, String> = ctx.step("classify", || {
        Ok(classify(&ws, clock, &text).map_err(|e| e.to_string()))
    })?;
    let decisions = match decisions {
        Ok(d) => d,
        Err(e) => {
            let why = format!(
                "triage could not classify (run `{}` if the embedding model is missing): {e}",
                crate::core::model_assets::FETCH_COMMAND
            );
            record_route(ctx, &json!({"action": "escalate", "reason": why}))?;
            return Err(RunError::Escalate(why));
        }
    };
    let facet = |name: &str| decisions.iter().find(|d| d.facet == name);
    if let Some(spam) = facet("spam")
        && spam.routed == "auto"
        && spam.label.as_deref() == Some("spam")
    {
        let route = json!({"action": "discard", "label": "spam", "confidence": spam.confidence, "decision": spam.id});
        record_route(ctx, &route)?;
        return Ok(Outcome::Succeeded(route));
    }
    let Some(route) = facet("route") else {
        let why = "triage: no `route` examples; the operator decides".to_string();
        record_route(ctx, &json!({"action": "escalate", "reason": why}))?;
        return Err(RunError::Escalate(why));
    };
    let label = route.label.clone().unwrap_or_default();
    let known_role = ctx.catalog().contains(&label);
    let known_workflow = ctx.catalog().workflow(&label).is_ok();
    if route.routed != "auto" || label == "operator" || !(known_role || known_workflow) {
        let why = escalation(route, &label, known_role || known_workflow);
        record_route(
            ctx,
            &json!({"action": "escalate", "label": label, "confidence": route.confidence,
                    "candidates": candidates(route), "decision": route.id, "reason": why}),
        )?;
        return Err(RunError::Escalate(why));
    }
    let child = if known_workflow {
        NewTask {
            role: "workflow".into(),
            title: format!("Triaged to workflow {label}"),
            input: json!({"workflow": label, "input": {"incoming": text, "topic": text}}),
            ..NewTask::default()
        }
    } else {
        NewTask {
            role: label.clone(),
            title: format!("Triaged to {label}: {}", first_line(&text)),
            input: json!({"incoming": text, "topic": text}),
            ..NewTask::default()
        }
    };
    let plan = json!({"action": "route", "to": label, "confidence": route.confidence,
                      "candidates": candidates(route), "decision": route.id});
    record_route(ctx, &plan)?;
    let ids = ctx.spawn("route", vec![child])?;
    let mut out = plan;
    out["child"] = json!(ids.first());
    Ok(Outcome::Succeeded(out))
}

fn ctx_clock(ctx: &StepContext<'_>) -> Arc<dyn crate::core::clock::Clock> {
    ctx.env.clock.clone()
}

fn workspace(ctx: &StepContext<'_>) -> Result<Workspace, RunError> {
    let root = ctx
        .env
        .gates
        .as_ref()
        .map(|g| g.root().to_path_buf())
        .ok_or_else(|| RunError::Permanent("triage needs a workspace".into()))?;
    Ok(Workspace::open(&root)?)
}

fn classify(
    ws: &Workspace,
    clock: Arc<dyn crate::core::clock::Clock>,
    text: &str,
) -> crate::core::Result<Vec<Decision>> {
    crate::core::model_assets::Assets::locate().require()?;
    let mut store = ws.store()?;
    let memory = Memory::open(ws, &mut store, clock.clone())?;
    let embedder = memory
        .embedders
        .first()
        .cloned()
        .ok_or_else(|| crate::core::Error::Other("no embedder configured".into()))?;
    let triage = Triage::new(embedder, ws.config.triage.clone(), clock);
    triage.classify(
        &mut store,
        &crate::core::audit::Actor::system("triage"),
        text,
    )
}

/// The run's `route` step: the decision, audited in the same transaction.
fn record_route(ctx: &mut StepContext<'_>, route: &Value) -> Result<(), RunError> {
    let task = ctx.task().id.clone();
    let now = ctx.now_ms();
    ctx.db_step("route", route, |tx, actor| {
        crate::core::audit::append(
            tx,
            now,
            actor,
            "triage.route",
            &format!("task/{task}"),
            route,
        )?;
        Ok(())
    })
}

fn candidates(d: &Decision) -> Vec<Value> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for n in &d.neighbours {
        if !seen.contains(&n.label) {
            seen.push(n.label.clone());
            out.push(json!({"label": n.label, "similarity": n.similarity}));
        }
    }
    out
}

fn escalation(d: &Decision, label: &str, known: bool) -> String {
    let labels: Vec<String> = candidates(d)
        .iter()
        .filter_map(|c| c["label"].as_str().map(str::to_string))
        .collect();
    if d.routed != "auto" {
        format!(
            "triage: confidence {:.2} below the threshold; candidates: {}",
            d.confidence,
            labels.join(", ")
        )
    } else if label == "operator" {
        format!(
            "triage: routed to the operator (confidence {:.2})",
            d.confidence
        )
    } else if !known {
        format!(
            "triage: label {label:?} is neither a role nor a workflow; candidates: {}",
            labels.join(", ")
        )
    } else {
        "triage: the operator decides".into()
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").chars().take(60).collect()
}

/// `{"kind": K}`: one child `triage` task per long-term note of kind K (once per note).
fn fan_out(ctx: &mut StepContext<'_>, kind: &str) -> Result<Outcome, RunError> {
    let notes: Vec<(String, String)> =
        {
            let mut stmt = ctx.conn().prepare(
            "SELECT id, text FROM memory_items WHERE kind = ?1 AND tier = 'long' ORDER BY id",
        ).map_err(crate::core::Error::from)?;
            stmt.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(crate::core::Error::from)?
                .collect::<rusqlite::Result<_>>()
                .map_err(crate::core::Error::from)?
        };
    let mut ids = Vec::new();
    for (id, text) in &notes {
        let child = NewTask {
            role: "triage".into(),
            title: format!("Triage note {}", first_line(text)),
            input: json!({"text": text, "note": id}),
            idempotency_key: Some(format!("triage:note:{id}")),
            ..NewTask::default()
        };
        ids.extend(ctx.spawn(&format!("note-{id}"), vec![child])?);
    }
    Ok(Outcome::Succeeded(
        json!({"kind": kind, "notes": notes.len(), "tasks": ids}),
    ))
}
