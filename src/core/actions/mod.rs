//! The external-action pipeline: the one path every action of a run on the outside world
//! takes — a typed [`ActionRequest`], the workspace's policy, the approval gate, and only
//! then the effects ledger — plus the operator's undo of a completed action.
//!
//! - `Proceed` → the connector runs through [`crate::core::effects::ledger::perform`] as a
//!   checkpointed step, and its spend is recorded once (in a step of its own).
//! - `Pending` → the task waits (approval) holding no worker; the operator's decision resumes
//!   or fails it in the decision's own transaction ([`crate::core::approvals::on_decision`]).
//! - `Held` → the task waits (timer) until the hold window ends; cancelled in the window, it
//!   fails and the action is never sent.
//! - `Rejected` → the run ends escalated with the reason; a retried run asks again with the
//!   reason on its approval card.
//! - `Denied` → the task fails with the rule's reason.

pub mod perform;
pub mod undo;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::core::connectors;
use crate::core::effects::Connector;
use crate::core::error::{Error, Result};
use crate::core::mcp::McpConnector;
use crate::core::mcp::tools::ToolHints;
use crate::core::policy::{POLICY_FILE, Policy};
use crate::core::workspace::Workspace;

pub use perform::{Gated, GatedAction, perform_gated};

/// An action resolved to its connector, with what the connector declares about it.
pub struct Resolved<'a> {
    pub connector: &'a dyn Connector,
    pub spec: crate::core::effects::ActionSpec,
    /// An MCP tool's annotations, as keel reads them.
    pub hints: Option<ToolHints>,
}

/// The workspace's connectors and its (cached) policy, shared by every run of a process.
pub struct Gates {
    root: PathBuf,
    connectors: Vec<Box<dyn Connector>>,
    /// The workspace's MCP servers as one connector (`mcp:SERVER/TOOL` actions), when it
    /// configures any.
    mcp: Option<McpConnector>,
    /// The static site, read directly for the approval card's "current page".
    site: connectors::SiteConnector,
    /// The parsed policy and the modification time of the file it came from; reloaded when
    /// the operator edits `policy.toml`.
    policy: Mutex<Option<(Option<SystemTime>, Arc<Policy>)>>,
}

impl std::fmt::Debug for Gates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gates")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Gates {
    /// The connectors configured for `ws` (`connectors::registry`) and its policy file.
    pub fn for_workspace(ws: &Workspace) -> Result<Self> {
        let cfg = &ws.config.connectors.site;
        Ok(Gates {
            root: ws.root.clone(),
            connectors: connectors::registry(ws)?,
            mcp: crate::core::mcp::manager::for_workspace(ws).map(McpConnector::new),
            site: connectors::SiteConnector::from_config(&ws.root, cfg)?,
            policy: Mutex::new(None),
        })
    }

    /// The policy, re-read only when `policy.toml` changed since the last read.
    pub fn policy(&self) -> Result<Arc<Policy>> {
        let stamp = std::fs::metadata(self.root.join(POLICY_FILE))
            .and_then(|m| m.modified())
            .ok();
        let mut cached = self
            .policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, policy)) = cached.as_ref()
            && *at == stamp
        {
            return Ok(Arc::clone(policy));
        }
        let policy = Arc::new(Policy::load(&self.root)?);
        *cached = Some((stamp, Arc::clone(&policy)));
        Ok(policy)
    }

    /// The connector of `action` and what it declares about it. An MCP tool is resolved
    /// from its server (started if needed), with `args` checked against its schema.
    pub fn resolve(&self, action: &str, args: &serde_json::Value) -> Result<Resolved<'_>> {
        if crate::core::mcp::connector::parse_action(action).is_some() {
            let mcp = self.mcp.as_ref().ok_or_else(|| {
                Error::invalid(
                    "action",
                    format!("{action} names an MCP tool, but config.toml has no [mcp.servers]"),
                )
            })?;
            let prepared = mcp.prepare(action, args).map_err(Error::wrap)?;
            return Ok(Resolved {
                connector: mcp,
                spec: prepared.spec,
                hints: Some(prepared.hints),
            });
        }
        let connector = self.connector(action)?;
        let spec = connector
            .actions()
            .into_iter()
            .find(|a| a.name == action)
            .ok_or_else(|| Error::invalid("action", format!("{action} is not declared")))?;
        Ok(Resolved {
            connector,
            spec,
            hints: None,
        })
    }

    /// The MCP connector, when the workspace configures MCP servers.
    #[must_use]
    pub fn mcp(&self) -> Option<&McpConnector> {
        self.mcp.as_ref()
    }

    /// The configured connector that declares `action`.
    pub fn connector(&self, action: &str) -> Result<&dyn Connector> {
        connectors::for_action(&self.connectors, action).ok_or_else(|| {
            Error::invalid(
                "action",
                format!(
                    "no configured connector declares {action:?} (see [connectors] in config.toml)"
                ),
            )
        })
    }

    /// The workspace these gates belong to.
    #[must_use]
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    #[must_use]
    pub fn site(&self) -> &connectors::SiteConnector {
        &self.site
    }

    #[must_use]
    pub fn connectors(&self) -> &[Box<dyn Connector>] {
        &self.connectors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_RULE: &str = "[[rule]]\nid = \"first\"\noutcome = \"deny\"\nreason = \"no\"\n";
    const OTHER_RULE: &str = "[[rule]]\nid = \"second\"\noutcome = \"allow\"\nreason = \"yes\"\n";

    #[test]
    fn policy_is_cached_and_reloaded_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::init(&dir.path().join("ws")).unwrap();
        let gates = Gates::for_workspace(&ws).unwrap();
        let built_in = gates.policy().unwrap();
        assert!(Arc::ptr_eq(&built_in, &gates.policy().unwrap()), "cached");
        let path = ws.root.join(POLICY_FILE);
        std::fs::write(&path, ONE_RULE).unwrap();
        assert_eq!(gates.policy().unwrap().file.rules[0].id, "first");
        // A later edit (its modification time moves) is picked up.
        std::fs::write(&path, OTHER_RULE).unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(gates.policy().unwrap().file.rules[0].id, "second");
        // A broken file is an error naming the file, not a silent fallback.
        std::fs::write(&path, "[[rule]]\nid = 3\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later + std::time::Duration::from_secs(5))
            .unwrap();
        let err = gates.policy().unwrap_err().to_string();
        assert!(err.contains("policy.toml:"), "{err}");
    }

    #[test]
    fn connectors_are_found_by_action() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::init(&dir.path().join("ws")).unwrap();
        let gates = Gates::for_workspace(&ws).unwrap();
        assert_eq!(gates.connector("site.publish").unwrap().name(), "site");
        let err = gates
            .connector("webhook.nowhere")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("webhook.nowhere"), "{err}");
    }
}
