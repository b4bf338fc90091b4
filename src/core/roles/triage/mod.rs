//! The built-in `triage` role: routes an incoming item by local embeddings first.
//!
//! Input `{"text": "..."}` (one incoming item) or `{"kind": "request"}` (every long-term
//! memory note of that kind becomes one child `triage` task, once per note by idempotency
//! key, so a daily schedule triages only new notes). One item is classified by
//! [`crate::core::memory::triage`]; the decisions and the route are recorded together, as
//! the run's `route` step (audited `triage.route`):
//! - `spam` above the threshold: discarded;
//! - a route label above the threshold: `operator` escalates to the inbox, a workflow
//!   name spawns that workflow, any other known role gets a child task (with this task as
//!   parent) whose input carries the item as `incoming`;
//! - below the threshold, an unknown label, or no embedding model: escalated to the
//!   operator with the candidate labels (or the `keel models fetch` hint). An escalation is
//!   recorded but not checkpointed, so a retry (after adding examples or fetching the model)
//!   classifies again.
//!
//! The operator answers an escalated item with [`decide`]: the label becomes a labelled
//! example for later triage, and the task runs again with `label` in its input, which
//! routes the item as the operator said.

mod decide;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::core::audit::{self, Actor};
use crate::core::coordinator::{Outcome, RunError, StepContext};
use crate::core::error::Error;
use crate::core::memory::triage::{self, Decision, Triage};
use crate::core::memory::{Embed, Embedder};
use crate::core::queue::{NewTask, RoleCatalog};
use crate::core::workspace::Workspace;

pub use decide::decide;

/// The role's name in tasks, schedules and workflow stages.
pub const NAME: &str = "triage";

/// The label that discards an item.
pub const SPAM: &str = "spam";

/// Runs one `triage` task.
pub fn run(ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
    let input = ctx.task().input.clone();
    if let Some(kind) = input.get("kind").and_then(Value::as_str) {
        return fan_out(ctx, kind);
    }
    let text = input
        .get("text")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| RunError::Permanent("triage input needs \"text\" or \"kind\"".into()))?
        .to_string();
    if let Some(label) = input.get("label").and_then(Value::as_str) {
        let by = input
            .get("decided_by")
            .and_then(Value::as_str)
            .unwrap_or("submitter")
            .to_string();
        return operator_route(ctx, &text, label, &by);
    }
    // A resumed run acts on the route it already recorded.
    if let Some(plan) = ctx.replay_next("route")? {
        return act(ctx, &text, plan);
    }
    let (decisions, embedding) = match classify(ctx, &text) {
        Ok(d) => d,
        Err(e) => {
            let why = format!(
                "triage could not classify this item, so the operator decides (run `{}` if the embedding model is missing): {e}",
                crate::core::model_assets::FETCH_COMMAND
            );
            record_escalation(ctx, &text, &[], "", &json!({"reason": why}))?;
            return Err(RunError::Escalate(why));
        }
    };
    let plan = plan(ctx.catalog(), &decisions);
    if plan["action"] == "escalate" {
        let why = plan["reason"]
            .as_str()
            .unwrap_or("triage: the operator decides");
        let why = why.to_string();
        record_escalation(ctx, &text, &decisions, &embedding, &plan)?;
        return Err(RunError::Escalate(why));
    }
    let now = ctx.now_ms();
    let plan = route_step(ctx, &json!({"text": text}), plan, |tx, actor| {
        triage::record(tx, now, actor, &text, &embedding, &decisions)
    })?;
    act(ctx, &text, plan)
}

/// The checkpointed `route` step: `also` (the decision rows, when there are any) and the
/// audited route commit together, so a resumed run acts on exactly this route.
fn route_step(
    ctx: &mut StepContext<'_>,
    input: &Value,
    plan: Value,
    also: impl FnOnce(&rusqlite::Transaction<'_>, &Actor) -> crate::core::Result<()>,
) -> Result<Value, RunError> {
    let now = ctx.now_ms();
    let subject = format!("task/{}", ctx.task().id);
    ctx.db_step("route", input, |tx, actor| {
        also(tx, actor)?;
        audit::append(tx, now, actor, "triage.route", &subject, &plan)?;
        Ok(plan)
    })
}

/// Classifies `text` with the shared embedder and the workspace's `[triage]` settings.
fn classify(ctx: &StepContext<'_>, text: &str) -> crate::core::Result<(Vec<Decision>, String)> {
    crate::core::model_assets::Assets::locate().require()?;
    let config = workspace(ctx)?.config.triage;
    let embedder = Embedder::shared()?;
    embedder.wait_ready()?;
    let embedder: Arc<dyn Embed> = Arc::new(embedder);
    let triage = Triage::new(embedder, config, ctx.env.clock.clone());
    let decisions = triage.decide(ctx.conn(), text)?;
    Ok((decisions, triage.embedding()))
}

/// What to do with the item: `discard`, `route` (to a role or workflow) or `escalate`.
fn plan(catalog: &RoleCatalog, decisions: &[Decision]) -> Value {
    let facet = |name: &str| decisions.iter().find(|d| d.facet == name);
    let ids: Vec<&str> = decisions.iter().map(|d| d.id.as_str()).collect();
    if let Some(spam) = facet("spam")
        && spam.routed == "auto"
        && spam.label.as_deref() == Some(SPAM)
    {
        return json!({"action": "discard", "label": SPAM, "confidence": spam.confidence,
                      "by": "triage", "decisions": ids});
    }
    let Some(route) = facet("route") else {
        return json!({"action": "escalate", "decisions": ids,
                      "reason": "triage: there are no `route` examples, so the operator decides"});
    };
    let label = route.label.clone().unwrap_or_default();
    let target = target_kind(catalog, &label);
    if route.routed != "auto" || label == "operator" || target.is_none() {
        return json!({"action": "escalate", "label": label, "confidence": route.confidence,
                      "candidates": candidates(route), "decisions": ids,
                      "reason": escalation(route, &label, target.is_some())});
    }
    let mut plan = json!({"action": "route", "to": label, "target": target,
                          "confidence": route.confidence, "candidates": candidates(route),
                          "by": "triage", "decisions": ids});
    if let Some(priority) = facet("priority").filter(|p| p.routed == "auto")
        && let Some(p) = priority.label.as_deref().and_then(priority_value)
    {
        plan["priority"] = json!(p);
    }
    plan
}

/// `workflow` or `role` when `label` names one (a workflow name wins).
fn target_kind(catalog: &RoleCatalog, label: &str) -> Option<&'static str> {
    if label.is_empty() || label == "operator" || label == SPAM {
        None
    } else if catalog.workflow(label).is_ok() {
        Some("workflow")
    } else if catalog.contains(label) && label != "triage" {
        Some("role")
    } else {
        None
    }
}

/// A `priority` label as a queue priority (higher runs first).
fn priority_value(label: &str) -> Option<i64> {
    match label {
        "urgent" => Some(20),
        "high" => Some(10),
        "normal" => Some(0),
        "low" => Some(-10),
        other => other.parse().ok(),
    }
}

/// Carries out a recorded plan: a discard succeeds as it is; a route spawns the child
/// (once, by idempotency key, even if this runs again).
fn act(ctx: &mut StepContext<'_>, text: &str, plan: Value) -> Result<Outcome, RunError> {
    if plan["action"] != "route" {
        return Ok(Outcome::Succeeded(plan));
    }
    let label = plan["to"].as_str().unwrap_or_default().to_string();
    let priority = plan["priority"].as_i64().unwrap_or(ctx.task().priority);
    let mut child = if plan["target"] == "workflow" {
        NewTask {
            role: "workflow".into(),
            title: format!("Triaged to workflow {label}: {}", first_line(text)),
            input: json!({"workflow": label, "input": {"incoming": text, "topic": text}}),
            ..NewTask::default()
        }
    } else {
        NewTask {
            role: label.clone(),
            title: format!("Triaged to {label}: {}", first_line(text)),
            input: json!({"incoming": text, "topic": text}),
            ..NewTask::default()
        }
    };
    child.priority = priority;
    let ids = ctx.spawn("route", vec![child])?;
    let mut out = plan;
    out["child"] = json!(ids.first());
    Ok(Outcome::Succeeded(out))
}

/// Someone already chose `label` (the operator through [`decide`], or whoever submitted
/// the item with a label): route as told.
fn operator_route(
    ctx: &mut StepContext<'_>,
    text: &str,
    label: &str,
    by: &str,
) -> Result<Outcome, RunError> {
    let plan = if label == SPAM {
        json!({"action": "discard", "label": SPAM, "by": by})
    } else {
        let target = target_kind(ctx.catalog(), label).ok_or_else(|| {
            RunError::Permanent(format!(
                "triage: label {label:?} is neither a role nor a workflow"
            ))
        })?;
        json!({"action": "route", "to": label, "target": target, "by": by})
    };
    let plan = route_step(ctx, &json!({"text": text, "label": label}), plan, |_, _| {
        Ok(())
    })?;
    act(ctx, text, plan)
}

/// Records an escalation (the decisions, if any, and the audited route) without a
/// checkpoint, so that the next attempt classifies again.
fn record_escalation(
    ctx: &mut StepContext<'_>,
    text: &str,
    decisions: &[Decision],
    embedding: &str,
    plan: &Value,
) -> Result<(), RunError> {
    let now = ctx.now_ms();
    let task = ctx.task().id.clone();
    let actor = ctx.actor().clone();
    let mut payload = plan.clone();
    payload["action"] = json!("escalate");
    let owner = ctx.env.owner.clone();
    let recorded = ctx.env.write(ctx.store, |tx| {
        // Only while this process holds the task (as every step does).
        let held: Option<i64> = rusqlite::OptionalExtension::optional(tx.query_row(
            "SELECT 1 FROM tasks WHERE id = ?1 AND state = 'running' AND lease_owner = ?2",
            [&task, &owner],
            |r| r.get(0),
        ))?;
        if held.is_none() {
            return Ok(false);
        }
        triage::record(tx, now, &actor, text, embedding, decisions)?;
        audit::append(
            tx,
            now,
            &actor,
            "triage.route",
            &format!("task/{task}"),
            &payload,
        )?;
        Ok(true)
    })?;
    if recorded {
        Ok(())
    } else {
        Err(RunError::Interrupted(
            crate::core::coordinator::Interrupt::LeaseLost,
        ))
    }
}

fn workspace(ctx: &StepContext<'_>) -> crate::core::Result<Workspace> {
    let root = ctx
        .env
        .gates
        .as_ref()
        .map(|g| g.root().to_path_buf())
        .ok_or_else(|| Error::Other("triage needs a workspace".into()))?;
    Workspace::open(&root)
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
            "triage: confidence {:.2} is below the threshold, so the operator decides; candidates: {}",
            d.confidence,
            labels.join(", ")
        )
    } else if label == "operator" {
        format!(
            "triage: the examples say the operator decides (confidence {:.2})",
            d.confidence
        )
    } else if !known {
        format!(
            "triage: label {label:?} is neither a role nor a workflow, so the operator decides; candidates: {}",
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
    let notes: Vec<(String, String)> = {
        let mut stmt = ctx
            .conn()
            .prepare(
                "SELECT id, text FROM memory_items WHERE kind = ?1 AND tier = 'long' ORDER BY id",
            )
            .map_err(Error::from)?;
        stmt.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(Error::from)?
            .collect::<rusqlite::Result<_>>()
            .map_err(Error::from)?
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

#[cfg(test)]
mod tests;
