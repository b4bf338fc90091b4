//! `keel mcp serve`: keel as an MCP server, one more client of the core handle. An MCP-capable
//! agent (a coding agent, a desktop assistant) searches memory, reads objects and their
//! history, lists and submits tasks, proposes drafts and sees pending approvals; the core
//! checks each request against `[mcp.serve]`, stamps it `mcp:CLIENT` and audits it, and
//! never lets a client decide an approval.
//!
//! - [`tools`]: the offered tools and how a call becomes one core op.
//! - [`handler`]: the rmcp server handler.
//! - [`http`]: Streamable HTTP on loopback behind a bearer token ([`token`]).

pub mod handler;
pub mod http;
pub mod token;
pub mod tools;

use anyhow::Context as _;
use rmcp::ServiceExt as _;

use crate::core::handle::CoreHandle;
use handler::KeelServer;

/// Serves one client over stdin/stdout until it disconnects.
pub async fn serve_stdio(handle: CoreHandle) -> anyhow::Result<()> {
    let running = KeelServer::new(handle)
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP handshake on stdin/stdout failed")?;
    running
        .waiting()
        .await
        .context("the MCP session on stdin/stdout failed")?;
    Ok(())
}
