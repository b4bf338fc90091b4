//! Keeping the queue moving: each pass reads first and only opens a write transaction when
//! something is due, so an idle workspace costs no commits.

use rusqlite::Connection;

use super::Env;
use crate::core::audit::Actor;
use crate::core::clock::Millis;
use crate::core::error::Result;
use crate::core::queue::{Change, TaskState, transition};
use crate::core::store::Store;
use crate::core::{blackboard, scheduler};

/// Waiting parents whose children are all finished.
const CHILDREN_DONE: &str = "SELECT p.id FROM tasks p WHERE p.state = 'waiting' AND p.wait_for = 'children'
    AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent = p.id AND c.state IN ('queued', 'running', 'waiting'))";
/// Timers that are due.
const TIMERS_DUE: &str =
    "SELECT id FROM tasks WHERE state = 'waiting' AND wait_for = 'timer' AND not_before_ms <= ?1";
/// Running tasks some other owner holds, or whose lease expired.
const LEASES_TO_CHECK: &str = "SELECT count(*) FROM tasks WHERE state = 'running'
    AND (lease_owner IS NOT ?1 OR lease_expires_ms < ?2)";

fn ids(conn: &Connection, sql: &str, now: Option<Millis>) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = match now {
        Some(now) => stmt
            .query_map([now], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?,
        None => stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?,
    };
    Ok(rows)
}

pub fn run(store: &mut Store, env: &Env) -> Result<()> {
    let now = env.clock.now_ms();
    // Approval expiry and decisions that landed while their task was finishing a run.
    let resumed = {
        let _gate = env
            .write_gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        crate::core::approvals::housekeeping(store, now)?
    };
    for id in resumed {
        env.notify(&format!("task/{id}"), "task.approval_resolved");
    }
    let mut changed: Vec<(String, &'static str)> = Vec::new();
    let conn = store.conn();
    let check_leases: i64 =
        conn.query_row(LEASES_TO_CHECK, rusqlite::params![env.owner, now], |r| {
            r.get(0)
        })?;
    let wake = !ids(conn, CHILDREN_DONE, None)?.is_empty()
        || !ids(conn, TIMERS_DUE, Some(now))?.is_empty();
    let schedules = scheduler::cron::anything_due(conn, now, &env.scheduler)?;
    let findings = blackboard::pending(conn)?;
    if check_leases == 0 && !wake && !schedules && !findings {
        return Ok(());
    }
    env.write(store, |tx| {
        if check_leases > 0 {
            for id in super::lease::recover(
                tx,
                now,
                &env.owner,
                env.owners_dir.as_deref(),
                env.config.max_lease_losses,
            )? {
                changed.push((id, "task.lease_recovered"));
            }
        }
        let actor = Actor::system("coordinator");
        for id in ids(tx, CHILDREN_DONE, None)? {
            transition(
                tx,
                now,
                &actor,
                &id,
                TaskState::Queued,
                "task.children_done",
                Change {
                    not_before_ms: Some(now),
                    ..Change::default()
                },
            )?;
            changed.push((id, "task.children_done"));
        }
        for id in ids(tx, TIMERS_DUE, Some(now))? {
            transition(
                tx,
                now,
                &actor,
                &id,
                TaskState::Queued,
                "task.timer_fired",
                Change::default(),
            )?;
            changed.push((id, "task.timer_fired"));
        }
        if schedules {
            for fired in scheduler::tick(tx, now, &env.scheduler, &env.catalog)? {
                if let Some(task) = fired.task {
                    changed.push((task, "task.submitted"));
                }
            }
        }
        if findings {
            for id in blackboard::deliver(tx, now, &env.catalog)? {
                changed.push((id, "task.submitted"));
            }
        }
        Ok(())
    })?;
    for (id, action) in changed {
        env.notify(&format!("task/{id}"), action);
    }
    Ok(())
}
