//! `[mcp.servers.NAME]` in config.toml: a stdio server (`command`, `args`, `cwd`, `env`) or a
//! Streamable HTTP one (`url`, `headers`). Secrets never sit in the file: every `env` and
//! `headers` value is the *name* of an environment variable read when the server starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::McpError;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// MCP servers by name; tools are named `mcp:NAME/TOOL` in roles and policy.
    pub servers: BTreeMap<String, ServerConfig>,
    /// What clients of `keel mcp serve` may touch.
    pub serve: super::serve_profile::ServeProfile,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The program of a stdio server (looked up on PATH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Working directory of a stdio server (relative to the workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// Variables the child gets: `CHILD_NAME = "KEEL_SIDE_NAME"` (the value is read from
    /// keel's environment; the child inherits nothing else but PATH, HOME and the locale).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The endpoint of a Streamable HTTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// HTTP headers: `Header-Name = "ENV_VAR_NAME"` (the value is read from the environment).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// How long one tool call may take.
    #[serde(default = "default_call_timeout")]
    pub timeout_secs: f64,
    /// How long starting (spawn, handshake, tool list) may take.
    #[serde(default = "default_startup_timeout")]
    pub startup_timeout_secs: f64,
    /// Larger tool results are refused (the model sees far less: see the runtime's cut).
    #[serde(default = "default_max_result_bytes")]
    pub max_result_bytes: usize,
    /// Keep the results agents get from this server in memory (task tier, so they expire
    /// with `[memory] task_ttl_hours`), with provenance: server, tool, arguments hash, time.
    #[serde(default)]
    pub remember: bool,
}

fn default_call_timeout() -> f64 {
    60.0
}

fn default_startup_timeout() -> f64 {
    30.0
}

fn default_max_result_bytes() -> usize {
    1 << 20
}

impl ServerConfig {
    /// A stdio server running `command args…` with the default limits.
    #[must_use]
    pub fn stdio(command: &str, args: &[&str]) -> Self {
        ServerConfig {
            command: Some(command.to_string()),
            args: args.iter().map(|a| (*a).to_string()).collect(),
            cwd: None,
            env: BTreeMap::new(),
            url: None,
            headers: BTreeMap::new(),
            timeout_secs: default_call_timeout(),
            startup_timeout_secs: default_startup_timeout(),
            max_result_bytes: default_max_result_bytes(),
            remember: false,
        }
    }

    /// `stdio` or `http`.
    #[must_use]
    pub fn transport(&self) -> &'static str {
        if self.url.is_some() { "http" } else { "stdio" }
    }

    /// What the operator sees: the command line or the URL (never header values).
    #[must_use]
    pub fn target(&self) -> String {
        match (&self.command, &self.url) {
            (_, Some(url)) => url.clone(),
            (Some(cmd), None) => std::iter::once(cmd.as_str())
                .chain(self.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            (None, None) => String::new(),
        }
    }

    /// The working directory, resolved against the workspace root.
    #[must_use]
    pub fn cwd_in(&self, root: &Path) -> Option<PathBuf> {
        self.cwd.as_ref().map(|c| root.join(c))
    }
}

/// Reads every `env`/`headers` mapping's variable; a missing one is an error naming it.
pub fn resolve_vars(
    server: &str,
    what: &str,
    map: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, McpError> {
    map.iter()
        .map(|(key, var)| match std::env::var(var) {
            Ok(value) => Ok((key.clone(), value)),
            Err(_) => Err(McpError::Start {
                server: server.to_string(),
                message: format!(
                    "{what} {key:?} takes its value from the environment variable {var}, which is not set"
                ),
            }),
        })
        .collect()
}

/// The first problem with a server's entry, if any (config.rs locates it in the file).
#[must_use]
pub fn problem(name: &str, s: &ServerConfig) -> Option<String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Some("a server name may use only letters, digits, '-' and '_'".into());
    }
    match (&s.command, &s.url) {
        (Some(_), Some(_)) => {
            return Some("give either `command` (stdio) or `url` (HTTP), not both".into());
        }
        (None, None) => {
            return Some("give `command` (a stdio server) or `url` (Streamable HTTP)".into());
        }
        (Some(c), None) if c.trim().is_empty() => return Some("`command` is empty".into()),
        (None, Some(u)) if !(u.starts_with("http://") || u.starts_with("https://")) => {
            return Some(format!("`url` {u:?} must start with http:// or https://"));
        }
        _ => {}
    }
    if s.url.is_some() && (!s.args.is_empty() || s.cwd.is_some() || !s.env.is_empty()) {
        return Some(
            "`args`, `cwd` and `env` are for stdio servers; an HTTP server takes `headers`".into(),
        );
    }
    if s.command.is_some() && !s.headers.is_empty() {
        return Some("`headers` are for HTTP servers; a stdio server takes `env`".into());
    }
    let bad_var = s
        .env
        .iter()
        .map(|(k, v)| ("env", k, v))
        .chain(s.headers.iter().map(|(k, v)| ("headers", k, v)))
        .find(|(_, _, v)| !is_var_name(v));
    // The value is not repeated: it may be a secret pasted where a name belongs.
    if let Some((table, key, _)) = bad_var {
        return Some(format!(
            "the value of {table}.{key} is not an environment variable's name: `env` and `headers` values name variables, they never hold the value"
        ));
    }
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !positive(s.timeout_secs) || !positive(s.startup_timeout_secs) {
        return Some("`timeout_secs` and `startup_timeout_secs` must be more than 0".into());
    }
    if s.max_result_bytes == 0 {
        return Some("`max_result_bytes` must be more than 0".into());
    }
    None
}

fn is_var_name(v: &str) -> bool {
    let mut chars = v.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_must_be_variable_names() {
        let mut s = ServerConfig::stdio("mcp-server-time", &[]);
        assert_eq!(problem("time", &s), None);
        s.env.insert("TOKEN".into(), "sk-live-123 abc".into());
        assert!(problem("time", &s).unwrap().contains("variable's name"));
    }

    #[test]
    fn names_and_transports_are_checked() {
        let s = ServerConfig::stdio("x", &[]);
        assert!(problem("a/b", &s).is_some());
        let mut both = s.clone();
        both.url = Some("http://127.0.0.1:1/mcp".into());
        assert!(problem("a", &both).unwrap().contains("not both"));
    }

    #[test]
    fn a_missing_variable_is_named() {
        let map = BTreeMap::from([("KEY".to_string(), "KEEL_TEST_SURELY_UNSET_VAR".to_string())]);
        let err = resolve_vars("fetch", "env", &map).unwrap_err().to_string();
        assert!(
            err.contains("fetch") && err.contains("KEEL_TEST_SURELY_UNSET_VAR"),
            "{err}"
        );
    }
}
