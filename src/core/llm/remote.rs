//! What the remote providers (OpenAI-compatible, Anthropic, Ollama) share: a [`Remote`]
//! (name, config, HTTP client, shared state) that sends with retries and timeouts, and the
//! [`Wire`] trait each protocol implements, from which its [`Provider`] impl follows
//! (output-mode fallback, token calibration, price). Also protocol errors and reading and
//! finishing an answer.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::http::{RetryPolicy, StreamLimits, send_with_retry};
use super::structured::{OutputMode, refusal_may_concern_format};
use super::{
    ChatRequest, ChatResponse, DeltaSink, LlmError, Price, Provider, ProviderConfig, ProviderState,
};

/// What every remote provider is made of.
#[derive(Debug, Clone)]
pub struct Remote {
    pub name: String,
    pub cfg: ProviderConfig,
    /// `base_url` with no trailing slash.
    pub base: String,
    pub client: reqwest::Client,
    /// Shared by every worker using the provider (limits, slots, modes, counting).
    pub state: Arc<ProviderState>,
}

/// How a request carries the key.
pub(crate) type Auth = fn(reqwest::RequestBuilder, &str) -> reqwest::RequestBuilder;

impl Remote {
    pub fn new(name: &str, cfg: &ProviderConfig) -> Result<Self, LlmError> {
        Ok(Remote {
            name: name.to_string(),
            base: cfg.effective_base_url(),
            client: super::registry::http_client(name, cfg)?,
            state: Arc::new(ProviderState::new(cfg)),
            cfg: cfg.clone(),
        })
    }

    /// The model a request asks for, else the configured one.
    #[must_use]
    pub fn model_for<'r>(&'r self, req: &'r ChatRequest) -> &'r str {
        if req.model.is_empty() {
            &self.cfg.model
        } else {
            &req.model
        }
    }

    /// Posts `body` to `url` with retries and the header wait; returns the response, the
    /// retries it took and when the successful attempt was sent.
    pub(crate) async fn send(
        &self,
        url: &str,
        body: &Value,
        cancel: &CancellationToken,
        auth: Auth,
        extra: &[(&str, &str)],
    ) -> Result<(reqwest::Response, u32, tokio::time::Instant), LlmError> {
        let key = super::registry::read_key(&self.name, &self.cfg)?;
        let sent = tokio::time::Instant::now();
        let (resp, retries) = send_with_retry(
            &self.name,
            &retry_policy(&self.cfg),
            cancel,
            key.as_deref(),
            header_wait(&self.cfg),
            || {
                let mut rb = self.client.post(url).json(body);
                for (k, v) in extra {
                    rb = rb.header(*k, *v);
                }
                match &key {
                    Some(k) => auth(rb, k),
                    None => rb,
                }
            },
        )
        .await?;
        Ok((resp, retries, sent))
    }

    /// The stream's limits from now.
    pub(crate) fn stream_limits(&self) -> StreamLimits {
        stream_limits(&self.cfg, tokio::time::Instant::now())
    }
}

/// One provider protocol: how a request is sent in a given output mode. Its [`Provider`]
/// impl follows.
pub(crate) trait Wire: Send + Sync {
    /// `openai` | `anthropic` | `ollama`.
    const KIND: &'static str;
    fn remote(&self) -> &Remote;
    fn call_in<'a>(
        &'a self,
        req: &'a ChatRequest,
        mode: OutputMode,
        sink: DeltaSink<'a>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>>;
}

/// Every provider's [`Wire`] impl is the same: its `remote` field and its own `send`.
macro_rules! impl_wire {
    ($provider:ty, $kind:literal) => {
        impl $crate::core::llm::remote::Wire for $provider {
            const KIND: &'static str = $kind;
            fn remote(&self) -> &$crate::core::llm::remote::Remote {
                &self.remote
            }
            fn call_in<'a>(
                &'a self,
                req: &'a $crate::core::llm::ChatRequest,
                mode: $crate::core::llm::structured::OutputMode,
                sink: $crate::core::llm::DeltaSink<'a>,
                cancel: &'a tokio_util::sync::CancellationToken,
            ) -> futures_util::future::BoxFuture<
                'a,
                Result<$crate::core::llm::ChatResponse, $crate::core::llm::LlmError>,
            > {
                Box::pin(self.send(req, mode, sink, cancel))
            }
        }
    };
}
pub(crate) use impl_wire;

impl<W: Wire> Provider for W {
    fn name(&self) -> &str {
        &self.remote().name
    }
    fn kind(&self) -> &'static str {
        W::KIND
    }
    fn model(&self) -> &str {
        &self.remote().cfg.model
    }
    fn price(&self) -> Price {
        price(&self.remote().cfg)
    }
    fn state(&self) -> Option<&ProviderState> {
        Some(&self.remote().state)
    }
    fn chat<'a>(
        &'a self,
        req: &'a ChatRequest,
        sink: DeltaSink<'a>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move {
            let r = self.remote();
            let out = with_output_fallback(&r.state, &r.name, r.model_for(req), req, |mode| {
                self.call_in(req, mode, sink, cancel)
            })
            .await?;
            r.state.calibrate(req.chars(), out.usage.input);
            Ok(out)
        })
    }
}

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
