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
    /// Where replaced and removed pages are kept for undo, relative to the workspace.
    pub history_dir: String,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            dir: "site".into(),
            history_dir: "site-history".into(),
        }
    }
}
