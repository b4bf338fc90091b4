//! `keel bench memory [--json] [--large]`: embedding throughput (real model), index build
//! time and size at 10k (and with `--large` 100k) synthetic vectors, query latency p50/p99
//! with recall@10 against brute force, and the time from add to searchable.
//!
//! Experiment knobs (environment): `KEEL_BENCH_TREES=N` builds the synthetic indexes with N
//! trees instead of the configured default; `KEEL_BENCH_SKIP_EMBED=1` runs only the index part.

// Benchmark arithmetic turns counts into floating-point rates and percentiles.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};

use super::scratch::Scratch;

use crate::bench::{Measurement, emit};
use crate::core::clock::SystemClock;
use crate::core::memory::embed::{Embed, Embedder, cosine};
use crate::core::memory::kb::{self, NewItem};
use crate::core::memory::search::{self, Fusion, SearchParams};
use crate::core::memory::vectors::VectorStore;
use crate::core::memory::{Memory, MemoryConfig};

/// An item id and its vector.
pub type Item = (u32, Vec<f32>);

/// Clustered unit vectors (real embeddings are clustered, not uniform) and queries drawn
/// near the same clusters but not in the corpus. Deterministic for a seed.
#[must_use]
pub fn synthetic_corpus(
    n: usize,
    queries: usize,
    dims: usize,
    seed: u64,
) -> (Vec<Item>, Vec<Vec<f32>>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let clusters = (n / 100).clamp(10, 1000);
    let centers: Vec<Vec<f32>> = (0..clusters)
        .map(|_| normalise((0..dims).map(|_| rng.random_range(-1.0f32..1.0)).collect()))
        .collect();
    let point = |rng: &mut rand::rngs::StdRng| {
        let c = &centers[rng.random_range(0..clusters)];
        normalise(
            c.iter()
                .map(|x| x + rng.random_range(-0.35f32..0.35) / (dims as f32).sqrt() * 4.0)
                .collect(),
        )
    };
    let vectors = (0..n)
        .map(|i| (u32::try_from(i).unwrap_or(u32::MAX), point(&mut rng)))
        .collect();
    let qs = (0..queries).map(|_| point(&mut rng)).collect();
    (vectors, qs)
}

fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        for x in &mut v {
            *x /= n;
        }
    }
    v
}

/// Exact top-10 ids by cosine (ties by id).
#[must_use]
pub fn brute_force_top10(vectors: &[(u32, Vec<f32>)], q: &[f32]) -> Vec<u32> {
    let mut scored: Vec<(f32, u32)> = vectors.iter().map(|(id, v)| (cosine(q, v), *id)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.into_iter().take(10).map(|s| s.1).collect()
}

/// Mean recall@10 of the index against brute force.
#[must_use]
pub fn recall_at_10(
    store: &VectorStore,
    index: u16,
    vectors: &[(u32, Vec<f32>)],
    queries: &[Vec<f32>],
    search_k: Option<NonZeroUsize>,
) -> f64 {
    let exact: Vec<Vec<u32>> = queries
        .iter()
        .map(|q| brute_force_top10(vectors, q))
        .collect();
    recall_against(store, index, &exact, queries, search_k)
}

/// Mean recall@10 against precomputed exact answers (one per query).
fn recall_against(
    store: &VectorStore,
    index: u16,
    exact: &[Vec<u32>],
    queries: &[Vec<f32>],
    search_k: Option<NonZeroUsize>,
) -> f64 {
    let mut total = 0.0;
    for (q, exact) in queries.iter().zip(exact) {
        let got = store
            .search(index, q, 10, search_k, None)
            .unwrap_or_default();
        let found = got.iter().filter(|h| exact.contains(&h.id)).count();
        total += found as f64 / exact.len().max(1) as f64;
    }
    total / queries.len().max(1) as f64
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn m(metric: impl Into<String>, value: f64, unit: &'static str) -> Measurement {
    Measurement {
        suite: "memory",
        metric: metric.into(),
        value,
        unit,
    }
}

/// Runs the suite and prints its measurements. `large` adds the 100k-item index.
pub fn run(json: bool, large: bool) -> anyhow::Result<()> {
    let embedder = Embedder::shared()?;
    let t = Instant::now();
    embedder.wait_ready()?;
    emit(
        &m("model_load", t.elapsed().as_secs_f64() * 1000.0, "ms"),
        json,
    );

    let short: Vec<String> = (0..512)
        .map(|i| {
            format!(
                "Customer {i} asked about the price of plan {} and delivery to city {}.",
                i % 7,
                i % 13
            )
        })
        .collect();
    embedder.embed(&short[..64])?;
    if std::env::var_os("KEEL_BENCH_SKIP_EMBED").is_some() {
        for &n in if large {
            &[10_000, 100_000][..]
        } else {
            &[10_000][..]
        } {
            index_bench(n, json)?;
        }
        return Ok(());
    }
    throughput(&embedder, &short, "embed_short_texts", json)?;
    let sentence = "The quarterly report explains how revenue, costs and customer numbers developed in each region and why. ";
    let long: Vec<String> = (0..64)
        .map(|i| format!("{i} {}", sentence.repeat(14)))
        .collect();
    throughput(&embedder, &long, "embed_256_token_texts", json)?;

    let sizes: &[usize] = if large { &[10_000, 100_000] } else { &[10_000] };
    for &n in sizes {
        index_bench(n, json)?;
    }
    add_to_searchable(&embedder, json)?;
    Ok(())
}

/// Texts per wall-clock second, and per CPU-second of this process: on a shared machine
/// the wall-clock rate mostly measures the neighbours.
fn throughput(embedder: &Embedder, texts: &[String], name: &str, json: bool) -> anyhow::Result<()> {
    let (t, cpu) = (Instant::now(), cpu_seconds());
    embedder.embed(texts)?;
    let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    emit(
        &m(
            format!("{name}_per_s"),
            texts.len() as f64 / wall,
            "texts/s",
        ),
        json,
    );
    emit(
        &m(
            format!("{name}_per_cpu_s"),
            texts.len() as f64 / cpu.max(1e-3),
            "texts/cpu-s",
        ),
        json,
    );
    Ok(())
}

/// CPU time (user + system) this process has used, from /proc (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name: state is the first, utime the 12th.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn index_bench(n: usize, json: bool) -> anyhow::Result<()> {
    let dir = Scratch::new("memory")?;
    let store = VectorStore::open(dir.path())?;
    // `KEEL_BENCH_TREES` overrides the configured default, for experiments.
    let trees: usize = std::env::var("KEEL_BENCH_TREES")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(MemoryConfig::default().n_trees);
    store.set_n_trees(trees);
    let (vectors, queries) = synthetic_corpus(n, 200, 384, 42);
    let t = Instant::now();
    for chunk in vectors.chunks(10_000) {
        store.add(0, 384, chunk)?;
    }
    let label = format!("{}k", n / 1000);
    emit(
        &m(
            format!("index_build_{label}"),
            t.elapsed().as_secs_f64(),
            "s",
        ),
        json,
    );
    emit(
        &m(
            format!("index_disk_{label}"),
            store.disk_size()? as f64 / f64::from(1 << 20),
            "MiB",
        ),
        json,
    );
    let trees = store.n_trees(0)?;
    emit(
        &m(format!("index_trees_{label}"), trees as f64, "trees"),
        json,
    );
    // arroy's default inspects n_trees × k nodes; `memory search` asks arroy for
    // `candidates` (50) items, which is a budget of n_trees × 50. The sweep in between
    // finds the cheapest budget that reaches recall@10 ≥ 0.95.
    let exact: Vec<Vec<u32>> = queries
        .iter()
        .map(|q| brute_force_top10(&vectors, q))
        .collect();
    let mut cheapest: Option<(usize, f64, f64)> = None;
    for search_k in [
        None,
        NonZeroUsize::new(trees * 20),
        NonZeroUsize::new(trees * 30),
        NonZeroUsize::new(trees * 40),
        NonZeroUsize::new(trees * 50),
    ] {
        let tag = search_k.map_or_else(|| "default".to_string(), |k| format!("search_k{k}"));
        let mut times = Vec::with_capacity(queries.len());
        for q in &queries {
            let t = Instant::now();
            let _ = store.search(0, q, 10, search_k, None)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let p50 = percentile(&times, 0.5);
        emit(&m(format!("query_p50_{label}_{tag}"), p50, "ms"), json);
        emit(
            &m(
                format!("query_p99_{label}_{tag}"),
                percentile(&times, 0.99),
                "ms",
            ),
            json,
        );
        let recall = recall_against(&store, 0, &exact, &queries, search_k);
        emit(
            &m(format!("recall_at_10_{label}_{tag}"), recall, "ratio"),
            json,
        );
        let budget = search_k.map_or(trees * 10, NonZeroUsize::get);
        if recall >= 0.95 && cheapest.is_none_or(|(_, _, best)| p50 < best) {
            cheapest = Some((budget, recall, p50));
        }
    }
    if let Some((budget, recall, p50)) = cheapest {
        emit(
            &m(format!("recall95_search_k_{label}"), budget as f64, "nodes"),
            json,
        );
        emit(
            &m(format!("recall95_recall_at_10_{label}"), recall, "ratio"),
            json,
        );
        emit(&m(format!("recall95_query_p50_{label}"), p50, "ms"), json);
    }
    Ok(())
}

fn add_to_searchable(embedder: &Embedder, json: bool) -> anyhow::Result<()> {
    let dir = Scratch::new("memory")?;
    let ws = crate::core::workspace::Workspace::init(&dir.path().join("ws"))?;
    let mut store = ws.store()?;
    store.set_durability(crate::core::store::Durability::Normal)?;
    let memory = Memory::with_embedders(
        &ws.vectors_dir(),
        MemoryConfig::default(),
        &mut store,
        vec![Arc::new(embedder.clone())],
        Arc::new(SystemClock),
    )?;
    let actor = crate::core::audit::Actor::system("bench");
    for i in 0..200 {
        let item = NewItem {
            text: format!(
                "Background fact number {i}: supplier {} delivers on day {}.",
                i % 17,
                i % 5
            ),
            kind: "fact".into(),
            allow_duplicate: true,
            ..NewItem::default()
        };
        kb::add(&mut store, &memory, &actor, &item)?;
    }
    let mut times = Vec::new();
    for i in 0..20 {
        let text =
            format!("Unique marker zq{i}x: the courier for region {i} changed to a new company.");
        let t = Instant::now();
        let item = NewItem {
            text,
            kind: "fact".into(),
            allow_duplicate: true,
            ..NewItem::default()
        };
        let kb::Added::Stored { id, .. } = kb::add(&mut store, &memory, &actor, &item)? else {
            anyhow::bail!("bench item unexpectedly a duplicate");
        };
        // Vector-only, so the arroy index (not just FTS) must already hold the new item.
        let params = SearchParams {
            k: 1,
            fusion: Fusion::VectorOnly,
            ..SearchParams::default()
        };
        let found = search::search(store.conn(), &memory, &item.text, &params)?;
        anyhow::ensure!(
            found.hits.first().is_some_and(|h| h.item == id),
            "added item not found"
        );
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    emit(
        &m("add_to_searchable_p50", percentile(&times, 0.5), "ms"),
        json,
    );
    emit(
        &m("add_to_searchable_p99", percentile(&times, 0.99), "ms"),
        json,
    );
    Ok(())
}
