//! `keel task add|list|show|cancel|retry|pause|resume|run-now`: the queue from a script.
//! Changes go through the core handle, exactly as the console's do.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

use super::args::ListPage;
use super::{say, say_json};
use crate::core::handle::CoreHandle;
use crate::core::queue::{self, NewTask};
use crate::core::workspace::Workspace;
use crate::protocol::{Op, Page, Query, TaskRow};

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Submit a work item.
    Add {
        /// The role that runs it (or use --workflow).
        #[arg(long, required_unless_present_any = ["workflow", "task"])]
        role: Option<String>,
        /// Run a workflow file (agents/NAME.workflow.toml) with --input as its input.
        #[arg(long, conflicts_with = "role")]
        workflow: Option<String>,
        /// A whole work item as JSON (every field: `output_schema`, `cost_estimate_usd`, `parent`…);
        /// other options are ignored.
        #[arg(long, conflicts_with_all = ["role", "workflow"])]
        task: Option<String>,
        /// The input as JSON (checked against the role's input schema).
        #[arg(long, default_value = "{}")]
        input: String,
        /// A short title shown in lists.
        #[arg(long, default_value = "")]
        title: String,
        /// Higher runs first.
        #[arg(long, default_value_t = 0)]
        priority: i64,
        /// Do not start before this time (RFC 3339, e.g. 2026-12-01T09:00:00+01:00).
        #[arg(long)]
        not_before: Option<String>,
        /// Give up on an attempt after this many milliseconds (default: the role's).
        #[arg(long)]
        timeout_ms: Option<i64>,
        /// Attempts before the task fails (default: the role's).
        #[arg(long)]
        max_attempts: Option<i64>,
        /// Submitting the same key again returns the existing task.
        #[arg(long)]
        key: Option<String>,
        /// A tag to attach (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Wait for the off-peak window.
        #[arg(long)]
        background: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List tasks, newest first.
    List {
        /// Only tasks in this state: queued, running, waiting, succeeded, failed, escalated, cancelled.
        #[arg(long)]
        state: Option<String>,
        /// Only tasks whose id, role, title or a tag matches this text.
        #[arg(long)]
        text: Option<String>,
        #[command(flatten)]
        page: ListPage,
    },
    /// Show one task: input, output, error history, children and effects.
    Show {
        /// The task id.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a task that has not finished, and every unfinished task below it.
    Cancel {
        /// The task id.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Retry a failed or escalated task, optionally with an edited input.
    Retry {
        /// The task id.
        id: String,
        /// A replacement input as JSON.
        #[arg(long)]
        input: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Hold an unfinished task: it is not started, and a running one is released at its next step.
    Pause {
        /// The task id.
        id: String,
    },
    /// Let a paused task be claimed again.
    Resume {
        /// The task id.
        id: String,
    },
    /// Run a background task now, outside the off-peak window.
    RunNow {
        /// The task id.
        id: String,
    },
}

fn parse_json(text: &str, what: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| format!("{what} is not valid JSON"))
}

pub fn run(ws: &Workspace, cmd: &TaskCommand) -> anyhow::Result<ExitCode> {
    if let TaskCommand::Show { id, json } = cmd {
        return show(ws, id, *json);
    }
    let handle = CoreHandle::start(ws.clone())?;
    let result = dispatch(&handle, cmd);
    handle.shutdown();
    result
}

fn dispatch(handle: &CoreHandle, cmd: &TaskCommand) -> anyhow::Result<ExitCode> {
    let (op, json_out) = match cmd {
        TaskCommand::Add { .. } => add_op(cmd)?,
        TaskCommand::List {
            state,
            text,
            page: ListPage { limit, json },
        } => {
            let answer = handle.request_blocking(Op::Query {
                query: Query::Tasks {
                    state: state.clone(),
                    text: text.clone(),
                    offset: 0,
                    limit: *limit,
                },
            })?;
            let page: Page<TaskRow> = answer.try_into()?;
            if *json {
                say_json(&page)?;
            } else {
                for t in &page.items {
                    say(&line(t));
                }
                say(&format!("{} of {} tasks", page.items.len(), page.total));
            }
            return Ok(ExitCode::SUCCESS);
        }
        TaskCommand::Cancel { id, json } => (Op::CancelTask { id: id.clone() }, *json),
        TaskCommand::Retry { id, input, json } => (
            Op::RetryTask {
                id: id.clone(),
                new_input: input
                    .as_deref()
                    .map(|i| parse_json(i, "--input"))
                    .transpose()?,
            },
            *json,
        ),
        TaskCommand::Pause { id } => (Op::PauseTask { id: id.clone() }, false),
        TaskCommand::Resume { id } => (Op::ResumeTask { id: id.clone() }, false),
        TaskCommand::RunNow { id } => (Op::RunNow { id: id.clone() }, false),
        TaskCommand::Show { .. } => anyhow::bail!("`task show` reads the store directly"),
    };
    let row: TaskRow = handle.request_blocking(op)?.try_into()?;
    if json_out {
        say_json(&row)?;
    } else {
        say(&line(&row));
    }
    Ok(ExitCode::SUCCESS)
}

/// The `SubmitTask` op for `task add`, and whether to answer in JSON.
fn add_op(cmd: &TaskCommand) -> anyhow::Result<(Op, bool)> {
    Ok(match cmd {
        TaskCommand::Add {
            task: Some(whole),
            json,
            ..
        } => {
            let task: NewTask = serde_json::from_value(parse_json(whole, "--task")?)
                .context("--task is not a work item")?;
            (
                Op::SubmitTask {
                    task: Box::new(task),
                },
                *json,
            )
        }
        TaskCommand::Add {
            role,
            workflow,
            task: None,
            input,
            title,
            priority,
            not_before,
            timeout_ms,
            max_attempts,
            key,
            tags,
            background,
            json,
        } => {
            let input = parse_json(input, "--input")?;
            let (role, input) = match workflow {
                Some(name) => (
                    "workflow".to_string(),
                    json!({"workflow": name, "input": input}),
                ),
                None => (role.clone().unwrap_or_default(), input),
            };
            let not_before_ms = not_before
                .as_deref()
                .map(|t| {
                    t.parse::<jiff::Timestamp>()
                        .map(jiff::Timestamp::as_millisecond)
                        .with_context(|| format!("--not-before {t:?} is not an RFC 3339 time"))
                })
                .transpose()?;
            let task = NewTask {
                role,
                title: title.clone(),
                input,
                priority: *priority,
                not_before_ms,
                timeout_ms: *timeout_ms,
                max_attempts: *max_attempts,
                idempotency_key: key.clone(),
                tags: tags.clone(),
                background: *background,
                ..NewTask::default()
            };
            (
                Op::SubmitTask {
                    task: Box::new(task),
                },
                *json,
            )
        }
        _ => anyhow::bail!("not a task add command"),
    })
}

fn line(t: &TaskRow) -> String {
    let detail = if t.detail.is_empty() {
        String::new()
    } else {
        format!("  — {}", t.detail)
    };
    format!(
        "{}  {:<10} {:<12} p{} {}/{}  {}{}{}",
        t.id,
        t.state,
        t.role,
        t.priority,
        t.attempts,
        t.max_attempts,
        t.title,
        if t.paused { " [paused]" } else { "" },
        detail
    )
}

fn show(ws: &Workspace, id: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    let store = ws.store()?;
    let task = queue::get(store.conn(), id)?;
    let children: Vec<TaskRow> = queue::query::children(store.conn(), id)?
        .iter()
        .map(queue::Task::to_row)
        .collect();
    let effects = crate::core::effects::ledger::for_task(store.conn(), id)?;
    if json_out {
        say_json(&json!({"task": task, "children": children, "effects": effects}))?;
        return Ok(ExitCode::SUCCESS);
    }
    say(&line(&task.to_row()));
    say(&format!("input:  {}", task.input));
    if let Some(output) = &task.output {
        say(&format!("output: {output}"));
    }
    for e in &task.errors {
        say(&format!("error:  {e}"));
    }
    for c in &children {
        say(&format!("  child {}", line(c)));
    }
    for e in &effects {
        say(&format!(
            "  effect {} {} {}",
            e.action,
            e.state.as_str(),
            e.key
        ));
    }
    Ok(ExitCode::SUCCESS)
}
