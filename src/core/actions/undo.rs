//! Undo of a completed effect: the connector must declare a compensation
//! (`connectors::undo::check_undoable`), then the ledger compensates it and marks the row
//! `compensated`, audited with the operator as the actor.

use crate::core::audit::Actor;
use crate::core::clock::Clock;
use crate::core::connectors;
use crate::core::effects::Connector;
use crate::core::effects::ledger::{self, LedgerError};
use crate::core::error::{Error, Result};
use crate::core::store::Store;
use crate::protocol::Undone;

/// The full ledger key for `id`, which may be a unique prefix of at least 8 characters.
pub fn resolve_key(conn: &rusqlite::Connection, id: &str) -> Result<String> {
    let id = id.trim();
    if id.len() < 8 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::invalid(
            "effect id",
            format!("{id:?}: give the effect's key (at least 8 hex characters)"),
        ));
    }
    let mut stmt = conn.prepare("SELECT key FROM effects WHERE key LIKE ?1 || '%' LIMIT 2")?;
    let keys: Vec<String> = stmt
        .query_map([id.to_ascii_lowercase()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    match keys.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::NotFound {
            kind: "effect".into(),
            id: id.into(),
        }),
        _ => Err(Error::invalid(
            "effect id",
            format!("{id} matches several effects; give more of the key"),
        )),
    }
}

/// Undoes effect `id` through the connector that performed it.
pub fn undo_effect(
    store: &mut Store,
    clock: &dyn Clock,
    connectors: &[Box<dyn Connector>],
    actor: &Actor,
    id: &str,
) -> Result<Undone> {
    let key = resolve_key(store.conn(), id)?;
    let row = ledger::get(store.conn(), &key)?.ok_or_else(|| Error::NotFound {
        kind: "effect".into(),
        id: key.clone(),
    })?;
    let connector = connectors::for_action(connectors, &row.action).ok_or_else(|| {
        Error::invalid(
            "undo",
            format!(
                "no configured connector declares {}; it cannot be undone from here",
                row.action
            ),
        )
    })?;
    let spec = connectors::undo::check_undoable(connector, &row.action)?;
    let undo = ledger::compensate(store, clock, actor, connector, &key).map_err(|e| match e {
        LedgerError::Store(e) => e,
        other => Error::failed(format!("undo of {} failed", row.action), other),
    })?;
    Ok(Undone {
        key,
        action: row.action,
        compensation: spec.compensation,
        result: undo,
    })
}
