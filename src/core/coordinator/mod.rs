//! The coordinator: claims due tasks under leases, runs them on worker threads through a
//! [`TaskExecutor`], heartbeats their leases, enforces timeouts and concurrency limits,
//! retries with backoff, escalates, and keeps the queue moving (expired leases, finished
//! children, timers, schedules, blackboard subscriptions).
//!
//! Any number of processes (the console and a headless `keel run`) may run coordinators on
//! one workspace: claims are atomic and leases say who runs what.

pub mod builtin;
pub mod executor;
pub mod finish;
pub mod lease;
pub mod maintenance;
pub mod retry;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use executor::{Interrupt, Outcome, RunControl, RunError, StepContext, TaskExecutor};

use crate::core::clock::Clock;
use crate::core::error::{Error, Result};
use crate::core::queue::{RoleCatalog, Task};
use crate::core::scheduler::SchedulerSettings;
use crate::core::store::{Durability, Store};
use crate::core::workspace::Workspace;

/// `[orchestrator]` in config.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrchestratorConfig {
    /// Worker threads in this process.
    pub workers: usize,
    /// Running tasks across every process on the workspace.
    pub max_running: usize,
    /// Running tasks per role unless `role_limits` says otherwise.
    pub default_role_limit: usize,
    pub role_limits: BTreeMap<String, usize>,
    /// How long a claim lasts without a heartbeat.
    pub lease_ms: i64,
    /// How often idle workers look for due tasks.
    pub poll_ms: u64,
    /// Tasks a worker claims per transaction.
    pub claim_batch: usize,
    pub backoff_base_ms: i64,
    pub backoff_max_ms: i64,
    /// Spread of each backoff (0.2 = ±20%).
    pub jitter: f64,
    /// Seeds the jitter, so retries are reproducible.
    pub seed: u64,
    /// A task whose runs keep dying with their process (a poison pill) is escalated after
    /// this many lost leases instead of taking the daemon down forever.
    pub max_lease_losses: i64,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        OrchestratorConfig {
            workers: 2,
            max_running: 8,
            default_role_limit: 4,
            role_limits: BTreeMap::new(),
            lease_ms: 30_000,
            poll_ms: 250,
            claim_batch: 4,
            backoff_base_ms: 5_000,
            backoff_max_ms: 600_000,
            jitter: 0.2,
            seed: 0,
            max_lease_losses: 20,
        }
    }
}

impl OrchestratorConfig {
    #[must_use]
    pub fn role_limit(&self, role: &str) -> usize {
        self.role_limits
            .get(role)
            .copied()
            .unwrap_or(self.default_role_limit)
    }
}

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

    /// Starts the worker threads and the heartbeat/maintenance thread.
    pub fn start(self: Arc<Self>) -> Result<Running> {
        let mut threads = Vec::new();
        for n in 0..self.env.config.workers.max(1) {
            let me = Arc::clone(&self);
            threads.push(spawn(format!("keel-worker-{n}"), move || me.worker_loop())?);
        }
        let me = Arc::clone(&self);
        threads.push(spawn("keel-heartbeat".into(), move || me.heartbeat_loop())?);
        Ok(Running {
            coordinator: self,
            threads,
        })
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn idle(&self, ms: u64) {
        let mut left = ms;
        while left > 0 && !self.stopping() {
            let step = left.min(25);
            std::thread::sleep(Duration::from_millis(step));
            left -= step;
        }
    }

    /// Opens the store, retrying with backoff until it opens or the coordinator stops: a
    /// full disk at start-up must not leave a daemon that runs but never works again.
    fn open_store_retrying(&self, thread: &str) -> Option<Store> {
        let mut delay = self.env.config.poll_ms.clamp(20, 1_000);
        let mut last_error = String::new();
        while !self.stopping() {
            match self.open_store() {
                Ok(store) => {
                    if !last_error.is_empty() {
                        tracing::info!(thread, "the store opened again");
                    }
                    return Some(store);
                }
                Err(e) => {
                    let message = e.to_string();
                    if message != last_error {
                        tracing::error!(thread, error = %message, "cannot open the store; retrying");
                        last_error = message;
                    }
                    self.idle(delay);
                    delay = (delay * 2).min(5_000);
                }
            }
        }
        None
    }

    fn worker_loop(&self) {
        let Some(mut store) = self.open_store_retrying("worker") else {
            return;
        };
        while !self.stopping() {
            match self.claim(&mut store, self.env.config.claim_batch.max(1)) {
                Ok(tasks) if tasks.is_empty() => self.idle(self.env.config.poll_ms),
                Ok(tasks) => {
                    for task in tasks {
                        if let Err(e) = self.execute(&mut store, &task) {
                            tracing::error!(task = %task.id, error = %e, "recording a run failed");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming failed");
                    self.idle(self.env.config.poll_ms);
                }
            }
        }
    }

    fn heartbeat_loop(&self) {
        let Some(mut store) = self.open_store_retrying("heartbeat") else {
            return;
        };
        // Leases are renewed three times per lease; deadlines and housekeeping run every tick.
        let renew_every = Duration::from_millis(
            u64::try_from(self.env.config.lease_ms / 3)
                .unwrap_or(1_000)
                .max(10),
        );
        let tick = self.env.config.poll_ms.clamp(10, 250);
        let mut last_renewal: Option<std::time::Instant> = None;
        while !self.stopping() {
            if last_renewal.is_none_or(|t| t.elapsed() >= renew_every) {
                if let Err(e) = self.heartbeat(&mut store) {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
                last_renewal = Some(std::time::Instant::now());
            }
            self.check_deadlines();
            if let Err(e) = self.maintain(&mut store) {
                tracing::warn!(error = %e, "maintenance failed");
            }
            self.idle(tick);
        }
    }
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .map_err(|e| Error::failed("cannot start a coordinator thread", e))
}

/// A started coordinator.
pub struct Running {
    coordinator: Arc<Coordinator>,
    threads: Vec<JoinHandle<()>>,
}

impl Running {
    #[must_use]
    pub fn coordinator(&self) -> &Arc<Coordinator> {
        &self.coordinator
    }

    /// Stops claiming, interrupts in-flight runs at their next step (their tasks go back to
    /// the queue, completed steps kept) and waits for every thread.
    pub fn stop(self) {
        self.coordinator.stopping.store(true, Ordering::SeqCst);
        for control in self.coordinator.lock_inflight().values() {
            control.interrupt(Interrupt::Shutdown);
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}
