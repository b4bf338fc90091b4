//! The operator's decision on an escalated triage item: learnt as a labelled example, and
//! the task retried with the label in its input.

use serde_json::{Value, json};

use super::{SPAM, target_kind};
use crate::core::audit::Actor;
use crate::core::clock::Millis;
use crate::core::error::Error;
use crate::core::memory::triage;
use crate::core::queue::{RoleCatalog, TaskState};

/// The operator's answer to an escalated (or failed) triage task, in the caller's
/// transaction: `label` (a role, a workflow, or `spam`) becomes a labelled example for later
/// triage (answering the decision the task recorded, if any), and the task goes back on the
/// queue with `label` in its input, which routes the item as the operator said.
pub fn decide(
    tx: &rusqlite::Transaction<'_>,
    now: Millis,
    actor: &Actor,
    catalog: &RoleCatalog,
    task_id: &str,
    label: &str,
) -> crate::core::Result<Vec<String>> {
    let label = label.trim();
    let task = crate::core::queue::get(tx, task_id)?;
    if task.role != "triage" {
        return Err(Error::invalid(
            "triage",
            format!("task {task_id} is a {} task, not triage", task.role),
        ));
    }
    if !matches!(task.state, TaskState::Escalated | TaskState::Failed) {
        return Err(Error::invalid(
            "triage",
            format!(
                "task {task_id} is {}; only an escalated item waits for a decision",
                task.state
            ),
        ));
    }
    if label != SPAM && target_kind(catalog, label).is_none() {
        let known: Vec<&str> = catalog.names().collect();
        return Err(Error::invalid(
            "label",
            format!(
                "{label:?} is not spam, a role or a workflow (roles: {})",
                known.join(", ")
            ),
        ));
    }
    let text = task
        .input
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("triage", format!("task {task_id} has no item text")))?
        .to_string();
    let facet = if label == SPAM { "spam" } else { "route" };
    let decision = recorded_decision(tx, task_id, facet)?;
    triage::learn(tx, now, actor, facet, &text, label, decision.as_deref())?;
    let mut input = task.input.clone();
    input["label"] = json!(label);
    input["decided_by"] = json!(actor.to_string());
    crate::core::queue::ops::retry(tx, now, actor, catalog, task_id, Some(input))
}

/// The id of the `facet` decision the task's last escalation recorded, if any.
fn recorded_decision(
    tx: &rusqlite::Transaction<'_>,
    task_id: &str,
    facet: &str,
) -> crate::core::Result<Option<String>> {
    let payload: Option<String> = rusqlite::OptionalExtension::optional(tx.query_row(
        "SELECT payload FROM audit WHERE action = 'triage.route' AND subject = ?1
         ORDER BY seq DESC LIMIT 1",
        [format!("task/{task_id}")],
        |r| r.get(0),
    ))?;
    let Some(payload) = payload else {
        return Ok(None);
    };
    let payload: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
    let ids: Vec<String> = payload["decisions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for id in ids {
        let found: Option<String> = rusqlite::OptionalExtension::optional(tx.query_row(
            "SELECT id FROM triage_decisions WHERE id = ?1 AND facet = ?2",
            [&id, facet],
            |r| r.get(0),
        ))?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}
