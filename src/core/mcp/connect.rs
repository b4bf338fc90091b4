//! Starting one server: spawn the child (stdio) or dial the URL (Streamable HTTP), do the MCP
//! handshake and list the tools, all within the server's startup timeout. A stdio child gets
//! a clean environment (PATH, HOME, the locale and the variables its `env` names) and its
//! stderr is kept (last lines) so that a server that exits at once can say why.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::process::Child;

use super::McpError;
use super::config::{ServerConfig, resolve_vars};
use super::stdio::BadLines;
use super::tools::ToolInfo;

const STDERR_LINES: usize = 20;

/// keel as an MCP client (it offers no sampling, roots or elicitation).
#[derive(Debug, Clone, Default)]
pub struct KeelClient;

impl ClientHandler for KeelClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("keel", env!("CARGO_PKG_VERSION")),
        )
    }
}

/// The last lines a child wrote to stderr.
#[derive(Debug, Default, Clone)]
pub struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    pub(crate) fn push(&self, line: &str) {
        if let Ok(mut q) = self.0.lock() {
            if q.len() == STDERR_LINES {
                q.pop_front();
            }
            q.push_back(line.chars().take(400).collect());
        }
    }

    /// `; its stderr said: …` (redacted), or nothing when it said nothing.
    #[must_use]
    pub fn suffix(&self) -> String {
        let lines: Vec<String> = self
            .0
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default();
        let text = lines.join(" | ");
        if text.trim().is_empty() {
            String::new()
        } else {
            format!(
                "; its stderr said: {}",
                crate::core::redact::redact_str(text.trim())
            )
        }
    }
}

/// A running, initialised server.
pub struct Connection {
    pub service: RunningService<RoleClient, KeelClient>,
    pub tools: Vec<ToolInfo>,
    pub stderr: StderrTail,
    pub started: Instant,
    /// The protocol revision and the server's name and version from the handshake.
    pub protocol: String,
    pub server_info: String,
    /// The child's process id (stdio servers).
    pub pid: Option<u32>,
    /// Lines of the child's stdout that were not UTF-8 (stdio servers).
    pub bad_lines: BadLines,
    /// The child, killed when the connection is dropped.
    _child: Option<Child>,
}

impl Connection {
    /// Whether the transport has gone (the child exited, the stream closed).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.service.is_closed() || self.service.peer().is_transport_closed()
    }
}

/// Starts `name` and lists its tools, within `startup_timeout_secs`.
pub async fn connect(name: &str, cfg: &ServerConfig, root: &Path) -> Result<Connection, McpError> {
    let stderr = StderrTail::default();
    let limit = Duration::from_secs_f64(cfg.startup_timeout_secs);
    let start = async {
        let (service, child, bad_lines) = if let Some(url) = &cfg.url {
            (dial(name, cfg, url).await?, None, BadLines::default())
        } else {
            let (service, child, bad) = spawn(name, cfg, root, &stderr).await?;
            (service, Some(child), bad)
        };
        let listed = service
            .peer()
            .list_all_tools()
            .await
            .map_err(|e| McpError::Start {
                server: name.to_string(),
                message: format!("listing its tools failed: {e}{}", stderr.suffix()),
            })?;
        Ok::<_, McpError>((service, listed, child, bad_lines))
    };
    let (service, listed, child, bad_lines) = match tokio::time::timeout(limit, start).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(McpError::Start {
                server: name.to_string(),
                message: format!(
                    "no MCP handshake and tool list within {} s{}",
                    cfg.startup_timeout_secs,
                    stderr.suffix()
                ),
            });
        }
    };
    let info = service
        .peer_info()
        .and_then(|i| serde_json::to_value(&*i).ok())
        .unwrap_or(Value::Null);
    let protocol = info["protocolVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // A revision the SDK does not know may mean anything: disconnect, as the spec asks.
    let known = rmcp::model::ProtocolVersion::KNOWN_VERSIONS;
    if !known.iter().any(|v| v.as_str() == protocol) {
        let names: Vec<&str> = known
            .iter()
            .map(rmcp::model::ProtocolVersion::as_str)
            .collect();
        return Err(McpError::Start {
            server: name.to_string(),
            message: format!(
                "it answered the handshake with MCP revision {protocol:?}, which keel does not speak (it speaks {}); update the server or keel",
                names.join(", ")
            ),
        });
    }
    let tools = listed
        .iter()
        .filter_map(|t| serde_json::to_value(t).ok())
        .map(|t| ToolInfo::from_listed(name, &t))
        .collect();
    Ok(Connection {
        service,
        tools,
        stderr,
        started: Instant::now(),
        protocol,
        server_info: format!(
            "{} {}",
            info["serverInfo"]["name"].as_str().unwrap_or("?"),
            info["serverInfo"]["version"].as_str().unwrap_or("")
        )
        .trim()
        .to_string(),
        pid: child.as_ref().and_then(Child::id),
        bad_lines,
        _child: child,
    })
}

async fn spawn(
    name: &str,
    cfg: &ServerConfig,
    root: &Path,
    tail: &StderrTail,
) -> Result<(RunningService<RoleClient, KeelClient>, Child, BadLines), McpError> {
    let spawned = super::stdio::spawn(name, cfg, root, tail)?;
    match KeelClient.serve((spawned.stdout, spawned.stdin)).await {
        Ok(service) => Ok((service, spawned.child, spawned.bad_lines)),
        Err(e) => {
            // Let the stderr reader catch up: what a dying server said is the useful part.
            tokio::time::sleep(Duration::from_millis(150)).await;
            Err(McpError::Start {
                server: name.to_string(),
                message: format!(
                    "it exited or broke off during the MCP handshake ({e}){}",
                    tail.suffix()
                ),
            })
        }
    }
}

async fn dial(
    name: &str,
    cfg: &ServerConfig,
    url: &str,
) -> Result<RunningService<RoleClient, KeelClient>, McpError> {
    use http::{HeaderName, HeaderValue};
    use rmcp::transport::StreamableHttpClientTransport;
    // rmcp's reqwest has no crypto provider of its own; use the ring one keel already has.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut headers = HashMap::new();
    for (key, value) in resolve_vars(name, "header", &cfg.headers)? {
        let bad = |what: &str| McpError::Start {
            server: name.to_string(),
            message: format!("header {key:?}: {what}"),
        };
        let k = HeaderName::try_from(key.as_str()).map_err(|_| bad("not a valid header name"))?;
        // The value is a secret: the error never repeats it.
        let v = HeaderValue::try_from(value.as_str())
            .map_err(|_| bad("its variable's value is not a valid header value"))?;
        headers.insert(k, v);
    }
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string())
        .custom_headers(headers)
        .max_json_response_size(cfg.max_result_bytes.saturating_mul(2).max(1 << 16));
    let transport = StreamableHttpClientTransport::from_config(config);
    KeelClient
        .serve(transport)
        .await
        .map_err(|e| McpError::Start {
            server: name.to_string(),
            message: format!("the MCP handshake with {url} failed: {e}"),
        })
}
