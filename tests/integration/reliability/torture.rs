//! Crash torture of the real binary with fewer trials than `keel bench torture` (200), so the
//! suite stays fast. The invariants are the bench's: see `keel::bench::torture` (workflows
//! with effects) and `keel::bench::torture_memory` (memory adds and forgets; the vector
//! index and `SQLite` agree afterwards). Needs the embedding model (`keel models fetch`).

use keel::bench::torture::{Options, torture};

use crate::support::keel_bin;

const TRIALS: usize = 60;

#[test]
fn sigkill_torture_loses_nothing_and_applies_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::env::var("KEEL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("torture seed: {seed} (set KEEL_CRASH_SEED to replay)");
    let report = torture(&Options {
        bin: keel_bin(),
        trials: TRIALS,
        seed,
        dir: dir.path().to_path_buf(),
    })
    .unwrap_or_else(|e| panic!("torture with seed {seed} failed: {e:#}"));
    eprintln!("{}", serde_json::to_string(&report).unwrap());
    assert_eq!(report.violations(), Vec::<String>::new(), "{report:?}");
    assert!(report.kills >= TRIALS);
    assert!(report.tasks > 0 && report.effects_applied > 0);
    // The kills really interrupted work: leases held by killed processes were recovered.
    assert!(report.leases_recovered > 0, "{report:?}");
    // Memory was written and forgotten while being killed; the last two kills landed
    // between the vector index's commit and SQLite's, so the index disagreed with SQLite
    // before the final run, whose start-up reconcile repaired it (the agreement itself,
    // vectors re-embedded and compared, is among the violations above).
    assert!(
        report.memory_adds > 0 && report.memory_forgets > 0,
        "{report:?}"
    );
    assert!(
        report.memory_kills > report.memory_faults_injected,
        "{report:?}"
    );
    assert!(report.memory_faults_injected >= 2, "{report:?}");
    assert!(report.vector_drift_before_repair >= Some(2), "{report:?}");
    assert!(report.vector_repairs > 0, "{report:?}");
    let agreement = report.vector_agreement.as_ref().unwrap();
    assert!(agreement.chunks > 0, "{report:?}");
    assert_eq!(agreement.mismatches(), 0, "{report:?}");
}

/// Runs `keel memory ARGS` with the `memory.after_vectors` failpoint and SIGKILLs it once it
/// is there: the vector index has committed, `SQLite` has not.
fn kill_between_commits(ws: &std::path::Path, args: &[&str]) {
    let marker = ws.with_file_name(format!("at-failpoint-{}", args[0]));
    let mut child = std::process::Command::new(keel_bin())
        .arg("--workspace")
        .arg(ws)
        .arg("memory")
        .args(args)
        .env_remove("KEEL_WORKSPACE")
        .env(
            "KEEL_FAILPOINT",
            format!("memory.after_vectors:600000:{}", marker.display()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    while !marker.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "exited before the failpoint"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "never reached the failpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn memory_check(ws: &std::path::Path) -> (bool, serde_json::Value) {
    let out = crate::support::keel(ws, &["memory", "check", "--json"]);
    (
        out.status.success(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

#[test]
fn keel_run_repairs_what_a_kill_between_the_two_commits_left() {
    let (_dir, ws) = crate::support::temp_workspace();
    let kept = crate::support::keel_ok(
        &ws,
        &[
            "memory",
            "add",
            "Supplier Nordwind-4 invoices quarterly.",
            "--json",
        ],
    );
    let kept: serde_json::Value = serde_json::from_str(&kept).unwrap();
    let kept = kept["id"].as_str().unwrap().to_string();
    // A forget killed mid-commit: the item stays (SQLite never deleted it), its vector is gone.
    kill_between_commits(&ws, &["forget", &kept]);
    // An add killed mid-commit: its vector is in the index, its rows never reached SQLite.
    kill_between_commits(&ws, &["add", "Customer ACME-9 renews in May."]);
    let (consistent, report) = memory_check(&ws);
    assert!(!consistent, "{report}");
    let version = &report["versions"][0];
    assert_eq!(version["missing"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(version["orphans"].as_array().unwrap().len(), 1, "{report}");

    // `keel run` repairs it at start-up, logs it, and audits the repair.
    let mut daemon = std::process::Command::new(keel_bin())
        .arg("--workspace")
        .arg(&ws)
        .arg("run")
        .env_remove("KEEL_WORKSPACE")
        .spawn()
        .unwrap();
    let log = ws.join("logs").join("keel.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("memory reconcile")) {
        assert!(std::time::Instant::now() < deadline, "no reconcile logged");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &daemon.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(daemon.wait().unwrap().success());
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("memory reconcile: SQLite and the vector index agree"),
        "{log}"
    );
    assert!(
        log.contains("missing=1") && log.contains("orphans=1"),
        "{log}"
    );
    let (consistent, report) = memory_check(&ws);
    assert!(consistent, "{report}");
    // The kept item is whole again: found by meaning, not only by keyword.
    let found = crate::support::keel_ok(
        &ws,
        &[
            "memory",
            "search",
            "who bills every three months",
            "--fusion",
            "vector",
            "--json",
        ],
    );
    assert!(found.contains(&kept), "{found}");
    let audit = crate::support::keel_ok(&ws, &["audit", "show", "--json"]);
    assert!(audit.contains("memory.repair"), "{audit}");
}
