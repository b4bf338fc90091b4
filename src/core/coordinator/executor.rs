//! Pluggable execution. A [`TaskExecutor`] runs one task as a sequence of steps through a
//! [`StepContext`]; each completed step is checkpointed durably (`run_steps`), so a run that
//! resumes after a crash, a lease loss or a retry gets the stored output of every completed
//! step instead of doing it again.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Env;
use crate::core::audit::Actor;
use crate::core::canonical;
use crate::core::clock::Millis;
use crate::core::effects::connector::Connector;
use crate::core::effects::ledger;
use crate::core::error::Error;
use crate::core::queue::{NewTask, Task};
use crate::core::store::Store;

pub use super::run::{Interrupt, Outcome, RunControl, RunError};

/// Runs tasks. Implemented by the agent runtime and by the orchestrator's built-in roles.
pub trait TaskExecutor: Send + Sync {
    /// Whether this executor can run `role` (a task whose role nobody runs is escalated).
    fn handles(&self, role: &str) -> bool;
    fn execute(&self, ctx: &mut StepContext<'_>) -> Result<Outcome, RunError>;
}

/// What a running task sees: its task, durable steps, effects, children and findings.
pub struct StepContext<'a> {
    pub(crate) store: &'a mut Store,
    pub(crate) env: &'a Env,
    pub(crate) task: &'a Task,
    pub(crate) run_id: String,
    pub(crate) control: &'a RunControl,
    next_index: i64,
    actor: Actor,
}

impl<'a> StepContext<'a> {
    pub(crate) fn new(
        store: &'a mut Store,
        env: &'a Env,
        task: &'a Task,
        run_id: String,
        control: &'a RunControl,
    ) -> Self {
        let actor = Actor::agent(run_id.clone());
        StepContext {
            store,
            env,
            task,
            run_id,
            control,
            next_index: 0,
            actor,
        }
    }

    /// Acts as `actor` (an agent run whose gated actions run on their own step contexts
    /// still signs them as `agent:<run>`).
    pub(crate) fn set_actor(&mut self, actor: Actor) {
        self.actor = actor;
    }

    #[must_use]
    pub fn task(&self) -> &Task {
        self.task
    }
    #[must_use]
    pub fn run_id(&self) -> &str {
        &self.run_id
    }
    #[must_use]
    pub fn actor(&self) -> &Actor {
        &self.actor
    }
    /// Read access to the database (writes go through steps, effects and spawns).
    #[must_use]
    pub fn conn(&self) -> &rusqlite::Connection {
        self.store.conn()
    }
    #[must_use]
    pub fn now_ms(&self) -> Millis {
        self.env.clock.now_ms()
    }
    #[must_use]
    pub fn catalog(&self) -> &crate::core::queue::RoleCatalog {
        &self.env.catalog
    }

    /// If the next step already completed in this run under `name`, skips it and returns its
    /// stored output (for callers that must not redo what comes before the step itself,
    /// such as asking for an approval again).
    pub fn replay_next(&mut self, name: &str) -> Result<Option<Value>, RunError> {
        let row: Option<(String, String)> = self
            .store
            .conn()
            .prepare_cached(
                "SELECT name, output FROM run_steps WHERE run_id = ?1 AND step_index = ?2",
            )
            .map_err(Error::from)?
            .query_row(params![self.run_id, self.next_index], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(Error::from)?;
        match row {
            Some((stored, output)) if stored == name => {
                self.next_index += 1;
                Ok(Some(serde_json::from_str(&output).unwrap_or(Value::Null)))
            }
            _ => Ok(None),
        }
    }

    /// Stops here if the run was interrupted or ran past its timeout.
    pub fn check_interrupt(&self) -> Result<(), RunError> {
        if let Some(why) = self.control.interrupted() {
            return Err(RunError::Interrupted(why));
        }
        if self.env.clock.now_ms() > self.control.deadline_ms {
            self.control.interrupt(Interrupt::Timeout);
            return Err(RunError::Interrupted(Interrupt::Timeout));
        }
        Ok(())
    }

    /// Runs `f` as the next step, or returns its stored output if this run already completed
    /// it. The output is checkpointed before this returns.
    pub fn step<T, F>(&mut self, name: &str, f: F) -> Result<T, RunError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Result<T, RunError>,
    {
        self.step_with_input(name, "tool", &Value::Null, |_| f())
    }

    /// Like [`StepContext::step`], recording `kind` and a hash of `input`; a stored step whose
    /// name or input differs means the run no longer matches its checkpoints and fails.
    pub fn step_with_input<T, F>(
        &mut self,
        name: &str,
        kind: &str,
        input: &Value,
        f: F,
    ) -> Result<T, RunError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(&mut Self) -> Result<T, RunError>,
    {
        let (index, input_hash, stored) = self.next_step(name, input)?;
        if let Some(done) = stored {
            return Ok(done);
        }
        let out = f(self)?;
        let value = serde_json::to_value(&out).map_err(|e| {
            RunError::Permanent(format!("step {index} ({name}): output is not JSON: {e}"))
        })?;
        self.checkpoint(index, name, kind, &input_hash, &value)?;
        Ok(out)
    }

    /// Runs `f` as the next step inside the same transaction as its checkpoint, so database
    /// work done by a step (an object version, a finding…) commits exactly once with it.
    /// Refused (rolled back) if this process no longer holds the task's lease.
    pub fn db_step<T, F>(&mut self, name: &str, input: &Value, f: F) -> Result<T, RunError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(&rusqlite::Transaction<'_>, &Actor) -> crate::core::Result<T>,
    {
        let (index, input_hash, stored) = self.next_step(name, input)?;
        if let Some(done) = stored {
            return Ok(done);
        }
        let now = self.env.clock.now_ms();
        let (owner, task_id, run_id, actor) = (
            self.env.owner.clone(),
            self.task.id.clone(),
            self.run_id.clone(),
            self.actor.clone(),
        );
        let outcome = self.env.write(self.store, |tx| {
            let held: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM tasks WHERE id = ?1 AND state = 'running' AND lease_owner = ?2",
                    params![task_id, owner],
                    |r| r.get(0),
                )
                .optional()?;
            if held.is_none() {
                return Ok(None);
            }
            let out = f(tx, &actor)?;
            let value = serde_json::to_value(&out).map_err(Error::wrap)?;
            tx.execute(
                "INSERT INTO run_steps (run_id, step_index, name, kind, input_hash, output, created_ms)
                 VALUES (?1, ?2, ?3, 'db', ?4, ?5, ?6)",
                params![run_id, index, name, input_hash, canonical::to_string(&value), now],
            )?;
            Ok(Some(out))
        })?;
        outcome.ok_or_else(|| {
            self.control.interrupt(Interrupt::LeaseLost);
            RunError::Interrupted(Interrupt::LeaseLost)
        })
    }

    /// Takes the next step's index and hashes its input; the stored output too when this run
    /// already completed that step (a resumed or retried run).
    fn next_step<T: DeserializeOwned>(
        &mut self,
        name: &str,
        input: &Value,
    ) -> Result<(i64, String, Option<T>), RunError> {
        self.check_interrupt()?;
        let index = self.next_index;
        self.next_index += 1;
        let input_hash = canonical::hash_value(input);
        let Some(stored) = self.stored_step(index, name, &input_hash)? else {
            return Ok((index, input_hash, None));
        };
        let done = serde_json::from_value(stored).map_err(|e| {
            RunError::Permanent(format!(
                "step {index} ({name}): stored output does not fit: {e}"
            ))
        })?;
        Ok((index, input_hash, Some(done)))
    }

    /// Fails with `LeaseLost` unless this process still holds the task's lease.
    fn ensure_lease(&self) -> Result<(), RunError> {
        let held: Option<i64> = self
            .store
            .conn()
            .prepare_cached(
                "SELECT 1 FROM tasks WHERE id = ?1 AND state = 'running' AND lease_owner = ?2
                   AND lease_expires_ms >= ?3",
            )
            .map_err(Error::from)?
            .query_row(
                params![self.task.id, self.env.owner, self.env.clock.now_ms()],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::from)?;
        if held.is_none() {
            self.control.interrupt(Interrupt::LeaseLost);
            return Err(RunError::Interrupted(Interrupt::LeaseLost));
        }
        Ok(())
    }

    fn stored_step(
        &self,
        index: i64,
        name: &str,
        input_hash: &str,
    ) -> Result<Option<Value>, RunError> {
        let row: Option<(String, String, String)> = self
            .store
            .conn()
            .prepare_cached(
                "SELECT name, input_hash, output FROM run_steps WHERE run_id = ?1 AND step_index = ?2",
            )
            .map_err(Error::from)?
            .query_row(params![self.run_id, index], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .map_err(Error::from)?;
        let Some((stored_name, stored_hash, output)) = row else {
            return Ok(None);
        };
        if stored_name != name || stored_hash != input_hash {
            return Err(RunError::Permanent(format!(
                "run {} diverged from its checkpoints at step {index}: stored {stored_name:?}, now {name:?}",
                self.run_id
            )));
        }
        Ok(Some(serde_json::from_str(&output).unwrap_or(Value::Null)))
    }

    /// Writes the step, but only while this process still holds the task's lease: a run that
    /// lost its lease must not record progress over the run that replaced it.
    fn checkpoint(
        &mut self,
        index: i64,
        name: &str,
        kind: &str,
        input_hash: &str,
        output: &Value,
    ) -> Result<(), RunError> {
        let now = self.env.clock.now_ms();
        let owner = self.env.owner.clone();
        let task_id = self.task.id.clone();
        let run_id = self.run_id.clone();
        let written = self.env.write(self.store, |tx| {
            Ok(tx.prepare_cached(
                "INSERT INTO run_steps (run_id, step_index, name, kind, input_hash, output, created_ms)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
                 WHERE EXISTS (SELECT 1 FROM tasks WHERE id = ?8 AND state = 'running' AND lease_owner = ?9)",
            )?
            .execute(params![run_id, index, name, kind, input_hash, canonical::to_string(output), now, task_id, owner],
            )?)
        })?;
        if written == 0 {
            self.control.interrupt(Interrupt::LeaseLost);
            return Err(RunError::Interrupted(Interrupt::LeaseLost));
        }
        Ok(())
    }

    /// Performs an external action through the effects ledger as the next step: at most once
    /// per (task, step, arguments), even across crashes.
    pub fn effect(
        &mut self,
        connector: &dyn Connector,
        name: &str,
        action: &str,
        args: &Value,
    ) -> Result<Value, RunError> {
        let input =
            serde_json::json!({"connector": connector.name(), "action": action, "args": args});
        let step_key = format!("{}:{name}", self.next_index);
        self.step_with_input(name, "effect", &input, |ctx| {
            ctx.check_interrupt()?;
            // Never touch the outside world on a lease that another process has taken over.
            ctx.ensure_lease()?;
            let task = ctx.task.id.clone();
            let request = ledger::Request {
                task: &task,
                step: &step_key,
                action,
                args,
            };
            Ok(ledger::perform(
                ctx.store,
                ctx.env.clock.as_ref(),
                &ctx.actor,
                connector,
                request,
            )?)
        })
    }

    /// Submits child tasks (each with this task as parent). Children carry idempotency keys
    /// derived from this task and `key`, so a resumed run never spawns them twice.
    pub fn spawn(&mut self, key: &str, children: Vec<NewTask>) -> Result<Vec<String>, RunError> {
        self.check_interrupt()?;
        let now = self.env.clock.now_ms();
        let parent = self.task.id.clone();
        let workflow = self.task.workflow.clone();
        let actor = self.actor.clone();
        let catalog = self.env.catalog.clone();
        let ids = self.env.write(self.store, |tx| {
            let mut ids = Vec::new();
            for (i, mut child) in children.into_iter().enumerate() {
                child.parent = Some(parent.clone());
                if child.workflow.is_none() {
                    child.workflow.clone_from(&workflow);
                }
                if child.idempotency_key.is_none() {
                    child.idempotency_key = Some(format!("child:{parent}:{key}:{i}"));
                }
                ids.push(
                    crate::core::queue::submit(tx, now, &actor, &catalog, child)?
                        .task
                        .id,
                );
            }
            Ok(ids)
        })?;
        for id in &ids {
            self.env.notify(&format!("task/{id}"), "task.submitted");
        }
        Ok(ids)
    }

    /// The children of this task, oldest first.
    pub fn children(&self) -> Result<Vec<Task>, RunError> {
        Ok(crate::core::queue::query::children(
            self.store.conn(),
            &self.task.id,
        )?)
    }

    /// Publishes a finding as the next step (once per run, even across crashes).
    pub fn publish(&mut self, topic: &str, text: &str, data: &Value) -> Result<String, RunError> {
        let input = serde_json::json!({"topic": topic, "text": text, "data": data});
        let now = self.env.clock.now_ms();
        let finding = crate::core::blackboard::NewFinding {
            topic: topic.to_string(),
            author: self.task.role.clone(),
            text: text.to_string(),
            data: data.clone(),
            task: Some(self.task.id.clone()),
        };
        let id: String = self.db_step("publish", &input, |tx, actor| {
            crate::core::blackboard::publish(tx, now, actor, &finding)
        })?;
        self.env
            .notify(&format!("finding/{id}"), "blackboard.published");
        Ok(id)
    }
}
