//! `keel bench store`: object writes and audit appends per second on a temporary workspace,
//! under `synchronous=FULL` and `NORMAL`.
//!
//! - `object_writes_single_tx_*`: one object version (schema check, version row, current row,
//!   audit entry) per transaction, the way the console and agents write.
//! - `object_writes_batched_100_*`: 100 versions per transaction (imports, bulk edits).
//! - `audit_appends_single_tx_*`: one audit entry per transaction.
//!
//! Each figure is the median of three rounds of about one second each (the machine may be
//! shared, and a median shrugs off one unlucky round).
//! The workspace lives in the system temp directory, which should be a real disk for the
//! FULL figures to mean anything (`TMPDIR` moves it).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Measurement, emit};
use crate::core::audit::{self, Actor};
use crate::core::clock::{Clock, SystemClock};
use crate::core::objects::{self, Kinds, Stamp};
use crate::core::store::{Durability, Store};
use crate::core::workspace::Workspace;

const BUDGET: Duration = Duration::from_secs(1);
const ROUNDS: usize = 3;
const MAX_WRITES: usize = 200_000;
const OBJECTS: usize = 100;
const BATCH: usize = 100;

/// Removes the temporary workspace however the run ends.
struct TempWorkspace(PathBuf);

impl Drop for TempWorkspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the suite and prints its measurements.
pub fn run(json: bool) -> anyhow::Result<()> {
    let dir = TempWorkspace(
        std::env::temp_dir().join(format!("keel-bench-store-{}", crate::core::ids::new_id())),
    );
    let ws = Workspace::init(&dir.0)?;
    let kinds = Kinds::from_config(&ws.config)?;
    let say = |metric: String, value: f64, unit: &'static str| {
        emit(
            &Measurement {
                suite: "store",
                metric,
                value,
                unit,
            },
            json,
        );
    };
    say(
        "debug_build".into(),
        f64::from(u8::from(cfg!(debug_assertions))),
        "bool",
    );
    for (durability, name) in [(Durability::Full, "full"), (Durability::Normal, "normal")] {
        let mut store = Store::open(&ws.db_path(), durability)?;
        let mut bench = Writer::new(&kinds, name);
        let single = median(|| bench.rate(&mut store, 1))?;
        say(
            format!("object_writes_single_tx_{name}"),
            single,
            "writes/s",
        );
        let batched = median(|| bench.rate(&mut store, BATCH))?;
        say(
            format!("object_writes_batched_{BATCH}_{name}"),
            batched,
            "writes/s",
        );
        say(
            format!("audit_appends_single_tx_{name}"),
            median(|| audit_rate(&mut store))?,
            "appends/s",
        );
    }
    let store = Store::open(&ws.db_path(), Durability::Normal)?;
    let started = Instant::now();
    let verified = audit::verify(store.conn())?;
    say(
        "audit_verify".into(),
        per_second(
            usize::try_from(verified.entries).unwrap_or(0),
            started.elapsed(),
        ),
        "entries/s",
    );
    Ok(())
}

/// Writes new versions of `OBJECTS` drafts round-robin, tracking each one's version.
struct Writer<'a> {
    kinds: &'a Kinds,
    prefix: &'static str,
    versions: Vec<Option<i64>>,
    counter: usize,
}

impl<'a> Writer<'a> {
    fn new(kinds: &'a Kinds, prefix: &'static str) -> Self {
        Writer {
            kinds,
            prefix,
            versions: vec![None; OBJECTS],
            counter: 0,
        }
    }

    /// Object versions written per second, `per_tx` per transaction.
    fn rate(&mut self, store: &mut Store, per_tx: usize) -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut written = 0;
        while started.elapsed() < BUDGET && written < MAX_WRITES {
            let stamp = Stamp::new(Actor::system("bench"), SystemClock.now_ms());
            store.write(|tx| {
                for _ in 0..per_tx {
                    let slot = self.counter % OBJECTS;
                    self.counter += 1;
                    let body = json!({
                        "title": format!("Draft {slot}"),
                        "body": format!("Paragraph one.\nRevision {} of this draft.\nThe end.", self.counter),
                        "status": "writing",
                    });
                    let id = format!("{}-{slot}", self.prefix);
                    let w = objects::put(tx, self.kinds, &stamp, "draft", &id, self.versions[slot], &body)?;
                    self.versions[slot] = Some(w.version);
                }
                Ok(())
            })?;
            written += per_tx;
        }
        Ok(per_second(written, started.elapsed()))
    }
}

fn audit_rate(store: &mut Store) -> anyhow::Result<f64> {
    let actor = Actor::system("bench");
    let started = Instant::now();
    let mut appended = 0;
    while started.elapsed() < BUDGET && appended < MAX_WRITES {
        let payload = json!({"n": appended, "note": "benchmark entry"});
        store.write(|tx| {
            audit::append(
                tx,
                SystemClock.now_ms(),
                &actor,
                "bench.append",
                "bench/audit",
                &payload,
            )
        })?;
        appended += 1;
    }
    Ok(per_second(appended, started.elapsed()))
}

fn median(mut round: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<f64> {
    let mut rates = (0..ROUNDS)
        .map(|_| round())
        .collect::<anyhow::Result<Vec<f64>>>()?;
    rates.sort_by(f64::total_cmp);
    Ok(rates[ROUNDS / 2])
}

#[allow(clippy::cast_precision_loss)] // counts stay far below 2^52
fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}
