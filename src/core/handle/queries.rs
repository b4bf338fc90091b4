//! The handle's other queries: the audit log, runs and their memory, the blackboard,
//! metrics and health. Queries owned by a domain with ops of its own are answered next to
//! those ops (approvals, queue, objects, effects).

use crate::core::error::{Error, Result};
use crate::core::{agents, audit, blackboard, health, memory, metrics};
use crate::protocol::{Answer, Query};

use super::CoreContext;

pub fn answer(ctx: &CoreContext, query: Query) -> Result<Answer> {
    let conn = ctx.store.conn();
    Ok(match query {
        Query::AuditPage {
            filter,
            limit,
            oldest_first,
        } => Answer::AuditPage(audit::query(conn, &filter, limit, !oldest_first)?),
        Query::AuditVerify => Answer::AuditVerify(audit::verify(conn)?),
        Query::Blackboard {
            topic,
            offset,
            limit,
        } => Answer::Blackboard(blackboard::list(conn, topic.as_deref(), offset, limit)?),
        Query::Runs {
            task,
            offset,
            limit,
        } => Answer::Runs(agents::query::runs(conn, task.as_deref(), offset, limit)?),
        Query::RunDetail { id } => {
            Answer::RunDetail(Box::new(agents::query::run_detail(conn, &id)?))
        }
        Query::MemoryUsed { run } => {
            // Retrievals recorded by the memory layer; runs from before it was wired recorded
            // their (keyword) context in the agents tables.
            let used = memory::retrieval::memory_used(conn, &run)?;
            if used.is_empty() {
                Answer::MemoryUsed(agents::query::memory_used(conn, &run)?)
            } else {
                Answer::MemoryUsed(used)
            }
        }
        Query::Metrics => Answer::Metrics(metrics::for_workspace(
            &ctx.workspace,
            conn,
            ctx.clock.now_ms(),
        )?),
        Query::Health => Answer::Health(Box::new(health::report(&ctx.workspace, conn)?)),
        other => return Err(Error::Other(format!("not a general query: {other:?}"))),
    })
}
