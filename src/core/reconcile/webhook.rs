//! Webhook targets: each completed effect is looked up by its idempotency key.

use super::{Fix, Mismatch, MismatchKind};
use crate::core::connectors::undo::EffectRef;
use crate::core::effects::Connector;

/// Looks up every effect in `done` (completed effects of this connector, from the ledger).
#[must_use]
pub fn reconcile_webhook(connector: &dyn Connector, done: &[EffectRef]) -> Vec<Mismatch> {
    let target = format!("webhook.{}", connector.name());
    let mut out = Vec::new();
    for effect in done {
        let m = |kind, detail: String, fixes| Mismatch {
            target: target.clone(),
            kind,
            subject: effect.id.clone(),
            detail,
            canonical_version: None,
            external_version: None,
            fixes,
        };
        match connector.lookup(&effect.action, &effect.args, &effect.key) {
            Ok(Some(found)) => {
                let stored = effect.result.get("body");
                if stored.is_some() && found.get("body") != stored {
                    out.push(m(
                        MismatchKind::Drifted,
                        "the target's record differs from what it answered when the effect ran"
                            .into(),
                        vec![Fix::AdoptExternal, Fix::Republish],
                    ));
                }
            }
            Ok(None) => out.push(m(
                MismatchKind::Missing,
                format!("the target has no record of key {}", effect.key),
                vec![Fix::Republish, Fix::Archive],
            )),
            Err(e) => out.push(m(
                MismatchKind::Unverifiable,
                e.to_string(),
                vec![Fix::Recheck],
            )),
        }
    }
    out
}
