//! `keel reconcile`: compares canonical state with each target and lists mismatches.

use std::process::ExitCode;

use clap::Args;

use crate::core::connectors::SiteConnector;
use crate::core::reconcile::{PublicationObjects, reconcile_site};
use crate::core::workspace::Workspace;

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// One JSON object per mismatch.
    #[arg(long)]
    json: bool,
}

/// Exit code 0 when everything matches, 1 when there are mismatches.
pub fn run(ws: &Workspace, args: &ReconcileArgs) -> anyhow::Result<ExitCode> {
    let store = ws.store()?;
    let cfg = &ws.config.connectors.site;
    let site = SiteConnector::open(&ws.root.join(&cfg.dir), &ws.root.join(&cfg.history_dir))?;
    // TODO(lead, ledger): also run reconcile::reconcile_webhook for each configured webhook
    // over its completed effects from the effects ledger.
    let found = reconcile_site(&site, &PublicationObjects(store.conn()))?;
    for m in &found {
        if args.json {
            super::say_json(m)?;
        } else {
            let fixes: Vec<String> = m
                .fixes
                .iter()
                .map(|f| {
                    serde_json::to_value(f)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                })
                .collect();
            super::say(&format!(
                "{:<8} {:<12} {:<24} {}  [fix: {}]",
                m.target,
                serde_json::to_value(m.kind)?.as_str().unwrap_or_default(),
                m.subject,
                m.detail,
                fixes.join(" | ")
            ));
        }
    }
    if !args.json {
        super::say(&format!("{} mismatches", found.len()));
    }
    Ok(if found.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
