//! The memory half of the crash torture: `keel memory add` and `keel memory forget` run
//! while `keel run` is `SIGKILL`ed, and are themselves `SIGKILL`ed at random points (often near
//! their end, where the vector index and `SQLite` commit one after the other). A tenth of
//! them, and two at the end, are killed exactly between the two commits (the
//! `memory.after_vectors` failpoint), which always leaves the two disagreeing until the
//! start-up reconcile of `keel run` repairs them. Afterwards
//! [`agreement`] checks, independently of `keel memory check`, that the vector index and
//! `SQLite` agree on which chunks exist and that every stored vector is its chunk's text.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::{Rng, rngs::StdRng};
use roaring::RoaringBitmap;
use serde_json::Value;

use crate::core::memory::embed::{Embed, Embedder};
use crate::core::memory::vectors::VectorStore;
use crate::core::store::Store;

/// Cosine similarity below which a stored vector is not its chunk's text.
const SAME_TEXT: f32 = 0.99;

const SUBJECTS: [&str; 6] = [
    "Customer ACME",
    "The pricing page",
    "Invoice INV",
    "The newsletter",
    "Contract C",
    "Supplier Nordwind",
];
const FACTS: [&str; 6] = [
    "renews on the first of the month after the review",
    "lifted sign-ups after the headline test",
    "was paid late and needs a reminder",
    "prefers short drafts with one clear call to action",
    "asked for a quote on the annual plan",
    "moved its billing address to Lyon",
];

/// What the memory workload did and which outcomes it knows for sure.
#[derive(Debug, Default)]
pub struct Workload {
    /// Items whose add was acknowledged (exit 0 with an id) and not forgotten since.
    pub live: Vec<String>,
    /// Items whose forget was acknowledged.
    pub forgotten: Vec<String>,
    /// Items whose forget was killed between the two commits: `SQLite` never deleted them.
    pub must_survive: Vec<String>,
    /// Texts whose add was killed between the two commits: `SQLite` never stored them.
    pub never_stored: Vec<String>,
    pub adds_acknowledged: usize,
    pub forgets_acknowledged: usize,
    /// All kills, and those made at the failpoint.
    pub kills: usize,
    pub faults_injected: usize,
    /// Commands that gave up on a busy database with the clear message (nothing committed).
    pub busy: usize,
    /// Texts made so far (each is numbered, so none repeats).
    texts: usize,
    /// How long acknowledged commands took, to aim kills near the commit.
    durations: Vec<Duration>,
}

/// One memory command in flight, and when to kill it (`None`: let it finish).
pub struct Step {
    child: Child,
    started: Instant,
    kill_after: Option<Duration>,
    forgets: Option<String>,
    added: String,
    /// Created by the process when it reaches the failpoint (then it is killed).
    marker: Option<PathBuf>,
}

/// What a command says when the database stayed locked past the busy timeout.
const BUSY: &str = "locked by another process";

/// How long a command may take to reach the failpoint.
const FAILPOINT_WAIT: Duration = Duration::from_mins(1);

impl Workload {
    fn typical(&self) -> Duration {
        let mut d = self.durations.clone();
        d.sort();
        d.get(d.len() / 2)
            .copied()
            .unwrap_or(Duration::from_millis(400))
    }

    /// Starts an add (or, once a few items exist, sometimes a forget) on `ws`; 60% of them
    /// will be killed, a sixth of those at the failpoint.
    pub fn start(&mut self, bin: &Path, ws: &Path, rng: &mut StdRng) -> anyhow::Result<Step> {
        let forget = self.live.len() >= 5 && rng.random_bool(0.2);
        let kill = rng.random_bool(0.6);
        let at_failpoint = kill && rng.random_bool(1.0 / 6.0);
        // Half anywhere in the command's run, half in its last stretch (the commits).
        let typical = self.typical().as_secs_f64();
        let at = if rng.random_bool(0.5) {
            rng.random_range(0.0..1.1)
        } else {
            rng.random_range(0.7..1.05)
        };
        let kill_after = (kill && !at_failpoint).then(|| Duration::from_secs_f64(typical * at));
        self.spawn(bin, ws, forget, at_failpoint, kill_after, rng)
    }

    /// Runs one add and one forget that are killed between the two commits, so the
    /// index and `SQLite` surely disagree until something repairs them.
    pub fn inject_drift(&mut self, bin: &Path, ws: &Path, rng: &mut StdRng) -> anyhow::Result<()> {
        while self.live.is_empty() {
            let step = self.spawn(bin, ws, false, false, None, rng)?;
            self.finish(step)?;
        }
        for forget in [true, false] {
            let step = self.spawn(bin, ws, forget, true, None, rng)?;
            self.finish(step)?;
        }
        Ok(())
    }

    fn spawn(
        &mut self,
        bin: &Path,
        ws: &Path,
        forget: bool,
        at_failpoint: bool,
        kill_after: Option<Duration>,
        rng: &mut StdRng,
    ) -> anyhow::Result<Step> {
        let forgets = (forget && !self.live.is_empty())
            .then(|| self.live.swap_remove(rng.random_range(0..self.live.len())));
        self.texts += 1;
        let added = text(self.texts, rng);
        let mut cmd = super::torture::keel_cmd(bin, ws);
        cmd.args(["memory"]);
        match &forgets {
            Some(id) => cmd.args(["forget", id, "--reason", "torture"]),
            None => cmd.args(["add", &added, "--kind", "note", "--json"]),
        };
        let marker = at_failpoint
            .then(|| ws.with_file_name(format!("failpoint-{}", crate::core::ids::new_id())));
        match &marker {
            Some(m) => cmd.env(
                "KEEL_FAILPOINT",
                format!("memory.after_vectors:600000:{}", m.display()),
            ),
            None => cmd.env_remove("KEEL_FAILPOINT"),
        };
        let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        Ok(Step {
            child,
            started: Instant::now(),
            kill_after,
            forgets,
            added,
            marker,
        })
    }

    /// Kills `step` at its time (unless it finished first) or waits for it; records what
    /// was acknowledged. A forget that was not acknowledged leaves its item's fate open.
    pub fn finish(&mut self, mut step: Step) -> anyhow::Result<()> {
        if let Some(marker) = step.marker.take() {
            return self.kill_at_failpoint(step, &marker);
        }
        let status = loop {
            if let Some(status) = step.child.try_wait()? {
                break Some(status);
            }
            match step.kill_after {
                Some(at) if step.started.elapsed() >= at => {
                    step.child.kill().context("SIGKILL")?;
                    step.child.wait()?;
                    self.kills += 1;
                    break None;
                }
                Some(_) => std::thread::sleep(Duration::from_millis(2)),
                None => break Some(step.child.wait()?),
            }
        };
        let Some(status) = status else {
            return Ok(());
        };
        let out = step.child.wait_with_output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !status.success() && stderr.contains(BUSY) {
            // A clear refusal that committed nothing: a forgotten item is still there.
            self.busy += 1;
            self.live.extend(step.forgets);
            return Ok(());
        }
        if !status.success() {
            anyhow::bail!(
                "keel memory {} failed without being killed: {}",
                if step.forgets.is_some() {
                    "forget"
                } else {
                    "add"
                },
                stderr
            );
        }
        self.durations.push(step.started.elapsed());
        if let Some(id) = step.forgets {
            self.forgets_acknowledged += 1;
            self.forgotten.push(id);
            return Ok(());
        }
        let added: Value = serde_json::from_slice(&out.stdout)
            .context("keel memory add --json printed no JSON")?;
        if let Some(id) = added["id"].as_str() {
            self.adds_acknowledged += 1;
            self.live.push(id.to_string());
        }
        Ok(())
    }

    fn kill_at_failpoint(&mut self, mut step: Step, marker: &Path) -> anyhow::Result<()> {
        while !marker.exists() {
            if let Some(status) = step.child.try_wait()? {
                let out = step.child.wait_with_output()?;
                anyhow::bail!(
                    "keel memory exited ({status}) before the memory.after_vectors failpoint: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            if step.started.elapsed() > FAILPOINT_WAIT {
                step.child.kill()?;
                anyhow::bail!("keel memory did not reach the failpoint in {FAILPOINT_WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        step.child.kill().context("SIGKILL")?;
        step.child.wait()?;
        let _ = std::fs::remove_file(marker);
        self.kills += 1;
        self.faults_injected += 1;
        match step.forgets {
            Some(id) => self.must_survive.push(id),
            None => self.never_stored.push(step.added),
        }
        Ok(())
    }
}

/// Text number `n`: no other repeats it (its figures differ), sometimes long enough for several
/// chunks so the index write takes longer.
fn text(n: usize, rng: &mut StdRng) -> String {
    let subject = SUBJECTS[rng.random_range(0..SUBJECTS.len())];
    let fact = FACTS[rng.random_range(0..FACTS.len())];
    let one = format!("{subject}-{n} {fact} (note {n}).");
    if rng.random_bool(0.2) {
        let filler = format!("Background for note {n}: {fact}. ").repeat(40);
        format!("{one} {filler}")
    } else {
        one
    }
}

/// How far the vector index and `SQLite` agree, per live embedding version, summed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Agreement {
    pub chunks: u64,
    /// Chunks without a vector in the index.
    pub missing: u64,
    /// Vectors whose chunk `SQLite` does not have (a forgotten or never-committed item).
    pub orphans: u64,
    /// Chunks `SQLite` does not record as embedded (or records for a chunk that is gone).
    pub unrecorded: u64,
    /// Vectors that are not their chunk's text (checked only with `verify_content`).
    pub wrong_vectors: u64,
}

impl Agreement {
    #[must_use]
    pub fn mismatches(&self) -> u64 {
        self.missing + self.orphans + self.unrecorded + self.wrong_vectors
    }
}

fn bitmap(
    store: &Store,
    sql: &str,
    params: impl rusqlite::Params,
) -> anyhow::Result<RoaringBitmap> {
    let mut stmt = store.conn().prepare(sql)?;
    let ids = stmt
        .query_map(params, |r| r.get::<_, u32>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids.into_iter().collect())
}

/// Compares `SQLite` (chunks, recorded vectors) with the LMDB index of every version that
/// is not retired; with `verify_content`, also re-embeds each chunk and compares it with
/// its stored vector. `None` when the workspace has no vector index.
pub fn agreement(
    store: &Store,
    vectors_dir: &Path,
    verify_content: bool,
) -> anyhow::Result<Option<Agreement>> {
    if !vectors_dir.join("data.mdb").exists() {
        return Ok(None);
    }
    let index = VectorStore::open(vectors_dir)?;
    let chunks = bitmap(store, "SELECT id FROM memory_chunks", [])?;
    let mut out = Agreement {
        chunks: chunks.len(),
        ..Agreement::default()
    };
    let versions: Vec<(String, u16, String)> = {
        let mut stmt = store.conn().prepare(
            "SELECT id, arroy_index, state FROM embedding_versions WHERE state != 'retired'",
        )?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?
    };
    for (version, arroy_index, state) in versions {
        let recorded = bitmap(
            store,
            "SELECT chunk FROM memory_vectors WHERE embedding = ?1",
            [&version],
        )?;
        let indexed = index.ids(arroy_index)?;
        // A version being built only owes vectors for the chunks it has reached.
        let owed = if state == "building" {
            &recorded
        } else {
            &chunks
        };
        out.missing += (owed - &indexed).len();
        out.orphans += (&indexed - &chunks).len();
        out.unrecorded += (owed - &recorded).len() + (&recorded - &chunks).len();
        if verify_content {
            out.wrong_vectors += wrong_vectors(store, &index, arroy_index, &version, &indexed)?;
        }
    }
    Ok(Some(out))
}

/// Re-embeds every indexed chunk with the current model and counts the stored vectors that
/// are not (nearly) the same. Versions of another model are skipped.
fn wrong_vectors(
    store: &Store,
    index: &VectorStore,
    arroy_index: u16,
    version: &str,
    indexed: &RoaringBitmap,
) -> anyhow::Result<u64> {
    let embedder = Embedder::shared()?;
    if embedder.version().id() != version {
        return Ok(0);
    }
    let mut stmt = store
        .conn()
        .prepare("SELECT text FROM memory_chunks WHERE id = ?1")?;
    let (mut ids, mut texts) = (Vec::new(), Vec::new());
    for id in indexed {
        if let Ok(text) = stmt.query_row([id], |r| r.get::<_, String>(0)) {
            ids.push(id);
            texts.push(text);
        }
    }
    let fresh = embedder.embed(&texts)?;
    let mut wrong = 0;
    for (id, want) in ids.iter().zip(&fresh) {
        let stored = index.vector(arroy_index, *id)?.unwrap_or_default();
        if cosine(&stored, want) < SAME_TEXT {
            wrong += 1;
        }
    }
    Ok(wrong)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b)).max(f32::MIN_POSITIVE)
}

/// Items that must exist but do not (acknowledged adds; forgets killed before `SQLite`
/// committed), and items that must not exist but do (acknowledged forgets; adds killed
/// before `SQLite` committed).
pub fn lost_and_resurrected(store: &Store, work: &Workload) -> anyhow::Result<(usize, usize)> {
    let (present, texts): (BTreeSet<String>, BTreeSet<String>) = {
        let mut stmt = store.conn().prepare("SELECT id, text FROM memory_items")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<(String, String)>, _>>()?
            .into_iter()
            .unzip()
    };
    let lost = work
        .live
        .iter()
        .chain(&work.must_survive)
        .filter(|id| !present.contains(*id))
        .count();
    let resurrected = work
        .forgotten
        .iter()
        .filter(|id| present.contains(*id))
        .count()
        + work
            .never_stored
            .iter()
            .filter(|t| texts.contains(*t))
            .count();
    Ok((lost, resurrected))
}

/// How many repairs the reconcile step (or `keel memory check --repair`) made.
pub fn repairs(store: &Store) -> anyhow::Result<usize> {
    let n: i64 = store.conn().query_row(
        "SELECT count(*) FROM audit WHERE action = 'memory.repair'",
        [],
        |r| r.get(0),
    )?;
    Ok(usize::try_from(n)?)
}
