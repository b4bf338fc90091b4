//! Fuzzing what model servers send back: SSE streams (arbitrary bytes, split at arbitrary
//! points) through the SSE parser and both providers' stream decoders, the same streams
//! through the real providers over a loopback socket, and non-streaming JSON answers through
//! both response parsers. Nothing may panic; a malformed answer is a `Protocol` error that
//! names the provider and says what was wrong.

use std::sync::{Arc, Mutex};

use keel::core::llm::config::ProviderKind;
use keel::core::llm::sse::{SseEvent, SseParser, Unfinished};
use keel::core::llm::{ChatResponse, LlmError, anthropic, openai};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::fuzz::cases;

/// A valid `OpenAI` stream: text in pieces, a tool call in pieces, usage, `[DONE]`.
fn openai_seed() -> Vec<u8> {
    let chunks = [
        json!({"model": "m1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": "lo, wörld"}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "memory_search", "arguments": "{\"q\":"}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"x\"}"}}]}, "finish_reason": "tool_calls"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 7}}),
    ];
    let mut out: Vec<u8> = b": keep-alive\r\n\r\n".to_vec();
    for c in chunks {
        out.extend(format!("data: {c}\n\n").into_bytes());
    }
    out.extend(b"data: [DONE]\n\n");
    out
}

/// A valid Anthropic stream: text deltas, a tool use with partial JSON, `message_stop`.
fn anthropic_seed() -> Vec<u8> {
    let events = [
        (
            "message_start",
            json!({"type": "message_start", "message": {"model": "claude-x", "usage": {"input_tokens": 9}}}),
        ),
        ("ping", json!({"type": "ping"})),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello, wörld"}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t1", "name": "memory_search", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"q\":\"x\"}"}}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    let mut out = Vec::new();
    for (name, data) in events {
        out.extend(format!("event: {name}\r\ndata: {data}\r\n\r\n").into_bytes());
    }
    out
}

const SEED_TEXT: &str = "Hello, wörld";

/// Bytes that matter to SSE and JSON, and some that never should appear.
const SSE_BYTES: &[u8] =
    b"\r\n:\"{}[],data: event: id: retry: [DONE]\\\x00\xff\xc3\xa9\xef\xbb\xbf 0a";

/// One edit of a seed: (position fraction, kind, byte, length).
fn byte_edits() -> impl Strategy<Value = Vec<(f64, u8, usize, usize)>> {
    prop::collection::vec((0.0..1.0f64, 0u8..4, 0..SSE_BYTES.len(), 1usize..40), 0..6)
}

/// Insert a byte, delete a run, duplicate a run, or truncate.
fn mutate_bytes(seed: &[u8], edits: &[(f64, u8, usize, usize)]) -> Vec<u8> {
    super::fuzz::mutate_seq(seed.to_vec(), edits, SSE_BYTES)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Wire {
    OpenAi,
    Anthropic,
}

/// A stream for `wire`: its seed (sometimes mutated), or arbitrary bytes.
fn stream(wire: Wire) -> impl Strategy<Value = Vec<u8>> {
    let seed = match wire {
        Wire::OpenAi => openai_seed(),
        Wire::Anthropic => anthropic_seed(),
    };
    let mutated = seed.clone();
    prop_oneof![
        1 => Just(seed),
        4 => byte_edits().prop_map(move |e| mutate_bytes(&mutated, &e)),
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => prop::collection::vec(prop::sample::select(SSE_BYTES), 0..300),
    ]
}

/// Chunk sizes, cycled until the stream is used up (0 feeds an empty chunk).
fn splits() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..48, 1..24)
}

fn chunked(bytes: &[u8], sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    for n in sizes.iter().cycle() {
        if at >= bytes.len() {
            break;
        }
        let end = (at + n).min(bytes.len());
        out.push(bytes[at..end].to_vec());
        at = end;
        // A run of zero sizes must still make progress.
        if sizes.iter().all(|n| *n == 0) {
            out.push(bytes[at..].to_vec());
            break;
        }
    }
    out
}

fn parse(chunks: &[Vec<u8>]) -> (Vec<SseEvent>, Option<Unfinished>) {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for c in chunks {
        parser.feed_into(c, &mut events);
    }
    (events, parser.finish())
}

/// A malformed answer must be a protocol error naming the provider, with a short message.
fn assert_protocol(err: &LlmError, provider: &str) -> Result<(), TestCaseError> {
    match err {
        LlmError::Protocol {
            provider: p,
            message,
        } => {
            prop_assert_eq!(p, provider);
            prop_assert!(!message.trim().is_empty());
            // Bad data is previewed, never echoed whole.
            prop_assert!(
                message.len() < 1_000,
                "{} bytes: {}",
                message.len(),
                message
            );
            prop_assert!(err.to_string().starts_with(provider), "{}", err);
            Ok(())
        }
        other => {
            prop_assert!(false, "expected a protocol error, got {:?}", other);
            Ok(())
        }
    }
}

/// Runs parsed events through a provider's stream decoder as its client does: stop at the
/// end marker, fail on the first error, and a stream that ends before the marker fails.
fn decode(wire: Wire, events: Vec<SseEvent>) -> (Result<ChatResponse, LlmError>, String) {
    let streamed = Arc::new(Mutex::new(String::new()));
    let s = Arc::clone(&streamed);
    let sink = move |t: &str| s.lock().unwrap().push_str(t);
    let result = match wire {
        Wire::OpenAi => {
            let mut acc = openai::StreamAcc::default();
            let mut outcome = Ok(false);
            for ev in events {
                outcome = acc.on_event("fz", &ev.data, &sink);
                if !matches!(outcome, Ok(false)) {
                    break;
                }
            }
            outcome.and_then(|_| acc.finish("fz"))
        }
        Wire::Anthropic => {
            let mut acc = anthropic::StreamAcc::default();
            let mut outcome = Ok(false);
            for ev in events {
                outcome = acc.on_event("fz", &ev.event, &ev.data, &sink);
                if !matches!(outcome, Ok(false)) {
                    break;
                }
            }
            match outcome {
                Ok(true) => Ok(acc.finish("fz")),
                Ok(false) => Err(LlmError::Protocol {
                    provider: "fz".into(),
                    message: "the stream ended before message_stop".into(),
                }),
                Err(e) => Err(e),
            }
        }
    };
    let text = streamed.lock().unwrap().clone();
    (result, text)
}

fn check_stream(wire: Wire, bytes: &[u8], sizes: &[usize]) -> Result<(), TestCaseError> {
    let (whole, whole_rest) = parse(&[bytes.to_vec()]);
    let (split, split_rest) = parse(&chunked(bytes, sizes));
    // However the bytes are cut, the parser sees the same events and the same leftover.
    prop_assert_eq!(&whole, &split);
    prop_assert_eq!(whole_rest, split_rest);
    let (result, streamed) = decode(wire, split);
    match result {
        Ok(r) => {
            // What was streamed to the console is exactly the answer's text.
            prop_assert_eq!(&r.text, &streamed);
            for call in &r.tool_calls {
                prop_assert!(!call.id.is_empty() || wire == Wire::Anthropic);
            }
        }
        Err(e) => assert_protocol(&e, "fz")?,
    }
    let seed = match wire {
        Wire::OpenAi => openai_seed(),
        Wire::Anthropic => anthropic_seed(),
    };
    if bytes == seed.as_slice() {
        let (r, _) = decode(wire, whole);
        let r = r.map_err(|e| TestCaseError::fail(format!("the valid stream failed: {e}")))?;
        prop_assert_eq!(r.text, SEED_TEXT);
        prop_assert_eq!(r.tool_calls.len(), 1);
        prop_assert_eq!(&r.tool_calls[0].arguments, "{\"q\":\"x\"}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases("sse_stream_openai"))]
    #[test]
    fn openai_sse_streams_never_panic(bytes in stream(Wire::OpenAi), sizes in splits()) {
        check_stream(Wire::OpenAi, &bytes, &sizes)?;
    }
}

proptest! {
    #![proptest_config(cases("sse_stream_anthropic"))]
    #[test]
    fn anthropic_sse_streams_never_panic(bytes in stream(Wire::Anthropic), sizes in splits()) {
        check_stream(Wire::Anthropic, &bytes, &sizes)?;
    }
}

/// The same streams through the real providers: a loopback server writes the chunks one by
/// one (byte boundaries kept on the socket), the provider reads them with its HTTP client.
#[test]
fn provider_streams_over_http_never_panic() {
    use crate::agents::providers::cfg;
    use crate::agents::server::{Reply, Server};
    use keel::core::llm::{ChatRequest, Message, Provider, Role};

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(Server::start(vec![]));
    let providers: Vec<(Wire, Box<dyn Provider>)> = vec![
        (
            Wire::OpenAi,
            Box::new(
                openai::OpenAi::new("fz", &cfg(ProviderKind::Openai, &server.base, true)).unwrap(),
            ),
        ),
        (
            Wire::Anthropic,
            Box::new(
                anthropic::Anthropic::new("fz", &cfg(ProviderKind::Anthropic, &server.base, true))
                    .unwrap(),
            ),
        ),
    ];
    let request = ChatRequest {
        model: String::new(),
        messages: vec![Message::new(Role::User, "hello")],
        tools: vec![],
        json_output: false,
        max_tokens: 50,
        context: Value::Null,
        output: None,
    };
    let wire_and_stream = prop_oneof![
        stream(Wire::OpenAi).prop_map(|s| (0usize, s)),
        stream(Wire::Anthropic).prop_map(|s| (1usize, s)),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(cases("sse_stream_http"));
    runner
        .run(&(wire_and_stream, splits()), |((which, bytes), sizes)| {
            let (wire, provider) = &providers[which];
            server.push(Reply::Sse(chunked(&bytes, &sizes)));
            let cancel = tokio_util::sync::CancellationToken::new();
            let sink = |_: &str| {};
            let result = rt.block_on(provider.chat(&request, &sink, &cancel));
            // Over the socket the answer is what the decoder makes of the same bytes: only
            // a stream that reached its end marker is an answer.
            let (events, _) = parse(std::slice::from_ref(&bytes));
            let (decoded, _) = decode(*wire, events);
            match (result, decoded) {
                (Ok(r), Ok(d)) => prop_assert_eq!(r.text, d.text),
                (Err(e), Err(_)) => assert_protocol(&e, "fz")?,
                (r, d) => prop_assert!(false, "over HTTP {:?}, decoded {:?}", r, d),
            }
            Ok(())
        })
        .unwrap();
}

/// Provider-shaped JSON: the keys both wire formats use, at any depth.
fn provider_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(&["text", "tool_use", "function", "stop", "{\"q\":1}", "{"][..])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(
                    &[
                        "choices",
                        "message",
                        "content",
                        "tool_calls",
                        "function",
                        "name",
                        "arguments",
                        "usage",
                        "prompt_tokens",
                        "completion_tokens",
                        "type",
                        "text",
                        "input",
                        "id",
                        "model",
                        "stop_reason",
                        "finish_reason",
                        "input_tokens",
                        "output_tokens",
                        "error",
                    ][..]
                )
                .prop_map(str::to_string),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn openai_body() -> String {
    json!({
        "model": "m1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": SEED_TEXT,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "memory_search", "arguments": "{\"q\":\"x\"}"}}]},
            "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7}
    })
    .to_string()
}

fn anthropic_body() -> String {
    json!({
        "model": "claude-x", "stop_reason": "tool_use",
        "content": [{"type": "text", "text": SEED_TEXT}, {"type": "tool_use", "id": "t1", "name": "memory_search", "input": {"q": "x"}}],
        "usage": {"input_tokens": 9, "output_tokens": 5}
    })
    .to_string()
}

fn mutated_text(seed: String) -> impl Strategy<Value = String> {
    byte_edits()
        .prop_map(move |e| String::from_utf8_lossy(&mutate_bytes(seed.as_bytes(), &e)).into_owned())
}

proptest! {
    #![proptest_config(cases("provider_json"))]
    #[test]
    fn provider_json_answers_never_panic(
        body in prop_oneof![
            3 => provider_json().prop_map(|v| v.to_string()),
            2 => mutated_text(openai_body()),
            2 => mutated_text(anthropic_body()),
            1 => ".{0,200}",
        ]
    ) {
        match openai::parse_full("fz", &body) {
            Ok(r) => {
                // An answer needs its message; everything else may be missing.
                let v: Value = serde_json::from_str(&body).unwrap();
                prop_assert!(v.pointer("/choices/0/message").is_some());
                prop_assert_eq!(r.provider, "fz");
            }
            Err(e) => assert_protocol(&e, "fz")?,
        }
        match anthropic::parse_full("fz", &body) {
            Ok(r) => {
                let v: Value = serde_json::from_str(&body).unwrap();
                prop_assert!(v["content"].is_array());
                // Tool inputs are passed on as JSON text the tools can parse.
                for call in &r.tool_calls {
                    prop_assert!(serde_json::from_str::<Value>(&call.arguments).is_ok(), "{}", call.arguments);
                }
            }
            Err(e) => assert_protocol(&e, "fz")?,
        }
        if body == openai_body() {
            let r = openai::parse_full("fz", &body).unwrap();
            prop_assert_eq!((r.text.as_str(), r.tool_calls.len()), (SEED_TEXT, 1));
        }
        if body == anthropic_body() {
            let r = anthropic::parse_full("fz", &body).unwrap();
            prop_assert_eq!((r.text.as_str(), r.tool_calls.len()), (SEED_TEXT, 1));
        }
    }
}
