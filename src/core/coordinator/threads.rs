//! The coordinator's threads: workers that claim and run tasks, and one heartbeat thread
//! that renews leases, enforces deadlines and runs housekeeping; and stopping them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Coordinator, Interrupt};
use crate::core::error::{Error, Result};
use crate::core::store::Store;

impl Coordinator {
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
