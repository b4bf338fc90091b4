//! `keel run`: the headless daemon. Runs the coordinator on the workspace until SIGINT or
//! SIGTERM, then releases in-flight leases (their tasks go back to the queue with their
//! completed steps kept) and exits 0. Logs go to `<workspace>/logs/keel.log`.

use std::process::ExitCode;
use std::sync::Arc;

use crate::core::clock::SystemClock;
use crate::core::coordinator::Coordinator;
use crate::core::workspace::Workspace;

pub fn run(ws: &Workspace, workers: Option<usize>) -> anyhow::Result<ExitCode> {
    // Signal handlers first, so a SIGTERM during start-up still means a clean stop.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut term, mut int) = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    let _guard = crate::logging::init_file_logging(&ws.logs_dir())?;
    let mut ws = ws.clone();
    if let Some(n) = workers {
        ws.config.orchestrator.workers = n;
    }
    // Built-in roles and agent templates (streamed output has no console to go to here).
    let executor =
        crate::core::wiring::executor(&ws, Arc::new(SystemClock), Arc::new(|_: &str, _: &str| {}))?;
    let coordinator = Arc::new(Coordinator::for_workspace(
        &ws,
        Arc::new(SystemClock),
        executor,
    )?);
    tracing::info!(workspace = %ws.root.display(), owner = %coordinator.env.owner,
        workers = ws.config.orchestrator.workers, "keel run: started");
    let running = coordinator.start()?;
    // A kill between the vector index's commit and SQLite's leaves them disagreeing.
    crate::core::memory::check::reconcile_in_background(&ws, Arc::new(SystemClock));
    let signal = runtime.block_on(async {
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    });
    tracing::info!(signal, "keel run: stopping; releasing in-flight leases");
    running.stop();
    tracing::info!("keel run: stopped");
    Ok(ExitCode::SUCCESS)
}
