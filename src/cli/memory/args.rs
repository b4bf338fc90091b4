//! The `keel memory` subcommands and their arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

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
    pub text: String,
    /// What the item is, e.g. note, doc, decision.
    #[arg(long, default_value = "note")]
    pub kind: String,
    /// `long` (curated knowledge) or `task` (an artifact with a time-to-live).
    #[arg(long, default_value = "long")]
    pub tier: String,
    /// A tag to attach (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Where the item came from (kept as provenance).
    #[arg(long, default_value = "operator")]
    pub source: String,
    /// Link to a canonical object: KIND/ID@VERSION.
    #[arg(long)]
    pub object: Option<String>,
    /// Time-to-live in hours for the task tier (default: the configured one).
    #[arg(long)]
    pub ttl_hours: Option<u64>,
    /// Store even when a near-duplicate exists (it is linked to it).
    #[arg(long)]
    pub allow_duplicate: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

// The options of `keel memory import` (its help is the variant's doc comment).
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A file, or a directory to import recursively.
    pub path: PathBuf,
    /// The kind given to every imported item.
    #[arg(long, default_value = "doc")]
    pub kind: String,
    /// `long` (curated knowledge) or `task` (an artifact with a time-to-live).
    #[arg(long, default_value = "long")]
    pub tier: String,
    /// A tag to attach to every imported item (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

// The options of `keel memory search` (its help is the variant's doc comment).
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for.
    pub query: String,
    /// How many results (default: the configured `default_k`).
    #[arg(short, long)]
    pub k: Option<usize>,
    /// Only items of this kind (repeatable).
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// Only items in this tier: long or task (repeatable).
    #[arg(long = "tier")]
    pub tiers: Vec<String>,
    /// Only items with this tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only items linked to this object: KIND/ID.
    #[arg(long)]
    pub object: Option<String>,
    /// How the vector and keyword rankings are combined.
    #[arg(long, value_enum, default_value = "rrf")]
    pub fusion: FusionArg,
    /// Vector index nodes to inspect (more: better recall, slower; default: automatic).
    #[arg(long)]
    pub search_k: Option<usize>,
    /// Pin an embedding version id (see `keel memory stats`).
    #[arg(long)]
    pub embedding: Option<String>,
    /// Record the retrieval as used by this run.
    #[arg(long)]
    pub run: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
