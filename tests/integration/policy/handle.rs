//! The core handle answers approval ops and queries (what the console uses).

use keel::core::approvals::{GateResult, gate};
use keel::core::audit::Actor;
use keel::core::effects::Reversibility;
use keel::core::handle::CoreHandle;
use keel::core::policy::Policy;
use keel::protocol::{Op, Query};
use serde_json::json;

use super::{card, open, request, workspace};

#[test]
fn approve_reject_and_list_through_the_handle() {
    let (_tmp, ws) = workspace();
    let policy = Policy::load(&ws.root).unwrap();
    let ids: Vec<String> = {
        let mut store = open(&ws);
        ["a", "b"]
            .iter()
            .map(|s| {
                let req = request("publisher", "site.publish", Reversibility::Reversible, s);
                match gate(
                    &mut store,
                    1,
                    &policy,
                    &Actor::agent("r"),
                    &req,
                    &card(s, json!({"slug": s})),
                )
                .unwrap()
                {
                    GateResult::Pending { approval, .. } => approval,
                    other => panic!("{other:?}"),
                }
            })
            .collect()
    };
    let core = CoreHandle::start(ws.clone()).unwrap();
    let page = crate::support::answer_json(
        core.request_blocking(Op::Query {
            query: Query::Approvals {
                pending_only: true,
                offset: 0,
                limit: 10,
            },
        })
        .unwrap(),
    );
    assert_eq!(page["total"], 2);
    core.request_blocking(Op::Approve {
        id: ids[0].clone(),
        edited_body: None,
        always_allow: true,
    })
    .unwrap();
    core.request_blocking(Op::Reject {
        id: ids[1].clone(),
        reason: "later".into(),
    })
    .unwrap();
    let err = core
        .request_blocking(Op::Reject {
            id: ids[1].clone(),
            reason: "again".into(),
        })
        .unwrap_err();
    assert!(err.to_string().contains("already rejected"), "{err}");
    let detail = crate::support::answer_json(
        core.request_blocking(Op::Query {
            query: Query::ApprovalDetail { id: ids[1].clone() },
        })
        .unwrap(),
    );
    assert_eq!(detail["reason"], "later");
    let rules = crate::support::answer_json(
        core.request_blocking(Op::Query {
            query: Query::AllowRules {
                include_revoked: false,
            },
        })
        .unwrap(),
    );
    let rule = rules[0]["id"].as_str().unwrap().to_string();
    assert_eq!(rules[0]["target"], "a");
    core.request_blocking(Op::RevokeAllowRule { id: rule })
        .unwrap();
    let rules = crate::support::answer_json(
        core.request_blocking(Op::Query {
            query: Query::AllowRules {
                include_revoked: false,
            },
        })
        .unwrap(),
    );
    assert_eq!(rules.as_array().unwrap().len(), 0);
    let page = crate::support::answer_json(
        core.request_blocking(Op::Query {
            query: Query::Approvals {
                pending_only: true,
                offset: 0,
                limit: 10,
            },
        })
        .unwrap(),
    );
    assert_eq!(page["total"], 0);
    core.request_blocking(Op::Shutdown).unwrap();
}
