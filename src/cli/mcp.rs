//! `keel mcp list|tools|call|serve`: the configured MCP servers, their tools, a call by hand,
//! and keel's own MCP server ([`crate::mcp_serve`]).
//! A call goes through the core handle: the workspace's policy (`--yes` approves a tool that
//! needs approval; a denial is final), the effects ledger and the audit log.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::core::handle::CoreHandle;
use crate::core::mcp::Manager;
use crate::core::workspace::Workspace;
use crate::protocol::{McpCalled, Op};

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// The servers in config.toml: how each is reached, whether it starts, how many tools.
    List {
        /// Do not start the servers (show the configuration only).
        #[arg(long)]
        no_start: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The tools of one server, with their input schemas (starts the server).
    Tools {
        /// The server's name in config.toml.
        server: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Serve the business to an MCP client (a coding agent, a desktop assistant) over
    /// stdin/stdout, or over Streamable HTTP on loopback with `--http`. What a client may
    /// touch is `[mcp.serve]` in config.toml; it can never decide an approval.
    Serve {
        /// Serve Streamable HTTP instead of stdio, on this loopback address (default:
        /// `[mcp.serve] http`, 127.0.0.1:8765; port 0 picks a free one). Clients send
        /// `Authorization: Bearer TOKEN`, the token in `[mcp.serve] token_file`.
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "ADDR")]
        http: Option<String>,
    },
    /// Call one tool by hand and print its result.
    Call {
        /// The server's name in config.toml.
        server: String,
        /// The tool's name, as `keel mcp tools SERVER` lists it.
        tool: String,
        /// The arguments, one JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        /// Approve the call yourself when the policy asks for approval (a denial stays).
        #[arg(long)]
        yes: bool,
        /// Print the whole result as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ws: &Workspace, cmd: &McpCommand) -> anyhow::Result<ExitCode> {
    if let McpCommand::Serve { http } = cmd {
        return serve(ws, http.as_deref());
    }
    let manager =
        Manager::shared(&ws.config.mcp, &ws.root).context("cannot start the MCP runtime")?;
    let code = match cmd {
        McpCommand::List { no_start, json } => list(&manager, *no_start, *json),
        McpCommand::Tools { server, json } => tools(&manager, server, *json),
        McpCommand::Call {
            server,
            tool,
            args,
            yes,
            json,
        } => call(ws, server, tool, args, *yes, *json),
        McpCommand::Serve { .. } => Ok(ExitCode::SUCCESS),
    };
    // Children are stopped before the process exits, not left to the OS.
    manager.stop_all();
    code
}

fn list(manager: &Manager, no_start: bool, json: bool) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = manager.names().map(str::to_string).collect();
    if names.is_empty() && !json {
        super::say("no MCP servers configured (add [mcp.servers.NAME] to config.toml)");
        return Ok(ExitCode::SUCCESS);
    }
    let mut errors = std::collections::BTreeMap::new();
    if !no_start {
        for name in &names {
            if let Err(e) = manager.tools(name) {
                errors.insert(name.clone(), e.to_string());
            }
        }
    }
    let rows = manager.health();
    if json {
        super::say_json(&rows)?;
    } else {
        for r in &rows {
            super::say(&format!(
                "{:<14} {:<5} {:<11} {:>3} tools  {}",
                r.name, r.transport, r.state, r.tools, r.target
            ));
            if let Some(e) = errors.get(&r.name) {
                super::say(&format!("               {e}"));
            } else if !r.detail.is_empty() {
                super::say(&format!("               {}", r.detail));
            }
        }
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn tools(manager: &Manager, server: &str, json: bool) -> anyhow::Result<ExitCode> {
    let tools = manager.tools(server)?;
    if json {
        super::say_json(
            &tools
                .iter()
                .map(crate::core::mcp::ToolInfo::to_json)
                .collect::<Vec<_>>(),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    for t in &tools {
        let hints = hint_words(&t.annotations);
        super::say(&format!("mcp:{}/{}{hints}", t.server, t.name));
        if !t.description.is_empty() {
            let first = t.description.lines().next().unwrap_or_default();
            super::say(&format!("    {first}"));
        }
        match &t.schema_error {
            Some(e) => super::say(&format!(
                "    unusable: its input schema is not valid JSON Schema: {e}"
            )),
            None => super::say(&format!("    input: {}", t.input_schema)),
        }
    }
    super::say(&format!("{} tools", tools.len()));
    Ok(ExitCode::SUCCESS)
}

/// ` [read-only, idempotent]` from the tool's annotations (or ` [no annotations]`).
fn hint_words(a: &Value) -> String {
    if a.is_null() {
        return " [no annotations]".into();
    }
    let words: Vec<&str> = [
        ("readOnlyHint", "read-only"),
        ("destructiveHint", "destructive"),
        ("idempotentHint", "idempotent"),
        ("openWorldHint", "open-world"),
    ]
    .iter()
    .filter(|(k, _)| a[*k].as_bool() == Some(true))
    .map(|(_, w)| *w)
    .collect();
    format!(" [{}]", words.join(", "))
}

fn call(
    ws: &Workspace,
    server: &str,
    tool: &str,
    args: &str,
    approve: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let arguments: Value = serde_json::from_str(args)
        .context("--args is not JSON (give one object, e.g. '{\"a\": 1}')")?;
    let handle = CoreHandle::start(ws.clone())?;
    let op = Op::CallMcpTool {
        server: server.to_string(),
        tool: tool.to_string(),
        arguments,
        approve,
    };
    let outcome: McpCalled = handle.request_blocking(op)?.try_into()?;
    if json {
        super::say_json(&json!({
            "server": outcome.server, "tool": outcome.tool, "is_error": outcome.is_error,
            "bytes": outcome.bytes, "result": outcome.result, "effect": outcome.effect,
            "rule": outcome.rule}))?;
    } else {
        super::say(&outcome.text);
    }
    Ok(if outcome.is_error {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `keel mcp serve`: the core handle on this workspace, served until the client leaves
/// (stdio) or the process is stopped (HTTP).
fn serve(ws: &Workspace, http: Option<&str>) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the MCP server's runtime")?;
    let handle = CoreHandle::start(ws.clone())?;
    let profile = &ws.config.mcp.serve;
    let served = match http {
        None => runtime.block_on(crate::mcp_serve::serve_stdio(handle.clone())),
        Some(addr) => {
            let addr = if addr.is_empty() {
                profile.http.as_str()
            } else {
                addr
            };
            let addr = crate::mcp_serve::http::loopback(addr)?;
            let token_file = ws.root.join(&profile.token_file);
            let token = crate::mcp_serve::token::load_or_create(&token_file)?;
            runtime.block_on(crate::mcp_serve::http::serve(
                handle.clone(),
                addr,
                token,
                |bound| {
                    super::say(&format!(
                        "keel serves MCP on http://{bound}/mcp (send Authorization: Bearer, the token in {})",
                        token_file.display()
                    ));
                },
            ))
        }
    };
    handle.shutdown();
    served.map(|()| ExitCode::SUCCESS)
}
