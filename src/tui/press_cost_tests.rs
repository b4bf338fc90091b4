//! What one operator press costs against a real core: the approve key is one op, one write
//! transaction, and a refresh of only what changed (counted by the handle).

use serde_json::json;

use super::message::{Command, MainPane};
use super::state::App;
use super::test_fixtures::{T0, answer, key, press};
use crate::core::approvals::{self, GateResult, NewApproval};
use crate::core::audit::Actor;
use crate::core::effects::Reversibility;
use crate::core::handle::CoreHandle;
use crate::core::policy::{ActionRequest, Policy};
use crate::core::queue::{self, NewTask, RoleCatalog};
use crate::core::workspace::Workspace;
use crate::protocol::Event;

/// Answers `commands` with the real core, then delivers the events they raised (as the
/// console's loop does, one burst at a time) until nothing more happens.
fn settle(
    app: &mut App,
    handle: &CoreHandle,
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    commands: Vec<Command>,
) {
    let ask = |op: &crate::protocol::Op| {
        Some(
            handle
                .request_blocking(op.clone())
                .map_err(|e| e.to_string()),
        )
    };
    answer(app, commands, ask);
    loop {
        let burst: Vec<Event> = std::iter::from_fn(|| events.try_recv().ok()).collect();
        if burst.is_empty() {
            break;
        }
        let more = app.on_events(burst);
        answer(app, more, ask);
    }
}

/// A task waiting for the operator's approval of its publish of `slug`.
fn waiting_approval(ws: &Workspace, slug: &str) -> String {
    let mut store = ws.store().unwrap();
    let catalog = RoleCatalog::load(&ws.root).unwrap();
    let new = NewTask {
        role: "noop".into(),
        title: "publish the launch post".into(),
        await_approval: true,
        ..NewTask::default()
    };
    let task = store
        .write(|tx| queue::submit(tx, T0, &Actor::Operator, &catalog, new))
        .unwrap()
        .task
        .id;
    let request = ActionRequest {
        agent: "publisher".into(),
        action: "site.publish".into(),
        object_kind: None,
        amount: None,
        reversibility: Reversibility::Reversible,
        target: slug.into(),
        cost: 0.0,
        workflow: None,
    };
    let card = NewApproval {
        task: Some(task),
        args: json!({"slug": slug}),
        summary: "Publish the launch post".into(),
        ..NewApproval::default()
    };
    let policy = Policy::load(&ws.root).unwrap();
    match approvals::gate(&mut store, T0, &policy, &Actor::agent("r"), &request, &card).unwrap() {
        GateResult::Pending { approval, .. } => approval,
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_approve_press_is_one_write_and_two_queries() {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::init(&dir.path().join("ws")).unwrap();
    let id = waiting_approval(&ws, "launch");
    let handle = CoreHandle::start(ws.clone()).unwrap();
    let mut events = handle.subscribe();
    let mut a = super::new_app(&ws).unwrap();
    let start = a.start();
    settle(&mut a, &handle, &mut events, start);
    a.focus = MainPane::Approvals;
    assert_eq!(a.approvals.selected().map(|r| r.id.clone()), Some(id));

    let before = handle.served();
    let c = press(&mut a, &[key('a'), key('y')]);
    settle(&mut a, &handle, &mut events, c);
    let after = handle.served();

    let (ops, writes, queries) = (
        after.ops - before.ops,
        after.writes - before.writes,
        after.queries - before.queries,
    );
    // The approvals list and the queue (whose task resumed); nothing else reloads.
    assert_eq!(
        (ops, writes, queries),
        (1, 1, 2),
        "ops, write transactions, queries for one approve press"
    );
    assert!(a.approvals.selected().is_none_or(|r| r.status != "pending"));
    handle.shutdown();
}

#[test]
fn a_batch_approve_is_one_op_and_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::init(&dir.path().join("ws")).unwrap();
    let first = waiting_approval(&ws, "launch");
    let second = waiting_approval(&ws, "pricing");
    let handle = CoreHandle::start(ws.clone()).unwrap();
    let mut events = handle.subscribe();
    let mut a = super::new_app(&ws).unwrap();
    let start = a.start();
    settle(&mut a, &handle, &mut events, start);
    a.focus = MainPane::Approvals;

    let before = handle.served();
    let c = press(&mut a, &[key(' '), key(' '), key('a'), key('y')]);
    let mut sent: Vec<_> = super::test_fixtures::ops(&c);
    if let Some(crate::protocol::Op::BatchApprove { ids }) = sent.first_mut() {
        ids.sort();
    }
    let mut ids = vec![first, second];
    ids.sort();
    assert_eq!(sent, vec![crate::protocol::Op::BatchApprove { ids }]);
    settle(&mut a, &handle, &mut events, c);
    let after = handle.served();
    assert_eq!(
        (after.ops - before.ops, after.writes - before.writes),
        (1, 1),
        "ops and write transactions for one batch approve"
    );
    assert!(a.approvals.list.rows.iter().all(|r| r.status != "pending"));
    handle.shutdown();
}
