//! `keel init` and `keel demo`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::core::workspace::Workspace;

pub fn init(root: PathBuf) -> anyhow::Result<ExitCode> {
    let ws = Workspace::init(&root)?;
    super::say(&format!("workspace ready at {}", ws.root.display()));
    Ok(ExitCode::SUCCESS)
}

pub fn demo(dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let root = dir.unwrap_or_else(default_demo_root);
    let ws = Workspace::init(&root)?;
    crate::tui::run(&ws)?;
    Ok(ExitCode::SUCCESS)
}

fn default_demo_root() -> PathBuf {
    directories::ProjectDirs::from("", "", "keel")
        .map_or_else(|| PathBuf::from(".keel-demo"), |d| d.data_dir().join("demo"))
}
