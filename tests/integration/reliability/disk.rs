//! Disk faults. The tests run as root, so `chmod` cannot make anything read-only; instead:
//! - `PRAGMA max_page_count` provokes `SQLITE_FULL` through the real write path (always runs);
//! - a 3 MiB tmpfs fills up under the real binary (runs where `mount` is permitted);
//! - `chattr +i` makes the database immutable, i.e. read-only even for root (runs where
//!   the filesystem supports it).
//!
//! Each checks: a clear error, nothing acknowledged lost, no corruption (integrity check and
//! audit chain), and recovery once the fault is gone.

use std::path::{Path, PathBuf};
use std::process::Command;

use keel::core::audit::{self, Actor};
use keel::core::error::Error;
use keel::core::store::{Durability, Store};
use serde_json::{Value, json};

use crate::support::keel;

fn integrity(store: &Store) -> String {
    keel::bench::torture::integrity_check(store).unwrap()
}

fn assert_healthy(db: &Path) {
    let store = Store::open(db, Durability::Full).unwrap();
    assert_eq!(integrity(&store), "ok");
    let v = audit::verify(store.conn()).unwrap();
    assert!(v.first_broken.is_none(), "{v:?}");
}

fn audit_write(store: &mut Store, i: usize) -> keel::core::error::Result<i64> {
    let payload = json!({"i": i, "pad": "x".repeat(8 * 1024)});
    store.write(|tx| {
        audit::append(
            tx,
            1_000,
            &Actor::Operator,
            "test.fill",
            "test/disk",
            &payload,
        )
    })
}

#[test]
fn sqlite_full_is_a_clear_error_and_writes_resume_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keel.db");
    let mut store = Store::open(&db, Durability::Full).unwrap();
    let pages: i64 = store
        .conn()
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    store
        .conn()
        .pragma_update(None, "max_page_count", pages + 24)
        .unwrap();
    let mut committed = 0;
    let err = loop {
        match audit_write(&mut store, committed) {
            Ok(_) => committed += 1,
            Err(e) => break e,
        }
        assert!(committed < 1000, "the page limit never bit");
    };
    assert!(matches!(err, Error::DiskFull { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("disk is full") && message.contains("nothing was committed"),
        "{message}"
    );
    assert!(committed > 0);
    assert_eq!(integrity(&store), "ok");
    // Space returns: the same connection writes again, and nothing committed was lost.
    store
        .conn()
        .pragma_update(None, "max_page_count", 1_073_741_823)
        .unwrap();
    audit_write(&mut store, committed).unwrap();
    let filled: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM audit WHERE action = 'test.fill'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(usize::try_from(filled).unwrap(), committed + 1);
    drop(store);
    assert_healthy(&db);
}

/// Unmounts on drop, so a failed assertion leaves no mount behind.
struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        // Lazy: a process a failed test left behind must not keep the mount alive.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn task_ids(ws: &Path) -> Vec<String> {
    let out = keel(ws, &["task", "list", "--json", "--limit", "10000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// A 3 MiB tmpfs with an initialised workspace in it, or `None` where mounts are refused.
fn small_filesystem(dir: &Path) -> Option<(Mount, PathBuf)> {
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs"])
        .arg(&mnt)
        .output()
        .unwrap();
    if !mounted.status.success() {
        eprintln!(
            "skipped: cannot mount a tmpfs here ({}); the max_page_count test covers SQLITE_FULL",
            String::from_utf8_lossy(&mounted.stderr).trim()
        );
        return None;
    }
    let guard = Mount(mnt.clone());
    let ws = mnt.join("ws");
    let out = keel(&ws, &["init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some((guard, ws))
}

/// Fills the filesystem holding `ballast` to the last byte.
fn fill(ballast: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(ballast).unwrap();
    for size in [64 * 1024, 4096, 512, 1] {
        let chunk = vec![0u8; size];
        while f.write_all(&chunk).is_ok() {}
    }
    let _ = f.sync_all();
}

#[test]
fn a_full_filesystem_fails_cleanly_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_guard, ws)) = small_filesystem(dir.path()) else {
        return;
    };
    // Fill the filesystem with ballast, then give back a little room to work in.
    let ballast = ws.with_file_name("ballast");
    fill(&ballast);
    let len = std::fs::metadata(&ballast).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ballast)
        .unwrap()
        .set_len(len.saturating_sub(384 * 1024))
        .unwrap();

    let input = json!({"pad": "y".repeat(24 * 1024)}).to_string();
    let mut acknowledged = Vec::new();
    let failure = loop {
        let out = keel(
            &ws,
            &["task", "add", "--role", "noop", "--input", &input, "--json"],
        );
        if !out.status.success() {
            break String::from_utf8_lossy(&out.stderr).to_string();
        }
        let row: Value = serde_json::from_slice(&out.stdout).unwrap();
        acknowledged.push(row["id"].as_str().unwrap().to_string());
        assert!(acknowledged.len() < 200, "the filesystem never filled");
    };
    assert!(!acknowledged.is_empty());
    assert!(
        failure.contains("disk is full") && failure.contains("free space and retry"),
        "unclear error on a full disk: {failure}"
    );
    // Space returns: every acknowledged task is there, and writes work again.
    std::fs::remove_file(&ballast).unwrap();
    let ids = task_ids(&ws);
    for id in &acknowledged {
        assert!(ids.contains(id), "acknowledged task {id} was lost");
    }
    let out = keel(&ws, &["task", "add", "--role", "noop", "--input", &input]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(task_ids(&ws).len(), acknowledged.len() + 1);
    assert_healthy(&ws.join("keel.db"));
    eprintln!(
        "tmpfs filled after {} tasks; error: {}",
        acknowledged.len(),
        failure.trim()
    );
}

#[test]
fn a_daemon_started_on_a_full_disk_works_once_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_guard, ws)) = small_filesystem(dir.path()) else {
        return;
    };
    for _ in 0..10 {
        assert!(
            keel(&ws, &["task", "add", "--role", "noop"])
                .status
                .success()
        );
    }
    let ballast = ws.with_file_name("ballast");
    fill(&ballast);
    // A writer on a completely full disk gets an error that points at the disk.
    let out = keel(&ws, &["task", "add", "--role", "noop"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("disk is full") || err.contains("free space"),
        "unclear error on a full disk: {err}"
    );
    assert!(!err.contains("not a keel database"), "{err}");
    let mut run = KillOnDrop(
        Command::new(crate::support::keel_bin())
            .arg("--workspace")
            .arg(&ws)
            .arg("run")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let run = &mut run.0;
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        run.try_wait().unwrap().is_none(),
        "keel run gave up on a full disk"
    );
    std::fs::remove_file(&ballast).unwrap();
    // It was not a zombie: once space returns it runs every task.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = keel(&ws, &["task", "list", "--state", "succeeded", "--json"]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if list["total"] == json!(10) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "keel run never resumed after space returned: {list}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(run.wait().unwrap().success());
    assert_healthy(&ws.join("keel.db"));
}

/// Kills the daemon if the test fails before stopping it.
struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Clears the immutable flag on drop, so the temp directory can be removed.
struct Immutable(PathBuf);
impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_database_is_a_clear_error_and_recovers() {
    let (_dir, ws) = crate::support::temp_workspace();
    let out = keel(&ws, &["task", "add", "--role", "noop", "--title", "before"]);
    assert!(out.status.success());
    let db = ws.join("keel.db");
    let set = Command::new("chattr").arg("+i").arg(&db).output();
    if !set.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: chattr +i is not supported here");
        return;
    }
    let guard = Immutable(db.clone());
    let out = keel(&ws, &["task", "add", "--role", "noop", "--title", "during"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a write to an immutable database succeeded"
    );
    assert!(
        err.contains("read-only") && err.contains("nothing was committed"),
        "unclear error on a read-only database: {err}"
    );
    // Reads still work while the fault lasts.
    assert_eq!(task_ids(&ws).len(), 1);
    drop(guard);
    let out = keel(&ws, &["task", "add", "--role", "noop", "--title", "after"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(task_ids(&ws).len(), 2);
    assert_healthy(&db);
}
