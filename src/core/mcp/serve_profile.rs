//! `[mcp.serve]` in config.toml: what an MCP client of `keel mcp serve` may touch, shaped like
//! a role's scopes. The core enforces it on every client request ([`crate::protocol::Op::AsClient`]);
//! deciding approvals and rules is never in it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `*` in a list means every kind, role or workflow.
pub const ANY: &str = "*";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeProfile {
    /// Object kinds a client may read and see the history of.
    pub read: Vec<String>,
    /// Object kinds a client may propose a new version of (authored `mcp:CLIENT`; the object's
    /// history keeps every earlier version, so the operator can revert it).
    pub write: Vec<String>,
    /// Roles and workflows a client may submit tasks to (their effects still wait for the
    /// operator's approval like any task's).
    pub submit: Vec<String>,
    /// Memory kinds a client's searches return.
    pub memory: Vec<String>,
    /// Streamable HTTP address for `keel mcp serve --http` (loopback only).
    pub http: String,
    /// The bearer token an HTTP client must send (a 0600 file; created on first use). Relative
    /// to the workspace.
    pub token_file: PathBuf,
}

impl Default for ServeProfile {
    fn default() -> Self {
        ServeProfile {
            read: vec![ANY.into()],
            write: vec!["draft".into()],
            submit: vec![ANY.into()],
            memory: vec![ANY.into()],
            http: "127.0.0.1:8765".into(),
            token_file: PathBuf::from("run/mcp-serve.token"),
        }
    }
}

fn allows(list: &[String], name: &str) -> bool {
    list.iter().any(|k| k == ANY || k == name)
}

impl ServeProfile {
    #[must_use]
    pub fn may_read(&self, kind: &str) -> bool {
        allows(&self.read, kind)
    }

    #[must_use]
    pub fn may_read_every_kind(&self) -> bool {
        self.read.iter().any(|k| k == ANY)
    }

    #[must_use]
    pub fn may_write(&self, kind: &str) -> bool {
        allows(&self.write, kind)
    }

    #[must_use]
    pub fn may_submit(&self, role_or_workflow: &str) -> bool {
        allows(&self.submit, role_or_workflow)
    }

    /// The memory kinds a search is limited to: `None` for every kind.
    #[must_use]
    pub fn memory_kinds(&self) -> Option<&[String]> {
        if self.memory.iter().any(|k| k == ANY) {
            None
        } else {
            Some(&self.memory)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_profile_reads_everything_and_writes_only_drafts() {
        let p = ServeProfile::default();
        assert!(p.may_read("contract") && p.may_read_every_kind());
        assert!(p.may_write("draft"));
        assert!(!p.may_write("invoice"));
        assert!(p.may_submit("writer"));
        assert_eq!(p.memory_kinds(), None);
    }

    #[test]
    fn a_narrow_profile_names_what_it_allows() {
        let p: ServeProfile = toml::from_str(
            "read = [\"draft\"]\nwrite = []\nsubmit = [\"researcher\"]\nmemory = [\"note\"]",
        )
        .unwrap();
        assert!(p.may_read("draft") && !p.may_read("contract") && !p.may_read_every_kind());
        assert!(!p.may_write("draft"));
        assert!(p.may_submit("researcher") && !p.may_submit("publisher"));
        assert_eq!(p.memory_kinds(), Some(&["note".to_string()][..]));
    }
}
