//! An idempotency-checking HTTP receiver on 127.0.0.1, written with `std::net`, for the crash
//! torture (bench and tests). It speaks the protocol of the built-in `webhook` role:
//! `POST` applies an `Idempotency-Key` (counting any second application as a duplicate),
//! `GET` answers 200 if the key was applied and 404 if not.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};

/// What the receiver saw.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Keys `POST`ed again after they were applied (must stay empty).
    pub duplicates: Vec<String>,
    /// How many times each key was applied.
    pub applied: HashMap<String, u32>,
    /// Requests answered, of which `lookups` were GETs (recovery after a crash).
    pub requests: usize,
    pub lookups: usize,
}

/// A running receiver: its URL and a view of what it received.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<Received>>,
}

impl Receiver {
    /// Binds 127.0.0.1 on a free port and serves each connection on its own thread.
    /// The listener lives as long as the process (the threads are detached).
    pub fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let state = Arc::new(Mutex::new(Received::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(conn, &state));
            }
        });
        Ok(Receiver { url, state })
    }

    /// A copy of what was received so far.
    #[must_use]
    pub fn snapshot(&self) -> Received {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

struct Request {
    method: String,
    key: String,
}

/// Reads one request (headers and body); `None` when the connection ended or was cut short
/// (a request cut short by a kill is not applied).
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let method = request_line.split_whitespace().next()?.to_string();
    let (mut length, mut key) = (0usize, String::new());
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "idempotency-key" => key = value.trim().to_string(),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, key })
}

fn serve(conn: TcpStream, state: &Mutex<Received>) {
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    while let Some(req) = read_request(&mut reader) {
        let (status, reply) = apply(&req, state);
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn apply(req: &Request, state: &Mutex<Received>) -> (&'static str, String) {
    let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
    s.requests += 1;
    let applied = serde_json::json!({ "applied": req.key }).to_string();
    match req.method.as_str() {
        "POST" => {
            let count = s.applied.entry(req.key.clone()).or_insert(0);
            *count += 1;
            if *count > 1 {
                s.duplicates.push(req.key.clone());
            }
            ("200 OK", applied)
        }
        "GET" => {
            s.lookups += 1;
            if s.applied.contains_key(&req.key) {
                ("200 OK", applied)
            } else {
                ("404 Not Found", "{}".to_string())
            }
        }
        _ => ("405 Method Not Allowed", "{}".to_string()),
    }
}
