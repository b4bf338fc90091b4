//! What the remote providers (OpenAI-compatible, Anthropic) share around the transport in
//! `http`: retry and timeout settings from their config, their price, protocol errors, and
//! reading and finishing an answer.

use std::time::Duration;

use serde_json::Value;

use super::http::{RetryPolicy, StreamLimits};
use super::structured::{OutputMode, refusal_may_concern_format};
use super::{ChatRequest, ChatResponse, LlmError, Price, ProviderConfig, ProviderState};

pub(crate) fn retry_policy(cfg: &ProviderConfig) -> RetryPolicy {
    RetryPolicy {
        max_retries: cfg.max_retries,
        base_backoff_ms: 250,
        max_backoff_ms: cfg.max_backoff_ms,
    }
}

/// How long to wait for response headers: a streaming server sends them at once (or after
/// reading the prompt), a non-streaming one only when the whole answer is ready.
pub(crate) fn header_wait(cfg: &ProviderConfig) -> Duration {
    let total = Duration::from_secs(cfg.timeout_secs.max(1));
    if cfg.stream {
        Duration::from_secs(cfg.first_token_timeout_secs.max(1)).min(total)
    } else {
        total
    }
}

/// The stream's limits for a request sent at `sent`.
pub(crate) fn stream_limits(cfg: &ProviderConfig, sent: tokio::time::Instant) -> StreamLimits {
    StreamLimits {
        sent,
        first_token: Duration::from_secs(cfg.first_token_timeout_secs.max(1)),
        idle: Duration::from_secs(cfg.idle_timeout_secs.max(1)),
        total: Duration::from_secs(cfg.timeout_secs.max(1)),
    }
}

/// Milliseconds between two instants.
pub(crate) fn millis_between(from: tokio::time::Instant, to: tokio::time::Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn price(cfg: &ProviderConfig) -> Price {
    Price {
        input_per_mtok: cfg.price_in_per_mtok,
        output_per_mtok: cfg.price_out_per_mtok,
    }
}

pub(crate) fn protocol(provider: &str, message: impl Into<String>) -> LlmError {
    LlmError::Protocol {
        provider: provider.to_string(),
        message: message.into(),
    }
}

/// The start of `s`, for error messages about a malformed body.
pub(crate) fn preview(s: &str) -> String {
    let p: String = s.chars().take(80).collect();
    if p.len() < s.len() {
        format!("{p}…")
    } else {
        p
    }
}

/// The whole body of a non-streaming answer.
pub(crate) async fn body_text(provider: &str, resp: reqwest::Response) -> Result<String, LlmError> {
    resp.text()
        .await
        .map_err(|e| protocol(provider, format!("reading the body: {e}")))
}

/// Records the retries, and names the model asked for when the answer does not.
pub(crate) fn finish(mut out: ChatResponse, retries: u32, body: &Value) -> ChatResponse {
    out.retries = retries;
    if out.model.is_empty() {
        out.model = body["model"].as_str().unwrap_or_default().to_string();
    }
    out
}

/// Calls `attempt` with the strongest output mode the model is known to take and falls
/// back to weaker ones when the server refuses the form (400/422). A fallback is
/// remembered only when the weaker form then works; when every form is refused, the first
/// refusal is the error (it was not about the form). The answer records its mode.
pub(crate) async fn with_output_fallback<'a, F, Fut>(
    state: &ProviderState,
    provider: &str,
    model: &str,
    req: &ChatRequest,
    attempt: F,
) -> Result<ChatResponse, LlmError>
where
    F: Fn(OutputMode) -> Fut,
    Fut: std::future::Future<Output = Result<ChatResponse, LlmError>> + 'a,
{
    let with_tools = !req.tools.is_empty();
    let start = match (&req.output, req.json_output) {
        (Some(_), _) => state.start_mode(model, with_tools),
        (None, true) => state
            .start_mode(model, with_tools)
            .max(OutputMode::JsonObject),
        (None, false) => OutputMode::Prompt,
    };
    let mut mode = start;
    let mut first_refusal: Option<LlmError> = None;
    loop {
        match attempt(mode).await {
            Ok(mut out) => {
                if mode != start {
                    tracing::warn!(provider, model, from = start.as_str(), to = mode.as_str(),
                        refusal = %first_refusal.as_ref().map(ToString::to_string).unwrap_or_default(),
                        "the server refused the stronger structured-output form; using the weaker one from now on");
                    state.modes.learn(model, with_tools, mode);
                }
                out.output_mode = (req.json_output || req.output.is_some()).then_some(mode);
                return Ok(out);
            }
            Err(e @ LlmError::Rejected { status, .. })
                if refusal_may_concern_format(status) && mode.weaker().is_some() =>
            {
                first_refusal.get_or_insert(e);
                mode = mode.weaker().unwrap_or(OutputMode::Prompt);
            }
            Err(e @ LlmError::Rejected { .. }) => return Err(first_refusal.unwrap_or(e)),
            Err(e) => return Err(e),
        }
    }
}
