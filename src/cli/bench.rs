//! `keel bench <suite> [--json]`.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which suite to run.
    suite: Suite,
    /// One JSON object per line: {"suite","metric","value","unit"}.
    #[arg(long)]
    json: bool,
    /// Also run the slow large-scale parts (memory: the 100k-item index).
    #[arg(long)]
    large: bool,
    /// Crash torture only: rounds of start-then-SIGKILL of `keel run`.
    #[arg(long, default_value_t = 200)]
    trials: usize,
    /// Agents only: first answers per role against the real llama.cpp server.
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// Agents only: skip the real-model group (which needs `.ci/llama-install`).
    #[arg(long)]
    no_real_model: bool,
    /// Agents only: the real-model roles to sample (default: all four), e.g. editor,accountant.
    #[arg(long, value_delimiter = ',')]
    real_roles: Vec<String>,
    /// Agents only: `constrained`, `prompt_only` or both (default).
    #[arg(long, value_delimiter = ',')]
    real_modes: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Suite {
    Store,
    Orchestrator,
    Memory,
    Agents,
    Tui,
    /// An MCP tool call through policy, ledger and audit against a direct rmcp call.
    Mcp,
    /// SIGKILL `keel run` at random points during side-effecting workflows.
    Torture,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    match args.suite {
        Suite::Store => crate::bench::store::run(args.json)?,
        Suite::Orchestrator => crate::bench::orchestrator::run(args.json)?,
        Suite::Memory => crate::bench::memory::run(args.json, args.large)?,
        Suite::Agents => {
            crate::bench::agents::run(args.json)?;
            if !args.no_real_model {
                let only = crate::bench::agents_real::Only {
                    roles: args.real_roles.clone(),
                    modes: args.real_modes.clone(),
                };
                crate::bench::agents_real::run(args.json, args.samples, &only)?;
            }
        }
        Suite::Tui => crate::bench::tui::run(args.json)?,
        Suite::Mcp => crate::bench::mcp::run(args.json)?,
        Suite::Torture => crate::bench::torture::run(args.json, args.trials)?,
    }
    Ok(ExitCode::SUCCESS)
}
