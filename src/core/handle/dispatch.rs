//! Routes each `Op` to the module that handles it. Handlers live with their module; this
//! file only maps ops to them.

use serde_json::{Value, json};

use super::CoreContext;
use crate::core::error::Result;
use crate::core::{agents, audit, objects};
use crate::protocol::{Op, Query};

pub fn dispatch(ctx: &mut CoreContext, op: Op) -> Result<Value> {
    match op {
        Op::Query { query } => answer(ctx, query),
        Op::PutObject {
            kind,
            id,
            based_on,
            body,
        } => objects::handle::put(ctx, &kind, &id, based_on, &body),
        Op::RevertObject {
            kind,
            id,
            to_version,
            based_on,
        } => objects::handle::revert(ctx, &kind, &id, to_version, based_on),
        Op::ArchiveObject { kind, id, based_on } => {
            objects::handle::archive(ctx, &kind, &id, based_on)
        }
        Op::UnarchiveObject { kind, id, based_on } => {
            objects::handle::unarchive(ctx, &kind, &id, based_on)
        }
        Op::Shutdown => Ok(Value::Null),
        op @ (Op::Approve { .. }
        | Op::Reject { .. }
        | Op::CancelApproval { .. }
        | Op::RevokeAllowRule { .. }) => crate::core::approvals::ops::dispatch(ctx, op),
        Op::UndoEffect { id } => crate::core::actions::undo::dispatch(ctx, &id),
        op @ (Op::SubmitTask { .. }
        | Op::RetryTask { .. }
        | Op::CancelTask { .. }
        | Op::PauseTask { .. }
        | Op::ResumeTask { .. }
        | Op::PauseQueue
        | Op::ResumeQueue
        | Op::RunNow { .. }
        | Op::DecideTriage { .. }) => crate::core::queue::api::handle_op(ctx, &op),
        Op::ReplayRun { id } => {
            let report = agents::service::replay_blocking(&ctx.workspace, ctx.clock.clone(), &id)?;
            ctx.notify(&format!("run/{}", report.replay), "replayed");
            Ok(json!(report))
        }
    }
}

fn answer(ctx: &CoreContext, query: Query) -> Result<Value> {
    let conn = ctx.store.conn();
    match query {
        Query::AuditPage {
            filter,
            limit,
            oldest_first,
        } => {
            let entries = audit::query(conn, &filter, limit, !oldest_first)?;
            Ok(json!(entries))
        }
        Query::AuditVerify => Ok(json!(audit::verify(conn)?)),
        q @ (Query::Approvals { .. } | Query::ApprovalDetail { .. } | Query::AllowRules { .. }) => {
            crate::core::approvals::ops::answer(conn, q)
        }
        Query::Tasks {
            state,
            text,
            offset,
            limit,
        } => Ok(json!(crate::core::queue::query::list(
            conn,
            state.as_deref(),
            text.as_deref(),
            offset,
            limit
        )?)),
        Query::Effects { state, limit } => Ok(json!(crate::core::effects::ledger::list(
            conn,
            state.as_deref(),
            limit
        )?)),
        Query::Blackboard {
            topic,
            offset,
            limit,
        } => Ok(json!(crate::core::blackboard::list(
            conn,
            topic.as_deref(),
            offset,
            limit
        )?)),
        Query::Runs {
            task,
            offset,
            limit,
        } => Ok(json!(agents::query::runs(
            conn,
            task.as_deref(),
            offset,
            limit
        )?)),
        Query::RunDetail { id } => Ok(json!(agents::query::run_detail(conn, &id)?)),
        Query::MemoryUsed { run } => {
            // Retrievals recorded by the memory layer; runs from before it was wired recorded
            // their (keyword) context in the agents tables.
            let used = crate::core::memory::retrieval::memory_used(conn, &run)?;
            if used.is_empty() {
                Ok(json!(agents::query::memory_used(conn, &run)?))
            } else {
                Ok(json!(used))
            }
        }
        Query::Objects {
            kind,
            text,
            include_archived,
            offset,
            limit,
        } => objects::handle::list(
            ctx,
            &objects::ListFilter {
                kind,
                text,
                include_archived,
                offset,
                limit,
            },
        ),
        Query::ObjectHistory { kind, id } => objects::handle::history(ctx, &kind, &id),
        Query::ObjectDiff { kind, id, from, to } => {
            objects::handle::diff(ctx, &kind, &id, from, to)
        }
        Query::Metrics => Ok(json!(crate::core::metrics::for_workspace(
            &ctx.workspace,
            conn,
            ctx.clock.now_ms()
        )?)),
        Query::Health => Ok(json!(crate::core::health::report(&ctx.workspace, conn)?)),
    }
}
