//! Connects the agent runtime to the rest of keel: the coordinator runs agent roles through
//! [`agent_executor::AgentExecutor`]; tools reach objects, the blackboard, the queue and the
//! policy gate through [`host::WiredHost`]; retrieval goes to vector memory through
//! [`retriever::VectorRetriever`]. [`executor`] is the one executor `keel run` and the
//! console both use.

pub mod agent_executor;
pub mod approval_edit;
pub mod host;
pub mod retriever;

use std::sync::Arc;

use serde_json::Value;

use crate::core::agents::runtime::RunSink;
use crate::core::clock::Clock;
use crate::core::coordinator::builtin::BuiltinExecutor;
use crate::core::coordinator::{Outcome, RunError, StepContext, TaskExecutor};
use crate::core::error::Result;
use crate::core::roles;
use crate::core::workspace::Workspace;

pub use agent_executor::AgentExecutor;

/// Built-in roles first, agent templates for the rest.
///
/// `publisher` is both a built-in role (publishes a page on the site through policy, approval
/// and the effects ledger) and a shipped agent template (prepares a publish request for the
/// operator). The built-in keeps the name whenever the task carries a page to publish (`slug`
/// and `body`, in its input or an upstream stage's output — the content workflow's publish
/// stage): it is the only path that writes the site, and it needs no model. A `publisher`
/// task without a page goes to the agent template, whose own instructions say it never
/// publishes directly (its `external_action` tool goes through the same gate anyway).
pub struct Executor {
    builtin: BuiltinExecutor,
    agents: Arc<AgentExecutor>,
}

impl Executor {
    #[must_use]
    pub fn new(agents: Arc<AgentExecutor>) -> Self {
        Executor {
            builtin: BuiltinExecutor::default(),
            agents,
        }
    }

    #[must_use]
    pub fn agents(&self) -> &Arc<AgentExecutor> {
        &self.agents
    }
}

/// Whether `input` carries a page for the built-in publisher.
fn carries_page(input: &Value) -> bool {
    let has = |name: &str| {
        input.get(name).is_some_and(Value::is_string)
            || input
                .get("upstream")
                .and_then(Value::as_object)
                .is_some_and(|up| {
                    up.values()
                        .any(|o| o.get(name).is_some_and(Value::is_string))
                })
    };
    has("slug") && has("body")
}

fn builtin_runs(role: &str, input: &Value) -> bool {
    roles::is_builtin(role) && (role != roles::publisher::NAME || carries_page(input))
}

impl TaskExecutor for Executor {
    fn handles(&self, role: &str) -> bool {
        self.builtin.handles(role) || self.agents.handles(role)
    }

    fn execute(&self, ctx: &mut StepContext<'_>) -> std::result::Result<Outcome, RunError> {
        let task = ctx.task();
        if builtin_runs(&task.role, &task.input) || !self.agents.handles(&task.role) {
            self.builtin.execute(ctx)
        } else {
            self.agents.execute(ctx)
        }
    }
}

/// The executor for `ws`: built-in roles plus its agent templates; streamed model output goes
/// to `sink`. Runs left `running` by a task that is over are closed now; the others resume
/// when their task is claimed again.
pub fn executor(ws: &Workspace, clock: Arc<dyn Clock>, sink: RunSink) -> Result<Arc<Executor>> {
    let agents = Arc::new(AgentExecutor::new(ws, clock, sink)?);
    match agents.close_orphaned_runs() {
        Ok(0) => {}
        Ok(n) => tracing::info!(closed = n, "closed agent runs whose task is over"),
        Err(e) => tracing::warn!(error = %e, "could not check unfinished agent runs"),
    }
    Ok(Arc::new(Executor::new(agents)))
}
