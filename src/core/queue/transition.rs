//! One audited state change of a task.

use rusqlite::{Transaction, params};
use serde_json::{Value, json};

use super::{Task, TaskState, state};
use crate::core::audit::{self, Actor};
use crate::core::canonical;
use crate::core::clock::Millis;
use crate::core::error::Result;

/// What else changes with the state. Unset fields keep their value; the lease is always
/// cleared unless the new state is `running`.
#[derive(Debug, Default, Clone)]
pub struct Change {
    /// Replaces `detail` (why it waits, the suggested fix of an escalation…).
    pub detail: Option<String>,
    pub output: Option<Value>,
    pub not_before_ms: Option<Millis>,
    /// Appended to the error history.
    pub error: Option<String>,
    /// Counts a failed attempt.
    pub count_attempt: bool,
    /// Gives the task a fresh set of attempts (operator retry).
    pub reset_attempts: bool,
    /// Starts a fresh run (new checkpoints) next time, e.g. after the input was edited.
    pub new_run: bool,
    pub input: Option<Value>,
    pub paused: Option<bool>,
    /// Extra fields for the audit payload.
    pub audit: Value,
}

/// Moves task `id` to `to` if the state machine allows it, and audits it as `action`.
/// Returns the task as it was before.
pub fn transition(
    tx: &Transaction<'_>,
    now: Millis,
    actor: &Actor,
    id: &str,
    to: TaskState,
    action: &str,
    change: Change,
) -> Result<Task> {
    let before = super::get(tx, id)?;
    state::check(id, before.state, to)?;
    let mut errors = before.errors.clone();
    if let Some(message) = &change.error {
        errors.push(json!({
            "attempt": before.attempts + i64::from(change.count_attempt),
            "at_ms": now,
            "error": message,
        }));
    }
    let running = to == TaskState::Running;
    tx.prepare_cached(
        "UPDATE tasks SET state = ?2, wait_for = ?3, updated_ms = ?4,
             detail = COALESCE(?5, detail),
             output = COALESCE(?6, output),
             not_before_ms = COALESCE(?7, not_before_ms),
             errors = ?8,
             attempts = CASE WHEN ?14 THEN 0 ELSE attempts + ?9 END,
             run_id = CASE WHEN ?10 THEN NULL ELSE run_id END,
             input = COALESCE(?11, input),
             paused = COALESCE(?12, paused),
             run_now = CASE WHEN ?2 = 'queued' THEN run_now ELSE 0 END,
             lease_owner = CASE WHEN ?13 THEN lease_owner ELSE NULL END,
             lease_expires_ms = CASE WHEN ?13 THEN lease_expires_ms ELSE NULL END
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        to.column(),
        to.wait_column(),
        now,
        change.detail,
        change.output.as_ref().map(canonical::to_string),
        change.not_before_ms,
        serde_json::to_string(&errors).unwrap_or_else(|_| "[]".into()),
        i64::from(change.count_attempt),
        change.new_run,
        change.input.as_ref().map(canonical::to_string),
        change.paused,
        running,
        change.reset_attempts,
    ])?;
    let mut payload = json!({
        "from": before.state.to_string(),
        "to": to.to_string(),
    });
    if let (Some(map), Value::Object(extra)) = (payload.as_object_mut(), change.audit) {
        map.extend(extra);
    }
    if let Some(map) = payload.as_object_mut() {
        if let Some(detail) = change.detail {
            map.insert("detail".into(), Value::String(detail));
        }
        if let Some(error) = change.error {
            map.insert("error".into(), Value::String(error));
        }
        if let Some(input) = change.input {
            map.insert("input".into(), input);
        }
    }
    audit::append(tx, now, actor, action, &format!("task/{id}"), &payload)?;
    Ok(before)
}
