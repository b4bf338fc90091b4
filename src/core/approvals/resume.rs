//! Keeping tasks and approvals in step: an operator's decision resumes or fails the task
//! that waits for it, in the decision's own transaction; housekeeping applies expiry and
//! catches a decision that landed while its task was still finishing its run.

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::json;

use crate::core::audit::Actor;
use crate::core::clock::Millis;
use crate::core::error::Result;
use crate::core::queue::{self, Change, TaskState, WaitFor, transition};
use crate::core::store::Store;

/// Applies the decision on approval `id` to the task waiting for it (if any): approved →
/// queued again (the run resumes after its last checkpoint and finds the approval);
/// rejected or expired → escalated with the reason, which the task's input now carries;
/// cancelled during a hold window → failed, the action never sent. Returns changed tasks.
pub fn on_decision(
    tx: &Transaction<'_>,
    now: Millis,
    actor: &Actor,
    id: &str,
) -> Result<Vec<String>> {
    let row: Option<(Option<String>, String, Option<String>, String)> = tx
        .query_row(
            "SELECT task, status, reason, action FROM approvals WHERE id = ?1",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((Some(task_id), status, reason, action)) = row else {
        return Ok(Vec::new());
    };
    let Ok(task) = queue::get(tx, &task_id) else {
        return Ok(Vec::new());
    };
    let reason = reason.unwrap_or_else(|| format!("the approval was {status}"));
    match (task.state, status.as_str()) {
        (TaskState::Waiting(WaitFor::Approval), "approved") => {
            queue::ops::resolve_approval(tx, now, actor, &task_id, true, json!({"approval": id}))
        }
        (TaskState::Waiting(WaitFor::Approval), "rejected" | "expired" | "cancelled") => {
            carry_rejection(tx, &task_id, id, &action, &reason)?;
            queue::ops::resolve_approval(tx, now, actor, &task_id, false, json!(reason))
        }
        (TaskState::Waiting(WaitFor::Timer), "cancelled") => {
            carry_rejection(tx, &task_id, id, &action, &reason)?;
            let message = format!("{action} was cancelled during its hold window: {reason}");
            transition(
                tx,
                now,
                actor,
                &task_id,
                TaskState::Failed,
                "task.failed",
                Change {
                    detail: Some(message.clone()),
                    error: Some(message),
                    audit: json!({"approval": id}),
                    ..Change::default()
                },
            )?;
            Ok(vec![task_id])
        }
        _ => Ok(Vec::new()),
    }
}

/// Writes the refusal into the task's input (`rejection`), so a retried run and the
/// operator both see it. Inputs that are not JSON objects are left alone.
fn carry_rejection(
    tx: &Transaction<'_>,
    task: &str,
    approval: &str,
    action: &str,
    reason: &str,
) -> Result<()> {
    let rejection = json!({"approval": approval, "action": action, "reason": reason});
    tx.execute(
        "UPDATE tasks SET input = json_set(input, '$.rejection', json(?2))
         WHERE id = ?1 AND json_type(input) = 'object'",
        params![task, rejection.to_string()],
    )?;
    Ok(())
}

/// Tasks waiting for an approval whose latest approval is no longer pending.
const DECIDED_WAITS: &str = "SELECT a.id FROM tasks t JOIN approvals a ON a.task = t.id
    WHERE t.state = 'waiting' AND t.wait_for = 'approval' AND a.status <> 'pending'
      AND a.id = (SELECT b.id FROM approvals b WHERE b.task = t.id
                  ORDER BY b.created_ms DESC, b.id DESC LIMIT 1)";

/// The coordinator's housekeeping for approvals: expired approvals get their default outcome
/// (and their tasks resume or fail with it), and a decision made while its task was still
/// recording its run is applied now. Returns the tasks it changed.
pub fn housekeeping(store: &mut Store, now: Millis) -> Result<Vec<String>> {
    super::sweep_expired(store, now)?;
    let decided: Vec<String> = {
        let mut stmt = store.conn().prepare_cached(DECIDED_WAITS)?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    if decided.is_empty() {
        return Ok(Vec::new());
    }
    let actor = Actor::system("approvals");
    store.write(|tx| {
        let mut changed = Vec::new();
        for id in &decided {
            changed.extend(on_decision(tx, now, &actor, id)?);
        }
        Ok(changed)
    })
}
