//! Building a runtime for a workspace, and the blocking entry points the core handle and
//! the CLI use.

use std::sync::Arc;

use super::local_host::LocalHost;
use super::replay::{self, ReplayReport};
use super::runtime::{RunSink, Runtime};
use super::template::Templates;
use crate::core::clock::Clock;
use crate::core::error::{Error, Result};
use crate::core::llm::Registry;
use crate::core::workspace::Workspace;

/// The workspace's own templates live here (they add roles or override shipped ones).
pub const AGENTS_DIR: &str = "agents";

/// A runtime on `ws` with the configured providers (an `auto` provider is probed now).
/// Until the lead connects them, objects and memory use the stand-alone [`LocalHost`].
pub async fn runtime(ws: &Workspace, clock: Arc<dyn Clock>, on_delta: RunSink) -> Result<Runtime> {
    let registry = Registry::from_config(&ws.config.providers, &ws.config.routing)
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
    runtime_with(ws, clock, on_delta, registry)
}

/// A runtime with the given providers.
pub fn runtime_with(
    ws: &Workspace,
    clock: Arc<dyn Clock>,
    on_delta: RunSink,
    registry: Registry,
) -> Result<Runtime> {
    let templates = Templates::load(&ws.root.join(AGENTS_DIR))?;
    let host = Arc::new(LocalHost::new(ws.store()?, clock.clone()));
    Ok(Runtime {
        store: ws.store()?,
        clock,
        templates,
        registry,
        retriever: host.clone(),
        host,
        on_delta,
    })
}

/// Replays `run`. It builds no network client: every answer comes from the record, so it
/// works with no provider configured.
pub async fn replay(ws: &Workspace, clock: Arc<dyn Clock>, run: &str) -> Result<ReplayReport> {
    let mut runtime = runtime_with(
        ws,
        clock,
        Arc::new(|_: &str, _: &str| {}),
        Registry::offline_only(),
    )?;
    replay::replay_run(&mut runtime, run).await
}

/// [`replay`] for callers outside any async runtime (the core thread, the CLI).
pub fn replay_blocking(ws: &Workspace, clock: Arc<dyn Clock>, run: &str) -> Result<ReplayReport> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the replay runtime: {e}")))?;
    rt.block_on(replay(ws, clock, run))
}
