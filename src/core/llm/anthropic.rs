//! Anthropic Messages (`POST {base}/messages`), streaming or not, with tool use (several
//! `tool_use` blocks in one answer are parallel calls). Anthropic has no JSON mode, so JSON
//! output is asked for in the system prompt.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::http::read_sse;
use super::remote::{Remote, body_text, finish, impl_wire, millis_between, preview, protocol};
use super::structured::OutputMode;
use super::{
    ChatRequest, ChatResponse, DeltaSink, LlmError, ProviderConfig, Role, ToolCall, Usage,
};

pub const API_VERSION: &str = "2023-06-01";

/// The tool whose input is the final answer when the schema is enforced: Anthropic has no
/// JSON mode, but it validates a forced tool call's input against its `input_schema`.
pub const ANSWER_TOOL: &str = "final_answer";

#[derive(Debug, Clone)]
pub struct Anthropic {
    remote: Remote,
}

impl Anthropic {
    pub fn new(name: &str, cfg: &ProviderConfig) -> Result<Self, LlmError> {
        Ok(Anthropic {
            remote: Remote::new(name, cfg)?,
        })
    }

    fn body(&self, req: &ChatRequest, mode: OutputMode) -> Value {
        let mut system: Vec<String> = req
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.clone())
            .collect();
        let forced = req
            .output
            .as_ref()
            .filter(|_| mode == OutputMode::JsonSchema);
        if forced.is_some() {
            system.push(format!(
                "Give your final answer by calling the tool {ANSWER_TOOL} with it as the input."
            ));
        } else if req.json_output {
            system.push("Answer with one JSON object only, no prose around it.".into());
        }
        // Consecutive tool results must share one user message.
        let mut messages: Vec<Value> = Vec::new();
        for m in req.messages.iter().filter(|m| m.role != Role::System) {
            let (role, blocks) = match m.role {
                Role::Tool => (
                    "user",
                    vec![json!({"type": "tool_result",
                        "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                        "content": m.content})],
                ),
                Role::Assistant => {
                    let mut blocks = Vec::new();
                    if !m.content.is_empty() {
                        blocks.push(json!({"type": "text", "text": m.content}));
                    }
                    for c in &m.tool_calls {
                        let input: Value =
                            serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
                        blocks.push(
                            json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                        );
                    }
                    ("assistant", blocks)
                }
                _ => ("user", vec![json!({"type": "text", "text": m.content})]),
            };
            match messages.last_mut() {
                Some(last) if last["role"] == role => {
                    if let Some(arr) = last["content"].as_array_mut() {
                        arr.extend(blocks);
                    }
                }
                _ => messages.push(json!({"role": role, "content": blocks})),
            }
        }
        let mut body = json!({
            "model": if req.model.is_empty() { self.remote.cfg.model.as_str() } else { req.model.as_str() },
            "max_tokens": req.max_tokens,
            "messages": messages,
            "stream": self.remote.cfg.stream,
        });
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        let mut tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        if let Some(out) = forced {
            tools.push(json!({"name": ANSWER_TOOL,
                "description": "Your final answer, as the output schema asks.",
                "input_schema": out.schema}));
            // With other tools the model may still call those first; it must call one.
            body["tool_choice"] = if req.tools.is_empty() {
                json!({"type": "tool", "name": ANSWER_TOOL})
            } else {
                json!({"type": "any"})
            };
        }
        if !tools.is_empty() {
            body["tools"] = Value::Array(tools);
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
        let url = format!("{}/messages", r.base);
        let (resp, retries, sent) = r
            .send(
                &url,
                &body,
                cancel,
                |rb, k| rb.header("x-api-key", k),
                &[("anthropic-version", API_VERSION)],
            )
            .await?;
        let out = if r.cfg.stream {
            let mut acc = StreamAcc::default();
            let first = read_sse(&r.name, resp, cancel, r.stream_limits(), |ev| {
                acc.on_event(&r.name, &ev.event, &ev.data, sink)
            })
            .await?;
            let mut out = acc.finish(&r.name);
            out.first_token_ms = first.map(|f| millis_between(sent, f));
            out
        } else {
            parse_full(&r.name, &body_text(&r.name, resp).await?)?
        };
        Ok(finish(answer_from_tool(out), retries, &body))
    }
}

impl_wire!(Anthropic, "anthropic");

/// A call of the answer tool is the final answer: its input becomes the text (other tool
/// calls in the same turn run first, as the model asked).
fn answer_from_tool(mut out: ChatResponse) -> ChatResponse {
    if let Some(i) = out.tool_calls.iter().position(|c| c.name == ANSWER_TOOL) {
        let call = out.tool_calls.remove(i);
        if out.tool_calls.is_empty() {
            out.text = call.arguments;
        }
    }
    out
}

/// Parses a non-streaming answer.
pub fn parse_full(provider: &str, text: &str) -> Result<ChatResponse, LlmError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| protocol(provider, format!("the body is not JSON ({e})")))?;
    let blocks = v["content"]
        .as_array()
        .ok_or_else(|| protocol(provider, "no content array in the answer"))?;
    let mut out = ChatResponse {
        text: String::new(),
        tool_calls: Vec::new(),
        usage: Usage {
            input: v
                .pointer("/usage/input_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            output: v
                .pointer("/usage/output_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        },
        provider: provider.to_string(),
        model: v["model"].as_str().unwrap_or_default().to_string(),
        finish: v["stop_reason"].as_str().unwrap_or_default().to_string(),
        retries: 0,
        output_mode: None,
        first_token_ms: None,
    };
    for b in blocks {
        match b["type"].as_str() {
            Some("text") => out.text.push_str(b["text"].as_str().unwrap_or_default()),
            Some("tool_use") => out.tool_calls.push(ToolCall {
                id: b["id"].as_str().unwrap_or_default().to_string(),
                name: b["name"].as_str().unwrap_or_default().to_string(),
                arguments: b["input"].to_string(),
            }),
            _ => {}
        }
    }
    Ok(out)
}

/// Accumulates a streamed answer from its typed events.
#[derive(Debug, Default)]
pub struct StreamAcc {
    text: String,
    /// Content blocks by index: tool calls collect their `partial_json` here.
    calls: BTreeMap<u64, ToolCall>,
    usage: Usage,
    model: String,
    finish: String,
    stopped: bool,
}

impl StreamAcc {
    /// Handles one event; returns `true` at `message_stop`.
    pub fn on_event(
        &mut self,
        provider: &str,
        event: &str,
        data: &str,
        sink: DeltaSink<'_>,
    ) -> Result<bool, LlmError> {
        if data.trim().is_empty() {
            return Ok(false);
        }
        let v: Value = serde_json::from_str(data).map_err(|e| {
            protocol(
                provider,
                format!("a stream event is not JSON ({e}): {}", preview(data)),
            )
        })?;
        let kind = if event.is_empty() {
            v["type"].as_str().unwrap_or_default()
        } else {
            event
        };
        match kind {
            "message_start" => {
                self.model = v
                    .pointer("/message/model")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                self.usage.input = v
                    .pointer("/message/usage/input_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
            }
            "content_block_start" => {
                let block = &v["content_block"];
                if block["type"] == "tool_use" {
                    let index = v["index"].as_u64().unwrap_or(0);
                    self.calls.insert(
                        index,
                        ToolCall {
                            id: block["id"].as_str().unwrap_or_default().to_string(),
                            name: block["name"].as_str().unwrap_or_default().to_string(),
                            // Normally `{}` followed by deltas; a proxy may send it whole.
                            arguments: match &block["input"] {
                                Value::Object(m) if !m.is_empty() => block["input"].to_string(),
                                _ => String::new(),
                            },
                        },
                    );
                }
            }
            "content_block_delta" => {
                let delta = &v["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        let t = delta["text"].as_str().unwrap_or_default();
                        self.text.push_str(t);
                        sink(t);
                    }
                    Some("input_json_delta") => {
                        let index = v["index"].as_u64().unwrap_or(0);
                        let call = self.calls.get_mut(&index).ok_or_else(|| {
                            protocol(provider, format!("input_json_delta for block {index}, which is not a tool_use block"))
                        })?;
                        call.arguments
                            .push_str(delta["partial_json"].as_str().unwrap_or_default());
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(n) = v.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    self.usage.output = n;
                }
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.finish = r.to_string();
                }
            }
            "message_stop" => {
                self.stopped = true;
                return Ok(true);
            }
            "error" => {
                let msg = v
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                let ty = v
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("error");
                return Err(protocol(
                    provider,
                    format!("the server reported {ty}: {msg}"),
                ));
            }
            _ => {} // ping, content_block_stop, future event types
        }
        Ok(false)
    }

    pub fn finish(self, provider: &str) -> ChatResponse {
        ChatResponse {
            text: self.text,
            tool_calls: self
                .calls
                .into_values()
                .map(|mut c| {
                    if c.arguments.is_empty() {
                        c.arguments = "{}".into();
                    }
                    c
                })
                .collect(),
            usage: self.usage,
            provider: provider.to_string(),
            model: self.model,
            finish: self.finish,
            retries: 0,
            output_mode: None,
            first_token_ms: None,
        }
    }
}

#[cfg(test)]
#[path = "anthropic_tests.rs"]
mod tests;
