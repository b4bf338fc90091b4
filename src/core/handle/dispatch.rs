//! Routes each `Op` to the module that handles it. Handlers live with their module; this
//! file only maps ops to them.

use serde_json::{Value, json};

use super::CoreContext;
use crate::core::audit;
use crate::core::error::Result;
use crate::protocol::{Op, Query};

pub fn dispatch(ctx: &mut CoreContext, op: Op) -> Result<Value> {
    match op {
        Op::Query { query } => answer(ctx, query),
        Op::PutObject { .. } => Err(crate::core::Error::Other(
            "objects are not wired to the handle yet".into(),
        )),
        Op::Shutdown => Ok(Value::Null),
    }
}

fn answer(ctx: &CoreContext, query: Query) -> Result<Value> {
    let conn = ctx.store.conn();
    match query {
        Query::AuditPage { before_seq, limit } => {
            let filter = audit::Filter {
                before_seq,
                ..audit::Filter::default()
            };
            let entries = audit::query(conn, &filter, limit, true)?;
            Ok(serde_json::to_value(entries).unwrap_or(Value::Null))
        }
        Query::AuditVerify => {
            let v = audit::verify(conn)?;
            Ok(json!(v))
        }
    }
}
