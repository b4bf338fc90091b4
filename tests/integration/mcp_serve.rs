//! `keel mcp serve` driven by a real MCP client nobody here wrote: the Python `mcp` SDK
//! (installed pinned by `.ci/mcp-install` with the reference servers), over stdio and over
//! Streamable HTTP on loopback. The client lists the tools, searches the demo's memory,
//! submits a task, proposes a draft, lists approvals, and tries to approve one: refused by
//! the core, audited, and the approval stays pending.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use keel::core::approvals::{self, GateResult};
use keel::core::audit::Actor;
use keel::core::clock::{Clock, SystemClock};
use keel::core::effects::Reversibility;
use keel::core::workspace::Workspace;
use serde_json::{Value, json};

use crate::mcp_peers::peers;
use crate::support::{keel_bin, keel_json, temp_workspace};

fn python() -> PathBuf {
    crate::mcp_peers::peers()
        .expect("checked by the caller")
        .time
        .with_file_name("python")
}

fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/mcp_serve/client.py")
}

/// Runs the SDK's client: `mode` stdio (spawning `keel mcp serve` on `ws`) or http (`target`
/// a URL, `extra` the token); returns the tools it listed and each call's result.
fn client(mode: &str, target: &str, extra: &str, calls: &Value) -> Result<Value, String> {
    let out = Command::new(python())
        .arg(client_script())
        .args([mode, target, extra, &calls.to_string()])
        .output()
        .expect("run the MCP client");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("the client prints JSON"))
}

/// The demo business, plus one publication waiting for the operator's approval.
fn demo_with_pending_approval() -> (tempfile::TempDir, PathBuf, String) {
    let (dir, root) = temp_workspace();
    let ws = Workspace::open(&root).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    keel::core::demo::seed_workspace(&ws, &clock).unwrap();
    let mut store = ws.store().unwrap();
    let policy = keel::core::policy::Policy::load(&root).unwrap();
    let req = crate::policy::request(
        "publisher",
        "site.publish",
        Reversibility::Reversible,
        "launch-post",
    );
    let card = crate::policy::card("t1", json!({"slug": "launch-post"}));
    let gated = approvals::gate(
        &mut store,
        clock.now_ms(),
        &policy,
        &Actor::agent("r"),
        &req,
        &card,
    )
    .unwrap();
    let GateResult::Pending { approval, .. } = gated else {
        panic!("the shipped policy asks before publishing: {gated:?}")
    };
    (dir, root, approval)
}

fn result<'a>(out: &'a Value, tool: &str) -> &'a Value {
    out["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tool"] == tool)
        .unwrap_or_else(|| panic!("no result for {tool}: {out}"))
}

fn audit_by(root: &Path, actor: &str) -> Vec<(String, String)> {
    let ws = Workspace::open(root).unwrap();
    let store = ws.store().unwrap();
    let mut stmt = store
        .conn()
        .prepare("SELECT action, subject FROM audit WHERE actor = ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map([actor], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The SDK listed every tool with its read-only hint, and nothing that decides approvals.
fn assert_tools_offered(out: &Value) {
    let tools: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for wanted in [
        "memory_search",
        "object_read",
        "object_history",
        "tasks_list",
        "task_show",
        "task_submit",
        "draft_propose",
        "approvals_list",
    ] {
        assert!(tools.contains(&wanted), "{wanted} not offered: {tools:?}");
    }
    assert!(
        !tools
            .iter()
            .any(|t| t.contains("approve") || t.contains("reject"))
    );
    let read_only = |name: &str| {
        out["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["read_only"]
            .as_bool()
            .unwrap()
    };
    assert!(read_only("memory_search") && !read_only("task_submit"));
}

/// Memory search ranks the note about send days first and says where it came from.
fn assert_search_has_provenance(out: &Value) {
    let search = result(out, "memory_search");
    assert_eq!(search["is_error"], false, "{search}");
    let hits = search["structured"]["hits"].as_array().unwrap();
    assert!(!hits.is_empty(), "{search}");
    assert!(
        hits[0]["preview"].as_str().unwrap().contains("Tuesday"),
        "{hits:?}"
    );
    assert!(!hits[0]["source"].as_str().unwrap().is_empty(), "{hits:?}");
    assert!(hits[0]["created_ms"].as_i64().unwrap() > 0);
    assert!(
        search["structured"]["embedding"]
            .as_str()
            .unwrap()
            .contains("MiniLM")
    );
}

#[test]
fn an_mcp_client_searches_submits_and_proposes_but_cannot_approve() {
    if peers().is_none() {
        return;
    }
    let (_dir, root, approval) = demo_with_pending_approval();
    let calls = json!([
        ["memory_search", {"query": "which weekday do newsletter sends open best", "k": 3}],
        ["objects_list", {"kind": "idea", "limit": 5}],
        ["task_submit", {"role": "researcher", "title": "from the agent", "input": {"goals": ["pricing"]}, "idempotency_key": "agent-1"}],
        ["task_submit", {"role": "researcher", "input": {"goals": ["pricing"]}, "idempotency_key": "agent-1"}],
        ["tasks_list", {"text": "from the agent"}],
        ["draft_propose", {"id": "agent-idea", "body": {"title": "Refund policies, measured", "body": "A first outline."}}],
        ["draft_propose", {"id": "agent-idea", "based_on": 1, "body": {"title": "Refund policies, measured", "body": "A second outline."}}],
        ["draft_propose", {"kind": "contract", "id": "northwind-2026", "body": {"title": "cheaper"}}],
        ["approvals_list", {}],
        ["approve", {"id": approval}],
        ["reject", {"id": approval, "reason": "I decide"}],
    ]);
    let out = client(
        "stdio",
        keel_bin().to_str().unwrap(),
        root.to_str().unwrap(),
        &calls,
    )
    .unwrap_or_else(|e| panic!("the MCP client failed: {e}"));

    assert_tools_offered(&out);
    assert_search_has_provenance(&out);
    let ideas = result(&out, "objects_list");
    assert!(
        ideas["structured"]["total"].as_u64().unwrap() > 0,
        "{ideas}"
    );

    // One task for the two submissions with the same key, submitted as the client.
    let tasks = &result(&out, "tasks_list")["structured"];
    assert_eq!(tasks["total"], 1, "{tasks}");
    let task = tasks["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(tasks["items"][0]["state"], "queued");

    // The draft has two versions authored by the client; the contract was not writable.
    let refused = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["is_error"] == true)
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(refused[0].contains("\"contract\""), "{refused:?}");
    assert!(
        refused[1..]
            .iter()
            .all(|r| r.contains("only by the operator")),
        "{refused:?}"
    );
    let pending = &result(&out, "approvals_list")["structured"];
    assert_eq!(pending["items"][0]["id"], approval.as_str(), "{pending}");

    // A second session reads back what the first did.
    let again = client(
        "stdio",
        keel_bin().to_str().unwrap(),
        root.to_str().unwrap(),
        &json!([
            ["task_show", {"id": task}],
            ["object_read", {"kind": "draft", "id": "agent-idea"}],
            ["object_history", {"kind": "draft", "id": "agent-idea"}],
            ["audit_page", {}],
        ]),
    )
    .unwrap();
    assert_eq!(
        result(&again, "task_show")["structured"]["role"],
        "researcher"
    );
    let draft = &result(&again, "object_read")["structured"];
    assert_eq!(
        (draft["version"].as_i64(), draft["author"].as_str()),
        (Some(2), Some("mcp:test-agent")),
        "{draft}"
    );
    assert_eq!(draft["body"]["body"], "A second outline.");
    let history: Value =
        serde_json::from_str(result(&again, "object_history")["text"].as_str().unwrap()).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
    assert_eq!(result(&again, "audit_page")["is_error"], true);

    // The approval is still the operator's to decide.
    let listed = keel_json(&root, &["approvals", "list", "--json"]);
    assert_eq!(listed["items"][0]["id"], approval.as_str());
    assert_eq!(listed["items"][0]["status"], "pending", "{listed}");

    assert_audited_as_the_client(&root, &task);
}

/// Every call is in the audit log under the client's name: 15 calls, 4 refused; the task
/// and the draft were written as the client.
fn assert_audited_as_the_client(root: &Path, task: &str) {
    let audit = audit_by(root, "mcp:test-agent");
    let calls = audit.iter().filter(|(a, _)| a == "mcp.serve.call").count();
    let refusals: Vec<&str> = audit
        .iter()
        .filter(|(a, _)| a == "mcp.serve.refused")
        .map(|(_, s)| s.as_str())
        .collect();
    assert_eq!(
        refusals,
        [
            "mcp-serve/draft_propose",
            "mcp-serve/approve",
            "mcp-serve/reject",
            "mcp-serve/audit_page"
        ],
        "{audit:?}"
    );
    assert_eq!(calls, 11, "{audit:?}");
    assert!(
        audit
            .iter()
            .any(|(a, s)| a == "task.submitted" && s == &format!("task/{task}")),
        "the task was not submitted as the client: {audit:?}"
    );
    assert!(
        audit.iter().any(|(a, _)| a.starts_with("object.")),
        "the draft was not written as the client: {audit:?}"
    );
}

/// Over Streamable HTTP the same tools answer a client that sends the token from the 0600
/// file; without it, or with another, the server answers 401 and nothing is served.
#[test]
fn over_http_only_a_client_with_the_token_is_served() {
    if peers().is_none() {
        return;
    }
    let (_dir, root) = temp_workspace();
    let mut server = Command::new(keel_bin())
        .arg("--workspace")
        .arg(&root)
        .args(["mcp", "serve", "--http", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    let token_file = root.join("run/mcp-serve.token");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    let calls = json!([
        ["task_submit", {"role": "researcher", "input": {"goals": ["pricing"]}}],
        ["tasks_list", {}],
        ["approve", {"id": "anything"}],
    ]);
    let with_token = client("http", &url, &token, &calls);
    let wrong = client("http", &url, "not-the-token", &json!([["tasks_list", {}]]));
    let none = client("http", &url, "", &json!([["tasks_list", {}]]));
    let _ = server.kill();
    let _ = server.wait();

    let out = with_token.unwrap_or_else(|e| panic!("the MCP client failed: {e}"));
    assert_eq!(
        result(&out, "tasks_list")["structured"]["total"],
        1,
        "{out}"
    );
    assert_eq!(result(&out, "approve")["is_error"], true);
    for refused in [wrong, none] {
        let err = refused.expect_err("served without the token");
        assert!(err.contains("401"), "{err}");
    }
    let audit = audit_by(&root, "mcp:test-agent");
    assert_eq!(
        audit.iter().filter(|(a, _)| a == "mcp.serve.call").count(),
        2
    );
    assert_eq!(
        audit
            .iter()
            .filter(|(a, _)| a == "mcp.serve.refused")
            .count(),
        1
    );
}
