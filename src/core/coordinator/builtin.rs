//! The executor of the roles the orchestrator runs itself (the list is
//! [`crate::core::roles::BUILTIN`]); every other role goes to the agent runtime given as
//! `agents`.

use std::sync::Arc;

use super::executor::{Outcome, RunError, StepContext, TaskExecutor};
use crate::core::roles;

#[derive(Default, Clone)]
pub struct BuiltinExecutor {
    /// The agent runtime, for every role that is not built in.
    pub agents: Option<Arc<dyn TaskExecutor>>,
}

impl BuiltinExecutor {
    #[must_use]
    pub fn with_agents(agents: Arc<dyn TaskExecutor>) -> Self {
        BuiltinExecutor {
            agents: Some(agents),
        }
    }
}

impl TaskExecutor for BuiltinExecutor {
    fn handles(&self, role: &str) -> bool {
        roles::is_builtin(role) || self.agents.as_ref().is_some_and(|a| a.handles(role))
    }

    fn execute(&self, ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
        if let Some(builtin) = roles::find(&ctx.task().role) {
            return (builtin.run)(ctx);
        }
        match &self.agents {
            Some(agents) => agents.execute(ctx),
            None => Err(RunError::Permanent(format!(
                "no executor for role {:?} in this build",
                ctx.task().role
            ))),
        }
    }
}
