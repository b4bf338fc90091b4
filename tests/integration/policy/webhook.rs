//! The webhook connector against a loopback receiver: keys, retries, lookup after a lost
//! answer, error classes, credentials by environment variable name, compensation.

use std::collections::BTreeMap;

use keel::core::audit::Actor;
use keel::core::connectors::WebhookConnector;
use keel::core::connectors::undo::{EffectRef, undo};
use keel::core::connectors::webhook::{HttpCall, WebhookConfig};
use keel::core::effects::{Connector, ConnectorError, Reversibility};
use serde_json::json;

use super::receiver::Receiver;
use super::{open, workspace};

fn hook(base: &str, path: &str) -> WebhookConfig {
    WebhookConfig {
        method: "POST".into(),
        url: format!("{base}{path}"),
        body: Some(r#"{"email": "{{email}}", "amount": {{amount}}}"#.into()),
        // The value is read from the environment at call time; cargo sets this one for tests.
        headers: BTreeMap::from([("X-Api-Key".to_string(), "CARGO_PKG_NAME".to_string())]),
        lookup_url: Some(format!("{base}/lookup/{{{{idempotency_key}}}}")),
        compensate: None,
        reversibility: None,
        timeout_secs: 5,
        description: String::new(),
    }
}

fn args() -> serde_json::Value {
    json!({"email": "ann@example.com", "amount": 42})
}

#[test]
fn retries_reuse_the_key_and_the_target_applies_once() {
    let rx = Receiver::start();
    let c = WebhookConnector::new("orders", hook(&rx.base, "/orders")).unwrap();
    assert_eq!(c.actions()[0].reversibility, Reversibility::Irreversible);
    // Before anything was sent, lookup says "not applied".
    assert!(
        c.lookup("webhook.orders", &args(), "key-A")
            .unwrap()
            .is_none()
    );
    let first = c.perform("webhook.orders", &args(), "key-A").unwrap();
    assert_eq!(first["status"], 201);
    // The answer is "lost" (crash before recording): the ledger asks instead of resending.
    let found = c
        .lookup("webhook.orders", &args(), "key-A")
        .unwrap()
        .unwrap();
    assert_eq!(found["body"], first["body"]);
    // A retry that does resend carries the same key; the target applies it once.
    for _ in 0..3 {
        let again = c.perform("webhook.orders", &args(), "key-A").unwrap();
        assert_eq!(again["body"], first["body"]);
    }
    assert_eq!(rx.applied(), 1);
    let keys = rx.keys();
    assert_eq!(keys.len(), 6);
    assert!(keys.iter().all(|k| k == "key-A"), "{keys:?}");
    let st = rx.state.lock().unwrap();
    let post = st.requests.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(
        post.headers.get("x-api-key").map(String::as_str),
        Some("keel")
    );
    let body: serde_json::Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body, json!({"email": "ann@example.com", "amount": 42}));
}

#[test]
fn errors_are_classified_with_clear_messages() {
    let rx = Receiver::start();
    let run = |path: &str| {
        WebhookConnector::new("t", hook(&rx.base, path))
            .unwrap()
            .perform("webhook.t", &args(), "k")
    };
    let perm = |path: &str| match run(path) {
        Err(e @ ConnectorError::Permanent { .. }) => e.to_string(),
        other => panic!("{path}: expected permanent, got {other:?}"),
    };
    let trans = |path: &str| match run(path) {
        Err(e @ ConnectorError::Transient { .. }) => e.to_string(),
        other => panic!("{path}: expected transient, got {other:?}"),
    };
    assert!(
        perm("/conflict").contains("409 Conflict"),
        "{}",
        perm("/conflict")
    );
    assert!(perm("/conflict").contains("an order with this number exists"));
    assert!(perm("/invalid").contains("422") && perm("/invalid").contains("email is not valid"));
    assert!(perm("/forbidden").contains("403"));
    assert!(trans("/busy").contains("503"));
    assert!(trans("/limited").contains("429"));
    // Unreachable: a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down = WebhookConnector::new("down", hook(&format!("http://127.0.0.1:{port}"), "/orders"))
        .unwrap();
    match down.perform("webhook.down", &args(), "k") {
        Err(e @ ConnectorError::Transient { .. }) => {
            assert!(e.to_string().contains("cannot connect"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // A missing argument or credential is permanent and names only the variable.
    let c = WebhookConnector::new("t", hook(&rx.base, "/orders")).unwrap();
    assert!(
        c.perform("webhook.t", &json!({"email": "x"}), "k")
            .unwrap_err()
            .to_string()
            .contains("`amount`")
    );
    let mut cfg = hook(&rx.base, "/orders");
    cfg.headers = BTreeMap::from([(
        "Authorization".to_string(),
        "KEEL_TEST_SURELY_UNSET_VAR".to_string(),
    )]);
    let err = WebhookConnector::new("t", cfg)
        .unwrap()
        .perform("webhook.t", &args(), "k")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "environment variable KEEL_TEST_SURELY_UNSET_VAR (for header Authorization) is not set"
        ),
        "{err}"
    );
    // Secrets never go in config: a header value that is not a variable name is refused.
    let mut cfg = hook(&rx.base, "/orders");
    cfg.headers = BTreeMap::from([("Authorization".to_string(), "Bearer abc.def".to_string())]);
    assert!(WebhookConnector::new("t", cfg).is_err());
    // No lookup endpoint: the connector cannot tell, so the ledger must escalate.
    let mut cfg = hook(&rx.base, "/orders");
    cfg.lookup_url = None;
    assert!(matches!(
        WebhookConnector::new("t", cfg)
            .unwrap()
            .lookup("webhook.t", &args(), "k"),
        Err(ConnectorError::Permanent { .. })
    ));
}

#[test]
fn compensation_calls_the_target_and_irreversible_hooks_cannot_be_undone() {
    let rx = Receiver::start();
    let (_tmp, ws) = workspace();
    let mut store = open(&ws);
    let plain = WebhookConnector::new("orders", hook(&rx.base, "/orders")).unwrap();
    let result = plain.perform("webhook.orders", &args(), "k1").unwrap();
    let effect = EffectRef {
        id: "e1".into(),
        action: "webhook.orders".into(),
        args: args(),
        result,
        key: "k1".into(),
    };
    let err = undo(&mut store, 1, &Actor::Operator, &plain, &effect, |_, _| {
        Ok(())
    })
    .unwrap_err();
    assert!(err.to_string().contains("cannot be undone"), "{err}");

    let mut cfg = hook(&rx.base, "/orders");
    cfg.compensate = Some(HttpCall {
        method: "DELETE".into(),
        url: format!("{}/orders/{{{{result.body.id}}}}", rx.base),
        body: None,
    });
    let refundable = WebhookConnector::new("orders", cfg).unwrap();
    assert_eq!(
        refundable.actions()[0].reversibility,
        Reversibility::Compensable
    );
    let out = undo(
        &mut store,
        2,
        &Actor::Operator,
        &refundable,
        &effect,
        |_, _| Ok(()),
    )
    .unwrap();
    assert_eq!(out["body"]["deleted"], "o1");
    assert_eq!(rx.state.lock().unwrap().deleted, vec!["o1".to_string()]);
    assert!(rx.keys().contains(&"k1:compensate".to_string()));
}
