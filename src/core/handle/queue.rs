//! The handle's queue entry points: task and queue ops and the `Tasks` query. Each change
//! is one transaction with its audit entries, then a `task/ID` notification.

use crate::core::audit::Actor;
use crate::core::error::{Error, Result};
use crate::core::queue::{self, NewTask, RoleCatalog, ops};
use crate::protocol::{Answer, Op, Query};

use super::CoreContext;

/// Handles a task or queue op (others are refused).
pub fn op(ctx: &mut CoreContext, actor: &Actor, op: Op) -> Result<Answer> {
    let now = ctx.clock.now_ms();
    let changed = match op {
        Op::SubmitTask { task } => return submit(ctx, actor, *task),
        Op::RetryTask { id, new_input } => {
            let catalog = RoleCatalog::load(&ctx.workspace.root)?;
            ctx.store
                .write(|tx| ops::retry(tx, now, actor, &catalog, &id, new_input))?
        }
        Op::CancelTask { id } => ctx.store.write(|tx| ops::cancel(tx, now, actor, &id))?,
        Op::PauseTask { id } => ctx
            .store
            .write(|tx| ops::set_task_paused(tx, now, actor, &id, true))?,
        Op::ResumeTask { id } => ctx
            .store
            .write(|tx| ops::set_task_paused(tx, now, actor, &id, false))?,
        Op::RunNow { id } => ctx.store.write(|tx| ops::run_now(tx, now, actor, &id))?,
        Op::DecideTriage { id, label } => {
            let catalog = RoleCatalog::load(&ctx.workspace.root)?;
            ctx.store.write(|tx| {
                crate::core::roles::triage::decide(tx, now, actor, &catalog, &id, &label)
            })?
        }
        Op::PauseQueue | Op::ResumeQueue => {
            let paused = matches!(op, Op::PauseQueue);
            ctx.store
                .write(|tx| ops::set_queue_paused(tx, now, actor, paused))?;
            let action = if paused {
                "queue.paused"
            } else {
                "queue.resumed"
            };
            ctx.notify("queue", action);
            return Ok(Answer::Queue { paused });
        }
        other => {
            return Err(Error::invalid(
                "queue op",
                format!("{other:?} is not a queue op"),
            ));
        }
    };
    for id in &changed {
        ctx.notify(&format!("task/{id}"), "task.changed");
    }
    let first = changed.first().cloned().unwrap_or_default();
    let row = queue::get(ctx.store.conn(), &first)?.to_row();
    Ok(Answer::Task(Box::new(row)))
}

fn submit(ctx: &mut CoreContext, actor: &Actor, new: NewTask) -> Result<Answer> {
    let catalog = RoleCatalog::load(&ctx.workspace.root)?;
    let now = ctx.clock.now_ms();
    let submitted = ctx
        .store
        .write(|tx| queue::submit(tx, now, actor, &catalog, new))?;
    if submitted.created {
        ctx.notify(&format!("task/{}", submitted.task.id), "task.submitted");
    }
    Ok(Answer::Task(Box::new(submitted.task.to_row())))
}

pub fn query(ctx: &CoreContext, query: Query) -> Result<Answer> {
    match query {
        Query::Task { id } => Ok(Answer::Task(Box::new(
            queue::get(ctx.store.conn(), &id)?.to_row(),
        ))),
        Query::Tasks {
            state,
            text,
            offset,
            limit,
        } => Ok(Answer::Tasks(queue::query::list(
            ctx.store.conn(),
            state.as_deref(),
            text.as_deref(),
            offset,
            limit,
        )?)),
        other => Err(Error::Other(format!("not a queue query: {other:?}"))),
    }
}
