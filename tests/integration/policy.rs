//! Policy, approvals, connectors, undo and reconciliation (issue 7).

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod analytics;
mod approvals;
mod cli;
mod handle;
mod hold;
pub mod receiver;
mod reconcile;
mod site;
mod webhook;

use std::path::{Path, PathBuf};

use keel::core::approvals::NewApproval;
use keel::core::effects::Reversibility;
use keel::core::policy::ActionRequest;
use keel::core::store::Store;
use keel::core::workspace::Workspace;

/// A fresh workspace (created through the library) and its root.
pub fn workspace() -> (tempfile::TempDir, Workspace) {
    let tmp = tempfile::tempdir().unwrap();
    let ws = Workspace::init(&tmp.path().join("ws")).unwrap();
    (tmp, ws)
}

pub fn open(ws: &Workspace) -> Store {
    ws.store().unwrap()
}

pub fn request(agent: &str, action: &str, rev: Reversibility, target: &str) -> ActionRequest {
    ActionRequest {
        agent: agent.into(),
        action: action.into(),
        object_kind: Some("publication".into()),
        amount: None,
        reversibility: rev,
        target: target.into(),
        cost: 0.0,
        workflow: None,
    }
}

pub fn card(task: &str, args: serde_json::Value) -> NewApproval {
    NewApproval {
        task: Some(task.into()),
        args,
        summary: "Publish the launch post".into(),
        rationale: "The editor signed off on the draft.".into(),
        undo_available: true,
        ..NewApproval::default()
    }
}

/// Every file under `dir`, recursively (to prove nothing was written outside a target).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
