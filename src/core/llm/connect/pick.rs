//! Which listed model to use, and the one schema-constrained test call that proves it
//! answers.

use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{ConnectError, Found};
use crate::core::llm::structured::{OutputMode, OutputSchema, first_json_value};
use crate::core::llm::{ChatRequest, LlmError, Message, Provider, Role, Usage};

/// Words in the ids of models that do not chat (hosted lists carry them too).
const NOT_CHAT: [&str; 8] = [
    "embed",
    "whisper",
    "tts",
    "dall-e",
    "moderation",
    "image",
    "audio",
    "rerank",
];

/// The model to use: the one asked for (when listed; Ollama's `:latest` may be left out),
/// else the first that looks like a chat model (hosted lists carry embedding, speech and
/// image models too), else the first.
pub fn pick_model(found: &Found, wanted: Option<&str>) -> Result<String, ConnectError> {
    if let Some(w) = wanted {
        let latest = format!("{w}:latest");
        return found
            .models
            .iter()
            .find(|m| *m == w || **m == latest)
            .cloned()
            .ok_or_else(|| ConnectError::UnknownModel {
                url: found.base.clone(),
                model: w.to_string(),
                available: found.models.iter().take(20).cloned().collect(),
            });
    }
    let chat = found
        .models
        .iter()
        .find(|m| !NOT_CHAT.iter().any(|n| m.to_ascii_lowercase().contains(n)));
    chat.or_else(|| found.models.first())
        .cloned()
        .ok_or_else(|| ConnectError::NoModels {
            url: found.base.clone(),
        })
}

/// The schema of the test call's answer.
#[must_use]
pub fn check_schema() -> Value {
    json!({
        "type": "object",
        "required": ["ok"],
        "properties": {"ok": {"type": "boolean"}},
        "additionalProperties": false
    })
}

/// What the test call showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestCall {
    pub model: String,
    /// How the shape was asked for in the end (`json_schema` when the server enforced it).
    pub output_mode: Option<OutputMode>,
    pub latency_ms: u64,
    pub first_token_ms: Option<u64>,
    pub usage: Usage,
    /// The answer as the model wrote it.
    pub answer: String,
    /// The first JSON value in it.
    pub parsed: Option<Value>,
    /// Whether that value passes [`check_schema`].
    pub matches_schema: bool,
}

/// One small schema-constrained call.
pub async fn test_call(provider: &dyn Provider) -> Result<TestCall, LlmError> {
    let schema = check_schema();
    let req = ChatRequest {
        model: provider.model().to_string(),
        messages: vec![
            Message::new(
                Role::System,
                "You check that a model server works. Answer with one JSON object and nothing else: {\"ok\": true}",
            ),
            Message::new(Role::User, "Are you working? Answer {\"ok\": true}."),
        ],
        tools: Vec::new(),
        json_output: true,
        max_tokens: 32,
        context: Value::Null,
        output: Some(OutputSchema {
            name: "connect_check".into(),
            schema: schema.clone(),
        }),
    };
    let started = Instant::now();
    let cancel = CancellationToken::new();
    let resp = provider.chat(&req, &|_| {}, &cancel).await?;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let parsed = first_json_value(&resp.text).map(|(v, _)| v);
    let matches_schema = parsed.as_ref().is_some_and(|v| {
        jsonschema::validator_for(&schema).is_ok_and(|validator| validator.is_valid(v))
    });
    Ok(TestCall {
        model: if resp.model.is_empty() {
            req.model
        } else {
            resp.model.clone()
        },
        output_mode: resp.output_mode,
        latency_ms,
        first_token_ms: resp.first_token_ms,
        usage: resp.usage,
        answer: resp.text,
        parsed,
        matches_schema,
    })
}
