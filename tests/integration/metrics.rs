//! The value ledger from real data: tasks through the queue and the coordinator, a model
//! call through the agents runtime against a loopback OpenAI-compatible server (priced),
//! approvals through the policy gate and the operator's decisions; then `Query::Metrics`
//! through the handle and `keel metrics --json` from the real binary.

use std::sync::Arc;

use keel::core::agents::{AgentTask, RunOutcome, service};
use keel::core::approvals::{self, GateResult, NewApproval};
use keel::core::audit::Actor;
use keel::core::clock::ManualClock;
use keel::core::coordinator::{
    Coordinator, OrchestratorConfig, Outcome, RunError, StepContext, TaskExecutor,
};
use keel::core::effects::Reversibility;
use keel::core::handle::CoreHandle;
use keel::core::llm::config::ProviderKind;
use keel::core::llm::openai::OpenAi;
use keel::core::llm::{ProviderConfig, Registry, RoutingConfig};
use keel::core::policy::{ActionRequest, Policy};
use keel::core::queue::{self, NewTask, RoleCatalog};
use keel::core::workspace::Workspace;
use keel::protocol::{Metrics, Op, Query, ValueRow};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::support::keel;

/// 2027-01-15 (UTC): the day the model call is recorded on.
const T0: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400_000;

/// Answers every request with one `OpenAI` chat completion (100 tokens in, 20 out).
async fn model_server(answer: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let body = json!({
        "model": "m1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20}
    })
    .to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 8192];
                // Read the head, then the body by its content-length.
                loop {
                    let n = sock.read(&mut tmp).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    base
}

/// Runs each task as its input says: `{"outcome": "ok" | "fail" | "escalate", "output"}`.
struct Scripted;

impl TaskExecutor for Scripted {
    fn handles(&self, _role: &str) -> bool {
        true
    }
    fn execute(&self, ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
        let input = ctx.task().input.clone();
        match input["outcome"].as_str() {
            Some("ok") => Ok(Outcome::Succeeded(input["output"].clone())),
            Some("escalate") => Err(RunError::Escalate("the numbers do not add up".into())),
            _ => Err(RunError::Permanent("the draft is unusable".into())),
        }
    }
}

fn catalog() -> RoleCatalog {
    ["researcher", "writer", "analyst"]
        .into_iter()
        .fold(RoleCatalog::builtin(), |c, r| c.with_role(r, None))
}

fn submit(
    ws: &Workspace,
    role: &str,
    workflow: Option<&str>,
    input: Value,
    escalate: bool,
) -> String {
    let mut store = ws.store().unwrap();
    store
        .write(|tx| {
            queue::submit::submit(
                tx,
                T0,
                &Actor::Operator,
                &catalog(),
                NewTask {
                    role: role.into(),
                    input,
                    workflow: workflow.map(Into::into),
                    escalate: Some(escalate),
                    max_attempts: Some(1),
                    ..NewTask::default()
                },
            )
        })
        .unwrap()
        .task
        .id
}

fn publish_request(target: &str) -> (ActionRequest, NewApproval) {
    let req = ActionRequest {
        agent: "publisher".into(),
        action: "site.publish".into(),
        object_kind: Some("publication".into()),
        amount: None,
        reversibility: Reversibility::Reversible,
        target: target.into(),
        cost: 0.0,
        workflow: Some("content".into()),
    };
    let card = NewApproval {
        task: Some(format!("task-{target}")),
        args: json!({"slug": target}),
        summary: format!("Publish {target}"),
        undo_available: true,
        ..NewApproval::default()
    };
    (req, card)
}

fn row<'a>(m: &'a Metrics, scope: &str, name: &str) -> &'a ValueRow {
    m.rows
        .iter()
        .find(|r| r.scope == scope && r.name == name)
        .unwrap_or_else(|| panic!("no {scope} row {name}: {:#?}", m.rows))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one ledger, built from every source it reads
async fn the_ledger_adds_up_tasks_spend_revenue_and_approvals() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = Workspace::init(&tmp.path().join("ws")).unwrap();

    // Tasks through the queue, run by a coordinator.
    let research = submit(
        &ws,
        "researcher",
        Some("content"),
        json!({"outcome": "ok", "output": {}}),
        true,
    );
    for outcome in ["ok", "ok", "fail"] {
        submit(
            &ws,
            "writer",
            Some("content"),
            json!({"outcome": outcome, "output": {"words": 900}}),
            false,
        );
    }
    submit(
        &ws,
        "analyst",
        Some("content"),
        json!({"outcome": "ok", "output": {"revenue_usd": 120.5, "note": "sponsor paid"}}),
        true,
    );
    submit(
        &ws,
        "analyst",
        Some("content"),
        json!({"outcome": "escalate"}),
        true,
    );
    // Outside any workflow: counts for the agent only. A revenue given as text is not a
    // number anyone reported and is not counted.
    submit(
        &ws,
        "writer",
        None,
        json!({"outcome": "ok", "output": {"revenue_usd": "lots"}}),
        true,
    );
    let clock = Arc::new(ManualClock::at(T0));
    let coordinator = Coordinator::new(
        ws.db_path(),
        ws.config.store.durability,
        clock.clone(),
        catalog(),
        OrchestratorConfig::default(),
        Arc::new(Scripted),
    );
    let mut store = ws.store().unwrap();
    assert_eq!(coordinator.run_pending(&mut store).unwrap(), 7);

    // A model call for the research task through the agents runtime (priced loopback model).
    let base = model_server(
        r#"{"ideas":[{"title":"Pricing guide","score":0.8,"rationale":"fits the goal","sources":[]}],"rationale":"one clear winner"}"#,
    )
    .await;
    let cfg = ProviderConfig {
        kind: ProviderKind::Openai,
        base_url: base,
        api_key_env: "CARGO_MANIFEST_DIR".into(),
        model: "m1".into(),
        price_in_per_mtok: 2.0,
        price_out_per_mtok: 8.0,
        stream: false,
        timeout_secs: 20,
        max_retries: 0,
        max_backoff_ms: 50,
        ..ProviderConfig::default()
    };
    let mut registry = Registry::offline_only();
    registry.insert(
        "mock",
        Arc::new(OpenAi::new("mock", &cfg).unwrap()),
        "openai",
        "test",
    );
    registry.routing = RoutingConfig {
        triage: "mock".into(),
        draft: "mock".into(),
        final_: "mock".into(),
        cascade: false,
    };
    let mut rt = service::runtime_with(
        &ws,
        clock.clone(),
        Arc::new(|_: &str, _: &str| {}),
        registry,
    )
    .unwrap();
    let out = rt
        .execute(
            &AgentTask {
                task: research.clone(),
                role: "researcher".into(),
                input: json!({}),
                ..AgentTask::default()
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(matches!(out, RunOutcome::Succeeded { .. }), "{out:?}");
    let call_usd = (100.0 * 2.0 + 20.0 * 8.0) / 1_000_000.0;

    // Approvals through the gate; the operator approves one and rejects one; one waits.
    let policy = Policy::load(&ws.root).unwrap();
    let mut ids = Vec::new();
    for target in ["a", "b", "c"] {
        let (req, card) = publish_request(target);
        match approvals::gate(&mut store, T0, &policy, &Actor::agent("run-p"), &req, &card).unwrap()
        {
            GateResult::Pending { approval, .. } => ids.push(approval),
            other => panic!("the shipped policy asks before publishing: {other:?}"),
        }
    }
    approvals::approve(&mut store, T0, &Actor::Operator, &ids[0], None, false).unwrap();
    approvals::reject(&mut store, T0, &Actor::Operator, &ids[1], "off brand").unwrap();

    let m = keel::core::metrics::for_workspace(&ws, store.conn(), T0).unwrap();
    assert!(close(m.spend_today_usd, call_usd), "{m:?}");
    assert!(
        close(m.budget_today_usd, 7.9),
        "shipped day_usd budgets sum to 7.90: {m:?}"
    );
    let later = keel::core::metrics::for_workspace(&ws, store.conn(), T0 + 2 * DAY).unwrap();
    assert!(
        close(later.spend_today_usd, 0.0),
        "yesterday's spend is not today's"
    );

    let wf = row(&m, "workflow", "content");
    assert_eq!((wf.tasks_done, wf.tasks_finished), (4, 6), "{wf:?}");
    assert!(close(wf.minutes_saved, 30.0 + 2.0 * 45.0 + 30.0), "{wf:?}");
    assert!(close(wf.model_spend_usd, call_usd), "{wf:?}");
    assert!(close(wf.revenue_usd, 120.5), "{wf:?}");
    assert!(
        close(wf.failure_rate, 1.0 / 6.0) && close(wf.escalation_rate, 1.0 / 6.0),
        "{wf:?}"
    );
    assert!(
        close(wf.approval_rate, 0.5) && wf.approvals_decided == 2,
        "{wf:?}"
    );

    let writer = row(&m, "agent", "writer");
    assert_eq!((writer.tasks_done, writer.tasks_finished), (3, 4));
    assert!(
        close(writer.minutes_saved, 135.0) && close(writer.revenue_usd, 0.0),
        "{writer:?}"
    );
    assert!(
        close(writer.failure_rate, 0.25) && close(writer.escalation_rate, 0.0),
        "{writer:?}"
    );
    let analyst = row(&m, "agent", "analyst");
    assert!(
        close(analyst.escalation_rate, 0.5) && close(analyst.revenue_usd, 120.5),
        "{analyst:?}"
    );
    let researcher = row(&m, "agent", "researcher");
    assert!(
        close(researcher.model_spend_usd, call_usd),
        "{researcher:?}"
    );
    let publisher = row(&m, "agent", "publisher");
    assert_eq!((publisher.tasks_done, publisher.approvals_decided), (0, 2));
    assert!(close(publisher.approval_rate, 0.5), "{publisher:?}");
    drop(store);

    // The same ledger through the handle and from the CLI (whose "today" is the real one).
    let handle = CoreHandle::start_with_clock(ws.clone(), clock).unwrap();
    let via_handle: Metrics = handle
        .request(Op::Query {
            query: Query::Metrics,
        })
        .await
        .unwrap()
        .try_into()
        .unwrap();
    let h = handle.clone();
    tokio::task::spawn_blocking(move || h.shutdown())
        .await
        .unwrap();
    assert_eq!(via_handle, m);
    let out = keel(&ws.root, &["metrics", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_cli: Metrics = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_cli.rows, m.rows);
    let table = keel(&ws.root, &["metrics"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("daily budget") && text.contains("content"),
        "{text}"
    );
}

#[test]
fn minutes_saved_come_from_the_config_and_a_typo_is_located() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    Workspace::init(&root).unwrap();
    let config = root.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace("writer = 45", "writer = 60");
    std::fs::write(&config, &text).unwrap();
    let ws = Workspace::open(&root).unwrap();
    assert!(close(ws.config.value.minutes_for("writer"), 60.0));
    std::fs::write(&config, format!("{text}\n[value]\nminutes = 3\n")).unwrap();
    let err = Workspace::open(&root).unwrap_err().to_string();
    assert!(err.contains("config.toml:"), "{err}");
}
