//! The operator's decisions: approve (optionally edited, optionally "always allow"), reject
//! with a reason, batch approve, cancel a held action, and expiry. Each one is audited in the
//! transaction that makes it. Only the operator decides: an agent actor is refused.

use rusqlite::{Transaction, params};
use serde_json::{Value, json};

use super::rows::{self, ApprovalDetail, COLUMNS, from_row};
use crate::core::audit::{self, Actor};
use crate::core::canonical;
use crate::core::clock::Millis;
use crate::core::error::{Error, Result};
use crate::core::store::Store;
use crate::protocol::ObjectRef;

pub use crate::protocol::Approved;

fn only_operator(actor: &Actor, what: &str) -> Result<()> {
    if *actor == Actor::Operator {
        Ok(())
    } else {
        Err(Error::invalid(
            "decision",
            format!("only the operator can {what} an approval (asked by {actor})"),
        ))
    }
}

fn must_be_pending(a: &ApprovalDetail, now_ms: Millis) -> Result<()> {
    if a.row.status != "pending" {
        return Err(Error::invalid(
            "decision",
            format!("approval {} is already {}", a.row.id, a.row.status),
        ));
    }
    if a.row.expires_ms.is_some_and(|e| e <= now_ms) {
        return Err(Error::invalid(
            "decision",
            format!(
                "approval {} expired at {}; its default outcome ({}) applies",
                a.row.id,
                crate::core::clock::rfc3339(a.row.expires_ms.unwrap_or_default()),
                a.on_expiry
            ),
        ));
    }
    Ok(())
}

/// Stores the operator's edited body as a new version of the affected object, authored by
/// the operator, in the approval's transaction; returns the new version number. With the
/// objects module: `objects::put(tx, kinds, &Stamp::new(Actor::Operator, now), &o.kind,
/// &o.id, Some(o.version), body).map(|w| w.version)` — a stale `o.version` is a conflict and
/// nothing is approved.
pub type EditWriter<'a> = &'a dyn Fn(&Transaction<'_>, &ObjectRef, &Value) -> Result<i64>;

/// Approves a pending approval. `edited_body` is the operator's edit of the proposed body;
/// it is stored on the approval (and returned by `gate` as `Proceed { edited_body }`).
pub fn approve(
    store: &mut Store,
    now_ms: Millis,
    actor: &Actor,
    id: &str,
    edited_body: Option<&Value>,
    always_allow: bool,
) -> Result<Approved> {
    approve_with(store, now_ms, actor, id, edited_body, always_allow, None)
}

/// [`approve`], also writing the edit as a new object version through `write_edit`.
pub fn approve_with(
    store: &mut Store,
    now_ms: Millis,
    actor: &Actor,
    id: &str,
    edited_body: Option<&Value>,
    always_allow: bool,
    write_edit: Option<EditWriter<'_>>,
) -> Result<Approved> {
    only_operator(actor, "approve")?;
    store.write(|tx| {
        let edit = Edit {
            body: edited_body,
            writer: write_edit,
        };
        approve_in(tx, now_ms, actor, id, &edit, always_allow)
    })
}

struct Edit<'a, 'b> {
    body: Option<&'a Value>,
    writer: Option<EditWriter<'b>>,
}

fn approve_in(
    tx: &Transaction<'_>,
    now_ms: Millis,
    actor: &Actor,
    id: &str,
    edit: &Edit<'_, '_>,
    always_allow: bool,
) -> Result<Approved> {
    let a = rows::get(tx, id)?;
    must_be_pending(&a, now_ms)?;
    let send_after = (a.hold_ms > 0).then(|| now_ms.saturating_add(a.hold_ms));
    let edited_version = match (edit.body, &a.row.object, edit.writer) {
        (Some(body), Some(object), Some(write)) => Some(write(tx, object, body)?),
        // No object on the card (or no writer): the edit lives on the approval and reaches
        // the action through its arguments.
        _ => None,
    };
    tx.execute(
        "UPDATE approvals SET status = 'approved', decided_ms = ?1, decided_by = ?2,
                edited_body = ?3, send_after_ms = ?4, edited_version = ?5 WHERE id = ?6",
        params![
            now_ms,
            actor.to_string(),
            edit.body.map(canonical::to_string),
            send_after,
            edited_version,
            id
        ],
    )?;
    // The waiting task resumes in this same transaction.
    super::on_decision(tx, now_ms, actor, id)?;
    let allow_rule = if always_allow {
        Some(super::allow_rules::create(
            tx,
            now_ms,
            actor,
            &a.row.agent,
            &a.row.action,
            &a.row.target,
            Some(id),
        )?)
    } else {
        None
    };
    audit::append(
        tx,
        now_ms,
        actor,
        "approval.approve",
        &format!("approval/{id}"),
        &json!({
            "task": a.row.task, "action": a.row.action, "target": a.row.target,
            "rule": a.row.rule, "edited": edit.body.is_some(),
            "edited_hash": edit.body.map(canonical::hash_value),
            "edited_version": edited_version,
            "send_after_ms": send_after, "always_allow": allow_rule,
        }),
    )?;
    Ok(Approved {
        approval: rows::get(tx, id)?,
        allow_rule,
    })
}

/// Rejects a pending approval; `reason` is required and given back to the agent on retry.
pub fn reject(
    store: &mut Store,
    now_ms: Millis,
    actor: &Actor,
    id: &str,
    reason: &str,
) -> Result<ApprovalDetail> {
    only_operator(actor, "reject")?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::invalid(
            "rejection",
            "give a reason: the agent gets it back on retry",
        ));
    }
    store.write(|tx| {
        let a = rows::get(tx, id)?;
        must_be_pending(&a, now_ms)?;
        close(tx, now_ms, actor, &a, "rejected", reason, "approval.reject")?;
        rows::get(tx, id)
    })
}

fn close(
    tx: &Transaction<'_>,
    now_ms: Millis,
    actor: &Actor,
    a: &ApprovalDetail,
    status: &str,
    reason: &str,
    action: &str,
) -> Result<()> {
    tx.execute(
        "UPDATE approvals SET status = ?1, decided_ms = ?2, decided_by = ?3, reason = ?4
         WHERE id = ?5",
        params![status, now_ms, actor.to_string(), reason, a.row.id],
    )?;
    // The waiting task escalates or fails in this same transaction.
    super::on_decision(tx, now_ms, actor, &a.row.id)?;
    audit::append(
        tx,
        now_ms,
        actor,
        action,
        &format!("approval/{}", a.row.id),
        &json!({"task": a.row.task, "action": a.row.action, "target": a.row.target,
                "rule": a.row.rule, "reason": reason}),
    )?;
    Ok(())
}

pub use crate::protocol::BatchItem;

/// Approves each of `ids` that is pending, in one transaction; the others are reported.
pub fn batch_approve(
    store: &mut Store,
    now_ms: Millis,
    actor: &Actor,
    ids: &[String],
) -> Result<Vec<BatchItem>> {
    only_operator(actor, "approve")?;
    store.write(|tx| {
        let mut out = Vec::new();
        for id in ids {
            // Each check happens before any write for that id, so a skipped id changes nothing.
            let no_edit = Edit {
                body: None,
                writer: None,
            };
            let item = match approve_in(tx, now_ms, actor, id, &no_edit, false) {
                Ok(_) => BatchItem {
                    id: id.clone(),
                    approved: true,
                    error: None,
                },
                Err(e @ (Error::Invalid { .. } | Error::NotFound { .. })) => BatchItem {
                    id: id.clone(),
                    approved: false,
                    error: Some(e.to_string()),
                },
                Err(e) => return Err(e),
            };
            out.push(item);
        }
        Ok(out)
    })
}

/// Cancels an approved action that is still inside its hold window.
pub fn cancel(
    store: &mut Store,
    now_ms: Millis,
    actor: &Actor,
    id: &str,
    reason: &str,
) -> Result<ApprovalDetail> {
    only_operator(actor, "cancel")?;
    store.write(|tx| {
        let a = rows::get(tx, id)?;
        let in_window = a.row.status == "approved" && a.send_after_ms.is_some_and(|t| t > now_ms);
        if !in_window {
            let why = match (a.row.status.as_str(), a.send_after_ms) {
                ("approved", Some(t)) => format!(
                    "its hold window ended at {}; the action may already have run (use undo if it has one)",
                    crate::core::clock::rfc3339(t)
                ),
                ("approved", None) => "it was approved without a hold window".to_string(),
                (status, _) => format!("it is {status}"),
            };
            return Err(Error::invalid("cancel", format!("approval {id} cannot be cancelled: {why}")));
        }
        let reason = if reason.trim().is_empty() { "cancelled by the operator during the hold window" } else { reason.trim() };
        close(tx, now_ms, actor, &a, "cancelled", reason, "approval.cancel")?;
        rows::get(tx, id)
    })
}

/// Applies the stated default outcome to every pending approval past its expiry.
/// Returns `(id, new status)` for each.
pub fn sweep_expired(store: &mut Store, now_ms: Millis) -> Result<Vec<(String, String)>> {
    let due: i64 = store.conn().query_row(
        "SELECT count(*) FROM approvals WHERE status = 'pending' AND expires_ms <= ?1",
        params![now_ms],
        |r| r.get(0),
    )?;
    if due == 0 {
        return Ok(Vec::new());
    }
    let actor = Actor::system("approvals.expiry");
    store.write(|tx| {
        let expired: Vec<ApprovalDetail> = {
            let mut stmt = tx.prepare(&format!(
                "SELECT {COLUMNS} FROM approvals WHERE status = 'pending' AND expires_ms <= ?1
                 ORDER BY expires_ms, id"
            ))?;
            stmt.query_map(params![now_ms], from_row)?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut out = Vec::new();
        for a in expired {
            let at = a.row.expires_ms.unwrap_or(now_ms);
            if a.on_expiry == "approve" {
                let send_after = (a.hold_ms > 0).then(|| now_ms.saturating_add(a.hold_ms));
                tx.execute(
                    "UPDATE approvals SET status = 'approved', decided_ms = ?1, decided_by = ?2,
                            send_after_ms = ?3 WHERE id = ?4",
                    params![now_ms, actor.to_string(), send_after, a.row.id],
                )?;
                super::on_decision(tx, now_ms, &actor, &a.row.id)?;
                audit::append(tx, now_ms, &actor, "approval.expire", &format!("approval/{}", a.row.id),
                    &json!({"outcome": "approved", "expired_ms": at, "rule": a.row.rule}))?;
                out.push((a.row.id, "approved".to_string()));
            } else {
                let reason = format!(
                    "nobody decided before the approval expired at {}; its default outcome is to reject",
                    crate::core::clock::rfc3339(at)
                );
                close(tx, now_ms, &actor, &a, "expired", &reason, "approval.expire")?;
                out.push((a.row.id, "expired".to_string()));
            }
        }
        Ok(out)
    })
}
