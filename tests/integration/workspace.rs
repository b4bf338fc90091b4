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
    assert_eq!(std::fs::read(&db).unwrap(), b"this is a spreadsheet, not a database");
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
