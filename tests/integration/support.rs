//! Shared helpers: temporary workspaces and running the real binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

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
    assert!(
        out.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, root)
}

/// Runs `keel --workspace ws args…` with `input` on standard input.
pub fn keel_with_input(ws: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(keel_bin())
        .arg("--workspace")
        .arg(ws)
        .args(args)
        .env_remove("KEEL_WORKSPACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keel");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait keel")
}

/// Runs keel and returns its stdout, failing the test (with stderr) if it failed.
pub fn keel_ok(ws: &Path, args: &[&str]) -> String {
    let out = keel(ws, args);
    assert!(
        out.status.success(),
        "keel {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs keel with `--json` output and parses it.
pub fn keel_json(ws: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&keel_ok(ws, args)).expect("JSON output")
}

/// Creates or updates `kind/id` through the CLI, with the body on stdin.
pub fn put(
    ws: &Path,
    kind: &str,
    id: &str,
    based_on: Option<i64>,
    body: &serde_json::Value,
) -> Output {
    let based = based_on.map(|b| b.to_string());
    let mut args = vec!["objects", "put", kind, id, "--json"];
    if let Some(b) = &based {
        args.extend(["--based-on", b.as_str()]);
    }
    keel_with_input(ws, &args, &body.to_string())
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A child process (usually a `keel run` daemon) that is killed (SIGKILL) and reaped when
/// dropped, so a failing test never leaves one behind.
pub struct Daemon(pub Child);

impl Daemon {
    /// `keel run` on `ws`, with `KEEL_FAILPOINT` set to `failpoint` if given.
    pub fn start(ws: &Path, failpoint: Option<&str>) -> Self {
        Self::start_with_env(ws, failpoint, &[])
    }

    /// [`Daemon::start`] with more environment variables (e.g. a provider's key).
    pub fn start_with_env(ws: &Path, failpoint: Option<&str>, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(keel_bin());
        cmd.arg("--workspace")
            .arg(ws)
            .arg("run")
            .env_remove("KEEL_WORKSPACE")
            .env_remove("KEEL_FAILPOINT")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(f) = failpoint {
            cmd.env("KEEL_FAILPOINT", f);
        }
        Daemon(cmd.spawn().unwrap())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (up to 30 s: a correctness check, not a timing) until `f` returns something.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The payload of a core answer as JSON, for tests that check a few fields of it.
pub fn answer_json(answer: keel::protocol::Answer) -> serde_json::Value {
    serde_json::to_value(answer).unwrap()["body"].take()
}
