//! Workspace creation, permissions, foreign and newer databases.

use std::os::unix::fs::PermissionsExt;

use crate::support::{keel, temp_workspace};

#[test]
fn init_creates_private_files_and_dirs() {
    let (_tmp, ws) = temp_workspace();
    for (path, mode) in [
        (ws.clone(), 0o700),
        (ws.join("vectors"), 0o700),
        (ws.join("keel.db"), 0o600),
        (ws.join("config.toml"), 0o600),
    ] {
        let m = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, mode, "{}", path.display());
    }
    let out = keel(&ws, &["audit", "verify"]);
    assert!(out.status.success());
}

#[test]
fn foreign_file_is_refused_and_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::set_permissions(&ws, std::fs::Permissions::from_mode(0o700)).unwrap();
    let db = ws.join("keel.db");
    std::fs::write(&db, b"this is a spreadsheet, not a database").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = keel(&ws, &["audit", "verify"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a keel database"), "{err}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        b"this is a spreadsheet, not a database"
    );
}

#[test]
fn newer_schema_is_refused() {
    let (_tmp, ws) = temp_workspace();
    let conn = rusqlite::Connection::open(ws.join("keel.db")).unwrap();
    conn.pragma_update(None, "user_version", 9_999).unwrap();
    drop(conn);
    let before = std::fs::read(ws.join("keel.db")).unwrap();
    let out = keel(&ws, &["audit", "verify"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("newer keel"), "{err}");
    assert_eq!(std::fs::read(ws.join("keel.db")).unwrap(), before);
}

#[test]
fn bad_config_names_file_line_and_column() {
    let (_tmp, ws) = temp_workspace();
    std::fs::write(ws.join("config.toml"), "[store]\ndurability = 3\n").unwrap();
    let out = keel(&ws, &["audit", "verify"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.toml:2:14"), "{err}");
}

#[test]
fn doctor_reports_health_and_problems() {
    let (_tmp, ws) = temp_workspace();
    let out = keel(&ws, &["doctor", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} check in {report}"))["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for name in [
        "config",
        "file modes",
        "schema",
        "integrity",
        "audit chain",
        "objects",
    ] {
        assert_eq!(status(name), "ok", "{name}: {report}");
    }
    let latest = keel::core::store::migrations::latest();
    let schema = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "schema")
        .unwrap();
    assert_eq!(schema["detail"], format!("version {latest} (latest)"));
    // The model check says what to run when the files are absent.
    let models = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::support::keel_bin())
        .args(["--workspace"])
        .arg(&ws)
        .args(["doctor"])
        .env("KEEL_MODELS_DIR", models.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("WARN embedding model") && text.contains("keel models fetch"),
        "{text}"
    );
    // A loosened file mode is reported.
    std::fs::set_permissions(
        ws.join("config.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let text = String::from_utf8(keel(&ws, &["doctor"]).stdout).unwrap();
    assert!(text.contains("config.toml is 644 (expected 600)"), "{text}");
    // A missing workspace is named, with the command that creates it.
    let missing = keel(&ws.join("nope"), &["doctor"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stdout).contains("keel init"));
}

#[test]
fn another_programs_sqlite_database_is_refused_and_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::set_permissions(&ws, std::fs::Permissions::from_mode(0o700)).unwrap();
    let db = ws.join("keel.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 9.5);")
        .unwrap();
    drop(conn);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = std::fs::read(&db).unwrap();
    for args in [&["objects", "list"][..], &["init"][..]] {
        let out = keel(&ws, args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("belongs to another program"), "{err}");
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
}
