//! `keel bench agents`: the runtime's own cost per model call (against a loopback server
//! that answers instantly, so the model's time is excluded), and SSE parsing throughput.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Measurement, emit};
use crate::core::agents::{AgentTask, service};
use crate::core::clock::SystemClock;
use crate::core::llm::config::{ProviderKind, RoutingConfig};
use crate::core::llm::openai::{OpenAi, StreamAcc};
use crate::core::llm::sse::SseParser;
use crate::core::llm::{ChatRequest, Message, Provider, ProviderConfig, Registry, Role};
use crate::core::store::Durability;
use crate::core::workspace::Workspace;

const SUITE: &str = "agents";
const CALLS: u32 = 200;

fn m(metric: &str, value: f64, unit: &'static str) -> Measurement {
    Measurement {
        suite: SUITE,
        metric: metric.to_string(),
        value,
        unit,
    }
}

/// Runs the suite and prints its measurements.
pub fn run(json: bool) -> anyhow::Result<()> {
    for line in sse_throughput() {
        emit(&line, json);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    for line in rt.block_on(runtime_overhead())? {
        emit(&line, json);
    }
    Ok(())
}

/// A synthetic `OpenAI` stream: many small content deltas, some multi-byte text, CRLF lines.
fn synthetic_stream(target_bytes: usize) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(target_bytes + 1024);
    let mut events = 0u64;
    let mut i = 0u64;
    while out.len() < target_bytes {
        let piece = match i % 4 {
            0 => "The quick brown fox ",
            1 => "prix négocié — ",
            2 => "{\"k\": [1, 2, 3]} ",
            _ => "a",
        };
        let ev = json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": piece}}]});
        let eol = if i.is_multiple_of(3) { "\r\n" } else { "\n" };
        out.extend_from_slice(format!("data: {ev}{eol}{eol}").as_bytes());
        events += 1;
        i += 1;
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    (out, events + 1)
}

#[allow(clippy::cast_precision_loss)] // byte and event counts stay far below 2^52
fn sse_throughput() -> Vec<Measurement> {
    let (stream, events) = synthetic_stream(32 * 1024 * 1024);
    let mb = stream.len() as f64 / 1e6;
    let mut out = Vec::new();
    for chunk in [512usize, 16 * 1024] {
        let started = Instant::now();
        let mut parser = SseParser::new();
        let mut buf = Vec::new();
        let mut seen = 0u64;
        for c in stream.chunks(chunk) {
            parser.feed_into(c, &mut buf);
            seen += buf.len() as u64;
            buf.clear();
        }
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(seen, events, "parser lost events");
        out.push(m(
            &format!("sse_parse_mb_per_s_chunk_{chunk}"),
            mb / secs,
            "MB/s",
        ));
        out.push(m(
            &format!("sse_parse_events_per_s_chunk_{chunk}"),
            seen as f64 / secs,
            "events/s",
        ));
    }
    // Parsing plus JSON decoding and accumulation, as the OpenAI provider does it.
    let started = Instant::now();
    let mut parser = SseParser::new();
    let mut acc = StreamAcc::default();
    let mut buf = Vec::new();
    let sink = |_: &str| {};
    for c in stream.chunks(16 * 1024) {
        parser.feed_into(c, &mut buf);
        for ev in buf.drain(..) {
            let _ = acc.on_event("bench", &ev.data, &sink);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    out.push(m("sse_openai_decode_mb_per_s", mb / secs, "MB/s"));
    out.push(m(
        "sse_openai_decode_events_per_s",
        events as f64 / secs,
        "events/s",
    ));
    out
}

/// What the instant model answers: tool calls until the request carries as many tool
/// results as the task input's `rounds`, then the final JSON.
fn answer_for(request: &str) -> String {
    let rounds: usize = request
        .split("rounds\\\": ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let done = request.matches("\"role\":\"tool\"").count();
    let usage = json!({"prompt_tokens": 500, "completion_tokens": 50});
    let message = if done < rounds {
        let args = json!({"query": format!("q{done}")}).to_string();
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": format!("c{done}"), "type": "function", "function": {"name": "memory_search", "arguments": args}}]})
    } else {
        let answer = json!({"ideas": [{"title": "Pricing guide", "score": 0.8, "rationale": "fits", "sources": []}], "rationale": "bench"});
        json!({"role": "assistant", "content": answer.to_string()})
    };
    json!({"model": "bench", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage}).to_string()
}

/// A keep-alive HTTP/1.1 server answering every request at once.
async fn instant_server() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 16 * 1024];
                loop {
                    let Some(head_end) =
                        buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
                    else {
                        match sock.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        match sock.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    let body = answer_for(&String::from_utf8_lossy(&buf[head_end..head_end + len]));
                    buf.drain(..head_end + len);
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(base)
}

/// Mean milliseconds per run of the researcher making `rounds` tool rounds (so
/// `rounds + 1` model calls).
async fn time_runs(
    runtime: &mut crate::core::agents::Runtime,
    rounds: u32,
    runs: u32,
) -> anyhow::Result<f64> {
    let cancel = CancellationToken::new();
    let started = Instant::now();
    for i in 0..runs {
        let task = AgentTask {
            task: format!("bench-{rounds}-{i}"),
            role: "researcher".into(),
            input: json!({"goals": ["pricing"], "n": i, "rounds": rounds}),
            ..AgentTask::default()
        };
        let outcome = runtime.execute(&task, &cancel).await?;
        anyhow::ensure!(
            outcome.status() == "succeeded",
            "bench run failed: {outcome:?}"
        );
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0 / f64::from(runs))
}

async fn runtime_overhead() -> anyhow::Result<Vec<Measurement>> {
    let base = instant_server().await?;
    let cfg = ProviderConfig {
        kind: ProviderKind::Openai,
        base_url: base,
        model: "bench".into(),
        stream: false,
        price_in_per_mtok: 1.0,
        price_out_per_mtok: 2.0,
        ..ProviderConfig::default()
    };
    let provider = OpenAi::new("loopback", &cfg)?;

    // The bare HTTP round trip: what any client pays to reach the (instant) model.
    let req = ChatRequest {
        model: String::new(),
        messages: vec![Message::new(Role::User, "x".repeat(2000))],
        tools: vec![],
        json_output: true,
        max_tokens: 100,
        context: serde_json::Value::Null,
        output: None,
    };
    let cancel = CancellationToken::new();
    for _ in 0..20 {
        provider.chat(&req, &|_: &str| {}, &cancel).await?;
    }
    let started = Instant::now();
    for _ in 0..CALLS {
        provider.chat(&req, &|_: &str| {}, &cancel).await?;
    }
    let http_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(CALLS);
    let mut out = vec![m("loopback_http_roundtrip_ms", http_ms, "ms")];

    for (durability, name) in [(Durability::Full, "full"), (Durability::Normal, "normal")] {
        let dir =
            std::env::temp_dir().join(format!("keel-bench-agents-{}", crate::core::ids::new_id()));
        let mut ws = Workspace::init(&dir).context("temporary workspace")?;
        ws.config.store.durability = durability;
        let mut reg = Registry::offline_only();
        reg.insert("loopback", Arc::new(provider.clone()), "openai", "bench");
        reg.routing = RoutingConfig {
            triage: "loopback".into(),
            draft: "loopback".into(),
            final_: "loopback".into(),
            cascade: false,
        };
        let mut runtime = service::runtime_with(
            &ws,
            Arc::new(SystemClock),
            Arc::new(|_: &str, _: &str| {}),
            reg,
        )?;
        // Room for the tool rounds measured below.
        if let Some(t) = runtime.templates.by_name.get_mut("researcher") {
            t.template.limits.max_steps = 20;
        }
        let runs = CALLS / 4;
        let one = time_runs(&mut runtime, 0, runs).await?;
        let five = time_runs(&mut runtime, 4, runs).await?;
        drop(runtime);
        let _ = std::fs::remove_dir_all(&dir);
        // Each extra round is one model call plus one tool step.
        let per_call = (five - one) / 4.0 - http_ms;
        out.push(m(
            &format!("run_with_1_model_call_ms_sync_{name}"),
            one,
            "ms",
        ));
        out.push(m(
            &format!("run_with_5_model_calls_ms_sync_{name}"),
            five,
            "ms",
        ));
        out.push(m(
            &format!("runtime_overhead_per_model_call_ms_sync_{name}"),
            per_call.max(0.0),
            "ms",
        ));
        out.push(m(
            &format!("runtime_overhead_per_run_ms_sync_{name}"),
            (one - http_ms - per_call).max(0.0),
            "ms",
        ));
    }
    // Keep the server alive until every measurement is done.
    tokio::time::sleep(Duration::from_millis(1)).await;
    Ok(out)
}
