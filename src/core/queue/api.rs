//! The queue's handlers for the core handle: task and queue `Op`s and the `Tasks` query.
//! Each change is one transaction with its audit entries, then a `task/ID` notification.

use serde_json::{Value, json};

use super::{NewTask, RoleCatalog, ops};
use crate::core::audit::Actor;
use crate::core::error::{Error, Result};
use crate::core::handle::CoreContext;
use crate::protocol::Op;

/// Handles a task or queue op (others are refused).
pub fn handle_op(ctx: &mut CoreContext, op: &Op) -> Result<Value> {
    let now = ctx.clock.now_ms();
    let actor = Actor::Operator;
    let result = match op {
        Op::SubmitTask { task } => return submit(ctx, task.clone()),
        Op::RetryTask { id, new_input } => {
            let catalog = RoleCatalog::load(&ctx.workspace.root)?;
            ctx.store
                .write(|tx| ops::retry(tx, now, &actor, &catalog, id, new_input.clone()))
        }
        Op::CancelTask { id } => ctx.store.write(|tx| ops::cancel(tx, now, &actor, id)),
        Op::PauseTask { id } => ctx
            .store
            .write(|tx| ops::set_task_paused(tx, now, &actor, id, true)),
        Op::ResumeTask { id } => ctx
            .store
            .write(|tx| ops::set_task_paused(tx, now, &actor, id, false)),
        Op::RunNow { id } => ctx.store.write(|tx| ops::run_now(tx, now, &actor, id)),
        Op::DecideTriage { id, label } => {
            let catalog = RoleCatalog::load(&ctx.workspace.root)?;
            ctx.store.write(|tx| {
                crate::core::roles::triage::decide(tx, now, &actor, &catalog, id, label)
            })
        }
        Op::PauseQueue | Op::ResumeQueue => {
            let paused = matches!(op, Op::PauseQueue);
            return ctx
                .store
                .write(|tx| ops::set_queue_paused(tx, now, &actor, paused))
                .map(|()| {
                    ctx.notify(
                        "queue",
                        if paused {
                            "queue.paused"
                        } else {
                            "queue.resumed"
                        },
                    );
                    json!({"paused": paused})
                });
        }
        other => {
            return Err(Error::invalid(
                "queue op",
                format!("{other:?} is not a queue op"),
            ));
        }
    };
    result.and_then(|changed| {
        for id in &changed {
            ctx.notify(&format!("task/{id}"), "task.changed");
        }
        let first = changed.first().cloned().unwrap_or_default();
        Ok(json!(super::get(ctx.store.conn(), &first)?.to_row()))
    })
}

fn submit(ctx: &mut CoreContext, task: Value) -> Result<Value> {
    let new: NewTask =
        serde_json::from_value(task).map_err(|e| Error::invalid("task", e.to_string()))?;
    let catalog = RoleCatalog::load(&ctx.workspace.root)?;
    let now = ctx.clock.now_ms();
    let submitted = ctx
        .store
        .write(|tx| super::submit(tx, now, &Actor::Operator, &catalog, new))?;
    if submitted.created {
        ctx.notify(&format!("task/{}", submitted.task.id), "task.submitted");
    }
    Ok(json!(submitted.task.to_row()))
}
