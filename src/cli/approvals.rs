//! `keel approvals list|show|approve|reject|cancel|rules|revoke|sweep`. Decisions made here
//! are the operator's, sent through the core handle (one transaction each, events raised).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::args::ListPage;
use crate::core::clock;
use crate::core::handle::CoreHandle;
use crate::core::workspace::Workspace;
use crate::protocol::{
    AllowRule, Answer, ApprovalDetail, ApprovalRow, Approved, BatchItem, Op, Page, Query,
};

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List approvals, pending first.
    List {
        /// Include decided ones.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        page: ListPage,
    },
    /// Show one approval: what, why, cost, risk, undo, diff and memory used.
    Show {
        /// The approval id.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Approve one or more pending approvals.
    Approve {
        /// The approval ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Approve with this edited body (a JSON file) instead of the proposed one.
        #[arg(long, value_name = "FILE")]
        edit: Option<PathBuf>,
        /// Also always allow this agent this action on this target.
        #[arg(long)]
        always_allow: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Reject with a reason (the agent gets it back when the task is retried).
    Reject {
        /// The approval id.
        id: String,
        /// Why: the agent sees it when the task is retried.
        #[arg(long)]
        reason: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Cancel an approved irreversible action during its hold window.
    Cancel {
        /// The approval id.
        id: String,
        /// Why the action is cancelled (recorded in the audit log).
        #[arg(long, default_value = "")]
        reason: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List "always allow" rules created from decisions.
    Rules {
        /// Include revoked ones.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an "always allow" rule.
    Revoke {
        /// The rule id (see `keel approvals rules`).
        id: String,
    },
    /// Apply the default outcome to expired approvals now.
    Sweep {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ws: &Workspace, cmd: &ApprovalsCommand) -> anyhow::Result<ExitCode> {
    let handle = CoreHandle::start(ws.clone())?;
    let out = dispatch(&handle, cmd);
    handle.shutdown();
    out
}

fn query(handle: &CoreHandle, query: Query) -> anyhow::Result<Answer> {
    Ok(handle.request_blocking(Op::Query { query })?)
}

fn dispatch(handle: &CoreHandle, cmd: &ApprovalsCommand) -> anyhow::Result<ExitCode> {
    // Expired approvals settle first, so what is listed or decided is current.
    let swept: Vec<(String, String)> = handle.request_blocking(Op::SweepApprovals)?.try_into()?;
    match cmd {
        ApprovalsCommand::List {
            all,
            page: ListPage { limit, json },
        } => {
            let q = Query::Approvals {
                pending_only: !*all,
                offset: 0,
                limit: *limit,
            };
            let page: Page<ApprovalRow> = query(handle, q)?.try_into()?;
            if *json {
                super::say_json(&page)?;
            } else {
                for a in &page.items {
                    super::say(&format!(
                        "{}  {:<9} {:<12} {:<16} {:<24} {:<6} {}",
                        a.id, a.status, a.agent, a.action, a.target, a.risk, a.summary
                    ));
                }
                super::say(&format!("{} shown of {}", page.items.len(), page.total));
            }
        }
        ApprovalsCommand::Show { id, json } => {
            let a: ApprovalDetail =
                query(handle, Query::ApprovalDetail { id: id.clone() })?.try_into()?;
            if *json {
                super::say_json(&a)?;
            } else {
                show(&a);
            }
        }
        ApprovalsCommand::Approve {
            ids,
            edit,
            always_allow,
            json,
        } => return approve(handle, ids, edit.as_deref(), *always_allow, *json),
        ApprovalsCommand::Reject { id, reason, json } => {
            let op = Op::Reject {
                id: id.clone(),
                reason: reason.clone(),
            };
            let a: ApprovalDetail = handle.request_blocking(op)?.try_into()?;
            if *json {
                super::say_json(&a)?;
            } else {
                super::say(&format!("rejected {id}: {reason}"));
            }
        }
        ApprovalsCommand::Cancel { id, reason, json } => {
            let op = Op::CancelApproval {
                id: id.clone(),
                reason: reason.clone(),
            };
            let a: ApprovalDetail = handle.request_blocking(op)?.try_into()?;
            if *json {
                super::say_json(&a)?;
            } else {
                super::say(&format!("cancelled {id} before release"));
            }
        }
        ApprovalsCommand::Rules { all, json } => {
            let q = Query::AllowRules {
                include_revoked: *all,
            };
            let rules: Vec<AllowRule> = query(handle, q)?.try_into()?;
            if *json {
                super::say_json(&rules)?;
            } else {
                for r in &rules {
                    let state = r.revoked_ms.map_or("active".to_string(), |t| {
                        format!("revoked {}", clock::rfc3339(t))
                    });
                    super::say(&format!(
                        "{}  {:<12} {:<16} {:<24} {state}",
                        r.id, r.agent, r.action, r.target
                    ));
                }
            }
        }
        ApprovalsCommand::Revoke { id } => {
            handle.request_blocking(Op::RevokeAllowRule { id: id.clone() })?;
            super::say(&format!("revoked {id}"));
        }
        ApprovalsCommand::Sweep { json } => {
            if *json {
                super::say_json(&swept)?;
            } else {
                for (id, status) in &swept {
                    super::say(&format!("{id} -> {status}"));
                }
                super::say(&format!("{} expired approvals settled", swept.len()));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn approve(
    handle: &CoreHandle,
    ids: &[String],
    edit: Option<&std::path::Path>,
    always_allow: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use std::fmt::Write as _;

    if let [id] = ids {
        let edited = edit
            .map(|f| -> anyhow::Result<serde_json::Value> {
                let text = std::fs::read_to_string(f)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
                serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", f.display()))
            })
            .transpose()?;
        let op = Op::Approve {
            id: id.clone(),
            edited_body: edited,
            always_allow,
        };
        let done: Approved = handle.request_blocking(op)?.try_into()?;
        if json {
            super::say_json(&done)?;
        } else {
            let mut line = format!("approved {id}");
            if let Some(t) = done.approval.send_after_ms {
                let _ = write!(
                    line,
                    "; held until {} (keel approvals cancel {id})",
                    clock::rfc3339(t),
                );
            }
            if let Some(r) = done.allow_rule {
                let _ = write!(line, "; always-allow rule {r}");
            }
            super::say(&line);
        }
    } else {
        if edit.is_some() || always_allow {
            anyhow::bail!("--edit and --always-allow apply to one approval at a time");
        }
        let op = Op::BatchApprove { ids: ids.to_vec() };
        let items: Vec<BatchItem> = handle.request_blocking(op)?.try_into()?;
        if json {
            super::say_json(&items)?;
        } else {
            for i in &items {
                match &i.error {
                    None => super::say(&format!("approved {}", i.id)),
                    Some(e) => super::say(&format!("skipped  {}: {e}", i.id)),
                }
            }
        }
        if items.iter().any(|i| !i.approved) {
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(a: &ApprovalDetail) {
    let r = &a.row;
    let say = super::say;
    say(&format!("approval {}  [{}]", r.id, r.status));
    say(&format!("  {} wants {} on {}", r.agent, r.action, r.target));
    if !r.summary.is_empty() {
        say(&format!("  what:   {}", r.summary));
    }
    say(&format!("  why:    {}", r.rationale));
    say(&format!("  rule:   {} — {}", r.rule, a.rule_reason));
    say(&format!(
        "  cost {:.2}{}  risk {}  {}  undo {}",
        r.cost_usd,
        r.amount
            .map(|m| format!("  amount {m:.2}"))
            .unwrap_or_default(),
        r.risk,
        r.reversibility,
        if r.undo_available {
            "available"
        } else {
            "not available"
        }
    ));
    if let Some(e) = r.expires_ms {
        say(&format!(
            "  expires {} (then: {})",
            clock::rfc3339(e),
            a.on_expiry
        ));
    }
    if let Some(t) = a.send_after_ms {
        say(&format!("  held until {}", clock::rfc3339(t)));
    }
    if let Some(reason) = &a.reason {
        say(&format!("  reason: {reason}"));
    }
    for m in &r.memory {
        say(&format!(
            "  memory: {} v{} ({:.2}) {}",
            m.item, m.version, m.score, m.preview
        ));
    }
    if !r.diff.is_empty() {
        say(&r.diff);
    }
}
