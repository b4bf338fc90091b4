//! `keel init` and `keel demo`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::core::workspace::Workspace;

pub fn init(root: &Path) -> anyhow::Result<ExitCode> {
    let ws = Workspace::init(root)?;
    super::say(&format!("workspace ready at {}", ws.root.display()));
    Ok(ExitCode::SUCCESS)
}

pub fn demo(dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let root = dir.unwrap_or_else(default_demo_root);
    let ws = Workspace::init(&root)?;
    let clock: std::sync::Arc<dyn crate::core::clock::Clock> =
        std::sync::Arc::new(crate::core::clock::SystemClock);
    if let Some(report) = crate::core::demo::seed_workspace(&ws, &clock)?
        && report.notes_unembedded
    {
        tracing::warn!(
            "demo notes stored without vectors: run `keel models fetch`, then `keel memory check --repair`"
        );
    }
    // Reopen: seeding added the demo's schedules and connectors to config.toml.
    let ws = Workspace::open(&root)?;
    let welcome = crate::core::demo::welcome(ws.store()?.conn())?;
    crate::tui::run_with_welcome(&ws, welcome)?;
    Ok(ExitCode::SUCCESS)
}

fn default_demo_root() -> PathBuf {
    directories::ProjectDirs::from("", "", "keel").map_or_else(
        || PathBuf::from(".keel-demo"),
        |d| d.data_dir().join("demo"),
    )
}
