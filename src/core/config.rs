//! Workspace configuration: TOML. The commented template in `assets/config.toml` is compiled
//! in, written by `keel init`, and checked by a test to equal [`Config::default`], so the
//! documented defaults and the real ones cannot drift. Errors name file, line and column.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::core::error::{Error, Result};
use crate::core::store::Durability;
use crate::core::toml_text::{line_col, parse};

/// The commented configuration written by `keel init`.
pub const TEMPLATE: &str = include_str!("../../assets/config.toml");

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub store: StoreConfig,
    /// User-defined object kinds, with an optional JSON Schema for their bodies.
    pub kinds: BTreeMap<String, KindConfig>,
    /// Where external actions go: the static site and webhook targets.
    pub connectors: crate::core::connectors::ConnectorsConfig,
    pub orchestrator: crate::core::coordinator::OrchestratorConfig,
    pub scheduler: crate::core::scheduler::SchedulerConfig,
    pub schedules: Vec<crate::core::scheduler::ScheduleConfig>,
    /// Model providers by name (`offline` is built in).
    pub providers: crate::core::llm::config::Providers,
    /// Which provider serves each model tier.
    pub routing: crate::core::llm::RoutingConfig,
    pub memory: crate::core::memory::MemoryConfig,
    pub triage: crate::core::memory::triage::TriageConfig,
    /// The value ledger's estimates (`keel metrics`).
    pub value: crate::core::metrics::ValueConfig,
    /// MCP servers whose tools roles may opt into (`mcp:SERVER/TOOL`).
    pub mcp: crate::core::mcp::McpConfig,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    pub durability: Durability,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KindConfig {
    pub description: String,
    /// JSON Schema (written as an inline TOML table) for bodies of this kind.
    pub schema: Option<toml::Value>,
}

impl Config {
    /// Loads `path`; a missing file means all defaults.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_text(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Parses and checks `text` as the contents of `path` (what [`Config::load`] does once
    /// the file is read; also how an edited file is checked before it is written).
    pub fn from_text(text: &str, path: &Path) -> Result<Self> {
        let config: Config = parse(text, path)?;
        check_kinds(&config, text, path)?;
        check_mcp(&config, text, path)?;
        Ok(config)
    }
}

/// Refuses user kinds that are badly named, redefine a built-in or carry a schema that does
/// not compile, naming the line of their `[kinds.NAME]` table.
fn check_kinds(config: &Config, text: &str, path: &Path) -> Result<()> {
    let Some((name, message)) = crate::core::objects::kinds::config_problems(config)
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    let offset = [format!("[kinds.{name}]"), format!("kinds.{name}")]
        .iter()
        .find_map(|needle| text.find(needle.as_str()))
        .unwrap_or(0);
    let (line, column) = line_col(text, offset);
    Err(Error::Config {
        file: path.to_path_buf(),
        line,
        column,
        message: format!("kind {name:?}: {message}"),
    })
}

/// Refuses an `[mcp.servers.NAME]` entry that cannot work (no transport, both, a secret
/// written in place of a variable's name…), naming the line of its table.
fn check_mcp(config: &Config, text: &str, path: &Path) -> Result<()> {
    let Some((name, message)) = config
        .mcp
        .servers
        .iter()
        .find_map(|(name, s)| crate::core::mcp::config::problem(name, s).map(|m| (name, m)))
    else {
        return Ok(());
    };
    let offset = [
        format!("[mcp.servers.{name}]"),
        format!("servers.{name}"),
        name.clone(),
    ]
    .iter()
    .find_map(|needle| text.find(needle.as_str()))
    .unwrap_or(0);
    let (line, column) = line_col(text, offset);
    Err(Error::Config {
        file: path.to_path_buf(),
        line,
        column,
        message: format!("MCP server {name:?}: {message}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_matches_compiled_defaults() {
        let parsed: Config = parse(TEMPLATE, Path::new("assets/config.toml")).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let text = "[store]\ndurability = \"full\"\nbogus = 1\n";
        let err = parse::<Config>(text, Path::new("/ws/config.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("/ws/config.toml:3:1:"), "{msg}");
        assert!(msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn bad_kind_schema_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[store]\n\n[kinds.lead]\nschema = { type = 7 }\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("config.toml:3:1: kind \"lead\""), "{err}");
    }

    #[test]
    fn bad_mcp_server_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text =
            "[store]\n\n[mcp.servers.fetch]\ncommand = \"x\"\nurl = \"http://127.0.0.1:9/mcp\"\n";
        std::fs::write(&path, text).unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("config.toml:3:1: MCP server \"fetch\""),
            "{err}"
        );
        std::fs::write(&path, "[mcp.servers.fetch]\ncommand = 7\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("config.toml:2:11"), "{err}");
    }

    #[test]
    fn bad_value_is_located() {
        let text = "[store]\ndurability = \"sometimes\"\n";
        let err = parse::<Config>(text, Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().starts_with("c.toml:2:14:"), "{err}");
    }
}
