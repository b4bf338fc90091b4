//! Routes each `Op` to the module that handles it. Handlers live with their module; this
//! file only maps ops to them.

use serde_json::{Value, json};

use super::CoreContext;
use crate::core::error::{Error, Result};
use crate::core::{audit, objects};
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
        other => Err(not_available(&format!("{other:?}"))),
    }
}

/// Ops and queries whose module has not been wired to the handle yet.
fn not_available(what: &str) -> Error {
    let name = what.split([' ', '{', '(']).next().unwrap_or(what);
    Error::Other(format!("{name} is not available in this build yet"))
}
