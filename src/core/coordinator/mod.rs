//! The coordinator: claims due tasks under leases, runs them on worker threads through a
//! [`TaskExecutor`], heartbeats their leases, enforces timeouts and concurrency limits,
//! retries with backoff, escalates, and keeps the queue moving (expired leases, finished
//! children, timers, schedules, blackboard subscriptions).
//!
//! Any number of processes (the console and a headless `keel run`) may run coordinators on
//! one workspace: claims are atomic and leases say who runs what.

pub mod builtin;
pub mod config;
pub mod executor;
pub mod finish;
pub mod lease;
pub mod maintenance;
pub mod retry;
pub mod run;
mod threads;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub use config::OrchestratorConfig;
pub use executor::{Interrupt, Outcome, RunControl, RunError, StepContext, TaskExecutor};
pub use threads::Running;

use crate::core::clock::Clock;
use crate::core::error::{Error, Result};
use crate::core::queue::{RoleCatalog, Task};
use crate::core::scheduler::SchedulerSettings;
use crate::core::store::{Durability, Store};
use crate::core::workspace::Workspace;

/// Receives `(subject, action)` after each committed change (the handle turns these into
/// `Event::Changed`).
pub type Notifier = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// A notifier that broadcasts `Event::Changed` (for a coordinator inside the console).
#[must_use]
pub fn event_notifier(events: tokio::sync::broadcast::Sender<crate::protocol::Event>) -> Notifier {
    Arc::new(move |subject, action| {
        let _ = events.send(crate::protocol::Event::Changed {
            subject: subject.to_string(),
            action: action.to_string(),
        });
    })
}

/// What every run of this process shares.
pub struct Env {
    pub clock: Arc<dyn Clock>,
    pub catalog: Arc<RoleCatalog>,
    pub config: OrchestratorConfig,
    pub scheduler: SchedulerSettings,
    /// This process's lease owner id.
    pub owner: String,
    pub owners_dir: Option<PathBuf>,
    pub notifier: Option<Notifier>,
    /// Serialises this process's writers, so they queue on a mutex instead of `SQLite`'s
    /// sleeping busy handler (other processes still meet the busy handler).
    pub write_gate: Mutex<()>,
    /// The workspace's connectors and policy, for runs that act on the outside world
    /// (`None` for a coordinator opened on a bare database).
    pub gates: Option<Arc<crate::core::actions::Gates>>,
}

impl Env {
    /// `store.write(f)` behind the process's write gate.
    pub fn write<T>(
        &self,
        store: &mut Store,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let _gate = self
            .write_gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        store.write(f)
    }

    pub fn notify(&self, subject: &str, action: &str) {
        if let Some(n) = &self.notifier {
            n(subject, action);
        }
    }
}

pub struct Coordinator {
    pub env: Arc<Env>,
    db_path: PathBuf,
    durability: Durability,
    executor: Arc<dyn TaskExecutor>,
    inflight: Mutex<HashMap<String, Arc<RunControl>>>,
    /// Tasks this process claimed and has not finished recording; a lease it holds on any
    /// other task is an orphan (e.g. recording a run failed) and is released.
    claimed: Mutex<std::collections::HashSet<String>>,
    stopping: AtomicBool,
    /// Held for the process's lifetime; other processes test it to tell we are alive.
    #[allow(dead_code)]
    owner_lock: Option<lease::OwnerLock>,
}

impl Coordinator {
    /// A coordinator on the database at `db_path` (tests and benchmarks).
    pub fn new(
        db_path: PathBuf,
        durability: Durability,
        clock: Arc<dyn Clock>,
        catalog: RoleCatalog,
        config: OrchestratorConfig,
        executor: Arc<dyn TaskExecutor>,
    ) -> Self {
        Coordinator {
            env: Arc::new(Env {
                clock,
                catalog: Arc::new(catalog),
                config,
                scheduler: SchedulerSettings::default(),
                owner: format!("proc-{}", crate::core::ids::new_id()),
                owners_dir: None,
                notifier: None,
                write_gate: Mutex::new(()),
                gates: None,
            }),
            db_path,
            durability,
            executor,
            inflight: Mutex::new(HashMap::new()),
            claimed: Mutex::new(std::collections::HashSet::new()),
            stopping: AtomicBool::new(false),
            owner_lock: None,
        }
    }

    /// A coordinator for `workspace`: its config, its role templates and workflows, and an
    /// owner lock so that other processes can tell when this one dies.
    pub fn for_workspace(
        workspace: &Workspace,
        clock: Arc<dyn Clock>,
        executor: Arc<dyn TaskExecutor>,
    ) -> Result<Self> {
        let catalog = RoleCatalog::load(&workspace.root)?;
        let mut coordinator = Self::new(
            workspace.db_path(),
            workspace.config.store.durability,
            clock,
            catalog,
            workspace.config.orchestrator.clone(),
            executor,
        );
        let owners_dir = workspace.root.join("run").join("owners");
        let lock = lease::OwnerLock::acquire(&owners_dir, &coordinator.env.owner)?;
        let env = Arc::get_mut(&mut coordinator.env)
            .ok_or_else(|| Error::Other("coordinator env shared".into()))?;
        env.owners_dir = Some(owners_dir);
        env.scheduler = SchedulerSettings::from_config(&workspace.config)?;
        env.gates = Some(Arc::new(crate::core::actions::Gates::for_workspace(
            workspace,
        )?));
        coordinator.owner_lock = Some(lock);
        Ok(coordinator)
    }

    /// Replaces the environment's parts before the coordinator starts (builder style).
    #[must_use]
    pub fn configure(mut self, f: impl FnOnce(&mut Env)) -> Self {
        if let Some(env) = Arc::get_mut(&mut self.env) {
            f(env);
        }
        self
    }

    pub fn open_store(&self) -> Result<Store> {
        Store::open(&self.db_path, self.durability)
    }

    /// Housekeeping: recover expired or orphaned leases, wake parents whose children are done
    /// and timers that are due, fire schedules, deliver blackboard findings.
    pub fn maintain(&self, store: &mut Store) -> Result<()> {
        maintenance::run(store, &self.env)
    }

    /// Runs every task that is due now, one at a time on this thread, until none is left
    /// (including tasks that become due as others finish). For tests under a manual clock.
    pub fn run_pending(&self, store: &mut Store) -> Result<usize> {
        let mut ran = 0;
        loop {
            self.maintain(store)?;
            let claimed = self.claim(store, 1)?;
            if claimed.is_empty() {
                return Ok(ran);
            }
            for task in claimed {
                self.execute(store, &task)?;
                ran += 1;
            }
        }
    }

    /// Claims up to `max` due tasks for this process.
    pub fn claim(&self, store: &mut Store, max: usize) -> Result<Vec<Task>> {
        let now = self.env.clock.now_ms();
        let off_peak = self.env.scheduler.in_off_peak(now);
        let claimed = self.env.write(store, |tx| {
            let tasks = lease::claim(tx, now, &self.env.owner, &self.env.config, off_peak, max)?;
            // Registered before the commit (under the write gate), so a heartbeat never sees
            // a fresh lease it does not know about.
            self.lock_claimed()
                .extend(tasks.iter().map(|t| t.id.clone()));
            Ok(tasks)
        })?;
        for task in &claimed {
            self.env
                .notify(&format!("task/{}", task.id), "task.claimed");
        }
        Ok(claimed)
    }

    /// Runs one claimed task to its next resting state and records it.
    pub fn execute(&self, store: &mut Store, task: &Task) -> Result<()> {
        let now = self.env.clock.now_ms();
        let control = Arc::new(RunControl::new(now.saturating_add(task.timeout_ms)));
        if self.stopping.load(Ordering::SeqCst) {
            control.interrupt(Interrupt::Shutdown);
        }
        self.lock_inflight()
            .insert(task.id.clone(), Arc::clone(&control));
        let run_id = task.run_id.clone().unwrap_or_else(crate::core::ids::new_id);
        let result = if !self.env.catalog.contains(&task.role) || !self.executor.handles(&task.role)
        {
            Err(RunError::Permanent(format!(
                "no executor or agent template for role {:?} (unknown role)",
                task.role
            )))
        } else if let Some(why) = control.interrupted() {
            Err(RunError::Interrupted(why))
        } else {
            let mut ctx = StepContext::new(store, &self.env, task, run_id, &control);
            self.executor.execute(&mut ctx)
        };
        self.lock_inflight().remove(&task.id);
        if let Err(e) = &result {
            tracing::info!(task = %task.id, role = %task.role, error = %e, "run ended with an error");
        }
        let now = self.env.clock.now_ms();
        let action = self.env.write(store, |tx| {
            finish::finish(tx, now, &self.env.owner, &self.env.config, task, result)
        });
        self.lock_claimed().remove(&task.id);
        if let Some(action) = action? {
            self.env.notify(&format!("task/{}", task.id), action);
        }
        Ok(())
    }

    fn lock_claimed(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.claimed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_inflight(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<RunControl>>> {
        self.inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Interrupts in-flight runs that are past their deadline (no database access).
    pub fn check_deadlines(&self) {
        let now = self.env.clock.now_ms();
        for control in self.lock_inflight().values() {
            if now > control.deadline_ms {
                control.interrupt(Interrupt::Timeout);
            }
        }
    }

    /// Extends this process's leases and interrupts runs that lost theirs, were paused or
    /// ran out of time.
    pub fn heartbeat(&self, store: &mut Store) -> Result<()> {
        let now = self.env.clock.now_ms();
        let held = self.env.write(store, |tx| {
            lease::heartbeat(tx, now, &self.env.owner, self.env.config.lease_ms)
        })?;
        let held: HashMap<String, bool> = held.into_iter().collect();
        let orphans: Vec<String> = {
            let claimed = self.lock_claimed();
            held.keys()
                .filter(|id| !claimed.contains(*id))
                .cloned()
                .collect()
        };
        if !orphans.is_empty() {
            self.env.write(store, |tx| {
                for id in &orphans {
                    crate::core::queue::transition(
                        tx,
                        now,
                        &crate::core::audit::Actor::system("coordinator"),
                        id,
                        crate::core::queue::TaskState::Queued,
                        "task.released",
                        crate::core::queue::Change {
                            audit: serde_json::json!({"reason": "orphaned lease"}),
                            ..crate::core::queue::Change::default()
                        },
                    )?;
                }
                Ok(())
            })?;
            for id in &orphans {
                tracing::warn!(task = %id, "released an orphaned lease");
                self.env.notify(&format!("task/{id}"), "task.released");
            }
        }
        for (id, control) in self.lock_inflight().iter() {
            match held.get(id) {
                None => control.interrupt(Interrupt::LeaseLost),
                Some(true) => control.interrupt(Interrupt::Paused),
                Some(false) if now > control.deadline_ms => control.interrupt(Interrupt::Timeout),
                Some(false) => {}
            }
        }
        Ok(())
    }
}
