//! `keel bench torture`: crash torture of the real binary. Each trial starts one `keel run`
//! (sometimes two, like a console and a daemon) on a scratch workspace while diamond workflows
//! of webhook effects POST to a loopback [`Receiver`], and `SIGKILL`s it at a random point.
//! A final clean run finishes the work; then the invariants are checked: no acknowledged task
//! lost, every idempotency key applied at most once (and every expected one exactly once), the
//! audit chain verifies, `PRAGMA integrity_check` is ok, no task was ever claimed twice at once,
//! the LMDB vector directory opens, and the vector index and `SQLite` agree on which memory
//! chunks exist (every trial also runs a `keel memory add` or `forget`, killed 60% of the
//! time; see [`super::torture_memory`]). Before the final run the index may lag `SQLite`
//! (a kill between the two commits); the final run's start-up reconcile must repair that.
//!
//! The integration test `reliability::torture` calls [`torture`] with fewer trials.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

use super::loopback::Receiver;
use super::torture_memory::{self, Workload};
pub use super::torture_report::Report;
use super::torture_report::print_report;
use crate::core::store::{Durability, Store};

/// Effects per workflow stage, and stages per workflow (a diamond: first → left|right → last).
const STEPS: u64 = 3;
const STAGES: usize = 4;

const CONFIG: &str = "[store]\ndurability = \"full\"\n[orchestrator]\nworkers = 2\nlease_ms = 3000\npoll_ms = 20\nbackoff_base_ms = 20\nbackoff_max_ms = 100\nmax_lease_losses = 1000\n";
const WORKFLOW: &str = "name = \"torture\"\n[[stage]]\nname = \"first\"\nrole = \"webhook\"\n\
     [[stage]]\nname = \"left\"\nrole = \"webhook\"\nafter = [\"first\"]\n\
     [[stage]]\nname = \"right\"\nrole = \"webhook\"\nafter = [\"first\"]\n\
     [[stage]]\nname = \"last\"\nrole = \"webhook\"\nafter = [\"left\", \"right\"]\n";

/// How to torture.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `keel` binary to run and kill.
    pub bin: PathBuf,
    /// Rounds of start-then-SIGKILL (of one or two `keel run`, and half the time a writer).
    pub trials: usize,
    pub seed: u64,
    /// An empty directory to hold the scratch workspace.
    pub dir: PathBuf,
}

/// `keel bench torture [--trials N] --json`.
pub fn run(json: bool, trials: usize) -> anyhow::Result<()> {
    let bin = std::env::current_exe().context("locating the keel binary")?;
    let dir = std::env::temp_dir().join(format!("keel-torture-{}", crate::core::ids::new_id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let seed = rand::random::<u64>();
    let result = torture(&Options {
        bin,
        trials,
        seed,
        dir: dir.clone(),
    });
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    print_report(&report, json);
    let violations = report.violations();
    if !violations.is_empty() {
        bail!(
            "crash torture failed (seed {seed}): {}",
            violations.join("; ")
        );
    }
    Ok(())
}

/// Runs the torture and checks the invariants (see [`Report::violations`]).
pub fn torture(opts: &Options) -> anyhow::Result<Report> {
    let ws = opts.dir.join("ws");
    keel_ok(&opts.bin, &ws, &["init"])?;
    std::fs::write(ws.join("config.toml"), CONFIG)?;
    std::fs::create_dir_all(ws.join("agents"))?;
    std::fs::write(ws.join("agents/torture.workflow.toml"), WORKFLOW)?;
    let receiver = Receiver::start().context("starting the loopback receiver")?;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    // A third of the trials submit a workflow, so most kills land mid-work.
    let workflows = (opts.trials / 3).max(1);

    let mut acknowledged = Vec::new();
    let mut memory = Workload::default();
    let (mut kills, mut writer_kills) = (0, 0);
    for trial in 0..opts.trials {
        if acknowledged.len() < workflows {
            acknowledged.push(add_workflow(&opts.bin, &ws, &receiver.url)?);
        }
        let memory_step = memory.start(&opts.bin, &ws, &mut rng)?;
        let mut procs = vec![daemon(&opts.bin, &ws)?];
        if rng.random_bool(0.3) {
            procs.push(daemon(&opts.bin, &ws)?);
        }
        // Half the time a CLI writer is killed mid-submission too (it was never acknowledged,
        // so it may or may not exist; the database must stay sound either way).
        if rng.random_bool(0.5) {
            let mut writer = keel_cmd(&opts.bin, &ws)
                .args([
                    "task",
                    "add",
                    "--role",
                    "noop",
                    "--key",
                    &format!("w-{trial}"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            std::thread::sleep(Duration::from_millis(rng.random_range(0..40)));
            writer.kill().context("SIGKILL")?;
            writer.wait()?;
            writer_kills += 1;
        }
        for mut p in procs {
            std::thread::sleep(Duration::from_millis(rng.random_range(20..250)));
            p.kill().context("SIGKILL")?;
            p.wait()?;
            kills += 1;
        }
        memory.finish(memory_step)?;
    }
    // The last kills land between the two commits for sure, so the final run has drift to
    // repair whatever the random kills left.
    memory.inject_drift(&opts.bin, &ws, &mut rng)?;
    let vectors_dir = ws.join(crate::core::workspace::VECTORS_DIR);
    let drift = {
        let store = Store::open(&ws.join("keel.db"), Durability::Full)?;
        torture_memory::agreement(&store, &vectors_dir, false)?.map(|a| a.mismatches())
    };
    finish_cleanly(&opts.bin, &ws, &acknowledged)?;

    let seen = receiver.snapshot();
    let store = Store::open(&ws.join("keel.db"), Durability::Full)?;
    let (memory_lost, memory_resurrected) = torture_memory::lost_and_resurrected(&store, &memory)?;
    let states = states(&store, &acknowledged);
    let lost = states.iter().filter(|s| *s != "succeeded").count();
    let effects_expected = acknowledged.len() * STAGES * usize::try_from(STEPS)?;
    let done: i64 = store.conn().query_row(
        "SELECT count(*) FROM effects WHERE state = 'done'",
        [],
        |r| r.get(0),
    )?;
    let (claims, overlapping_claims, leases_recovered) = claims(&store)?;
    let verification = crate::core::audit::verify(store.conn())?;
    // The operator's own check, too: `keel audit verify` exits non-zero on a broken chain.
    let cli_verified = keel_ok(&opts.bin, &ws, &["audit", "verify"]).is_ok();
    Ok(Report {
        seed: opts.seed,
        trials: opts.trials,
        kills,
        writer_kills,
        tasks: acknowledged.len(),
        effects_expected,
        effects_applied: seen.applied.len(),
        effects_done_in_ledger: usize::try_from(done)?,
        requests: seen.requests,
        recovery_lookups: seen.lookups,
        claims,
        leases_recovered,
        lost,
        duplicates: seen.duplicates.len(),
        overlapping_claims,
        audit_entries: verification.entries,
        audit_ok: verification.first_broken.is_none() && cli_verified,
        integrity: integrity_check(&store)?,
        lmdb_opened: lmdb_opens(&vectors_dir),
        memory_adds: memory.adds_acknowledged,
        memory_forgets: memory.forgets_acknowledged,
        memory_kills: memory.kills,
        memory_faults_injected: memory.faults_injected,
        memory_busy: memory.busy,
        memory_lost,
        memory_resurrected,
        vector_drift_before_repair: drift,
        vector_repairs: torture_memory::repairs(&store)?,
        vector_agreement: torture_memory::agreement(&store, &vectors_dir, true)?,
    })
}

/// A clean run finishes everything, then stops on SIGTERM with exit status 0.
fn finish_cleanly(bin: &Path, ws: &Path, acknowledged: &[String]) -> anyhow::Result<()> {
    let starts_before = daemon_starts(ws);
    let reconciles_before = log_count(ws, "memory reconcile");
    let mut last = daemon(bin, ws)?;
    let deadline = Instant::now() + Duration::from_mins(2);
    let outcome = loop {
        let store = Store::open(&ws.join("keel.db"), Durability::Full)?;
        let now = states(&store, acknowledged);
        if now
            .iter()
            .all(|s| s == "succeeded" || s.starts_with("lost"))
        {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!(
                "tasks did not finish after the crashes: {:?}",
                now.iter().filter(|s| *s != "succeeded").collect::<Vec<_>>()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // SIGTERM before the daemon has installed its handler would kill it the default way;
    // the clean-stop check is only meaningful once it says it has started.
    // The start-up reconcile of memory must have run too (it repairs what the kills left).
    let started_by = Instant::now() + Duration::from_secs(30);
    while (daemon_starts(ws) <= starts_before
        || log_count(ws, "memory reconcile") <= reconciles_before)
        && Instant::now() < started_by
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let reconciled = log_count(ws, "memory reconcile") > reconciles_before;
    let status = Command::new("kill")
        .args(["-TERM", &last.id().to_string()])
        .status()?;
    let exit = last.wait()?;
    outcome?;
    if !status.success() || !exit.success() {
        bail!("the final keel run did not exit 0 on SIGTERM: {exit:?}");
    }
    if !reconciled {
        bail!("the final keel run did not log its memory reconcile within 30 s");
    }
    Ok(())
}

pub(super) fn keel_cmd(bin: &Path, ws: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--workspace").arg(ws).env_remove("KEEL_WORKSPACE");
    cmd
}

fn keel_ok(bin: &Path, ws: &Path, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let out = keel_cmd(bin, ws).args(args).output()?;
    if !out.status.success() {
        bail!(
            "keel {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

fn daemon(bin: &Path, ws: &Path) -> anyhow::Result<Child> {
    Ok(keel_cmd(bin, ws)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

fn add_workflow(bin: &Path, ws: &Path, url: &str) -> anyhow::Result<String> {
    let input = json!({"url": url, "steps": STEPS}).to_string();
    let out = keel_ok(
        bin,
        ws,
        &[
            "task",
            "add",
            "--workflow",
            "torture",
            "--input",
            &input,
            "--json",
        ],
    )?;
    let row: Value = serde_json::from_slice(&out)?;
    row["id"]
        .as_str()
        .map(str::to_string)
        .context("task add --json printed no id")
}

fn states(store: &Store, ids: &[String]) -> Vec<String> {
    ids.iter()
        .map(|id| {
            crate::core::queue::get(store.conn(), id)
                .map_or_else(|e| format!("lost: {e}"), |t| t.state.to_string())
        })
        .collect()
}

/// From the audit log: claims, claims that overlapped a live claim on the same task, and
/// leases recovered from killed processes (proof that the kills interrupted work).
fn claims(store: &Store) -> anyhow::Result<(usize, usize, usize)> {
    let entries = crate::core::audit::query(
        store.conn(),
        &crate::core::audit::Filter::default(),
        10_000_000,
        false,
    )?;
    let mut live: HashMap<String, bool> = HashMap::new();
    let (mut claims, mut overlapping, mut recovered) = (0, 0, 0);
    for e in &entries {
        if !e.subject.starts_with("task/") {
            continue;
        }
        if e.action == "task.lease_recovered" {
            recovered += 1;
        }
        let running = live.entry(e.subject.clone()).or_default();
        if e.action == "task.claimed" {
            if *running {
                overlapping += 1;
            }
            *running = true;
            claims += 1;
        } else if e.payload.get("from").and_then(Value::as_str) == Some("running") {
            *running = false;
        }
    }
    Ok((claims, overlapping, recovered))
}

/// `PRAGMA integrity_check`'s answer, joined ("ok" when healthy).
pub fn integrity_check(store: &Store) -> anyhow::Result<String> {
    let mut stmt = store.conn().prepare("PRAGMA integrity_check")?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows.join("; "))
}

/// Opens the LMDB environment in `dir` (through the process's one handle per directory,
/// as heed requires) and reads its items; `None` if the directory holds no environment yet
/// (the vector memory creates it on first use).
pub fn lmdb_opens(dir: &Path) -> Option<bool> {
    if !dir.join("data.mdb").exists() {
        return None;
    }
    Some(
        crate::core::memory::vectors::VectorStore::open(dir)
            .and_then(|index| index.ids(0))
            .is_ok(),
    )
}

/// How many times a `keel run` has logged that it started on `ws`.
fn daemon_starts(ws: &Path) -> usize {
    log_count(ws, "keel run: started")
}

/// How many times `needle` occurs in the workspace's log.
fn log_count(ws: &Path, needle: &str) -> usize {
    std::fs::read_to_string(ws.join(crate::core::workspace::LOGS_DIR).join("keel.log"))
        .map_or(0, |log| log.matches(needle).count())
}
