//! Workspace health: what `keel doctor` reports. Read-only: it never migrates, repairs or
//! rewrites anything, so it is safe on a damaged or foreign file.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::core::model_assets::{Assets, FETCH_COMMAND};
use crate::core::store::{Store, migrations};
use crate::core::workspace::{CONFIG_FILE, DB_FILE, LOGS_DIR, VECTORS_DIR, Workspace};
use crate::core::{audit, objects};
use crate::protocol::ProviderHealth;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub workspace: PathBuf,
    pub checks: Vec<Check>,
    /// The model providers as the health view sees them (window, slots, server, last
    /// call), when the config loaded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderHealth>,
}

impl Report {
    /// The worst status found.
    #[must_use]
    pub fn status(&self) -> Status {
        let worst = |s: Status| self.checks.iter().any(|c| c.status == s);
        if worst(Status::Fail) {
            Status::Fail
        } else if worst(Status::Warn) {
            Status::Warn
        } else {
            Status::Ok
        }
    }

    fn add(&mut self, name: &str, status: Status, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.to_string(),
            status,
            detail: detail.into(),
        });
    }
}

/// Examines the workspace at `root` and the model assets.
#[must_use]
pub fn examine(root: &Path, assets: &Assets) -> Report {
    let mut report = Report {
        workspace: root.to_path_buf(),
        checks: Vec::new(),
        providers: Vec::new(),
    };
    if !root.is_dir() {
        report.add(
            "workspace",
            Status::Fail,
            format!(
                "{} does not exist (create it with `keel init {}`)",
                root.display(),
                root.display()
            ),
        );
        return report;
    }
    let workspace = match Workspace::open(root) {
        Ok(ws) => {
            report.add(
                "config",
                Status::Ok,
                format!("{} parsed", root.join(CONFIG_FILE).display()),
            );
            Some(ws)
        }
        Err(e) => {
            report.add("config", Status::Fail, e.to_string());
            None
        }
    };
    check_modes(root, &mut report);
    check_database(&root.join(DB_FILE), &mut report);
    check_models(assets, &mut report);
    check_providers(root, workspace.as_ref(), &mut report);
    report
}

fn check_modes(root: &Path, report: &mut Report) {
    use std::os::unix::fs::PermissionsExt;
    let mut wrong = Vec::new();
    let db = root.join(DB_FILE);
    let mut expected = vec![
        (root.to_path_buf(), 0o700),
        (root.join(VECTORS_DIR), 0o700),
        (root.join(LOGS_DIR), 0o700),
        (root.join(CONFIG_FILE), 0o600),
        (db.clone(), 0o600),
    ];
    for suffix in ["-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        expected.push((PathBuf::from(p), 0o600));
    }
    let mut shared = false;
    for (path, mode) in expected {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let actual = meta.permissions().mode() & 0o777;
        if actual != mode {
            shared |= actual & 0o022 != 0;
            wrong.push(format!(
                "{} is {actual:o} (expected {mode:o})",
                path.display()
            ));
        }
    }
    if wrong.is_empty() {
        report.add("file modes", Status::Ok, "directories 0700, files 0600");
    } else {
        let status = if shared { Status::Fail } else { Status::Warn };
        report.add("file modes", status, wrong.join("; "));
    }
}

fn check_database(db: &Path, report: &mut Report) {
    if !db.exists() {
        report.add(
            "database",
            Status::Fail,
            format!("{} is missing (run `keel init`)", db.display()),
        );
        return;
    }
    let store = match Store::open_read_only(db) {
        Ok(store) => store,
        Err(e) => {
            report.add("database", Status::Fail, e.to_string());
            return;
        }
    };
    let conn = store.conn();
    match migrations::current(conn) {
        Ok(v) if v == migrations::latest() => {
            report.add("schema", Status::Ok, format!("version {v} (latest)"));
        }
        Ok(v) if v < migrations::latest() => report.add(
            "schema",
            Status::Warn,
            format!("version {v}, this build writes {}; the next keel command that opens the workspace migrates it", migrations::latest()),
        ),
        Ok(v) => report.add(
            "schema",
            Status::Fail,
            format!("version {v} is newer than this build knows ({}); upgrade keel", migrations::latest()),
        ),
        Err(e) => report.add("schema", Status::Fail, e.to_string()),
    }
    match integrity(conn) {
        Ok(problems) if problems.is_empty() => {
            report.add("integrity", Status::Ok, "integrity_check ok");
        }
        Ok(problems) => report.add("integrity", Status::Fail, problems.join("; ")),
        Err(e) => report.add("integrity", Status::Fail, e.to_string()),
    }
    match audit::verify(conn) {
        Ok(v) => match v.first_broken {
            None => report.add(
                "audit chain",
                Status::Ok,
                format!("{} entries, chain intact", v.entries),
            ),
            Some(b) => report.add(
                "audit chain",
                Status::Fail,
                format!("broken at entry {}: {}", b.seq, b.reason),
            ),
        },
        Err(e) => report.add("audit chain", Status::Fail, e.to_string()),
    }
    match objects::verify(conn, 5) {
        Ok(c) if c.mismatches.is_empty() => report.add(
            "object versions",
            Status::Ok,
            format!(
                "{} versions match their hashes and audit entries",
                c.versions
            ),
        ),
        Ok(c) => report.add(
            "object versions",
            Status::Fail,
            c.mismatches
                .iter()
                .map(|m| format!("{}/{} v{}: {}", m.kind, m.id, m.version, m.reason))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Err(e) => report.add("object versions", Status::Fail, e.to_string()),
    }
    match objects::list(
        conn,
        &objects::ListFilter {
            include_archived: true,
            ..Default::default()
        },
    ) {
        Ok(page) => report.add("objects", Status::Ok, format!("{} objects", page.total)),
        Err(e) => report.add("objects", Status::Fail, e.to_string()),
    }
}

/// The first few problems `PRAGMA integrity_check` reports (empty when it says ok).
fn integrity(conn: &rusqlite::Connection) -> crate::core::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check(10)")?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().filter(|r| r != "ok").collect())
}

fn check_models(assets: &Assets, report: &mut Report) {
    let problems = assets.verify();
    if problems.is_empty() {
        report.add(
            "embedding model",
            Status::Ok,
            format!("present and intact in {}", assets.root.display()),
        );
    } else {
        report.add(
            "embedding model",
            Status::Warn,
            format!(
                "{} (run `{FETCH_COMMAND}`; everything but memory search works without it)",
                problems.join("; ")
            ),
        );
    }
}

/// The model providers: with a config that loads, each one as the health view checks it
/// (reachable, key variable set, window, slots, newest call; never the key); otherwise
/// the names the raw TOML lists and whether their key variable is set.
fn check_providers(root: &Path, workspace: Option<&Workspace>, report: &mut Report) {
    let Some(ws) = workspace else {
        raw_providers(root, report);
        return;
    };
    let mut rows = match crate::core::health::check_providers(&ws.config.providers) {
        Ok(rows) => rows,
        Err(e) => {
            report.add("providers", Status::Warn, e.to_string());
            return;
        }
    };
    // Read-only, like every doctor check; a database it cannot read is reported above.
    if let Ok(store) = Store::open_read_only(&root.join(DB_FILE)) {
        let _ = crate::core::provider_health::add_last_calls(store.conn(), &mut rows);
    }
    let troubled = rows
        .iter()
        .any(|p| p.status.starts_with("error") || p.status.starts_with("unreachable"));
    let lines: Vec<String> = rows.iter().map(provider_line).collect();
    let status = if troubled { Status::Warn } else { Status::Ok };
    report.add("providers", status, lines.join("; "));
    report.providers = rows;
}

fn provider_line(p: &ProviderHealth) -> String {
    let mut parts = vec![format!("{} ({}): {}", p.name, p.kind, p.status)];
    if let Some(w) = &p.window {
        parts.push(format!("window {} ({})", w.tokens, w.source));
    }
    if let Some(s) = &p.slots {
        parts.push(match s.max_concurrent {
            Some(1) => "1 slot".to_string(),
            Some(n) => format!("{n} slots"),
            None => "slots unlimited".to_string(),
        });
    }
    if let Some(server) = &p.server {
        parts.push(server.clone());
    }
    if let Some(mode) = &p.output_mode {
        parts.push(format!("output {mode}"));
    }
    if let Some(ms) = p.last_latency_ms {
        let first = p
            .last_first_token_ms
            .map(|f| format!(" (first token {f} ms)"))
            .unwrap_or_default();
        parts.push(format!("last call {ms} ms{first}"));
    }
    parts.join(", ")
}

/// The providers a config that does not load names, read from the raw TOML (so it needs
/// no knowledge of the provider settings' types).
fn raw_providers(root: &Path, report: &mut Report) {
    let mut lines = vec!["offline (built-in, makes no network call)".to_string()];
    if let Ok(text) = std::fs::read_to_string(root.join(CONFIG_FILE))
        && let Ok(value) = text.parse::<toml::Table>()
    {
        let tables = [
            value.get("providers"),
            value.get("llm").and_then(|l| l.get("providers")),
        ];
        for table in tables
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_table)
        {
            for (name, p) in table {
                lines.push(describe_provider(name, p));
            }
        }
    }
    report.add("providers", Status::Ok, lines.join("; "));
}

fn describe_provider(name: &str, p: &toml::Value) -> String {
    let kind = ["kind", "type", "protocol"]
        .iter()
        .find_map(|k| p.get(*k).and_then(toml::Value::as_str))
        .unwrap_or("?");
    let key = p
        .get("api_key_env")
        .and_then(toml::Value::as_str)
        .map_or_else(String::new, |var| {
            let set = std::env::var_os(var).is_some_and(|v| !v.is_empty());
            format!(
                ", key from ${var} ({})",
                if set { "set" } else { "NOT set" }
            )
        });
    format!("{name} ({kind}{key})")
}
