//! Shared helpers: temporary workspaces and running the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the `keel` binary cargo built for these tests.
pub fn keel_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keel"))
}

/// Runs `keel --workspace ws args…` and returns its output.
pub fn keel(ws: &Path, args: &[&str]) -> Output {
    Command::new(keel_bin())
        .arg("--workspace")
        .arg(ws)
        .args(args)
        .env_remove("KEEL_WORKSPACE")
        .output()
        .expect("run keel")
}

/// A fresh workspace in a temporary directory (dropped with the guard).
pub fn temp_workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ws");
    let out = keel(&root, &["init"]);
    assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
    (dir, root)
}
