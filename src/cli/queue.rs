//! `keel queue pause|resume`.

use std::process::ExitCode;

use clap::Subcommand;

use super::say;
use crate::core::handle::CoreHandle;
use crate::core::workspace::Workspace;
use crate::protocol::Op;

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Stop claiming tasks (running ones finish).
    Pause,
    /// Claim tasks again.
    Resume,
}

pub fn run(ws: &Workspace, cmd: &QueueCommand) -> anyhow::Result<ExitCode> {
    let handle = CoreHandle::start(ws.clone())?;
    let op = match cmd {
        QueueCommand::Pause => Op::PauseQueue,
        QueueCommand::Resume => Op::ResumeQueue,
    };
    let result = handle.request_blocking(op);
    handle.shutdown();
    result?;
    say(match cmd {
        QueueCommand::Pause => "queue paused",
        QueueCommand::Resume => "queue resumed",
    });
    Ok(ExitCode::SUCCESS)
}
