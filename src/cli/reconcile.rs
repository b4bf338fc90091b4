//! `keel reconcile`: compares canonical state with each target and lists mismatches.

use std::process::ExitCode;

use clap::Args;

use crate::core::connectors::undo::EffectRef;
use crate::core::connectors::{SiteConnector, WebhookConnector};
use crate::core::effects::ledger;
use crate::core::reconcile::{PublicationObjects, reconcile_site, reconcile_webhook};
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
    let site = SiteConnector::from_config(&ws.root, cfg)?;
    let mut found = reconcile_site(&site, &PublicationObjects(store.conn()))?;
    // Each configured webhook, over its completed effects in the ledger.
    for (name, cfg) in &ws.config.connectors.webhooks {
        let hook = WebhookConnector::new(name, cfg.clone())?;
        let done: Vec<EffectRef> = ledger::done_for_connector(store.conn(), name)?
            .into_iter()
            .map(|e| EffectRef {
                id: e.key.clone(),
                action: e.action,
                args: e.args,
                result: e.result.unwrap_or(serde_json::Value::Null),
                key: e.key,
            })
            .collect();
        found.extend(reconcile_webhook(&hook, &done));
    }
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
