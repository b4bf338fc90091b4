//! The effects ledger: each external action happens at most once.
//!
//! API (small on purpose; connectors implement [`Connector`], agents call [`perform`]):
//! - [`key`]: the idempotency key, sha256 over (task, step, canonical normalized args).
//! - [`perform`]: runs an action through the ledger. The row is committed in state
//!   `intended` *before* the connector is called, then becomes `done` (with the result) or
//!   `failed`. Called again with the same key it returns the stored result of a `done` row;
//!   an `intended` or `failed` row (a crash or an error between sending and recording) is
//!   resolved with [`Connector::lookup`]: applied → recorded as done; not applied → performed
//!   again with the *same* key; lookup impossible → [`LedgerError::Unresolvable`] (escalate).
//!   It is never blindly re-sent.
//! - [`compensate`]: undoes a `done` effect through the connector and marks it `compensated`.
//! - [`get`] / [`for_task`]: read the rows.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use super::connector::{Connector, ConnectorError};
use crate::core::audit::{self, Actor};
use crate::core::canonical;
use crate::core::clock::Clock;
use crate::core::error::Error;
use crate::core::store::Store;

pub use crate::protocol::EffectState;

impl EffectState {
    fn parse(s: &str) -> Self {
        match s {
            "done" => EffectState::Done,
            "failed" => EffectState::Failed,
            "compensated" => EffectState::Compensated,
            _ => EffectState::Intended,
        }
    }
}

/// One ledger row.
pub use crate::protocol::EffectRow as Effect;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// An earlier attempt may or may not have reached the target and the connector cannot
    /// tell: the operator must decide.
    #[error(
        "effect {key} may already have been applied and {connector} cannot confirm it: {message}"
    )]
    Unresolvable {
        key: String,
        connector: String,
        message: String,
    },
    #[error("effect {key} was compensated (undone); it is not performed again")]
    Compensated { key: String },
    #[error(transparent)]
    Store(#[from] Error),
}

/// The idempotency key of an action: sha256 over task, step and the canonical arguments
/// (object key order and whitespace do not change it).
#[must_use]
pub fn key(task: &str, step: &str, args: &Value) -> String {
    let body = json!([task, step, args]);
    canonical::sha256_hex(canonical::to_string(&body).as_bytes())
}

/// Identifies the action for the ledger.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub task: &'a str,
    pub step: &'a str,
    pub action: &'a str,
    pub args: &'a Value,
}

/// Performs `request` through `connector` at most once. See the module docs.
pub fn perform(
    store: &mut Store,
    clock: &dyn Clock,
    actor: &Actor,
    connector: &dyn Connector,
    request: Request<'_>,
) -> Result<Value, LedgerError> {
    let key = key(request.task, request.step, request.args);
    match get(store.conn(), &key)? {
        Some(row) if row.state == EffectState::Done => {
            return Ok(row.result.unwrap_or(Value::Null));
        }
        Some(row) if row.state == EffectState::Compensated => {
            return Err(LedgerError::Compensated { key });
        }
        Some(_) => {
            // Sent before, outcome unknown: ask the target, never re-send blindly.
            match connector.lookup(request.action, request.args, &key) {
                Ok(Some(result)) => {
                    record(
                        store,
                        clock,
                        actor,
                        &key,
                        EffectState::Done,
                        Some(&result),
                        None,
                        "effect.confirmed",
                    )?;
                    return Ok(result);
                }
                Ok(None) => {
                    record(
                        store,
                        clock,
                        actor,
                        &key,
                        EffectState::Intended,
                        None,
                        None,
                        "effect.resending",
                    )?;
                }
                Err(e) => {
                    let message = e.to_string();
                    return Err(match e {
                        ConnectorError::Transient { .. } => LedgerError::Connector(e),
                        ConnectorError::Permanent { .. } => LedgerError::Unresolvable {
                            key,
                            connector: connector.name().to_string(),
                            message,
                        },
                    });
                }
            }
        }
        None => intend(store, clock, actor, connector.name(), &key, request)?,
    }
    crate::core::failpoint::pause("effect.after_intent");
    match connector.perform(request.action, request.args, &key) {
        Ok(result) => {
            crate::core::failpoint::pause("effect.after_perform");
            record(
                store,
                clock,
                actor,
                &key,
                EffectState::Done,
                Some(&result),
                None,
                "effect.done",
            )?;
            Ok(result)
        }
        Err(e) => {
            record(
                store,
                clock,
                actor,
                &key,
                EffectState::Failed,
                None,
                Some(&e.to_string()),
                "effect.failed",
            )?;
            Err(LedgerError::Connector(e))
        }
    }
}

/// Undoes a `done` effect through its connector and marks it `compensated`.
pub fn compensate(
    store: &mut Store,
    clock: &dyn Clock,
    actor: &Actor,
    connector: &dyn Connector,
    key: &str,
) -> Result<Value, LedgerError> {
    let row = get(store.conn(), key)?.ok_or_else(|| Error::NotFound {
        kind: "effect".into(),
        id: key.to_string(),
    })?;
    if row.state != EffectState::Done {
        return Err(Error::invalid(
            "compensate",
            format!(
                "effect {key} is {}, only done effects can be undone",
                row.state.as_str()
            ),
        )
        .into());
    }
    let result = row.result.unwrap_or(Value::Null);
    let undo = connector.compensate(&row.action, &row.args, &result, key)?;
    record(
        store,
        clock,
        actor,
        key,
        EffectState::Compensated,
        Some(&undo),
        None,
        "effect.compensated",
    )?;
    Ok(undo)
}

fn intend(
    store: &mut Store,
    clock: &dyn Clock,
    actor: &Actor,
    connector: &str,
    key: &str,
    request: Request<'_>,
) -> Result<(), Error> {
    let now = clock.now_ms();
    store.write(|tx| {
        tx.execute(
            "INSERT INTO effects (key, task, step, connector, action, args, state, created_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'intended', ?7, ?7)",
            params![
                key,
                request.task,
                request.step,
                connector,
                request.action,
                canonical::to_string(request.args),
                now
            ],
        )?;
        audit::append(
            tx,
            now,
            actor,
            "effect.intended",
            &format!("effect/{key}"),
            &json!({"task": request.task, "step": request.step, "connector": connector,
                    "action": request.action, "args": request.args}),
        )?;
        Ok(())
    })
}

#[allow(clippy::too_many_arguments)] // one ledger row's columns plus who, when and the audit action
fn record(
    store: &mut Store,
    clock: &dyn Clock,
    actor: &Actor,
    key: &str,
    state: EffectState,
    result: Option<&Value>,
    error: Option<&str>,
    action: &str,
) -> Result<(), Error> {
    let now = clock.now_ms();
    store.write(|tx| {
        tx.execute(
            "UPDATE effects SET state = ?2, result = COALESCE(?3, result), error = ?4, updated_ms = ?5
             WHERE key = ?1",
            params![key, state.as_str(), result.map(canonical::to_string), error, now],
        )?;
        audit::append(
            tx,
            now,
            actor,
            action,
            &format!("effect/{key}"),
            &json!({"state": state.as_str(), "result": result, "error": error}),
        )?;
        Ok(())
    })
}

const COLUMNS: &str =
    "key, task, step, connector, action, args, state, result, error, created_ms, updated_ms";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Effect> {
    let args: String = row.get(5)?;
    let state: String = row.get(6)?;
    let result: Option<String> = row.get(7)?;
    Ok(Effect {
        key: row.get(0)?,
        task: row.get(1)?,
        step: row.get(2)?,
        connector: row.get(3)?,
        action: row.get(4)?,
        args: serde_json::from_str(&args).unwrap_or(Value::Null),
        state: EffectState::parse(&state),
        result: result.and_then(|r| serde_json::from_str(&r).ok()),
        error: row.get(8)?,
        created_ms: row.get(9)?,
        updated_ms: row.get(10)?,
    })
}

pub fn get(conn: &Connection, key: &str) -> Result<Option<Effect>, Error> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM effects WHERE key = ?1"),
            [key],
            from_row,
        )
        .optional()?)
}

/// Every effect of `task`, oldest first.
pub fn for_task(conn: &Connection, task: &str) -> Result<Vec<Effect>, Error> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM effects WHERE task = ?1 ORDER BY created_ms, key"
    ))?;
    let rows = stmt.query_map([task], from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The latest effects (most recently changed first), optionally only those in `state`.
pub fn list(conn: &Connection, state: Option<&str>, limit: usize) -> Result<Vec<Effect>, Error> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM effects WHERE ?1 IS NULL OR state = ?1
         ORDER BY updated_ms DESC, key LIMIT ?2"
    ))?;
    let rows = stmt.query_map(
        params![state, i64::try_from(limit).unwrap_or(i64::MAX)],
        from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Completed effects of the connector named `connector` (for reconciliation).
pub fn done_for_connector(conn: &Connection, connector: &str) -> Result<Vec<Effect>, Error> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM effects WHERE connector = ?1 AND state = 'done'
         ORDER BY created_ms, key"
    ))?;
    let rows = stmt.query_map([connector], from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
