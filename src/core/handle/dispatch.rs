//! Routes each `Op` to its handler under `core::handle`; this file only maps ops to them.

use super::{CoreContext, approvals, effects, mcp, objects, queries, queue};
use crate::core::agents;
use crate::core::error::Result;
use crate::protocol::{Answer, Op, Query};

pub fn dispatch(ctx: &mut CoreContext, op: Op) -> Result<Answer> {
    match op {
        Op::Query { query } => answer(ctx, query),
        op @ (Op::PutObject { .. }
        | Op::RevertObject { .. }
        | Op::ArchiveObject { .. }
        | Op::UnarchiveObject { .. }) => objects::op(ctx, op),
        op @ (Op::Approve { .. }
        | Op::BatchApprove { .. }
        | Op::SweepApprovals
        | Op::Reject { .. }
        | Op::CancelApproval { .. }
        | Op::RevokeAllowRule { .. }) => approvals::op(ctx, op),
        Op::UndoEffect { id } => effects::undo(ctx, &id),
        op @ (Op::SubmitTask { .. }
        | Op::RetryTask { .. }
        | Op::CancelTask { .. }
        | Op::PauseTask { .. }
        | Op::ResumeTask { .. }
        | Op::PauseQueue
        | Op::ResumeQueue
        | Op::RunNow { .. }
        | Op::DecideTriage { .. }) => queue::op(ctx, op),
        Op::ReplayRun { id } => {
            let report = agents::service::replay_blocking(&ctx.workspace, ctx.clock.clone(), &id)?;
            ctx.notify(&format!("run/{}", report.replay), "replayed");
            Ok(Answer::Replayed(report))
        }
        Op::CallMcpTool {
            server,
            tool,
            arguments,
            approve,
        } => mcp::call(ctx, server, tool, arguments, approve),
        Op::Shutdown => Ok(Answer::Done),
    }
}

fn answer(ctx: &CoreContext, query: Query) -> Result<Answer> {
    match query {
        q @ (Query::Approvals { .. } | Query::ApprovalDetail { .. } | Query::AllowRules { .. }) => {
            approvals::query(ctx, q)
        }
        q @ Query::Tasks { .. } => queue::query(ctx, q),
        q @ (Query::Objects { .. } | Query::ObjectHistory { .. } | Query::ObjectDiff { .. }) => {
            objects::query(ctx, q)
        }
        q @ Query::Effects { .. } => effects::query(ctx, q),
        q => queries::answer(ctx, q),
    }
}
