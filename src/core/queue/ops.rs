//! Operator actions on tasks and on the queue. Each runs in the caller's transaction and is
//! audited there; each returns the ids of the tasks it changed so the caller can notify.

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::{Value, json};

use super::{Change, RoleCatalog, TaskState, transition};
use crate::core::audit::{self, Actor};
use crate::core::clock::Millis;
use crate::core::error::{Error, Result};

const QUEUE_PAUSED: &str = "queue.paused";

/// Cancels a task that has not finished, and every unfinished task below it.
pub fn cancel(tx: &Transaction<'_>, now: Millis, actor: &Actor, id: &str) -> Result<Vec<String>> {
    let task = super::get(tx, id)?;
    if task.state.is_terminal() && !matches!(task.state, TaskState::Failed | TaskState::Escalated) {
        return Err(Error::invalid(
            "cancel",
            format!("task {id} is already {}", task.state),
        ));
    }
    let mut changed = vec![id.to_string()];
    transition(
        tx,
        now,
        actor,
        id,
        TaskState::Cancelled,
        "task.cancelled",
        Change::default(),
    )?;
    let children: Vec<String> = {
        let mut stmt = tx.prepare(
            "SELECT id FROM tasks WHERE parent = ?1
               AND state IN ('queued', 'running', 'waiting', 'failed', 'escalated')",
        )?;
        stmt.query_map([id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    for child in children {
        changed.extend(cancel(tx, now, actor, &child)?);
    }
    Ok(changed)
}

/// Puts a failed or escalated task back on the queue with a fresh set of attempts,
/// optionally with an edited input (checked against the role's schema; the run restarts).
pub fn retry(
    tx: &Transaction<'_>,
    now: Millis,
    actor: &Actor,
    catalog: &RoleCatalog,
    id: &str,
    new_input: Option<Value>,
) -> Result<Vec<String>> {
    let task = super::get(tx, id)?;
    if !matches!(task.state, TaskState::Failed | TaskState::Escalated) {
        return Err(Error::invalid(
            "retry",
            format!(
                "task {id} is {}; only failed or escalated tasks can be retried",
                task.state
            ),
        ));
    }
    if let Some(input) = &new_input {
        catalog.check_input(&task.role, input)?;
    }
    let edited = new_input.is_some();
    transition(
        tx,
        now,
        actor,
        id,
        TaskState::Queued,
        if edited {
            "task.retried_with_edit"
        } else {
            "task.retried"
        },
        Change {
            detail: Some(String::new()),
            not_before_ms: Some(now),
            reset_attempts: true,
            new_run: edited,
            input: new_input,
            ..Change::default()
        },
    )?;
    Ok(vec![id.to_string()])
}

/// Pauses or resumes one task. A paused task is not claimed; a running one is released at
/// its next step.
pub fn set_task_paused(
    tx: &Transaction<'_>,
    now: Millis,
    actor: &Actor,
    id: &str,
    paused: bool,
) -> Result<Vec<String>> {
    let task = super::get(tx, id)?;
    if task.state.is_terminal() {
        return Err(Error::invalid(
            "pause",
            format!("task {id} is already {}", task.state),
        ));
    }
    tx.execute(
        "UPDATE tasks SET paused = ?2, updated_ms = ?3 WHERE id = ?1",
        params![id, paused, now],
    )?;
    let action = if paused {
        "task.paused"
    } else {
        "task.resumed"
    };
    audit::append(tx, now, actor, action, &format!("task/{id}"), &json!({}))?;
    Ok(vec![id.to_string()])
}

/// Lets a background task run now, outside the off-peak window.
pub fn run_now(tx: &Transaction<'_>, now: Millis, actor: &Actor, id: &str) -> Result<Vec<String>> {
    let task = super::get(tx, id)?;
    if task.state != TaskState::Queued {
        return Err(Error::invalid(
            "run now",
            format!("task {id} is {}, not queued", task.state),
        ));
    }
    tx.execute(
        "UPDATE tasks SET run_now = 1, not_before_ms = MIN(not_before_ms, ?2), updated_ms = ?2
         WHERE id = ?1",
        params![id, now],
    )?;
    audit::append(
        tx,
        now,
        actor,
        "task.run_now",
        &format!("task/{id}"),
        &json!({}),
    )?;
    Ok(vec![id.to_string()])
}

/// Pauses or resumes the whole queue (no task is claimed while paused).
pub fn set_queue_paused(
    tx: &Transaction<'_>,
    now: Millis,
    actor: &Actor,
    paused: bool,
) -> Result<()> {
    tx.execute(
        "INSERT INTO orchestrator_state (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![QUEUE_PAUSED, if paused { "1" } else { "0" }],
    )?;
    let action = if paused {
        "queue.paused"
    } else {
        "queue.resumed"
    };
    audit::append(tx, now, actor, action, "queue", &json!({}))?;
    Ok(())
}

pub fn queue_paused(conn: &rusqlite::Connection) -> Result<bool> {
    let value: Option<String> = conn
        .query_row(
            "SELECT value FROM orchestrator_state WHERE key = ?1",
            [QUEUE_PAUSED],
            |r| r.get(0),
        )
        .optional()?;
    Ok(value.as_deref() == Some("1"))
}

/// Resolves a task waiting for an approval. Approved: a task that has not run yet (a
/// workflow approval stage) succeeds with `output`; a run that paused for the approval goes
/// back to the queue and resumes after its last checkpoint. Refused: escalated with the
/// reason (a string `output`). For the approvals module.
pub fn resolve_approval(
    tx: &Transaction<'_>,
    now: Millis,
    actor: &Actor,
    id: &str,
    approved: bool,
    output: Value,
) -> Result<Vec<String>> {
    let task = super::get(tx, id)?;
    if task.state != TaskState::Waiting(super::WaitFor::Approval) {
        return Err(Error::invalid(
            "approval",
            format!("task {id} is {}", task.state),
        ));
    }
    if approved && task.run_id.is_some() {
        transition(
            tx,
            now,
            actor,
            id,
            TaskState::Queued,
            "task.approved",
            Change {
                detail: Some(String::new()),
                audit: serde_json::json!({"decision": output}),
                ..Change::default()
            },
        )?;
    } else if approved {
        transition(
            tx,
            now,
            actor,
            id,
            TaskState::Succeeded,
            "task.approved",
            Change {
                output: Some(output),
                ..Change::default()
            },
        )?;
    } else {
        let reason = output
            .as_str()
            .unwrap_or("refused by the operator")
            .to_string();
        transition(
            tx,
            now,
            actor,
            id,
            TaskState::Escalated,
            "task.refused",
            Change {
                detail: Some(format!(
                    "refused: {reason}; edit the input and retry, or cancel"
                )),
                error: Some(reason),
                ..Change::default()
            },
        )?;
    }
    Ok(vec![id.to_string()])
}
