//! The MCP servers of a workspace. They live on a runtime of their own (one worker thread),
//! so they outlive any one agent execution's runtime and can be reached from blocking code
//! (the CLI, an agent's tool step) without nesting runtimes. Every blocking wait is bounded:
//! a run never hangs on a server.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

use super::McpError;
use super::config::McpConfig;
use super::server::{Server, Status};
use super::tools::ToolInfo;
use crate::protocol::McpServerHealth;

pub struct Manager {
    rt: Option<tokio::runtime::Runtime>,
    servers: BTreeMap<String, Arc<Server>>,
    config: McpConfig,
    /// The workspace the servers belong to (its policy judges their calls).
    root: PathBuf,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("servers", &self.servers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        // Safe from inside another runtime too; children die with their handles.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

type Managers = Mutex<BTreeMap<PathBuf, Arc<Manager>>>;
static MANAGERS: LazyLock<Managers> = LazyLock::new(|| Mutex::new(BTreeMap::new()));

impl Manager {
    /// Servers of `config`, relative paths resolved against `root`. Nothing starts yet.
    pub fn new(config: &McpConfig, root: &Path) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("keel-mcp")
            .enable_all()
            .build()?;
        let servers = config
            .servers
            .iter()
            .map(|(name, cfg)| {
                let server = Server::new(name, cfg.clone(), root.to_path_buf());
                (name.clone(), Arc::new(server))
            })
            .collect();
        Ok(Manager {
            rt: Some(rt),
            servers,
            config: config.clone(),
            root: root.to_path_buf(),
        })
    }

    /// The process's manager for the workspace at `root` (made again when its `[mcp]`
    /// configuration changed), shared by the CLI, agent runs and the health query.
    pub fn shared(config: &McpConfig, root: &Path) -> std::io::Result<Arc<Manager>> {
        let mut all = MANAGERS
            .lock()
            .map_err(|_| std::io::Error::other("MCP registry lock poisoned"))?;
        if let Some(m) = all.get(root).filter(|m| &m.config == config) {
            return Ok(m.clone());
        }
        let m = Arc::new(Manager::new(config, root)?);
        all.insert(root.to_path_buf(), m.clone());
        Ok(m)
    }

    /// The shared manager of `root` if one was made (the health query never starts one).
    #[must_use]
    pub fn existing(root: &Path) -> Option<Arc<Manager>> {
        MANAGERS.lock().ok()?.get(root).cloned()
    }

    /// The workspace root the manager was made for.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn server(&self, name: &str) -> Result<&Arc<Server>, McpError> {
        self.servers
            .get(name)
            .ok_or_else(|| McpError::Unknown(name.to_string()))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.servers.keys().map(String::as_str)
    }

    /// Runs `fut` on the MCP runtime and waits for it, at most `limit`.
    fn block<T: Send + 'static>(
        &self,
        server: &str,
        limit: Duration,
        fut: impl Future<Output = Result<T, McpError>> + Send + 'static,
    ) -> Result<T, McpError> {
        let Some(rt) = &self.rt else {
            return Err(McpError::Protocol {
                server: server.to_string(),
                message: "the MCP runtime has stopped".into(),
            });
        };
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        // std's channel: waiting here is fine even on a thread that runs another runtime.
        rx.recv_timeout(limit).unwrap_or_else(|_| {
            Err(McpError::Protocol {
                server: server.to_string(),
                message: format!("no answer within {} s; giving up", limit.as_secs()),
            })
        })
    }

    /// The longest a blocking call on `server` may take: start, then call, then slack.
    fn limit(server: &Server) -> Duration {
        Duration::from_secs_f64(server.cfg.startup_timeout_secs + server.cfg.timeout_secs + 5.0)
    }

    /// The server's tools (starting it if it is not running).
    pub fn tools(&self, name: &str) -> Result<Vec<ToolInfo>, McpError> {
        let server = self.server(name)?.clone();
        let limit = Self::limit(&server);
        self.block(name, limit, async move {
            Ok(server.connection().await?.tools.clone())
        })
    }

    /// One tool of the server, refused when missing or when its schema is unusable.
    pub fn tool(&self, name: &str, tool: &str) -> Result<ToolInfo, McpError> {
        let tools = self.tools(name)?;
        let Some(info) = tools.iter().find(|t| t.name == tool) else {
            return Err(McpError::NoTool {
                server: name.to_string(),
                tool: tool.to_string(),
                available: tools
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        if let Some(message) = &info.schema_error {
            return Err(McpError::BadSchema {
                server: name.to_string(),
                tool: tool.to_string(),
                message: message.clone(),
            });
        }
        Ok(info.clone())
    }

    /// Sends `tools/call`. Only [`super::call::call_tool`] calls this: it is the one path.
    pub(super) fn invoke(
        &self,
        name: &str,
        tool: &str,
        args: Map<String, Value>,
    ) -> Result<Value, McpError> {
        let server = self.server(name)?.clone();
        let limit = Self::limit(&server);
        let tool = tool.to_string();
        self.block(name, limit, async move { server.call(&tool, args).await })
    }

    /// Stops every running server (they start again on next use).
    pub fn stop_all(&self) {
        for (name, server) in &self.servers {
            let server = server.clone();
            let _ = self.block(name, Duration::from_secs(5), async move {
                server.stop().await;
                Ok(())
            });
        }
    }

    /// One row per configured server, as the Health query shows it.
    #[must_use]
    pub fn health(&self) -> Vec<McpServerHealth> {
        self.servers
            .values()
            .map(|s| row(&s.name, &s.cfg, &s.status()))
            .collect()
    }
}

/// The shared manager of a workspace that configures MCP servers (None when it has none,
/// or when the MCP runtime cannot start: that is logged, and runs go on without MCP).
#[must_use]
pub fn for_workspace(ws: &crate::core::workspace::Workspace) -> Option<Arc<Manager>> {
    if ws.config.mcp.servers.is_empty() {
        return None;
    }
    Manager::shared(&ws.config.mcp, &ws.root)
        .inspect_err(|e| tracing::warn!(target: "keel::mcp", "MCP runtime did not start: {e}"))
        .ok()
}

/// The Health rows of `config`, with live state when this process has started servers.
#[must_use]
pub fn health(config: &McpConfig, root: &Path) -> Vec<McpServerHealth> {
    match Manager::existing(root).filter(|m| &m.config == config) {
        Some(m) => m.health(),
        None => config
            .servers
            .iter()
            .map(|(name, cfg)| {
                let status = Status {
                    state: "not started".into(),
                    ..Status::default()
                };
                row(name, cfg, &status)
            })
            .collect(),
    }
}

fn row(name: &str, cfg: &super::ServerConfig, s: &Status) -> McpServerHealth {
    McpServerHealth {
        name: name.to_string(),
        transport: cfg.transport().to_string(),
        target: cfg.target(),
        state: s.state.clone(),
        detail: s.detail.clone(),
        tools: s.tools,
        restarts: s.restarts,
    }
}
