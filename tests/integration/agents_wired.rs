//! The agent runtime wired into keel: tasks submitted through the queue and run by a real
//! coordinator with the real executor (`keel::core::wiring`), objects written through the
//! objects module, retrieval from vector memory with provenance, external actions through
//! the policy gate, a loopback model server, and a `keel run` killed with SIGKILL that resumes
//! without paying for a model call twice.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel::core::agents::local_host::put_version;
use keel::core::agents::record;
use keel::core::agents::template::Templates;
use keel::core::agents::tools::{MemoryRetriever, RetrievalRequest};
use keel::core::audit::Actor;
use keel::core::clock::{Clock, SystemClock};
use keel::core::coordinator::Coordinator;
use keel::core::handle::CoreHandle;
use keel::core::live::Live;
use keel::core::llm::Registry;
use keel::core::llm::config::{ProviderKind, RoutingConfig};
use keel::core::llm::openai::OpenAi;
use keel::core::memory::kb::{self, NewItem};
use keel::core::memory::{Embedder, Memory};
use keel::core::queue::NewTask;
use keel::core::wiring::{self, AgentExecutor, Executor};
use keel::core::workspace::Workspace;
use keel::protocol::{Event, MemorySliceRow, Op, Query};
use serde_json::{Value, json};

use super::agents::providers::cfg;
use super::agents::server::{Reply, Server, openai_text, openai_text_stream, openai_tools};
use super::support::{Daemon, keel_bin};

fn workspace() -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::init(&dir.path().join("ws")).unwrap();
    (dir, ws)
}

fn quiet() -> keel::core::agents::runtime::RunSink {
    Arc::new(|_: &str, _: &str| {})
}

pub(crate) fn coordinator(ws: &Workspace, registry: Registry) -> Coordinator {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let agents = Arc::new(
        AgentExecutor::new(ws, clock.clone(), quiet())
            .unwrap()
            .with_registry(registry),
    );
    Coordinator::for_workspace(ws, clock, Arc::new(Executor::new(agents))).unwrap()
}

pub(crate) fn submit(ws: &Workspace, role: &str, input: Value) -> String {
    let catalog = keel::core::queue::roles::RoleCatalog::load(&ws.root).unwrap();
    let mut store = ws.store().unwrap();
    let new = NewTask {
        role: role.into(),
        title: format!("{role} task"),
        input,
        ..NewTask::default()
    };
    store
        .write(|tx| {
            keel::core::queue::submit(tx, SystemClock.now_ms(), &Actor::Operator, &catalog, new)
        })
        .unwrap()
        .task
        .id
}

pub(crate) fn task_state(ws: &Workspace, task: &str) -> (String, String, Option<String>) {
    ws.store()
        .unwrap()
        .conn()
        .query_row(
            "SELECT state, wait_for, output FROM tasks WHERE id = ?1",
            [task],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

/// The (only) agent run of `task`.
fn run_of(ws: &Workspace, task: &str) -> record::RunRecord {
    let store = ws.store().unwrap();
    let id: String = store
        .conn()
        .query_row(
            "SELECT id FROM agent_runs WHERE task = ?1 ORDER BY started_ms DESC LIMIT 1",
            [task],
            |r| r.get(0),
        )
        .unwrap();
    record::load_run(store.conn(), &id).unwrap().unwrap()
}

fn author_of(ws: &Workspace, kind: &str, id: &str, version: i64) -> String {
    keel::core::objects::version(ws.store().unwrap().conn(), kind, id, version)
        .unwrap()
        .author
}

fn model_calls(ws: &Workspace, run: &str) -> i64 {
    ws.store()
        .unwrap()
        .conn()
        .query_row(
            "SELECT count(*) FROM model_calls WHERE run = ?1",
            [run],
            |r| r.get(0),
        )
        .unwrap()
}

fn shipped_inputs() -> Vec<(&'static str, Value)> {
    vec![
        (
            "researcher",
            json!({"goals": ["win consulting clients with pricing content"]}),
        ),
        (
            "writer",
            json!({"title": "Pricing your consulting", "brief": "Explain value-based pricing."}),
        ),
        (
            "editor",
            json!({"draft": {"title": "Pricing", "body": "Intro:\nPrice on value.\n\nEnd."}}),
        ),
        // No page to publish: the agent template prepares the request (see wiring docs).
        (
            "publisher",
            json!({"object": {"kind": "draft", "id": "pricing", "version": 1}, "target": "site"}),
        ),
        (
            "analyst",
            json!({"metrics": [{"name": "visits", "value": 1200, "previous": 1000}]}),
        ),
        // The contract object by name: the runtime reads it through the coordinator's host.
        ("accountant", json!({"contract": "c1"})),
        (
            "scheduler",
            json!({"day_start": "09:00", "day_end": "12:00",
            "tasks": [{"title": "write", "minutes": 90, "priority": 2}, {"title": "email", "minutes": 30}]}),
        ),
    ]
}

#[test]
fn every_shipped_role_runs_through_the_queue_and_writes_its_output_as_the_run() {
    let (_d, ws) = workspace();
    ws.store()
        .unwrap()
        .write(|tx| {
            put_version(
                tx,
                1,
                &Actor::Operator,
                "draft",
                "pricing",
                None,
                &json!({"title": "Pricing", "body": "Price on value."}),
            )?;
            put_version(
                tx,
                1,
                &Actor::Operator,
                "contract",
                "c1",
                None,
                &json!({"customer": "ACME", "currency": "EUR", "terms_days": 14,
                "lines": [{"description": "Workshop day", "quantity": 2, "unit_price": 900.0}]}),
            )?;
            Ok(())
        })
        .unwrap();
    let c = coordinator(&ws, Registry::offline_only());
    let tasks: Vec<(&str, String)> = shipped_inputs()
        .into_iter()
        .map(|(role, input)| (role, submit(&ws, role, input)))
        .collect();
    c.run_pending(&mut ws.store().unwrap()).unwrap();
    let templates = Templates::load(&ws.root.join("agents")).unwrap();
    for (role, task) in tasks {
        let (state, _, output) = task_state(&ws, &task);
        assert_eq!(state, "succeeded", "{role}: {output:?}");
        let run = run_of(&ws, &task);
        assert_eq!(run.status, "succeeded", "{role}");
        let tpl = templates.get(role).unwrap();
        let out = run.output.clone().unwrap();
        assert!(
            jsonschema::validator_for(&tpl.schema)
                .unwrap()
                .is_valid(&out),
            "{role}: {out}"
        );
        // The task's output is the run's, plus the version it wrote.
        let task_out: Value = serde_json::from_str(&output.unwrap()).unwrap();
        let obj = &task_out["object_ref"];
        assert_eq!(obj["kind"], tpl.template.output.kind.as_str(), "{role}");
        let (kind, id, version) = (
            obj["kind"].as_str().unwrap(),
            obj["id"].as_str().unwrap(),
            obj["version"].as_i64().unwrap(),
        );
        assert_eq!(
            author_of(&ws, kind, id, version),
            format!("agent:{}", run.id),
            "{role}"
        );
        let stored = keel::core::objects::get(ws.store().unwrap().conn(), kind, id).unwrap();
        assert_eq!(stored.body, out, "{role}");
        if role == "accountant" {
            assert_eq!(out["invoice"]["subtotal"], 1800.0, "{out}");
        }
    }
}

/// The real model, or a failure that says how to fetch it.
fn require_model() {
    if let Err(e) = keel::core::model_assets::Assets::locate().require() {
        panic!("the embedding model is required for this test: {e}");
    }
    Embedder::shared().unwrap().wait_ready().unwrap();
}

#[test]
fn a_writer_run_retrieves_from_vector_memory_and_memory_used_shows_it() {
    require_model();
    let (_d, ws) = workspace();
    let mut store = ws.store().unwrap();
    let memory = Memory::open(&ws, &mut store, Arc::new(SystemClock)).unwrap();
    let mut ids = Vec::new();
    for (text, kind) in [
        (
            "Value-based pricing: charge for the outcome the client gets, not for hours.",
            "note",
        ),
        (
            "Clients prefer a fixed price for a consulting workshop.",
            "preference",
        ),
        (
            "Recipe: sourdough bread needs a long cold fermentation.",
            "note",
        ),
    ] {
        let item = NewItem {
            text: text.into(),
            kind: kind.into(),
            source: "test".into(),
            ..NewItem::default()
        };
        if let kb::Added::Stored { id, .. } =
            kb::add(&mut store, &memory, &Actor::Operator, &item).unwrap()
        {
            ids.push(id);
        }
    }
    let c = coordinator(&ws, Registry::offline_only());
    let task = submit(
        &ws,
        "writer",
        json!({"title": "Pricing a consulting workshop", "brief": "value-based pricing for clients"}),
    );
    c.run_pending(&mut store).unwrap();
    assert_eq!(task_state(&ws, &task).0, "succeeded");
    let run = run_of(&ws, &task);
    let handle = CoreHandle::start(ws.clone()).unwrap();
    let used: Vec<MemorySliceRow> = handle
        .request_blocking(Op::Query {
            query: Query::MemoryUsed {
                run: run.id.clone(),
            },
        })
        .unwrap()
        .try_into()
        .unwrap();
    assert!(!used.is_empty(), "the run retrieved nothing");
    assert!(
        used.iter()
            .all(|s| ids.contains(&s.item) && s.version >= 1 && s.score > 0.0),
        "{used:?}"
    );
    // The pricing texts rank above the bread recipe.
    assert_ne!(used[0].item, ids[2], "{used:?}");
    // Pinned parameters: hybrid search with the model's version, scoped to the role's kinds.
    let rec = keel::core::memory::retrieval::for_run(store.conn(), &run.id).unwrap();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].params.fusion, keel::core::memory::Fusion::Rrf);
    assert!(rec[0].params.filters.kinds.contains(&"note".to_string()));
}

#[test]
fn without_the_model_retrieval_falls_back_to_keywords_and_says_so() {
    let (_d, ws) = workspace();
    let mut store = ws.store().unwrap();
    // A memory whose model directory is empty: the embedder reports the model missing.
    let empty = tempfile::tempdir().unwrap();
    let missing: Arc<dyn keel::core::memory::Embed> =
        Arc::new(Embedder::start(keel::core::model_assets::Assets::at(empty.path())).unwrap());
    let memory = Memory::with_embedders(
        &ws.vectors_dir(),
        ws.config.memory.clone(),
        &mut store,
        vec![missing],
        Arc::new(SystemClock),
    )
    .unwrap();
    let retriever =
        keel::core::wiring::retriever::VectorRetriever::new(ws.store().unwrap(), memory, "run-1");
    let got = retriever
        .retrieve(&RetrievalRequest {
            query: "pricing".into(),
            kinds: vec!["note".into()],
            tiers: vec![keel::core::agents::template::MemoryTier::LongTerm],
            k: 3,
        })
        .unwrap();
    assert!(
        got.params["fallback"]
            .as_str()
            .unwrap()
            .starts_with("keyword-only"),
        "{}",
        got.params
    );
    let rec = keel::core::memory::retrieval::for_run(store.conn(), "run-1").unwrap();
    assert_eq!(
        rec[0].params.fusion,
        keel::core::memory::Fusion::KeywordOnly
    );
}

pub(crate) fn mock_registry(server: &Server) -> Registry {
    let mut c = cfg(ProviderKind::Openai, &server.base, false);
    c.max_retries = 0;
    let mut reg = Registry::offline_only();
    reg.insert(
        "mock",
        Arc::new(OpenAi::new("mock", &c).unwrap()),
        "openai",
        "test",
    );
    reg.routing = RoutingConfig {
        triage: "mock".into(),
        draft: "mock".into(),
        final_: "mock".into(),
        cascade: false,
    };
    reg
}

pub(crate) fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_model_run_through_the_coordinator_records_its_calls() {
    let rt = tokio_rt();
    let ideas = r#"{"ideas":[{"title":"Pricing guide","score":0.8,"rationale":"fits","sources":[]}],"rationale":"one clear winner"}"#;
    let server = rt.block_on(Server::start(vec![
        openai_tools(&[("c1", "memory_search", r#"{"query":"pricing"}"#)]),
        openai_text(ideas),
    ]));
    let (_d, ws) = workspace();
    let c = coordinator(&ws, mock_registry(&server));
    let task = submit(&ws, "researcher", json!({"goals": ["pricing"]}));
    c.run_pending(&mut ws.store().unwrap()).unwrap();
    assert_eq!(task_state(&ws, &task).0, "succeeded");
    let run = run_of(&ws, &task);
    assert_eq!(run.provider, "mock");
    assert_eq!(model_calls(&ws, &run.id), 2);
    assert_eq!(server.count(), 2);
    assert_eq!((run.tokens_in, run.tokens_out), (200, 30));
}

#[test]
fn an_agents_external_action_waits_for_approval_and_an_edit_is_published_as_the_operators() {
    let rt = tokio_rt();
    let (_d, ws) = workspace();
    ws.store()
        .unwrap()
        .write(|tx| {
            put_version(
                tx,
                1,
                &Actor::Operator,
                "draft",
                "hello",
                None,
                &json!({"title": "Hello", "body": "# Hi"}),
            )
        })
        .unwrap();
    let args = json!({"action": "site.publish", "args": {"slug": "hello", "title": "Hello", "body": "# Hi", "version": 1,
        "object": {"kind": "draft", "id": "hello", "version": 1}, "rationale": "the draft is ready"}});
    let request = r#"{"action":"site.publish","target":"hello","object":{"kind":"draft","id":"hello","version":1},"summary":"Publish Hello","rationale":"ready"}"#;
    let server = rt.block_on(Server::start(vec![
        openai_tools(&[("c1", "external_action", &args.to_string())]),
        openai_text(request),
    ]));
    let c = coordinator(&ws, mock_registry(&server));
    let task = submit(
        &ws,
        "publisher",
        json!({"object": {"kind": "draft", "id": "hello", "version": 1}}),
    );
    let mut store = ws.store().unwrap();
    c.run_pending(&mut store).unwrap();
    let (state, wait_for, _) = task_state(&ws, &task);
    assert_eq!((state.as_str(), wait_for.as_str()), ("waiting", "approval"));
    let approval: String = store
        .conn()
        .query_row(
            "SELECT id FROM approvals WHERE task = ?1 AND status = 'pending'",
            [&task],
            |r| r.get(0),
        )
        .unwrap();
    // Nothing reached the site before the operator decided.
    let gates = keel::core::actions::Gates::for_workspace(&ws).unwrap();
    assert!(gates.site().read_page("hello").unwrap().is_none());
    // The operator edits the body on the card and approves.
    let templates = keel::core::agents::template::Templates::load(&ws.root.join("agents")).unwrap();
    let kinds = keel::core::agents::service::kinds_with_outputs(&ws.config, &templates).unwrap();
    wiring::approval_edit::approve(
        &kinds,
        &mut store,
        SystemClock.now_ms(),
        &approval,
        Some(&json!({"body": "# Hi, edited"})),
        false,
    )
    .unwrap();
    assert_eq!(author_of(&ws, "draft", "hello", 2), "operator");
    let v2 = keel::core::objects::get(store.conn(), "draft", "hello").unwrap();
    assert_eq!(
        (v2.version, v2.body["body"].as_str()),
        (2, Some("# Hi, edited"))
    );
    c.run_pending(&mut store).unwrap();
    assert_eq!(task_state(&ws, &task).0, "succeeded");
    let (_, page) = gates.site().read_page("hello").unwrap().unwrap();
    assert!(page.contains("# Hi, edited"), "{page}");
    // The model was not asked again: the settled run reused its record.
    assert_eq!(server.count(), 2);
}

/// Routes every tier of `ws` to an OpenAI-compatible provider at `base` (in its config file).
pub(crate) fn use_mock_provider(
    ws: &Workspace,
    base: &str,
    key_env: &str,
    stream: bool,
) -> Workspace {
    let config = std::fs::read_to_string(ws.root.join("config.toml")).unwrap();
    let config = config
        .replace(
            "[routing]\n",
            &format!(
                "[providers.mock]\nkind = \"openai\"\nbase_url = \"{base}\"\napi_key_env = \"{key_env}\"\nmodel = \"m1\"\nstream = {stream}\ntimeout_secs = 60\nmax_retries = 0\n\n[routing]\n",
            ),
        )
        .replace("triage = \"offline\"", "triage = \"mock\"")
        .replace("draft = \"offline\"", "draft = \"mock\"")
        .replace("final = \"offline\"", "final = \"mock\"");
    std::fs::write(ws.root.join("config.toml"), config).unwrap();
    Workspace::open(&ws.root).unwrap()
}

#[test]
fn the_console_runs_agent_roles_and_streams_their_output_as_events() {
    let rt = tokio_rt();
    let server = rt.block_on(Server::start(vec![Reply::Sse(openai_text_stream(&[
        r#"{"ideas":[{"title":"Pricing "#,
        r#"guide","score":0.8,"rationale":"fits","sources":[]}],"#,
        r#""rationale":"one clear winner"}"#,
    ]))]));
    let (_d, ws) = workspace();
    // An environment variable cargo sets for tests stands in for the key.
    let ws = use_mock_provider(&ws, &server.base, "CARGO_MANIFEST_DIR", true);
    let handle = CoreHandle::start(ws.clone()).unwrap();
    let mut events = handle.subscribe();
    let live = Live::start(&ws, Arc::new(SystemClock), &handle.events_sender()).unwrap();
    let task: Value = crate::support::answer_json(
        handle
            .request_blocking(Op::SubmitTask {
                task: serde_json::from_value(
                    json!({"role": "researcher", "title": "ideas", "input": {"goals": ["pricing"]}}),
                )
                .unwrap(),
            })
            .unwrap(),
    );
    let task = task["id"]
        .as_str()
        .or_else(|| task["task"]["id"].as_str())
        .map_or_else(|| panic!("no task id in {task}"), str::to_string);
    let mut streamed = String::new();
    wait_until("the researcher task to succeed", || {
        while let Ok(event) = events.try_recv() {
            if let Event::RunOutput { delta, .. } = event {
                streamed.push_str(&delta);
            }
        }
        task_state(&ws, &task).0 == "succeeded"
    });
    while let Ok(event) = events.try_recv() {
        if let Event::RunOutput { delta, .. } = event {
            streamed.push_str(&delta);
        }
    }
    live.stop();
    assert!(streamed.contains("Pricing guide"), "streamed: {streamed:?}");
    let run = run_of(&ws, &task);
    assert_eq!(
        (run.provider.as_str(), model_calls(&ws, &run.id)),
        ("mock", 1)
    );
}

fn daemon(ws: &Workspace) -> Daemon {
    Daemon(
        Command::new(keel_bin())
            .arg("--workspace")
            .arg(&ws.root)
            .arg("run")
            .env_remove("KEEL_WORKSPACE")
            .env("KEEL_WIRED_TEST_KEY", "test-key")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

pub(crate) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_mins(1);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigkill_mid_run_then_restart_does_not_repeat_completed_model_calls() {
    let rt = tokio_rt();
    let ideas = r#"{"ideas":[{"title":"Pricing guide","score":0.8,"rationale":"fits","sources":[]}],"rationale":"one clear winner"}"#;
    // Call 1 completes (a tool call); call 2 hangs until the process is killed; after the
    // restart the run resumes and only call 2 is made again.
    let server = rt.block_on(Server::start(vec![
        openai_tools(&[("c1", "memory_search", r#"{"query":"pricing"}"#)]),
        Reply::Stall,
        openai_text(ideas),
    ]));
    let (_d, ws) = workspace();
    use_mock_provider(&ws, &server.base, "KEEL_WIRED_TEST_KEY", false);
    let task = submit(&ws, "researcher", json!({"goals": ["pricing"]}));
    let mut first = daemon(&ws);
    wait_until("the second model call", || server.count() >= 2);
    let run = run_of(&ws, &task).id;
    assert_eq!(
        model_calls(&ws, &run),
        1,
        "call 1 is recorded before call 2 starts"
    );
    first.0.kill().unwrap(); // SIGKILL
    first.0.wait().unwrap();
    let _second = daemon(&ws);
    wait_until("the task to finish", || {
        task_state(&ws, &task).0 == "succeeded"
    });
    let resumed = run_of(&ws, &task);
    assert_eq!(resumed.id, run, "the same run resumed");
    assert_eq!(server.count(), 3, "call 1 was not made again");
    assert_eq!(model_calls(&ws, &run), 2);
    let store = ws.store().unwrap();
    let audit: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM audit WHERE action = 'agent.run_resumed' AND subject = ?1",
            [format!("run/{run}")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audit, 1);
}

#[test]
fn on_start_a_run_left_running_whose_task_is_over_is_closed() {
    let (_d, ws) = workspace();
    let c = coordinator(&ws, Registry::offline_only());
    let task = submit(
        &ws,
        "analyst",
        json!({"metrics": [{"name": "visits", "value": 3, "previous": 2}]}),
    );
    c.run_pending(&mut ws.store().unwrap()).unwrap();
    let run = run_of(&ws, &task).id;
    // As if the process died after the task was recorded but before the run was.
    ws.store()
        .unwrap()
        .conn()
        .execute(
            "UPDATE agent_runs SET status = 'running', finished_ms = NULL WHERE id = ?1",
            [&run],
        )
        .unwrap();
    let _executor = wiring::executor(&ws, Arc::new(SystemClock), quiet()).unwrap();
    let rec = run_of(&ws, &task);
    assert_eq!(rec.status, "cancelled");
    assert!(rec.error.unwrap().contains("its task is succeeded"));
    assert!(
        record::unfinished_runs(ws.store().unwrap().conn())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_budget_stop_escalates_the_task_with_the_reason() {
    let rt = tokio_rt();
    let server = rt.block_on(Server::start(vec![
        openai_tools(&[("c1", "memory_search", r#"{"query":"pricing"}"#)]),
        openai_text(r#"{"ideas":[],"rationale":"never reached"}"#),
    ]));
    let (_d, ws) = workspace();
    // The workspace's researcher: the shipped one with a budget one call exceeds.
    let shipped = include_str!("../../agents/researcher.toml");
    assert!(shipped.contains("task_tokens = 30000"));
    std::fs::create_dir_all(ws.root.join("agents")).unwrap();
    std::fs::write(
        ws.root.join("agents/researcher.toml"),
        shipped.replace("task_tokens = 30000", "task_tokens = 150"),
    )
    .unwrap();
    let c = coordinator(&ws, mock_registry(&server));
    let task = submit(&ws, "researcher", json!({"goals": ["pricing"]}));
    c.run_pending(&mut ws.store().unwrap()).unwrap();
    let run = run_of(&ws, &task);
    assert_eq!(run.status, "escalated");
    let detail: String = ws
        .store()
        .unwrap()
        .conn()
        .query_row(
            "SELECT state || ': ' || detail FROM tasks WHERE id = ?1",
            [&task],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        detail.starts_with("escalated: ") && detail.contains("budget"),
        "{detail}"
    );
    assert!(server.count() < 2, "the call over budget was not made");
}

#[test]
fn the_content_workflow_runs_its_agents_offline_and_stops_at_the_publish_approval() {
    let (_d, ws) = workspace();
    let c = coordinator(&ws, Registry::offline_only());
    let wf = submit(
        &ws,
        "workflow",
        json!({"workflow": "content", "input": {"goals": ["pricing for consultants"],
            "title": "Pricing your consulting", "brief": "value-based pricing", "slug": "pricing"}}),
    );
    let mut store = ws.store().unwrap();
    c.run_pending(&mut store).unwrap();
    let stages: Vec<(String, String)> = store
        .conn()
        .prepare("SELECT role, state FROM tasks WHERE parent = ?1 ORDER BY created_ms, id")
        .unwrap()
        .query_map([&wf], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let state = |role: &str| {
        stages
            .iter()
            .find(|(r, _)| r == role)
            .map(|(_, s)| s.clone())
    };
    for role in ["researcher", "writer", "editor"] {
        assert_eq!(
            state(role).as_deref(),
            Some("succeeded"),
            "{role}: {stages:?}"
        );
    }
    assert_eq!(state("publisher").as_deref(), Some("waiting"), "{stages:?}");
    // The card shows the editor's page and names the draft version the editor's run wrote.
    let (kind, id, version, proposed): (String, String, i64, String) = store
        .conn()
        .query_row(
            "SELECT a.object_kind, a.object_id, a.object_version, a.proposed_body
             FROM approvals a JOIN tasks t ON t.id = a.task
             WHERE t.parent = ?1 AND a.status = 'pending'",
            [&wf],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(kind, "draft");
    let author = author_of(&ws, &kind, &id, version);
    assert!(author.starts_with("agent:"), "{author}");
    assert!(proposed.contains("body"), "{proposed}");
}

#[test]
fn an_agents_findings_and_spawned_tasks_go_to_the_blackboard_and_the_queue_once() {
    let rt = tokio_rt();
    let ideas = r#"{"ideas":[{"title":"Pricing guide","score":0.8,"rationale":"fits","sources":[]}],"rationale":"one clear winner"}"#;
    let server = rt.block_on(Server::start(vec![
        openai_tools(&[
            ("c1", "blackboard_publish", r#"{"topic":"test.notes","text":"Pricing guide looks promising"}"#),
            ("c2", "spawn_task", r#"{"role":"analyst","title":"measure pricing","input":{"metrics":[{"name":"visits","value":3,"previous":2}]}}"#),
        ]),
        openai_text(ideas),
    ]));
    let (_d, ws) = workspace();
    // This workspace's researcher may also spawn tasks.
    let shipped = include_str!("../../agents/researcher.toml");
    let allowed = r#"allowed = ["memory_search", "object_read", "blackboard_publish"]"#;
    assert!(shipped.contains(allowed));
    std::fs::create_dir_all(ws.root.join("agents")).unwrap();
    std::fs::write(
        ws.root.join("agents/researcher.toml"),
        shipped.replace(
            allowed,
            r#"allowed = ["memory_search", "object_read", "blackboard_publish", "spawn_task"]"#,
        ),
    )
    .unwrap();
    let c = coordinator(&ws, mock_registry(&server));
    let task = submit(&ws, "researcher", json!({"goals": ["pricing"]}));
    let mut store = ws.store().unwrap();
    c.run_pending(&mut store).unwrap();
    assert_eq!(task_state(&ws, &task).0, "succeeded");
    let run = run_of(&ws, &task).id;
    let (topic, text, by_task): (String, String, String) = store
        .conn()
        .query_row("SELECT topic, text, task FROM findings", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(
        (topic.as_str(), by_task.as_str()),
        ("test.notes", task.as_str())
    );
    assert!(text.contains("Pricing guide"));
    let children: Vec<(String, String)> = store
        .conn()
        .prepare("SELECT role, title FROM tasks WHERE parent = ?1")
        .unwrap()
        .query_map([&task], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        children,
        vec![("analyst".to_string(), "measure pricing".to_string())]
    );
    // Each side effect committed with its checkpoint under `<run>#<step>`.
    let keyed: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM run_steps WHERE run_id LIKE ?1",
            [format!("{run}#%")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        keyed, 1,
        "the finding's checkpoint (a spawn is idempotent by its key)"
    );
}
