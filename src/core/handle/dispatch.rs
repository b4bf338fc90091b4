//! Routes each `Op` to the module that handles it. Handlers live with their module; this
//! file only maps ops to them.

use serde_json::{Value, json};

use super::CoreContext;
use crate::core::error::{Error, Result};
use crate::core::{agents, audit};
use crate::protocol::{Op, Query};

pub fn dispatch(ctx: &mut CoreContext, op: Op) -> Result<Value> {
    match op {
        Op::Query { query } => answer(ctx, query),
        Op::Shutdown => Ok(Value::Null),
        op @ (Op::Approve { .. }
        | Op::Reject { .. }
        | Op::CancelApproval { .. }
        | Op::RevokeAllowRule { .. }) => crate::core::approvals::ops::dispatch(ctx, op),
        op @ (Op::SubmitTask { .. }
        | Op::RetryTask { .. }
        | Op::CancelTask { .. }
        | Op::PauseTask { .. }
        | Op::ResumeTask { .. }
        | Op::PauseQueue
        | Op::ResumeQueue
        | Op::RunNow { .. }) => crate::core::queue::api::handle_op(ctx, &op),
        Op::ReplayRun { id } => {
            let report = agents::service::replay_blocking(&ctx.workspace, ctx.clock.clone(), &id)?;
            ctx.notify(&format!("run/{}", report.replay), "replayed");
            Ok(json!(report))
        }
        other => Err(not_available(&format!("{other:?}"))),
    }
}

fn answer(ctx: &CoreContext, query: Query) -> Result<Value> {
    let conn = ctx.store.conn();
    match query {
        Query::AuditPage { filter, limit } => {
            let entries = audit::query(conn, &filter, limit, true)?;
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
        Query::MemoryUsed { run } => Ok(json!(agents::query::memory_used(conn, &run)?)),
        Query::Metrics => Ok(json!(crate::core::metrics::for_workspace(
            &ctx.workspace,
            conn,
            ctx.clock.now_ms()
        )?)),
        Query::Health => Ok(json!(crate::core::health::report(&ctx.workspace, conn)?)),
        other => Err(not_available(&format!("{other:?}"))),
    }
}

/// Ops and queries whose module has not been wired to the handle yet.
fn not_available(what: &str) -> Error {
    let name = what.split([' ', '{', '(']).next().unwrap_or(what);
    Error::Other(format!("{name} is not available in this build yet"))
}
