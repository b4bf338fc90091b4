//! Streamable HTTP: the real server-everything in its `streamableHttp` mode on 127.0.0.1.
//! Its express app listens on every interface when given only a port, so a two-line
//! preload (`NODE_OPTIONS=--require`) makes `listen(port)` bind 127.0.0.1: nothing of the
//! server changes but the address it binds.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use keel::core::mcp::ServerConfig;
use serde_json::json;

use crate::mcp_peers::{call, files_dir, own, peers};

const LOOPBACK_ONLY: &str = "const net = require('net');\n\
const listen = net.Server.prototype.listen;\n\
net.Server.prototype.listen = function (...a) { if (typeof a[0] === 'number' || typeof a[0] === 'string') { a.splice(1, 0, '127.0.0.1'); } return listen.apply(this, a); };\n";

#[test]
fn a_streamable_http_server_on_loopback_lists_and_calls() {
    let Some(p) = peers() else { return };
    let shim = files_dir().join("loopback-only.js");
    std::fs::write(&shim, LOOPBACK_ONLY).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(&p.everything)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .env("NODE_OPTIONS", format!("--require {}", shim.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It says so on stderr once it listens.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = lines
        .by_ref()
        .take(20)
        .map_while(Result::ok)
        .any(|l| l.contains("listening on port"));
    assert!(
        listening,
        "server-everything did not start in streamableHttp mode"
    );
    std::thread::spawn(move || for _ in lines {});
    // A header's value comes from a named variable (one every environment has: setting
    // one here would need `unsafe`).
    let var = "HOME";
    let mut cfg = ServerConfig::stdio("unused", &[]);
    cfg.command = None;
    cfg.url = Some(format!("http://127.0.0.1:{port}/mcp"));
    cfg.headers.insert("X-Keel-Test".into(), var.into());
    let m = own(&[("web", cfg)]);
    let tools = m.tools("web").unwrap();
    assert!(tools.iter().any(|t| t.name == "echo"));
    let out = call(&m, "web", "echo", json!({"message": "over http"})).unwrap();
    assert!(out.text.contains("over http"), "{}", out.text);
    assert_eq!(m.health()[0].transport, "http");
    m.stop_all();
    let _ = child.kill();
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(50));
}
