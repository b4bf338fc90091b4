//! The gate every external action passes before the effects ledger performs it.
//!
//! `gate` is idempotent per request: a retry of the same task with the same request and
//! arguments finds its existing approval instead of asking twice, and learns the outcome
//! (approved, still pending, held, or rejected with the operator's reason).

use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::rows::{COLUMNS, from_row};
use crate::core::audit::{self, Actor};
use crate::core::canonical;
use crate::core::clock::Millis;
use crate::core::effects::Reversibility;
use crate::core::error::Result;
use crate::core::ids;
use crate::core::policy::{ActionRequest, Outcome, Policy, evaluate};
use crate::core::store::Store;
use crate::protocol::{MemorySliceRow, ObjectRef};

/// What the approval card needs besides the typed request. None of these fields reach the
/// policy decision: they are shown to the operator.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NewApproval {
    pub task: Option<String>,
    /// The connector arguments (stored so the approved action runs exactly as shown).
    pub args: Value,
    pub summary: String,
    /// The agent's explanation. Shown, never obeyed.
    pub rationale: String,
    /// Whether the connector declares a compensation for the action.
    pub undo_available: bool,
    pub object: Option<ObjectRef>,
    /// The affected object's current body (for the diff).
    pub current_body: Option<Value>,
    pub proposed_body: Option<Value>,
    /// The memory the agent used.
    pub memory: Vec<MemorySliceRow>,
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "gate", rename_all = "snake_case")]
pub enum GateResult {
    /// Perform the action now (with the operator's edited body, if any).
    Proceed {
        rule: String,
        approval: Option<String>,
        edited_body: Option<Value>,
    },
    /// Waiting for the operator; the task should park without holding a worker.
    Pending {
        approval: String,
        rule: String,
        reason: String,
    },
    /// Approved, but held until `until_ms` (the operator can still cancel).
    Held { approval: String, until_ms: Millis },
    /// The operator (or expiry) said no; `reason` goes back to the agent.
    Rejected { approval: String, reason: String },
    /// The policy forbids it.
    Denied { rule: String, reason: String },
}

/// Decides `req` and records the decision; creates an approval when one is required.
pub fn gate(
    store: &mut Store,
    now_ms: Millis,
    policy: &Policy,
    actor: &Actor,
    req: &ActionRequest,
    card: &NewApproval,
) -> Result<GateResult> {
    super::decide::sweep_expired(store, now_ms)?;
    let key = request_key(card.task.as_deref(), req, &card.args);
    store.write(|tx| {
        if let Some(existing) = latest_for(tx, &key)? {
            return Ok(from_existing(&existing, now_ms));
        }
        let decision = evaluate(policy, req, now_ms, &**tx, &**tx)?;
        let subject = format!("action/{}", req.action);
        let payload = json!({
            "request": req,
            "outcome": decision.outcome.as_str(),
            "rule": decision.rule,
            "reason": decision.reason,
            "task": card.task,
            "policy": policy.source.display().to_string(),
        });
        audit::append(tx, now_ms, actor, "policy.decide", &subject, &payload)?;
        Ok(match decision.outcome {
            Outcome::Allow => GateResult::Proceed {
                rule: decision.rule,
                approval: None,
                edited_body: None,
            },
            Outcome::Deny => GateResult::Denied {
                rule: decision.rule,
                reason: decision.reason,
            },
            Outcome::RequireApproval => {
                let id = insert(tx, now_ms, actor, &key, req, card, &decision)?;
                GateResult::Pending {
                    approval: id,
                    rule: decision.rule,
                    reason: decision.reason,
                }
            }
        })
    })
}

/// Stable hash of what is being asked: the same task asking the same thing finds its row.
#[must_use]
pub fn request_key(task: Option<&str>, req: &ActionRequest, args: &Value) -> String {
    canonical::hash_value(&json!({"task": task, "request": req, "args": args}))
}

fn latest_for(tx: &Transaction<'_>, key: &str) -> Result<Option<super::ApprovalDetail>> {
    Ok(tx
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM approvals WHERE request_key = ?1
                 ORDER BY created_ms DESC, id DESC LIMIT 1"
            ),
            params![key],
            from_row,
        )
        .optional()?)
}

fn from_existing(a: &super::ApprovalDetail, now_ms: Millis) -> GateResult {
    let id = a.row.id.clone();
    match a.row.status.as_str() {
        "approved" => match a.send_after_ms {
            Some(until) if until > now_ms => GateResult::Held {
                approval: id,
                until_ms: until,
            },
            _ => GateResult::Proceed {
                rule: a.row.rule.clone(),
                approval: Some(id),
                edited_body: a.edited_body.clone(),
            },
        },
        "pending" => GateResult::Pending {
            approval: id,
            rule: a.row.rule.clone(),
            reason: a.rule_reason.clone(),
        },
        status => GateResult::Rejected {
            approval: id,
            reason: a
                .reason
                .clone()
                .unwrap_or_else(|| format!("the approval was {status}")),
        },
    }
}

fn insert(
    tx: &Transaction<'_>,
    now_ms: Millis,
    actor: &Actor,
    key: &str,
    req: &ActionRequest,
    card: &NewApproval,
    decision: &crate::core::policy::Decision,
) -> Result<String> {
    let id = ids::new_id();
    let diff = diff_bodies(card.current_body.as_ref(), card.proposed_body.as_ref());
    let expires = decision
        .expires_secs
        .map(|s| now_ms.saturating_add(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)));
    let hold_ms = i64::try_from(decision.hold_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let to_text = |v: &Option<Value>| v.as_ref().map(canonical::to_string);
    tx.execute(
        "INSERT INTO approvals (id, request_key, task, workflow, agent, action, target, summary,
            rationale, cost_usd, amount, risk, reversibility, undo_available, rule, rule_reason,
            status, created_ms, expires_ms, on_expiry, hold_ms, object_kind, object_id,
            object_version, proposed_body, diff, memory, request, args)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
            'pending', ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)",
        params![
            id,
            key,
            card.task,
            req.workflow,
            req.agent,
            req.action,
            req.target,
            card.summary,
            card.rationale,
            req.cost,
            req.amount,
            risk(req),
            crate::core::policy::rules::rev_name(req.reversibility),
            card.undo_available,
            decision.rule,
            decision.reason,
            now_ms,
            expires,
            decision.on_expiry.as_str(),
            hold_ms,
            card.object.as_ref().map(|o| o.kind.clone()),
            card.object.as_ref().map(|o| o.id.clone()),
            card.object.as_ref().map(|o| o.version),
            to_text(&card.proposed_body),
            diff,
            serde_json::to_string(&card.memory).unwrap_or_else(|_| "[]".into()),
            serde_json::to_string(req).unwrap_or_else(|_| "null".into()),
            canonical::to_string(&card.args),
        ],
    )?;
    audit::append(
        tx,
        now_ms,
        actor,
        "approval.create",
        &format!("approval/{id}"),
        &json!({
            "task": card.task, "action": req.action, "target": req.target,
            "rule": decision.rule, "reason": decision.reason, "expires_ms": expires,
            "on_expiry": decision.on_expiry.as_str(), "hold_ms": hold_ms,
            "memory": card.memory.iter().map(|m| json!({"item": m.item, "version": m.version})).collect::<Vec<_>>(),
        }),
    )?;
    Ok(id)
}

/// low | medium | high, from what the connector declares and the money involved.
#[must_use]
pub fn risk(req: &ActionRequest) -> &'static str {
    let money = req.spend();
    if req.reversibility == Reversibility::Irreversible || money >= 100.0 {
        "high"
    } else if req.reversibility == Reversibility::Compensable || money > 0.0 {
        "medium"
    } else {
        "low"
    }
}

/// Unified diff of two JSON bodies (pretty-printed with sorted keys).
#[must_use]
pub fn diff_bodies(current: Option<&Value>, proposed: Option<&Value>) -> String {
    let render = |v: Option<&Value>| {
        v.map(|v| {
            let sorted: Value =
                serde_json::from_str(&canonical::to_string(v)).unwrap_or(Value::Null);
            let mut text = serde_json::to_string_pretty(&sorted).unwrap_or_default();
            text.push('\n');
            // Long text fields read better one line each.
            text.replace("\\n", "\n")
        })
        .unwrap_or_default()
    };
    let (old, new) = (render(current), render(proposed));
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header("current", "proposed")
        .to_string()
}
