//! The real binary: `keel policy check|explain`, `keel approvals`, `keel reconcile`.

use crate::support::{keel, temp_workspace};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn policy_check_and_explain() {
    let (_tmp, ws) = temp_workspace();
    let ok = keel(&ws, &["policy", "check"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout(&ok).contains("0 errors, 0 warnings"),
        "{}",
        stdout(&ok)
    );

    let init = keel(&ws, &["policy", "init"]);
    assert!(init.status.success());
    assert_eq!(
        std::fs::read_to_string(ws.join("policy.toml")).unwrap(),
        keel::core::policy::DEFAULT_POLICY
    );
    let ok = keel(&ws, &["policy", "check"]);
    let expected = format!("{}: 8 rules, 0 errors", ws.join("policy.toml").display());
    assert!(stdout(&ok).contains(&expected), "{}", stdout(&ok));
    std::fs::write(
        ws.join("policy.toml"),
        "[[rule]]\nid = \"a\"\noutcome = \"allow\"\nreason = \"r\"\ntarrget = \"x\"\n",
    )
    .unwrap();
    let bad = keel(&ws, &["policy", "check"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("policy.toml:5:1:") && err.contains("tarrget"),
        "{err}"
    );

    let text = "[[rule]]\nid = \"site\"\naction = \"site.*\"\noutcome = \"require_approval\"\nreason = \"public\"\n\n\
                [[rule]]\nid = \"site-again\"\naction = \"site.*\"\noutcome = \"allow\"\nreason = \"oops\"\n";
    std::fs::write(ws.join("policy.toml"), text).unwrap();
    let contra = keel(&ws, &["policy", "check", "--json"]);
    assert_eq!(contra.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(stdout(&contra).trim()).unwrap();
    assert_eq!(v["findings"][0]["line"], 7);
    assert!(
        v["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("contradicts rule \"site\"")
    );

    std::fs::remove_file(ws.join("policy.toml")).unwrap();
    let ex = keel(
        &ws,
        &[
            "policy",
            "explain",
            "--agent",
            "publisher",
            "--action",
            "site.publish",
            "--target",
            "hello",
        ],
    );
    assert!(
        ex.status.success(),
        "{}",
        String::from_utf8_lossy(&ex.stderr)
    );
    let out = stdout(&ex);
    assert!(
        out.contains("=> require_approval (rule approve-public)"),
        "{out}"
    );
    assert!(
        out.contains("deny-large-payments") && out.contains("does not match \"payment.*\""),
        "{out}"
    );
    let json = keel(
        &ws,
        &[
            "policy",
            "explain",
            "--agent",
            "accountant",
            "--action",
            "payment.send",
            "--amount",
            "5000",
            "--reversibility",
            "irreversible",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(stdout(&json).trim()).unwrap();
    assert_eq!(
        (
            v["decision"]["outcome"].as_str(),
            v["decision"]["rule"].as_str()
        ),
        (Some("deny"), Some("deny-large-payments"))
    );
}

#[test]
fn approvals_and_reconcile_commands() {
    let (_tmp, ws) = temp_workspace();
    // Create a pending approval through the library, then decide it with the binary.
    let workspace = keel::core::workspace::Workspace::open(&ws).unwrap();
    let mut store = workspace.store().unwrap();
    let policy = keel::core::policy::Policy::load(&ws).unwrap();
    let req = super::request(
        "publisher",
        "site.publish",
        keel::core::effects::Reversibility::Reversible,
        "hello",
    );
    let r = keel::core::approvals::gate(
        &mut store,
        1,
        &policy,
        &keel::core::audit::Actor::agent("r"),
        &req,
        &super::card("t1", serde_json::json!({"slug": "hello"})),
    )
    .unwrap();
    let keel::core::approvals::GateResult::Pending { approval: id, .. } = r else {
        panic!("{r:?}")
    };
    drop(store);

    let list = keel(&ws, &["approvals", "list", "--json"]);
    let page: serde_json::Value = serde_json::from_str(stdout(&list).trim()).unwrap();
    assert_eq!(page["items"][0]["id"], id.as_str());
    let show = keel(&ws, &["approvals", "show", &id]);
    assert!(
        stdout(&show).contains("publisher wants site.publish on hello"),
        "{}",
        stdout(&show)
    );
    let rej = keel(&ws, &["approvals", "reject", &id, "--reason", "not yet"]);
    assert!(
        rej.status.success(),
        "{}",
        String::from_utf8_lossy(&rej.stderr)
    );
    let again = keel(&ws, &["approvals", "approve", &id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already rejected"));

    let clean = keel(&ws, &["reconcile"]);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    std::fs::write(ws.join("site/stray.md"), "+++\ntitle = \"s\"\nslug = \"stray\"\nversion = 1\ncontent_hash = \"x\"\nidempotency_key = \"k\"\n+++\n\nhi\n").unwrap();
    let drift = keel(&ws, &["reconcile", "--json"]);
    assert_eq!(drift.status.code(), Some(1));
    let m: serde_json::Value = serde_json::from_str(stdout(&drift).trim()).unwrap();
    assert_eq!(
        (m["kind"].as_str(), m["subject"].as_str()),
        (Some("orphaned"), Some("stray"))
    );
}
