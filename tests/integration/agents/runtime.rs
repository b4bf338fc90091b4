//! The runtime against the loopback server: tool loop, capability refusals (audited),
//! schema repair and escalation, budget stop and resume, resume without paying twice,
//! cascade, streaming to the run sink, and replay equality.

use std::sync::Arc;

use keel::core::agents::cost::{self, By};
use keel::core::agents::local_host::put_version;
use keel::core::agents::runtime::RunSink;
use keel::core::agents::{AgentTask, RunOutcome, Runtime, record, service};
use keel::core::audit::{self, Actor, Filter};
use keel::core::clock::ManualClock;
use keel::core::llm::config::{ProviderKind, RoutingConfig};
use keel::core::llm::openai::OpenAi;
use keel::core::llm::{ProviderConfig, Registry};
use keel::core::workspace::Workspace;
use keel::protocol::Event;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::providers::cfg;
use super::server::{Reply, Server, openai_text, openai_text_stream, openai_tools};

pub fn workspace() -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::init(&dir.path().join("ws")).unwrap();
    (dir, ws)
}

fn routing(all: &str) -> RoutingConfig {
    RoutingConfig {
        triage: all.into(),
        draft: all.into(),
        final_: all.into(),
        cascade: false,
    }
}

pub fn runtime_with(
    ws: &Workspace,
    providers: &[(&str, ProviderConfig)],
    routing: RoutingConfig,
    sink: RunSink,
) -> Runtime {
    let mut reg = Registry::offline_only();
    for (name, c) in providers {
        reg.insert(
            name,
            Arc::new(OpenAi::new(name, c).unwrap()),
            "openai",
            "test",
        );
    }
    reg.routing = routing;
    service::runtime_with(ws, Arc::new(ManualClock::at(1_800_000_000_000)), sink, reg).unwrap()
}

fn mock_runtime(ws: &Workspace, server: &Server) -> Runtime {
    let mut c = cfg(ProviderKind::Openai, &server.base, false);
    c.max_retries = 0;
    runtime_with(
        ws,
        &[("mock", c)],
        routing("mock"),
        Arc::new(|_: &str, _: &str| {}),
    )
}

fn seed(ws: &Workspace, kind: &str, id: &str, body: &Value) {
    let mut store = ws.store().unwrap();
    store
        .write(|tx| put_version(tx, 1, &Actor::Operator, kind, id, None, body))
        .unwrap();
}

fn task(role: &str, input: Value) -> AgentTask {
    AgentTask {
        task: format!("task-{role}"),
        role: role.into(),
        input,
        ..AgentTask::default()
    }
}

const GOOD_IDEAS: &str = r#"{"ideas":[{"title":"Pricing guide","score":0.8,"rationale":"fits the goal","sources":["idea/p"]}],"rationale":"one clear winner"}"#;

fn audit_count(ws: &Workspace, action: &str) -> usize {
    let store = ws.store().unwrap();
    audit::query(
        store.conn(),
        &Filter {
            action: Some(action.into()),
            ..Filter::default()
        },
        100,
        true,
    )
    .unwrap()
    .len()
}

#[tokio::test]
async fn tool_loop_with_parallel_calls_then_output_written_as_agent_version() {
    let (_d, ws) = workspace();
    seed(
        &ws,
        "idea",
        "p",
        &json!({"title": "Pricing guide for consultants"}),
    );
    let server = Server::start(vec![
        openai_tools(&[
            ("c1", "memory_search", r#"{"query":"pricing"}"#),
            ("c2", "object_read", r#"{"kind":"idea","id":"p"}"#),
        ]),
        openai_text(GOOD_IDEAS),
    ])
    .await;
    let mut rt = mock_runtime(&ws, &server);
    let out = rt
        .execute(
            &task("researcher", json!({"goals": ["pricing leads"]})),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let RunOutcome::Succeeded {
        run,
        object: Some(obj),
        ..
    } = &out
    else {
        panic!("{out:?}")
    };
    // The second request carries both tool results, with provenance from memory.
    let second = server.request(1);
    let msgs = second.body["messages"].as_array().unwrap();
    let tools: Vec<&Value> = msgs.iter().filter(|m| m["role"] == "tool").collect();
    assert_eq!(tools.len(), 2);
    assert!(tools[0]["content"].as_str().unwrap().contains("idea/p"));
    assert!(
        tools[1]["content"]
            .as_str()
            .unwrap()
            .contains("Pricing guide for consultants")
    );
    // Output is a new object version authored by the run.
    let store = ws.store().unwrap();
    let author: String = store
        .conn()
        .query_row(
            "SELECT author FROM object_versions WHERE kind = ?1 AND id = ?2",
            [&obj.kind, &obj.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(author, format!("agent:{run}"));
    let rec = record::load_run(store.conn(), run).unwrap().unwrap();
    assert_eq!((rec.tokens_in, rec.tokens_out), (200, 30));
    // The console's preview of the run is the whole answer, not a cut of it.
    assert_eq!(rec.output_preview, GOOD_IDEAS);
    assert!(rec.cost_usd > 0.0);
    let kinds: Vec<String> = record::steps(store.conn(), run)
        .unwrap()
        .into_iter()
        .map(|s| s.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "context", "route", "model", "tool", "tool", "model", "output"
        ]
    );
    let calls: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM model_calls WHERE run = ?1",
            [run],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(calls, 2);
    let by_role = cost::spend(store.conn(), By::Role, None).unwrap();
    assert_eq!(
        (
            by_role[0].key.as_str(),
            by_role[0].calls,
            by_role[0].tokens_in
        ),
        ("researcher", 2, 200)
    );
    assert!((by_role[0].cost_usd - rec.cost_usd).abs() < 1e-12);
    assert_eq!(
        cost::spend(store.conn(), By::Task, None).unwrap()[0].key,
        "task-researcher"
    );
    assert!(audit::verify(store.conn()).unwrap().first_broken.is_none());
}

#[tokio::test]
async fn tools_and_kinds_outside_the_profile_are_refused_and_audited() {
    let (_d, ws) = workspace();
    let server = Server::start(vec![
        openai_tools(&[
            (
                "c1",
                "object_write",
                r#"{"kind":"idea","id":"x","body":{}}"#,
            ),
            ("c2", "object_read", r#"{"kind":"invoice","id":"1"}"#),
            (
                "c3",
                "memory_search",
                r#"{"query":"q","kinds":["contract"]}"#,
            ),
            ("c4", "shell_exec", r#"{"cmd":"rm -rf /"}"#),
        ]),
        openai_text(GOOD_IDEAS),
    ])
    .await;
    let mut rt = mock_runtime(&ws, &server);
    let out = rt
        .execute(
            &task("researcher", json!({"goals": ["g"]})),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(out.status(), "succeeded", "{out:?}");
    assert_eq!(audit_count(&ws, "agent.refused"), 4);
    let tools: Vec<String> = server.request(1).body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect();
    assert!(
        tools[0].contains("not in the researcher role's profile"),
        "{}",
        tools[0]
    );
    assert!(tools[1].contains("read scope"), "{}", tools[1]);
    assert!(tools[2].contains("memory scope"), "{}", tools[2]);
    assert!(tools[3].contains("unknown tool"), "{}", tools[3]);
    let store = ws.store().unwrap();
    let written: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM objects WHERE kind = 'idea'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(written, 0);
}

#[tokio::test]
async fn invalid_tool_arguments_are_answered_not_fatal() {
    let (_d, ws) = workspace();
    let server = Server::start(vec![
        openai_tools(&[
            ("c1", "memory_search", r#"{"query": "unterminated"#),
            ("c2", "object_read", r#"{"kind":"idea"}"#),
        ]),
        openai_text(GOOD_IDEAS),
    ])
    .await;
    let mut rt = mock_runtime(&ws, &server);
    let out = rt
        .execute(&task("researcher", json!({})), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.status(), "succeeded");
    let body = server.request(1).body.to_string();
    assert!(
        body.contains("invalid JSON in the arguments of memory_search"),
        "{body}"
    );
    assert!(body.contains("bad arguments for object_read"), "{body}");
}

#[tokio::test]
async fn a_tool_call_loop_is_stopped_and_escalated() {
    let (_d, ws) = workspace();
    let same = openai_tools(&[("c", "memory_search", r#"{"query":"again"}"#)]);
    let server = Server::start(vec![same.clone(), same.clone(), same.clone(), same]).await;
    let mut rt = mock_runtime(&ws, &server);
    let out = rt
        .execute(&task("researcher", json!({})), &CancellationToken::new())
        .await
        .unwrap();
    let RunOutcome::Escalated { reason, .. } = &out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("tool-call loop"), "{reason}");
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn the_step_cap_ends_a_run_that_never_answers() {
    let (_d, ws) = workspace();
    let replies = (0..10)
        .map(|i| openai_tools(&[("c", "memory_search", &format!(r#"{{"query":"q{i}"}}"#))]))
        .collect();
    let server = Server::start(replies).await;
    let mut rt = mock_runtime(&ws, &server);
    rt.templates
        .by_name
        .get_mut("researcher")
        .unwrap()
        .template
        .limits
        .max_steps = 4;
    let out = rt
        .execute(&task("researcher", json!({})), &CancellationToken::new())
        .await
        .unwrap();
    let RunOutcome::Escalated { reason, .. } = &out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("step cap"), "{reason}");
}

#[tokio::test]
async fn invalid_output_is_repaired_once() {
    let (_d, ws) = workspace();
    let server = Server::start(vec![
        openai_text(r#"{"ideas": []}"#),
        openai_text(&format!("```json\n{GOOD_IDEAS}\n```")),
    ])
    .await;
    let mut rt = mock_runtime(&ws, &server);
    let out = rt
        .execute(&task("researcher", json!({})), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.status(), "succeeded", "{out:?}");
    let repair = server.request(1).body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        repair.contains("failed validation") && repair.contains("rationale"),
        "{repair}"
    );
}

#[tokio::test]
async fn output_still_invalid_after_repair_escalates_with_the_raw_response() {
    let (_d, ws) = workspace();
    let server = Server::start(vec![
        openai_text("not json at all"),
        openai_text(r#"{"ideas": "wrong"}"#),
    ])
    .await;
    let mut rt = mock_runtime(&ws, &server);
    let out = rt
        .execute(&task("researcher", json!({})), &CancellationToken::new())
        .await
        .unwrap();
    let RunOutcome::Escalated { run, reason, raw } = &out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("fails the schema"), "{reason}");
    assert_eq!(raw.as_deref(), Some(r#"{"ideas": "wrong"}"#));
    let store = ws.store().unwrap();
    let rec = record::load_run(store.conn(), run).unwrap().unwrap();
    assert_eq!(rec.status, "escalated");
    assert_eq!(rec.raw_output.as_deref(), Some(r#"{"ideas": "wrong"}"#));
    assert_eq!(audit_count(&ws, "agent.validation_failed"), 2);
}

#[tokio::test]
async fn budget_stop_asks_the_operator_and_resume_continues_after_a_raise() {
    let (_d, ws) = workspace();
    let server = Server::start(vec![openai_text(GOOD_IDEAS)]).await;
    let mut c = cfg(ProviderKind::Openai, &server.base, false);
    c.price_in_per_mtok = 10_000.0; // absurdly expensive: one call is over $0.10
    let mut rt = runtime_with(
        &ws,
        &[("pricey", c)],
        routing("pricey"),
        Arc::new(|_: &str, _: &str| {}),
    );
    let out = rt
        .execute(
            &task("researcher", json!({"goals": ["g"]})),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let RunOutcome::Escalated { run, reason, .. } = out.clone() else {
        panic!("{out:?}")
    };
    assert!(
        reason.starts_with("budget:") && reason.contains("this task"),
        "{reason}"
    );
    assert_eq!(server.count(), 0, "no call was paid for");
    assert_eq!(audit_count(&ws, "agent.budget_stop"), 1);
    // The operator raises the budget; the same run resumes and finishes.
    let budget = &mut rt
        .templates
        .by_name
        .get_mut("researcher")
        .unwrap()
        .template
        .budget;
    budget.task_usd = 100.0;
    budget.day_usd = 100.0;
    let resumed = AgentTask {
        resume: Some(run.clone()),
        ..task("researcher", json!({"goals": ["g"]}))
    };
    let out = rt
        .execute(&resumed, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.status(), "succeeded", "{out:?}");
    assert_eq!(out.run(), run);
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn a_resumed_run_reuses_completed_calls_instead_of_paying_again() {
    let (_d, ws) = workspace();
    // First attempt: the tool call is answered, then the provider goes down.
    let server = Server::start(vec![
        openai_tools(&[("c1", "memory_search", r#"{"query":"x"}"#)]),
        Reply::Drop,
    ])
    .await;
    let mut rt = mock_runtime(&ws, &server);
    let out = rt
        .execute(
            &task("researcher", json!({"goals": ["g"]})),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let RunOutcome::Failed {
        run,
        retryable,
        error,
    } = out.clone()
    else {
        panic!("{out:?}")
    };
    assert!(retryable, "{error}");
    // The template allows two tries of a model call: the second try was a recorded retry.
    assert_eq!(server.count(), 3);
    assert_eq!(audit_count(&ws, "agent.model_retry"), 1);
    // Replaying the failed run reproduces the failure; its wording cannot be (the record
    // has no answer for the call that failed), which is noted, not counted.
    let report = service::replay(&ws, Arc::new(ManualClock::at(1_800_000_000_500)), &run)
        .await
        .unwrap();
    assert!(
        report.matches && report.replay_status == "failed",
        "{report:?}"
    );
    assert!(report.notes[0].contains("different reason"), "{report:?}");
    assert_eq!(server.count(), 3, "replay made no call");
    // Resume: the first model call and the tool call come from the record.
    server.push(openai_text(GOOD_IDEAS));
    let resumed = AgentTask {
        resume: Some(run.clone()),
        ..task("researcher", json!({"goals": ["g"]}))
    };
    let out = rt
        .execute(&resumed, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.status(), "succeeded", "{out:?}");
    assert_eq!(server.count(), 4, "exactly one new call");
    let store = ws.store().unwrap();
    let calls: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM model_calls WHERE run = ?1",
            [&run],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(calls, 2);
}

#[tokio::test]
async fn replay_reproduces_the_outcome_without_network() {
    let (_d, ws) = workspace();
    seed(&ws, "idea", "p", &json!({"title": "Pricing guide"}));
    let server = Server::start(vec![
        openai_tools(&[("c1", "memory_search", r#"{"query":"pricing"}"#)]),
        openai_text(r#"{"ideas": []}"#),
        openai_text(GOOD_IDEAS),
    ])
    .await;
    let mut rt = mock_runtime(&ws, &server);
    let out = rt
        .execute(
            &task("researcher", json!({"goals": ["pricing"]})),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(out.status(), "succeeded");
    let before = server.count();
    // Replay with no provider but the built-in offline one configured.
    let report = service::replay(&ws, Arc::new(ManualClock::at(1_800_000_100_000)), out.run())
        .await
        .unwrap();
    assert!(report.matches, "{report:?}");
    assert_eq!(report.original_output, report.replay_output);
    assert_eq!(server.count(), before, "replay made no call");
    // Editing the role afterwards does not change what the replay checks: it runs the
    // template version the run recorded.
    std::fs::create_dir_all(ws.root.join("agents")).unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/agents/researcher.toml"
    ))
    .unwrap();
    std::fs::write(
        ws.root.join("agents/researcher.toml"),
        text.replace("You are the researcher", "You are the new researcher"),
    )
    .unwrap();
    let report = service::replay(&ws, Arc::new(ManualClock::at(1_800_000_100_000)), out.run())
        .await
        .unwrap();
    assert!(report.matches, "{report:?}");
    // A tampered record is caught.
    let store = ws.store().unwrap();
    store
        .conn()
        .execute("DROP TRIGGER agent_run_steps_no_update", [])
        .unwrap();
    store.conn().execute("UPDATE agent_run_steps SET output = json_set(output, '$.content', '{\"items\":[]}') WHERE run = ?1 AND kind = 'tool'", [out.run()]).unwrap();
    let report = service::replay(&ws, Arc::new(ManualClock::at(1_800_000_100_000)), out.run())
        .await
        .unwrap();
    assert!(!report.matches, "{report:?}");
}

#[tokio::test]
async fn cascade_moves_up_a_tier_after_failed_validation_and_records_why() {
    let (_d, ws) = workspace();
    let cheap = Server::start(vec![openai_text("{}"), openai_text("{}")]).await;
    let strong = Server::start(vec![openai_text(
        r##"{"title":"T","body":"# T\n","changes":[],"rationale":"tidy"}"##,
    )])
    .await;
    let mut c1 = cfg(ProviderKind::Openai, &cheap.base, false);
    c1.price_in_per_mtok = 0.1;
    let c2 = cfg(ProviderKind::Openai, &strong.base, false);
    let routing = RoutingConfig {
        triage: "cheap".into(),
        draft: "strong".into(),
        final_: "strong".into(),
        cascade: false,
    };
    let mut rt = runtime_with(
        &ws,
        &[("cheap", c1), ("strong", c2)],
        routing,
        Arc::new(|_: &str, _: &str| {}),
    );
    let out = rt
        .execute(
            &task("editor", json!({"title": "T", "body": "x"})),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(out.status(), "succeeded", "{out:?}");
    assert_eq!((cheap.count(), strong.count()), (2, 1));
    let store = ws.store().unwrap();
    let steps = record::steps(store.conn(), out.run()).unwrap();
    assert!(
        steps[1]
            .rationale
            .starts_with("cascade: starting at tier triage (cheap)"),
        "{}",
        steps[1].rationale
    );
    let moved = steps
        .iter()
        .find(|s| s.kind == "route" && s.idx > 1)
        .unwrap();
    assert!(
        moved
            .rationale
            .contains("moving from triage (cheap) to draft (strong)"),
        "{}",
        moved.rationale
    );
    assert!(
        moved.rationale.contains("spent at the cheaper tier"),
        "{}",
        moved.rationale
    );
    // And the cascaded run replays too.
    let report = service::replay(&ws, Arc::new(ManualClock::at(1_800_000_100_000)), out.run())
        .await
        .unwrap();
    assert!(report.matches, "{report:?}");
}

#[tokio::test]
async fn streamed_output_reaches_the_console_as_run_output_events() {
    let (_d, ws) = workspace();
    let text = GOOD_IDEAS;
    let (a, b) = text.split_at(20);
    let server = Server::start(vec![Reply::Sse(openai_text_stream(&[a, b]))]).await;
    let (events, mut rx) = tokio::sync::broadcast::channel(64);
    let sink: RunSink = service::event_sink(events);
    let mut rt = runtime_with(
        &ws,
        &[("mock", cfg(ProviderKind::Openai, &server.base, true))],
        routing("mock"),
        sink,
    );
    let out = rt
        .execute(&task("researcher", json!({})), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.status(), "succeeded");
    let mut got = String::new();
    while let Ok(ev) = rx.try_recv() {
        let Event::RunOutput { run, delta } = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(run, out.run());
        got.push_str(&delta);
    }
    assert_eq!(got, text);
}

#[tokio::test]
async fn a_truncated_stream_is_a_recorded_retry_not_a_crash() {
    let (_d, ws) = workspace();
    let mut cut = openai_text_stream(&[GOOD_IDEAS]);
    cut.truncate(1);
    let server = Server::start(vec![
        Reply::Sse(cut),
        Reply::Sse(openai_text_stream(&[GOOD_IDEAS])),
    ])
    .await;
    let mut c = cfg(ProviderKind::Openai, &server.base, true);
    c.max_retries = 0;
    let mut rt = runtime_with(
        &ws,
        &[("mock", c)],
        routing("mock"),
        Arc::new(|_: &str, _: &str| {}),
    );
    let out = rt
        .execute(&task("researcher", json!({})), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.status(), "succeeded", "{out:?}");
    assert_eq!(server.count(), 2);
    let store = ws.store().unwrap();
    let retries = audit::query(
        store.conn(),
        &Filter {
            action: Some("agent.model_retry".into()),
            ..Filter::default()
        },
        10,
        true,
    )
    .unwrap();
    assert_eq!(retries.len(), 1);
    assert!(
        retries[0].payload["error"]
            .as_str()
            .unwrap()
            .contains("ended before the end marker"),
        "{:?}",
        retries[0].payload
    );
}

#[tokio::test]
async fn the_task_budget_counts_every_attempt_at_the_task() {
    let (_d, ws) = workspace();
    let server = Server::start(vec![openai_text(GOOD_IDEAS), openai_text(GOOD_IDEAS)]).await;
    let mut c = cfg(ProviderKind::Openai, &server.base, false);
    c.price_in_per_mtok = 0.0;
    c.price_out_per_mtok = 100.0; // estimate: 1500 output tokens = $0.15; actual: 20 = $0.002
    let mut rt = runtime_with(
        &ws,
        &[("mock", c)],
        routing("mock"),
        Arc::new(|_: &str, _: &str| {}),
    );
    let budget = &mut rt
        .templates
        .by_name
        .get_mut("researcher")
        .unwrap()
        .template
        .budget;
    budget.task_usd = 0.151;
    budget.day_usd = 100.0;
    let first = rt
        .execute(&task("researcher", json!({})), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(first.status(), "succeeded", "{first:?}");
    // A second attempt at the same task would go over: $0.002 spent + $0.15 estimated.
    let second = rt
        .execute(&task("researcher", json!({})), &CancellationToken::new())
        .await
        .unwrap();
    let RunOutcome::Escalated { reason, .. } = &second else {
        panic!("{second:?}")
    };
    assert!(reason.contains("this task"), "{reason}");
    // Another task has its own budget.
    let other = AgentTask {
        task: "another".into(),
        ..task("researcher", json!({}))
    };
    let third = rt.execute(&other, &CancellationToken::new()).await.unwrap();
    assert_eq!(third.status(), "succeeded", "{third:?}");
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn the_run_timeout_ends_a_run_as_a_retryable_failure() {
    let (_d, ws) = workspace();
    let server = Server::start(vec![Reply::Stall]).await;
    let mut rt = mock_runtime(&ws, &server);
    rt.templates
        .by_name
        .get_mut("researcher")
        .unwrap()
        .template
        .limits
        .timeout_secs = 1;
    let out = rt
        .execute(&task("researcher", json!({})), &CancellationToken::new())
        .await
        .unwrap();
    let RunOutcome::Failed {
        error,
        retryable,
        run,
    } = &out
    else {
        panic!("{out:?}")
    };
    assert!(
        error.contains("timed out after 1 s") && *retryable,
        "{error}"
    );
    let rec = record::load_run(rt.store.conn(), run).unwrap().unwrap();
    assert_eq!(rec.status, "failed");
}

#[tokio::test]
async fn an_oversized_tool_result_is_cut_for_the_model_but_kept_in_the_record() {
    let (_d, ws) = workspace();
    seed(
        &ws,
        "idea",
        "big",
        &json!({"title": format!("pricing {}", "word ".repeat(10_000))}),
    );
    let server = Server::start(vec![
        openai_tools(&[("c1", "memory_search", r#"{"query":"pricing"}"#)]),
        openai_text(GOOD_IDEAS),
    ])
    .await;
    let mut rt = mock_runtime(&ws, &server);
    let out = rt
        .execute(&task("researcher", json!({})), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.status(), "succeeded", "{out:?}");
    let msgs = server.request(1).body["messages"]
        .as_array()
        .unwrap()
        .clone();
    let tool = msgs.iter().find(|m| m["role"] == "tool").unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        tool.len() < 17_000 && tool.contains("characters cut to fit"),
        "{}",
        tool.len()
    );
    let steps = record::steps(rt.store.conn(), out.run()).unwrap();
    let recorded = steps.iter().find(|s| s.kind == "tool").unwrap().output["content"].to_string();
    assert!(recorded.len() > 50_000);
}

#[tokio::test]
async fn an_object_write_that_breaks_the_kind_schema_is_refused_and_nothing_is_written() {
    let (_d, ws) = workspace();
    let server = Server::start(vec![
        openai_tools(&[(
            "c1",
            "object_write",
            r#"{"kind":"draft","id":"bad","body":{"body":"no title"}}"#,
        )]),
        openai_text(r#"{"note":"not a writer output"}"#),
        openai_text(r#"{"note":"still not a writer output"}"#),
    ])
    .await;
    let mut rt = mock_runtime(&ws, &server);
    let _ = rt
        .execute(
            &task("writer", json!({"brief": "pricing"})),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let answer: Vec<String> = server.request(1).body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect();
    assert!(answer[0].contains("title"), "{}", answer[0]);
    let store = ws.store().unwrap();
    let written: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM objects WHERE kind = 'draft' AND id = 'bad'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(written, 0);
}
