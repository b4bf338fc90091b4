//! The built-in `offline` provider: deterministic, no network, no language model.
//!
//! It reads the structured task context the runtime attaches to every request (role,
//! input, retrieved memory) and assembles a schema-valid answer with plain rules — ranking
//! by word overlap, outlining from notes, arithmetic for invoices — so every shipped
//! workflow runs on a fresh machine with no key. Every answer says it came from here.

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{ChatRequest, ChatResponse, DeltaSink, LlmError, Price, Provider, Usage};

pub const NAME: &str = "offline";
pub const MODEL: &str = "offline-rules-v1";
/// Put in every answer so nobody mistakes it for a model's work.
pub const LABEL: &str = "offline: assembled by fixed rules from the task input and retrieved memory; no language model was used";

#[derive(Debug, Clone, Default)]
pub struct Offline;

impl Offline {
    #[must_use]
    pub fn new() -> Self {
        Offline
    }

    /// The answer for `req` (pure function of the request).
    #[must_use]
    pub fn answer(req: &ChatRequest) -> ChatResponse {
        let ctx = &req.context;
        let recipe = ctx["recipe"]
            .as_str()
            .or_else(|| ctx["role"].as_str())
            .unwrap_or("");
        let input = &ctx["input"];
        let memory: Vec<Slice> = ctx["memory"]
            .as_array()
            .map(|a| a.iter().map(Slice::from_value).collect())
            .unwrap_or_default();
        let mut out = super::offline_recipes::run(recipe, input, &memory);
        if let Some(obj) = out.as_object_mut() {
            obj.insert("generated_by".into(), json!(LABEL));
        }
        ChatResponse {
            text: crate::core::canonical::to_string(&out),
            tool_calls: Vec::new(),
            usage: Usage::default(),
            provider: NAME.into(),
            model: MODEL.into(),
            finish: "stop".into(),
            retries: 0,
            output_mode: None,
            first_token_ms: None,
        }
    }
}

/// A retrieved memory item as the offline rules see it.
#[derive(Debug, Clone)]
pub struct Slice {
    pub item: String,
    pub kind: String,
    pub text: String,
    pub score: f64,
}

impl Slice {
    fn from_value(v: &Value) -> Self {
        Slice {
            item: v["item"].as_str().unwrap_or_default().to_string(),
            kind: v["kind"].as_str().unwrap_or_default().to_string(),
            text: v["text"].as_str().unwrap_or_default().to_string(),
            score: v["score"].as_f64().unwrap_or(0.0),
        }
    }
}

impl Provider for Offline {
    fn name(&self) -> &str {
        NAME
    }
    fn kind(&self) -> &'static str {
        "offline"
    }
    fn model(&self) -> &str {
        MODEL
    }
    fn price(&self) -> Price {
        Price::default()
    }
    fn chat<'a>(
        &'a self,
        req: &'a ChatRequest,
        sink: DeltaSink<'a>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move {
            if cancel.is_cancelled() {
                return Err(LlmError::Cancelled {
                    provider: NAME.into(),
                });
            }
            let resp = Self::answer(req);
            sink(&resp.text);
            Ok(resp)
        })
    }
}
