//! The handle's approvals entry points: decisions from the console or the CLI, always on
//! behalf of the operator (agents never reach these; they go through the policy gate).

use crate::core::approvals::{self, allow_rules};
use crate::core::audit::Actor;
use crate::core::error::{Error, Result};
use crate::core::wiring::approval_edit;
use crate::protocol::{Answer, Op, Page, Query};

use super::CoreContext;

pub fn op(ctx: &mut CoreContext, op: Op) -> Result<Answer> {
    let now = ctx.clock.now_ms();
    let operator = Actor::Operator;
    let swept = approvals::sweep_expired(&mut ctx.store, now)?;
    for (id, status) in &swept {
        ctx.notify(&format!("approval/{id}"), status);
    }
    match op {
        Op::SweepApprovals => Ok(Answer::Swept(swept)),
        Op::Approve {
            id,
            edited_body,
            always_allow,
        } => {
            // The operator's edit becomes a new version of the card's object.
            let kinds = ctx.kinds()?;
            let done = approval_edit::approve(
                &kinds,
                &mut ctx.store,
                now,
                &id,
                edited_body.as_ref(),
                always_allow,
            )?;
            decided(ctx, &id, done.approval.row.task.as_deref(), "approve");
            Ok(Answer::Approved(Box::new(done)))
        }
        Op::BatchApprove { ids } => {
            let items = approvals::batch_approve(&mut ctx.store, now, &operator, &ids)?;
            let approved: Vec<&str> = items
                .iter()
                .filter(|i| i.approved)
                .map(|i| i.id.as_str())
                .collect();
            // The tasks to refresh, read after the one transaction committed.
            let conn = ctx.store.conn();
            let tasks: Vec<Option<String>> = approved
                .iter()
                .map(|id| approvals::get(conn, id).map(|a| a.row.task))
                .collect::<Result<_>>()?;
            for (id, task) in approved.iter().zip(&tasks) {
                decided(ctx, id, task.as_deref(), "approve");
            }
            Ok(Answer::BatchApproved(items))
        }
        Op::Reject { id, reason } => {
            let done = approvals::reject(&mut ctx.store, now, &operator, &id, &reason)?;
            decided(ctx, &id, done.row.task.as_deref(), "reject");
            Ok(Answer::Decided(Box::new(done)))
        }
        Op::CancelApproval { id, reason } => {
            let done = approvals::cancel(&mut ctx.store, now, &operator, &id, &reason)?;
            decided(ctx, &id, done.row.task.as_deref(), "cancel");
            Ok(Answer::Decided(Box::new(done)))
        }
        Op::RevokeAllowRule { id } => {
            allow_rules::revoke(&mut ctx.store, now, &operator, &id)?;
            ctx.notify(&format!("policy_rule/{id}"), "revoke");
            ctx.notify("audit", "revoke");
            Ok(Answer::Done)
        }
        other => Err(Error::Other(format!("not an approvals op: {other:?}"))),
    }
}

/// A decision changed the approval, wrote audit entries and moved its waiting task (same
/// transaction): let views refresh each.
fn decided(ctx: &CoreContext, id: &str, task: Option<&str>, action: &str) {
    ctx.notify(&format!("approval/{id}"), action);
    ctx.notify("audit", action);
    if let Some(task) = task {
        ctx.notify(&format!("task/{task}"), action);
    }
}

pub fn query(ctx: &CoreContext, query: Query) -> Result<Answer> {
    let conn = ctx.store.conn();
    match query {
        Query::Approvals {
            pending_only,
            offset,
            limit,
        } => {
            let page: Page<_> = approvals::list(conn, pending_only, offset, limit)?;
            Ok(Answer::Approvals(page))
        }
        Query::ApprovalDetail { id } => {
            Ok(Answer::ApprovalDetail(Box::new(approvals::get(conn, &id)?)))
        }
        Query::AllowRules { include_revoked } => Ok(Answer::AllowRules(allow_rules::list(
            conn,
            include_revoked,
        )?)),
        other => Err(Error::Other(format!("not an approvals query: {other:?}"))),
    }
}
