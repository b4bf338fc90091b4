//! The durable task queue: work items, their state machine, submission with idempotency
//! keys, operator actions (retry, edit-and-retry, cancel, pause) and the queries behind the
//! console's queue pane. Claiming and running tasks is the coordinator's job.
//!
//! Every transition runs inside the caller's `Store::write` transaction and appends its audit
//! entry there, so a task's state and its history can never disagree.

pub mod ops;
pub mod query;
pub mod roles;
pub mod state;
pub mod submit;
pub mod transition;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use roles::{RoleCatalog, RoleSpec};
pub use state::{TaskState, WaitFor};
pub use submit::{Submitted, submit};
pub use transition::{Change, transition};

/// Default run timeout: ten minutes.
pub const DEFAULT_TIMEOUT_MS: i64 = 600_000;
/// Default number of attempts before escalation.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 3;

/// A work item as submitted (the JSON shape of `Op::SubmitTask`).
pub use crate::protocol::NewTask;

/// A stored task.
#[allow(clippy::struct_excessive_bools)] // mirrors independent columns
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub role: String,
    pub title: String,
    pub input: Value,
    pub output_schema: Option<Value>,
    pub output: Option<Value>,
    pub state: TaskState,
    pub detail: String,
    pub priority: i64,
    pub not_before_ms: i64,
    pub timeout_ms: i64,
    pub cost_estimate_usd: f64,
    pub attempts: i64,
    pub max_attempts: i64,
    pub escalate: bool,
    pub idempotency_key: Option<String>,
    pub parent: Option<String>,
    pub workflow: Option<String>,
    pub stage: Option<String>,
    pub tags: Vec<String>,
    pub background: bool,
    pub run_now: bool,
    pub paused: bool,
    pub lease_owner: Option<String>,
    pub lease_expires_ms: Option<i64>,
    pub lease_losses: i64,
    pub run_id: Option<String>,
    /// Error history, oldest first.
    pub errors: Vec<Value>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// Columns in the order [`Task::from_row`] reads them.
pub const TASK_COLUMNS: &str = "id, role, title, input, output_schema, output, state, wait_for, \
    detail, priority, not_before_ms, timeout_ms, cost_estimate_usd, attempts, max_attempts, \
    escalate, idempotency_key, parent, workflow, stage, tags, background, run_now, paused, \
    lease_owner, lease_expires_ms, lease_losses, run_id, errors, created_ms, updated_ms";

fn json_col(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Value> {
    let text: String = row.get(idx)?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn opt_json_col(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Option<Value>> {
    let text: Option<String> = row.get(idx)?;
    Ok(text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t))))
}

impl Task {
    pub fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let state: String = row.get(6)?;
        let wait_for: String = row.get(7)?;
        let state = TaskState::from_columns(&state, &wait_for).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, e.into())
        })?;
        let tags = json_col(row, 20)?;
        let errors = json_col(row, 28)?;
        Ok(Task {
            id: row.get(0)?,
            role: row.get(1)?,
            title: row.get(2)?,
            input: json_col(row, 3)?,
            output_schema: opt_json_col(row, 4)?,
            output: opt_json_col(row, 5)?,
            state,
            detail: row.get(8)?,
            priority: row.get(9)?,
            not_before_ms: row.get(10)?,
            timeout_ms: row.get(11)?,
            cost_estimate_usd: row.get(12)?,
            attempts: row.get(13)?,
            max_attempts: row.get(14)?,
            escalate: row.get(15)?,
            idempotency_key: row.get(16)?,
            parent: row.get(17)?,
            workflow: row.get(18)?,
            stage: row.get(19)?,
            tags: serde_json::from_value(tags).unwrap_or_default(),
            background: row.get(21)?,
            run_now: row.get(22)?,
            paused: row.get(23)?,
            lease_owner: row.get(24)?,
            lease_expires_ms: row.get(25)?,
            lease_losses: row.get(26)?,
            run_id: row.get(27)?,
            errors: serde_json::from_value(errors).unwrap_or_default(),
            created_ms: row.get(29)?,
            updated_ms: row.get(30)?,
        })
    }

    /// The row the console and `keel task list` show.
    #[must_use]
    pub fn to_row(&self) -> crate::protocol::TaskRow {
        crate::protocol::TaskRow {
            id: self.id.clone(),
            role: self.role.clone(),
            title: self.title.clone(),
            state: self.state.column().to_string(),
            detail: match self.state {
                TaskState::Waiting(w) if self.detail.is_empty() => w.as_str().to_string(),
                TaskState::Waiting(w) => format!("{}: {}", w.as_str(), self.detail),
                _ => self.detail.clone(),
            },
            priority: self.priority,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            workflow: self.workflow.clone(),
            parent: self.parent.clone(),
            not_before_ms: (self.not_before_ms > 0).then_some(self.not_before_ms),
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            cost_estimate_usd: self.cost_estimate_usd,
            paused: self.paused,
        }
    }
}

/// Loads one task.
pub fn get(conn: &rusqlite::Connection, id: &str) -> crate::core::Result<Task> {
    use rusqlite::OptionalExtension;
    // Cached: this runs several times per task on the hot path.
    conn.prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"))?
        .query_row([id], Task::from_row)
        .optional()?
        .ok_or_else(|| crate::core::Error::NotFound {
            kind: "task".into(),
            id: id.to_string(),
        })
}
