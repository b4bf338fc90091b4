//! The handle's entry points for approvals: ops from the console or CLI, always on behalf
//! of the operator (agents never reach these; they go through [`super::gate`]).

use rusqlite::Connection;
use serde_json::{Value, json};

use crate::core::audit::Actor;
use crate::core::error::{Error, Result};
use crate::core::handle::CoreContext;
use crate::protocol::{Op, Query};

pub fn dispatch(ctx: &mut CoreContext, op: Op) -> Result<Value> {
    let now = ctx.clock.now_ms();
    let operator = Actor::Operator;
    super::sweep_expired(&mut ctx.store, now)?;
    let (subject, action, answer) = match op {
        Op::Approve {
            id,
            edited_body,
            always_allow,
        } => {
            // The operator's edit becomes a new version of the card's object.
            let done = crate::core::wiring::approval_edit::approve(
                &ctx.workspace,
                &mut ctx.store,
                now,
                &id,
                edited_body.as_ref(),
                always_allow,
            )?;
            (format!("approval/{id}"), "approve", json!(done))
        }
        Op::Reject { id, reason } => {
            let done = super::reject(&mut ctx.store, now, &operator, &id, &reason)?;
            (format!("approval/{id}"), "reject", json!(done))
        }
        Op::CancelApproval { id, reason } => {
            let done = super::cancel(&mut ctx.store, now, &operator, &id, &reason)?;
            (format!("approval/{id}"), "cancel", json!(done))
        }
        Op::RevokeAllowRule { id } => {
            super::allow_rules::revoke(&mut ctx.store, now, &operator, &id)?;
            (format!("policy_rule/{id}"), "revoke", Value::Null)
        }
        other => return Err(Error::Other(format!("not an approvals op: {other:?}"))),
    };
    ctx.notify(&subject, action);
    ctx.notify("audit", action);
    // The decision also moved the waiting task (same transaction): let views refresh it.
    if let Some(id) = subject.strip_prefix("approval/")
        && let Some(task) = super::get(ctx.store.conn(), id)?.row.task
    {
        ctx.notify(&format!("task/{task}"), action);
    }
    Ok(answer)
}

pub fn answer(conn: &Connection, query: Query) -> Result<Value> {
    match query {
        Query::Approvals {
            pending_only,
            offset,
            limit,
        } => Ok(json!(super::list(conn, pending_only, offset, limit)?)),
        Query::ApprovalDetail { id } => Ok(json!(super::get(conn, &id)?)),
        Query::AllowRules { include_revoked } => {
            Ok(json!(super::allow_rules::list(conn, include_revoked)?))
        }
        other => Err(Error::Other(format!("not an approvals query: {other:?}"))),
    }
}
