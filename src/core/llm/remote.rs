//! What the remote providers (OpenAI-compatible, Anthropic) share around the transport in
//! `http`: retry and timeout settings from their config, their price, protocol errors, and
//! reading and finishing an answer.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::RetryPolicy;
use super::{ChatResponse, LlmError, Price, ProviderConfig};

pub(crate) fn retry_policy(cfg: &ProviderConfig) -> RetryPolicy {
    RetryPolicy {
        max_retries: cfg.max_retries,
        base_backoff_ms: 250,
        max_backoff_ms: cfg.max_backoff_ms,
    }
}

/// Time left of the whole-request timeout, used as the stream's idle limit.
pub(crate) fn remaining(cfg: &ProviderConfig, started: Instant) -> Duration {
    Duration::from_secs(cfg.timeout_secs.max(1))
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(100))
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
