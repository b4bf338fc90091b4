//! Model providers: OpenAI-compatible chat completions, Anthropic Messages, Ollama's own
//! chat API and the built-in network-free `offline` provider, behind one [`Provider`] trait.
//! Remote providers share a [`ProviderState`]: limits found by [`discovery`], model slots,
//! token counting and the [`structured`] output modes the server accepts.
//!
//! Requests and answers are normalised ([`ChatRequest`], [`ChatResponse`]) so the agent
//! runtime, the call recorder and replay never depend on a vendor's wire format.

pub mod anthropic;
pub mod config;
pub mod connect;
pub mod discovery;
pub mod http;
pub mod offline;
pub mod offline_recipes;
pub mod ollama;
pub mod openai;
pub mod recorded;
pub mod registry;
pub mod remote;
pub mod sse;
pub mod state;
pub mod structured;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use config::{ProviderConfig, ProviderKind, RoutingConfig};
pub use registry::Registry;
pub use state::ProviderState;
pub use structured::{OutputMode, OutputSchema};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// Tool calls the assistant asked for (assistant messages only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Which call this message answers (tool messages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    #[must_use]
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    #[must_use]
    pub fn tool_result(call_id: &str, content: impl Into<String>) -> Self {
        Message {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.to_string()),
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

/// A tool call as the model sent it. `arguments` is the raw JSON text: it may be invalid,
/// and the runtime answers that with an error message instead of crashing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// A normalised chat request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    /// Ask for a JSON object as the answer.
    pub json_output: bool,
    pub max_tokens: u32,
    /// Structured task context (role, input, retrieved memory). Remote providers see it
    /// rendered in the messages; the offline provider builds its answer from it.
    #[serde(default)]
    pub context: Value,
    /// The role's output schema, handed to servers that enforce it while decoding. It
    /// follows from the template (recorded by hash), so the request hash leaves it out and
    /// runs recorded before servers were given it still replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputSchema>,
}

impl ChatRequest {
    /// Hash of everything that determines the answer (the recorder's key).
    #[must_use]
    pub fn hash(&self, provider: &str) -> String {
        let mut keyed = self.clone();
        keyed.output = None;
        let v = serde_json::json!({"provider": provider, "request": keyed});
        crate::core::canonical::hash_value(&v)
    }

    /// Characters of the messages and tool specs (what token estimates start from).
    #[must_use]
    pub fn chars(&self) -> usize {
        self.messages.iter().map(|m| m.content.len()).sum::<usize>()
            + self
                .tools
                .iter()
                .map(|t| t.description.len() + t.parameters.to_string().len())
                .sum::<usize>()
    }

    /// Rough input size in tokens (4 characters per token), for estimates before a call.
    #[must_use]
    pub fn estimated_input_tokens(&self) -> u64 {
        let chars: usize = self
            .messages
            .iter()
            .map(|m| m.content.len() + 8)
            .sum::<usize>()
            + self
                .tools
                .iter()
                .map(|t| t.description.len() + t.parameters.to_string().len())
                .sum::<usize>();
        (chars as u64).div_ceil(4)
    }
}

/// Token counts of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
}

/// A normalised answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub text: String,
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub provider: String,
    pub model: String,
    /// Why the model stopped (`stop`, `tool_calls`, `length`…), as the provider said it.
    pub finish: String,
    /// How many transient failures were retried before this answer.
    #[serde(default)]
    pub retries: u32,
    /// How the output's shape was asked for (`json_schema`, `json_object`, `prompt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_mode: Option<OutputMode>,
    /// Milliseconds from sending the request to the first streamed token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token_ms: Option<u64>,
}

/// Prices per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Price {
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // token counts stay far below 2^52
    pub fn cost(&self, usage: Usage) -> f64 {
        (usage.input as f64 * self.input_per_mtok + usage.output as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// The provider refused the request (4xx other than 429): retrying will not help.
    #[error("{provider}: HTTP {status}: {message}")]
    Rejected {
        provider: String,
        status: u16,
        message: String,
    },
    /// Still failing after the retries (429, 5xx, connection errors, timeouts).
    #[error("{provider}: {message} (after {attempts} attempts)")]
    Unavailable {
        provider: String,
        attempts: u32,
        message: String,
    },
    /// No answer in time (connecting, waiting for the first token, a stalled stream or the
    /// whole call): retried like a 5xx, never taken for a malformed answer.
    #[error("{provider}: timed out {phase} after {secs} s")]
    Timeout {
        provider: String,
        phase: String,
        secs: u64,
    },
    /// The server says the request does not fit its context window (its window may have
    /// changed since keel last asked): the limits are asked again and the request refitted.
    #[error("{provider}: the request does not fit the model's context window: {message}")]
    ContextOverflow { provider: String, message: String },
    /// The request cannot fit the window even with everything optional left out; it was
    /// not sent.
    #[error("{provider}: {message}")]
    TooLarge { provider: String, message: String },
    /// The answer could not be understood (malformed or truncated stream, bad JSON).
    #[error("{provider}: malformed answer: {message}")]
    Protocol { provider: String, message: String },
    #[error("{provider}: cancelled")]
    Cancelled { provider: String },
    #[error("{provider}: configuration: {message}")]
    Config { provider: String, message: String },
    /// Replay found no recorded answer for a request.
    #[error("replay: no recorded call matches request {request_hash}")]
    NotRecorded { request_hash: String },
}

impl LlmError {
    /// Whether the runtime may try the whole call again.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LlmError::Unavailable { .. }
                | LlmError::Protocol { .. }
                | LlmError::Timeout { .. }
                | LlmError::ContextOverflow { .. }
        )
    }
}

/// Receives partial output as it streams.
pub type DeltaSink<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// A model provider.
pub trait Provider: Send + Sync {
    /// The configured name (`openai`, `local`, `offline`…).
    fn name(&self) -> &str;
    /// `openai` | `anthropic` | `offline` | `recorded`.
    fn kind(&self) -> &'static str;
    /// The default model.
    fn model(&self) -> &str;
    fn price(&self) -> Price;
    /// The shared state of a remote provider (limits, slots, token counting); `None` for
    /// providers that need none (offline, recorded).
    fn state(&self) -> Option<&ProviderState> {
        None
    }
    /// Sends `req`; partial text goes to `sink` as it arrives.
    fn chat<'a>(
        &'a self,
        req: &'a ChatRequest,
        sink: DeltaSink<'a>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>>;
}
