//! The audit log through the real binary: tamper evidence, filters, export, redaction.

use serde_json::{Value, json};

use crate::support::{keel, keel_json, keel_ok, put, stderr, temp_workspace};

/// A workspace with a few audited writes (5 entries: seq 1..=5).
fn workspace_with_history() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, ws) = temp_workspace();
    assert!(
        put(&ws, "customer", "ann", None, &json!({"name": "Ann"}))
            .status
            .success()
    );
    assert!(
        put(&ws, "customer", "ann", Some(1), &json!({"name": "Ann B."}))
            .status
            .success()
    );
    assert!(
        put(&ws, "idea", "i1", None, &json!({"title": "Course"}))
            .status
            .success()
    );
    assert!(
        put(&ws, "draft", "d1", None, &json!({"title": "Post"}))
            .status
            .success()
    );
    keel_ok(
        &ws,
        &["objects", "archive", "idea", "i1", "--based-on", "1"],
    );
    (tmp, ws)
}

fn raw(ws: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(ws.join("keel.db")).unwrap()
}

#[test]
fn triggers_refuse_update_and_delete() {
    let (_tmp, ws) = workspace_with_history();
    let conn = raw(&ws);
    let update = conn.execute("UPDATE audit SET actor = 'someone' WHERE seq = 1", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    assert!(conn.execute("DELETE FROM audit WHERE seq = 1", []).is_err());
    assert!(
        conn.execute("UPDATE object_versions SET body = '{}'", [])
            .is_err()
    );
    assert!(conn.execute("DELETE FROM object_versions", []).is_err());
}

#[test]
fn verify_names_an_entry_edited_behind_the_triggers_back() {
    let (_tmp, ws) = workspace_with_history();
    let ok = keel_ok(&ws, &["audit", "verify"]);
    assert!(
        ok.contains("5 entries, chain intact") && ok.contains("head: entry 5 hash "),
        "{ok}"
    );
    let conn = raw(&ws);
    conn.execute_batch("DROP TRIGGER audit_no_update").unwrap();
    let changed = conn
        .execute(
            "UPDATE audit SET payload = '{\"hash\":\"forged\",\"parent\":1,\"version\":2}' WHERE seq = 2",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);
    let out = keel(&ws, &["audit", "verify"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("BROKEN at entry 2"), "{text}");
    let json: Value =
        serde_json::from_slice(&keel(&ws, &["audit", "verify", "--json"]).stdout).unwrap();
    assert_eq!(json["first_broken"]["seq"], 2);
    let doctor = keel(&ws, &["doctor"]);
    assert_eq!(doctor.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&doctor.stdout).contains("broken at entry 2"));
}

#[test]
fn verify_names_a_deleted_entry_and_a_relinked_chain() {
    let (_tmp, ws) = workspace_with_history();
    let conn = raw(&ws);
    conn.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 3;")
        .unwrap();
    drop(conn);
    let json: Value =
        serde_json::from_slice(&keel(&ws, &["audit", "verify", "--json"]).stdout).unwrap();
    assert_eq!(json["first_broken"]["seq"], 4);
    assert!(
        json["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("sequence")
    );
}

#[test]
fn show_filters_by_actor_subject_action_and_time() {
    let (_tmp, ws) = workspace_with_history();
    let lines = |args: &[&str]| -> Vec<Value> {
        keel_ok(&ws, args)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(lines(&["audit", "show", "--json"]).len(), 5);
    let ann = lines(&["audit", "show", "--subject", "customer/ann", "--json"]);
    assert_eq!(ann.len(), 2);
    assert_eq!(ann[0]["seq"], 2, "newest first");
    assert_eq!(
        lines(&["audit", "show", "--subject", "customer/*", "--json"]).len(),
        2
    );
    assert_eq!(
        lines(&["audit", "show", "--action", "object.archive", "--json"]).len(),
        1
    );
    assert_eq!(
        lines(&["audit", "show", "--actor", "operator", "--json"]).len(),
        5
    );
    assert_eq!(
        lines(&["audit", "show", "--actor", "agent:*", "--json"]).len(),
        0
    );
    assert_eq!(
        lines(&["audit", "show", "--until", "2000-01-01T00:00:00Z", "--json"]).len(),
        0
    );
    assert_eq!(
        lines(&[
            "audit",
            "show",
            "--since",
            "2000-01-01T00:00:00Z",
            "--limit",
            "3",
            "--json"
        ])
        .len(),
        3
    );
    let bad = keel(&ws, &["audit", "show", "--since", "yesterday"]);
    assert!(stderr(&bad).contains("RFC 3339"), "{}", stderr(&bad));
}

#[test]
fn export_writes_the_whole_chain_as_jsonl() {
    let (_tmp, ws) = workspace_with_history();
    let out = ws.join("audit.jsonl");
    keel_ok(&ws, &["audit", "export", "--output", out.to_str().unwrap()]);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&out).unwrap().permissions())
            & 0o777;
    assert_eq!(mode, 0o600);
    let entries: Vec<keel::core::audit::Entry> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 5);
    // The export alone is enough to re-check the chain.
    let mut prev = keel::core::audit::GENESIS.to_string();
    for e in &entries {
        assert_eq!(e.prev_hash, prev);
        let h = keel::core::audit::entry_hash(
            &prev, e.seq, e.ts_ms, &e.actor, &e.action, &e.subject, &e.payload,
        );
        assert_eq!(h, e.hash);
        prev = h;
    }
}

#[test]
fn a_secret_in_an_object_body_never_reaches_the_audit_log() {
    let (_tmp, ws) = temp_workspace();
    let key = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123";
    let body =
        json!({"title": format!("Integration using {key}"), "text": format!("token: {key}")});
    assert!(put(&ws, "note", "leaky", None, &body).status.success());
    let export = keel_ok(&ws, &["audit", "export"]);
    assert!(!export.is_empty());
    assert!(!export.contains(key), "{export}");
    assert!(
        export.contains("[redacted]"),
        "the title in the payload is redacted: {export}"
    );
    let shown = keel_ok(&ws, &["audit", "show", "--json"]);
    assert!(!shown.contains(key));
    // The object itself keeps the operator's data.
    let object = keel_json(&ws, &["objects", "show", "note", "leaky", "--json"]);
    assert_eq!(object["body"], body);
}

#[test]
fn doctor_names_an_object_version_edited_behind_the_triggers_back() {
    let (_tmp, ws) = workspace_with_history();
    let conn = raw(&ws);
    conn.execute_batch(
        "DROP TRIGGER object_versions_no_update;
         UPDATE object_versions SET body = '{\"name\":\"Mallory\"}' WHERE id = 'ann' AND version = 2;",
    )
    .unwrap();
    drop(conn);
    let out = keel(&ws, &["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("customer/ann v2: the body does not match its stored hash"),
        "{text}"
    );
}

#[test]
fn the_console_reads_the_timeline_from_either_end_through_the_core() {
    let (_d, ws) = workspace_with_history();
    let handle =
        keel::core::handle::CoreHandle::start(keel::core::workspace::Workspace::open(&ws).unwrap())
            .unwrap();
    let page = |after_seq: Option<i64>, oldest_first: bool| -> Vec<i64> {
        let answer = handle
            .request_blocking(keel::protocol::Op::Query {
                query: keel::protocol::Query::AuditPage {
                    filter: keel::core::audit::Filter {
                        after_seq,
                        ..keel::core::audit::Filter::default()
                    },
                    limit: 3,
                    oldest_first,
                },
            })
            .unwrap();
        crate::support::answer_json(answer)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect()
    };
    // `G` in the console: the oldest entries, then upwards from any entry.
    assert_eq!(page(None, true), [1, 2, 3]);
    assert_eq!(page(Some(2), true), [3, 4, 5]);
    let newest = page(None, false);
    assert!(newest[0] > newest[1] && newest[1] > newest[2], "{newest:?}");
}
