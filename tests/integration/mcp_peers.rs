//! The real MCP servers the MCP tests talk to, installed pinned by `.ci/mcp-install` into
//! `~/.cache/keel/mcp` (npm: server-everything, server-filesystem; the Python registry:
//! mcp-server-time,
//! mcp-server-fetch). Without them the tests say so and pass, except under CI (`CI=true`),
//! where they fail. One shared manager starts each server once for this test binary; tests
//! that kill or hang a server get their own.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use keel::core::mcp::{Manager, McpCall, McpConfig, McpError, McpOutcome, ServerConfig, call_tool};
use serde_json::Value;

/// Where the servers' programs are.
pub struct Peers {
    pub everything: PathBuf,
    pub filesystem: PathBuf,
    pub time: PathBuf,
    pub fetch: PathBuf,
}

fn install_dir() -> PathBuf {
    std::env::var_os("KEEL_MCP_DIR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/keel/mcp"),
        PathBuf::from,
    )
}

/// The installed servers, or `None` with a note (a failure under CI).
pub fn peers() -> Option<&'static Peers> {
    static PEERS: OnceLock<Option<Peers>> = OnceLock::new();
    PEERS
        .get_or_init(|| {
            let dir = install_dir();
            let bin = dir.join("node/node_modules/.bin");
            let venv = dir.join("venv/bin");
            let p = Peers {
                everything: bin.join("mcp-server-everything"),
                filesystem: bin.join("mcp-server-filesystem"),
                time: venv.join("mcp-server-time"),
                fetch: venv.join("mcp-server-fetch"),
            };
            let missing: Vec<String> = [&p.everything, &p.filesystem, &p.time, &p.fetch]
                .iter()
                .filter(|b| !b.exists())
                .map(|b| b.display().to_string())
                .collect();
            if missing.is_empty() {
                return Some(p);
            }
            let why = format!(
                "MCP test servers missing ({}); run .ci/mcp-install",
                missing.join(", ")
            );
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must run the MCP tests: {why}"
            );
            eprintln!("MCP tests skipped: {why}");
            None
        })
        .as_ref()
}

pub fn stdio(program: &std::path::Path, args: &[&str]) -> ServerConfig {
    ServerConfig::stdio(&program.display().to_string(), args)
}

/// A directory the filesystem server may read, with a known file in it.
pub fn files_dir() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("hello.txt"), "hello from keel's test\n").unwrap();
        std::fs::write(root.join("big.txt"), "x".repeat(3 << 20)).unwrap();
        (dir, root)
    })
    .1
}

/// The shared manager: everything, filesystem, time and fetch, each started once.
pub fn shared() -> Option<&'static Manager> {
    static SHARED: OnceLock<Option<Manager>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let p = peers()?;
            let mut config = McpConfig::default();
            config
                .servers
                .insert("everything".into(), stdio(&p.everything, &["stdio"]));
            let fs = files_dir().display().to_string();
            config
                .servers
                .insert("filesystem".into(), stdio(&p.filesystem, &[fs.as_str()]));
            config
                .servers
                .insert("time".into(), stdio(&p.time, &["--local-timezone", "UTC"]));
            config.servers.insert(
                "fetch".into(),
                stdio(&p.fetch, &["--ignore-robots-txt", "--allow-private-ips"]),
            );
            Some(Manager::new(&config, files_dir()).unwrap())
        })
        .as_ref()
}

/// A manager of its own for one test (servers it kills or hangs).
pub fn own(servers: &[(&str, ServerConfig)]) -> Arc<Manager> {
    let mut config = McpConfig::default();
    for (name, cfg) in servers {
        config.servers.insert((*name).to_string(), cfg.clone());
    }
    Arc::new(Manager::new(&config, files_dir()).unwrap())
}

pub fn call(m: &Manager, server: &str, tool: &str, args: Value) -> Result<McpOutcome, McpError> {
    call_tool(
        m,
        &McpCall {
            server: server.into(),
            tool: tool.into(),
            arguments: args,
        },
    )
}

/// A one-page HTTP server on 127.0.0.1 (for mcp-server-fetch); returns its URL.
pub fn page_server(html: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/page", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        // Bounded: a handful of requests (the page, perhaps robots.txt), then it stops.
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                html.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(html.as_bytes());
        }
    });
    url
}
