//! `[connectors]` in the workspace's config.toml.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::outbox::OutboxConfig;
use super::webhook::WebhookConfig;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectorsConfig {
    pub site: SiteConfig,
    /// Webhook targets by name; each provides the action `webhook.<name>`.
    pub webhooks: BTreeMap<String, WebhookConfig>,
    /// Local outboxes by name; each provides the action `outbox.<name>`.
    pub outboxes: BTreeMap<String, OutboxConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    /// Where pages are published, relative to the workspace.
    pub dir: String,
    /// Where replaced and removed pages are kept for undo, relative to the workspace (private:
    /// it is the operator's undo store, not part of the site).
    pub history_dir: String,
    /// Mode of the site directory (`0o755` in TOML): the directory exists to be served, so a
    /// web server running as another user may read it. Never group- or world-writable.
    #[serde(deserialize_with = "dir_mode")]
    pub dir_mode: u32,
    /// Mode of each published page (`0o644`). Never group- or world-writable.
    #[serde(deserialize_with = "file_mode")]
    pub file_mode: u32,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            dir: "site".into(),
            history_dir: "site-history".into(),
            dir_mode: 0o755,
            file_mode: 0o644,
        }
    }
}

fn dir_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    mode(
        d,
        0o700,
        "the directory must stay readable, writable and searchable by you",
    )
}

fn file_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    mode(d, 0o600, "pages must stay readable and writable by you")
}

/// A permission mode keel may give served files: owner bits `owner` at least, nothing
/// beyond 0o777, and no write bit for the group or others (anyone could deface the site).
fn mode<'de, D: serde::Deserializer<'de>>(d: D, owner: u32, why: &str) -> Result<u32, D::Error> {
    let m = u32::deserialize(d)?;
    let problem = if m > 0o777 {
        Some("only permission bits (at most 0o777) can be set".to_string())
    } else if m & 0o022 != 0 {
        Some(format!(
            "{m:#o} lets other users write to the site; use e.g. 0o755 / 0o644"
        ))
    } else if m & owner != owner {
        Some(format!("{m:#o}: {why}"))
    } else {
        None
    };
    match problem {
        Some(p) => Err(serde::de::Error::custom(p)),
        None => Ok(m),
    }
}
