//! Cross-process change detection. Another process on the same workspace (a headless
//! `keel run`, a CLI command) raises no events in this one, but every change it makes
//! appends to the audit log. A dedicated thread polls the newest audit sequence number
//! (`max(seq)` on the integer primary key: one b-tree lookup) and broadcasts
//! `Event::Changed { subject: "audit", action: "audit.moved" }` when it moves, so clients
//! refresh what they show. Idle cost: one tiny read query per interval.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::broadcast;

use crate::core::error::{Error, Result};
use crate::core::store::Store;
use crate::protocol::Event;

/// How often the watcher looks at the audit log.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);

/// The action of the event the watcher sends.
pub const MOVED: &str = "audit.moved";

/// The newest audit sequence number (0 for an empty log).
pub fn newest_seq(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT coalesce(max(seq), 0) FROM audit", [], |r| r.get(0))?)
}

/// A running watcher; stops (and joins its thread) on [`AuditWatcher::stop`] or drop.
pub struct AuditWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AuditWatcher {
    /// Starts watching the database at `db_path`; events go to `events`.
    pub fn start(
        db_path: &Path,
        events: broadcast::Sender<Event>,
        interval: Duration,
    ) -> Result<Self> {
        let store = Store::open_read_only(db_path)?;
        let mut last = newest_seq(store.conn())?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("keel-audit-watch".into())
            .spawn(move || {
                while sleep_unless_stopped(&stopping, interval) {
                    match newest_seq(store.conn()) {
                        Ok(seq) if seq != last => {
                            last = seq;
                            let _ = events.send(Event::Changed {
                                subject: "audit".into(),
                                action: MOVED.into(),
                            });
                        }
                        Ok(_) => {}
                        // A busy or briefly locked database: try again next time.
                        Err(e) => tracing::debug!(error = %e, "audit watcher: read failed"),
                    }
                }
            })
            .map_err(|e| Error::failed("cannot start the audit watcher", e))?;
        Ok(AuditWatcher {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (at most one sleep slice).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AuditWatcher {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Sleeps `total` in short slices so that a stop request is seen quickly; false once
/// stopped.
fn sleep_unless_stopped(stop: &AtomicBool, total: Duration) -> bool {
    let slice = Duration::from_millis(50);
    let mut left = total;
    while !left.is_zero() {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        let nap = left.min(slice);
        std::thread::sleep(nap);
        left -= nap;
    }
    !stop.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::audit::{self, Actor};
    use crate::core::workspace::Workspace;
    use serde_json::json;

    #[test]
    fn a_write_from_another_connection_raises_one_changed_event() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::init(dir.path()).unwrap();
        let (tx, mut rx) = broadcast::channel(16);
        let watcher = AuditWatcher::start(&ws.db_path(), tx, Duration::from_millis(20)).unwrap();
        // Another connection stands in for another process.
        let mut other = ws.store().unwrap();
        other
            .write(|t| audit::append(t, 1, &Actor::Operator, "test.poke", "x/1", &json!({})))
            .unwrap();
        let event = rx.blocking_recv().unwrap();
        assert_eq!(
            event,
            Event::Changed {
                subject: "audit".into(),
                action: MOVED.into()
            }
        );
        // Nothing moved since: no further event before the watcher stops.
        watcher.stop();
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Closed | broadcast::error::TryRecvError::Empty)
        ));
    }
}
