//! Building a runtime for a workspace, and the blocking entry points the core handle and
//! the CLI use.

use std::sync::Arc;

use super::local_host::LocalHost;
use super::replay::{self, ReplayReport};
use super::runtime::{RunSink, Runtime};
use super::template::Templates;
use crate::core::clock::Clock;
use crate::core::config::Config;
use crate::core::error::{Error, Result};
use crate::core::llm::Registry;
use crate::core::objects::Kinds;
use crate::core::workspace::Workspace;

/// The workspace's own templates live here (they add roles or override shipped ones).
pub const AGENTS_DIR: &str = "agents";

/// A runtime on `ws` with the configured providers (an `auto` provider is probed now).
/// Outside the queue, objects (schema-checked) and keyword memory use the stand-alone
/// [`LocalHost`]; its queue, blackboard and external-action tools refuse, so a run here
/// can never reach past the policy gate.
pub async fn runtime(ws: &Workspace, clock: Arc<dyn Clock>, on_delta: RunSink) -> Result<Runtime> {
    let registry = Registry::from_config(&ws.config.providers, &ws.config.routing)
        .await
        .map_err(Error::wrap)?;
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
    let kinds = kinds_with_outputs(&ws.config, &templates)?;
    let host = Arc::new(
        LocalHost::new(ws.store()?, clock.clone(), kinds)
            .with_mcp(crate::core::mcp::manager::for_workspace(ws)),
    );
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

/// The workspace's kinds plus each role's output kind (checked against the role's output
/// schema), so agent writes are validated the same way wherever a run happens.
/// The one builder of the kinds table (the core handle caches its result).
pub fn kinds_with_outputs(config: &Config, templates: &Templates) -> Result<Kinds> {
    let mut kinds = Kinds::from_config(config)?;
    for (name, tpl) in &templates.by_name {
        let out = &tpl.template.output;
        kinds = kinds.with_kind(
            &out.kind,
            &format!("output of the {name} role"),
            &tpl.schema,
        )?;
    }
    Ok(kinds)
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

/// [`replay()`] for callers outside any async runtime (the core thread, the CLI).
pub fn replay_blocking(ws: &Workspace, clock: Arc<dyn Clock>, run: &str) -> Result<ReplayReport> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Error::failed("cannot start the replay runtime", e))?;
    rt.block_on(replay(ws, clock, run))
}

/// A run sink that forwards streamed output to the core's event broadcast, so the console
/// shows partial output as it arrives.
#[must_use]
pub fn event_sink(events: tokio::sync::broadcast::Sender<crate::protocol::Event>) -> RunSink {
    Arc::new(move |run: &str, delta: &str| {
        let _ = events.send(crate::protocol::Event::RunOutput {
            run: run.to_string(),
            delta: delta.to_string(),
        });
    })
}

/// What a run of `role` on `input` is expected to cost before it starts: the role's recent
/// average when it has run before, else the prompt size plus the output allowance at the
/// first route's prices. The offline provider costs nothing.
pub fn estimate(
    rt: &Runtime,
    role: &str,
    input: &serde_json::Value,
) -> Result<super::budget::Estimate> {
    let tpl = rt.templates.get(role)?;
    let (route, why) = super::routing::initial(tpl, &rt.registry).map_err(Error::wrap)?;
    if route.provider.kind() == "offline" {
        return Ok(super::budget::Estimate {
            tokens: 0,
            usd: 0.0,
            basis: format!("offline provider: no tokens, no cost ({why})"),
        });
    }
    let ctx = super::context::build(tpl, input, &super::tools::Retrieval::default(), &[]);
    let chars: usize = ctx.messages.iter().map(|m| m.content.len()).sum();
    let history = super::record::role_history(rt.store.conn(), role)?;
    Ok(super::budget::run_estimate(
        history,
        route.provider.price(),
        (chars as u64).div_ceil(4),
        tpl.template.model.max_tokens,
    ))
}
