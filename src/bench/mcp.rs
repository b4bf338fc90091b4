//! `keel bench mcp`: what keel adds to an MCP tool call. The real server-everything
//! (installed by `.ci/mcp-install` into `~/.cache/keel/mcp`, or `KEEL_MCP_DIR`) is called
//! with `echo` three ways, each sampled [`SAMPLES`] times after a warm-up:
//!
//! - `direct_rmcp`: rmcp's own client on a connection of its own, in async code;
//! - `client`: keel's client send (schema check, bounded blocking wait on the MCP runtime);
//! - `gated`: a whole operator call — policy decision and its audit entry, the effects
//!   ledger's intent and result (two more transactions, `synchronous=FULL`), then the send.
//!
//! `gated_overhead_*` is `gated` minus `direct_rmcp` at the same percentile.
//!
//! Then keel's own server: `keel mcp serve` (this binary, stdio) on a demo workspace answers
//! `memory_search` to keel's client (`serve_memory_search_*`: the whole request, through
//! the handshake's session, the core handle, the profile check, the search with its
//! embedding of the query, provenance reads and the audit entry), next to the same search
//! sent straight to the core handle in-process (`handle_memory_search_*`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::{Measurement, emit};
use crate::core::audit::Actor;
use crate::core::clock::SystemClock;
use crate::core::mcp::operator::{self, Approval, LedgerSlot};
use crate::core::mcp::{McpCall, McpConfig, McpConnector, ServerConfig, call_tool, connect};
use crate::core::workspace::Workspace;

const SAMPLES: usize = 300;
const WARM_UP: usize = 20;

fn server_program() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("KEEL_MCP_DIR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/keel/mcp"),
        PathBuf::from,
    );
    let program = dir.join("node/node_modules/.bin/mcp-server-everything");
    if !program.exists() {
        bail!(
            "{} is missing: run `bash .ci/mcp-install` first",
            program.display()
        );
    }
    Ok(program)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Milliseconds of `SAMPLES` runs of `f` after `WARM_UP` unmeasured ones, sorted.
fn sample(mut f: impl FnMut(usize) -> anyhow::Result<()>) -> anyhow::Result<Vec<f64>> {
    for i in 0..WARM_UP {
        f(i)?;
    }
    let mut out = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let t = Instant::now();
        f(WARM_UP + i)?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

fn message(i: usize) -> Value {
    json!({"message": format!("bench {i}")})
}

pub fn run(json_out: bool) -> anyhow::Result<()> {
    let program = server_program()?;
    let cfg = ServerConfig::stdio(&program.display().to_string(), &["stdio"]);
    let scratch = super::scratch::Scratch::new("mcp")?;
    let ws = Workspace::init(&scratch.path().join("ws"))?;

    // rmcp's own client, on a runtime of its own.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let conn = rt
        .block_on(connect::connect("everything", &cfg, &ws.root))
        .context("starting server-everything")?;
    let direct = sample(|i| {
        let mut args = Map::new();
        args.insert("message".into(), message(i)["message"].clone());
        let params = rmcp::model::CallToolRequestParams::new("echo").with_arguments(args);
        rt.block_on(conn.service.peer().call_tool(params))
            .map(|_| ())
            .context("direct call")
    })?;
    drop(conn);

    let mut config = McpConfig::default();
    config.servers.insert("everything".into(), cfg);
    let manager = Arc::new(crate::core::mcp::Manager::new(&config, &ws.root)?);
    let client = sample(|i| {
        call_tool(
            &manager,
            &McpCall {
                server: "everything".into(),
                tool: "echo".into(),
                arguments: message(i),
            },
        )
        .map(|_| ())
        .context("client call")
    })?;

    let connector = McpConnector::new(manager.clone());
    let mut store = ws.store()?;
    let gated = sample(|i| {
        let step = format!("bench-{i}");
        operator::call(
            &mut store,
            &SystemClock,
            &Actor::Operator,
            "operator",
            &connector,
            &McpCall {
                server: "everything".into(),
                tool: "echo".into(),
                arguments: message(i),
            },
            &Approval::Operator { approve: true },
            LedgerSlot {
                task: "bench",
                step: &step,
            },
        )
        .map(|_| ())
        .context("gated call")
    })?;
    manager.stop_all();

    let mut out = Vec::new();
    for (name, s) in [
        ("direct_rmcp", &direct),
        ("client", &client),
        ("gated", &gated),
    ] {
        for (p, label) in [(0.5, "p50"), (0.99, "p99")] {
            out.push((format!("{name}_{label}"), percentile(s, p)));
        }
    }
    for (p, label) in [(0.5, "p50"), (0.99, "p99")] {
        out.push((
            format!("gated_overhead_{label}"),
            percentile(&gated, p) - percentile(&direct, p),
        ));
    }
    out.extend(serve_memory_search()?);
    for (metric, value) in out {
        emit(
            &Measurement {
                suite: "mcp",
                metric,
                value,
                unit: "ms",
            },
            json_out,
        );
    }
    Ok(())
}

/// Queries that vary, so no layer answers from a cache of the last one.
const QUERIES: &[&str] = &[
    "which weekday do newsletter sends open best",
    "pricing teardown readers share",
    "annual plans for monthly customers",
    "refund policy conversion",
    "first customers without an audience",
];

fn serve_memory_search() -> anyhow::Result<Vec<(String, f64)>> {
    let scratch = super::scratch::Scratch::new("mcp-serve")?;
    let ws = Workspace::init(&scratch.path().join("ws"))?;
    let clock: Arc<dyn crate::core::clock::Clock> = Arc::new(SystemClock);
    crate::core::demo::seed_workspace(&ws, &clock)?;

    let handle = crate::core::handle::CoreHandle::start(ws.clone())?;
    let in_process = sample(|i| {
        let query = crate::protocol::Query::MemorySearch {
            text: QUERIES[i % QUERIES.len()].into(),
            kinds: Vec::new(),
            k: Some(5),
        };
        handle
            .request_blocking(crate::protocol::Op::Query { query })
            .map(|_| ())
            .context("in-process search")
    })?;
    handle.shutdown();

    let exe = std::env::current_exe().context("where is this keel binary?")?;
    let root = ws.root.display().to_string();
    let cfg = ServerConfig::stdio(
        &exe.display().to_string(),
        &["--workspace", &root, "mcp", "serve"],
    );
    let mut config = McpConfig::default();
    config.servers.insert("keel".into(), cfg);
    let manager = Arc::new(crate::core::mcp::Manager::new(&config, &ws.root)?);
    let served = sample(|i| {
        let out = call_tool(
            &manager,
            &McpCall {
                server: "keel".into(),
                tool: "memory_search".into(),
                arguments: json!({"query": QUERIES[i % QUERIES.len()], "k": 5}),
            },
        )
        .context("memory_search through keel mcp serve")?;
        if out.is_error {
            bail!("keel mcp serve answered an error: {}", out.text);
        }
        Ok(())
    })?;
    manager.stop_all();
    let mut out = Vec::new();
    for (name, s) in [
        ("serve_memory_search", &served),
        ("handle_memory_search", &in_process),
    ] {
        for (p, label) in [(0.5, "p50"), (0.99, "p99")] {
            out.push((format!("{name}_{label}"), percentile(s, p)));
        }
    }
    Ok(out)
}
