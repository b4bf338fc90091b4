//! Role templates: `agents/<role>.toml`. The shipped ones are compiled in; a workspace's
//! `agents/` directory adds roles or overrides shipped ones by file name.
//!
//! A template is procedural memory: it is hashed (sha256 of its canonical JSON, so comments
//! and formatting do not change it) and every run records the hash it ran with.

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod catalog;
mod load;
#[cfg(test)]
mod tests;

pub use catalog::Templates;
pub use load::load_text;

use crate::core::error::{Error, Result};
use crate::core::llm::config::Tier;

/// The templates shipped with keel: (role, TOML).
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "researcher",
        include_str!("../../../../agents/researcher.toml"),
    ),
    ("writer", include_str!("../../../../agents/writer.toml")),
    ("editor", include_str!("../../../../agents/editor.toml")),
    (
        "publisher",
        include_str!("../../../../agents/publisher.toml"),
    ),
    ("analyst", include_str!("../../../../agents/analyst.toml")),
    (
        "accountant",
        include_str!("../../../../agents/accountant.toml"),
    ),
    (
        "scheduler",
        include_str!("../../../../agents/scheduler.toml"),
    ),
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

pub use super::tool_refs::ToolsSpec;

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
