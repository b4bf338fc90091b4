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
