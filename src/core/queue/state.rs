//! The task state machine. Every transition goes through [`check`], which refuses the
//! illegal ones, so a bug elsewhere cannot, say, resurrect a cancelled task.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::core::error::{Error, Result};

/// What a waiting task waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitFor {
    Approval,
    Children,
    Timer,
}

impl WaitFor {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            WaitFor::Approval => "approval",
            WaitFor::Children => "children",
            WaitFor::Timer => "timer",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Queued,
    Running,
    Waiting(WaitFor),
    Succeeded,
    Failed,
    Escalated,
    Cancelled,
}

impl TaskState {
    /// The `state` column value.
    #[must_use]
    pub fn column(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Waiting(_) => "waiting",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Escalated => "escalated",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// The `wait_for` column value ('' unless waiting).
    #[must_use]
    pub fn wait_column(self) -> &'static str {
        match self {
            TaskState::Waiting(w) => w.as_str(),
            _ => "",
        }
    }

    /// Rebuilds a state from its two columns.
    pub fn from_columns(state: &str, wait_for: &str) -> Result<Self> {
        Ok(match state {
            "queued" => TaskState::Queued,
            "running" => TaskState::Running,
            "waiting" => TaskState::Waiting(match wait_for {
                "approval" => WaitFor::Approval,
                "children" => WaitFor::Children,
                "timer" => WaitFor::Timer,
                other => return Err(Error::invalid("task wait reason", other)),
            }),
            "succeeded" => TaskState::Succeeded,
            "failed" => TaskState::Failed,
            "escalated" => TaskState::Escalated,
            "cancelled" => TaskState::Cancelled,
            other => return Err(Error::invalid("task state", other)),
        })
    }

    /// Succeeded and cancelled never change again; failed and escalated wait for the operator.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Failed | TaskState::Escalated | TaskState::Cancelled
        )
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskState::Waiting(w) => write!(f, "waiting({})", w.as_str()),
            other => f.write_str(other.column()),
        }
    }
}

/// Whether `from → to` is a legal transition.
#[must_use]
pub fn allowed(from: TaskState, to: TaskState) -> bool {
    use TaskState::{Cancelled, Escalated, Failed, Queued, Running, Succeeded, Waiting};
    match (from, to) {
        // A claim; a timer or children wait may also start directly (workflow stages).
        (Queued, Running | Cancelled | Waiting(_))
        // Finish, retry/release, wait, give up, or the operator cancels mid-run.
        | (Running, Succeeded | Failed | Escalated | Queued | Waiting(_) | Cancelled)
        // The awaited thing happened (or an approval was refused).
        | (Waiting(_), Queued | Succeeded | Failed | Escalated | Cancelled)
        // Operator retry or cancel after a failure or an escalation.
        | (Failed | Escalated, Queued | Cancelled) => true,
        _ => false,
    }
}

/// Refuses an illegal transition with an error that names both states.
pub fn check(id: &str, from: TaskState, to: TaskState) -> Result<()> {
    if allowed(from, to) {
        Ok(())
    } else {
        Err(Error::invalid(
            "task transition",
            format!("task {id} cannot go from {from} to {to}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [TaskState; 9] = [
        TaskState::Queued,
        TaskState::Running,
        TaskState::Waiting(WaitFor::Approval),
        TaskState::Waiting(WaitFor::Children),
        TaskState::Waiting(WaitFor::Timer),
        TaskState::Succeeded,
        TaskState::Failed,
        TaskState::Escalated,
        TaskState::Cancelled,
    ];

    #[test]
    fn finished_tasks_never_move_again() {
        for to in ALL {
            assert!(!allowed(TaskState::Succeeded, to), "succeeded -> {to}");
            assert!(!allowed(TaskState::Cancelled, to), "cancelled -> {to}");
        }
    }

    #[test]
    fn only_a_claim_makes_a_task_run() {
        for from in ALL {
            assert_eq!(
                allowed(from, TaskState::Running),
                from == TaskState::Queued,
                "{from}"
            );
        }
    }

    #[test]
    fn operator_can_retry_what_failed_or_escalated() {
        assert!(allowed(TaskState::Escalated, TaskState::Queued));
        assert!(allowed(TaskState::Failed, TaskState::Queued));
        assert!(!allowed(TaskState::Queued, TaskState::Succeeded));
        let err = check("t1", TaskState::Succeeded, TaskState::Queued).unwrap_err();
        assert!(
            err.to_string().contains("from succeeded to queued"),
            "{err}"
        );
    }

    #[test]
    fn columns_round_trip() {
        for s in ALL {
            assert_eq!(
                TaskState::from_columns(s.column(), s.wait_column()).unwrap(),
                s
            );
        }
    }
}
