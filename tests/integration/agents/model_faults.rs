//! What real model servers do wrong, played by the loopback server (protocol faults only;
//! the real llama.cpp server is in `real_model`): a 400 to the `json_schema` form, prose
//! instead of JSON, an empty choice list, an answer cut at its token limit, a server that
//! goes away mid-run, and one that comes back with a smaller window; and Ollama's native
//! wire format (no Ollama server can be installed here, so it is checked on the loopback).

use std::sync::Arc;

use keel::core::agents::{AgentTask, RunOutcome, Runtime, record};
use keel::core::llm::config::{ProviderKind, RoutingConfig};
use keel::core::workspace::Workspace;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::providers::cfg;
use super::runtime::{runtime_with, workspace};
use super::server::{Reply, Server, openai_text, openai_tools};

const GOOD_IDEAS: &str = r#"{"ideas":[{"title":"Pricing guide","score":0.8,"rationale":"fits the goal","sources":[]}],"rationale":"one clear winner"}"#;

fn all_to(name: &str) -> RoutingConfig {
    RoutingConfig {
        triage: name.into(),
        draft: name.into(),
        final_: name.into(),
        cascade: false,
    }
}

fn runtime(ws: &Workspace, server: &Server) -> Runtime {
    let mut c = cfg(ProviderKind::Openai, &server.base, false);
    c.max_retries = 0;
    runtime_with(
        ws,
        &[("mock", c)],
        all_to("mock"),
        Arc::new(|_: &str, _: &str| {}),
    )
}

fn research(task: &str) -> AgentTask {
    AgentTask {
        task: task.into(),
        role: "researcher".into(),
        input: json!({"goals": ["grow subscribers"]}),
        ..AgentTask::default()
    }
}

async fn run(rt: &mut Runtime, task: &AgentTask) -> RunOutcome {
    rt.execute(task, &CancellationToken::new()).await.unwrap()
}

fn refusal(status: u16, message: &str) -> Reply {
    Reply::Json(status, vec![], json!({"error": {"message": message}}))
}

/// The model steps of a run: (fit record, output mode) each.
fn model_steps(ws: &Workspace, run: &str) -> Vec<(Value, Value)> {
    record::steps(ws.store().unwrap().conn(), run)
        .unwrap()
        .into_iter()
        .filter(|s| s.kind == "model")
        .map(|s| (s.input["fit"].clone(), s.output["output_mode"].clone()))
        .collect()
}

#[tokio::test]
async fn a_server_refusing_json_schema_gets_json_object_and_keel_remembers() {
    let (_d, ws) = workspace();
    let server = Server::start(vec![
        refusal(400, "response_format type json_schema is not supported"),
        openai_text(GOOD_IDEAS),
        openai_text(GOOD_IDEAS),
    ])
    .await;
    let mut rt = runtime(&ws, &server);
    let first = run(&mut rt, &research("t1")).await;
    assert_eq!(first.status(), "succeeded", "{first:?}");
    let form = |i: usize| server.request(i).body["response_format"]["type"].clone();
    assert_eq!(form(0), json!("json_schema"));
    let schema = &server.request(0).body["response_format"]["json_schema"];
    assert_eq!(schema["name"], json!("researcher"));
    assert!(schema["schema"]["required"].is_array(), "{schema}");
    assert_eq!(form(1), json!("json_object"));
    // The fallback is remembered: the next run starts with the form that worked.
    let second = run(&mut rt, &research("t2")).await;
    assert_eq!(second.status(), "succeeded", "{second:?}");
    assert_eq!(server.count(), 3);
    assert_eq!(form(2), json!("json_object"));
    // Every model call records the mode it used.
    let steps = model_steps(&ws, second.run());
    assert_eq!(steps[0].1, json!("json_object"));
}

#[tokio::test]
async fn an_unrelated_refusal_is_reported_and_does_not_downgrade_the_form() {
    let (_d, ws) = workspace();
    let bad_model = "model 'nope' not found";
    let server = Server::start(vec![
        refusal(400, bad_model),
        refusal(400, bad_model),
        refusal(400, bad_model),
        openai_text(GOOD_IDEAS),
    ])
    .await;
    let mut rt = runtime(&ws, &server);
    let out = run(&mut rt, &research("t1")).await;
    let RunOutcome::Failed { error, .. } = &out else {
        panic!("{out:?}")
    };
    assert!(error.contains(bad_model), "{error}");
    let ok = run(&mut rt, &research("t2")).await;
    assert_eq!(ok.status(), "succeeded", "{ok:?}");
    assert_eq!(
        server.request(3).body["response_format"]["type"],
        json!("json_schema")
    );
}

#[tokio::test]
async fn prose_around_the_json_is_read_and_pure_prose_is_repaired_then_escalated_raw() {
    let (_d, ws) = workspace();
    let chatty = format!("Sure! Here is the ranking:\n```json\n{GOOD_IDEAS}\n```\nAnything else?");
    let server = Server::start(vec![
        openai_text(&chatty),
        openai_text("Pricing guides work well for small apps."),
        openai_text("I would rank the pricing guide first."),
    ])
    .await;
    let mut rt = runtime(&ws, &server);
    let out = run(&mut rt, &research("t1")).await;
    let RunOutcome::Succeeded { output, .. } = &out else {
        panic!("{out:?}")
    };
    assert_eq!(output["ideas"][0]["title"], json!("Pricing guide"));
    let out = run(&mut rt, &research("t2")).await;
    let RunOutcome::Escalated { raw, reason, .. } = &out else {
        panic!("{out:?}")
    };
    assert_eq!(
        raw.as_deref(),
        Some("I would rank the pricing guide first.")
    );
    assert!(reason.contains("no complete JSON value"), "{reason}");
    // The repair request quoted the problem.
    let repair = server.request(2).body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(repair.contains("no complete JSON value"), "{repair}");
}

#[tokio::test]
async fn an_empty_choice_list_is_retried_not_taken_for_an_answer() {
    let (_d, ws) = workspace();
    let empty = Reply::Json(
        200,
        vec![],
        json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 0}}),
    );
    let server = Server::start(vec![
        empty.clone(),
        openai_text(GOOD_IDEAS),
        empty.clone(),
        empty,
    ])
    .await;
    let mut rt = runtime(&ws, &server);
    let out = run(&mut rt, &research("t1")).await;
    assert_eq!(out.status(), "succeeded", "{out:?}");
    let out = run(&mut rt, &research("t2")).await;
    let RunOutcome::Failed {
        error, retryable, ..
    } = &out
    else {
        panic!("{out:?}")
    };
    assert!(error.contains("no choices") && *retryable, "{error}");
}

#[tokio::test]
async fn an_answer_cut_at_its_token_limit_is_repaired_with_that_said() {
    let (_d, ws) = workspace();
    let cut = Reply::Json(
        200,
        vec![],
        json!({"choices": [{"index": 0, "message": {"role": "assistant",
            "content": "{\"ideas\": [{\"title\": \"Pricing guide\", \"rationale\": \"it goes on and on"},
            "finish_reason": "length"}], "usage": {"prompt_tokens": 10, "completion_tokens": 50}}),
    );
    let server = Server::start(vec![cut, openai_text(GOOD_IDEAS)]).await;
    let mut rt = runtime(&ws, &server);
    let out = run(&mut rt, &research("t1")).await;
    assert_eq!(out.status(), "succeeded", "{out:?}");
    let repair = server.request(1).body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(repair.contains("cut off at its token limit"), "{repair}");
}

#[tokio::test]
async fn a_server_gone_mid_run_fails_it_retryably_and_the_resume_pays_nothing_twice() {
    let (_d, ws) = workspace();
    let server = Server::start(vec![
        openai_tools(&[("c1", "memory_search", r#"{"query":"pricing"}"#)]),
        Reply::Drop,
        Reply::Drop,
    ])
    .await;
    let mut rt = runtime(&ws, &server);
    let out = run(&mut rt, &research("t1")).await;
    let RunOutcome::Failed {
        retryable, error, ..
    } = &out
    else {
        panic!("{out:?}")
    };
    assert!(*retryable, "{error}");
    assert!(!error.contains("malformed"), "{error}");
    let calls = server.count();
    server.push(openai_text(GOOD_IDEAS));
    let resumed = AgentTask {
        resume: Some(out.run().to_string()),
        ..research("t1")
    };
    let out = run(&mut rt, &resumed).await;
    assert_eq!(out.status(), "succeeded", "{out:?}");
    // Only the call that never got an answer was made again.
    assert_eq!(server.count(), calls + 1);
    let (paid,): (i64,) = ws
        .store()
        .unwrap()
        .conn()
        .query_row(
            "SELECT count(*) FROM model_calls WHERE run = ?1",
            [out.run()],
            |r| Ok((r.get(0)?,)),
        )
        .unwrap();
    assert_eq!(paid, 2, "the tool-call answer once, the final answer once");
}

#[tokio::test]
async fn a_server_back_with_a_smaller_window_is_asked_again_and_the_request_refitted() {
    let (_d, ws) = workspace();
    let server = Server::start(vec![
        Reply::Window(
            1536,
            Box::new(refusal(
                400,
                "request (3100 tokens) exceeds the available context size (1536 tokens), try increasing it",
            )),
        ),
        openai_text(GOOD_IDEAS),
    ])
    .await;
    server.serve_props(4096);
    let mut rt = runtime(&ws, &server);
    let out = run(&mut rt, &research("t1")).await;
    assert_eq!(out.status(), "succeeded", "{out:?}");
    assert_eq!(
        *server.props_asked.lock().unwrap(),
        2,
        "asked again after the refusal"
    );
    let max = |i: usize| server.request(i).body["max_tokens"].as_u64().unwrap();
    assert!(max(1) < max(0), "{} then {}", max(0), max(1));
    let steps = model_steps(&ws, out.run());
    assert_eq!(steps[0].0["window"], json!(1536), "{:?}", steps[0].0);
    let context = &record::steps(ws.store().unwrap().conn(), out.run()).unwrap()[0];
    assert_eq!(context.output["fit"]["budget"]["window"], json!(4096));
}

#[tokio::test]
async fn a_request_that_cannot_fit_the_window_is_never_sent() {
    let (_d, ws) = workspace();
    let server = Server::start(vec![openai_text(GOOD_IDEAS)]).await;
    server.serve_props(300);
    let mut rt = runtime(&ws, &server);
    let out = run(&mut rt, &research("t1")).await;
    let RunOutcome::Failed { error, .. } = &out else {
        panic!("{out:?}")
    };
    assert!(
        error.contains("context window is 300 tokens") && error.contains("not sent"),
        "{error}"
    );
    assert_eq!(server.count(), 0, "nothing was sent");
}

#[tokio::test]
async fn ollama_gets_the_schema_in_format_and_keels_window_in_num_ctx() {
    let (_d, ws) = workspace();
    let line = |v: Value| format!("{v}\n").into_bytes();
    let (head, tail) = GOOD_IDEAS.split_at(20);
    let server = Server::start(vec![Reply::Sse(vec![
        line(json!({"model": "qwen3", "message": {"role": "assistant", "content": head}, "done": false})),
        line(json!({"model": "qwen3", "message": {"role": "assistant", "content": tail}, "done": false})),
        line(json!({"model": "qwen3", "message": {"content": ""}, "done": true, "done_reason": "stop",
            "prompt_eval_count": 321, "eval_count": 45})),
    ])])
    .await;
    let mut c = cfg(ProviderKind::Ollama, &server.base, true);
    c.api_key_env = String::new();
    c.context_tokens = 8192;
    let mut reg = keel::core::llm::Registry::from_config(
        &std::iter::once(("ol".to_string(), c)).collect(),
        &all_to("ol"),
    )
    .await
    .unwrap();
    reg.routing = all_to("ol");
    let mut rt = keel::core::agents::service::runtime_with(
        &ws,
        Arc::new(keel::core::clock::ManualClock::at(1_800_000_000_000)),
        Arc::new(|_: &str, _: &str| {}),
        reg,
    )
    .unwrap();
    let out = run(&mut rt, &research("t1")).await;
    assert_eq!(out.status(), "succeeded", "{out:?}");
    let req = server.request(0);
    assert_eq!(req.path, "/api/chat");
    assert_eq!(req.body["options"]["num_ctx"], json!(8192));
    assert_eq!(
        req.body["format"]["required"],
        json!(["ideas", "rationale"])
    );
    let run_row = record::load_run(ws.store().unwrap().conn(), out.run())
        .unwrap()
        .unwrap();
    assert_eq!((run_row.tokens_in, run_row.tokens_out), (321, 45));
}
