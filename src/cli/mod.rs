//! The command line: every console action is a subcommand, so keel is scriptable and
//! testable without a terminal. `keel` with no subcommand opens the console.

mod agents;
mod analytics;
mod approvals;
mod args;
mod audit;
mod bench;
mod doctor;
mod effects;
mod init;
mod mcp;
mod memory;
mod metrics;
mod models;
mod models_connect;
pub mod object_ref;
mod objects;
mod policy;
mod queue;
mod reconcile;
mod run;
mod runs;
mod task;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::core::workspace::{self, Workspace};

#[derive(Debug, Parser)]
#[command(
    name = "keel",
    version,
    about = "The operating layer of a one-person company",
    long_about = "keel runs a one-person business from one terminal console: canonical business \
                  objects with full history, a tamper-evident audit log, role-based AI agents on a \
                  durable queue, and the operator's approval for every decision that costs money \
                  or cannot be undone.\n\nWith no subcommand, keel opens the console on the \
                  workspace."
)]
pub struct Cli {
    /// Workspace directory (default: the platform data directory).
    #[arg(
        long,
        short = 'w',
        global = true,
        env = "KEEL_WORKSPACE",
        value_name = "DIR"
    )]
    pub workspace: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a workspace (database, vector directory, commented config.toml).
    Init {
        /// Where to create it (default: --workspace, `KEEL_WORKSPACE` or the data directory).
        dir: Option<PathBuf>,
    },
    /// Create the demo workspace if it is missing and open the console on it.
    Demo {
        /// Demo workspace directory (default: <data dir>/demo).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Versioned business objects: list, show, history, diff, put, revert, archive.
    #[command(subcommand)]
    Objects(objects::ObjectsCommand),
    /// Check the workspace's health (read-only; exits 1 when something is broken).
    ///
    /// Reports the config, file modes, schema version against the latest, `SQLite`'s
    /// integrity check, the audit chain, object versions against their hashes and audit
    /// entries, the embedding model files, and the model providers the config names.
    Doctor {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show, verify and export the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The offline embedding model (fetch, status) and connecting a language model server.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Run a benchmark suite; prints machine-readable results with --json.
    Bench(bench::BenchArgs),
    /// Check policy rules and explain which rule fires for an action.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// The approval inbox: list, show, approve, reject, cancel; always-allow rules.
    #[command(subcommand)]
    Approvals(approvals::ApprovalsCommand),
    /// The effects ledger: list, show and undo external actions.
    #[command(subcommand)]
    Effects(effects::EffectsCommand),
    /// Compare canonical state with the site and other targets; list mismatches and fixes.
    Reconcile(reconcile::ReconcileArgs),
    /// Submit, list, show, cancel and retry tasks.
    #[command(subcommand)]
    Task(task::TaskCommand),
    /// Pause or resume the whole queue.
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    /// Run the orchestrator headless until SIGINT/SIGTERM (logs to the workspace's logs/).
    Run {
        /// Worker threads (default: [orchestrator] workers).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// List, show and check agent role templates; estimate or run a role now.
    #[command(subcommand)]
    Agents(agents::AgentsCommand),
    /// List, show and replay agent runs.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Long-term memory: add, import, search, explain a run's retrievals, forget, reindex.
    #[command(subcommand)]
    Memory(memory::MemoryCommand),
    /// The value ledger per workflow and agent; spend today against the daily budget.
    Metrics(metrics::MetricsArgs),
    /// Import analytics and reconcile them; rank ideas by goals and measured outcomes.
    #[command(subcommand)]
    Analytics(analytics::AnalyticsCommand),
    /// MCP servers: list them, their tools, and call one by hand.
    #[command(subcommand)]
    Mcp(mcp::McpCommand),
}

impl Cli {
    fn workspace_root(&self) -> PathBuf {
        workspace::resolve(self.workspace.as_deref())
    }

    fn open_workspace(&self) -> anyhow::Result<Workspace> {
        Ok(Workspace::open(&self.workspace_root())?)
    }
}

/// Runs the parsed command line.
#[allow(clippy::needless_pass_by_value)] // the entry point owns the parsed command line
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        None => {
            let ws = cli.open_workspace()?;
            crate::tui::run(&ws)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Init { dir }) => {
            init::init(&dir.clone().unwrap_or_else(|| cli.workspace_root()))
        }
        Some(Command::Demo { dir }) => init::demo(dir.clone()),
        Some(Command::Objects(cmd)) => objects::run(&cli.open_workspace()?, cmd),
        Some(Command::Doctor { json }) => doctor::run(&cli.workspace_root(), *json),
        Some(Command::Audit(cmd)) => audit::run(&cli.open_workspace()?, cmd),
        Some(Command::Models(cmd)) => models::run(&cli.workspace_root(), cmd),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::Policy(cmd)) => policy::run(&cli.workspace_root(), cmd),
        Some(Command::Approvals(cmd)) => approvals::run(&cli.open_workspace()?, cmd),
        Some(Command::Effects(cmd)) => effects::run(&cli.open_workspace()?, cmd),
        Some(Command::Reconcile(args)) => reconcile::run(&cli.open_workspace()?, args),
        Some(Command::Task(cmd)) => task::run(&cli.open_workspace()?, cmd),
        Some(Command::Queue(cmd)) => queue::run(&cli.open_workspace()?, cmd),
        Some(Command::Run { workers }) => run::run(&cli.open_workspace()?, *workers),
        Some(Command::Agents(cmd)) => agents::run(&cli.open_workspace()?, cmd),
        Some(Command::Runs(cmd)) => runs::run(&cli.open_workspace()?, cmd),
        Some(Command::Memory(cmd)) => memory::run(&cli.open_workspace()?, cmd),
        Some(Command::Metrics(args)) => metrics::run(&cli.open_workspace()?, args),
        Some(Command::Analytics(cmd)) => analytics::run(&cli.open_workspace()?, cmd),
        Some(Command::Mcp(cmd)) => mcp::run(&cli.open_workspace()?, cmd),
    }
}

/// The process exit code for an error: 3 for a conflict (a script can reload and retry),
/// 1 otherwise.
#[must_use]
pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    match err.downcast_ref::<crate::core::Error>() {
        Some(crate::core::Error::Conflict { .. }) => ExitCode::from(3),
        _ => ExitCode::FAILURE,
    }
}

/// Writes a line to stdout for the CLI (never used by the console).
pub(crate) fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

/// Writes a value as one line of JSON on stdout.
pub(crate) fn say_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    say(&serde_json::to_string(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// `keel --help` documents everything: every subcommand and every argument has help.
    #[test]
    fn every_command_and_argument_is_documented() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if !matches!(id, "help" | "version") && arg.get_help().is_none() {
                    missing.push(format!("{path} --{id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let cmd = super::Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&cmd, "keel", &mut missing);
        assert!(missing.is_empty(), "undocumented: {missing:?}");
    }
}
