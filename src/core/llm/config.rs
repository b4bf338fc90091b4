//! `[providers.NAME]` and `[routing]` configuration.
//!
//! The built-in provider `offline` always exists and needs no section. Keys are never
//! written in the config: `api_key_env` names the environment variable that holds one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI-compatible chat completions (`OpenAI`, Ollama, llama.cpp, vLLM, LM Studio…).
    #[default]
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// Ollama's own chat API: the schema goes in `format`, the window in `num_ctx`.
    Ollama,
    /// The deterministic, network-free built-in provider.
    Offline,
    /// A local OpenAI-compatible server when one answers, else offline.
    Auto,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// Empty means the kind's default (`https://api.openai.com/v1`,
    /// `https://api.anthropic.com/v1`, `http://127.0.0.1:11434/v1` for auto).
    pub base_url: String,
    /// Environment variable holding the key; empty for servers that need none.
    pub api_key_env: String,
    pub model: String,
    pub price_in_per_mtok: f64,
    pub price_out_per_mtok: f64,
    /// Stream answers (partial output reaches the console as it arrives).
    pub stream: bool,
    /// Whole-request timeout in seconds (a stream may take this long at most). Time spent
    /// waiting for a free model slot inside keel does not count.
    pub timeout_secs: u64,
    /// Seconds to establish the connection.
    pub connect_timeout_secs: u64,
    /// Seconds from sending the request to the first streamed token (a local server reads
    /// the whole prompt first; on a small CPU that takes a while).
    pub first_token_timeout_secs: u64,
    /// Longest silence between two streamed chunks, in seconds.
    pub idle_timeout_secs: u64,
    /// The model's context window in tokens; 0 discovers it (llama.cpp `/props`, Ollama
    /// `/api/show`, vLLM `/v1/models`), else a conservative default.
    pub context_tokens: u32,
    /// Calls in flight at once; 0 means llama.cpp's slot count, 1 for another local server,
    /// unlimited for a hosted API. Further calls wait inside keel.
    pub max_concurrent: u32,
    /// `auto` (the schema, then `json_object`, then prompt-only, as the server accepts),
    /// or one of `json_schema`, `json_object`, `prompt` to start there.
    pub structured_output: String,
    /// Connection attempts for 429, 5xx and connection errors.
    pub max_retries: u32,
    /// Longest wait between retries in milliseconds, whatever `Retry-After` asks.
    pub max_backoff_ms: u64,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            kind: ProviderKind::Openai,
            base_url: String::new(),
            api_key_env: String::new(),
            model: String::new(),
            price_in_per_mtok: 0.0,
            price_out_per_mtok: 0.0,
            stream: true,
            timeout_secs: 600,
            connect_timeout_secs: 10,
            first_token_timeout_secs: 180,
            idle_timeout_secs: 60,
            context_tokens: 0,
            max_concurrent: 0,
            structured_output: "auto".into(),
            max_retries: 4,
            max_backoff_ms: 30_000,
        }
    }
}

impl ProviderConfig {
    #[must_use]
    pub fn effective_base_url(&self) -> String {
        let url = if self.base_url.is_empty() {
            match self.kind {
                ProviderKind::Openai => "https://api.openai.com/v1",
                ProviderKind::Anthropic => "https://api.anthropic.com/v1",
                ProviderKind::Ollama => "http://127.0.0.1:11434",
                ProviderKind::Auto | ProviderKind::Offline => "http://127.0.0.1:11434/v1",
            }
        } else {
            self.base_url.as_str()
        };
        url.trim_end_matches('/').to_string()
    }
}

/// Which provider serves each model tier, and whether to cascade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    pub triage: String,
    pub draft: String,
    #[serde(rename = "final")]
    pub final_: String,
    /// Try the cheaper tier first and move up on failed validation (templates may also
    /// ask for it).
    pub cascade: bool,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            triage: "offline".into(),
            draft: "offline".into(),
            final_: "offline".into(),
            cascade: false,
        }
    }
}

/// The named providers of a workspace.
pub type Providers = BTreeMap<String, ProviderConfig>;

/// Model tiers, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Triage,
    Draft,
    Final,
}

impl Tier {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Triage => "triage",
            Tier::Draft => "draft",
            Tier::Final => "final",
        }
    }

    /// The next stronger tier, if any.
    #[must_use]
    pub fn stronger(self) -> Option<Tier> {
        match self {
            Tier::Triage => Some(Tier::Draft),
            Tier::Draft => Some(Tier::Final),
            Tier::Final => None,
        }
    }
}

impl RoutingConfig {
    #[must_use]
    pub fn provider_for(&self, tier: Tier) -> &str {
        match tier {
            Tier::Triage => &self.triage,
            Tier::Draft => &self.draft,
            Tier::Final => &self.final_,
        }
    }
}
