//! Roles opt into MCP tools by name (`mcp:SERVER/TOOL`, `mcp:SERVER/*`): the model is offered
//! exactly those, with the server's schemas; a call to anything else is refused and audited.
//! The model is the scripted loopback server; the MCP server is the real server-everything.

use std::sync::Arc;

use keel::core::agents::AgentTask;
use keel::core::audit::{self, Filter};
use keel::core::llm::config::{ProviderKind, RoutingConfig};
use keel::core::workspace::Workspace;
use std::fmt::Write as _;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::agents::providers::cfg;
use crate::agents::runtime::runtime_with;
use crate::agents::server::{Server, openai_text, openai_tools};
use crate::mcp_peers::peers;

const IDEAS: &str = r#"{"ideas":[{"title":"Pricing guide","score":0.8,"rationale":"fits","sources":[]}],"rationale":"one idea"}"#;

#[tokio::test]
async fn a_role_is_offered_exactly_its_mcp_tools_and_others_are_refused() {
    let Some(p) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace_offering(&p.everything, dir.path(), "\"mcp:everything/echo\", ");

    let server = Server::start(vec![
        openai_tools(&[
            (
                "c1",
                "mcp__everything__echo",
                r#"{"message":"from the agent"}"#,
            ),
            ("c2", "mcp__everything__get-sum", r#"{"a":1,"b":2}"#),
        ]),
        openai_text(IDEAS),
    ])
    .await;
    let mut c = cfg(ProviderKind::Openai, &server.base, false);
    c.max_retries = 0;
    let routing = RoutingConfig {
        triage: "mock".into(),
        draft: "mock".into(),
        final_: "mock".into(),
        cascade: false,
    };
    let mut rt = runtime_with(
        &ws,
        &[("mock", c)],
        routing,
        Arc::new(|_: &str, _: &str| {}),
    );
    let task = AgentTask {
        task: "task-mcp".into(),
        role: "researcher".into(),
        input: json!({"goals": ["g"]}),
        ..AgentTask::default()
    };
    let out = rt.execute(&task, &CancellationToken::new()).await.unwrap();
    assert_eq!(out.status(), "succeeded", "{out:?}");

    let offered: Vec<Value> = server.request(0).body["tools"].as_array().unwrap().clone();
    let names: Vec<&str> = offered
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(names.contains(&"mcp__everything__echo"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.contains("get-sum")),
        "only the opted-in tool: {names:?}"
    );
    let echo = offered
        .iter()
        .find(|t| t["function"]["name"] == "mcp__everything__echo")
        .unwrap();
    assert_eq!(
        echo["function"]["parameters"]["required"],
        json!(["message"])
    );

    let results: Vec<String> = server.request(1).body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect();
    assert!(results[0].contains("from the agent"), "{}", results[0]);
    assert!(
        results[1].contains("refused") && results[1].contains("unknown tool"),
        "{}",
        results[1]
    );
    let store = ws.store().unwrap();
    let refused = audit::query(
        store.conn(),
        &Filter {
            action: Some("agent.refused".into()),
            ..Filter::default()
        },
        10,
        true,
    )
    .unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
}

/// A workspace whose researcher opts into `allowed` (a TOML list's leading entries) of the
/// real server-everything.
fn workspace_offering(
    everything: &std::path::Path,
    dir: &std::path::Path,
    allowed: &str,
) -> Workspace {
    let root = dir.join("ws");
    Workspace::init(&root).unwrap();
    let mut config = std::fs::read_to_string(root.join("config.toml"))
        .unwrap()
        .replace("servers = {}\n", "");
    write!(
        config,
        "\n[mcp.servers.everything]\ncommand = {:?}\nargs = [\"stdio\"]\n",
        everything.display().to_string()
    )
    .unwrap();
    std::fs::write(root.join("config.toml"), config).unwrap();
    let (_, researcher) = keel::core::agents::template::SHIPPED[0];
    std::fs::create_dir_all(root.join("agents")).unwrap();
    std::fs::write(
        root.join("agents/researcher.toml"),
        researcher.replacen("allowed = [", &format!("allowed = [{allowed}"), 1),
    )
    .unwrap();
    Workspace::open(&root).unwrap()
}

/// Outside the task queue nobody can approve, so a run there reaches only what the policy
/// allows outright: a tool its server does not mark read-only is refused by the policy
/// (which says why), and nothing is written to the ledger or sent.
#[tokio::test]
async fn outside_the_queue_an_agent_reaches_only_tools_the_policy_allows() {
    let Some(p) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace_offering(
        &p.everything,
        dir.path(),
        "\"mcp:everything/toggle-simulated-logging\", ",
    );
    let server = Server::start(vec![
        openai_tools(&[("c1", "mcp__everything__toggle-simulated-logging", "{}")]),
        openai_text(IDEAS),
    ])
    .await;
    let mut c = cfg(ProviderKind::Openai, &server.base, false);
    c.max_retries = 0;
    let routing = RoutingConfig {
        triage: "mock".into(),
        draft: "mock".into(),
        final_: "mock".into(),
        cascade: false,
    };
    let mut rt = runtime_with(
        &ws,
        &[("mock", c)],
        routing,
        Arc::new(|_: &str, _: &str| {}),
    );
    let task = AgentTask {
        task: "task-mcp-write".into(),
        role: "researcher".into(),
        input: json!({"goals": ["g"]}),
        ..AgentTask::default()
    };
    let out = rt.execute(&task, &CancellationToken::new()).await.unwrap();
    assert_eq!(out.status(), "succeeded", "{out:?}");
    let result = server.request(1).body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_string())
        .unwrap();
    assert!(
        result.contains("needs approval (rule approve-irreversible")
            && result.contains("outside the task queue"),
        "{result}"
    );
    let store = ws.store().unwrap();
    let effects: i64 = store
        .conn()
        .query_row("SELECT count(*) FROM effects", [], |r| r.get(0))
        .unwrap();
    assert_eq!(effects, 0, "nothing was sent");
    let decided = audit::query(
        store.conn(),
        &Filter {
            action: Some("policy.decide".into()),
            ..Filter::default()
        },
        10,
        true,
    )
    .unwrap();
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert_eq!(decided[0].payload["outcome"], "require_approval");
}
