//! The core handle: the one door clients (console, CLI, tests) drive the core through.
//!
//! The core runs on its own thread with its own store connection. A client sends an [`Op`]
//! and gets its typed [`Answer`] on a oneshot channel; every client can subscribe to the
//! [`Event`] broadcast. Long work (agent runs) happens on the orchestrator's workers, never
//! on this thread, so the console stays responsive.
//!
//! Every entry point lives here, one file per concern, and hands domain modules only the
//! store, clock and definitions they need (they never see [`CoreContext`]):
//! - [`dispatch`] — maps each op to its handler.
//! - [`approvals`], [`queue`], [`objects`], [`effects`] — ops and the queries of their domain.
//! - [`client`] — requests of MCP clients (`keel mcp serve`), checked against `[mcp.serve]`.
//! - [`memory`] — memory search with provenance; [`memory_ops`] — memory's writes.
//! - [`outcomes`] — analytics imports and the offline ranking of ideas.
//! - [`queries`] — the other queries (audit, runs, memory used, blackboard, metrics, health).
//! - [`context`] — the thread's state, its cached definitions ([`definitions`]) and counters.

mod approvals;
pub mod client;
mod context;
mod definitions;
mod dispatch;
mod effects;
mod mcp;
mod memory;
mod memory_ops;
mod objects;
mod outcomes;
mod queries;
mod queue;

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::core::clock::{Clock, SystemClock};
use crate::core::error::{Error, Result};
use crate::core::workspace::Workspace;
use crate::protocol::{Answer, Event, Op};

pub use context::{CoreContext, Counters, Served};

/// Capacity of the event broadcast; a slow subscriber that falls behind gets `Lagged` and
/// simply refreshes what it shows.
const EVENT_CAPACITY: usize = 1024;

struct Request {
    op: Op,
    reply: oneshot::Sender<Result<Answer>>,
}

/// A cloneable handle to a running core.
#[derive(Clone)]
pub struct CoreHandle {
    requests: mpsc::UnboundedSender<Request>,
    events: broadcast::Sender<Event>,
    counters: Arc<Counters>,
    thread: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for CoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreHandle").finish_non_exhaustive()
    }
}

impl CoreHandle {
    /// Starts the core on `workspace` with the system clock.
    pub fn start(workspace: Workspace) -> Result<Self> {
        Self::start_with_clock(workspace, Arc::new(SystemClock))
    }

    pub fn start_with_clock(workspace: Workspace, clock: Arc<dyn Clock>) -> Result<Self> {
        let store = workspace.store()?;
        let (requests, mut inbox) = mpsc::unbounded_channel::<Request>();
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let counters = Arc::new(Counters::default());
        let served = Arc::clone(&counters);
        let mut ctx = CoreContext::new(workspace, store, clock, events.clone());
        let thread = std::thread::Builder::new()
            .name("keel-core".into())
            .spawn(move || {
                while let Some(Request { op, reply }) = inbox.blocking_recv() {
                    let shutdown = matches!(op, Op::Shutdown);
                    let query = matches!(op, Op::Query { .. });
                    let result = dispatch::dispatch(&mut ctx, op);
                    served.count(query, ctx.store.writes());
                    let _ = reply.send(result);
                    if shutdown {
                        let _ = ctx.events.send(Event::ShuttingDown);
                        break;
                    }
                }
            })
            .map_err(|e| Error::Other(format!("cannot start the core thread: {e}")))?;
        Ok(CoreHandle {
            requests,
            events,
            counters,
            thread: Arc::new(std::sync::Mutex::new(Some(thread))),
        })
    }

    /// Subscribes to core events.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The sender side of the event broadcast, for in-process producers (the console's
    /// coordinator and audit watcher) that publish events to every subscriber.
    #[must_use]
    pub fn events_sender(&self) -> broadcast::Sender<Event> {
        self.events.clone()
    }

    /// What the core thread has served so far: queries, other ops and write transactions.
    #[must_use]
    pub fn served(&self) -> Served {
        self.counters.read()
    }

    /// Sends `op` and waits for its answer.
    pub async fn request(&self, op: Op) -> Result<Answer> {
        self.enqueue(op)?
            .await
            .map_err(|_| Error::Other("the core stopped before answering".into()))?
    }

    /// Sends `op` and blocks this (non-async) thread for the answer. For the CLI and tests.
    pub fn request_blocking(&self, op: Op) -> Result<Answer> {
        self.enqueue(op)?
            .blocking_recv()
            .map_err(|_| Error::Other("the core stopped before answering".into()))?
    }

    fn enqueue(&self, op: Op) -> Result<oneshot::Receiver<Result<Answer>>> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request { op, reply })
            .map_err(|_| Error::Other("the core has stopped".into()))?;
        Ok(rx)
    }

    /// Asks the core to stop and waits for its thread.
    pub fn shutdown(&self) {
        let _ = self.request_blocking(Op::Shutdown);
        if let Ok(mut guard) = self.thread.lock()
            && let Some(t) = guard.take()
        {
            let _ = t.join();
        }
    }
}
