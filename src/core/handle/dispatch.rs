//! Routes each `Op` to its handler under `core::handle`; this file only maps ops to them.

use super::{
    CoreContext, approvals, client, effects, mcp, memory, memory_ops, objects, outcomes, queries,
    queue,
};
use crate::core::agents;
use crate::core::audit::Actor;
use crate::core::error::Result;
use crate::protocol::{Answer, Op, Query};

/// An op from the console, the CLI or a test: the operator's.
pub fn dispatch(ctx: &mut CoreContext, op: Op) -> Result<Answer> {
    as_actor(ctx, &Actor::Operator, op)
}

/// Runs `op` as `actor` (the operator, or an MCP client whose request [`client`] let
/// through: object writes and task submissions are stamped with the actor).
pub fn as_actor(ctx: &mut CoreContext, actor: &Actor, op: Op) -> Result<Answer> {
    match op {
        Op::Query { query } => answer(ctx, query),
        op @ (Op::PutObject { .. }
        | Op::RevertObject { .. }
        | Op::ArchiveObject { .. }
        | Op::UnarchiveObject { .. }) => objects::op(ctx, actor, op),
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
        | Op::DecideTriage { .. }) => queue::op(ctx, actor, op),
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
        Op::AsClient {
            client: name,
            tool,
            request,
        } => client::op(ctx, &name, &tool, request),
        op @ (Op::AddMemory { .. }
        | Op::ImportMemory { .. }
        | Op::ForgetMemory { .. }
        | Op::SetMemoryTier { .. }
        | Op::SweepMemory
        | Op::ReindexMemory
        | Op::RepairMemory
        | Op::RetrieveForRun { .. }
        | Op::TriageText { .. }
        | Op::LabelTriage { .. }) => memory_ops::op(ctx, op),
        Op::ImportAnalytics { csv, source } => outcomes::import(ctx, &csv, &source),
        Op::RankIdeas { goals } => outcomes::rank(ctx, &goals),
        Op::Shutdown => Ok(Answer::Done),
    }
}

pub fn answer(ctx: &mut CoreContext, query: Query) -> Result<Answer> {
    match query {
        Query::MemorySearch { text, kinds, k } => memory::search(ctx, &text, kinds, k),
        q @ (Query::Approvals { .. } | Query::ApprovalDetail { .. } | Query::AllowRules { .. }) => {
            approvals::query(ctx, q)
        }
        q @ (Query::Tasks { .. } | Query::Task { .. }) => queue::query(ctx, q),
        q @ (Query::Objects { .. } | Query::ObjectHistory { .. } | Query::ObjectDiff { .. }) => {
            objects::query(ctx, q)
        }
        q @ Query::Effects { .. } => effects::query(ctx, q),
        q => queries::answer(ctx, q),
    }
}
