//! Undo: runs a completed effect's compensation through its connector and audits it.
//! The effects ledger owns the effect's state; it passes `mark_compensated`, which runs in
//! the same transaction as the audit entry, so the state change and its record agree.

use rusqlite::Transaction;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::core::audit::{self, Actor};
use crate::core::clock::Millis;
use crate::core::effects::{ActionSpec, Connector, ConnectorError, Reversibility};
use crate::core::error::{Error, Result};
use crate::core::store::Store;

/// What undo needs to know about a completed effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectRef {
    /// The ledger's id for the effect.
    pub id: String,
    pub action: String,
    pub args: Value,
    /// What the connector answered when it performed the action.
    pub result: Value,
    pub key: String,
}

/// The action's declaration, if it can be undone; a clear refusal otherwise. Call it before
/// any compensation (the ledger's included), so an irreversible action is never "undone".
pub fn check_undoable(connector: &dyn Connector, action: &str) -> Result<ActionSpec> {
    let spec = connector
        .actions()
        .into_iter()
        .find(|a| a.name == action)
        .ok_or_else(|| {
            Error::invalid(
                "undo",
                format!("{} does not declare {action}", connector.name()),
            )
        })?;
    if spec.reversibility == Reversibility::Irreversible || spec.compensation.is_none() {
        return Err(Error::invalid(
            "undo",
            format!("{action} is irreversible and declares no compensation; it cannot be undone"),
        ));
    }
    Ok(spec)
}

/// Compensates `effect`. On success, `mark_compensated` and the audit entry commit together;
/// on failure the failure is audited and returned (nothing is marked).
pub fn undo(
    store: &mut Store,
    now_ms: Millis,
    actor: &Actor,
    connector: &dyn Connector,
    effect: &EffectRef,
    mark_compensated: impl FnOnce(&Transaction<'_>, &Value) -> Result<()>,
) -> Result<Value> {
    let spec = check_undoable(connector, &effect.action)?;
    let subject = format!("effect/{}", effect.id);
    match connector.compensate(&effect.action, &effect.args, &effect.result, &effect.key) {
        Ok(out) => store.write(|tx| {
            mark_compensated(tx, &out)?;
            audit::append(
                tx,
                now_ms,
                actor,
                "effect.undo",
                &subject,
                &json!({
                    "action": effect.action, "compensation": spec.compensation,
                    "key": effect.key, "result": out,
                }),
            )?;
            Ok(out)
        }),
        Err(err) => {
            let transient = matches!(err, ConnectorError::Transient { .. });
            store.write(|tx| {
                audit::append(
                    tx,
                    now_ms,
                    actor,
                    "effect.undo_failed",
                    &subject,
                    &json!({
                        "action": effect.action, "key": effect.key,
                        "error": err.to_string(), "retryable": transient,
                    }),
                )
            })?;
            Err(Error::failed(
                format!("undo of {} failed", effect.action),
                err,
            ))
        }
    }
}
