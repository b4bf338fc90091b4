//! The hold window of approved irreversible actions.

use keel::core::approvals::{self, GateResult, gate};
use keel::core::audit::Actor;
use keel::core::effects::Reversibility;
use keel::core::policy::Policy;
use serde_json::json;

use super::{card, open, request, workspace};

const T0: i64 = 1_790_000_000_000;

#[test]
fn an_approved_irreversible_action_is_held_and_cancellable_until_release() {
    let (_tmp, ws) = workspace();
    let policy = Policy::load(&ws.root).unwrap();
    let mut store = open(&ws);
    let agent = Actor::agent("run-h");
    let req = request(
        "scheduler",
        "webhook.newsletter",
        Reversibility::Irreversible,
        "subscribers",
    );
    let c = card("send-1", json!({"issue": 12}));
    let GateResult::Pending { approval: id, .. } =
        gate(&mut store, T0, &policy, &agent, &req, &c).unwrap()
    else {
        panic!()
    };
    let done =
        approvals::approve(&mut store, T0 + 1_000, &Actor::Operator, &id, None, false).unwrap();
    let release = T0 + 1_000 + 600_000;
    assert_eq!(done.approval.send_after_ms, Some(release));
    assert_eq!(done.approval.row.risk, "high");
    assert_eq!(
        gate(&mut store, T0 + 2_000, &policy, &agent, &req, &c).unwrap(),
        GateResult::Held {
            approval: id.clone(),
            until_ms: release
        }
    );
    drop(store);
    // Cancel inside the window (after a restart): the task learns it was cancelled.
    let mut store = open(&ws);
    approvals::cancel(&mut store, release - 1, &Actor::Operator, &id, "Wrong list").unwrap();
    match gate(&mut store, release + 5, &policy, &agent, &req, &c).unwrap() {
        GateResult::Rejected { reason, .. } => assert_eq!(reason, "Wrong list"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        approvals::get(store.conn(), &id).unwrap().row.status,
        "cancelled"
    );

    // A second one is not cancelled: after the window it is released, and cancel is refused.
    let c2 = card("send-2", json!({"issue": 13}));
    let GateResult::Pending { approval: id2, .. } =
        gate(&mut store, T0, &policy, &agent, &req, &c2).unwrap()
    else {
        panic!()
    };
    approvals::approve(&mut store, T0, &Actor::Operator, &id2, None, false).unwrap();
    let released = T0 + 600_000;
    assert!(matches!(
        gate(&mut store, released, &policy, &agent, &req, &c2).unwrap(),
        GateResult::Proceed { .. }
    ));
    let err = approvals::cancel(&mut store, released, &Actor::Operator, &id2, "").unwrap_err();
    assert!(err.to_string().contains("hold window ended"), "{err}");
    // Pending ones cannot be "cancelled" (they are rejected instead).
    let c3 = card("send-3", json!({"issue": 14}));
    let GateResult::Pending { approval: id3, .. } =
        gate(&mut store, T0, &policy, &agent, &req, &c3).unwrap()
    else {
        panic!()
    };
    assert!(
        approvals::cancel(&mut store, T0, &Actor::Operator, &id3, "")
            .unwrap_err()
            .to_string()
            .contains("it is pending")
    );
}
