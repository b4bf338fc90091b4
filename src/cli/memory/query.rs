//! `keel memory search` and `keel memory explain`.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;

use crate::cli::{say, say_json};
use crate::core::memory::search::{Filters, Fusion, SearchParams};
use crate::core::memory::{Memory, Tier, retrieval, search};
use crate::core::workspace::Workspace;
use crate::protocol::{Op, Retrieval};

use super::args::{FusionArg, SearchArgs};
use super::{open, request};

pub(super) fn search_params(memory: &Memory, args: &SearchArgs) -> anyhow::Result<SearchParams> {
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

pub(super) fn search_items(ws: &Workspace, args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let (store, memory) = open(ws)?;
    let params = search_params(&memory, args)?;
    let query = &args.query;
    let (retrieval_id, result) = match &args.run {
        Some(run) => {
            drop(store);
            let r: Retrieval = request(
                ws,
                Op::RetrieveForRun {
                    run: run.clone(),
                    text: query.clone(),
                    params,
                },
            )?
            .try_into()?;
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

pub(super) fn explain_run(ws: &Workspace, run: &str, json: bool) -> anyhow::Result<ExitCode> {
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
