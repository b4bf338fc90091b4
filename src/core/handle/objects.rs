//! The handle's object ops and queries: the operator writes through the console or the
//! CLI, an MCP client through `keel mcp serve`; the caller names the actor. Kinds come from
//! the context's cache.

use crate::core::audit::Actor;
use crate::core::error::{Error, Result};
use crate::core::objects::{self, ListFilter, Stamp, Written};
use crate::protocol::{Answer, Op, Query};

use super::CoreContext;

pub fn op(ctx: &mut CoreContext, actor: &Actor, op: Op) -> Result<Answer> {
    let stamp = Stamp::new(actor.clone(), ctx.clock.now_ms());
    let (written, action) = match op {
        Op::PutObject {
            kind,
            id,
            based_on,
            body,
        } => {
            let kinds = ctx.kinds()?;
            let w = ctx
                .store
                .write(|tx| objects::put(tx, &kinds, &stamp, &kind, &id, based_on, &body))?;
            (w, "object.put")
        }
        Op::RevertObject {
            kind,
            id,
            to_version,
            based_on,
        } => {
            let kinds = ctx.kinds()?;
            let w = ctx.store.write(|tx| {
                objects::revert(tx, &kinds, &stamp, &kind, &id, to_version, based_on)
            })?;
            (w, "object.revert")
        }
        Op::ArchiveObject { kind, id, based_on } => {
            let w = ctx
                .store
                .write(|tx| objects::archive(tx, &stamp, &kind, &id, based_on))?;
            (w, "object.archive")
        }
        Op::UnarchiveObject { kind, id, based_on } => {
            let w = ctx
                .store
                .write(|tx| objects::unarchive(tx, &stamp, &kind, &id, based_on))?;
            (w, "object.unarchive")
        }
        other => return Err(Error::Other(format!("not an objects op: {other:?}"))),
    };
    changed(ctx, &written, action);
    Ok(Answer::Written(written))
}

fn changed(ctx: &CoreContext, w: &Written, action: &str) {
    if w.changed {
        ctx.notify(&objects::subject(&w.kind, &w.id), action);
    }
}

pub fn query(ctx: &CoreContext, query: Query) -> Result<Answer> {
    let conn = ctx.store.conn();
    match query {
        Query::Objects {
            kind,
            text,
            include_archived,
            offset,
            limit,
        } => {
            let filter = ListFilter {
                kind,
                text,
                include_archived,
                offset,
                limit,
            };
            Ok(Answer::Objects(objects::list(conn, &filter)?))
        }
        Query::ObjectHistory { kind, id } => {
            Ok(Answer::ObjectHistory(objects::history(conn, &kind, &id)?))
        }
        Query::ObjectDiff { kind, id, from, to } => Ok(Answer::ObjectDiff(objects::diff(
            conn, &kind, &id, from, to,
        )?)),
        other => Err(Error::Other(format!("not an objects query: {other:?}"))),
    }
}
