//! `keel memory add|import|search|explain|forget|promote|demote|sweep|reindex|stats|check|triage|decide`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::{say, say_json};
use crate::core::audit::Actor;
use crate::core::clock::SystemClock;
use crate::core::memory::kb::{self, Added, NewItem};
use crate::core::memory::search::{Filters, Fusion, SearchParams};
use crate::core::memory::triage::Triage;
use crate::core::memory::{Memory, Tier, check, import, retrieval, search, versions};
use crate::core::store::Store;
use crate::core::workspace::Workspace;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FusionArg {
    /// Vector and keyword rankings fused by reciprocal rank.
    Rrf,
    /// Vector (semantic) ranking only.
    Vector,
    /// Keyword (full-text) ranking only.
    Keyword,
}

#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// Add one item (TEXT, or `-` to read standard input).
    Add(AddArgs),
    /// Import .md, .txt and .csv files (or a directory of them); lists what was skipped.
    Import(ImportArgs),
    /// Hybrid search. With --run the retrieval is recorded for that run (provenance).
    Search(SearchArgs),
    /// Show what memory a run used and how the same queries answer now, as a diff.
    Explain {
        /// The run id.
        run: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete an item, its chunks and vectors (the audit keeps its hash).
    Forget {
        /// The item id.
        id: String,
        /// Why it is deleted (recorded in the audit log).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Move an item to long-term memory (no expiry).
    Promote {
        /// The item id.
        id: String,
    },
    /// Move an item to task state with a time-to-live.
    Demote {
        /// The item id.
        id: String,
        /// Time-to-live in hours (default: the configured one).
        #[arg(long)]
        ttl_hours: Option<u64>,
    },
    /// Delete task-state items whose time-to-live has passed.
    Sweep,
    /// Finish a re-embedding migration, or rebuild the current index in the background.
    Reindex,
    /// Counts, embedding versions, model state and index size.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check that `SQLite` and the vector index agree; --repair fixes what differs.
    Check {
        /// Fix what differs (re-embed missing vectors, drop orphans).
        #[arg(long)]
        repair: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Classify an incoming item against the labelled examples.
    Triage {
        /// The incoming item's text.
        text: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Record the operator's label for a triage decision (it becomes an example); with
    /// --task, answer an escalated `triage` task: learn the label and route the item by it.
    Decide {
        /// The decision id printed by `keel memory triage` (a task id with --task).
        decision: String,
        /// The correct label (with --task: a role, a workflow, or spam).
        label: String,
        /// DECISION is an escalated triage task.
        #[arg(long)]
        task: bool,
    },
}

// The options of `keel memory add` (its help is the variant's doc comment).
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The text to remember, or `-` to read standard input.
    text: String,
    /// What the item is, e.g. note, doc, decision.
    #[arg(long, default_value = "note")]
    kind: String,
    /// `long` (curated knowledge) or `task` (an artifact with a time-to-live).
    #[arg(long, default_value = "long")]
    tier: String,
    /// A tag to attach (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Where the item came from (kept as provenance).
    #[arg(long, default_value = "operator")]
    source: String,
    /// Link to a canonical object: KIND/ID@VERSION.
    #[arg(long)]
    object: Option<String>,
    /// Time-to-live in hours for the task tier (default: the configured one).
    #[arg(long)]
    ttl_hours: Option<u64>,
    /// Store even when a near-duplicate exists (it is linked to it).
    #[arg(long)]
    allow_duplicate: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

// The options of `keel memory import` (its help is the variant's doc comment).
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A file, or a directory to import recursively.
    path: PathBuf,
    /// The kind given to every imported item.
    #[arg(long, default_value = "doc")]
    kind: String,
    /// `long` (curated knowledge) or `task` (an artifact with a time-to-live).
    #[arg(long, default_value = "long")]
    tier: String,
    /// A tag to attach to every imported item (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

// The options of `keel memory search` (its help is the variant's doc comment).
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for.
    query: String,
    /// How many results (default: the configured `default_k`).
    #[arg(short, long)]
    k: Option<usize>,
    /// Only items of this kind (repeatable).
    #[arg(long = "kind")]
    kinds: Vec<String>,
    /// Only items in this tier: long or task (repeatable).
    #[arg(long = "tier")]
    tiers: Vec<String>,
    /// Only items with this tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Only items linked to this object: KIND/ID.
    #[arg(long)]
    object: Option<String>,
    /// How the vector and keyword rankings are combined.
    #[arg(long, value_enum, default_value = "rrf")]
    fusion: FusionArg,
    /// Vector index nodes to inspect (more: better recall, slower; default: automatic).
    #[arg(long)]
    search_k: Option<usize>,
    /// Pin an embedding version id (see `keel memory stats`).
    #[arg(long)]
    embedding: Option<String>,
    /// Record the retrieval as used by this run.
    #[arg(long)]
    run: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn open(ws: &Workspace) -> anyhow::Result<(Store, Memory)> {
    let mut store = ws.store()?;
    let memory = Memory::open(ws, &mut store, Arc::new(SystemClock))?;
    Ok((store, memory))
}

fn hours(h: u64) -> i64 {
    i64::try_from(h)
        .unwrap_or(i64::MAX / 3_600_000)
        .saturating_mul(3_600_000)
}

fn parse_object(s: &str) -> anyhow::Result<crate::protocol::ObjectRef> {
    let (kind, rest) = s
        .split_once('/')
        .context("--object must look like KIND/ID@VERSION")?;
    let (id, version) = rest
        .split_once('@')
        .context("--object must look like KIND/ID@VERSION")?;
    Ok(crate::protocol::ObjectRef {
        kind: kind.into(),
        id: id.into(),
        version: version
            .parse()
            .context("the object version must be a number")?,
    })
}

pub fn run(ws: &Workspace, cmd: &MemoryCommand) -> anyhow::Result<ExitCode> {
    let actor = Actor::Operator;
    match cmd {
        MemoryCommand::Add(args) => add_item(ws, &actor, args),
        MemoryCommand::Import(args) => import_files(ws, &actor, args),
        MemoryCommand::Search(args) => search_items(ws, args),
        MemoryCommand::Explain { run, json } => explain_run(ws, run, *json),
        MemoryCommand::Forget { id, reason } => {
            let (mut store, memory) = open(ws)?;
            kb::forget(&mut store, &memory, &actor, id, reason)?;
            say(&format!("forgot {id}"));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Promote { id } => {
            let (mut store, memory) = open(ws)?;
            let v = kb::set_tier(&mut store, &memory, &actor, id, Tier::Long, None)?;
            say(&format!("{id} is long-term memory (version {v})"));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Demote { id, ttl_hours } => {
            let (mut store, memory) = open(ws)?;
            let v = kb::set_tier(
                &mut store,
                &memory,
                &actor,
                id,
                Tier::Task,
                ttl_hours.map(hours),
            )?;
            say(&format!("{id} is task state (version {v})"));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Sweep => {
            let (mut store, memory) = open(ws)?;
            let gone = kb::sweep(&mut store, &memory)?;
            say(&format!("swept {} expired item(s)", gone.len()));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Reindex => reindex(ws),
        MemoryCommand::Stats { json } => {
            let (store, memory) = open(ws)?;
            let stats = stats(&store, &memory)?;
            if *json {
                say_json(&stats)?;
            } else {
                say(&serde_json::to_string_pretty(&stats)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Check { repair, json } => check_index(ws, *repair, *json),
        MemoryCommand::Triage { text, json } => triage_item(ws, &actor, text, *json),
        MemoryCommand::Decide {
            decision,
            label,
            task: true,
        } => {
            let catalog = crate::core::queue::RoleCatalog::load(&ws.root)?;
            let mut store = ws.store()?;
            let now = crate::core::clock::Clock::now_ms(&crate::core::clock::SystemClock);
            store.write(|tx| {
                crate::core::roles::triage::decide(tx, now, &actor, &catalog, decision, label)
            })?;
            say(&format!(
                "task {decision}: routed by the operator as {label}; the label is learned"
            ));
            Ok(ExitCode::SUCCESS)
        }
        MemoryCommand::Decide {
            decision, label, ..
        } => {
            let (mut store, memory) = open(ws)?;
            triage(ws, &memory).resolve(&mut store, &actor, decision, label)?;
            say(&format!("decision {decision} labelled {label}"));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn add_item(ws: &Workspace, actor: &Actor, args: &AddArgs) -> anyhow::Result<ExitCode> {
    let text = if args.text == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        args.text.clone()
    };
    let (mut store, memory) = open(ws)?;
    let item = NewItem {
        text,
        kind: args.kind.clone(),
        tier: Some(args.tier.parse()?),
        source: args.source.clone(),
        object: args.object.as_deref().map(parse_object).transpose()?,
        tags: args.tags.clone(),
        run_id: None,
        ttl_ms: args.ttl_hours.map(hours),
        allow_duplicate: args.allow_duplicate,
    };
    let added = kb::add(&mut store, &memory, actor, &item)?;
    if args.json {
        say_json(&added)?;
    } else {
        match &added {
            Added::Stored {
                id,
                chunks,
                duplicate_of,
            } => {
                say(&format!("added {id} ({chunks} chunk(s))"));
                if let Some(d) = duplicate_of {
                    say(&format!(
                        "note: near-duplicate of {} (cosine {:.3}), linked",
                        d.existing, d.similarity
                    ));
                }
            }
            Added::Duplicate(d) => say(&format!(
                "not added: near-duplicate of {} (cosine {:.3}); use --allow-duplicate to store it anyway",
                d.existing, d.similarity
            )),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn import_files(ws: &Workspace, actor: &Actor, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let (mut store, memory) = open(ws)?;
    let options = import::ImportOptions {
        kind: args.kind.clone(),
        tier: Some(args.tier.parse()?),
        tags: args.tags.clone(),
    };
    let report = import::import(&mut store, &memory, actor, &args.path, &options)?;
    if args.json {
        say_json(&report)?;
    } else {
        say(&format!(
            "imported {} item(s), {} duplicate(s) not stored, {} skipped",
            report.added.len(),
            report.duplicates.len(),
            report.skipped.len()
        ));
        for d in &report.duplicates {
            say(&format!("  duplicate  {} (of {})", d.source, d.id));
        }
        for s in &report.skipped {
            say(&format!("  skipped    {}: {}", s.path, s.reason));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn search_params(memory: &Memory, args: &SearchArgs) -> anyhow::Result<SearchParams> {
    Ok(SearchParams {
        k: args.k.unwrap_or(memory.config.default_k),
        candidates: memory.config.candidates,
        search_k: args.search_k,
        fusion: match args.fusion {
            FusionArg::Rrf => Fusion::Rrf,
            FusionArg::Vector => Fusion::VectorOnly,
            FusionArg::Keyword => Fusion::KeywordOnly,
        },
        filters: Filters {
            kinds: args.kinds.clone(),
            tiers: args
                .tiers
                .iter()
                .map(|t| t.parse::<Tier>())
                .collect::<Result<_, _>>()?,
            tags: args.tags.clone(),
            object: args
                .object
                .as_deref()
                .map(|o| {
                    o.split_once('/')
                        .map(|(k, i)| (k.to_string(), i.to_string()))
                        .context("--object must look like KIND/ID")
                })
                .transpose()?,
        },
        embedding: args.embedding.clone(),
    })
}

fn search_items(ws: &Workspace, args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let (mut store, memory) = open(ws)?;
    let params = search_params(&memory, args)?;
    let query = &args.query;
    let (retrieval_id, result) = match &args.run {
        Some(run) => {
            let r = retrieval::retrieve(&mut store, &memory, run, query, &params)?;
            (
                Some(r.id),
                search::SearchResult {
                    embedding: r.embedding,
                    hits: r.hits,
                },
            )
        }
        None => (None, search::search(store.conn(), &memory, query, &params)?),
    };
    if args.json {
        say_json(
            &json!({"retrieval": retrieval_id, "embedding": result.embedding, "hits": result.hits}),
        )?;
    } else {
        for h in &result.hits {
            say(&format!(
                "{:>2}. {:.4}  {} v{}  [{}/{}]  {}",
                h.rank, h.score, h.item, h.item_version, h.kind, h.tier, h.preview
            ));
        }
        if result.hits.is_empty() {
            say("no results");
        }
        if let Some(id) = retrieval_id {
            say(&format!("recorded as retrieval {id}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn explain_run(ws: &Workspace, run: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (store, memory) = open(ws)?;
    let ex = retrieval::explain(store.conn(), &memory, run)?;
    if json {
        say_json(&ex)?;
    } else if ex.is_empty() {
        say(&format!("run {run} made no memory retrievals"));
    } else {
        for e in &ex {
            say(&format!(
                "retrieval {}  query {:?}  embedding {}",
                e.retrieval, e.query, e.embedding
            ));
            say(&format!("  params {}", serde_json::to_string(&e.params)?));
            if let Some(err) = &e.replay_error {
                say(&format!("  cannot replay now: {err}"));
            } else if e.unchanged {
                say("  unchanged: the same query answers the same items, versions and order now");
            }
            say(&e.diff);
            if e.unchanged {
                for h in &e.then {
                    say(&format!(
                        "   {:>2} {} v{} {:.6} {}",
                        h.rank, h.item, h.item_version, h.score, h.preview
                    ));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn reindex(ws: &Workspace) -> anyhow::Result<ExitCode> {
    let (mut store, memory) = open(ws)?;
    let current = memory.current_version().id();
    let state = versions::get(store.conn(), &current)?
        .map(|v| v.state)
        .unwrap_or_default();
    if state == "building" {
        let report = versions::migrate(&mut store, &memory, &|done, total| {
            tracing::info!(done, total, "re-embedding");
        })?;
        say(&format!(
            "re-embedded {} chunk(s) with {}; retired {:?}",
            report.embedded, report.version, report.retired
        ));
    } else {
        let handle = versions::rebuild_in_background(
            store.path().to_path_buf(),
            ws.config.store.durability,
            memory,
        );
        let copied = handle
            .join()
            .map_err(|_| anyhow::anyhow!("the rebuild thread panicked"))??;
        say(&format!(
            "rebuilt the index for {current} ({copied} vectors)"
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn check_index(ws: &Workspace, repair: bool, json: bool) -> anyhow::Result<ExitCode> {
    let (mut store, memory) = open(ws)?;
    let report = if repair {
        check::repair(&mut store, &memory)?
    } else {
        check::check(store.conn(), &memory)?
    };
    if json {
        say_json(&report)?;
    } else {
        for v in &report.versions {
            say(&format!(
                "{} ({}): {} indexed, {} missing, {} orphan(s)",
                v.embedding,
                v.state,
                v.indexed,
                v.missing.len(),
                v.orphans.len()
            ));
        }
        say(if report.is_consistent() {
            "consistent"
        } else {
            "inconsistent: run `keel memory check --repair`"
        });
    }
    Ok(if report.is_consistent() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The triage classifier over the current embedder and the workspace's `[triage]` settings.
fn triage(ws: &Workspace, memory: &Memory) -> Triage {
    Triage::new(
        Arc::clone(&memory.embedders[0]),
        ws.config.triage.clone(),
        Arc::new(SystemClock),
    )
}

fn triage_item(ws: &Workspace, actor: &Actor, text: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (mut store, memory) = open(ws)?;
    let decisions = triage(ws, &memory).classify(&mut store, actor, text)?;
    if json {
        say_json(&decisions)?;
    } else {
        for d in &decisions {
            say(&format!(
                "{}: {} (confidence {:.2}) → {}  [decision {}]",
                d.facet,
                d.label.as_deref().unwrap_or("?"),
                d.confidence,
                d.routed,
                d.id
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Counts and state for `keel memory stats`.
pub fn stats(store: &Store, memory: &Memory) -> anyhow::Result<serde_json::Value> {
    let conn = store.conn();
    let count = |sql: &str| -> anyhow::Result<i64> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
    Ok(json!({
        "items": count("SELECT count(*) FROM memory_items")?,
        "long_term": count("SELECT count(*) FROM memory_items WHERE tier = 'long'")?,
        "task_state": count("SELECT count(*) FROM memory_items WHERE tier = 'task'")?,
        "chunks": count("SELECT count(*) FROM memory_chunks")?,
        "retrievals": count("SELECT count(*) FROM retrievals")?,
        "triage_decisions": count("SELECT count(*) FROM triage_decisions")?,
        "embedding_versions": versions::list(conn)?,
        "current_embedding": memory.current_version().id(),
        "vector_disk_bytes": memory.vectors().disk_size()?,
        "vector_map_bytes": memory.vectors().map_size(),
    }))
}
