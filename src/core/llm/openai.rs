//! OpenAI-compatible chat completions (`POST {base}/chat/completions`), streaming or not,
//! with tool calls (parallel ones too) and JSON output mode. Also serves Ollama, llama.cpp,
//! vLLM, LM Studio and `OpenRouter`.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::http::read_sse;
use super::remote::{Remote, body_text, finish, impl_wire, millis_between, preview, protocol};
use super::structured::OutputMode;
use super::{
    ChatRequest, ChatResponse, DeltaSink, LlmError, Message, ProviderConfig, Role, ToolCall, Usage,
};

/// An OpenAI-compatible endpoint.
#[derive(Debug, Clone)]
pub struct OpenAi {
    remote: Remote,
}

impl OpenAi {
    pub fn new(name: &str, cfg: &ProviderConfig) -> Result<Self, LlmError> {
        Ok(OpenAi {
            remote: Remote::new(name, cfg)?,
        })
    }

    /// The messages as this protocol sends them (also what llama.cpp's tokenizer counts).
    #[must_use]
    pub fn wire_messages(req: &ChatRequest) -> Vec<Value> {
        req.messages.iter().map(wire_message).collect()
    }

    fn body(&self, req: &ChatRequest, mode: OutputMode) -> Value {
        let mut body = json!({
            "model": if req.model.is_empty() { self.remote.cfg.model.as_str() } else { req.model.as_str() },
            "messages": req.messages.iter().map(wire_message).collect::<Vec<_>>(),
            "max_tokens": req.max_tokens,
            "stream": self.remote.cfg.stream,
        });
        if self.remote.cfg.stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        // Tools stay beside the schema: a model may still call them, and its final answer
        // is held to the schema.
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters}})
                })
                .collect();
        }
        match (mode, &req.output) {
            (OutputMode::JsonSchema, Some(out)) => {
                body["response_format"] = json!({"type": "json_schema", "json_schema": {
                    "name": out.wire_name(), "schema": out.schema, "strict": out.strict_compatible()}});
            }
            (OutputMode::JsonSchema | OutputMode::JsonObject, _) if req.json_output => {
                body["response_format"] = json!({"type": "json_object"});
            }
            _ => {}
        }
        body
    }

    async fn send(
        &self,
        req: &ChatRequest,
        mode: OutputMode,
        sink: DeltaSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, LlmError> {
        let r = &self.remote;
        let body = self.body(req, mode);
        let url = format!("{}/chat/completions", r.base);
        let (resp, retries, sent) = r
            .send(&url, &body, cancel, |rb, k| rb.bearer_auth(k), &[])
            .await?;
        let mut out = if r.cfg.stream {
            let mut acc = StreamAcc::default();
            read_sse(&r.name, resp, cancel, r.stream_limits(), |ev| {
                acc.on_event(&r.name, &ev.data, sink)
            })
            .await?;
            let first = acc.first_token;
            let mut out = acc.finish(&r.name)?;
            out.first_token_ms = first.map(|f| millis_between(sent, f));
            out
        } else {
            parse_full(&r.name, &body_text(&r.name, resp).await?)?
        };
        out.provider.clone_from(&r.name);
        Ok(finish(out, retries, &body))
    }
}

impl_wire!(OpenAi, "openai");

fn wire_message(m: &Message) -> Value {
    match m.role {
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": m.tool_call_id.clone().unwrap_or_default(),
            "content": m.content,
        }),
        Role::Assistant if !m.tool_calls.is_empty() => json!({
            "role": "assistant",
            "content": if m.content.is_empty() { Value::Null } else { json!(m.content) },
            "tool_calls": m.tool_calls.iter().map(|c| json!({
                "id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": c.arguments}
            })).collect::<Vec<_>>(),
        }),
        role => json!({"role": role, "content": m.content}),
    }
}

fn usage_of(v: &Value) -> Usage {
    Usage {
        input: v
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output: v
            .pointer("/usage/completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}

/// Tool-call arguments as JSON text: the protocol sends a string, some compatible servers
/// send the object itself.
fn arguments_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(v @ Value::Object(_)) => v.to_string(),
        _ => "{}".to_string(),
    }
}

/// Parses a non-streaming answer.
pub fn parse_full(provider: &str, text: &str) -> Result<ChatResponse, LlmError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| protocol(provider, format!("the body is not JSON ({e})")))?;
    let msg = v
        .pointer("/choices/0/message")
        .ok_or_else(|| protocol(provider, "the answer has no choices[0].message"))?;
    let tool_calls = msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .map(|c| ToolCall {
                    id: c["id"].as_str().unwrap_or_default().to_string(),
                    name: c
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    arguments: arguments_text(c.pointer("/function/arguments")),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ChatResponse {
        text: msg["content"].as_str().unwrap_or_default().to_string(),
        tool_calls,
        usage: usage_of(&v),
        provider: provider.to_string(),
        model: v["model"].as_str().unwrap_or_default().to_string(),
        finish: v
            .pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        retries: 0,
        output_mode: None,
        first_token_ms: None,
    })
}

/// Accumulates a streamed answer; tool calls arrive in pieces keyed by `index`.
#[derive(Debug, Default)]
pub struct StreamAcc {
    text: String,
    calls: BTreeMap<u64, ToolCall>,
    usage: Usage,
    model: String,
    finish: String,
    done: bool,
    /// A choice arrived (a stream of usage alone is an empty answer).
    saw_choice: bool,
    /// When the first text or tool-call piece arrived (servers send an empty role delta
    /// at once, before reading the prompt: that is not a token).
    pub first_token: Option<tokio::time::Instant>,
}

impl StreamAcc {
    /// Handles one `data:` payload; returns `true` at `[DONE]`.
    pub fn on_event(
        &mut self,
        provider: &str,
        data: &str,
        sink: DeltaSink<'_>,
    ) -> Result<bool, LlmError> {
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let v: Value = serde_json::from_str(data).map_err(|e| {
            protocol(
                provider,
                format!("a stream chunk is not JSON ({e}): {}", preview(data)),
            )
        })?;
        if let Some(err) = v.get("error") {
            return Err(protocol(
                provider,
                format!(
                    "the server reported: {}",
                    super::http::error_message(&json!({"error": err}).to_string())
                ),
            ));
        }
        if let Some(m) = v["model"].as_str() {
            self.model = m.to_string();
        }
        if v.get("usage").is_some_and(Value::is_object) {
            self.usage = usage_of(&v);
        }
        let Some(choice) = v.pointer("/choices/0") else {
            return Ok(false);
        };
        self.saw_choice = true;
        if let Some(f) = choice["finish_reason"].as_str() {
            self.finish = f.to_string();
        }
        let delta = &choice["delta"];
        if let Some(t) = delta["content"].as_str() {
            self.text.push_str(t);
            if !t.is_empty() {
                self.first_token
                    .get_or_insert_with(tokio::time::Instant::now);
            }
            sink(t);
        }
        if let Some(calls) = delta["tool_calls"].as_array() {
            self.first_token
                .get_or_insert_with(tokio::time::Instant::now);
            for c in calls {
                let index = c["index"].as_u64().unwrap_or(self.calls.len() as u64);
                let entry = self.calls.entry(index).or_insert_with(|| ToolCall {
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                if let Some(id) = c["id"].as_str() {
                    entry.id = id.to_string();
                }
                if let Some(n) = c.pointer("/function/name").and_then(Value::as_str) {
                    entry.name.push_str(n);
                }
                match c.pointer("/function/arguments") {
                    Some(Value::String(a)) => entry.arguments.push_str(a),
                    Some(v @ Value::Object(_)) => entry.arguments = v.to_string(),
                    _ => {}
                }
            }
        }
        Ok(false)
    }

    pub fn finish(self, provider: &str) -> Result<ChatResponse, LlmError> {
        if !self.done {
            return Err(protocol(provider, "the stream ended without [DONE]"));
        }
        if !self.saw_choice {
            return Err(protocol(provider, "the answer has no choices"));
        }
        let tool_calls = self
            .calls
            .into_iter()
            .map(|(i, mut c)| {
                if c.id.is_empty() {
                    c.id = format!("call_{i}");
                }
                c
            })
            .collect();
        Ok(ChatResponse {
            text: self.text,
            tool_calls,
            usage: self.usage,
            provider: provider.to_string(),
            model: self.model,
            finish: self.finish,
            retries: 0,
            output_mode: None,
            first_token_ms: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_tool_calls_accumulate_by_index() {
        let mut acc = StreamAcc::default();
        let sink = |_: &str| {};
        for d in [
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"memory_search","arguments":"{\"q"}},{"index":1,"id":"b","function":{"name":"object_read","arguments":""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\":1}"}},{"index":1,"function":{"arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#,
            "[DONE]",
        ] {
            acc.on_event("p", d, &sink).unwrap();
        }
        let r = acc.finish("p").unwrap();
        assert_eq!(r.tool_calls.len(), 2);
        assert_eq!(r.tool_calls[0].arguments, r#"{"q":1}"#);
        assert_eq!(r.tool_calls[1].name, "object_read");
        assert_eq!(
            r.usage,
            Usage {
                input: 5,
                output: 7
            }
        );
        assert_eq!(r.finish, "tool_calls");
    }

    #[test]
    fn arguments_sent_as_an_object_are_accepted() {
        let body = r#"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"a","function":{"name":"x","arguments":{"q":1}}}]}}]}"#;
        let r = parse_full("p", body).unwrap();
        assert_eq!(r.tool_calls[0].arguments, r#"{"q":1}"#);
    }

    #[test]
    fn malformed_chunk_is_a_clear_error() {
        let mut acc = StreamAcc::default();
        let err = acc.on_event("p", "{not json", &|_: &str| {}).unwrap_err();
        assert!(err.to_string().contains("not JSON"), "{err}");
    }
}
