//! Recording how a run ended: success (output checked against its schema), a wait, a
//! scheduled retry, an escalation with its suggested fix, or a release back to the queue.

use rusqlite::Transaction;
use serde_json::json;

use super::executor::{Interrupt, Outcome, RunError};
use super::{OrchestratorConfig, retry};
use crate::core::audit::Actor;
use crate::core::clock::Millis;
use crate::core::error::Result;
use crate::core::queue::{Change, Task, TaskState, WaitFor, roles, transition};

/// Applies `result` to `task` if `owner` still holds its lease (otherwise someone cancelled
/// it or took it over, and this run's ending is void). Returns the audit action taken.
pub fn finish(
    tx: &Transaction<'_>,
    now: Millis,
    owner: &str,
    config: &OrchestratorConfig,
    task: &Task,
    result: Result<Outcome, RunError>,
) -> Result<Option<&'static str>> {
    let current = crate::core::queue::get(tx, &task.id)?;
    if current.state != TaskState::Running || current.lease_owner.as_deref() != Some(owner) {
        return Ok(None);
    }
    let actor = Actor::agent(task.run_id.clone().unwrap_or_default());
    let result = match result {
        Ok(Outcome::Succeeded(output)) => match &task.output_schema {
            Some(schema) => roles::check_schema("output", schema, &output)
                .map(|()| Outcome::Succeeded(output))
                .map_err(|e| RunError::Retryable(e.to_string())),
            None => Ok(Outcome::Succeeded(output)),
        },
        // A task that waits for children it never spawned would wake and wait forever.
        Ok(Outcome::WaitChildren) if !has_children(tx, &task.id)? => Err(RunError::Permanent(
            "the run asked to wait for child tasks but spawned none".into(),
        )),
        other => other,
    };
    let (to, action, change) = match result {
        Ok(Outcome::Succeeded(output)) => (
            TaskState::Succeeded,
            "task.succeeded",
            Change {
                output: Some(output),
                detail: Some(String::new()),
                ..Change::default()
            },
        ),
        Ok(Outcome::WaitChildren) => (
            TaskState::Waiting(WaitFor::Children),
            "task.waiting",
            Change::default(),
        ),
        Ok(Outcome::WaitApproval(detail)) => (
            TaskState::Waiting(WaitFor::Approval),
            "task.waiting",
            Change {
                detail: Some(detail),
                ..Change::default()
            },
        ),
        Ok(Outcome::WaitTimer(until)) => (
            TaskState::Waiting(WaitFor::Timer),
            "task.waiting",
            Change {
                not_before_ms: Some(until),
                detail: Some(crate::core::clock::rfc3339(until)),
                ..Change::default()
            },
        ),
        Err(RunError::Interrupted(Interrupt::LeaseLost)) => return Ok(None),
        Err(RunError::Interrupted(why @ (Interrupt::Paused | Interrupt::Shutdown))) => (
            TaskState::Queued,
            "task.released",
            Change {
                audit: json!({"reason": format!("{why:?}").to_lowercase()}),
                ..Change::default()
            },
        ),
        Err(RunError::Interrupted(Interrupt::Timeout)) => failure(
            config,
            task,
            now,
            format!("timed out after {} ms", task.timeout_ms),
            true,
        ),
        Err(RunError::Refused(message)) => (
            TaskState::Failed,
            "task.failed",
            Change {
                detail: Some(message.clone()),
                error: Some(message),
                count_attempt: true,
                ..Change::default()
            },
        ),
        Err(RunError::Retryable(message)) => failure(config, task, now, message, true),
        Err(RunError::Permanent(message) | RunError::Escalate(message)) => {
            failure(config, task, now, message, false)
        }
    };
    transition(tx, now, &actor, &task.id, to, action, change)?;
    Ok(Some(action))
}

/// A failed attempt: another try after a backoff, or the end (escalated or failed).
fn failure(
    config: &OrchestratorConfig,
    task: &Task,
    now: Millis,
    message: String,
    retryable: bool,
) -> (TaskState, &'static str, Change) {
    let failed = task.attempts + 1;
    if retryable && failed < task.max_attempts {
        let delay = retry::backoff_ms(config, &task.id, failed);
        return (
            TaskState::Queued,
            "task.retry_scheduled",
            Change {
                not_before_ms: Some(now + delay),
                detail: Some(format!(
                    "attempt {failed} of {} failed; retrying in {delay} ms",
                    task.max_attempts
                )),
                error: Some(message),
                count_attempt: true,
                audit: json!({"retry_in_ms": delay}),
                ..Change::default()
            },
        );
    }
    let fix = retry::suggested_fix(&task.role, &message);
    let (to, action) = if task.escalate {
        (TaskState::Escalated, "task.escalated")
    } else {
        (TaskState::Failed, "task.failed")
    };
    (
        to,
        action,
        Change {
            detail: Some(fix.clone()),
            error: Some(message),
            count_attempt: true,
            audit: json!({"suggested_fix": fix}),
            ..Change::default()
        },
    )
}

fn has_children(tx: &Transaction<'_>, id: &str) -> Result<bool> {
    let n: i64 = tx.query_row("SELECT count(*) FROM tasks WHERE parent = ?1", [id], |r| {
        r.get(0)
    })?;
    Ok(n > 0)
}
