//! `keel memory add` and `keel memory import`.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::{say, say_json};
use crate::core::audit::Actor;
use crate::core::memory::import;
use crate::core::memory::kb::{self, Added, NewItem};
use crate::core::workspace::Workspace;

use super::args::{AddArgs, ImportArgs};
use super::{hours, open, parse_object};

pub(super) fn add_item(ws: &Workspace, actor: &Actor, args: &AddArgs) -> anyhow::Result<ExitCode> {
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

pub(super) fn import_files(
    ws: &Workspace,
    actor: &Actor,
    args: &ImportArgs,
) -> anyhow::Result<ExitCode> {
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
