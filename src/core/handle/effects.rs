//! The handle's effects entry points: undo of a completed external action (always on
//! behalf of the operator) and the ledger's list.

use crate::core::actions::undo;
use crate::core::audit::Actor;
use crate::core::connectors;
use crate::core::effects::ledger;
use crate::core::error::{Error, Result};
use crate::protocol::{Answer, Query};

use super::CoreContext;

/// `Op::UndoEffect`.
pub fn undo(ctx: &mut CoreContext, id: &str) -> Result<Answer> {
    let registry = connectors::registry(&ctx.workspace)?;
    let out = undo::undo_effect(
        &mut ctx.store,
        ctx.clock.as_ref(),
        &registry,
        &Actor::Operator,
        id,
    )?;
    ctx.notify(&format!("effect/{}", out.key), "undo");
    ctx.notify("audit", "undo");
    Ok(Answer::Undone(out))
}

pub fn query(ctx: &CoreContext, query: Query) -> Result<Answer> {
    match query {
        Query::Effects { state, limit } => Ok(Answer::Effects(ledger::list(
            ctx.store.conn(),
            state.as_deref(),
            limit,
        )?)),
        other => Err(Error::Other(format!("not an effects query: {other:?}"))),
    }
}
