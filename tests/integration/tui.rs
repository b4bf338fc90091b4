//! The console end to end: the real binary in a real terminal (tmux), driven by keys.
//! Needs `tmux` on PATH (the test script installs it).

// Test helpers may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{keel, keel_bin, temp_workspace};

/// A tmux server of our own (its own socket), killed on drop.
pub(crate) struct Tmux {
    socket: PathBuf,
    /// Written by the shell around keel with its exit status.
    exit_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmux {
    pub(crate) fn start(ws: &Path, width: u16, height: u16) -> Tmux {
        Tmux::start_command(
            &format!("{} --workspace {}", keel_bin().display(), ws.display()),
            width,
            height,
        )
    }

    /// Runs `command` (a shell command line) in the terminal instead.
    pub(crate) fn start_command(command: &str, width: u16, height: u16) -> Tmux {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tmux.sock");
        let conf = dir.path().join("tmux.conf");
        // Keep the pane after keel exits so its exit status can be read.
        std::fs::write(
            &conf,
            "set -g remain-on-exit on\nset -g default-terminal xterm-256color\n",
        )
        .unwrap();
        // A shell around keel records its exit status (tmux itself is slow, at times, to
        // reap a pane's process, so its own dead-status is not relied on).
        let exit_file = dir.path().join("exit");
        let cmd = format!("{command}; echo $? > {}", exit_file.display());
        let t = Tmux {
            socket,
            exit_file,
            _dir: dir,
        };
        let out = t.run(&[
            "-f",
            conf.to_str().unwrap(),
            "new-session",
            "-d",
            "-s",
            "keel",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            &cmd,
        ]);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env_remove("KEEL_WORKSPACE")
            .env_remove("NO_COLOR")
            .output()
            .expect("tmux is installed (apt-get install -y tmux)")
    }

    pub(crate) fn keys(&self, keys: &[&str]) {
        for k in keys {
            let out = self.run(&["send-keys", "-t", "keel", k]);
            assert!(out.status.success());
        }
    }

    pub(crate) fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "keel"]).stdout)
            .into_owned()
    }

    pub(crate) fn pane(&self, format: &str) -> String {
        String::from_utf8_lossy(
            &self
                .run(&["display-message", "-p", "-t", "keel", format])
                .stdout,
        )
        .trim()
        .to_string()
    }

    /// Waits (generously: this is a correctness check, not a timing) until the screen
    /// shows `text`.
    pub(crate) fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "never showed {text:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn wait_until_gone(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.screen().contains(text) {
            assert!(Instant::now() < deadline, "{text:?} never went away");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn wait_exit(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(code) = std::fs::read_to_string(&self.exit_file)
                && code.ends_with('\n')
            {
                return code.trim().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "keel did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The pid of keel (the child of the pane's shell).
    pub(crate) fn keel_pid(&self) -> String {
        let shell = self.pane("#{pane_pid}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new("ps")
                .args(["-o", "pid=", "--ppid", &shell])
                .output()
                .unwrap();
            let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !pid.is_empty() {
                return pid;
            }
            assert!(Instant::now() < deadline, "keel is not running");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn console_moves_between_panes_and_screens_then_quits_cleanly() {
    let (_tmp, ws) = temp_workspace();
    let t = Tmux::start(&ws, 120, 36);
    for pane in ["Queue", "Runs", "Approvals", "Memory"] {
        t.wait_for(pane);
    }
    // Tab cycles focus; the audit screen answers for real.
    t.keys(&["Tab", "Tab", "2"]);
    t.wait_for("Audit timeline, newest first");
    t.keys(&["v"]);
    t.wait_for("chain: verified");
    t.keys(&["?"]);
    t.wait_for("Help — keys");
    // (q closes help; a bare Escape followed at once by ":" would read as alt-:)
    t.keys(&["q"]);
    t.wait_for("chain: verified");
    t.keys(&[":"]);
    t.wait_for("Command palette");
    t.keys(&["h", "e", "a", "l", "t", "h", "Enter"]);
    t.wait_for("embedding model");
    t.keys(&["1", "q"]);
    assert_eq!(t.wait_exit(), "0");
    // The terminal was handed back: the alternate screen is gone.
    let after = t.screen();
    assert!(
        !after.contains("Command palette"),
        "alternate screen left behind:\n{after}"
    );
    // The workspace is intact and nothing was left to recover.
    assert!(keel(&ws, &["audit", "verify"]).status.success());
    assert!(!ws.join("recovery").exists());
}

#[test]
fn console_too_small_says_so_and_sigterm_restores_the_terminal() {
    let (_tmp, ws) = temp_workspace();
    let t = Tmux::start(&ws, 50, 12);
    t.wait_for("too small");
    t.run(&["resize-window", "-t", "keel", "-x", "120", "-y", "36"]);
    t.wait_for("Queue");
    let pid = t.keel_pid();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    assert_eq!(t.wait_exit(), "0");
    let after = t.screen();
    assert!(
        !after.contains("Approvals"),
        "alternate screen left behind:\n{after}"
    );
}

#[test]
fn sighup_restores_the_terminal_too() {
    let (_tmp, ws) = temp_workspace();
    let t = Tmux::start(&ws, 100, 30);
    t.wait_for("Queue");
    let pid = t.keel_pid();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(t.wait_exit(), "0");
    assert!(!t.screen().contains("Approvals"));
}

/// The core and the protocol never depend on the terminal crates: the console is only a
/// client of the handle.
#[test]
fn core_and_protocol_never_use_the_terminal_crates() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root.join("protocol"), &mut files);
    walk(&root.join("core"), &mut files);
    assert!(files.len() > 5);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for needle in ["ratatui::", "crossterm::", "crate::tui"] {
            assert!(
                !text.contains(needle),
                "{} mentions {needle}",
                file.display()
            );
        }
    }
}

#[test]
fn workspace_keymap_and_theme_overrides_apply_and_bad_ones_are_named() {
    let (_tmp, ws) = temp_workspace();
    std::fs::write(ws.join("keymap.toml"), "[global]\nquit = [\"Q\"]\n").unwrap();
    std::fs::write(
        ws.join("theme.toml"),
        "extends = \"light\"\n[roles]\nerror = { fg = \"#ff0000\" }\n",
    )
    .unwrap();
    let t = Tmux::start(&ws, 160, 30);
    t.wait_for("Memory");
    t.wait_for("Q quit");
    t.keys(&["q"]);
    t.keys(&["?"]);
    t.wait_for("Help — keys");
    // q closes help (it no longer quits); then the override quits.
    t.keys(&["q"]);
    t.wait_until_gone("Help — keys");
    t.keys(&["Q"]);
    assert_eq!(t.wait_exit(), "0");
    drop(t);

    // A mistake is reported with file:line:column before the terminal is taken over.
    std::fs::write(
        ws.join("theme.toml"),
        "[roles]\nerror = { fg = \"#ff0000\" \n",
    )
    .unwrap();
    let out = keel(&ws, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("theme.toml:2:"), "{err}");
    std::fs::remove_file(ws.join("theme.toml")).unwrap();
    std::fs::write(ws.join("keymap.toml"), "[global]\nquit = [\"hyper-q\"]\n").unwrap();
    let out = keel(&ws, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("keymap.toml") && err.contains("hyper-q"),
        "{err}"
    );
}

#[test]
fn demo_tries_to_fetch_a_missing_model_then_opens_anyway() {
    let tmp = tempfile::tempdir().unwrap();
    let (models, demo) = (tmp.path().join("models"), tmp.path().join("demo"));
    std::fs::create_dir_all(&models).unwrap();
    // A python that records how it was asked and fails, as pip does with no network.
    let calls = tmp.path().join("python-calls");
    let python = tmp.path().join("python");
    std::fs::write(
        &python,
        format!("#!/bin/sh\necho \"$@\" >> {}\nexit 1\n", calls.display()),
    )
    .unwrap();
    std::fs::set_permissions(&python, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let t = Tmux::start_command(
        &format!(
            "KEEL_MODELS_DIR={} KEEL_PYTHON={} {} demo --dir {}",
            models.display(),
            python.display(),
            keel_bin().display(),
            demo.display()
        ),
        120,
        36,
    );
    t.wait_for("Start here");
    let asked = std::fs::read_to_string(&calls).unwrap();
    assert!(
        asked.contains("pip --timeout 8 --retries 0 download"),
        "{asked}"
    );
    t.keys(&["Escape"]);
    t.wait_until_gone("Start here");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), "0");
    // The demo was seeded without vectors and is intact.
    assert!(keel(&demo, &["audit", "verify"]).status.success());
}

#[test]
fn a_terminal_that_disappears_ends_the_console_cleanly() {
    let (_tmp, ws) = temp_workspace();
    let t = Tmux::start(&ws, 100, 30);
    t.wait_for("Queue");
    let pid = t.keel_pid();
    // The whole terminal goes away (a closed window, a dropped SSH session): SIGHUP, and
    // every later write to the terminal fails.
    t.run(&["kill-server"]);
    // Gone, or a zombie waiting for whichever process inherited it to reap it.
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while running() {
        assert!(Instant::now() < deadline, "keel outlived its terminal");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(ws.join("logs/keel.log")).unwrap();
    assert!(!log.contains("panic"), "{log}");
    assert!(log.contains("leases released"), "{log}");
}
