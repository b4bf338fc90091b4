//! The state of the business and of keel itself: the value ledger and health.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Metrics {
    pub spend_today_usd: f64,
    pub budget_today_usd: f64,
    pub rows: Vec<ValueRow>,
}

/// One line of the value ledger (per workflow or per agent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ValueRow {
    /// `workflow` | `agent`
    pub scope: String,
    pub name: String,
    pub tasks_done: i64,
    pub minutes_saved: f64,
    pub model_spend_usd: f64,
    pub revenue_usd: f64,
    pub approval_rate: f64,
    pub failure_rate: f64,
    pub escalation_rate: f64,
    /// Succeeded + failed + escalated: what the failure and escalation rates are over.
    #[serde(default)]
    pub tasks_finished: i64,
    /// Approvals decided (anything but pending): what the approval rate is over.
    #[serde(default)]
    pub approvals_decided: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Health {
    pub workspace: String,
    pub schema_version: i64,
    /// `present` (files in place) | `missing: run …` from the health query; an embedder's
    /// `ModelState` events say `loading` | `ready` | `failed: <reason>`.
    pub embedding_model: String,
    pub providers: Vec<ProviderHealth>,
    pub schedules: Vec<ScheduleRow>,
    pub queue_paused: bool,
    pub audit_entries: i64,
    /// Configured MCP servers and their state (`not started` until first use).
    #[serde(default)]
    pub mcp_servers: Vec<McpServerHealth>,
}

/// One `[mcp.servers.NAME]`: how it is reached and how it is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct McpServerHealth {
    pub name: String,
    /// `stdio` | `http`.
    pub transport: String,
    /// The command line or the URL.
    pub target: String,
    /// `not started` | `starting` | `ready` | `crashed` | `failed`.
    pub state: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub tools: usize,
    #[serde(default)]
    pub restarts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProviderHealth {
    pub name: String,
    pub kind: String,
    /// Plainly says `offline` for the built-in offline provider.
    pub status: String,
    /// The context window keel fits prompts into, and where it was learnt (the fields
    /// below are absent for offline providers and servers that did not answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowHealth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<SlotsHealth>,
    /// `llama.cpp`, `ollama`, `vllm`, `hosted` or `openai-compatible`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The structured-output mode of the provider's newest recorded call that asked for
    /// one (`json_schema`, `json_object`, `prompt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_mode: Option<String>,
    /// Latency and time to first token of the provider's newest recorded call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_first_token_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WindowHealth {
    pub tokens: u32,
    /// `config`, `llama.cpp /props n_ctx`, `hosted default`…
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SlotsHealth {
    /// Calls at once; absent is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ScheduleRow {
    pub name: String,
    pub cron: String,
    pub next_ms: Option<i64>,
    pub last_ms: Option<i64>,
}
