//! `keel memory add` and `keel memory import`.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::{say, say_json};
use crate::core::workspace::Workspace;
use crate::protocol::{Added, MemoryImportReport, NewMemoryItem, Op};

use super::args::{AddArgs, ImportArgs};
use super::{hours, parse_object, request};

pub(super) fn add_item(ws: &Workspace, args: &AddArgs) -> anyhow::Result<ExitCode> {
    let text = if args.text == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        args.text.clone()
    };
    let item = NewMemoryItem {
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
    let added: Added = request(
        ws,
        Op::AddMemory {
            item: Box::new(item),
        },
    )?
    .try_into()?;
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

pub(super) fn import_files(ws: &Workspace, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    // Relative to where the operator stands, not to wherever the core runs.
    let path = std::path::absolute(&args.path)
        .with_context(|| format!("cannot resolve {}", args.path.display()))?;
    let report: MemoryImportReport = request(
        ws,
        Op::ImportMemory {
            path: path.display().to_string(),
            kind: args.kind.clone(),
            tier: Some(args.tier.parse()?),
            tags: args.tags.clone(),
        },
    )?
    .try_into()?;
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
