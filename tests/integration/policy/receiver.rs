//! A loopback HTTP receiver that counts idempotency keys and answers like a real API:
//! `POST /orders` applies an order once per key, `/conflict` → 409, `/invalid` → 422,
//! `/busy` → 503, `/limited` → 429, `GET /lookup/<key>` → 200 or 404, `DELETE /orders/<id>`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

#[derive(Default)]
pub struct State {
    pub requests: Vec<Seen>,
    /// Orders applied, by idempotency key.
    pub applied: BTreeMap<String, Value>,
    pub deleted: Vec<String>,
}

pub struct Receiver {
    pub base: String,
    pub state: Arc<Mutex<State>>,
}

impl Receiver {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = serve(stream, &shared);
            }
        });
        Receiver { base, state }
    }

    pub fn keys(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter_map(|r| r.headers.get("idempotency-key").cloned())
            .collect()
    }

    pub fn applied(&self) -> usize {
        self.state.lock().unwrap().applied.len()
    }
}

fn serve(stream: TcpStream, state: &Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let seen = Seen {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (status, answer) = route(&seen, state);
    state.lock().unwrap().requests.push(seen);
    let text = answer.to_string();
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    out.flush()
}

fn route(req: &Seen, state: &Arc<Mutex<State>>) -> (u16, Value) {
    let key = req
        .headers
        .get("idempotency-key")
        .cloned()
        .unwrap_or_default();
    let mut st = state.lock().unwrap();
    let path = req.path.split('?').next().unwrap_or_default();
    match (req.method.as_str(), path) {
        ("POST", "/orders") => {
            if let Some(done) = st.applied.get(&key) {
                return (200, done.clone());
            }
            let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
            let order = json!({"id": format!("o{}", st.applied.len() + 1), "order": body});
            st.applied.insert(key, order.clone());
            (201, order)
        }
        ("GET", "/metrics") => (
            200,
            json!({"rows": [
                {"publication": "launch", "metric": "views", "value": 1200, "date": "2026-11-20"},
                {"publication": "launch", "metric": "signups", "value": "14", "date": "2026-11-20T08:00:00Z"},
                {"publication": "unknown-post", "metric": "views", "value": 3, "date": "2026-11-20"},
                {"publication": "launch", "metric": "views", "value": "lots", "date": "2026-11-21"}
            ]}),
        ),
        ("GET", "/metrics-broken") => (500, json!({"error": "db down"})),
        ("POST", "/conflict") => (409, json!({"error": "an order with this number exists"})),
        ("POST", "/invalid") => (422, json!({"error": "email is not valid"})),
        ("POST", "/busy") => (503, json!({"error": "try later"})),
        ("POST", "/limited") => (429, json!({"error": "slow down"})),
        ("POST", "/forbidden") => (403, json!({"error": "no"})),
        ("GET", p) if p.starts_with("/lookup/") => match st.applied.get(&p["/lookup/".len()..]) {
            Some(v) => (200, v.clone()),
            None => (404, json!({"error": "unknown key"})),
        },
        ("DELETE", p) if p.starts_with("/orders/") => {
            let id = p["/orders/".len()..].to_string();
            st.deleted.push(id.clone());
            (200, json!({"deleted": id}))
        }
        _ => (404, json!({"error": "no route"})),
    }
}
