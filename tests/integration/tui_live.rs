//! The console live, end to end in tmux: it opens on a workspace with pending approvals and
//! queued work, runs the work itself (its in-process coordinator), shows a task another
//! process submits (the audit watcher), approves one item, edits a draft and approves
//! another, and quits; then the workspace is checked.

use std::path::Path;
use std::time::{Duration, Instant};

use keel::core::agents::local_host::put_version;
use keel::core::approvals::{self, GateResult, NewApproval};
use keel::core::audit::{self, Actor, Filter};
use keel::core::effects::Reversibility;
use keel::core::policy::{ActionRequest, Policy};
use keel::core::workspace::Workspace;
use keel::protocol::ObjectRef;
use serde_json::{Value, json};

use crate::support::{keel, temp_workspace};
use crate::tui::Tmux;

const T0: i64 = 1_790_000_000_000;

/// A draft object and a pending `site.publish` approval proposing a new body for it.
fn pending_publication(ws: &Workspace, slug: &str, title: &str, text: &str) -> String {
    let mut store = ws.store().unwrap();
    let current = json!({"title": title, "body": format!("{text} (first draft)")});
    let version = store
        .write(|tx| {
            put_version(
                tx,
                T0,
                &Actor::agent("run-w"),
                "draft",
                slug,
                None,
                &current,
            )
        })
        .unwrap();
    let req = ActionRequest {
        agent: "publisher".into(),
        action: "site.publish".into(),
        object_kind: Some("draft".into()),
        amount: None,
        reversibility: Reversibility::Reversible,
        target: slug.into(),
        cost: 0.0,
        workflow: Some("content".into()),
    };
    let card = NewApproval {
        task: Some(format!("task-{slug}")),
        args: json!({"slug": slug}),
        summary: format!("Publish {title}"),
        rationale: "The editor signed off.".into(),
        undo_available: true,
        object: Some(ObjectRef {
            kind: "draft".into(),
            id: slug.into(),
            version,
        }),
        current_body: Some(current),
        proposed_body: Some(json!({"title": title, "body": text})),
        ..NewApproval::default()
    };
    let policy = Policy::load(&ws.root).unwrap();
    match approvals::gate(&mut store, T0, &policy, &Actor::agent("run-p"), &req, &card).unwrap() {
        GateResult::Pending { approval, .. } => approval,
        other => panic!("publishing asks the operator first: {other:?}"),
    }
}

fn task_state(ws: &Workspace, title: &str) -> Option<String> {
    ws.store()
        .unwrap()
        .conn()
        .query_row("SELECT state FROM tasks WHERE title = ?1", [title], |r| {
            r.get(0)
        })
        .ok()
}

fn wait_state(ws: &Workspace, title: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while task_state(ws, title).as_deref() != Some(state) {
        assert!(
            Instant::now() < deadline,
            "{title} is {:?}, never {state}",
            task_state(ws, title)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn add_task(root: &Path, title: &str) {
    let out = keel(root, &["task", "add", "--role", "noop", "--title", title]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[allow(clippy::too_many_lines)] // one operator session, then the workspace check
fn console_runs_work_refreshes_across_processes_approves_and_edits() {
    let (_tmp, root) = temp_workspace();
    let ws = Workspace::open(&root).unwrap();
    let alpha = pending_publication(&ws, "alpha", "Alpha", "Alpha launch notes.");
    let beta = pending_publication(&ws, "beta", "Beta", "Beta launch notes.");
    // Queued before the console opens; nothing else runs a coordinator on this workspace.
    add_task(&root, "chore-before");
    assert_eq!(task_state(&ws, "chore-before").as_deref(), Some("queued"));

    let t = Tmux::start(&root, 140, 40);
    t.wait_for("Publish Alpha");
    t.wait_for("Publish Beta");
    // The console's own coordinator runs the queued task.
    wait_state(&ws, "chore-before", "succeeded");
    // Another process submits work: the console shows it (cross-process refresh) and runs it.
    add_task(&root, "chore-from-cli");
    t.wait_for("chore-from-cli");
    wait_state(&ws, "chore-from-cli", "succeeded");

    // Queue → Runs → Memory → Approvals; approve the selected item.
    t.keys(&["Tab", "Tab", "Tab", "a"]);
    t.wait_for("y / enter: confirm");
    t.keys(&["y"]);
    // One approval leaves the pending inbox.
    let deadline = Instant::now() + Duration::from_secs(30);
    let remaining = loop {
        let screen = t.screen();
        match (
            screen.contains("Publish Alpha"),
            screen.contains("Publish Beta"),
        ) {
            (true, false) => break alpha.clone(),
            (false, true) => break beta.clone(),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "no approval left the inbox:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let first = if remaining == alpha { &beta } else { &alpha };
    // Edit the other one's draft, review the diff, approve.
    t.keys(&["e"]);
    // (The draft's text is also on the approval card: wait for the editor itself.)
    t.wait_for("Edit draft —");
    t.keys(&["End", " Edited by hand."]);
    t.wait_for("Edited by hand.");
    t.keys(&["C-s"]);
    t.wait_for("Review your edits");
    t.keys(&["Enter"]);
    t.wait_until_gone("Publish Alpha");
    t.wait_until_gone("Publish Beta");
    // A change no in-process component makes: the CLI pauses the queue; only the audit
    // watcher can tell the console, whose status bar then says so.
    t.wait_for("queue running");
    assert!(keel(&root, &["queue", "pause"]).status.success());
    t.wait_for("queue paused");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), "0");
    drop(t);

    // The workspace: both approved by the operator; the edit stored on the approval.
    let store = ws.store().unwrap();
    let plain = approvals::get(store.conn(), first).unwrap();
    assert_eq!(plain.row.status, "approved");
    assert_eq!(plain.decided_by.as_deref(), Some("operator"));
    assert_eq!(plain.edited_body, None);
    let edited = approvals::get(store.conn(), &remaining).unwrap();
    assert_eq!(edited.row.status, "approved");
    let body = edited
        .edited_body
        .expect("the edit is stored with the approval");
    let text = body["body"].as_str().unwrap();
    assert!(text.ends_with("launch notes. Edited by hand."), "{body}");
    assert_eq!(body["title"], edited.row.proposed_body.unwrap()["title"]);
    // Audited, and the chain verifies.
    let decisions: Vec<Value> = audit::query(
        store.conn(),
        &Filter {
            actor: Some("operator".into()),
            ..Filter::default()
        },
        100,
        false,
    )
    .unwrap()
    .into_iter()
    .filter(|e| e.subject.starts_with("approval/"))
    .map(|e| json!([e.action, e.subject]))
    .collect();
    assert!(
        decisions.contains(&json!(["approval.approve", format!("approval/{first}")]))
            || decisions
                .iter()
                .any(|d| d[1] == format!("approval/{first}")),
        "{decisions:?}"
    );
    assert!(
        decisions
            .iter()
            .any(|d| d[1] == format!("approval/{remaining}")),
        "{decisions:?}"
    );
    let verify = keel(&root, &["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    // Nothing left to recover, and no lease outlived the console.
    assert!(
        !root.join("recovery").exists()
            || std::fs::read_dir(root.join("recovery"))
                .unwrap()
                .next()
                .is_none()
    );
    let held: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM tasks WHERE state = 'running' OR lease_owner IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(held, 0);
}
