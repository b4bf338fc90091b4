//! The built-in roles: the roles the orchestrator runs itself rather than an agent template.
//!
//! [`BUILTIN`] is the one list (name, description, what runs it), one file per role.
//! The queue's catalog registers these names, the coordinator's built-in executor runs them,
//! and the wiring's executor asks [`is_builtin`] before handing a role to the agents; none of
//! them names a built-in role itself.

pub mod analytics_import;
pub mod effect;
pub mod noop;
pub mod publisher;
pub mod triage;
pub mod webhook;
pub mod workflow;

use serde_json::json;

use crate::core::actions::Gated;
use crate::core::coordinator::{Outcome, RunError, StepContext};

/// What runs a built-in role: one step context in, the task's outcome out.
pub type Run = fn(&mut StepContext<'_>) -> Result<Outcome, RunError>;

/// One built-in role.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinRole {
    pub name: &'static str,
    /// One line for `keel roles` and the console.
    pub description: &'static str,
    pub run: Run,
}

/// Every built-in role, in the order they are listed.
pub const BUILTIN: &[BuiltinRole] = &[
    BuiltinRole {
        name: triage::NAME,
        description: "routes an incoming item (input: text, or kind: every note of that kind) by local embeddings; below the threshold, to the operator",
        run: triage::run,
    },
    BuiltinRole {
        name: analytics_import::NAME,
        description: "imports an analytics CSV (input: file) and reconciles it into publications, ideas and memory",
        run: analytics_import::run,
    },
    BuiltinRole {
        name: workflow::NAME,
        description: "runs a workflow file: spawns each stage and waits for it",
        run: workflow::run,
    },
    BuiltinRole {
        name: noop::NAME,
        description: "does nothing and succeeds (benchmarks, smoke tests)",
        run: noop::run,
    },
    BuiltinRole {
        name: webhook::NAME,
        description: "POSTs each of its steps to a loopback URL through the effects ledger",
        run: webhook::run,
    },
    BuiltinRole {
        name: publisher::NAME,
        description: "publishes a Markdown page on the static site, through policy and approval",
        run: publisher::run,
    },
    BuiltinRole {
        name: effect::NAME,
        description: "runs one configured connector action (e.g. a webhook), through policy and approval",
        run: effect::run,
    },
];

/// The built-in role called `name`, if there is one.
#[must_use]
pub fn find(name: &str) -> Option<&'static BuiltinRole> {
    BUILTIN.iter().find(|role| role.name == name)
}

/// Whether `name` is a built-in role.
#[must_use]
pub fn is_builtin(name: &str) -> bool {
    find(name).is_some()
}

/// The outcome of a gated role (`publisher`, `effect`): the action's result, or the wait.
fn gated_outcome(gated: Gated) -> Outcome {
    match gated {
        Gated::Done(result) => Outcome::Succeeded(json!({"result": result})),
        Gated::Wait(outcome) => outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = BUILTIN.iter().map(|role| role.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BUILTIN.len());
        assert!(is_builtin("noop") && !is_builtin("writer"));
    }
}
