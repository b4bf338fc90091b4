//! `keel bench store`: object writes and audit appends per second on a temporary workspace,
//! under `synchronous=FULL` and `NORMAL`.
//!
//! - `object_writes_single_tx_*`: one object version (schema check, version row, current row,
//!   audit entry) per transaction, the way the console and agents write.
//! - `object_writes_batched_100_*`: 100 versions per transaction (imports, bulk edits).
//! - `audit_appends_single_tx_*`: one audit entry per transaction.
//!
//! Each figure is the median of three rounds of about one second each (the machine may be
//! shared, and a median shrugs off one unlucky round). Each also comes as `…_cpu`: the same
//! work per second of this thread's CPU time (user + system), which stays meaningful when
//! other processes compete for the cores. The workspace lives in the system temp directory,
//! which should be a real disk for the FULL figures to mean anything (`TMPDIR` moves it).

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

/// Operations per wall-clock second and per CPU second of this thread.
#[derive(Debug, Clone, Copy)]
struct Rate {
    wall: f64,
    cpu: Option<f64>,
}

/// Times a round in wall-clock and thread CPU time.
struct Timer {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Timer {
    fn start() -> Self {
        Timer {
            wall: Instant::now(),
            cpu: thread_cpu(),
        }
    }

    fn elapsed(&self) -> Duration {
        self.wall.elapsed()
    }

    #[allow(clippy::cast_precision_loss)] // counts stay far below 2^52
    fn rate(&self, count: usize) -> Rate {
        let per = |d: Duration| count as f64 / d.as_secs_f64().max(1e-9);
        Rate {
            wall: per(self.wall.elapsed()),
            cpu: self
                .cpu
                .zip(thread_cpu())
                .map(|(start, end)| per(end.saturating_sub(start))),
        }
    }
}

/// User + system CPU time of the calling thread (Linux `/proc`; `None` elsewhere).
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name, which is parenthesised and may contain spaces.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel reports in USER_HZ, which is 100 on every Linux platform keel targets.
    Some(Duration::from_millis(ticks * 10))
}

/// Runs the suite and prints its measurements.
pub fn run(json: bool) -> anyhow::Result<()> {
    let dir = TempWorkspace(
        std::env::temp_dir().join(format!("keel-bench-store-{}", crate::core::ids::new_id())),
    );
    let ws = Workspace::init(&dir.0)?;
    let kinds = Kinds::from_config(&ws.config)?;
    let say = |metric: String, rate: Rate, unit: &'static str, cpu_unit: &'static str| {
        emit(
            &Measurement {
                suite: "store",
                metric: metric.clone(),
                value: rate.wall,
                unit,
            },
            json,
        );
        if let Some(cpu) = rate.cpu {
            emit(
                &Measurement {
                    suite: "store",
                    metric: format!("{metric}_cpu"),
                    value: cpu,
                    unit: cpu_unit,
                },
                json,
            );
        }
    };
    emit(
        &Measurement {
            suite: "store",
            metric: "debug_build".into(),
            value: f64::from(u8::from(cfg!(debug_assertions))),
            unit: "bool",
        },
        json,
    );
    for (durability, name) in [(Durability::Full, "full"), (Durability::Normal, "normal")] {
        let mut store = Store::open(&ws.db_path(), durability)?;
        let mut bench = Writer::new(&kinds, name);
        let single = median(|| bench.rate(&mut store, 1))?;
        say(
            format!("object_writes_single_tx_{name}"),
            single,
            "writes/s",
            "writes/cpu-s",
        );
        let batched = median(|| bench.rate(&mut store, BATCH))?;
        say(
            format!("object_writes_batched_{BATCH}_{name}"),
            batched,
            "writes/s",
            "writes/cpu-s",
        );
        let appends = median(|| audit_rate(&mut store))?;
        say(
            format!("audit_appends_single_tx_{name}"),
            appends,
            "appends/s",
            "appends/cpu-s",
        );
    }
    let store = Store::open(&ws.db_path(), Durability::Normal)?;
    let timer = Timer::start();
    let verified = audit::verify(store.conn())?;
    let rate = timer.rate(usize::try_from(verified.entries).unwrap_or(0));
    say("audit_verify".into(), rate, "entries/s", "entries/cpu-s");
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
    fn rate(&mut self, store: &mut Store, per_tx: usize) -> anyhow::Result<Rate> {
        let timer = Timer::start();
        let mut written = 0;
        while timer.elapsed() < BUDGET && written < MAX_WRITES {
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
        Ok(timer.rate(written))
    }
}

fn audit_rate(store: &mut Store) -> anyhow::Result<Rate> {
    let actor = Actor::system("bench");
    let timer = Timer::start();
    let mut appended = 0;
    while timer.elapsed() < BUDGET && appended < MAX_WRITES {
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
    Ok(timer.rate(appended))
}

/// The median round, by wall-clock rate and by CPU rate (each taken separately).
fn median(mut round: impl FnMut() -> anyhow::Result<Rate>) -> anyhow::Result<Rate> {
    let rounds = (0..ROUNDS)
        .map(|_| round())
        .collect::<anyhow::Result<Vec<Rate>>>()?;
    let mut wall: Vec<f64> = rounds.iter().map(|r| r.wall).collect();
    wall.sort_by(f64::total_cmp);
    let mut cpu: Vec<f64> = rounds.iter().filter_map(|r| r.cpu).collect();
    cpu.sort_by(f64::total_cmp);
    Ok(Rate {
        wall: wall[ROUNDS / 2],
        cpu: (cpu.len() == ROUNDS).then(|| cpu[ROUNDS / 2]),
    })
}
