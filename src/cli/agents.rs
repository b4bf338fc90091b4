//! `keel agents list|show|check|estimate|run`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::core::agents::service::{self, AGENTS_DIR};
use crate::core::agents::template::Templates;
use crate::core::agents::{AgentTask, RunOutcome};
use crate::core::clock::SystemClock;
use crate::core::workspace::Workspace;

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// List the roles (shipped and the workspace's own), with tier and template hash.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one role's template as keel understands it.
    Show {
        /// The role name.
        role: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check every template; errors name <file:line:column>.
    Check {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Estimate what a run of ROLE on INPUT would cost before running it.
    Estimate {
        /// The role name.
        role: String,
        /// The task input: JSON, or @FILE.
        #[arg(long)]
        input: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run ROLE on INPUT now, outside the queue (streams partial output to stderr).
    Run {
        /// The role name.
        role: String,
        /// The task input: JSON, or @FILE (not needed with --resume).
        #[arg(long, required_unless_present = "resume")]
        input: Option<String>,
        /// Task id to record the run under (default: a new one).
        #[arg(long)]
        task: Option<String>,
        /// Continue this run instead of starting one (completed calls are reused).
        #[arg(long)]
        resume: Option<String>,
        /// Write the output to this object id (default: a new object).
        #[arg(long)]
        target: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn read_input(text: &str) -> anyhow::Result<Value> {
    let raw = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        None => text.to_string(),
    };
    serde_json::from_str(&raw).with_context(|| "the input is not valid JSON")
}

pub fn run(ws: &Workspace, cmd: &AgentsCommand) -> anyhow::Result<ExitCode> {
    let dir = ws.root.join(AGENTS_DIR);
    match cmd {
        AgentsCommand::List { json } => {
            let all = Templates::load(&dir)?;
            for (name, l) in &all.by_name {
                let t = &l.template;
                if *json {
                    super::say_json(
                        &json!({"role": name, "tier": t.model.tier, "origin": l.origin,
                        "hash": l.hash, "description": t.description, "output_kind": t.output.kind}),
                    )?;
                } else {
                    super::say(&format!(
                        "{name:<12} {:<7} {} {:<10} {}",
                        t.model.tier.as_str(),
                        &l.hash[..12],
                        origin_label(&l.origin),
                        t.description
                    ));
                }
            }
            for (name, error) in &all.broken {
                if *json {
                    super::say_json(&json!({"role": name, "broken": error}))?;
                } else {
                    super::say(&format!("{name:<12} BROKEN  {error}"));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentsCommand::Show { role, json } => {
            let all = Templates::load(&dir)?;
            let l = all.get(role)?;
            let v = json!({"role": role, "origin": l.origin, "hash": l.hash, "template": l.template, "output_schema": l.schema});
            if *json {
                super::say_json(&v)?;
            } else {
                super::say(&serde_json::to_string_pretty(&v)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentsCommand::Check { json } => {
            let mut bad = 0;
            for (name, result) in Templates::check_all(&dir) {
                let (ok, detail) = match &result {
                    Ok(l) => (true, format!("ok {}", &l.hash[..12])),
                    Err(e) => (false, e.to_string()),
                };
                bad += usize::from(!ok);
                if *json {
                    super::say_json(&json!({"role": name, "ok": ok, "detail": detail}))?;
                } else if ok {
                    super::say(&format!("{name}: {detail}"));
                } else {
                    super::say(&detail);
                }
            }
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AgentsCommand::Estimate { role, input, json } => {
            estimate(ws, role, &read_input(input)?, *json)
        }
        AgentsCommand::Run {
            role,
            input,
            task,
            resume,
            target,
            json,
        } => {
            let task = AgentTask {
                task: task.clone().unwrap_or_else(crate::core::ids::new_id),
                role: role.clone(),
                input: input
                    .as_deref()
                    .map(read_input)
                    .transpose()?
                    .unwrap_or_default(),
                resume: resume.clone(),
                target_id: target.clone(),
                earlier: Vec::new(),
                run_id: None,
            };
            run_now(ws, &task, *json)
        }
    }
}

fn origin_label(origin: &str) -> &str {
    if origin == "shipped" {
        "shipped"
    } else {
        "workspace"
    }
}

fn estimate(ws: &Workspace, role: &str, input: &Value, json: bool) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let runtime = rt.block_on(service::runtime(
        ws,
        Arc::new(SystemClock),
        Arc::new(|_: &str, _: &str| {}),
    ))?;
    let est = service::estimate(&runtime, role, input)?;
    let b = &runtime.templates.get(role)?.template.budget;
    if json {
        super::say_json(
            &json!({"role": role, "estimate": est, "budget": {"task_usd": b.task_usd, "task_tokens": b.task_tokens}}),
        )?;
    } else {
        super::say(&format!(
            "{role}: about ${:.4} and {} tokens ({}); task budget ${:.2}",
            est.usd, est.tokens, est.basis, b.task_usd
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_now(ws: &Workspace, task: &AgentTask, json: bool) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async {
        let sink = Arc::new(move |_run: &str, delta: &str| {
            use std::io::Write;
            if !json {
                let _ = write!(std::io::stderr(), "{delta}");
            }
        });
        let mut runtime = service::runtime(ws, Arc::new(SystemClock), sink).await?;
        let cancel = tokio_util::sync::CancellationToken::new();
        let ctrl_c = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                ctrl_c.cancel();
            }
        });
        anyhow::Ok(runtime.execute(task, &cancel).await?)
    })?;
    if json {
        super::say_json(&outcome)?;
    } else {
        eprintln!();
        match &outcome {
            RunOutcome::Succeeded { run, object, .. } => super::say(&format!(
                "run {run} succeeded; output {}",
                object.as_ref().map_or_else(String::new, |o| format!(
                    "{}/{} v{}",
                    o.kind, o.id, o.version
                ))
            )),
            RunOutcome::Escalated { run, reason, .. } => {
                super::say(&format!("run {run} needs the operator: {reason}"));
            }
            RunOutcome::Failed { run, error, .. } => {
                super::say(&format!("run {run} failed: {error}"));
            }
            RunOutcome::Cancelled { run } => super::say(&format!("run {run} cancelled")),
        }
    }
    Ok(if matches!(outcome, RunOutcome::Succeeded { .. }) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
