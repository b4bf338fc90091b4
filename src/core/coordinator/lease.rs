//! Leases: a claimed task belongs to one owner until its lease expires. Claims are single
//! `UPDATE … RETURNING` statements inside `BEGIN IMMEDIATE`, so two processes can never
//! claim the same task. Each process also holds an exclusive lock on an owner file, so a
//! restarted process can tell a dead owner from a live one without waiting for expiry.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{Transaction, params};
use serde_json::json;

use super::OrchestratorConfig;
use crate::core::audit::{self, Actor};
use crate::core::clock::Millis;
use crate::core::error::{Error, Result};
use crate::core::queue::{Change, TASK_COLUMNS, Task, TaskState, ops, transition};

/// The lock a live process holds on `<workspace>/run/owners/<owner>.lock`.
#[derive(Debug)]
pub struct OwnerLock {
    _file: File,
    path: PathBuf,
}

impl OwnerLock {
    pub fn acquire(dir: &Path, owner: &str) -> Result<Self> {
        crate::core::workspace::create_private_dir(dir)?;
        let path = dir.join(format!("{owner}.lock"));
        let file = crate::core::workspace::open_private(&path)?;
        file.try_lock()
            .map_err(|e| Error::failed(format!("cannot lock {}", path.display()), e))?;
        Ok(OwnerLock { _file: file, path })
    }
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// True when `owner` left a lock file that nobody holds any more (the process died).
pub fn owner_is_dead(dir: &Path, owner: &str) -> bool {
    let path = dir.join(format!("{owner}.lock"));
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    else {
        return false; // no file: maybe another host; wait for expiry
    };
    if file.try_lock().is_ok() {
        let _ = std::fs::remove_file(&path);
        true
    } else {
        false
    }
}

/// Claims up to `max` due tasks for `owner`, highest priority first, within the global and
/// per-role concurrency limits (counted across every process on the workspace).
pub fn claim(
    tx: &Transaction<'_>,
    now: Millis,
    owner: &str,
    config: &OrchestratorConfig,
    in_off_peak: bool,
    max: usize,
) -> Result<Vec<Task>> {
    if ops::queue_paused(tx)? {
        return Ok(Vec::new());
    }
    let mut running: BTreeMap<String, usize> = BTreeMap::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT role, count(*) FROM tasks WHERE state = 'running' GROUP BY role",
        )?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (role, n) = row?;
            running.insert(role, usize::try_from(n).unwrap_or(0));
        }
    }
    let mut total: usize = running.values().sum();
    let mut claimed = Vec::new();
    let mut stmt = tx.prepare_cached(&format!(
        "UPDATE tasks SET state = 'running', wait_for = '', lease_owner = ?1,
             lease_expires_ms = ?2, updated_ms = ?3, run_id = COALESCE(run_id, ?4)
         WHERE id = (SELECT id FROM tasks INDEXED BY tasks_due
             WHERE state = 'queued' AND paused = 0 AND not_before_ms <= ?3
               AND (background = 0 OR run_now = 1 OR ?5)
               AND role NOT IN (SELECT value FROM json_each(?6))
             ORDER BY priority DESC, not_before_ms, created_ms LIMIT 1)
         RETURNING {TASK_COLUMNS}"
    ))?;
    while claimed.len() < max && total < config.max_running {
        let full: Vec<&String> = running
            .iter()
            .filter(|(role, n)| **n >= config.role_limit(role))
            .map(|(role, _)| role)
            .collect();
        let full = serde_json::to_string(&full).unwrap_or_else(|_| "[]".into());
        let run_id = crate::core::ids::new_id();
        let mut rows = stmt.query(params![
            owner,
            now + config.lease_ms,
            now,
            run_id,
            in_off_peak,
            full
        ])?;
        let Some(row) = rows.next()? else { break };
        let task = Task::from_row(row)?;
        drop(rows);
        audit::append(
            tx,
            now,
            &Actor::system("coordinator"),
            "task.claimed",
            &format!("task/{}", task.id),
            &json!({"from": "queued", "to": "running", "owner": owner, "run": task.run_id,
                    "attempt": task.attempts + 1}),
        )?;
        *running.entry(task.role.clone()).or_default() += 1;
        total += 1;
        claimed.push(task);
    }
    Ok(claimed)
}

/// Extends every lease `owner` holds. Returns (task id, paused) for each lease still held.
pub fn heartbeat(
    tx: &Transaction<'_>,
    now: Millis,
    owner: &str,
    lease_ms: i64,
) -> Result<Vec<(String, bool)>> {
    let mut stmt = tx.prepare(
        "UPDATE tasks SET lease_expires_ms = ?2 WHERE state = 'running' AND lease_owner = ?1
         RETURNING id, paused",
    )?;
    let rows = stmt.query_map(params![owner, now + lease_ms], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Returns to the queue every running task whose lease expired or whose owner is dead.
pub fn recover(
    tx: &Transaction<'_>,
    now: Millis,
    me: &str,
    owners_dir: Option<&Path>,
    max_lease_losses: i64,
) -> Result<Vec<String>> {
    let running: Vec<(String, Option<String>, Option<i64>)> = {
        let mut stmt = tx.prepare(
            "SELECT id, lease_owner, lease_expires_ms FROM tasks WHERE state = 'running'",
        )?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut dead: BTreeMap<String, bool> = BTreeMap::new();
    let mut recovered = Vec::new();
    for (id, owner, expires) in running {
        let owner = owner.unwrap_or_default();
        let expired = expires.is_none_or(|e| e < now);
        let owner_dead = owner != me
            && owners_dir.is_some_and(|dir| {
                *dead
                    .entry(owner.clone())
                    .or_insert_with(|| owner_is_dead(dir, &owner))
            });
        if !(expired || owner_dead) {
            continue;
        }
        let why = if owner_dead {
            "its owner process is gone"
        } else {
            "its lease expired"
        };
        let losses: i64 = tx.query_row(
            "UPDATE tasks SET lease_losses = lease_losses + 1 WHERE id = ?1 RETURNING lease_losses",
            [&id],
            |r| r.get(0),
        )?;
        let (to, action, detail) = if losses >= max_lease_losses {
            (
                TaskState::Escalated,
                "task.escalated",
                format!(
                    "its run was cut off {losses} times ({why}): it may crash its worker; \
                     check logs/keel.log, then retry or cancel"
                ),
            )
        } else {
            (
                TaskState::Queued,
                "task.lease_recovered",
                format!("back in the queue: {why}"),
            )
        };
        transition(
            tx,
            now,
            &Actor::system("coordinator"),
            &id,
            to,
            action,
            Change {
                detail: Some(detail),
                error: (to == TaskState::Escalated).then(|| format!("lease lost {losses} times")),
                audit: json!({"owner": owner, "reason": why, "lease_losses": losses}),
                ..Change::default()
            },
        )?;
        recovered.push(id);
    }
    Ok(recovered)
}
