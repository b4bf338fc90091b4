//! What the core thread owns while it serves requests, and the counters that say what a
//! request cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::broadcast;

use super::definitions::Definitions;
use crate::core::agents::template::Templates;
use crate::core::clock::Clock;
use crate::core::error::Result;
use crate::core::memory::Memory;
use crate::core::objects::Kinds;
use crate::core::store::Store;
use crate::core::workspace::Workspace;
use crate::protocol::Event;

/// The core thread's state. Handlers under `core::handle` take what they need from it and
/// hand domain modules only their store, clock and definitions.
pub struct CoreContext {
    pub workspace: Workspace,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub events: broadcast::Sender<Event>,
    definitions: Definitions,
    /// Opened on the first memory search (it loads the embedding model).
    memory: Option<Memory>,
}

/// Requests served so far, shared with every clone of the handle (for tests and benches
/// that measure what an operator action costs).
#[derive(Debug, Default)]
pub struct Counters {
    queries: AtomicU64,
    ops: AtomicU64,
    writes: AtomicU64,
}

/// A reading of [`Counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Served {
    /// `Op::Query` requests answered.
    pub queries: u64,
    /// Every other op.
    pub ops: u64,
    /// Write transactions committed by the core thread's store (agent runs write through
    /// their own connections and are not counted).
    pub writes: u64,
}

impl Counters {
    /// Counts one request, and the write transactions the store has committed in all.
    pub(super) fn count(&self, query: bool, writes: u64) {
        let counter = if query { &self.queries } else { &self.ops };
        counter.fetch_add(1, Ordering::Relaxed);
        self.writes.store(writes, Ordering::Relaxed);
    }

    pub(super) fn read(&self) -> Served {
        Served {
            queries: self.queries.load(Ordering::Relaxed),
            ops: self.ops.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }
}

impl CoreContext {
    pub(super) fn new(
        workspace: Workspace,
        store: Store,
        clock: Arc<dyn Clock>,
        events: broadcast::Sender<Event>,
    ) -> Self {
        CoreContext {
            definitions: Definitions::default(),
            memory: None,
            workspace,
            store,
            clock,
            events,
        }
    }

    /// Broadcasts a change notification (ignored when nobody listens).
    pub fn notify(&self, subject: &str, action: &str) {
        let _ = self.events.send(Event::Changed {
            subject: subject.to_string(),
            action: action.to_string(),
        });
    }

    /// The workspace's kinds: configured kinds plus each agent role's output kind.
    pub fn kinds(&mut self) -> Result<Arc<Kinds>> {
        self.definitions.kinds(&self.workspace)
    }

    /// The workspace's memory, opened on first use (a cheap clone of shared handles).
    pub fn memory(&mut self) -> Result<Memory> {
        if let Some(m) = &self.memory {
            return Ok(m.clone());
        }
        let m = Memory::open(&self.workspace, &mut self.store, self.clock.clone())?;
        self.memory = Some(m.clone());
        Ok(m)
    }

    /// The workspace's agent templates (shipped ones plus its own).
    pub fn templates(&mut self) -> Result<Arc<Templates>> {
        self.definitions.templates(&self.workspace)
    }
}
