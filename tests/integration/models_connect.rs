//! `keel models connect` and the providers' health figures. The success path runs against a
//! real llama.cpp server; a loopback fake only ever plays a server that is wrong (a refused
//! key, an empty model list) or absent.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::MutexGuard;

use keel::core::config::Config;
use keel::core::llm::connect::{self, ConnectError, LocalServer};
use serde_json::Value;

use crate::support::{keel, keel_bin, keel_json, stderr, temp_workspace};

/// The shared real llama.cpp server (started once for this binary) as its root URL (no
/// `/v1`), with this test's turn at its one slot; `None` when it is not installed here
/// (`crate::real_model` says so, and fails under `CI=true`).
fn real_server() -> Option<(String, MutexGuard<'static, ()>)> {
    crate::real_model::server().map(|(s, turn)| (s.root_url(), turn))
}

/// `n_ctx` and `total_slots` as the real server reports them.
fn real_limits(root: &str) -> (u64, u64) {
    let props: Value = reqwest::blocking::get(format!("{root}/props"))
        .unwrap()
        .json()
        .unwrap();
    (
        props["default_generation_settings"]["n_ctx"]
            .as_u64()
            .unwrap(),
        props["total_slots"].as_u64().unwrap(),
    )
}

fn keel_env(ws: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(keel_bin());
    cmd.arg("--workspace")
        .arg(ws)
        .args(args)
        .env_remove("KEEL_WORKSPACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server that answers every request with `status` and `body` (a broken or unfriendly
/// server), until the test ends.
fn fixed_server(status: u16, body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut sock in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                sock,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn connect_writes_the_provider_and_routing_and_its_test_call_passes_the_schema() {
    let Some((root, _turn)) = real_server() else {
        return;
    };
    let (n_ctx, slots) = real_limits(&root);
    let (_d, ws) = temp_workspace();
    let template = std::fs::read_to_string(ws.join("config.toml")).unwrap();
    // The root URL, without /v1: keel finds the API under it.
    let report = keel_json(&ws, &["models", "connect", &root, "--json"]);
    assert_eq!(report["server"], "llama.cpp", "{report}");
    assert_eq!(report["base_url"], format!("{root}/v1"));
    assert_eq!(report["name"], "local");
    assert_eq!(report["window"]["tokens"], n_ctx);
    assert_eq!(report["window"]["source"], "llama.cpp /props n_ctx");
    assert_eq!(report["slots"]["max_concurrent"], slots);
    assert_eq!(report["written"], true);
    let call = &report["test"];
    assert_eq!(call["output_mode"], "json_schema", "{report}");
    assert_eq!(call["matches_schema"], true, "{report}");
    assert!(call["latency_ms"].as_u64().unwrap() > 0);
    assert!(call["parsed"]["ok"].is_boolean(), "{report}");

    // The file: the section and the tiers, every other line as it was, and it loads.
    let text = std::fs::read_to_string(ws.join("config.toml")).unwrap();
    for line in template.lines() {
        if !(line.starts_with("draft = ") || line.starts_with("final = ")) {
            assert!(text.contains(line), "lost {line:?}:\n{text}");
        }
    }
    assert!(
        text.contains("# Written by `keel models connect`"),
        "{text}"
    );
    assert!(text.contains("llama.cpp /props n_ctx"), "{text}");
    let config = Config::load(&ws.join("config.toml")).unwrap();
    let local = &config.providers["local"];
    assert_eq!(local.base_url, format!("{root}/v1"));
    assert_eq!(local.model, report["model"].as_str().unwrap());
    assert_eq!(
        (
            config.routing.triage.as_str(),
            config.routing.draft.as_str(),
            config.routing.final_.as_str()
        ),
        ("offline", "local", "local")
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("config.toml.bak")).unwrap(),
        template
    );

    // Health as `keel doctor` prints it: the window, slots and server of the new provider.
    let doctor = keel(&ws, &["doctor", "--json"]);
    let doctor: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let row = doctor["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "local")
        .unwrap_or_else(|| panic!("{doctor}"))
        .clone();
    assert!(
        row["status"].as_str().unwrap().starts_with("reachable"),
        "{row}"
    );
    assert_eq!(row["window"]["tokens"], n_ctx);
    assert_eq!(row["slots"]["max_concurrent"], slots);
    assert_eq!(row["server"], "llama.cpp");
    let offline = doctor["providers"][0].clone();
    assert!(offline.get("window").is_none(), "{offline}");
}

#[test]
fn a_dry_run_shows_the_change_and_writes_nothing() {
    let Some((root, _turn)) = real_server() else {
        return;
    };
    let (_d, ws) = temp_workspace();
    let before = std::fs::read_to_string(ws.join("config.toml")).unwrap();
    let report = keel_json(
        &ws,
        &[
            "models",
            "connect",
            &format!("{root}/v1"),
            "--name",
            "smol",
            "--tiers",
            "triage",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(report["written"], false);
    assert!(report.get("test").is_none(), "no test call: {report}");
    let diff = report["diff"].as_str().unwrap();
    assert!(diff.contains("+[providers.smol]"), "{diff}");
    assert!(diff.contains("+triage = \"smol\""), "{diff}");
    assert!(!diff.contains("+draft"), "{diff}");
    assert_eq!(
        std::fs::read_to_string(ws.join("config.toml")).unwrap(),
        before
    );
    assert!(!ws.join("config.toml.bak").exists());
}

#[test]
fn a_config_that_does_not_load_is_left_alone() {
    let (_d, ws) = temp_workspace();
    let root = format!("http://127.0.0.1:{}", dead_port());
    // Valid TOML that the workspace refuses: the editor must not "fix" it.
    let broken = "[routing]\ndraft = \"offline\"\nbogus = 1\n";
    std::fs::write(ws.join("config.toml"), broken).unwrap();
    let out = keel(&ws, &["models", "connect", &root]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bogus"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(ws.join("config.toml")).unwrap(),
        broken
    );
}

#[test]
fn local_ports_are_tried_in_order_and_the_first_that_answers_wins() {
    let Some((root, _turn)) = real_server() else {
        return;
    };
    let real: u16 = root.rsplit(':').next().unwrap().parse().unwrap();
    let dead = dead_port();
    let server = |port, name| LocalServer {
        port,
        name,
        start: "start it",
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let found = rt
        .block_on(connect::probe_local_on(
            "127.0.0.1",
            &[server(dead, "first"), server(real, "second")],
        ))
        .unwrap();
    assert_eq!(found.base, format!("http://127.0.0.1:{real}/v1"));
    assert!(!found.models.is_empty());
}

#[test]
fn nothing_answering_lists_the_ports_tried_and_what_to_start() {
    let (a, b) = (dead_port(), dead_port());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tried = [
        LocalServer {
            port: a,
            name: "Ollama",
            start: "ollama serve",
        },
        LocalServer {
            port: b,
            name: "llama.cpp",
            start: "llama-server -m MODEL.gguf --port 8080",
        },
    ];
    let err = rt
        .block_on(connect::probe_local_on("127.0.0.1", &tried))
        .unwrap_err();
    assert!(matches!(err, ConnectError::NothingLocal { .. }));
    let msg = err.to_string();
    for t in &tried {
        assert!(
            msg.contains(&t.port.to_string()) && msg.contains(t.start),
            "{msg}"
        );
    }
    assert!(
        msg.contains("keel models connect http://HOST:PORT"),
        "{msg}"
    );

    // The same through the command, with a URL: it names the address and writes nothing.
    let (_d, ws) = temp_workspace();
    let before = std::fs::read_to_string(ws.join("config.toml")).unwrap();
    let url = format!("http://127.0.0.1:{a}");
    let out = keel(&ws, &["models", "connect", &url]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("nothing answered at") && err.contains(&url),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("config.toml")).unwrap(),
        before
    );
}

#[test]
fn a_refused_key_names_its_variable_and_never_the_key() {
    let port = fixed_server(
        401,
        r#"{"error":{"message":"Incorrect API key provided: sk-test-1234567890"}}"#,
    );
    let (_d, ws) = temp_workspace();
    let before = std::fs::read_to_string(ws.join("config.toml")).unwrap();
    let url = format!("http://127.0.0.1:{port}/v1");
    let out = keel_env(
        &ws,
        &[
            "models",
            "connect",
            &url,
            "--key-env",
            "KEEL_TEST_CONNECT_KEY",
        ],
        &[("KEEL_TEST_CONNECT_KEY", "sk-test-1234567890")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("refused the key in $KEEL_TEST_CONNECT_KEY") && err.contains("401"),
        "{err}"
    );
    let all = format!("{err}{}", String::from_utf8_lossy(&out.stdout));
    assert!(!all.contains("sk-test-1234567890"), "{all}");
    assert_eq!(
        std::fs::read_to_string(ws.join("config.toml")).unwrap(),
        before
    );

    // Without --key-env the same server says a key is wanted and how to give one.
    let out = keel(&ws, &["models", "connect", &url]);
    assert!(stderr(&out).contains("--key-env VAR"), "{}", stderr(&out));
}

#[test]
fn hosted_apis_need_a_key_variable_that_is_set() {
    let (_d, ws) = temp_workspace();
    let out = keel(&ws, &["models", "connect", "https://api.openai.com/v1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("hosted API: pass --key-env VAR"),
        "{}",
        stderr(&out)
    );
    let out = keel_env(
        &ws,
        &[
            "models",
            "connect",
            "https://api.openai.com/v1",
            "--key-env",
            "KEEL_TEST_SURELY_UNSET_KEY",
        ],
        &[],
    );
    assert!(
        stderr(&out).contains("KEEL_TEST_SURELY_UNSET_KEY (--key-env) is not set"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_empty_model_list_and_an_unknown_model_are_explained() {
    let (_d, ws) = temp_workspace();
    let empty = fixed_server(200, r#"{"object":"list","data":[]}"#);
    let out = keel(
        &ws,
        &["models", "connect", &format!("http://127.0.0.1:{empty}")],
    );
    assert!(stderr(&out).contains("lists no models"), "{}", stderr(&out));
    let two = fixed_server(200, r#"{"data":[{"id":"alpha"},{"id":"beta"}]}"#);
    let out = keel(
        &ws,
        &[
            "models",
            "connect",
            &format!("http://127.0.0.1:{two}/v1"),
            "--model",
            "gamma",
        ],
    );
    let err = stderr(&out);
    assert!(
        err.contains("does not serve the model \"gamma\"") && err.contains("alpha, beta"),
        "{err}"
    );
}

#[test]
fn health_shows_the_newest_calls_latency_and_output_mode() {
    // The loopback model server stands in for a model here: this is about what Health
    // reads back from the recorded calls, not about the server.
    let model = crate::model_server::ModelServer::start();
    let (_d, ws) = temp_workspace();
    std::fs::write(ws.join("config.toml"), model.config()).unwrap();
    let run = keel(
        &ws,
        &[
            "agents",
            "run",
            "scheduler",
            "--json",
            "--input",
            r#"{"tasks":[{"title":"write","minutes":60}]}"#,
        ],
    );
    let outcome: Value = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|_| panic!("{}{}", String::from_utf8_lossy(&run.stdout), stderr(&run)));
    // Succeeded or escalated, the calls were made and recorded.
    assert!(outcome["run"].is_string(), "{outcome}");
    let doctor = keel(&ws, &["doctor", "--json"]);
    let doctor: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let row = doctor["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "loop")
        .unwrap_or_else(|| panic!("{doctor}"))
        .clone();
    assert!(row["last_latency_ms"].as_u64().is_some(), "{row}");
    assert_eq!(row["output_mode"], "json_schema", "{row}");
    assert!(row["window"]["tokens"].as_u64().is_some(), "{row}");
}
