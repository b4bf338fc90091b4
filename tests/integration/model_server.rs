//! A loopback OpenAI-compatible model server for the content loop: a tokio `TcpListener` on
//! 127.0.0.1 that answers `POST …/chat/completions` (non-streaming) with schema-valid JSON
//! for the role named in the system prompt ("You are the researcher…"). It counts calls per
//! role so a test can tell the model, not the offline rules, did the work.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct ModelServer {
    pub base: String,
    pub calls: Arc<Mutex<BTreeMap<String, usize>>>,
    /// Serves until the test drops the server.
    _runtime: tokio::runtime::Runtime,
}

impl ModelServer {
    pub fn start() -> ModelServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let calls = Arc::new(Mutex::new(BTreeMap::new()));
        let c = calls.clone();
        runtime.spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let c = c.clone();
                tokio::spawn(async move {
                    let _ = serve(sock, &c).await;
                });
            }
        });
        ModelServer {
            base,
            calls,
            _runtime: runtime,
        }
    }

    pub fn calls(&self, role: &str) -> usize {
        self.calls.lock().unwrap().get(role).copied().unwrap_or(0)
    }

    /// The `[providers.loop]` + `[routing]` config pointing every tier at this server.
    pub fn config(&self) -> String {
        format!(
            "[providers.loop]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"loop-model\"\nstream = false\nmax_retries = 1\n\
             [routing]\ntriage = \"loop\"\ndraft = \"loop\"\nfinal = \"loop\"\n",
            self.base
        )
    }
}

async fn serve(mut sock: TcpStream, calls: &Mutex<BTreeMap<String, usize>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, len) = loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (i + 4, len);
        }
    };
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    // Only the chat endpoint answers, as on a real server (keel's discovery probes get 404).
    let first_line = String::from_utf8_lossy(&buf[..head_end])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    if !first_line.contains("/chat/completions") {
        sock.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await?;
        return sock.shutdown().await;
    }
    let request: Value = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
    let prompt = request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let role = [
        "researcher",
        "writer",
        "editor",
        "accountant",
        "analyst",
        "publisher",
        "scheduler",
    ]
    .into_iter()
    .find(|r| prompt.contains(&format!("You are the {r}")))
    .unwrap_or("unknown");
    *calls.lock().unwrap().entry(role.to_string()).or_default() += 1;
    let content = answer(role).to_string();
    let body = json!({
        "id": "chatcmpl-loop", "object": "chat.completion", "model": "loop-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 200, "completion_tokens": 80, "total_tokens": 280}
    })
    .to_string();
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(resp.as_bytes()).await?;
    sock.shutdown().await
}

/// A schema-valid answer per role (what a well-behaved model returns).
fn answer(role: &str) -> Value {
    match role {
        "researcher" => json!({
            "ideas": [
                {"title": "Pricing page experiments", "score": 0.9, "rationale": "pricing teardowns converted best", "sources": []},
                {"title": "Refund policies", "score": 0.4, "rationale": "asked for by readers", "sources": []}
            ],
            "rationale": "ranked by past signups (loopback model)"
        }),
        "writer" => json!({
            "title": "Pricing page experiments that moved conversion",
            "outline": [{"heading": "What we tested", "points": ["annual toggle", "anchor price"]}],
            "body": "# Pricing page experiments\n\nThree tests that moved conversion (model draft).\n",
            "rationale": "built on the pricing teardown outcome"
        }),
        "editor" => json!({
            "title": "Pricing page experiments that moved conversion",
            "body": "# Pricing page experiments\n\nThree tests that moved conversion, with numbers.\n\n## Try this week\n\nAdd an annual toggle.\n",
            "changes": ["added a call to action"],
            "rationale": "house voice: end with one action"
        }),
        "accountant" => json!({
            "invoice": {"customer": "northwind-labs", "currency": "USD",
                "lines": [{"description": "Consulting day", "quantity": 2, "unit_price": 1200.0, "amount": 2400.0}],
                "subtotal": 2400.0, "due_days": 14},
            "rationale": "two consulting days at the contract rate"
        }),
        "analyst" => {
            json!({"summary": "pricing wins", "highlights": [{"metric": "signups", "value": 96}], "rationale": "from the import"})
        }
        _ => json!({"summary": "nothing to do", "rationale": "unknown role"}),
    }
}
