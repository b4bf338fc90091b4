//! Routing: a template's tier maps to a provider through `[routing]`; a template may name a
//! provider outright. With cascade on, a run starts at the cheapest tier and moves up one
//! tier when its output fails validation; each move is recorded with its cost difference.

use std::sync::Arc;

use serde_json::{Value, json};

use super::template::Loaded;
use crate::core::llm::config::Tier;
use crate::core::llm::{LlmError, Provider, Registry};

/// Where the next model call goes.
#[derive(Clone)]
pub struct Route {
    pub tier: Tier,
    pub provider: Arc<dyn Provider>,
    pub model: String,
    /// Whether moving up a tier is allowed.
    pub cascade: bool,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}/{}",
            self.tier.as_str(),
            self.provider.name(),
            self.model
        )
    }
}

impl Route {
    #[must_use]
    pub fn describe(&self) -> Value {
        json!({"tier": self.tier.as_str(), "provider": self.provider.name(), "model": self.model,
            "price": self.provider.price()})
    }
}

fn route(tpl: &Loaded, registry: &Registry, tier: Tier, cascade: bool) -> Result<Route, LlmError> {
    let provider = registry.resolve(tier, tpl.template.model.provider.as_deref())?;
    let model = tpl
        .template
        .model
        .model
        .clone()
        .filter(|_| {
            tpl.template.model.provider.is_some() || !cascade || tier == tpl.template.model.tier
        })
        .unwrap_or_else(|| provider.model().to_string());
    Ok(Route {
        tier,
        provider,
        model,
        cascade,
    })
}

/// The first route of a run, and the rationale for it.
pub fn initial(tpl: &Loaded, registry: &Registry) -> Result<(Route, String), LlmError> {
    let wanted = tpl.template.model.tier;
    let cascade = (tpl.template.model.cascade || registry.routing.cascade)
        && tpl.template.model.provider.is_none()
        && wanted != Tier::Triage;
    if cascade {
        let cheap = route(tpl, registry, Tier::Triage, true)?;
        let normal = route(tpl, registry, wanted, false)?;
        let why = format!(
            "cascade: starting at tier triage ({}) instead of {} ({}); a failed validation moves up a tier",
            cheap.provider.name(),
            wanted.as_str(),
            normal.provider.name()
        );
        return Ok((cheap, why));
    }
    let r = route(tpl, registry, wanted, false)?;
    let why = match &tpl.template.model.provider {
        Some(p) => format!("the template names provider {p}"),
        None => format!(
            "tier {} routes to provider {}",
            wanted.as_str(),
            r.provider.name()
        ),
    };
    Ok((r, why))
}

/// The next stronger route after a failed validation, if cascading allows one.
pub fn escalate(
    current: &Route,
    tpl: &Loaded,
    registry: &Registry,
) -> Result<Option<Route>, LlmError> {
    if !current.cascade {
        return Ok(None);
    }
    let Some(next) = current.tier.stronger() else {
        return Ok(None);
    };
    let cascade_on = next < Tier::Final;
    let mut r = route(tpl, registry, next, cascade_on)?;
    r.cascade = cascade_on;
    let _ = tpl;
    Ok(Some(r))
}
