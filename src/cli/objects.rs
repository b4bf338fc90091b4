//! `keel objects list|show|history|diff|put|revert|archive|unarchive|kinds`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use rusqlite::Connection;
use serde_json::Value;

use crate::core::clock;
use crate::core::handle::CoreHandle;
use crate::core::objects::{self, Kinds, ListFilter, Written};
use crate::core::workspace::Workspace;
use crate::protocol::Op;

#[derive(Debug, Subcommand)]
pub enum ObjectsCommand {
    /// List objects, most recently updated first.
    List {
        /// Only this kind (customer, offer, idea, draft, publication, contract, preference,
        /// note, metric, or one from config.toml).
        #[arg(long, short)]
        kind: Option<String>,
        /// Only objects whose id, title or body contains this text (case-insensitive).
        #[arg(long, short)]
        text: Option<String>,
        /// Include archived objects.
        #[arg(long)]
        archived: bool,
        /// Skip this many matches.
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Show at most this many (0: all).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON object: {"items": [...], "total": N}.
        #[arg(long)]
        json: bool,
    },
    /// Show an object's current version (or an older one).
    Show {
        /// The object's kind.
        kind: String,
        /// The object's id.
        id: String,
        /// Show this version instead of the current one.
        #[arg(long, short)]
        version: Option<i64>,
        /// Print the object (with its metadata) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every version of an object, oldest first.
    History {
        /// The object's kind.
        kind: String,
        /// The object's id.
        id: String,
        /// One JSON array of versions, bodies included.
        #[arg(long)]
        json: bool,
    },
    /// Line diff between two versions (text fields compared line by line).
    Diff {
        /// The object's kind.
        kind: String,
        /// The object's id.
        id: String,
        /// The older version.
        from: i64,
        /// The newer version (default: the current one).
        to: Option<i64>,
        /// Print {"from","to","diff"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create or update an object from a JSON body (a file, or standard input).
    ///
    /// Creating needs no --based-on; updating must name the version you edited, and is
    /// refused with a conflict (exit code 3) if someone else wrote a newer one since.
    Put {
        /// The object's kind.
        kind: String,
        /// The object's id (default for a new object: a fresh time-ordered id).
        id: Option<String>,
        /// Read the JSON body from this file (default: standard input; `-` also means stdin).
        #[arg(long, short, value_name = "FILE")]
        file: Option<PathBuf>,
        /// The version your change is based on (omit to create a new object).
        #[arg(long, value_name = "N")]
        based_on: Option<i64>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a new version equal to an older one.
    Revert {
        /// The object's kind.
        kind: String,
        /// The object's id.
        id: String,
        /// The version to bring back.
        to: i64,
        /// The current version you are reverting from.
        #[arg(long, value_name = "N")]
        based_on: i64,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Archive an object: hidden from lists, closed to edits, never deleted.
    Archive {
        /// The object's kind.
        kind: String,
        /// The object's id.
        id: String,
        /// The current version you are archiving.
        #[arg(long, value_name = "N")]
        based_on: i64,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Bring an archived object back.
    Unarchive {
        /// The object's kind.
        kind: String,
        /// The object's id.
        id: String,
        /// The current (archived) version.
        #[arg(long, value_name = "N")]
        based_on: i64,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the kinds this workspace knows and their schemas.
    Kinds {
        /// Print the kinds with their JSON Schemas as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ws: &Workspace, cmd: &ObjectsCommand) -> anyhow::Result<ExitCode> {
    // Best effort: a read-only or full workspace must still answer reads.
    let _log = crate::logging::init_file_logging(&ws.logs_dir()).ok();
    if is_write(cmd) {
        let handle = CoreHandle::start(ws.clone())?;
        let out = write_command(&handle, cmd);
        handle.shutdown();
        out?;
        return Ok(ExitCode::SUCCESS);
    }
    let store = ws.store()?;
    let kinds = Kinds::from_config(&ws.config)?;
    let conn = store.conn();
    match cmd {
        ObjectsCommand::List {
            kind,
            text,
            archived,
            offset,
            limit,
            json,
        } => {
            let filter = ListFilter {
                kind: kind.clone(),
                text: text.clone(),
                include_archived: *archived,
                offset: *offset,
                limit: *limit,
            };
            list(conn, &filter, *json)?;
        }
        ObjectsCommand::Show {
            kind,
            id,
            version,
            json,
        } => show(conn, kind, id, *version, *json)?,
        ObjectsCommand::History { kind, id, json } => history(conn, kind, id, *json)?,
        ObjectsCommand::Diff {
            kind,
            id,
            from,
            to,
            json,
        } => diff(conn, kind, id, *from, *to, *json)?,
        ObjectsCommand::Kinds { json } => show_kinds(&kinds, *json)?,
        ObjectsCommand::Put { .. }
        | ObjectsCommand::Revert { .. }
        | ObjectsCommand::Archive { .. }
        | ObjectsCommand::Unarchive { .. } => anyhow::bail!("writes go through the core handle"),
    }
    Ok(ExitCode::SUCCESS)
}

fn list(conn: &Connection, filter: &ListFilter, json: bool) -> anyhow::Result<()> {
    let page = objects::list(conn, filter)?;
    if json {
        return super::say_json(&page);
    }
    for row in &page.items {
        super::say(&format!(
            "{:<12} {:<38} v{:<4} {}  {}{}",
            row.kind,
            row.id,
            row.version,
            clock::rfc3339(row.updated_ms),
            row.title,
            if row.archived { "  [archived]" } else { "" }
        ));
    }
    super::say(&format!("{} of {} shown", page.items.len(), page.total));
    Ok(())
}

fn show(
    conn: &Connection,
    kind: &str,
    id: &str,
    version: Option<i64>,
    json: bool,
) -> anyhow::Result<()> {
    let object = objects::get(conn, kind, id)?;
    let shown = objects::version(conn, kind, id, version.unwrap_or(object.version))?;
    if json {
        return super::say_json(&serde_json::json!({
            "kind": kind, "id": id, "current_version": object.version,
            "archived": object.archived, "title": object.title,
            "version": shown.version, "parent": shown.parent, "author": shown.author,
            "hash": shown.hash, "note": shown.note, "created_ms": shown.created_ms,
            "body": shown.body,
        }));
    }
    super::say(&format!(
        "{kind}/{id} v{} of {} by {} at {}{}",
        shown.version,
        object.version,
        shown.author,
        clock::rfc3339(shown.created_ms),
        if object.archived { " [archived]" } else { "" }
    ));
    super::say(&serde_json::to_string_pretty(&shown.body)?);
    Ok(())
}

fn history(conn: &Connection, kind: &str, id: &str, json: bool) -> anyhow::Result<()> {
    let versions = objects::history(conn, kind, id)?;
    if json {
        return super::say_json(&versions);
    }
    for v in &versions {
        super::say(&format!(
            "v{:<4} parent {:<5} {}  {:<24} {}  {}",
            v.version,
            v.parent.map_or_else(|| "-".to_string(), |p| p.to_string()),
            clock::rfc3339(v.created_ms),
            v.author,
            &v.hash[..12.min(v.hash.len())],
            v.note
        ));
    }
    Ok(())
}

fn diff(
    conn: &Connection,
    kind: &str,
    id: &str,
    from: i64,
    to: Option<i64>,
    json: bool,
) -> anyhow::Result<()> {
    let to = match to {
        Some(v) => v,
        None => objects::get(conn, kind, id)?.version,
    };
    let diff = objects::diff(conn, kind, id, from, to)?;
    if json {
        super::say_json(&serde_json::json!({"from": from, "to": to, "diff": diff}))?;
    } else if diff.is_empty() {
        super::say(&format!("versions {from} and {to} have the same content"));
    } else {
        super::say(diff.trim_end_matches('\n'));
    }
    Ok(())
}

fn show_kinds(kinds: &Kinds, json: bool) -> anyhow::Result<()> {
    if json {
        let all: Vec<Value> = kinds
            .iter()
            .map(|k| {
                serde_json::json!({"name": k.name, "description": k.description,
                                   "builtin": k.builtin, "schema": k.schema})
            })
            .collect();
        return super::say_json(&all);
    }
    for k in kinds.iter() {
        let origin = if k.builtin { "built-in" } else { "config" };
        super::say(&format!("{:<12} {:<9} {}", k.name, origin, k.description));
    }
    Ok(())
}

fn is_write(cmd: &ObjectsCommand) -> bool {
    matches!(
        cmd,
        ObjectsCommand::Put { .. }
            | ObjectsCommand::Revert { .. }
            | ObjectsCommand::Archive { .. }
            | ObjectsCommand::Unarchive { .. }
    )
}

/// put, revert, archive, unarchive: one op each through the core handle (one transaction,
/// authored by the operator, with its change event).
fn write_command(handle: &CoreHandle, cmd: &ObjectsCommand) -> anyhow::Result<()> {
    let (op, json) = match cmd {
        ObjectsCommand::Put {
            kind,
            id,
            file,
            based_on,
            json,
        } => {
            let body = read_body(file.as_ref())?;
            let id = id.clone().unwrap_or_else(crate::core::ids::new_id);
            let op = Op::PutObject {
                kind: kind.clone(),
                id,
                based_on: *based_on,
                body,
            };
            (op, *json)
        }
        ObjectsCommand::Revert {
            kind,
            id,
            to,
            based_on,
            json,
        } => {
            let op = Op::RevertObject {
                kind: kind.clone(),
                id: id.clone(),
                to_version: *to,
                based_on: *based_on,
            };
            (op, *json)
        }
        ObjectsCommand::Archive {
            kind,
            id,
            based_on,
            json,
        } => {
            let op = Op::ArchiveObject {
                kind: kind.clone(),
                id: id.clone(),
                based_on: *based_on,
            };
            (op, *json)
        }
        ObjectsCommand::Unarchive {
            kind,
            id,
            based_on,
            json,
        } => {
            let op = Op::UnarchiveObject {
                kind: kind.clone(),
                id: id.clone(),
                based_on: *based_on,
            };
            (op, *json)
        }
        _ => anyhow::bail!("not a write command"),
    };
    let written: Written = handle.request_blocking(op)?.try_into()?;
    if written.changed {
        tracing::info!(kind = %written.kind, id = %written.id, version = written.version, "object written from the command line");
    }
    report(&written, json)
}

fn read_body(file: Option<&PathBuf>) -> anyhow::Result<Value> {
    let (text, source) = match file {
        Some(path) if path.as_os_str() != "-" => (
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        _ => {
            let mut text = String::new();
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprintln!(
                    "reading the JSON body from standard input (end with Ctrl-D), or pass --file"
                );
            }
            std::io::stdin().read_to_string(&mut text)?;
            (text, "standard input".to_string())
        }
    };
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{source}:{}:{}: the body is not valid JSON: {e}",
            e.line(),
            e.column()
        )
    })
}

fn report(w: &Written, json: bool) -> anyhow::Result<()> {
    if json {
        return super::say_json(w);
    }
    let what = if !w.changed {
        "unchanged (same content)".to_string()
    } else if w.archived {
        "archived".to_string()
    } else {
        w.parent
            .map_or_else(|| "created".to_string(), |p| format!("updated from v{p}"))
    };
    super::say(&format!("{}/{} v{}: {what}", w.kind, w.id, w.version));
    Ok(())
}
