//! One supervised server. It starts on first use; a call that finds it gone (the child
//! exited, the stream closed) reports the crash, and the next use starts it again after a
//! backoff that grows with consecutive failures (the first restart is immediate, so one
//! crash costs one failed call). Every call has the server's timeout; a timed-out call is
//! cancelled (`notifications/cancelled`) and the server kept.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::ServiceError;
use rmcp::model::CallToolRequestParams;
use serde_json::{Map, Value};

use super::McpError;
use super::config::ServerConfig;
use super::connect::{Connection, connect};

/// Longest wait before another start after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_mins(1);

/// What the Health screen and `keel mcp list` show for a server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// `not started` | `starting` | `ready` | `crashed` | `failed`.
    pub state: String,
    /// The last error, the handshake's server name and protocol revision…
    pub detail: String,
    pub tools: usize,
    /// Starts after the first one.
    pub restarts: u32,
    pub pid: Option<u32>,
}

#[derive(Default)]
struct Slot {
    conn: Option<Arc<Connection>>,
    /// Consecutive failed starts and crashes (reset by a successful call).
    failures: u32,
    retry_at: Option<Instant>,
    last_error: String,
    starts: u32,
}

pub struct Server {
    pub name: String,
    pub cfg: ServerConfig,
    root: PathBuf,
    slot: tokio::sync::Mutex<Slot>,
    status: Mutex<Status>,
}

/// The wait before start number `failures + 1`: none after one failure, then 1 s, 2 s, 4 s…
#[must_use]
pub fn backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let exp = (failures - 2).min(10);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

impl Server {
    #[must_use]
    pub fn new(name: &str, cfg: ServerConfig, root: PathBuf) -> Self {
        Server {
            name: name.to_string(),
            cfg,
            root,
            slot: tokio::sync::Mutex::new(Slot::default()),
            status: Mutex::new(Status {
                state: "not started".into(),
                ..Status::default()
            }),
        }
    }

    #[must_use]
    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn set_status(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    /// The running connection, started (or restarted) if need be.
    pub async fn connection(&self) -> Result<Arc<Connection>, McpError> {
        let mut slot = self.slot.lock().await;
        if let Some(conn) = &slot.conn {
            if !conn.is_closed() {
                return Ok(conn.clone());
            }
            let message = format!("it exited{}", conn.stderr.suffix());
            self.crashed(&mut slot, &message);
        }
        if let Some(at) = slot.retry_at
            && let Some(wait) = at.checked_duration_since(Instant::now())
            && !wait.is_zero()
        {
            return Err(McpError::BackingOff {
                server: self.name.clone(),
                crashes: slot.failures,
                wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                last: slot.last_error.clone(),
            });
        }
        self.set_status(|s| s.state = "starting".into());
        match connect(&self.name, &self.cfg, &self.root).await {
            Ok(conn) => {
                let conn = Arc::new(conn);
                slot.starts += 1;
                slot.retry_at = None;
                let restarts = slot.starts - 1;
                if restarts > 0 {
                    tracing::warn!(target: "keel::mcp", server = %self.name, restarts, "MCP server restarted");
                }
                self.set_status(|s| {
                    *s = Status {
                        state: "ready".into(),
                        detail: format!("{} (protocol {})", conn.server_info, conn.protocol),
                        tools: conn.tools.len(),
                        restarts,
                        pid: conn.pid,
                    };
                });
                slot.conn = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                slot.failures += 1;
                slot.retry_at = Some(Instant::now() + backoff(slot.failures));
                slot.last_error = e.to_string();
                tracing::warn!(target: "keel::mcp", server = %self.name, "MCP server failed to start: {e}");
                self.set_status(|s| {
                    s.state = "failed".into();
                    s.detail = e.to_string();
                    s.pid = None;
                });
                Err(e)
            }
        }
    }

    fn crashed(&self, slot: &mut Slot, message: &str) {
        slot.conn = None;
        slot.failures += 1;
        slot.retry_at = Some(Instant::now() + backoff(slot.failures));
        message.clone_into(&mut slot.last_error);
        tracing::warn!(target: "keel::mcp", server = %self.name, "MCP server crashed: {message}");
        self.set_status(|s| {
            s.state = "crashed".into();
            s.detail = format!("{message}; restarts on next use");
            s.pid = None;
        });
    }

    /// Calls `tool` with the server's timeout; returns the result as rmcp sends it (JSON).
    pub async fn call(&self, tool: &str, args: Map<String, Value>) -> Result<Value, McpError> {
        let conn = self.connection().await?;
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(args);
        let limit = Duration::from_secs_f64(self.cfg.timeout_secs);
        let garbled = conn.bad_lines.count();
        // Dropping the request on timeout sends `notifications/cancelled` to the server.
        let answer = tokio::time::timeout(limit, conn.service.peer().call_tool(params)).await;
        match answer {
            // rmcp drops lines it cannot read: a garbled answer looks like none at all.
            Err(_) if conn.bad_lines.count() > garbled => Err(McpError::Protocol {
                server: self.name.clone(),
                message: format!(
                    "it wrote output that is not UTF-8 while {tool} ran, so its answer could not be read (nothing within {} s)",
                    self.cfg.timeout_secs
                ),
            }),
            Err(_) => Err(McpError::Timeout {
                server: self.name.clone(),
                tool: tool.to_string(),
                secs: self.cfg.timeout_secs,
            }),
            Ok(Ok(result)) => {
                self.slot.lock().await.failures = 0;
                serde_json::to_value(result).map_err(|e| McpError::Protocol {
                    server: self.name.clone(),
                    message: format!("the result of {tool} does not serialise: {e}"),
                })
            }
            Ok(Err(ServiceError::McpError(e))) => Err(McpError::Protocol {
                server: self.name.clone(),
                message: format!("{tool} failed: {} (code {})", e.message, e.code.0),
            }),
            Ok(Err(e)) => {
                // Give the transport a moment to notice an exit that raced the error.
                tokio::time::sleep(Duration::from_millis(50)).await;
                if matches!(e, ServiceError::TransportClosed) || conn.is_closed() {
                    let message = format!(
                        "it exited during the call to {tool} ({e}){}",
                        conn.stderr.suffix()
                    );
                    let mut slot = self.slot.lock().await;
                    if slot.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn)) {
                        self.crashed(&mut slot, &message);
                    }
                    return Err(McpError::Crashed {
                        server: self.name.clone(),
                        message: format!("{message}; the next call restarts it"),
                    });
                }
                Err(McpError::Protocol {
                    server: self.name.clone(),
                    message: format!("{tool}: {e}"),
                })
            }
        }
    }

    /// Stops the server if it runs (the next use starts it again).
    pub async fn stop(&self) {
        let conn = self.slot.lock().await.conn.take();
        if let Some(conn) = conn {
            if let Ok(c) = Arc::try_unwrap(conn) {
                let _ = c.service.cancel().await;
            }
            self.set_status(|s| {
                s.state = "not started".into();
                s.pid = None;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
