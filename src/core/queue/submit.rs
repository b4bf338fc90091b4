//! Submitting a work item: validated, deduplicated by idempotency key, stored and audited in
//! the caller's transaction.

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::json;

use super::{
    DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT_MS, NewTask, RoleCatalog, Task, TaskState, WaitFor,
};
use crate::core::audit::{self, Actor};
use crate::core::canonical;
use crate::core::clock::Millis;
use crate::core::error::{Error, Result};

/// The outcome of a submission.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub task: Task,
    /// False when the idempotency key matched an existing task, which is returned instead.
    pub created: bool,
}

/// Validates and stores `new`. An existing idempotency key returns the existing task.
pub fn submit(
    tx: &Transaction<'_>,
    now: Millis,
    actor: &Actor,
    catalog: &RoleCatalog,
    new: NewTask,
) -> Result<Submitted> {
    if let Some(key) = &new.idempotency_key {
        let existing: Option<String> = tx
            .query_row(
                "SELECT id FROM tasks WHERE idempotency_key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = existing {
            return Ok(Submitted {
                task: super::get(tx, &id)?,
                created: false,
            });
        }
    }
    validate(tx, catalog, &new)?;
    let id = crate::core::ids::new_id();
    let state = if new.await_approval {
        TaskState::Waiting(WaitFor::Approval)
    } else {
        TaskState::Queued
    };
    // A key pasted into a task never reaches the database (nor the run that reads it back).
    let title = if new.title.trim().is_empty() {
        new.role.clone()
    } else {
        crate::core::redact::redact_str(new.title.trim())
    };
    let input = if new.input.is_null() {
        json!({})
    } else {
        crate::core::redact::redact_strings(&new.input)
    };
    drop(new.input);
    tx.execute(
        "INSERT INTO tasks (id, role, title, input, output_schema, state, wait_for, priority,
             not_before_ms, timeout_ms, cost_estimate_usd, max_attempts, escalate,
             idempotency_key, parent, workflow, stage, tags, background, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20, ?20)",
        params![
            id,
            new.role,
            title,
            canonical::to_string(&input),
            new.output_schema.as_ref().map(canonical::to_string),
            state.column(),
            state.wait_column(),
            new.priority,
            new.not_before_ms.unwrap_or(0),
            new.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            new.cost_estimate_usd,
            new.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
            new.escalate.unwrap_or(true),
            new.idempotency_key,
            new.parent,
            new.workflow,
            new.stage,
            serde_json::to_string(&new.tags).unwrap_or_else(|_| "[]".into()),
            new.background,
            now,
        ],
    )?;
    audit::append(
        tx,
        now,
        actor,
        "task.submitted",
        &format!("task/{id}"),
        &json!({
            "role": new.role,
            "title": title,
            "input": input,
            "state": state.to_string(),
            "priority": new.priority,
            "idempotency_key": new.idempotency_key,
            "parent": new.parent,
            "workflow": new.workflow,
            "stage": new.stage,
            "background": new.background,
        }),
    )?;
    Ok(Submitted {
        task: super::get(tx, &id)?,
        created: true,
    })
}

fn validate(tx: &Transaction<'_>, catalog: &RoleCatalog, new: &NewTask) -> Result<()> {
    if new.role.trim().is_empty() {
        return Err(Error::invalid("task", "a task needs a role"));
    }
    if !new.await_approval {
        catalog.check_input(&new.role, &new.input)?;
    }
    if new.role == crate::core::roles::workflow::NAME {
        catalog.check_workflow(&new.input)?;
    }
    if let Some(schema) = &new.output_schema {
        jsonschema::validator_for(schema).map_err(|e| Error::Schema {
            kind: "output_schema".into(),
            field: "(schema)".into(),
            message: format!("the output schema is invalid: {e}"),
        })?;
    }
    if new.timeout_ms.is_some_and(|t| t <= 0) {
        return Err(Error::invalid("task", "timeout_ms must be positive"));
    }
    if new.max_attempts.is_some_and(|m| m < 1) {
        return Err(Error::invalid("task", "max_attempts must be at least 1"));
    }
    if !new.cost_estimate_usd.is_finite() || new.cost_estimate_usd < 0.0 {
        return Err(Error::invalid(
            "task",
            "cost_estimate_usd must be a non-negative number",
        ));
    }
    if let Some(parent) = &new.parent {
        let found: Option<i64> = tx
            .query_row("SELECT 1 FROM tasks WHERE id = ?1", [parent], |r| r.get(0))
            .optional()?;
        if found.is_none() {
            return Err(Error::NotFound {
                kind: "task".into(),
                id: parent.clone(),
            });
        }
    }
    Ok(())
}
