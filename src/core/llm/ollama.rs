//! Ollama's own chat API (`POST {base}/api/chat`), streaming (NDJSON) or not, with tool
//! calls. Two things only the native API does: `format` takes the output schema (Ollama
//! constrains decoding to it), and `options.num_ctx` sets the window keel fitted the prompt
//! to — through its OpenAI-compatible endpoint Ollama keeps its own default window and
//! silently drops the start of a longer prompt.

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::http::{StreamLimits, next_chunk};
use super::remote::{Remote, body_text, finish, impl_wire, millis_between, protocol};
use super::structured::OutputMode;
use super::{
    ChatRequest, ChatResponse, DeltaSink, LlmError, Message, ProviderConfig, Role, ToolCall, Usage,
};

#[derive(Debug, Clone)]
pub struct Ollama {
    remote: Remote,
    /// `base_url` without a `/v1` suffix: the native API lives at the root.
    root: String,
}

impl Ollama {
    pub fn new(name: &str, cfg: &ProviderConfig) -> Result<Self, LlmError> {
        Ok(Ollama {
            root: super::discovery::root_url(&cfg.effective_base_url()),
            remote: Remote::new(name, cfg)?,
        })
    }

    fn body(&self, req: &ChatRequest, mode: OutputMode, num_ctx: u32) -> Value {
        let mut body = json!({
            "model": if req.model.is_empty() { self.remote.cfg.model.as_str() } else { req.model.as_str() },
            "messages": req.messages.iter().map(wire_message).collect::<Vec<_>>(),
            "stream": self.remote.cfg.stream,
            "options": {"num_ctx": num_ctx, "num_predict": req.max_tokens},
        });
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
            (OutputMode::JsonSchema, Some(out)) => body["format"] = out.schema.clone(),
            (OutputMode::JsonSchema | OutputMode::JsonObject, _) if req.json_output => {
                body["format"] = json!("json");
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
        let num_ctx = r.state.limits().await.context_tokens;
        let body = self.body(req, mode, num_ctx);
        let url = format!("{}/api/chat", self.root);
        let (resp, retries, sent) = r
            .send(&url, &body, cancel, |rb, k| rb.bearer_auth(k), &[])
            .await?;
        let out = if r.cfg.stream {
            let mut acc = Acc::default();
            let first = read_lines(&r.name, resp, cancel, r.stream_limits(), |line| {
                acc.on_line(&r.name, line, sink)
            })
            .await?;
            let mut out = acc.finish(&r.name)?;
            out.first_token_ms = first.map(|f| millis_between(sent, f));
            out
        } else {
            let text = body_text(&r.name, resp).await?;
            let mut acc = Acc::default();
            acc.on_line(&r.name, &text, &|_: &str| {})?;
            let out = acc.finish(&r.name)?;
            sink(&out.text);
            out
        };
        Ok(finish(out, retries, &body))
    }
}

impl_wire!(Ollama, "ollama");

fn wire_message(m: &Message) -> Value {
    match m.role {
        Role::Tool => json!({"role": "tool", "content": m.content}),
        Role::Assistant if !m.tool_calls.is_empty() => json!({
            "role": "assistant",
            "content": m.content,
            // Ollama takes the arguments as an object, not as JSON text.
            "tool_calls": m.tool_calls.iter().map(|c| json!({"function": {
                "name": c.name,
                "arguments": serde_json::from_str::<Value>(&c.arguments).unwrap_or_else(|_| json!({})),
            }})).collect::<Vec<_>>(),
        }),
        role => json!({"role": role, "content": m.content}),
    }
}

/// Reads an NDJSON body line by line, with the same limits as an SSE stream.
async fn read_lines(
    provider: &str,
    resp: reqwest::Response,
    cancel: &CancellationToken,
    limits: StreamLimits,
    mut on_line: impl FnMut(&str) -> Result<bool, LlmError>,
) -> Result<Option<tokio::time::Instant>, LlmError> {
    let mut stream = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut first = None;
    loop {
        let Some(chunk) =
            next_chunk(provider, &mut stream, cancel, &limits, first.is_some()).await?
        else {
            return Err(protocol(provider, "the stream ended before done"));
        };
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            if line.trim().is_empty() {
                continue;
            }
            first.get_or_insert_with(tokio::time::Instant::now);
            if on_line(line.trim())? {
                return Ok(first);
            }
        }
        if buf.len() > super::http::MAX_LINE {
            return Err(protocol(provider, "a stream line never ended"));
        }
    }
}

/// Accumulates Ollama's answer objects (one per line when streaming, one in all when not).
#[derive(Debug, Default)]
struct Acc {
    text: String,
    calls: Vec<ToolCall>,
    usage: Usage,
    model: String,
    finish: String,
    done: bool,
}

impl Acc {
    fn on_line(
        &mut self,
        provider: &str,
        line: &str,
        sink: DeltaSink<'_>,
    ) -> Result<bool, LlmError> {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| protocol(provider, format!("a line is not JSON ({e})")))?;
        if let Some(err) = v.get("error") {
            return Err(protocol(
                provider,
                format!(
                    "the server reported: {}",
                    err.as_str().unwrap_or(&err.to_string())
                ),
            ));
        }
        if let Some(m) = v["model"].as_str() {
            self.model = m.to_string();
        }
        if let Some(t) = v.pointer("/message/content").and_then(Value::as_str) {
            self.text.push_str(t);
            sink(t);
        }
        for c in v
            .pointer("/message/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.calls.push(ToolCall {
                id: format!("call_{}", self.calls.len()),
                name: c
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                arguments: c.pointer("/function/arguments").map_or_else(
                    || "{}".into(),
                    |a| a.as_str().map_or_else(|| a.to_string(), str::to_string),
                ),
            });
        }
        if v["done"].as_bool() == Some(true) {
            self.done = true;
            self.finish = v["done_reason"].as_str().unwrap_or("stop").to_string();
            self.usage = Usage {
                input: v["prompt_eval_count"].as_u64().unwrap_or(0),
                output: v["eval_count"].as_u64().unwrap_or(0),
            };
            return Ok(true);
        }
        Ok(false)
    }

    fn finish(self, provider: &str) -> Result<ChatResponse, LlmError> {
        if !self.done {
            return Err(protocol(provider, "the answer ended before done"));
        }
        let finish = if self.finish == "stop" && !self.calls.is_empty() {
            "tool_calls".into()
        } else {
            self.finish
        };
        Ok(ChatResponse {
            text: self.text,
            tool_calls: self.calls,
            usage: self.usage,
            provider: provider.to_string(),
            model: self.model,
            finish,
            retries: 0,
            output_mode: None,
            first_token_ms: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::OutputSchema;

    #[test]
    fn the_schema_goes_in_format_and_the_window_in_num_ctx() {
        let p = Ollama::new("o", &ProviderConfig::default()).unwrap();
        let schema = json!({"type": "object", "required": ["a"]});
        let req = ChatRequest {
            model: "qwen3".into(),
            messages: vec![Message::new(Role::User, "hi")],
            tools: vec![],
            json_output: true,
            max_tokens: 300,
            context: Value::Null,
            output: Some(OutputSchema {
                name: "w".into(),
                schema: schema.clone(),
            }),
        };
        let body = p.body(&req, OutputMode::JsonSchema, 8192);
        assert_eq!(body["format"], schema);
        assert_eq!(
            body["options"],
            json!({"num_ctx": 8192, "num_predict": 300})
        );
        assert_eq!(
            p.body(&req, OutputMode::JsonObject, 8192)["format"],
            json!("json")
        );
        assert!(
            p.body(&req, OutputMode::Prompt, 8192)
                .get("format")
                .is_none()
        );
    }

    #[test]
    fn streamed_lines_and_tool_calls_accumulate() {
        let mut acc = Acc::default();
        let sink = |_: &str| {};
        for l in [
            r#"{"model":"q","message":{"role":"assistant","content":"{\"a\""}, "done":false}"#,
            r#"{"model":"q","message":{"role":"assistant","content":": 1}"}, "done":false}"#,
            r#"{"model":"q","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"memory_search","arguments":{"query":"x"}}}]},"done":false}"#,
            r#"{"model":"q","message":{"content":""},"done":true,"done_reason":"stop","prompt_eval_count":12,"eval_count":5}"#,
        ] {
            acc.on_line("o", l, &sink).unwrap();
        }
        let r = acc.finish("o").unwrap();
        assert_eq!(r.text, r#"{"a": 1}"#);
        assert_eq!(r.tool_calls[0].arguments, r#"{"query":"x"}"#);
        assert_eq!(
            r.usage,
            Usage {
                input: 12,
                output: 5
            }
        );
        assert_eq!(r.finish, "tool_calls");
        let mut cut = Acc::default();
        cut.on_line("o", r#"{"message":{"content":"{"},"done":false}"#, &sink)
            .unwrap();
        assert!(cut.finish("o").is_err());
    }
}
