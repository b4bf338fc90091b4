//! `keel doctor`: workspace health, read-only.

use std::path::Path;
use std::process::ExitCode;

use crate::core::doctor::{self, Status};
use crate::core::model_assets::Assets;

pub fn run(root: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let report = doctor::examine(root, &Assets::locate());
    if json {
        super::say_json(&report)?;
    } else {
        super::say(&format!("workspace {}", report.workspace.display()));
        for check in &report.checks {
            let mark = match check.status {
                Status::Ok => "ok  ",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            super::say(&format!("  {mark} {:<16} {}", check.name, check.detail));
        }
    }
    Ok(if report.status() == Status::Fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
