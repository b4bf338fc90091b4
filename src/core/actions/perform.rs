//! A run's gated external action: policy, approval, then the effects ledger.

use rusqlite::params;
use serde_json::{Value, json};

use super::Gates;
use crate::core::approvals::{self, GateResult, NewApproval};
use crate::core::coordinator::{Outcome, RunError, StepContext};
use crate::core::error::Error;
use crate::core::policy::{ActionRequest, record_spend};

/// What a run wants to do to the outside world. Everything that reaches the policy is typed
/// here; `rationale` and `note`s from memory or a model are shown to the operator only.
#[derive(Debug, Clone, Default)]
pub struct GatedAction {
    /// The step's name in the run (checkpoints and the idempotency key use it).
    pub step: String,
    /// The connector action, e.g. `site.publish` or `webhook.notify`.
    pub action: String,
    pub args: Value,
    /// Recipient, slug or URL the action touches.
    pub target: String,
    pub object_kind: Option<String>,
    pub amount: Option<f64>,
    pub cost: f64,
    pub summary: String,
    /// The agent's explanation: shown on the approval card, never obeyed.
    pub rationale: String,
    pub proposed_body: Option<Value>,
    /// The affected thing as it is now (the card shows the diff to `proposed_body`).
    pub current_body: Option<Value>,
    /// The canonical object the action carries out (an approved edit becomes its next
    /// version, authored by the operator).
    pub object: Option<crate::protocol::ObjectRef>,
}

/// How a gated action ended for this run.
#[derive(Debug, Clone, PartialEq)]
pub enum Gated {
    /// Performed (now or by an earlier attempt): the connector's answer.
    Done(Value),
    /// The run must stop here and wait (approval or hold window).
    Wait(Outcome),
}

/// Runs `action` through policy, approvals and the effects ledger (see the module docs).
pub fn perform_gated(ctx: &mut StepContext<'_>, action: &GatedAction) -> Result<Gated, RunError> {
    let gates: std::sync::Arc<Gates> = ctx.env.gates.clone().ok_or_else(|| {
        RunError::Permanent("external actions need a coordinator opened on a workspace".into())
    })?;
    let resolved = gates.resolve(&action.action, &action.args)?;
    let (connector, spec) = (resolved.connector, resolved.spec);
    let task = ctx.task().clone();
    let mut req = ActionRequest::for_action(&task.role, &spec, &action.target);
    req.object_kind.clone_from(&action.object_kind);
    req.amount = action.amount;
    req.cost = action.cost;
    req.workflow.clone_from(&task.workflow);
    req.validate()?;
    let spend_step = format!("spend:{}", action.step);
    // A resumed run whose effect already completed does not ask again.
    if let Some(done) = ctx.replay_next(&action.step)? {
        record_spend_once(ctx, &spend_step, &req)?;
        return Ok(Gated::Done(done));
    }
    let (revision, last_rejection) = rejections(ctx, &task.id)?;
    let mut args = action.args.clone();
    if revision > 0
        && let Value::Object(map) = &mut args
    {
        // A new request after a rejection: the operator sees it afresh.
        map.insert("revision".into(), json!(revision));
    }
    let mut rationale = action.rationale.clone();
    if let Some(reason) = &last_rejection {
        rationale = format!("{rationale}\n\nAsked again after a rejection: {reason}")
            .trim()
            .to_string();
    }
    let card = NewApproval {
        task: Some(task.id.clone()),
        args: args.clone(),
        // An MCP tool's card says what its server claims about it (read-only, destructive,
        // external…): the operator sees it; the policy decided from typed fields only.
        summary: match resolved.hints {
            Some(_) => format!("{} — {}", action.summary, spec.description),
            None => action.summary.clone(),
        },
        rationale,
        undo_available: spec.compensation.is_some(),
        proposed_body: action.proposed_body.clone(),
        current_body: action.current_body.clone(),
        object: action.object.clone(),
        ..NewApproval::default()
    };
    let policy = gates.policy()?;
    let now = ctx.now_ms();
    let actor = ctx.actor().clone();
    let result = {
        let _gate = ctx
            .env
            .write_gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        approvals::gate(ctx.store, now, &policy, &actor, &req, &card)?
    };
    match result {
        GateResult::Proceed { edited_body, .. } => {
            // An MCP tool is sent exactly its own arguments (its schema may forbid others).
            let sent = if resolved.hints.is_some() {
                action.args.clone()
            } else {
                args
            };
            let args = apply_edit(sent, edited_body);
            let out = ctx.effect(connector, &action.step, &action.action, &args)?;
            record_spend_once(ctx, &spend_step, &req)?;
            ctx.env.notify(&format!("task/{}", task.id), "effect.done");
            Ok(Gated::Done(out))
        }
        GateResult::Pending {
            approval, reason, ..
        } => Ok(Gated::Wait(Outcome::WaitApproval(format!(
            "approval {approval}: {reason}"
        )))),
        GateResult::Held { until_ms, .. } => Ok(Gated::Wait(Outcome::WaitTimer(until_ms))),
        // Decided while this run was on its way (the decision could not reach a waiting
        // task): end the same way `approvals::on_decision` would have.
        GateResult::Rejected { approval, reason } => {
            let status = approvals::get(ctx.conn(), &approval)?.row.status;
            if status == "cancelled" {
                Err(RunError::Refused(format!(
                    "{} was cancelled during its hold window: {reason}",
                    action.action
                )))
            } else {
                Err(RunError::Escalate(format!(
                    "{} was {status} (approval {approval}): {reason}",
                    action.action
                )))
            }
        }
        GateResult::Denied { rule, reason } => Err(RunError::Refused(format!(
            "{} denied by policy rule {rule}: {reason}",
            action.action
        ))),
    }
}

fn record_spend_once(
    ctx: &mut StepContext<'_>,
    step: &str,
    req: &ActionRequest,
) -> Result<(), RunError> {
    let input = serde_json::to_value(req).map_err(|e| RunError::Permanent(e.to_string()))?;
    let now = ctx.now_ms();
    ctx.db_step(step, &input, |tx, _| record_spend(tx, req, now))
}

/// How many of this task's approvals were refused (rejected, expired or cancelled) before
/// the operator last retried it, and the latest such reason. A refusal the operator has not
/// retried past yet is not counted: the run meets it again instead of asking anew.
fn rejections(ctx: &StepContext<'_>, task: &str) -> Result<(i64, Option<String>), RunError> {
    let retried: Option<i64> = ctx
        .conn()
        .query_row(
            "SELECT max(ts_ms) FROM audit WHERE subject = ?1
               AND action IN ('task.retried', 'task.retried_with_edit')",
            params![format!("task/{task}")],
            |r| r.get(0),
        )
        .map_err(Error::from)?;
    let Some(retried) = retried else {
        return Ok((0, None));
    };
    let (count, reason): (i64, Option<String>) = ctx
        .conn()
        .query_row(
            "SELECT count(*),
                    (SELECT reason FROM approvals WHERE task = ?1 AND decided_ms <= ?2
                       AND status IN ('rejected', 'expired', 'cancelled')
                     ORDER BY decided_ms DESC, id DESC LIMIT 1)
             FROM approvals WHERE task = ?1 AND decided_ms <= ?2
               AND status IN ('rejected', 'expired', 'cancelled')",
            params![task, retried],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(Error::from)?;
    Ok((count, reason))
}

/// The operator's edit replaces the proposed fields: an object edit replaces those keys of
/// the arguments, a string edit replaces `body`.
fn apply_edit(args: Value, edit: Option<Value>) -> Value {
    match (args, edit) {
        (Value::Object(mut map), Some(Value::Object(fields))) => {
            map.extend(fields);
            Value::Object(map)
        }
        (Value::Object(mut map), Some(text @ Value::String(_))) => {
            map.insert("body".into(), text);
            Value::Object(map)
        }
        (args, _) => args,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_replaces_the_proposed_fields_only() {
        let args = json!({"slug": "a", "title": "T", "body": "old", "version": 1});
        assert_eq!(
            apply_edit(args.clone(), Some(json!({"body": "new"}))),
            json!({"slug": "a", "title": "T", "body": "new", "version": 1})
        );
        assert_eq!(
            apply_edit(args.clone(), Some(json!("plain"))),
            json!({"slug": "a", "title": "T", "body": "plain", "version": 1})
        );
        assert_eq!(apply_edit(args.clone(), None), args);
    }
}
