//! The demo business `keel demo` opens on: "Small Batch Software", a newsletter with paid
//! guides and a consulting offer (`assets/demo/`). Seeding writes its objects, imports and
//! reconciles its past analytics, stores its memory notes (keyword-searchable at once,
//! embedded when the model is there), installs the policy and the daily/weekly schedules,
//! and queues a first content round so the console shows work happening. Written once (a
//! `meta` flag remembers it) and audited like any other write.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::core::audit::Actor;
use crate::core::clock::{Clock, Millis};
use crate::core::error::{Error, Result};
use crate::core::memory::{Memory, kb};
use crate::core::objects::{self, Kinds, Stamp};
use crate::core::store::Store;
use crate::core::workspace::Workspace;

const SEEDED: &str = "demo.objects_seeded";
const BUSINESS: &str = include_str!("../../assets/demo/business.toml");
const NOTES: &str = include_str!("../../assets/demo/notes.md");
/// The past analytics, as the analytics import reads them.
pub const ANALYTICS: &str = include_str!("../../assets/demo/analytics.csv");
/// Goals the researcher ranks ideas against (the demo's goals preference, condensed).
pub const GOALS: &[&str] = &[
    "grow newsletter subscribers with pricing and launch content that converts to the guide bundle",
];
/// The demo's schedules, connectors and triage examples, appended to its config.toml.
const CONFIG_ADDITIONS: &str = include_str!("../../assets/demo/config_additions.toml");

/// What `keel demo` wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DemoReport {
    pub objects: usize,
    pub notes: usize,
    /// Notes stored without vectors because the embedding model is missing.
    pub notes_unembedded: bool,
    pub metrics: usize,
    pub first_task: Option<String>,
}

#[derive(Deserialize)]
struct Business {
    objects: Vec<SampleObject>,
}

#[derive(Deserialize)]
struct SampleObject {
    kind: String,
    id: String,
    body: Value,
}

/// Seeds the whole demo into the fresh workspace `ws` (see the module doc). Returns `None`
/// when the workspace already has history (it is never mixed into a real business).
pub fn seed_workspace(ws: &Workspace, clock: &Arc<dyn Clock>) -> Result<Option<DemoReport>> {
    let now = clock.now_ms();
    let kinds = Kinds::from_config(&ws.config)?;
    let mut store = ws.store()?;
    if !seed(&mut store, &kinds, now)? {
        return Ok(None);
    }
    let mut report = DemoReport {
        objects: business()?.len(),
        ..DemoReport::default()
    };
    let analyst = Actor::system("demo");
    let import = crate::core::outcomes::import_csv(
        &mut store,
        &kinds,
        &analyst,
        now,
        ANALYTICS,
        "assets/demo/analytics.csv",
    )?;
    report.metrics = import.imported;
    let memory = Memory::open(ws, &mut store, clock.clone())?;
    for note in notes() {
        let item = kb::NewItem {
            text: note.text,
            kind: note.kind,
            source: "demo".into(),
            tags: vec!["demo".into()],
            ..kb::NewItem::default()
        };
        if let kb::Added::Stored { .. } = kb::add_or_defer(&mut store, &memory, &analyst, &item)? {
            report.notes += 1;
        }
    }
    crate::core::outcomes::reconcile(&mut store, &kinds, Some(&memory), &analyst, now)?;
    report.notes_unembedded = !crate::core::memory::check::check(store.conn(), &memory)?
        .versions
        .iter()
        .all(|v| v.missing.is_empty());
    install_files(&ws.root)?;
    report.first_task = Some(queue_first_round(&mut store, &ws.root, now)?);
    Ok(Some(report))
}

/// Writes the policy file (so the operator can read and edit it) and the demo's config
/// additions.
fn install_files(root: &Path) -> Result<()> {
    let policy = root.join(crate::core::policy::POLICY_FILE);
    if !policy.exists() {
        crate::core::workspace::write_private_file(
            &policy,
            crate::core::policy::DEFAULT_POLICY.as_bytes(),
        )?;
    }
    // The shipped agents and workflows, as files the operator can read and change.
    let agents = root.join(crate::core::agents::service::AGENTS_DIR);
    crate::core::workspace::create_private_dir(&agents)?;
    let templates = crate::core::agents::template::SHIPPED
        .iter()
        .map(|(role, text)| (format!("{role}.toml"), *text));
    let workflows = crate::core::workflow::BUILTIN.iter().map(|(path, text)| {
        let name = Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        (name, *text)
    });
    for (name, text) in templates.chain(workflows) {
        let path = agents.join(&name);
        if !name.is_empty() && !path.exists() {
            crate::core::workspace::write_private_file(&path, text.as_bytes())?;
        }
    }
    // Next week's numbers arrive here; `keel analytics import analytics.csv` reads them.
    let csv = root.join("analytics.csv");
    if !csv.exists() {
        crate::core::workspace::write_private_file(&csv, ANALYTICS.as_bytes())?;
    }
    let config = root.join(crate::core::workspace::CONFIG_FILE);
    let mut text = std::fs::read_to_string(&config).map_err(|e| Error::io(&config, e))?;
    if !text.contains("added by `keel demo`") {
        // The template's empty `examples = []` would clash with the appended tables.
        text = text
            .lines()
            .filter(|line| line.trim() != "examples = []")
            .fold(String::new(), |mut kept, line| {
                kept.push_str(line);
                kept.push('\n');
                kept
            });
        // A blank line sets the additions apart from the template's last table.
        text.push('\n');
        text.push_str(CONFIG_ADDITIONS);
        crate::core::workspace::write_private_file(&config, text.as_bytes())?;
    }
    Ok(())
}

/// Queues the content workflow on the best-measured topic (idempotent by key).
fn queue_first_round(store: &mut Store, root: &Path, now: Millis) -> Result<String> {
    let catalog = crate::core::queue::RoleCatalog::load(root)?;
    let task = crate::core::queue::NewTask {
        role: "workflow".into(),
        title: "First round: research, write, edit and publish one issue".into(),
        input: json!({"workflow": "content", "input": {
            "topic": "pricing page experiments for small apps",
            "goals": GOALS,
            "slug": "pricing-page-experiments",
            // The draft is written as draft/<idea id>: attached to the idea, and the
            // editor's revision is its next version.
            "target_id": "pricing-page-experiments",
            "title": "Pricing page experiments that moved conversion",
        }}),
        idempotency_key: Some("demo-first-round".into()),
        workflow: Some("content".into()),
        ..crate::core::queue::NewTask::default()
    };
    store.write(|tx| {
        Ok(
            crate::core::queue::submit(tx, now, &Actor::system("demo"), &catalog, task)?
                .task
                .id,
        )
    })
}

/// The pinned guide (`note/start-here`) as a title and lines, for the console's first
/// screen; `None` once the operator has archived it.
pub fn welcome(conn: &rusqlite::Connection) -> Result<Option<(String, Vec<String>)>> {
    let Some(note) = objects::find(conn, "note", "start-here")? else {
        return Ok(None);
    };
    if note.archived {
        return Ok(None);
    }
    let mut lines: Vec<String> = note.body["text"]
        .as_str()
        .unwrap_or("")
        .lines()
        .map(str::to_string)
        .collect();
    lines.push(String::new());
    lines.push("This guide is note/start-here in Objects (3); archive it to hide it.".into());
    Ok(Some((note.title, lines)))
}

/// A memory note from `notes.md`: `## Title: kind` then its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub kind: String,
    pub text: String,
}

/// The demo's memory notes (each starts with its title line, which the researcher reads
/// as the idea's title).
#[must_use]
pub fn notes() -> Vec<Note> {
    NOTES
        .split("\n## ")
        .skip(1)
        .filter_map(|section| {
            let (heading, body) = section.split_once('\n')?;
            let (title, kind) = heading.rsplit_once(": ")?;
            Some(Note {
                kind: kind.trim().to_string(),
                text: format!("{}\n{}", title.trim(), body.trim()),
            })
        })
        .collect()
}

fn business() -> Result<Vec<SampleObject>> {
    let parsed: Business =
        crate::core::toml_text::parse(BUSINESS, Path::new("assets/demo/business.toml"))?;
    Ok(parsed.objects)
}

fn write_samples(tx: &Transaction<'_>, kinds: &Kinds, now_ms: Millis) -> Result<()> {
    const DAY: Millis = 86_400_000;
    let demo = Stamp::new(Actor::system("demo"), now_ms - 30 * DAY);
    for o in business()? {
        objects::put(tx, kinds, &demo, &o.kind, &o.id, None, &o.body)?;
    }
    // A preference with history: the operator tightened the voice a week later.
    let edit = Stamp::new(Actor::Operator, now_ms - 23 * DAY);
    let voice = objects::get(tx, "preference", "voice")?;
    let mut body = voice.body.clone();
    body["text"] = json!(format!(
        "{}\nNever open with a question.",
        body["text"].as_str().unwrap_or("")
    ));
    objects::put(
        tx,
        kinds,
        &edit,
        "preference",
        "voice",
        Some(voice.version),
        &body,
    )?;
    Ok(())
}

/// Writes the sample objects into a fresh workspace (one with no audit history) unless it
/// already has them. Returns whether it wrote anything.
pub fn seed(store: &mut Store, kinds: &Kinds, now_ms: Millis) -> Result<bool> {
    store.write(|tx| {
        let done: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = ?1", [SEEDED], |r| {
                r.get(0)
            })
            .optional()?;
        // Only a fresh workspace gets samples: never mix them into a real business.
        let history: i64 = tx.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?;
        if done.is_some() || history > 0 {
            return Ok(false);
        }
        write_samples(tx, kinds, now_ms)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            rusqlite::params![SEEDED, now_ms.to_string()],
        )?;
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::store::Durability;

    #[test]
    fn seeds_once_with_history_and_a_clean_audit_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("keel.db"), Durability::Normal).unwrap();
        let kinds = Kinds::builtin().unwrap();
        assert!(seed(&mut store, &kinds, 1_800_000_000_000).unwrap());
        let audited = crate::core::audit::count(store.conn()).unwrap();
        assert!(!seed(&mut store, &kinds, 1_800_000_000_000).unwrap());
        let all = objects::list(store.conn(), &objects::ListFilter::default()).unwrap();
        assert_eq!(all.total, business().unwrap().len() as u64);
        let kinds_seen: std::collections::BTreeSet<_> =
            all.items.iter().map(|r| r.kind.as_str()).collect();
        for kind in [
            "preference",
            "customer",
            "offer",
            "contract",
            "publication",
            "idea",
            "note",
        ] {
            assert!(kinds_seen.contains(kind), "{kind} has a sample");
        }
        assert_eq!(
            objects::history(store.conn(), "preference", "voice")
                .unwrap()
                .len(),
            2
        );
        assert!(
            crate::core::audit::verify(store.conn())
                .unwrap()
                .first_broken
                .is_none()
        );
        assert_eq!(crate::core::audit::count(store.conn()).unwrap(), audited);
    }

    #[test]
    fn notes_parse_with_title_and_kind() {
        let notes = notes();
        assert!(notes.len() >= 30, "{} notes", notes.len());
        let first = &notes[0];
        assert_eq!(first.kind, "insight");
        assert!(
            first
                .text
                .starts_with("Pricing teardowns outperform everything\n")
        );
        assert!(notes.iter().all(|n| !n.kind.contains(' ')));
    }

    #[test]
    fn a_workspace_with_history_gets_no_samples() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("keel.db"), Durability::Normal).unwrap();
        let kinds = Kinds::builtin().unwrap();
        let stamp = Stamp::new(Actor::Operator, 1);
        let body = json!({"text": "real"});
        store
            .write(|tx| objects::put(tx, &kinds, &stamp, "note", "mine", None, &body))
            .unwrap();
        assert!(!seed(&mut store, &kinds, 2).unwrap());
        assert_eq!(crate::core::audit::count(store.conn()).unwrap(), 1);
    }
}
