//! Crash torture of the real binary with fewer trials than `keel bench torture` (200), so the
//! suite stays fast. The invariants are the bench's: see `keel::bench::torture`.

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
}
