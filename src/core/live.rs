//! The work that runs inside an interactive process (the console): a coordinator, so queued
//! tasks run while the operator watches, and the audit watcher, so changes made by other
//! processes show up. Both publish on the core handle's event broadcast.
//!
//! A headless `keel run` on the same workspace is safe alongside: claims are atomic and
//! leases say who runs what, so no task runs twice at once.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::core::clock::Clock;
use crate::core::coordinator::{Coordinator, Running, TaskExecutor, event_notifier};
use crate::core::error::Result;
use crate::core::watch::{self, AuditWatcher};
use crate::core::workspace::Workspace;
use crate::protocol::Event;

/// The executor an interactive process runs tasks with: the same one `keel run` uses (built-in
/// roles and the workspace's agent templates), with model output streamed to the console as
/// `Event::RunOutput`.
pub fn executor(
    ws: &Workspace,
    clock: Arc<dyn Clock>,
    events: &broadcast::Sender<Event>,
) -> Result<Arc<dyn TaskExecutor>> {
    let sink = crate::core::agents::service::event_sink(events.clone());
    Ok(crate::core::wiring::executor(ws, clock, sink)?)
}

/// A started coordinator and watcher; [`Live::stop`] ends both cleanly.
pub struct Live {
    running: Running,
    watcher: AuditWatcher,
}

impl Live {
    /// Starts a coordinator on `ws` whose changes are broadcast on `events`, and the audit
    /// watcher.
    pub fn start(
        ws: &Workspace,
        clock: Arc<dyn Clock>,
        events: &broadcast::Sender<Event>,
    ) -> Result<Self> {
        let executor = executor(ws, clock.clone(), events)?;
        Self::start_with(ws, clock, events, executor)
    }

    /// [`Live::start`] with another executor (tests).
    pub fn start_with(
        ws: &Workspace,
        clock: Arc<dyn Clock>,
        events: &broadcast::Sender<Event>,
        executor: Arc<dyn TaskExecutor>,
    ) -> Result<Self> {
        let notifier = event_notifier(events.clone());
        let coordinator =
            Coordinator::for_workspace(ws, clock.clone(), executor)?.configure(|env| {
                env.notifier = Some(notifier);
            });
        tracing::info!(owner = %coordinator.env.owner, "console: coordinator started");
        let watcher = AuditWatcher::start(&ws.db_path(), events.clone(), watch::DEFAULT_INTERVAL)?;
        let running = Arc::new(coordinator).start()?;
        crate::core::memory::check::reconcile_in_background(ws, clock);
        Ok(Live { running, watcher })
    }

    /// This process's lease owner id (tests look for it in the tasks table).
    #[must_use]
    pub fn owner(&self) -> &str {
        &self.running.coordinator().env.owner
    }

    /// Stops claiming, interrupts in-flight runs (their tasks go back to the queue with
    /// their completed steps kept, leases released) and stops the watcher.
    pub fn stop(self) {
        self.watcher.stop();
        self.running.stop();
        tracing::info!("console: coordinator stopped; leases released");
    }
}
