//! Runs a `workflow` task: spawns every stage whose upstream stages succeeded, waits for its
//! children, and succeeds when every stage did. Children carry idempotency keys
//! (`wf:<task>:<stage>`), so a resumed or re-woken run never spawns a stage twice.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::core::coordinator::{Outcome, RunError, StepContext};
use crate::core::queue::{NewTask, TaskState};

/// The role's name in tasks, schedules and workflow stages.
pub const NAME: &str = "workflow";

pub fn run(ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
    let input = ctx.task().input.clone();
    let name = input
        .get("workflow")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            RunError::Permanent("workflow task input has no \"workflow\" name".into())
        })?;
    let wf = ctx.catalog().workflow(name)?;
    let wf_input = input.get("input").cloned().unwrap_or_else(|| json!({}));
    let children = ctx.children()?;
    let mut outputs: BTreeMap<String, Value> = BTreeMap::new();
    let mut spawned = std::collections::BTreeSet::new();
    for child in &children {
        let Some(stage) = &child.stage else { continue };
        spawned.insert(stage.clone());
        match child.state {
            TaskState::Succeeded => {
                outputs.insert(stage.clone(), child.output.clone().unwrap_or(Value::Null));
            }
            TaskState::Failed | TaskState::Escalated | TaskState::Cancelled => {
                return Err(RunError::Permanent(format!(
                    "stage {stage:?} ({}) is {}: {}",
                    child.id, child.state, child.detail
                )));
            }
            _ => {}
        }
    }
    if outputs.len() == wf.stages.len() {
        return Ok(Outcome::Succeeded(
            json!({"workflow": wf.name, "stages": outputs}),
        ));
    }
    let task_id = ctx.task().id.clone();
    let mut ready = Vec::new();
    for stage in &wf.stages {
        if spawned.contains(&stage.name) || !stage.after.iter().all(|d| outputs.contains_key(d)) {
            continue;
        }
        let upstream: Map<String, Value> = stage
            .after
            .iter()
            .filter_map(|d| outputs.get(d).map(|o| (d.clone(), o.clone())))
            .collect();
        let mut child_input = match &wf_input {
            Value::Object(m) => m.clone(),
            other => Map::from_iter([("input".to_string(), other.clone())]),
        };
        if let Value::Object(extra) = &stage.input {
            child_input.extend(extra.clone());
        }
        if !upstream.is_empty() {
            child_input.insert("upstream".into(), Value::Object(upstream));
        }
        ready.push(NewTask {
            role: stage.role.clone().unwrap_or_else(|| "operator".into()),
            title: format!("{}: {}", wf.name, stage.name),
            input: Value::Object(child_input),
            stage: Some(stage.name.clone()),
            workflow: Some(wf.name.clone()),
            idempotency_key: Some(format!("wf:{task_id}:{}", stage.name)),
            await_approval: stage.approval,
            priority: ctx.task().priority,
            ..NewTask::default()
        });
    }
    if !ready.is_empty() {
        ctx.spawn("stages", ready)?;
    }
    Ok(Outcome::WaitChildren)
}
