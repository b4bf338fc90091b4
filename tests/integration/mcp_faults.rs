//! MCP servers that fail: not installed, exiting at once, a call that hangs, a crash in the
//! middle of a call (the next call restarts the server), and two protocol faults that no
//! real server produces on purpose (a tool schema that is not JSON Schema, non-UTF-8
//! output), played by a small script. Every error names the server.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::mcp_peers::{call, own, peers, stdio};
use keel::core::mcp::{McpError, ServerConfig};

#[test]
fn a_server_that_is_not_installed_is_named() {
    let m = own(&[("ghost", ServerConfig::stdio("keel-no-such-mcp-server", &[]))]);
    let err = m.tools("ghost").unwrap_err().to_string();
    assert!(
        err.contains("MCP server \"ghost\" could not start"),
        "{err}"
    );
    assert!(
        err.contains("\"keel-no-such-mcp-server\" was not found"),
        "{err}"
    );
    let err = call(&m, "ghost", "x", json!({})).unwrap_err();
    assert_eq!(err.server(), "ghost");
}

#[test]
fn a_server_that_exits_at_once_says_why_and_backs_off() {
    let Some(p) = peers() else { return };
    // A real server given a flag it does not know: argparse prints usage and exits.
    let m = own(&[("time", stdio(&p.time, &["--no-such-flag"]))]);
    let err = m.tools("time").unwrap_err().to_string();
    assert!(err.contains("MCP server \"time\" could not start"), "{err}");
    assert!(
        err.contains("unrecognized arguments: --no-such-flag"),
        "stderr is quoted: {err}"
    );
    // The first retry is immediate; it fails again, and then the server backs off.
    let _ = m.tools("time").unwrap_err();
    let err = m.tools("time").unwrap_err();
    assert!(matches!(err, McpError::BackingOff { .. }), "{err}");
    assert_eq!(m.health()[0].state, "failed");
}

#[test]
fn a_hung_call_times_out_and_the_server_stays_usable() {
    let Some(p) = peers() else { return };
    let mut cfg = stdio(&p.everything, &["stdio"]);
    cfg.timeout_secs = 1.0;
    let m = own(&[("slow", cfg)]);
    let started = Instant::now();
    let err = call(
        &m,
        "slow",
        "trigger-long-running-operation",
        json!({"duration": 30, "steps": 3}),
    )
    .unwrap_err();
    assert!(matches!(err, McpError::Timeout { .. }), "{err}");
    assert!(
        err.to_string().contains("\"slow\"") && err.to_string().contains("within 1 s"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "startup plus one second, not thirty"
    );
    let out = call(&m, "slow", "echo", json!({"message": "still here"})).unwrap();
    assert!(out.text.contains("still here"));
    assert_eq!(m.health()[0].restarts, 0, "a timeout is not a crash");
}

#[test]
fn a_crash_mid_call_is_reported_and_the_next_call_restarts_the_server() {
    let Some(p) = peers() else { return };
    let m = own(&[("everything", stdio(&p.everything, &["stdio"]))]);
    let first = m.server("everything").unwrap().clone();
    let _ = m.tools("everything").unwrap();
    let pid = first.status().pid.expect("a stdio server has a pid");
    let caller = {
        let m = m.clone();
        std::thread::spawn(move || {
            call(
                &m,
                "everything",
                "trigger-long-running-operation",
                json!({"duration": 20, "steps": 4}),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(800));
    // SIGKILL: the server dies in the middle of the call.
    assert_eq!(unsafe_free_kill(pid), 0, "kill {pid}");
    let err = caller.join().unwrap().unwrap_err();
    assert!(matches!(err, McpError::Crashed { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("MCP server \"everything\" stopped"),
        "{err}"
    );
    assert_eq!(m.health()[0].state, "crashed");
    let out = call(&m, "everything", "echo", json!({"message": "back"})).unwrap();
    assert!(out.text.contains("back"));
    let row = &m.health()[0];
    assert_eq!((row.state.as_str(), row.restarts), ("ready", 1), "{row:?}");
    assert_ne!(first.status().pid, Some(pid), "a new process");
}

/// `kill -9 PID` through the real `kill` program (the crate denies unsafe code).
fn unsafe_free_kill(pid: u32) -> i32 {
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .map_or(-1, |s| s.code().unwrap_or(-1))
}

/// A protocol-fault server: valid handshake, one tool whose schema is not JSON Schema, and
/// one tool whose answer is not UTF-8.
const FAULTY: &str = r#"
import sys, json
for line in sys.stdin.buffer:
    msg = json.loads(line)
    if "id" not in msg:
        continue
    method, rid = msg["method"], msg["id"]
    if method == "initialize":
        res = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
               "serverInfo": {"name": "faulty", "version": "0"}}
    elif method == "tools/list":
        res = {"tools": [
            {"name": "bad_schema", "inputSchema": {"type": "object", "properties": {"x": {"type": 12}}}},
            {"name": "garble", "inputSchema": {"type": "object"}}]}
    elif method == "tools/call":
        sys.stdout.buffer.write(b'{"jsonrpc":"2.0","id":' + str(rid).encode() +
            b',"result":{"content":[{"type":"text","text":"\xff\xfe bad bytes"}]}}\n')
        sys.stdout.buffer.flush()
        continue
    else:
        res = {}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": rid, "result": res}) + "\n")
    sys.stdout.flush()
"#;

fn faulty() -> std::sync::Arc<keel::core::mcp::Manager> {
    let dir = crate::mcp_peers::files_dir();
    let script = dir.join("faulty_mcp.py");
    std::fs::write(&script, FAULTY).unwrap();
    let mut cfg = ServerConfig::stdio("python3", &[script.to_str().unwrap()]);
    cfg.timeout_secs = 3.0;
    own(&[("faulty", cfg)])
}

#[test]
fn a_tool_schema_that_is_not_json_schema_makes_that_tool_unusable() {
    let m = faulty();
    let tools = m.tools("faulty").unwrap();
    let bad = tools.iter().find(|t| t.name == "bad_schema").unwrap();
    assert!(bad.schema_error.is_some());
    let err = call(&m, "faulty", "bad_schema", json!({"x": 1}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("MCP server \"faulty\": tool \"bad_schema\" has an input schema that is not valid JSON Schema"), "{err}");
}

#[test]
fn non_utf8_output_is_an_error_naming_the_server() {
    let m = faulty();
    let err = call(&m, "faulty", "garble", json!({})).unwrap_err();
    assert_eq!(err.server(), "faulty", "{err}");
    eprintln!("non-UTF-8 output: {err}");
}

/// A server that answers the handshake with the protocol revision given as its argument and
/// offers one tool, `hello`.
const REVISION: &str = r#"
import sys, json
version = sys.argv[1]
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg:
        continue
    method, rid = msg["method"], msg["id"]
    if method == "initialize":
        res = {"protocolVersion": version, "capabilities": {"tools": {}},
               "serverInfo": {"name": "old", "version": "0"}}
    elif method == "tools/list":
        res = {"tools": [{"name": "hello", "inputSchema": {"type": "object"}}]}
    elif method == "tools/call":
        res = {"content": [{"type": "text", "text": "hello from " + version}]}
    else:
        res = {}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": rid, "result": res}) + "\n")
    sys.stdout.flush()
"#;

fn speaking(version: &str) -> std::sync::Arc<keel::core::mcp::Manager> {
    let script = crate::mcp_peers::files_dir().join("revision_mcp.py");
    std::fs::write(&script, REVISION).unwrap();
    let mut cfg = ServerConfig::stdio("python3", &[script.to_str().unwrap(), version]);
    cfg.startup_timeout_secs = 5.0;
    own(&[("old", cfg)])
}

/// The first published revision (2024-11-05) is still spoken; a revision no SDK knows is
/// refused at the handshake with an error naming the server, and nothing is called.
#[test]
fn an_older_protocol_revision_works_and_an_unknown_one_is_refused_naming_the_server() {
    let m = speaking("2024-11-05");
    let out = call(&m, "old", "hello", json!({})).unwrap();
    assert_eq!(out.text, "hello from 2024-11-05");

    let m = speaking("1999-01-01");
    match call(&m, "old", "hello", json!({})) {
        Err(e) => {
            let text = e.to_string();
            assert_eq!(e.server(), "old", "{text}");
            assert!(
                text.contains("\"1999-01-01\"") && text.contains("2024-11-05"),
                "{text}"
            );
        }
        Ok(out) => panic!("an unknown protocol revision was accepted: {out:?}"),
    }
}
