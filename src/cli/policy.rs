//! `keel policy check|explain`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::core::effects::Reversibility;
use crate::core::policy::lint::{self, Severity};
use crate::core::policy::{ActionRequest, Policy, evaluate};
use crate::core::workspace::Workspace;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Write the default rules to the workspace's policy.toml (kept if it exists).
    Init,
    /// Lint the rules: unknown fields, shadowed or contradictory rules, impossible ranges.
    Check {
        /// A policy file to check (default: the workspace's policy.toml, or the built-in one).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show which rule fires for an action, and why each earlier rule did not.
    Explain {
        /// The agent (role) asking to act.
        #[arg(long)]
        agent: String,
        /// Connector action, e.g. site.publish.
        #[arg(long)]
        action: String,
        /// Money the action moves.
        #[arg(long)]
        amount: Option<f64>,
        /// Cost of running the action.
        #[arg(long, default_value_t = 0.0)]
        cost: f64,
        /// What the action touches, e.g. a URL, address or object id.
        #[arg(long, default_value = "")]
        target: String,
        /// Kind of the object affected.
        #[arg(long)]
        kind: Option<String>,
        /// The workflow the action runs in, if any.
        #[arg(long)]
        workflow: Option<String>,
        /// reversible | compensable | irreversible (default: what the connector declares).
        #[arg(long)]
        reversibility: Option<String>,
        /// Print the decision and the rule trace as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ws_root: &std::path::Path, cmd: &PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Init => {
            let ws = Workspace::open(ws_root)?;
            let path = ws.root.join(crate::core::policy::POLICY_FILE);
            if path.exists() {
                super::say(&format!("{} exists; left unchanged", path.display()));
            } else {
                crate::core::workspace::write_private_file(
                    &path,
                    crate::core::policy::DEFAULT_POLICY.as_bytes(),
                )?;
                super::say(&format!(
                    "wrote {}; edit it, then run `keel policy check`",
                    path.display()
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Check { file, json } => check(ws_root, file.as_deref(), *json),
        PolicyCommand::Explain {
            agent,
            action,
            amount,
            cost,
            target,
            kind,
            workflow,
            reversibility,
            json,
        } => {
            let ws = Workspace::open(ws_root)?;
            let policy = Policy::load(&ws.root)?;
            let reversibility = match reversibility {
                Some(r) => {
                    serde_json::from_value::<Reversibility>(serde_json::Value::String(r.clone()))
                        .map_err(|_| {
                            anyhow::anyhow!(
                                "--reversibility must be reversible, compensable or irreversible"
                            )
                        })?
                }
                None => declared(&ws, action)?,
            };
            let req = ActionRequest {
                agent: agent.clone(),
                action: action.clone(),
                object_kind: kind.clone(),
                amount: *amount,
                reversibility,
                target: target.clone(),
                cost: *cost,
                workflow: workflow.clone(),
            };
            let store = ws.store()?;
            let now = jiff::Timestamp::now().as_millisecond();
            let decision = evaluate(&policy, &req, now, store.conn(), store.conn())?;
            if *json {
                super::say_json(
                    &serde_json::json!({"request": req, "decision": decision, "policy": policy.source}),
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            super::say(&format!("policy: {}", policy.source.display()));
            for t in &decision.trace {
                if t.matched {
                    super::say(&format!("  {:<28} MATCH", t.rule));
                } else {
                    super::say(&format!("  {:<28} no: {}", t.rule, t.because));
                }
            }
            super::say(&format!(
                "=> {} (rule {}): {}",
                decision.outcome.as_str(),
                decision.rule,
                decision.reason
            ));
            if decision.hold_secs > 0 {
                super::say(&format!(
                    "   held {} s after approval (cancellable)",
                    decision.hold_secs
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn declared(ws: &Workspace, action: &str) -> anyhow::Result<Reversibility> {
    let connectors = crate::core::connectors::registry(ws)?;
    crate::core::connectors::for_action(&connectors, action)
        .and_then(|c| c.actions().into_iter().find(|a| a.name == action))
        .map(|a| a.reversibility)
        .ok_or_else(|| anyhow::anyhow!("no connector declares {action}; pass --reversibility"))
}

fn check(
    ws_root: &std::path::Path,
    file: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let loaded = match file {
        Some(f) => {
            let text =
                std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
            Policy::parse(&text, f)
        }
        None => Policy::load(ws_root),
    };
    let policy = match loaded {
        Ok(p) => p,
        Err(e) => {
            if json {
                super::say_json(&serde_json::json!({"ok": false, "error": e.to_string()}))?;
            } else {
                eprintln!("{e}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    let findings = lint::check(&policy);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if json {
        super::say_json(&serde_json::json!({
            "ok": errors == 0, "file": policy.source, "rules": policy.file.rules.len(), "findings": findings,
        }))?;
    } else {
        for f in &findings {
            super::say(&f.to_string());
        }
        super::say(&format!(
            "{}: {} rules, {errors} errors, {} warnings",
            policy.source.display(),
            policy.file.rules.len(),
            findings.len() - errors
        ));
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
