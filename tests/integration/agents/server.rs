//! A scripted HTTP/1.1 server on `127.0.0.1` that speaks just enough of the `OpenAI` and
//! Anthropic protocols: each connection gets the next scripted reply, then is closed.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub enum Reply {
    /// Status, extra headers, JSON body.
    Json(u16, Vec<(String, String)>, Value),
    /// An SSE body written chunk by chunk (the byte boundaries are kept).
    Sse(Vec<Vec<u8>>),
    /// Close the connection without answering.
    Drop,
    /// Send SSE headers and then nothing for a long time.
    Stall,
    /// The server "restarts" with this context window (what `/props` says from now on),
    /// then answers with the inner reply.
    Window(u32, Box<Reply>),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
pub struct Server {
    pub base: String,
    script: Arc<Mutex<VecDeque<Reply>>>,
    pub requests: Arc<Mutex<Vec<Request>>>,
    /// llama.cpp's `/props` (none: 404, like a server that is not llama.cpp).
    pub props: Arc<Mutex<Option<Value>>>,
    pub props_asked: Arc<Mutex<usize>>,
}

impl Server {
    pub async fn start(replies: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = Server {
            base,
            script: Arc::new(Mutex::new(replies.into())),
            requests: Arc::new(Mutex::new(Vec::new())),
            props: Arc::new(Mutex::new(None)),
            props_asked: Arc::new(Mutex::new(0)),
        };
        let s = server.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move { s.serve(sock).await });
            }
        });
        server
    }

    /// Answers `/props` like llama.cpp with this window and one slot.
    pub fn serve_props(&self, n_ctx: u32) {
        *self.props.lock().unwrap() = Some(llama_props(n_ctx));
    }

    pub fn push(&self, reply: Reply) {
        self.script.lock().unwrap().push_back(reply);
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn request(&self, i: usize) -> Request {
        self.requests.lock().unwrap()[i].clone()
    }

    async fn serve(&self, mut sock: TcpStream) {
        let mut buf = Vec::new();
        let mut tmp = [0u8; 8192];
        let head_end = loop {
            let n = sock.read(&mut tmp).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&tmp[..n]);
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .unwrap_or("")
            .split(' ')
            .nth(1)
            .unwrap_or("")
            .to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let n = sock.read(&mut tmp).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&tmp[..n]);
        }
        let body = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
        let is_probe = path.ends_with("/models");
        // Like a real server: only the chat endpoints are scripted; keel's discovery
        // probes (llama.cpp `/props`, Ollama `/api/version`) find nothing here.
        let is_chat = path.ends_with("/chat/completions")
            || path.ends_with("/messages")
            || path.ends_with("/api/chat");
        let props = self.props.lock().unwrap().clone();
        if let (true, Some(props)) = (path.ends_with("/props"), props) {
            *self.props_asked.lock().unwrap() += 1;
            let text = props.to_string();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                text.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(text.as_bytes()).await;
            let _ = sock.shutdown().await;
            return;
        }
        if !is_probe && !is_chat {
            let _ = sock
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            let _ = sock.shutdown().await;
            return;
        }
        if !is_probe {
            self.requests.lock().unwrap().push(Request {
                path: path.clone(),
                headers,
                body,
            });
        }
        let reply = if is_probe {
            Reply::Json(
                200,
                vec![],
                serde_json::json!({"data": [{"id": "local-model"}]}),
            )
        } else {
            self.script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Reply::Json(
                    500,
                    vec![],
                    serde_json::json!({"error": {"message": "no scripted reply left"}}),
                ))
        };
        let reply = match reply {
            Reply::Window(n_ctx, inner) => {
                *self.props.lock().unwrap() = Some(llama_props(n_ctx));
                *inner
            }
            other => other,
        };
        match reply {
            Reply::Json(status, extra, body) => {
                let text = body.to_string();
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                    text.len()
                );
                for (k, v) in extra {
                    let _ = write!(head, "{k}: {v}\r\n");
                }
                head.push_str("\r\n");
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(text.as_bytes()).await;
            }
            Reply::Sse(chunks) => {
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
                    .await;
                for c in chunks {
                    let _ = sock.write_all(&c).await;
                    let _ = sock.flush().await;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            Reply::Drop | Reply::Window(..) => {}
            Reply::Stall => {
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
                    .await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        }
        let _ = sock.shutdown().await;
    }
}

/// What llama.cpp's `/props` says of a one-slot server with window `n_ctx`.
pub fn llama_props(n_ctx: u32) -> Value {
    serde_json::json!({"default_generation_settings": {"n_ctx": n_ctx}, "total_slots": 1})
}

/// SSE chunks of an `OpenAI` stream: text pieces, then usage, then `[DONE]`.
pub fn openai_text_stream(pieces: &[&str]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = pieces
        .iter()
        .map(|p| format!("data: {}\n\n", serde_json::json!({"model": "m1", "choices": [{"index": 0, "delta": {"content": p}}]})).into_bytes())
        .collect();
    out.push(
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        )
        .into_bytes(),
    );
    out.push(
        b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":30}}\n\n"
            .to_vec(),
    );
    out.push(b"data: [DONE]\n\n".to_vec());
    out
}

/// A non-streaming `OpenAI` answer with text.
pub fn openai_text(text: &str) -> Reply {
    Reply::Json(
        200,
        vec![],
        serde_json::json!({
            "model": "m1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20}
        }),
    )
}

/// A non-streaming `OpenAI` answer with tool calls: (id, name, raw arguments).
pub fn openai_tools(calls: &[(&str, &str, &str)]) -> Reply {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, args)| serde_json::json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
        .collect();
    Reply::Json(
        200,
        vec![],
        serde_json::json!({
            "model": "m1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": calls}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10}
        }),
    )
}

/// A port with nothing listening on it.
pub async fn dead_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}
