//! Both wire protocols against the loopback server: streaming, tool calls, retries,
//! malformed and truncated streams, rejected requests, a dead server, cancellation, auto.

use std::sync::{Arc, Mutex};

use keel::core::llm::anthropic::Anthropic;
use keel::core::llm::config::{ProviderKind, RoutingConfig, Tier};
use keel::core::llm::openai::OpenAi;
use keel::core::llm::{ChatRequest, LlmError, Message, Provider, ProviderConfig, Registry, Role};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::server::{Reply, Server, dead_port, openai_text_stream, openai_tools};

/// An environment variable cargo always sets for tests, used as a stand-in key (the
/// workspace forbids `unsafe`, so tests cannot set their own).
const KEY_ENV: &str = "CARGO_MANIFEST_DIR";

pub fn cfg(kind: ProviderKind, base: &str, stream: bool) -> ProviderConfig {
    ProviderConfig {
        kind,
        base_url: base.to_string(),
        api_key_env: KEY_ENV.into(),
        model: "m1".into(),
        price_in_per_mtok: 2.0,
        price_out_per_mtok: 8.0,
        stream,
        timeout_secs: 20,
        max_retries: 2,
        max_backoff_ms: 50,
        ..ProviderConfig::default()
    }
}

fn request() -> ChatRequest {
    ChatRequest {
        model: String::new(),
        messages: vec![
            Message::new(Role::System, "be brief"),
            Message::new(Role::User, "hello"),
        ],
        tools: vec![keel::core::agents::tools::ToolName::MemorySearch.spec()],
        json_output: true,
        max_tokens: 100,
        context: Value::Null,
        output: None,
    }
}

async fn chat(p: &dyn Provider) -> (Result<keel::core::llm::ChatResponse, LlmError>, Vec<String>) {
    let deltas = Arc::new(Mutex::new(Vec::new()));
    let d = deltas.clone();
    let sink = move |s: &str| d.lock().unwrap().push(s.to_string());
    let r = p.chat(&request(), &sink, &CancellationToken::new()).await;
    let got = deltas.lock().unwrap().clone();
    (r, got)
}

fn key() -> String {
    std::env::var(KEY_ENV).unwrap()
}

#[tokio::test]
async fn openai_streams_text_in_pieces_with_usage_and_auth() {
    let mut chunks = openai_text_stream(&["{\"a\":", " 1}"]);
    // Split one event across two TCP writes, mid-line.
    let first = chunks.remove(0);
    let (x, y) = first.split_at(17);
    chunks.insert(0, y.to_vec());
    chunks.insert(0, x.to_vec());
    let server = Server::start(vec![Reply::Sse(chunks)]).await;
    let p = OpenAi::new("oa", &cfg(ProviderKind::Openai, &server.base, true)).unwrap();
    let (r, deltas) = chat(&p).await;
    let r = r.unwrap();
    assert_eq!(r.text, "{\"a\": 1}");
    assert_eq!(deltas, vec!["{\"a\":", " 1}"]);
    assert_eq!((r.usage.input, r.usage.output), (120, 30));
    assert!((p.price().cost(r.usage) - (120.0 * 2.0 + 30.0 * 8.0) / 1e6).abs() < 1e-12);
    let req = server.request(0);
    assert_eq!(req.path, "/chat/completions");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {}", key()).as_str())
    );
    assert_eq!(req.body["stream"], true);
    assert_eq!(req.body["tools"][0]["function"]["name"], "memory_search");
}

#[tokio::test]
async fn openai_parallel_tool_calls_non_streaming() {
    let server = Server::start(vec![openai_tools(&[
        ("c1", "memory_search", "{\"query\":\"x\"}"),
        ("c2", "object_read", "{\"kind\":\"idea\",\"id\":\"1\"}"),
    ])])
    .await;
    let p = OpenAi::new("oa", &cfg(ProviderKind::Openai, &server.base, false)).unwrap();
    let r = chat(&p).await.0.unwrap();
    assert_eq!(r.tool_calls.len(), 2);
    assert_eq!(r.tool_calls[1].name, "object_read");
    assert_eq!(r.finish, "tool_calls");
}

#[tokio::test]
async fn anthropic_streams_text_and_parallel_tool_use() {
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n").into_bytes();
    let chunks = vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"model": "claude-x", "usage": {"input_tokens": 55}}}),
        ),
        b": keep-alive comment\n\n".to_vec(),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me look."}}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "tu1", "name": "memory_search", "input": {}}}),
        ),
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"query\": \"pri"}}),
        ),
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "cing\"}"}}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "tu2", "name": "object_read", "input": {}}}),
        ),
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"kind\":\"idea\",\"id\":\"7\"}"}}),
        ),
        ev("ping", json!({"type": "ping"})),
        ev(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 42}}),
        ),
        ev("message_stop", json!({"type": "message_stop"})),
    ];
    let server = Server::start(vec![Reply::Sse(chunks)]).await;
    let p = Anthropic::new("an", &cfg(ProviderKind::Anthropic, &server.base, true)).unwrap();
    let (r, deltas) = chat(&p).await;
    let r = r.unwrap();
    assert_eq!(r.text, "Let me look.");
    assert_eq!(deltas, vec!["Let me look."]);
    assert_eq!(r.tool_calls.len(), 2);
    assert_eq!(r.tool_calls[0].arguments, "{\"query\": \"pricing\"}");
    assert_eq!(r.tool_calls[1].id, "tu2");
    assert_eq!((r.usage.input, r.usage.output), (55, 42));
    assert_eq!(r.model, "claude-x");
    let req = server.request(0);
    assert_eq!(req.path, "/messages");
    assert_eq!(req.header("x-api-key"), Some(key().as_str()));
    assert_eq!(req.header("anthropic-version"), Some("2023-06-01"));
    assert!(req.body["system"].as_str().unwrap().contains("be brief"));
    assert_eq!(req.body["tools"][0]["input_schema"]["type"], "object");
}

#[tokio::test]
async fn rate_limit_with_retry_after_then_success() {
    let server = Server::start(vec![
        Reply::Json(
            429,
            vec![("retry-after".into(), "0".into())],
            json!({"error": {"message": "slow down"}}),
        ),
        super::server::openai_text("{}"),
    ])
    .await;
    let p = OpenAi::new("oa", &cfg(ProviderKind::Openai, &server.base, false)).unwrap();
    let r = chat(&p).await.0.unwrap();
    assert_eq!(r.retries, 1);
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn server_error_then_success_for_anthropic() {
    let server = Server::start(vec![
        Reply::Json(500, vec![], json!({"type": "error", "error": {"type": "api_error", "message": "boom"}})),
        Reply::Json(200, vec![], json!({"model": "c", "content": [{"type": "text", "text": "{}"}], "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 1}})),
    ])
    .await;
    let p = Anthropic::new("an", &cfg(ProviderKind::Anthropic, &server.base, false)).unwrap();
    let r = chat(&p).await.0.unwrap();
    assert_eq!((r.retries, r.text.as_str()), (1, "{}"));
}

#[tokio::test]
async fn rejected_request_is_not_retried_and_never_echoes_the_key() {
    let body = json!({"error": {"message": format!("invalid key {} supplied", key())}});
    let server = Server::start(vec![Reply::Json(401, vec![], body)]).await;
    let p = OpenAi::new("oa", &cfg(ProviderKind::Openai, &server.base, true)).unwrap();
    let err = chat(&p).await.0.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, LlmError::Rejected { status: 401, .. }),
        "{err:?}"
    );
    assert!(!msg.contains(&key()), "{msg}");
    assert!(msg.contains("api_key_env"), "{msg}");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn malformed_chunk_is_a_clear_protocol_error() {
    let chunks = vec![
        b"data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\n".to_vec(),
        b"data: {this is not json\n\n".to_vec(),
    ];
    let server = Server::start(vec![Reply::Sse(chunks)]).await;
    let p = OpenAi::new("oa", &cfg(ProviderKind::Openai, &server.base, true)).unwrap();
    let err = chat(&p).await.0.unwrap_err();
    assert!(matches!(err, LlmError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("not JSON"), "{err}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn truncated_stream_is_reported_for_both_protocols() {
    let mut chunks = openai_text_stream(&["{\"a\":1}"]);
    chunks.truncate(1);
    chunks.push(b"data: {\"choices\":[{\"delta\":{\"content\":\"x".to_vec());
    let server = Server::start(vec![Reply::Sse(chunks)]).await;
    let p = OpenAi::new("oa", &cfg(ProviderKind::Openai, &server.base, true)).unwrap();
    let err = chat(&p).await.0.unwrap_err().to_string();
    assert!(
        err.contains("ended before the end marker") && err.contains("unfinished line"),
        "{err}"
    );

    let server = Server::start(vec![Reply::Sse(vec![
        b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n".to_vec(),
    ])])
    .await;
    let p = Anthropic::new("an", &cfg(ProviderKind::Anthropic, &server.base, true)).unwrap();
    let err = chat(&p).await.0.unwrap_err().to_string();
    assert!(err.contains("ended before the end marker"), "{err}");
}

#[tokio::test]
async fn provider_down_is_unavailable_after_retries() {
    let base = dead_port().await;
    let p = OpenAi::new("oa", &cfg(ProviderKind::Openai, &base, true)).unwrap();
    let err = chat(&p).await.0.unwrap_err();
    match &err {
        LlmError::Unavailable {
            attempts, message, ..
        } => {
            assert_eq!(*attempts, 3);
            assert!(message.contains("cannot connect"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn dropped_connection_is_retried() {
    let server = Server::start(vec![Reply::Drop, super::server::openai_text("{}")]).await;
    let p = OpenAi::new("oa", &cfg(ProviderKind::Openai, &server.base, false)).unwrap();
    let r = chat(&p).await.0.unwrap();
    assert_eq!(r.retries, 1);
}

#[tokio::test]
async fn cancellation_stops_a_stalled_stream() {
    let server = Server::start(vec![Reply::Stall]).await;
    let p = OpenAi::new("oa", &cfg(ProviderKind::Openai, &server.base, true)).unwrap();
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        c.cancel();
    });
    let err = p
        .chat(&request(), &|_: &str| {}, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Cancelled { .. }), "{err:?}");
}

#[tokio::test]
async fn auto_uses_a_local_server_when_one_answers_else_offline() {
    let server = Server::start(vec![]).await;
    let mut providers = std::collections::BTreeMap::new();
    let mut local = cfg(ProviderKind::Auto, &format!("{}/v1", server.base), true);
    local.model = String::new();
    local.api_key_env = String::new();
    providers.insert("local".to_string(), local.clone());
    let routing = RoutingConfig {
        triage: "local".into(),
        draft: "offline".into(),
        final_: "offline".into(),
        cascade: false,
    };
    let reg = Registry::from_config(&providers, &routing).await.unwrap();
    let p = reg.resolve(Tier::Triage, None).unwrap();
    assert_eq!((p.kind(), p.model()), ("openai", "local-model"));

    local.base_url = dead_port().await;
    providers.insert("local".to_string(), local);
    let reg = Registry::from_config(&providers, &routing).await.unwrap();
    let p = reg.resolve(Tier::Triage, None).unwrap();
    assert_eq!((p.kind(), p.name()), ("offline", "offline"));
    let health = reg.health();
    assert!(
        health
            .iter()
            .any(|h| h.name == "local" && h.status.starts_with("offline")),
        "{health:?}"
    );
}

#[tokio::test]
async fn routing_to_an_unknown_provider_is_a_config_error() {
    let routing = RoutingConfig {
        triage: "nope".into(),
        ..RoutingConfig::default()
    };
    let err = Registry::from_config(&std::collections::BTreeMap::new(), &routing)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope") && err.contains("not configured"),
        "{err}"
    );
}

#[tokio::test]
async fn a_stalled_stream_times_out_with_a_clear_error() {
    let server = Server::start(vec![Reply::Stall]).await;
    let mut c = cfg(ProviderKind::Openai, &server.base, true);
    c.timeout_secs = 1;
    let p = OpenAi::new("oa", &c).unwrap();
    let err = chat(&p).await.0.unwrap_err();
    let msg = err.to_string();
    // A timeout is retried like a 5xx, and never called a malformed answer.
    assert!(matches!(err, LlmError::Timeout { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(
        msg.contains("timed out") && !msg.contains("malformed"),
        "{msg}"
    );
}

#[tokio::test]
async fn openai_streamed_parallel_tool_calls_arrive_in_pieces() {
    let chunk = |v: Value| format!("data: {v}\n\n").into_bytes();
    let chunks = vec![
        chunk(json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "a", "type": "function", "function": {"name": "memory_search", "arguments": "{\"qu"}},
            {"index": 1, "id": "b", "type": "function", "function": {"name": "object_read", "arguments": ""}}]}}]})),
        chunk(json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "function": {"arguments": "{\"kind\":\"idea\",\"id\":\"1\"}"}},
            {"index": 0, "function": {"arguments": "ery\":\"x\"}"}}]}, "finish_reason": "tool_calls"}]})),
        b"data: [DONE]\n\n".to_vec(),
    ];
    let server = Server::start(vec![Reply::Sse(chunks)]).await;
    let p = OpenAi::new("oa", &cfg(ProviderKind::Openai, &server.base, true)).unwrap();
    let r = chat(&p).await.0.unwrap();
    let calls: Vec<(&str, &str)> = r
        .tool_calls
        .iter()
        .map(|c| (c.name.as_str(), c.arguments.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("memory_search", r#"{"query":"x"}"#),
            ("object_read", r#"{"kind":"idea","id":"1"}"#)
        ]
    );
}

#[tokio::test]
async fn anthropic_rate_limit_is_retried() {
    let server = Server::start(vec![
        Reply::Json(429, vec![("retry-after".into(), "0".into())], json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}})),
        Reply::Json(529, vec![], json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})),
        Reply::Json(200, vec![], json!({"model": "c", "content": [{"type": "tool_use", "id": "t", "name": "memory_search", "input": {"query": "q"}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 1}})),
    ])
    .await;
    let p = Anthropic::new("an", &cfg(ProviderKind::Anthropic, &server.base, false)).unwrap();
    let r = chat(&p).await.0.unwrap();
    assert_eq!(r.retries, 2);
    assert_eq!(r.tool_calls[0].arguments, r#"{"query":"q"}"#);
}
