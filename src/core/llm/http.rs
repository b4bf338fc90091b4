//! HTTP plumbing shared by the remote providers: sending with retries (429, 5xx and
//! connection errors, honouring `Retry-After`, capped exponential backoff), cancellation,
//! error bodies turned into messages that never carry the key, and reading an SSE body.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::LlmError;
use super::sse::{SseEvent, SseParser};
use crate::core::redact;

/// How a provider retries transient failures.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl RetryPolicy {
    /// Exponential backoff with ±20% jitter, capped.
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_backoff_ms
            .saturating_mul(1u64 << attempt.min(16))
            .min(self.max_backoff_ms);
        let jitter = rand::random_range(0.8..1.2);
        // At most 1.2 × max_backoff_ms and never negative, so the round trip through f64 fits.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let ms = (exp as f64 * jitter) as u64;
        Duration::from_millis(ms.min(self.max_backoff_ms))
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date.
#[must_use]
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let ms = when.as_millisecond() - now.as_millisecond();
    Some(Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0)))
}

/// Removes the key (and anything shaped like a secret) from text shown to the operator.
#[must_use]
pub fn scrub(text: &str, secret: Option<&str>) -> String {
    let mut out = redact::redact_str(text);
    if let Some(s) = secret.filter(|s| s.len() >= 4) {
        out = out.replace(s, redact::REDACTED);
    }
    out
}

/// The useful part of an error body: `error.message` when it is JSON, else a prefix.
#[must_use]
pub fn error_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let msg = parsed
        .as_ref()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.pointer("/message"))
                .or_else(|| v.get("error"))
        })
        .map_or_else(
            || body.trim().to_string(),
            |m| m.as_str().map_or_else(|| m.to_string(), str::to_string),
        );
    msg.chars().take(500).collect()
}

/// Whether a refusal says the prompt is larger than the model's window (llama.cpp, vLLM,
/// `OpenAI`, Ollama and Anthropic each word it their own way).
#[must_use]
pub fn is_context_overflow(message: &str) -> bool {
    let m = message.to_lowercase();
    (m.contains("context") && (m.contains("exceed") || m.contains("length") || m.contains("size")))
        || m.contains("prompt is too long")
        || m.contains("too many tokens")
}

/// Sends the request `build` makes, retrying transient failures (429, 5xx, connection
/// errors, no response headers within `wait`). Returns the successful response and how
/// many retries it took.
pub async fn send_with_retry(
    provider: &str,
    policy: &RetryPolicy,
    cancel: &CancellationToken,
    secret: Option<&str>,
    wait: Duration,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<(reqwest::Response, u32), LlmError> {
    let mut last = String::new();
    let mut timed_out = false;
    for attempt in 0..=policy.max_retries {
        let sent = tokio::select! {
            () = cancel.cancelled() => return Err(LlmError::Cancelled { provider: provider.into() }),
            r = tokio::time::timeout(wait, build().send()) => r,
        };
        let Ok(sent) = sent else {
            timed_out = true;
            last = format!("no response within {} s", wait.as_secs());
            tracing::warn!(provider, attempt, "provider did not answer in time");
            if attempt < policy.max_retries {
                tokio::select! {
                    () = cancel.cancelled() => return Err(LlmError::Cancelled { provider: provider.into() }),
                    () = tokio::time::sleep(policy.backoff(attempt)) => {}
                }
            }
            continue;
        };
        timed_out = false;
        let delay = match sent {
            Ok(resp) if resp.status().is_success() => return Ok((resp, attempt)),
            Ok(resp) => {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
                let body = resp.text().await.unwrap_or_default();
                let message = scrub(&error_message(&body), secret);
                if status.as_u16() != 429
                    && !status.is_server_error()
                    && is_context_overflow(&message)
                {
                    return Err(LlmError::ContextOverflow {
                        provider: provider.into(),
                        message,
                    });
                }
                if status.as_u16() != 429 && !status.is_server_error() {
                    return Err(LlmError::Rejected {
                        provider: provider.into(),
                        status: status.as_u16(),
                        message: explain_status(status.as_u16(), &message),
                    });
                }
                last = format!("HTTP {}: {message}", status.as_u16());
                tracing::warn!(
                    provider,
                    attempt,
                    status = status.as_u16(),
                    "transient provider error"
                );
                retry_after.map_or_else(
                    || policy.backoff(attempt),
                    |d| d.min(Duration::from_millis(policy.max_backoff_ms)),
                )
            }
            Err(e) => {
                timed_out = e.is_timeout();
                last = scrub(&describe_reqwest(&e), secret);
                tracing::warn!(provider, attempt, error = %last, "provider connection error");
                policy.backoff(attempt)
            }
        };
        if attempt < policy.max_retries {
            tokio::select! {
                () = cancel.cancelled() => return Err(LlmError::Cancelled { provider: provider.into() }),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }
    if timed_out {
        return Err(LlmError::Timeout {
            provider: provider.into(),
            phase: format!(
                "waiting for the response ({} attempts: {last})",
                policy.max_retries + 1
            ),
            secs: wait.as_secs(),
        });
    }
    Err(LlmError::Unavailable {
        provider: provider.into(),
        attempts: policy.max_retries + 1,
        message: last,
    })
}

fn explain_status(status: u16, message: &str) -> String {
    let hint = match status {
        401 => " — check the key in the environment variable named by api_key_env",
        403 => " — the key is not allowed to use this model or endpoint",
        404 => " — check base_url and model",
        413 => " — the prompt is too large for this model",
        _ => "",
    };
    format!("{message}{hint}")
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect (is the server running?)".into()
    } else {
        // reqwest's Display never includes headers, so the key cannot leak through it.
        format!("request failed: {e}")
    }
}

/// Longest SSE line accepted; a server that never ends a line is cut off here.
pub const MAX_LINE: usize = 16 << 20;

/// How long a stream may take: until its first event, between events, and in all.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// When the request was sent (the first-token and total limits count from here).
    pub sent: tokio::time::Instant,
    pub first_token: Duration,
    pub idle: Duration,
    pub total: Duration,
}

/// The next chunk of a streamed body (`None` at its end) within the stream's limits: until
/// the first token, between tokens, and in all. Running past one is a timeout, which is
/// retried; a connection that breaks is a protocol error.
pub async fn next_chunk<S, B>(
    provider: &str,
    stream: &mut S,
    cancel: &CancellationToken,
    limits: &StreamLimits,
    streaming: bool,
) -> Result<Option<B>, LlmError>
where
    S: futures_util::Stream<Item = reqwest::Result<B>> + Unpin,
{
    let end = limits.sent + limits.total;
    let (until, phase, secs) = if streaming {
        (
            tokio::time::Instant::now() + limits.idle,
            "between streamed tokens",
            limits.idle,
        )
    } else {
        (
            limits.sent + limits.first_token,
            "waiting for the first token",
            limits.first_token,
        )
    };
    let (until, phase, secs) = if until >= end {
        (end, "for the whole answer", limits.total)
    } else {
        (until, phase, secs)
    };
    let next = tokio::select! {
        () = cancel.cancelled() => return Err(LlmError::Cancelled { provider: provider.into() }),
        n = tokio::time::timeout_at(until, stream.next()) => n,
    };
    match next {
        Err(_) => Err(LlmError::Timeout {
            provider: provider.into(),
            phase: phase.into(),
            secs: secs.as_secs(),
        }),
        Ok(None) => Ok(None),
        Ok(Some(Err(e))) if e.is_timeout() => Err(LlmError::Timeout {
            provider: provider.into(),
            phase: "for the whole answer".into(),
            secs: limits.total.as_secs(),
        }),
        Ok(Some(Err(e))) => Err(LlmError::Protocol {
            provider: provider.into(),
            message: format!("the stream broke: {}", describe_reqwest(&e)),
        }),
        Ok(Some(Ok(bytes))) => Ok(Some(bytes)),
    }
}

/// Reads an SSE body, handing each event to `on_event` until it returns `true` (the
/// provider's end marker). A stream that ends first is reported as truncated; one that
/// goes quiet past its limits is a timeout (retried), not a malformed answer. Returns when
/// the first event arrived.
pub async fn read_sse(
    provider: &str,
    resp: reqwest::Response,
    cancel: &CancellationToken,
    limits: StreamLimits,
    mut on_event: impl FnMut(SseEvent) -> Result<bool, LlmError>,
) -> Result<Option<tokio::time::Instant>, LlmError> {
    let mut stream = resp.bytes_stream();
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    let mut first: Option<tokio::time::Instant> = None;
    loop {
        let Some(chunk) =
            next_chunk(provider, &mut stream, cancel, &limits, first.is_some()).await?
        else {
            break;
        };
        parser.feed_into(&chunk, &mut events);
        if parser.pending_line_len() > MAX_LINE {
            return Err(LlmError::Protocol {
                provider: provider.into(),
                message: format!(
                    "a stream line exceeded {} MB without ending",
                    MAX_LINE >> 20
                ),
            });
        }
        for ev in events.drain(..) {
            first.get_or_insert_with(tokio::time::Instant::now);
            if on_event(ev)? {
                return Ok(first);
            }
        }
    }
    let detail = match parser.finish() {
        Some(u) if u.partial_line > 0 => {
            format!(" ({} bytes of an unfinished line)", u.partial_line)
        }
        Some(_) => " (an event without its closing blank line)".to_string(),
        None => String::new(),
    };
    Err(LlmError::Protocol {
        provider: provider.into(),
        message: format!("the stream ended before the end marker{detail}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = jiff::Timestamp::from_second(1_445_412_480).unwrap(); // 2015-10-21 07:28:00Z
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_is_capped() {
        let p = RetryPolicy {
            max_retries: 9,
            base_backoff_ms: 100,
            max_backoff_ms: 1000,
        };
        assert!(p.backoff(0) <= Duration::from_millis(120));
        assert!(p.backoff(12) <= Duration::from_secs(1));
    }

    #[test]
    fn error_bodies_never_show_the_key() {
        let body = r#"{"error":{"message":"bad key sk-live-SECRETSECRETSECRET1234 for k3y-abc"}}"#;
        let msg = scrub(&error_message(body), Some("k3y-abc"));
        assert!(!msg.contains("SECRETSECRET"), "{msg}");
        assert!(!msg.contains("k3y-abc"), "{msg}");
        assert!(msg.starts_with("bad key"), "{msg}");
    }
}
