//! Versioned objects through the real binary: versions, history, diff, revert, archive,
//! conflicts (including two processes racing), schema errors, damaged files, full disks.

use serde_json::{Value, json};

use crate::support::{keel, keel_json, keel_ok, keel_with_input, put, stderr, temp_workspace};

#[test]
fn versions_history_diff_revert_and_archive() {
    let (_tmp, ws) = temp_workspace();
    let v1 = json!({"title": "Welcome", "body": "Hello,\nthanks for joining.\nBye"});
    let out = put(&ws, "draft", "welcome", None, &v1);
    assert!(out.status.success(), "{}", stderr(&out));
    let w: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (w["version"].as_i64(), w["changed"].as_bool()),
        (Some(1), Some(true))
    );

    let v2 = json!({"title": "Welcome!", "body": "Hello,\nthank you for joining.\nBye"});
    assert!(put(&ws, "draft", "welcome", Some(1), &v2).status.success());

    let history = keel_json(&ws, &["objects", "history", "draft", "welcome", "--json"]);
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["parent"], 1);
    assert_eq!(history[1]["author"], "operator");
    assert_eq!(history[1]["body"], v2);
    assert_eq!(history[0]["hash"].as_str().unwrap().len(), 64);

    let diff = keel_ok(&ws, &["objects", "diff", "draft", "welcome", "1", "2"]);
    assert!(
        diff.contains("-  thanks for joining.\n+  thank you for joining."),
        "{diff}"
    );
    assert!(
        !diff.contains("-  Hello,"),
        "unchanged lines are context only: {diff}"
    );

    let reverted = keel_json(
        &ws,
        &[
            "objects",
            "revert",
            "draft",
            "welcome",
            "1",
            "--based-on",
            "2",
            "--json",
        ],
    );
    assert_eq!(reverted["version"], 3);
    let shown = keel_json(&ws, &["objects", "show", "draft", "welcome", "--json"]);
    assert_eq!(shown["body"], v1);
    assert_eq!(shown["note"], "revert to 1");
    // Objects are written KIND/ID everywhere; the CLI takes that form too.
    assert_eq!(
        keel_json(&ws, &["objects", "show", "draft/welcome", "--json"]),
        shown
    );
    let old = keel_json(
        &ws,
        &[
            "objects",
            "show",
            "draft",
            "welcome",
            "--version",
            "2",
            "--json",
        ],
    );
    assert_eq!(old["body"], v2);

    keel_ok(
        &ws,
        &["objects", "archive", "draft", "welcome", "--based-on", "3"],
    );
    let listed = keel_json(&ws, &["objects", "list", "--json"]);
    assert_eq!(listed["total"], 0);
    let all = keel_json(&ws, &["objects", "list", "--archived", "--json"]);
    assert_eq!(all["items"][0]["archived"], true);
    let refused = put(&ws, "draft", "welcome", Some(4), &v2);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("archived"),
        "{}",
        stderr(&refused)
    );
    // Archiving deleted nothing.
    let history = keel_json(&ws, &["objects", "history", "draft", "welcome", "--json"]);
    assert_eq!(history.as_array().unwrap().len(), 4);

    let actions: Vec<String> = keel_ok(
        &ws,
        &["audit", "show", "--subject", "draft/welcome", "--json"],
    )
    .lines()
    .map(|l| {
        serde_json::from_str::<Value>(l).unwrap()["action"]
            .as_str()
            .unwrap()
            .to_string()
    })
    .collect();
    assert_eq!(
        actions,
        [
            "object.archive",
            "object.revert",
            "object.put",
            "object.put"
        ]
    );
}

#[test]
fn a_stale_write_is_a_conflict_and_loses_nothing() {
    let (_tmp, ws) = temp_workspace();
    assert!(
        put(&ws, "idea", "i", None, &json!({"title": "a"}))
            .status
            .success()
    );
    assert!(
        put(&ws, "idea", "i", Some(1), &json!({"title": "b"}))
            .status
            .success()
    );
    let stale = put(&ws, "idea", "i", Some(1), &json!({"title": "c"}));
    assert_eq!(stale.status.code(), Some(3), "{}", stderr(&stale));
    let err = stderr(&stale);
    assert!(
        err.contains("conflict on idea/i") && err.contains("current version is 2"),
        "{err}"
    );
    let create_again = put(&ws, "idea", "i", None, &json!({"title": "d"}));
    assert_eq!(create_again.status.code(), Some(3));
    let history = keel_json(&ws, &["objects", "history", "idea", "i", "--json"]);
    let titles: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["body"]["title"].clone())
        .collect();
    assert_eq!(titles, [json!("a"), json!("b")]);
}

#[test]
fn two_processes_writing_the_same_version_one_wins_the_others_conflict() {
    let (_tmp, ws) = temp_workspace();
    assert!(
        put(&ws, "draft", "race", None, &json!({"title": "start"}))
            .status
            .success()
    );
    let mut based_on = 1;
    for round in 0..3 {
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let body = json!({"title": format!("round {round} writer {w}")});
                let file = ws.join(format!("body-{round}-{w}.json"));
                std::fs::write(&file, body.to_string()).unwrap();
                let child = std::process::Command::new(crate::support::keel_bin())
                    .arg("--workspace")
                    .arg(&ws)
                    .args([
                        "objects",
                        "put",
                        "draft",
                        "race",
                        "--based-on",
                        &based_on.to_string(),
                        "--file",
                    ])
                    .arg(&file)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                (body, child)
            })
            .collect();
        let results: Vec<_> = writers
            .into_iter()
            .map(|(body, child)| (body, child.wait_with_output().unwrap()))
            .collect();
        let winners: Vec<_> = results
            .iter()
            .filter(|(_, out)| out.status.success())
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one writer wins");
        for (_, out) in results.iter().filter(|(_, out)| !out.status.success()) {
            assert_eq!(
                out.status.code(),
                Some(3),
                "loser must get a conflict: {}",
                stderr(out)
            );
            assert!(stderr(out).contains("conflict"), "{}", stderr(out));
        }
        based_on += 1;
        let current = keel_json(&ws, &["objects", "show", "draft", "race", "--json"]);
        assert_eq!(current["version"], based_on);
        assert_eq!(
            current["body"], winners[0].0,
            "the winner's body is the new version"
        );
    }
    let history = keel_json(&ws, &["objects", "history", "draft", "race", "--json"]);
    assert_eq!(
        history.as_array().unwrap().len(),
        4,
        "start + one winner per round"
    );
    assert!(keel(&ws, &["audit", "verify"]).status.success());
}

#[test]
fn a_schema_failure_names_the_field() {
    let (_tmp, ws) = temp_workspace();
    let out = put(
        &ws,
        "customer",
        "c1",
        None,
        &json!({"email": "ann@example.com"}),
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("schema check failed for customer at name"),
        "{}",
        stderr(&out)
    );
    let out = put(
        &ws,
        "offer",
        "o1",
        None,
        &json!({"title": "Audit", "price": {"amount": "lots", "currency": "EUR"}}),
    );
    assert!(stderr(&out).contains("at price.amount"), "{}", stderr(&out));
    let out = put(&ws, "gadget", "g", None, &json!({"title": "x"}));
    assert!(
        stderr(&out).contains("unknown kind \"gadget\""),
        "{}",
        stderr(&out)
    );
    let out = keel_with_input(
        &ws,
        &["objects", "put", "note", "n"],
        "{\"text\": \"a\",\n \"oops\" }",
    );
    assert!(
        stderr(&out).contains("standard input:2:"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        keel_json(&ws, &["objects", "list", "--archived", "--json"])["total"],
        0
    );
}

#[test]
fn user_defined_kinds_from_config() {
    let (_tmp, ws) = temp_workspace();
    std::fs::write(
        ws.join("config.toml"),
        "[kinds.lead]\ndescription = \"A prospect\"\nschema = { type = \"object\", required = [\"name\"], properties = { name = { type = \"string\" } } }\n",
    )
    .unwrap();
    assert!(
        put(&ws, "lead", "l1", None, &json!({"name": "Bea"}))
            .status
            .success()
    );
    let bad = put(&ws, "lead", "l2", None, &json!({"name": 3}));
    assert!(stderr(&bad).contains("lead at name"), "{}", stderr(&bad));
    assert!(keel_ok(&ws, &["objects", "kinds"]).contains("lead"));
    std::fs::write(ws.join("config.toml"), "# mine\n[kinds.draft]\n").unwrap();
    let clash = keel(&ws, &["objects", "list"]);
    assert!(
        stderr(&clash).contains("config.toml:2:1"),
        "{}",
        stderr(&clash)
    );
}

#[test]
fn migrations_from_an_empty_workspace() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::set_permissions(&ws, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // An empty file where the database goes is a fresh database, not a foreign one.
    std::fs::write(ws.join("keel.db"), b"").unwrap();
    keel_ok(&ws, &["init"]);
    let conn = rusqlite::Connection::open(ws.join("keel.db")).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, keel::core::store::migrations::latest());
    let app: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    assert_eq!(app, keel::core::store::APPLICATION_ID);
    for table in ["objects", "object_versions", "audit", "meta"] {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "{table}");
    }
    // Opening again is a no-op, and the workspace works.
    keel_ok(&ws, &["init"]);
    assert!(
        put(&ws, "note", "n", None, &json!({"text": "hi"}))
            .status
            .success()
    );
}

#[test]
fn a_damaged_database_gives_a_clear_error_and_is_not_overwritten() {
    let (_tmp, ws) = temp_workspace();
    for i in 0..40 {
        let body = json!({"title": format!("note {i}"), "text": "x".repeat(2000)});
        assert!(
            put(&ws, "note", &format!("n{i}"), None, &body)
                .status
                .success()
        );
    }
    let db = ws.join("keel.db");
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 8 * 4096);
    // Scribble over every page after the first (the header stays a valid SQLite header).
    for b in &mut bytes[4096..] {
        *b = 0xA5;
    }
    std::fs::write(&db, &bytes).unwrap();
    let out = keel(&ws, &["objects", "list"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("is damaged") && err.contains("untouched"),
        "{err}"
    );
    let doctor = keel(&ws, &["doctor"]);
    assert_eq!(doctor.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&doctor.stdout).contains("FAIL"));
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "the damaged file was left as it was"
    );
}

/// A real full (and then read-only) filesystem: a 1 MiB tmpfs mounted in a private mount
/// namespace (tests run as root here). Once full, the operator frees space and finds every
/// acknowledged write intact. Where mounting is not permitted the test says so and
/// stops; the `SQLITE_FULL` path itself is also covered by a unit test in `core::objects`.
#[test]
fn a_full_disk_and_a_read_only_workspace_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let body = tmp.path().join("body.json");
    std::fs::write(
        &body,
        json!({"title": "big", "text": "y".repeat(60_000)}).to_string(),
    )
    .unwrap();
    let script = r#"
        set -u
        mount -t tmpfs -o size=1m,mode=0700 tmpfs "$MNT" || exit 77
        ws="$MNT/ws"
        "$KEEL" --workspace "$ws" init >/dev/null || exit 10
        # Ballast the operator can delete to free space once the disk is full.
        head -c 262144 /dev/zero > "$MNT/ballast" || exit 12
        i=0
        while [ $i -lt 100 ]; do
            "$KEEL" --workspace "$ws" objects put note "n$i" --file "$BODY" >/dev/null 2>"$OUT/full.err" || break
            i=$((i+1))
        done
        echo "$i" > "$OUT/written"
        rm "$MNT/ballast"
        "$KEEL" --workspace "$ws" objects list --json > "$OUT/list.json" 2>"$OUT/list.err"
        "$KEEL" --workspace "$ws" audit verify > "$OUT/verify.out" 2>&1
        mount -o remount,ro "$MNT" || exit 11
        "$KEEL" --workspace "$ws" objects put note extra --file "$BODY" >/dev/null 2>"$OUT/ro.err"
        echo "$?" > "$OUT/ro.code"
        exit 0
    "#;
    let status = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("MNT", &mnt)
        .env("KEEL", crate::support::keel_bin())
        .env("BODY", &body)
        .env("OUT", tmp.path())
        .env_remove("KEEL_WORKSPACE")
        .status();
    match status.map(|s| s.code()) {
        Ok(Some(0)) => {}
        Ok(Some(77)) | Err(_) => {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root in a mount namespace)");
            return;
        }
        other => panic!("the script failed: {other:?}"),
    }
    let read = |name: &str| std::fs::read_to_string(tmp.path().join(name)).unwrap();
    let written: usize = read("written").trim().parse().unwrap();
    assert!(
        written > 0 && written < 100,
        "the disk filled after {written} writes"
    );
    let err = read("full.err");
    assert!(
        err.contains("disk is full") && err.contains("nothing was committed"),
        "{err}"
    );
    let list: Value =
        serde_json::from_str(&read("list.json")).unwrap_or_else(|_| panic!("{}", read("list.err")));
    assert_eq!(
        list["total"], written,
        "every acknowledged write is still there"
    );
    assert!(
        read("verify.out").contains("chain intact"),
        "{}",
        read("verify.out")
    );
    assert_ne!(read("ro.code").trim(), "0");
    let ro = read("ro.err");
    assert!(ro.contains("read-only"), "{ro}");
}

/// SIGKILL a stream of writers at an arbitrary moment: every acknowledged version is there,
/// the audit chain is intact and every version matches its audit entry.
#[test]
fn killed_writers_lose_no_acknowledged_version() {
    use std::os::unix::process::CommandExt;
    let (_tmp, ws) = temp_workspace();
    let acked = ws.join("acked");
    let script = r#"
        echo '{"text": "v1"}' | "$KEEL" --workspace "$WS" objects put note crash >/dev/null || exit 1
        echo 1 >> "$ACKED"
        i=1
        while [ $i -lt 400 ]; do
            echo "{\"text\": \"v$((i+1))\"}" | "$KEEL" --workspace "$WS" objects put note crash --based-on $i >/dev/null || exit 1
            i=$((i+1))
            echo $i >> "$ACKED"
        done
    "#;
    let mut child = std::process::Command::new("sh")
        .args(["-c", script])
        .env("KEEL", crate::support::keel_bin())
        .env("WS", &ws)
        .env("ACKED", &acked)
        .env_remove("KEEL_WORKSPACE")
        .process_group(0)
        .spawn()
        .unwrap();
    // Wait until a few writes are acknowledged, then kill the whole group mid-stream.
    for _ in 0..200 {
        if std::fs::read_to_string(&acked).is_ok_and(|t| t.lines().count() >= 5) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = std::process::Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = child.wait();
    let last_acked: i64 = std::fs::read_to_string(&acked)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    assert!(last_acked >= 5);
    let history = keel_json(&ws, &["objects", "history", "note", "crash", "--json"]);
    let history = history.as_array().unwrap();
    // A write may have committed just before the kill and not been acknowledged yet.
    let stored = i64::try_from(history.len()).unwrap();
    assert!(
        stored == last_acked || stored == last_acked + 1,
        "{stored} stored, {last_acked} acknowledged"
    );
    for (i, v) in history.iter().enumerate() {
        assert_eq!(v["body"]["text"], format!("v{}", i + 1));
    }
    assert!(keel(&ws, &["audit", "verify"]).status.success());
    let doctor = keel(&ws, &["doctor", "--json"]);
    let report: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let versions = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "object versions")
        .unwrap();
    assert_eq!(versions["status"], "ok", "{versions}");
}
