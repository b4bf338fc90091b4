//! The MCP client: external tools from Model Context Protocol servers (rmcp, the official
//! SDK), over stdio (a child process) or Streamable HTTP.
//!
//! - [`config`]: `[mcp.servers.NAME]` in config.toml.
//! - [`connect`]: dialling or spawning ([`stdio`]) a server and the MCP handshake.
//! - [`server`]: one supervised server: lazy start, crash detection, restart with backoff.
//! - [`tools`]: the cached tool list with checked schemas, and `mcp:SERVER/TOOL` patterns.
//! - [`call`]: [`call::call_tool`], the client's send (checks, `tools/call`, bounds).
//! - [`connector`]: MCP tools as a connector of the effects ledger; the only caller of
//!   `call_tool` in keel, so every MCP call passes the policy gate and the ledger.
//! - [`operator`]: `keel mcp call`, the operator's own call through the same pipeline.
//! - [`manager`]: the servers of a workspace on their own runtime, with a blocking API.
//! - [`offers`]: a role's `mcp:` entries as tools offered to its model, and their calls.
//! - [`serve_profile`]: `[mcp.serve]`, what clients of `keel mcp serve` may touch.
//!
//! Every error names the server it came from.

pub mod call;
pub mod config;
pub mod connect;
pub mod connector;
pub mod manager;
pub mod offers;
pub mod operator;
pub mod remember;
pub mod serve_profile;
pub mod server;
pub mod stdio;
pub mod tools;

pub use call::{McpCall, McpOutcome, call_tool};
pub use config::{McpConfig, ServerConfig};
pub use connector::McpConnector;
pub use manager::Manager;
pub use tools::{McpToolPattern, ToolInfo};

/// What went wrong with an MCP server. Each variant names the server.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum McpError {
    #[error("MCP server {0:?} is not configured (add [mcp.servers.{0}] to config.toml)")]
    Unknown(String),
    #[error("MCP server {server:?} could not start: {message}")]
    Start { server: String, message: String },
    #[error("MCP server {server:?} stopped: {message}")]
    Crashed { server: String, message: String },
    #[error(
        "MCP server {server:?} crashed {crashes} time(s) in a row; next start in {wait_ms} ms (last: {last})"
    )]
    BackingOff {
        server: String,
        crashes: u32,
        wait_ms: u64,
        last: String,
    },
    #[error(
        "MCP server {server:?}: {tool} did not answer within {secs} s (the call was cancelled)"
    )]
    Timeout {
        server: String,
        tool: String,
        secs: f64,
    },
    #[error("MCP server {server:?} has no tool {tool:?} (it has: {available})")]
    NoTool {
        server: String,
        tool: String,
        available: String,
    },
    #[error(
        "MCP server {server:?}: tool {tool:?} has an input schema that is not valid JSON Schema: {message}"
    )]
    BadSchema {
        server: String,
        tool: String,
        message: String,
    },
    #[error(
        "MCP server {server:?}: {tool} is not marked read-only, and a run outside the task queue has no approval gate, so it reaches only read-only MCP tools; submit the task to the queue, or call the tool by hand with `keel mcp call`"
    )]
    NotReadOnly { server: String, tool: String },
    #[error("MCP server {server:?}: bad arguments for {tool}: {message}")]
    BadArguments {
        server: String,
        tool: String,
        message: String,
    },
    #[error(
        "MCP server {server:?}: the result of {tool} is {bytes} bytes, over the server's max_result_bytes ({limit}); ask for less"
    )]
    TooLarge {
        server: String,
        tool: String,
        bytes: usize,
        limit: usize,
    },
    #[error("MCP server {server:?}: {message}")]
    Protocol { server: String, message: String },
}

impl McpError {
    /// The server the error is about.
    #[must_use]
    pub fn server(&self) -> &str {
        match self {
            McpError::Unknown(server)
            | McpError::Start { server, .. }
            | McpError::Crashed { server, .. }
            | McpError::BackingOff { server, .. }
            | McpError::Timeout { server, .. }
            | McpError::NoTool { server, .. }
            | McpError::BadSchema { server, .. }
            | McpError::BadArguments { server, .. }
            | McpError::NotReadOnly { server, .. }
            | McpError::TooLarge { server, .. }
            | McpError::Protocol { server, .. } => server,
        }
    }
}
