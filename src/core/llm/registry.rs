//! The providers of a workspace, built from `[providers.NAME]`, plus the built-in
//! `offline`. A provider of kind `auto` probes a local OpenAI-compatible server once and
//! falls back to `offline` when nothing answers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::config::{ProviderKind, Providers, RoutingConfig, Tier};
use super::offline::Offline;
use super::{LlmError, Provider, ProviderConfig};
use crate::protocol::ProviderHealth;

/// How long `auto` waits for a local server to answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

#[derive(Clone)]
pub struct Registry {
    providers: BTreeMap<String, Arc<dyn Provider>>,
    status: BTreeMap<String, (String, String)>,
    pub routing: RoutingConfig,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .field("routing", &self.routing)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Only the offline provider; every tier routes to it.
    #[must_use]
    pub fn offline_only() -> Self {
        let mut r = Registry {
            providers: BTreeMap::new(),
            status: BTreeMap::new(),
            routing: RoutingConfig::default(),
        };
        r.insert(
            "offline",
            Arc::new(Offline::new()),
            "offline",
            "offline (no network, not a language model)",
        );
        r
    }

    /// Builds every configured provider; `auto` ones are probed now.
    pub async fn from_config(
        providers: &Providers,
        routing: &RoutingConfig,
    ) -> Result<Self, LlmError> {
        let mut r = Self::offline_only();
        r.routing = routing.clone();
        for (name, cfg) in providers {
            match cfg.kind {
                ProviderKind::Openai => {
                    let p = super::openai::OpenAi::new(name, cfg)?;
                    r.insert(
                        name,
                        Arc::new(p),
                        "openai",
                        &format!("configured: {}", cfg.effective_base_url()),
                    );
                }
                ProviderKind::Anthropic => {
                    let p = super::anthropic::Anthropic::new(name, cfg)?;
                    r.insert(
                        name,
                        Arc::new(p),
                        "anthropic",
                        &format!("configured: {}", cfg.effective_base_url()),
                    );
                }
                ProviderKind::Ollama => {
                    let p = super::ollama::Ollama::new(name, cfg)?;
                    r.insert(
                        name,
                        Arc::new(p),
                        "ollama",
                        &format!("configured: {}", cfg.effective_base_url()),
                    );
                }
                ProviderKind::Offline => {
                    r.insert(name, Arc::new(Offline::new()), "offline", "offline");
                }
                ProviderKind::Auto => {
                    let (p, status) = probe_auto(name, cfg).await?;
                    let kind = p.kind();
                    r.insert(name, p, kind, &status);
                }
            }
        }
        for tier in [Tier::Triage, Tier::Draft, Tier::Final] {
            let want = r.routing.provider_for(tier);
            if !r.providers.contains_key(want) {
                return Err(LlmError::Config {
                    provider: want.to_string(),
                    message: format!(
                        "[routing] {} names provider {want:?}, which is not configured (known: {})",
                        tier.as_str(),
                        r.providers.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
        Ok(r)
    }

    pub fn insert(&mut self, name: &str, provider: Arc<dyn Provider>, kind: &str, status: &str) {
        self.providers.insert(name.to_string(), provider);
        self.status
            .insert(name.to_string(), (kind.to_string(), status.to_string()));
    }

    #[must_use]
    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.providers.get(name).cloned()
    }

    /// The provider serving `tier`, or the template's explicit choice.
    pub fn resolve(
        &self,
        tier: Tier,
        explicit: Option<&str>,
    ) -> Result<Arc<dyn Provider>, LlmError> {
        let name = explicit.unwrap_or_else(|| self.routing.provider_for(tier));
        self.get(name).ok_or_else(|| LlmError::Config {
            provider: name.to_string(),
            message: "no such provider is configured".into(),
        })
    }

    /// One line per provider for the health view; offline says so plainly.
    #[must_use]
    pub fn health(&self) -> Vec<ProviderHealth> {
        self.status
            .iter()
            .map(|(name, (kind, status))| ProviderHealth {
                name: name.clone(),
                kind: kind.clone(),
                status: status.clone(),
                ..ProviderHealth::default()
            })
            .collect()
    }
}

/// Builds the HTTP client of a remote provider (timeouts from its config).
pub fn http_client(name: &str, cfg: &ProviderConfig) -> Result<reqwest::Client, LlmError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10).min(Duration::from_secs(cfg.timeout_secs.max(1))))
        .timeout(Duration::from_secs(cfg.timeout_secs.max(1)))
        .user_agent(concat!("keel/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| LlmError::Config {
            provider: name.to_string(),
            message: format!("cannot build the HTTP client: {e}"),
        })
}

/// Reads the key from the environment variable the config names; `None` when it names none.
pub fn read_key(name: &str, cfg: &ProviderConfig) -> Result<Option<String>, LlmError> {
    if cfg.api_key_env.is_empty() {
        return Ok(None);
    }
    match std::env::var(&cfg.api_key_env) {
        Ok(k) if !k.trim().is_empty() => Ok(Some(k.trim().to_string())),
        _ => Err(LlmError::Config {
            provider: name.to_string(),
            message: format!(
                "the environment variable {} (api_key_env) is not set; export it or switch this tier to the offline provider",
                cfg.api_key_env
            ),
        }),
    }
}

/// Asks `{base}/models`; a server that answers becomes an OpenAI-compatible provider.
async fn probe_auto(
    name: &str,
    cfg: &ProviderConfig,
) -> Result<(Arc<dyn Provider>, String), LlmError> {
    let base = cfg.effective_base_url();
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .build()
        .map_err(|e| LlmError::Config {
            provider: name.into(),
            message: e.to_string(),
        })?;
    let listed: Option<serde_json::Value> = match client.get(format!("{base}/models")).send().await
    {
        Ok(resp) if resp.status().is_success() => resp.json().await.ok(),
        _ => None,
    };
    let Some(listed) = listed else {
        return Ok((
            Arc::new(Offline::new()),
            format!("offline (nothing answered at {base})"),
        ));
    };
    let mut cfg = cfg.clone();
    cfg.kind = ProviderKind::Openai;
    if cfg.model.is_empty() {
        cfg.model = listed
            .pointer("/data/0/id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string();
    }
    if cfg.model.is_empty() {
        return Ok((
            Arc::new(Offline::new()),
            format!("offline ({base} lists no model)"),
        ));
    }
    let status = format!("local: {base} model {}", cfg.model);
    Ok((Arc::new(super::openai::OpenAi::new(name, &cfg)?), status))
}
