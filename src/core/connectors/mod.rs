//! Connectors to the outside world, each implementing [`crate::core::effects::Connector`]:
//! a static-site CMS (Markdown with front matter in a directory; the offline default), a
//! generic HTTP JSON/webhook target, a local outbox directory, and analytics import. Plus `undo`, which runs a
//! connector's compensation and audits it.

pub mod analytics;
pub mod atomic;
pub mod config;
pub mod csv;
pub mod front_matter;
pub mod outbox;
pub mod site;
pub mod template;
pub mod undo;
pub mod webhook;

pub use config::ConnectorsConfig;
pub use outbox::OutboxConnector;
pub use site::SiteConnector;
pub use webhook::WebhookConnector;

use crate::core::effects::{Connector, ConnectorError};
use crate::core::error::Result;
use crate::core::workspace::Workspace;

/// Every connector the workspace configures: the site, then each webhook and each outbox
/// by name.
pub fn registry(ws: &Workspace) -> Result<Vec<Box<dyn Connector>>> {
    let cfg = &ws.config.connectors;
    let mut out: Vec<Box<dyn Connector>> =
        vec![Box::new(SiteConnector::from_config(&ws.root, &cfg.site)?)];
    for (name, hook) in &cfg.webhooks {
        out.push(Box::new(WebhookConnector::new(name, hook.clone())?));
    }
    for (name, outbox) in &cfg.outboxes {
        out.push(Box::new(OutboxConnector::open(&ws.root, name, outbox)?));
    }
    Ok(out)
}

/// The connector that declares `action` (e.g. `site.publish`), if any.
#[must_use]
pub fn for_action<'a>(
    connectors: &'a [Box<dyn Connector>],
    action: &str,
) -> Option<&'a dyn Connector> {
    connectors
        .iter()
        .find(|c| c.actions().iter().any(|a| a.name == action))
        .map(AsRef::as_ref)
}

pub(crate) fn permanent(target: &str, message: impl Into<String>) -> ConnectorError {
    ConnectorError::Permanent {
        target: target.to_string(),
        message: message.into(),
    }
}

pub(crate) fn transient(target: &str, message: impl Into<String>) -> ConnectorError {
    ConnectorError::Transient {
        target: target.to_string(),
        message: message.into(),
    }
}
