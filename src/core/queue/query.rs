//! Read-side queries behind `Query::Tasks` and `keel task list|show`.

use rusqlite::Connection;

use super::{TASK_COLUMNS, Task};
use crate::core::error::Result;
use crate::protocol::{Page, TaskRow};

/// A page of tasks, newest first. `state` matches the state column (`waiting`, …);
/// `text` matches id, role, title or a tag.
pub fn list(
    conn: &Connection,
    state: Option<&str>,
    text: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<Page<TaskRow>> {
    let filter = "(?1 IS NULL OR state = ?1)
        AND (?2 IS NULL OR instr(id, ?2) > 0 OR instr(lower(role), lower(?2)) > 0
             OR instr(lower(title), lower(?2)) > 0 OR instr(lower(tags), lower(?2)) > 0)";
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM tasks WHERE {filter}"),
        rusqlite::params![state, text],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE {filter}
         ORDER BY created_ms DESC, id DESC LIMIT ?3 OFFSET ?4"
    ))?;
    let items = stmt
        .query_map(
            rusqlite::params![
                state,
                text,
                i64::try_from(limit).unwrap_or(i64::MAX),
                i64::try_from(offset).unwrap_or(i64::MAX)
            ],
            Task::from_row,
        )?
        .map(|t| t.map(|t| t.to_row()))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total: u64::try_from(total).unwrap_or(0),
    })
}

/// The children of `parent`, oldest first.
pub fn children(conn: &Connection, parent: &str) -> Result<Vec<Task>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE parent = ?1 ORDER BY created_ms, id"
    ))?;
    let rows = stmt.query_map([parent], Task::from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
