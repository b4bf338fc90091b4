//! The static-site connector: idempotency, atomic writes, path escapes, half-written files,
//! compensation and undo.

use std::path::Path;

use keel::core::audit::{self, Actor, Filter};
use keel::core::connectors::SiteConnector;
use keel::core::connectors::undo::{EffectRef, undo};
use keel::core::effects::{Connector, ConnectorError};
use serde_json::{Value, json};

use super::{files_under, open, workspace};

fn site(root: &Path) -> SiteConnector {
    SiteConnector::open(&root.join("site"), &root.join("site-history")).unwrap()
}

fn page(slug: &str, version: i64, body: &str) -> Value {
    json!({"slug": slug, "version": version, "title": "Hello", "body": body, "extra": {"tags": ["news"]}})
}

fn permanent(r: Result<Value, ConnectorError>) -> String {
    match r {
        Err(e @ ConnectorError::Permanent { .. }) => e.to_string(),
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[test]
fn publish_is_idempotent_by_key_and_by_slug_and_version() {
    let tmp = tempfile::tempdir().unwrap();
    let s = site(tmp.path());
    let first = s
        .perform("site.publish", &page("hello", 1, "# Hello\n\nFirst."), "k1")
        .unwrap();
    assert_eq!(first["written"], true);
    let file = tmp.path().join("site/hello.md");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("+++\n")
            && text.contains("idempotency_key = \"k1\"")
            && text.contains("First."),
        "{text}"
    );
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    // A retry with the same key: same result, no rewrite.
    let again = s
        .perform("site.publish", &page("hello", 1, "# Hello\n\nFirst."), "k1")
        .unwrap();
    assert_eq!(again["written"], false);
    assert_eq!(again["content_hash"], first["content_hash"]);
    // Same slug, version and content under another key: also no rewrite.
    assert_eq!(
        s.perform("site.publish", &page("hello", 1, "# Hello\n\nFirst."), "k2")
            .unwrap()["written"],
        false
    );
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), mtime);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    // Same version, different content: a conflict, not a silent overwrite.
    assert!(
        permanent(s.perform("site.publish", &page("hello", 1, "Other"), "k3"))
            .contains("already has version 1")
    );
    // Older version: refused.
    s.perform("site.update", &page("hello", 3, "v3"), "k4")
        .unwrap();
    assert!(
        permanent(s.perform("site.update", &page("hello", 2, "v2"), "k5"))
            .contains("newer than version 2")
    );
    // Lookup finds by key (what the ledger asks after a crash) and says no for unknown keys.
    assert_eq!(
        s.lookup("site.update", &page("hello", 3, "v3"), "k4")
            .unwrap()
            .unwrap()["version"],
        3
    );
    assert!(
        s.lookup("site.publish", &page("hello", 9, "nine"), "k9")
            .unwrap()
            .is_none()
    );
    assert!(
        permanent(s.perform("site.update", &page("nothing-here", 1, "x"), "k6"))
            .contains("use site.publish")
    );
}

#[test]
fn slugs_that_escape_the_directory_are_refused_and_nothing_is_written_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.md"), "keep me").unwrap();
    let s = site(tmp.path());
    std::os::unix::fs::symlink(outside.join("secret.md"), tmp.path().join("site/link.md")).unwrap();
    let before = files_under(tmp.path());
    for slug in [
        "../outside/secret",
        "/etc/passwd",
        "a/b",
        ".hidden",
        "..",
        "",
        "x\0y",
        "link",
        "-rf",
        "é",
    ] {
        let err = permanent(s.perform("site.publish", &page(slug, 1, "pwned"), "k"));
        assert!(err.contains("refusing"), "{slug:?}: {err}");
        assert!(
            s.compensate(
                "site.publish",
                &page(slug, 1, "x"),
                &json!({"previous": null}),
                "k"
            )
            .is_err()
        );
    }
    // A history name from a tampered result cannot point outside either.
    let forged = json!({"previous": "../../outside/secret.md"});
    assert!(
        s.compensate("site.update", &page("ok", 1, "x"), &forged, "k")
            .is_err()
    );
    assert_eq!(files_under(tmp.path()), before);
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.md")).unwrap(),
        "keep me"
    );
}

#[test]
fn half_written_files_are_handled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    std::fs::create_dir_all(&dir).unwrap();
    // A crash mid-write leaves a temp file; a truncated page has no closing fence.
    std::fs::write(dir.join(".hello.md.keel-tmp"), "+++\ntitle = \"Hel").unwrap();
    std::fs::write(
        dir.join("broken.md"),
        "+++\ntitle = \"Broken\"\nslug = \"broken\"\n",
    )
    .unwrap();
    let s = site(tmp.path());
    assert!(
        !dir.join(".hello.md.keel-tmp").exists(),
        "the stale temp file is cleaned on open"
    );
    // The interrupted publish is retried and completes.
    s.perform("site.publish", &page("hello", 1, "Hello"), "k1")
        .unwrap();
    assert!(
        files_under(&dir)
            .iter()
            .all(|p| !p.to_string_lossy().ends_with(".keel-tmp"))
    );
    // A page keel cannot read is never overwritten blindly, and lookup says why.
    let err = s
        .lookup("site.publish", &page("broken", 1, "x"), "k2")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not closed by +++"), "{err}");
    assert!(
        permanent(s.perform("site.publish", &page("broken", 1, "x"), "k2")).contains("broken.md")
    );
    assert!(
        std::fs::read_to_string(dir.join("broken.md"))
            .unwrap()
            .contains("Broken")
    );
}

#[test]
fn compensation_restores_or_removes() {
    let tmp = tempfile::tempdir().unwrap();
    let s = site(tmp.path());
    let file = tmp.path().join("site/post.md");
    let r1 = s
        .perform("site.publish", &page("post", 1, "one"), "k1")
        .unwrap();
    let v1 = std::fs::read_to_string(&file).unwrap();
    let r2 = s
        .perform("site.update", &page("post", 2, "two"), "k2")
        .unwrap();
    assert!(r2["previous"].is_string());
    // Undo the update: version 1 is back, byte for byte.
    s.compensate("site.update", &page("post", 2, "two"), &r2, "k2")
        .unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), v1);
    // Unpublish, then undo it.
    let r3 = s
        .perform("site.unpublish", &json!({"slug": "post"}), "k3")
        .unwrap();
    assert!(!file.exists());
    assert!(
        s.lookup("site.unpublish", &json!({"slug": "post"}), "k3")
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.perform("site.unpublish", &json!({"slug": "post"}), "k3")
            .unwrap()["removed"],
        false
    );
    s.compensate("site.unpublish", &json!({"slug": "post"}), &r3, "k3")
        .unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), v1);
    // Undo the first publish: the page goes away.
    s.compensate("site.publish", &page("post", 1, "one"), &r1, "k1")
        .unwrap();
    assert!(!file.exists());
}

#[test]
fn undo_runs_the_compensation_audits_it_and_marks_the_effect() {
    let (_tmp, ws) = workspace();
    let s = site(&ws.root);
    let args = page("launch", 1, "We launched");
    let result = s.perform("site.publish", &args, "key-1").unwrap();
    let effect = EffectRef {
        id: "eff-1".into(),
        action: "site.publish".into(),
        args,
        result,
        key: "key-1".into(),
    };
    let mut store = open(&ws);
    let mut marked = None;
    let out = undo(
        &mut store,
        1_000,
        &Actor::Operator,
        &s,
        &effect,
        |_tx, out| {
            marked = Some(out.clone());
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(out["removed"], true);
    assert_eq!(marked, Some(out));
    assert!(!ws.root.join("site/launch.md").exists());
    let entries = audit::query(
        store.conn(),
        &Filter {
            action: Some("effect.undo".into()),
            ..Filter::default()
        },
        5,
        true,
    )
    .unwrap();
    assert_eq!(entries[0].subject, "effect/eff-1");
    assert_eq!(entries[0].payload["compensation"], "site.unpublish");
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The site is served: its directory and pages are readable by others (configurable), the
/// history of replaced pages stays private, and a mode others could write is refused at
/// load with the file, line and column.
#[test]
fn the_site_is_readable_by_a_web_server_and_its_history_stays_private() {
    let (_dir, ws) = crate::support::temp_workspace();
    let workspace = keel::core::workspace::Workspace::open(&ws).unwrap();
    let s = SiteConnector::from_config(&ws, &workspace.config.connectors.site).unwrap();
    s.perform("site.publish", &page("hello", 1, "one"), "k1")
        .unwrap();
    s.perform("site.update", &page("hello", 2, "two"), "k2")
        .unwrap();
    assert_eq!(mode(&ws.join("site")), 0o755);
    assert_eq!(mode(&ws.join("site/hello.md")), 0o644);
    assert_eq!(mode(&ws.join("site-history")), 0o700);
    for f in files_under(&ws.join("site-history")) {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    // Restored by undo: still served.
    s.compensate("site.update", &page("hello", 2, "two"), &json!({}), "k2")
        .ok();
    assert_eq!(mode(&ws.join("site/hello.md")), 0o644);

    // A stricter mode is the operator's choice.
    let config = std::fs::read_to_string(ws.join("config.toml")).unwrap();
    std::fs::write(
        ws.join("config.toml"),
        config
            .replace("dir_mode = 0o755", "dir_mode = 0o750")
            .replace("file_mode = 0o644", "file_mode = 0o640"),
    )
    .unwrap();
    let workspace = keel::core::workspace::Workspace::open(&ws).unwrap();
    let s = SiteConnector::from_config(&ws, &workspace.config.connectors.site).unwrap();
    s.perform("site.publish", &page("other", 1, "x"), "k3")
        .unwrap();
    assert_eq!(mode(&ws.join("site")), 0o750);
    assert_eq!(mode(&ws.join("site/other.md")), 0o640);

    // World-writable is refused, naming where.
    let config = std::fs::read_to_string(ws.join("config.toml")).unwrap();
    std::fs::write(
        ws.join("config.toml"),
        config.replace("file_mode = 0o640", "file_mode = 0o666"),
    )
    .unwrap();
    let err = keel::core::workspace::Workspace::open(&ws)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config.toml:") && err.contains("other users write"),
        "{err}"
    );
}
