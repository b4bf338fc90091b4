//! The MCP client against real reference servers (see `mcp_peers`): tools listed with their
//! schemas, calls through `call_tool` (the one path), and `keel mcp list|tools|call`.

use std::fmt::Write as _;

use serde_json::json;

use crate::mcp_peers::{call, files_dir, page_server, peers, shared};
use crate::support::{keel, temp_workspace};

#[test]
fn everything_lists_tools_with_schemas_and_echoes() {
    let Some(m) = shared() else { return };
    let tools = m.tools("everything").unwrap();
    let echo = tools
        .iter()
        .find(|t| t.name == "echo")
        .expect("echo listed");
    assert_eq!(echo.input_schema["required"], json!(["message"]));
    assert_eq!(echo.annotations["readOnlyHint"], true);
    assert!(echo.schema_error.is_none());
    let out = call(m, "everything", "echo", json!({"message": "hi keel"})).unwrap();
    assert!(!out.is_error);
    assert!(out.text.contains("hi keel"), "{}", out.text);
    let sum = call(m, "everything", "get-sum", json!({"a": 2, "b": 40})).unwrap();
    assert!(sum.text.contains("42"), "{}", sum.text);
}

#[test]
fn arguments_are_checked_against_the_schema_before_sending() {
    let Some(m) = shared() else { return };
    let err = call(m, "everything", "echo", json!({"message": 7}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"everything\"") && err.contains("bad arguments for echo"),
        "{err}"
    );
    let err = call(m, "everything", "no-such-tool", json!({}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has no tool \"no-such-tool\"") && err.contains("echo"),
        "{err}"
    );
}

#[test]
fn time_gives_the_current_time() {
    let Some(m) = shared() else { return };
    let out = call(m, "time", "get_current_time", json!({"timezone": "UTC"})).unwrap();
    assert!(!out.is_error, "{}", out.text);
    let v: serde_json::Value = serde_json::from_str(&out.text).unwrap();
    assert_eq!(v["timezone"], "UTC");
    assert!(v["datetime"].as_str().unwrap().starts_with("20"), "{v}");
}

#[test]
fn filesystem_reads_a_file_and_refuses_outside_its_directory() {
    let Some(m) = shared() else { return };
    let path = files_dir().join("hello.txt").display().to_string();
    let out = call(m, "filesystem", "read_text_file", json!({"path": path})).unwrap();
    assert!(out.text.contains("hello from keel's test"), "{}", out.text);
    // Refused by the server: a tool error (isError) or a JSON-RPC error, never the file.
    match call(
        m,
        "filesystem",
        "read_text_file",
        json!({"path": "/etc/hostname"}),
    ) {
        Ok(outside) => assert!(outside.is_error, "{}", outside.text),
        Err(e) => assert_eq!(e.server(), "filesystem", "{e}"),
    }
}

#[test]
fn a_result_over_the_limit_is_refused_naming_the_server() {
    let Some(m) = shared() else { return };
    let path = files_dir().join("big.txt").display().to_string();
    let err = call(m, "filesystem", "read_text_file", json!({"path": path}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"filesystem\"") && err.contains("max_result_bytes"),
        "{err}"
    );
}

#[test]
fn fetch_reads_a_loopback_page() {
    let Some(m) = shared() else { return };
    let url = page_server(
        "<html><head><title>Keel</title></head><body><h1>Pricing notes</h1><p>Consultants charge by value.</p></body></html>",
    );
    let out = call(m, "fetch", "fetch", json!({"url": url})).unwrap();
    assert!(!out.is_error, "{}", out.text);
    assert!(
        out.text.contains("Consultants charge by value"),
        "{}",
        out.text
    );
}

#[test]
fn cli_lists_servers_tools_and_calls_one() {
    let Some(p) = peers() else { return };
    let (_d, ws) = temp_workspace();
    let mut text = std::fs::read_to_string(ws.join("config.toml")).unwrap();
    text = text.replace("servers = {}\n", "");
    write!(text,
        "\n[mcp.servers.everything]\ncommand = {:?}\nargs = [\"stdio\"]\n\n[mcp.servers.missing]\ncommand = \"keel-no-such-mcp-server\"\n",
        p.everything.display().to_string()
    )
    .unwrap();
    std::fs::write(ws.join("config.toml"), text).unwrap();
    let out = keel(&ws, &["mcp", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "a server that cannot start fails the listing"
    );
    assert!(
        listed.contains("everything") && listed.contains("ready"),
        "{listed}"
    );
    assert!(
        listed.contains("\"keel-no-such-mcp-server\" was not found"),
        "{listed}"
    );
    let out = keel(&ws, &["mcp", "tools", "everything"]);
    let tools = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && tools.contains("mcp:everything/echo [read-only"),
        "{tools}"
    );
    let out = keel(
        &ws,
        &[
            "mcp",
            "call",
            "everything",
            "echo",
            "--args",
            r#"{"message":"from the CLI"}"#,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("from the CLI"));
    let out = keel(&ws, &["mcp", "call", "nope", "echo"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("MCP server \"nope\" is not configured"),
        "{err}"
    );
    // The Health query lists the configured servers without starting them.
    let opened = keel::core::workspace::Workspace::open(&ws).unwrap();
    let store = opened.store().unwrap();
    let health = keel::core::health::report(&opened, store.conn()).unwrap();
    let names: Vec<(&str, &str)> = health
        .mcp_servers
        .iter()
        .map(|s| (s.name.as_str(), s.state.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![("everything", "not started"), ("missing", "not started")]
    );
}

#[test]
fn a_bad_server_entry_names_file_line_and_column() {
    let (_d, ws) = temp_workspace();
    let mut text = std::fs::read_to_string(ws.join("config.toml")).unwrap();
    text = text.replace("servers = {}\n", "");
    text.push_str(
        "\n[mcp.servers.leaky]\ncommand = \"x\"\nenv = { TOKEN = \"sk-live-not-a-name\" }\n",
    );
    std::fs::write(ws.join("config.toml"), &text).unwrap();
    let out = keel(&ws, &["mcp", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .position(|l| l == "[mcp.servers.leaky]")
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("config.toml:{line}:1: MCP server \"leaky\"")),
        "{err}"
    );
    assert!(
        err.contains("env.TOKEN is not an environment variable's name"),
        "{err}"
    );
    assert!(
        !err.contains("sk-live-not-a-name"),
        "the pasted value is never repeated: {err}"
    );
}
