//! Reconciliation finds the drifts the test plants.

use keel::core::connectors::SiteConnector;
use keel::core::connectors::undo::EffectRef;
use keel::core::effects::Connector;
use keel::core::reconcile::{
    Fix, MismatchKind, PublicationObjects, reconcile_site, reconcile_webhook,
};
use rusqlite::params;
use serde_json::json;

use super::receiver::Receiver;
use super::{open, workspace};

/// Writes a publication object straight into the foundation tables (the objects module's
/// API is not in this branch yet).
fn put_publication(
    conn: &rusqlite::Connection,
    id: &str,
    version: i64,
    archived: bool,
    body: &str,
) {
    conn.execute(
        "INSERT OR REPLACE INTO objects (kind, id, version, archived, created_ms, updated_ms, title)
         VALUES ('publication', ?1, ?2, ?3, 0, 0, ?1)",
        params![id, version, archived],
    )
    .unwrap();
    let body = json!({"slug": id, "title": id, "body": body}).to_string();
    conn.execute(
        "INSERT INTO object_versions (kind, id, version, parent, author, body, hash, note, created_ms)
         VALUES ('publication', ?1, ?2, NULL, 'operator', ?3, 'h', '', 0)",
        params![id, version, body],
    )
    .unwrap();
}

fn publish(s: &SiteConnector, slug: &str, version: i64, body: &str) {
    s.perform(
        "site.publish",
        &json!({"slug": slug, "version": version, "body": body}),
        &format!("{slug}-{version}"),
    )
    .unwrap();
}

#[test]
fn site_reconciliation_finds_planted_drifts() {
    let (_tmp, ws) = workspace();
    let store = open(&ws);
    let conn = store.conn();
    let site = SiteConnector::open(&ws.root.join("site"), &ws.root.join("site-history")).unwrap();
    put_publication(conn, "fine", 1, false, "all good");
    publish(&site, "fine", 1, "all good");
    put_publication(conn, "edited", 1, false, "original");
    publish(&site, "edited", 1, "original");
    let path = ws.root.join("site/edited.md");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("original", "fixed a typo by hand");
    std::fs::write(&path, text).unwrap();
    put_publication(conn, "behind", 1, false, "v1");
    publish(&site, "behind", 1, "v1");
    put_publication(conn, "behind", 2, false, "v2");
    put_publication(conn, "missing", 1, false, "never published");
    publish(&site, "stray", 1, "nobody owns me");
    put_publication(conn, "retired", 1, true, "old");
    publish(&site, "retired", 1, "old");
    std::fs::write(ws.root.join("site/truncated.md"), "+++\ntitle = \"x\"\n").unwrap();
    std::fs::write(ws.root.join("site/.fine.md.keel-tmp"), "+++\nhalf").unwrap();

    let found = reconcile_site(&site, &PublicationObjects(conn)).unwrap();
    let mut got: Vec<(String, MismatchKind, Fix)> = found
        .iter()
        .map(|m| (m.subject.clone(), m.kind, m.fixes[0]))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            (
                ".fine.md.keel-tmp".to_string(),
                MismatchKind::StaleTemp,
                Fix::RemoveTemp
            ),
            ("behind".to_string(), MismatchKind::Drifted, Fix::Republish),
            (
                "edited".to_string(),
                MismatchKind::Drifted,
                Fix::AdoptExternal
            ),
            ("missing".to_string(), MismatchKind::Missing, Fix::Republish),
            ("retired".to_string(), MismatchKind::Orphaned, Fix::Archive),
            ("stray".to_string(), MismatchKind::Orphaned, Fix::Archive),
            (
                "truncated".to_string(),
                MismatchKind::Unreadable,
                Fix::Archive
            ),
        ],
        "{found:#?}"
    );
    let behind = found.iter().find(|m| m.subject == "behind").unwrap();
    assert_eq!(
        (behind.canonical_version, behind.external_version),
        (Some(2), Some(1))
    );
}

#[test]
fn webhook_reconciliation_looks_up_each_effect() {
    let rx = Receiver::start();
    let cfg = keel::core::connectors::webhook::WebhookConfig {
        method: "POST".into(),
        url: format!("{}/orders", rx.base),
        body: None,
        headers: std::collections::BTreeMap::default(),
        lookup_url: Some(format!("{}/lookup/{{{{idempotency_key}}}}", rx.base)),
        compensate: None,
        reversibility: None,
        timeout_secs: 5,
        description: String::new(),
    };
    let c = keel::core::connectors::WebhookConnector::new("orders", cfg).unwrap();
    let args = json!({"sku": "A"});
    let result = c.perform("webhook.orders", &args, "k-ok").unwrap();
    let ok = EffectRef {
        id: "e-ok".into(),
        action: "webhook.orders".into(),
        args: args.clone(),
        result,
        key: "k-ok".into(),
    };
    let lost = EffectRef {
        id: "e-lost".into(),
        action: "webhook.orders".into(),
        args: args.clone(),
        result: json!({}),
        key: "k-lost".into(),
    };
    let changed = EffectRef {
        id: "e-changed".into(),
        action: "webhook.orders".into(),
        args,
        result: json!({"body": {"id": "o99"}}),
        key: "k-ok".into(),
    };
    let found = reconcile_webhook(&c, &[ok, lost, changed]);
    let got: Vec<(&str, MismatchKind)> =
        found.iter().map(|m| (m.subject.as_str(), m.kind)).collect();
    assert_eq!(
        got,
        vec![
            ("e-lost", MismatchKind::Missing),
            ("e-changed", MismatchKind::Drifted)
        ]
    );
}
