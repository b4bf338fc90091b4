//! Role templates: `agents/<role>.toml`. The shipped ones are compiled in; a workspace's
//! `agents/` directory adds roles or overrides shipped ones by file name.
//!
//! A template is procedural memory: it is hashed (sha256 of its canonical JSON, so comments
//! and formatting do not change it) and every run records the hash it ran with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::tools::ToolName;
use crate::core::toml_text::{line_col, parse};
use crate::core::error::{Error, Result};
use crate::core::llm::config::Tier;

/// The templates shipped with keel: (role, TOML).
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "researcher",
        include_str!("../../../agents/researcher.toml"),
    ),
    ("writer", include_str!("../../../agents/writer.toml")),
    ("editor", include_str!("../../../agents/editor.toml")),
    ("publisher", include_str!("../../../agents/publisher.toml")),
    ("analyst", include_str!("../../../agents/analyst.toml")),
    (
        "accountant",
        include_str!("../../../agents/accountant.toml"),
    ),
    ("scheduler", include_str!("../../../agents/scheduler.toml")),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub description: String,
    pub instructions: String,
    /// Blackboard topics whose findings wake this role.
    #[serde(default)]
    pub subscriptions: Vec<String>,
    pub model: ModelSpec,
    pub tools: ToolsSpec,
    pub objects: ObjectScopes,
    pub memory: MemoryScope,
    pub budget: Budget,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub retry: RetryPolicy,
    pub output: OutputSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub tier: Tier,
    /// A named provider instead of the tier's routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// A model instead of the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Start one tier cheaper and move up when the output fails validation.
    #[serde(default)]
    pub cascade: bool,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// The offline provider's rules to use (default: the role name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_recipe: Option<String>,
}

fn default_max_tokens() -> u32 {
    2000
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsSpec {
    pub allowed: Vec<ToolName>,
}

/// Object kinds a role may read and write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectScopes {
    #[serde(default)]
    pub read: Vec<String>,
    #[serde(default)]
    pub write: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryTier {
    ShortTerm,
    TaskState,
    LongTerm,
}

/// The memory a role may retrieve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryScope {
    pub tiers: Vec<MemoryTier>,
    pub kinds: Vec<String>,
    /// How many items to retrieve for the context.
    #[serde(default = "default_k")]
    pub k: usize,
}

fn default_k() -> usize {
    8
}

/// Per-task and per-day limits. Zero means no limit of that kind.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(default)]
    pub task_tokens: u64,
    #[serde(default)]
    pub task_usd: f64,
    #[serde(default)]
    pub day_tokens: u64,
    #[serde(default)]
    pub day_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Whole-run timeout.
    pub timeout_secs: u64,
    /// Cap on model + tool steps in one run (stops tool-call loops).
    pub max_steps: u32,
    /// Prompts longer than this are trimmed (lowest-ranked memory first, then earlier
    /// attempts, then the input's longest strings), with a note in the prompt and the run.
    pub max_prompt_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_secs: 300,
            max_steps: 12,
            max_prompt_chars: 48_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Tries of one model call when the provider fails transiently (after its own retries).
    pub model_attempts: u32,
    /// Repair prompts after an output fails its schema (then escalate).
    pub repair_attempts: u32,
    /// Failed task attempts before the queue escalates to the operator.
    pub escalate_after: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            model_attempts: 2,
            repair_attempts: 1,
            escalate_after: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The object kind the accepted output is written as.
    pub kind: String,
    /// JSON Schema of the output, as JSON text.
    pub schema: String,
}

/// A loaded template with where it came from and its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub name: String,
    /// `shipped` or the file path.
    pub origin: String,
    pub template: Template,
    pub hash: String,
    /// The parsed output schema.
    pub schema: Value,
}

impl Loaded {
    /// The canonical JSON that is hashed and stored.
    #[must_use]
    pub fn canonical(&self) -> Value {
        canonical_json(&self.name, &self.template)
    }

    /// Rebuilds a template version from its stored canonical JSON (for exact replays of
    /// runs made with a template that has since changed).
    pub fn from_stored(body: &Value, hash: &str) -> Result<Self> {
        let bad = |m: String| Error::invalid(format!("stored template {hash}"), m);
        let name = body["name"]
            .as_str()
            .ok_or_else(|| bad("no name".into()))?
            .to_string();
        let template: Template =
            serde_json::from_value(body["template"].clone()).map_err(|e| bad(e.to_string()))?;
        let schema =
            serde_json::from_str(&template.output.schema).map_err(|e| bad(e.to_string()))?;
        let loaded = Loaded {
            hash: crate::core::canonical::hash_value(&canonical_json(&name, &template)),
            name,
            origin: "recorded".into(),
            template,
            schema,
        };
        if loaded.hash != hash {
            return Err(bad(format!("it hashes to {} now", loaded.hash)));
        }
        Ok(loaded)
    }

    #[must_use]
    pub fn recipe(&self) -> &str {
        self.template
            .model
            .offline_recipe
            .as_deref()
            .unwrap_or(&self.name)
    }
}

fn canonical_json(name: &str, t: &Template) -> Value {
    serde_json::json!({"name": name, "template": t})
}

/// Parses and checks one template file. Errors name <file:line:column>.
pub fn load_text(name: &str, text: &str, path: &Path) -> Result<Loaded> {
    let template: Template = parse(text, path)?;
    let schema = parse_schema(&template, text, path)?;
    let loaded = Loaded {
        name: name.to_string(),
        origin: path.display().to_string(),
        hash: crate::core::canonical::hash_value(&canonical_json(name, &template)),
        template,
        schema,
    };
    check(&loaded, text, path)?;
    Ok(loaded)
}

fn locate(text: &str, path: &Path, needle: &str, message: String) -> Error {
    let (line, column) = text.find(needle).map_or((1, 1), |at| line_col(text, at));
    Error::Config {
        file: path.to_path_buf(),
        line,
        column,
        message,
    }
}

fn parse_schema(t: &Template, text: &str, path: &Path) -> Result<Value> {
    let schema: Value = serde_json::from_str(&t.output.schema).map_err(|e| {
        // Point into the file: the schema text starts after `schema = '''`.
        let start = text.find(&t.output.schema).or_else(|| text.find("schema"));
        let base = start.map_or((1, 1), |s| line_col(text, s));
        // serde_json counts columns from 1 but says 0 at the end of the input.
        let (line, column) = if e.line() <= 1 {
            (base.0, base.1 + e.column().saturating_sub(1))
        } else {
            (base.0 + e.line() - 1, e.column().max(1))
        };
        Error::Config {
            file: path.to_path_buf(),
            line,
            column,
            message: format!("output.schema is not valid JSON: {e}"),
        }
    })?;
    jsonschema::validator_for(&schema).map_err(|e| {
        locate(
            text,
            path,
            "schema",
            format!("output.schema is not a valid JSON Schema: {e}"),
        )
    })?;
    Ok(schema)
}

/// Checks that go beyond the types: scopes consistent with the output, sane limits.
fn check(l: &Loaded, text: &str, path: &Path) -> Result<()> {
    let t = &l.template;
    if !t.objects.write.contains(&t.output.kind) {
        return Err(locate(
            text,
            path,
            "kind",
            format!(
                "output.kind {:?} is not in objects.write {:?}: the role could not save its own output",
                t.output.kind, t.objects.write
            ),
        ));
    }
    if t.tools.allowed.contains(&ToolName::ObjectWrite) && t.objects.write.is_empty() {
        return Err(locate(
            text,
            path,
            "allowed",
            "tool object_write is allowed but objects.write is empty".into(),
        ));
    }
    if t.limits.max_steps == 0 {
        return Err(locate(
            text,
            path,
            "max_steps",
            "limits.max_steps must be at least 1".into(),
        ));
    }
    if t.budget.task_usd < 0.0 || t.budget.day_usd < 0.0 {
        return Err(locate(
            text,
            path,
            "usd",
            "budgets cannot be negative".into(),
        ));
    }
    if t.instructions.trim().is_empty() {
        return Err(locate(
            text,
            path,
            "instructions",
            "instructions are empty".into(),
        ));
    }
    Ok(())
}

/// All templates: shipped ones, then the workspace's `agents/*.toml` (which override).
#[derive(Debug, Clone, Default)]
pub struct Templates {
    pub by_name: BTreeMap<String, Loaded>,
    /// Workspace files that failed to load (role → `file:line:column: message`). Only
    /// their role is unavailable (a broken override does not fall back to the shipped
    /// template: the operator meant to change it).
    pub broken: BTreeMap<String, String>,
}

impl Templates {
    /// Only the shipped templates.
    pub fn shipped() -> Result<Self> {
        let mut by_name = BTreeMap::new();
        for (name, text) in SHIPPED {
            let path = PathBuf::from(format!("agents/{name}.toml"));
            let mut l = load_text(name, text, &path)?;
            l.origin = "shipped".into();
            by_name.insert((*name).to_string(), l);
        }
        Ok(Templates {
            by_name,
            broken: BTreeMap::new(),
        })
    }

    /// Shipped templates overlaid with `dir/*.toml` (a missing directory adds nothing).
    /// A bad file makes only its own role unavailable, with the error kept for `get`.
    pub fn load(dir: &Path) -> Result<Self> {
        let mut all = Self::shipped()?;
        for (name, path) in workspace_files(dir)? {
            let loaded = std::fs::read_to_string(&path)
                .map_err(|e| Error::io(&path, e))
                .and_then(|text| load_text(&name, &text, &path));
            match loaded {
                Ok(l) => {
                    all.broken.remove(&name);
                    all.by_name.insert(name, l);
                }
                Err(e) => {
                    tracing::error!(role = %name, error = %e, "agent template not loaded");
                    all.by_name.remove(&name);
                    all.broken.insert(name, e.to_string());
                }
            }
        }
        Ok(all)
    }

    /// Checks every file and returns each error instead of stopping at the first.
    #[must_use]
    pub fn check_all(dir: &Path) -> Vec<(String, Result<Loaded>)> {
        let mut out: Vec<(String, Result<Loaded>)> = SHIPPED
            .iter()
            .map(|(n, text)| {
                (
                    (*n).to_string(),
                    load_text(n, text, Path::new(&format!("agents/{n}.toml"))),
                )
            })
            .collect();
        match workspace_files(dir) {
            Ok(files) => {
                for (name, path) in files {
                    let r = std::fs::read_to_string(&path)
                        .map_err(|e| Error::io(&path, e))
                        .and_then(|text| load_text(&name, &text, &path));
                    out.push((name, r));
                }
            }
            Err(e) => out.push((dir.display().to_string(), Err(e))),
        }
        out
    }

    /// Roles subscribed to a blackboard `topic` (a subscription ending in `*` is a prefix).
    #[must_use]
    pub fn subscribers(&self, topic: &str) -> Vec<&str> {
        self.by_name
            .iter()
            .filter(|(_, l)| {
                l.template
                    .subscriptions
                    .iter()
                    .any(|s| match s.strip_suffix('*') {
                        Some(prefix) => topic.starts_with(prefix),
                        None => s == topic,
                    })
            })
            .map(|(n, _)| n.as_str())
            .collect()
    }

    pub fn get(&self, role: &str) -> Result<&Loaded> {
        if let Some(e) = self.broken.get(role) {
            return Err(Error::invalid(
                format!("agent template {role}"),
                format!("{e} (run `keel agents check`)"),
            ));
        }
        self.by_name.get(role).ok_or_else(|| Error::NotFound {
            kind: "agent template".into(),
            id: format!(
                "{role} (known: {})",
                self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }
}

fn workspace_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p)))
        // Workflows share the directory (`NAME.workflow.toml`); they are not roles.
        .filter(|(name, _)| !name.ends_with(".workflow"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_files_beside_the_templates_are_not_read_as_roles() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("content.workflow.toml"),
            include_str!("../../../agents/content.workflow.toml"),
        )
        .unwrap();
        let loaded = Templates::load(dir.path()).unwrap();
        assert!(loaded.broken.is_empty(), "{:?}", loaded.broken);
        assert!(
            Templates::check_all(dir.path())
                .iter()
                .all(|(name, r)| r.is_ok() && !name.ends_with(".workflow"))
        );
    }

    #[test]
    fn shipped_templates_load_and_hash_stably() {
        let a = Templates::shipped().unwrap();
        let b = Templates::shipped().unwrap();
        assert_eq!(a.by_name.len(), 7);
        for (name, l) in &a.by_name {
            assert_eq!(l.hash, b.by_name[name].hash);
            assert_eq!(l.hash.len(), 64);
        }
    }

    #[test]
    fn a_broken_workspace_file_disables_only_its_role() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("editor.toml"), "description = 3\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let all = Templates::load(dir.path()).unwrap();
        let err = all.get("editor").unwrap_err().to_string();
        assert!(err.contains("editor.toml:1:15"), "{err}");
        assert!(all.get("writer").is_ok());
        assert_eq!(all.by_name.len(), 6);
    }

    #[test]
    fn a_stored_version_rebuilds_to_the_same_hash() {
        let all = Templates::shipped().unwrap();
        for l in all.by_name.values() {
            let back = Loaded::from_stored(&l.canonical(), &l.hash).unwrap();
            assert_eq!(back.template, l.template);
            assert_eq!(back.schema, l.schema);
        }
    }

    #[test]
    fn comments_do_not_change_the_hash_but_content_does() {
        let (_, text) = SHIPPED[0];
        let p = Path::new("x.toml");
        let base = load_text("r", text, p).unwrap().hash;
        let commented = format!("# a comment\n{text}");
        assert_eq!(load_text("r", &commented, p).unwrap().hash, base);
        let changed = text.replacen("description = \"", "description = \"New. ", 1);
        assert_ne!(load_text("r", &changed, p).unwrap().hash, base);
    }

    #[test]
    fn subscribers_match_topics_and_prefixes() {
        let mut all = Templates::shipped().unwrap();
        assert_eq!(all.subscribers("drafts.ready"), ["editor"]);
        all.by_name
            .get_mut("analyst")
            .unwrap()
            .template
            .subscriptions = vec!["drafts.*".into()];
        assert_eq!(all.subscribers("drafts.ready"), ["analyst", "editor"]);
        assert!(all.subscribers("nothing").is_empty());
    }

    #[test]
    fn unknown_field_is_located() {
        let (_, text) = SHIPPED[0];
        let bad = text.replacen("[budget]\n", "[budget]\nbogus = 1\n", 1);
        let err = load_text("r", &bad, Path::new("agents/r.toml"))
            .unwrap_err()
            .to_string();
        let line = bad.lines().position(|l| l.starts_with("bogus")).unwrap() + 1;
        assert!(
            err.starts_with(&format!("agents/r.toml:{line}:1:")),
            "{err}"
        );
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn unknown_tool_and_bad_schema_are_errors() {
        let (_, text) = SHIPPED[0];
        let bad = text.replacen("allowed = [", "allowed = [\"rm_rf\", ", 1);
        let err = load_text("r", &bad, Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("rm_rf"), "{err}");
        let bad = text.replacen("schema = '''", "schema = '''{oops ", 1);
        let err = load_text("r", &bad, Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid JSON"), "{err}");
    }
}
