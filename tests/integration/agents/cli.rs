//! The real binary: `keel agents check` locates errors; run, list, show and replay offline.

use crate::support::{keel, temp_workspace};

#[test]
fn agents_check_names_file_line_and_column() {
    let (_d, ws) = temp_workspace();
    std::fs::create_dir_all(ws.join("agents")).unwrap();
    let good = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/agents/writer.toml"))
        .unwrap();
    std::fs::write(
        ws.join("agents/writer.toml"),
        good.replace("[budget]\n", "[budget]\ntask_dollars = 3\n"),
    )
    .unwrap();
    let out = keel(&ws, &["agents", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = good.lines().position(|l| l == "[budget]").unwrap() + 2;
    assert!(
        stdout.contains(&format!(
            "agents/writer.toml:{line}:1: unknown field `task_dollars`"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("researcher: ok"), "{stdout}");
}

#[test]
fn offline_run_then_list_show_and_replay() {
    let (_d, ws) = temp_workspace();
    let out = keel(
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["status"], "succeeded");
    let run = outcome["run"].as_str().unwrap();
    let list = String::from_utf8_lossy(&keel(&ws, &["runs", "list", "--json"]).stdout).to_string();
    assert!(
        list.contains(run) && list.contains("\"provider\":\"offline\""),
        "{list}"
    );
    let show = keel(&ws, &["runs", "show", run, "--json"]);
    let detail: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(detail["template"], "scheduler");
    assert_eq!(detail["steps"].as_array().unwrap().len(), 4);
    let replay = keel(&ws, &["runs", "replay", run, "--json"]);
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&replay.stdout).unwrap();
    assert_eq!(report["matches"], true);
    let cost =
        String::from_utf8_lossy(&keel(&ws, &["runs", "cost", "--by", "role", "--json"]).stdout)
            .to_string();
    let row: serde_json::Value = serde_json::from_str(cost.lines().next().unwrap()).unwrap();
    assert_eq!(
        (
            row["key"].as_str(),
            row["calls"].as_i64(),
            row["cost_usd"].as_f64()
        ),
        (Some("scheduler"), Some(1), Some(0.0))
    );
    let est = keel(
        &ws,
        &["agents", "estimate", "writer", "--json", "--input", "{}"],
    );
    let est: serde_json::Value = serde_json::from_slice(&est.stdout).unwrap();
    assert_eq!(est["estimate"]["usd"], 0.0);
    assert!(
        est["estimate"]["basis"]
            .as_str()
            .unwrap()
            .starts_with("offline provider"),
        "{est}"
    );
    let missing = keel(&ws, &["runs", "replay", "no-such-run"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
}

#[test]
fn a_workspace_adds_and_overrides_roles() {
    let (_d, ws) = temp_workspace();
    std::fs::create_dir_all(ws.join("agents")).unwrap();
    let writer =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/agents/writer.toml"))
            .unwrap();
    // A new role built on the writer's offline rules, and an override of the editor.
    let newsletter = writer
        .replace(
            "description = \"Drafts articles and offers from a brief and the notes in memory\"",
            "description = \"Drafts the monthly newsletter\"",
        )
        .replace(
            "max_tokens = 4000",
            "max_tokens = 4000\noffline_recipe = \"writer\"",
        );
    std::fs::write(ws.join("agents/newsletter.toml"), newsletter).unwrap();
    let editor =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/agents/editor.toml"))
            .unwrap();
    std::fs::write(
        ws.join("agents/editor.toml"),
        editor.replace("Revises drafts", "Our house editor"),
    )
    .unwrap();
    let list =
        String::from_utf8_lossy(&keel(&ws, &["agents", "list", "--json"]).stdout).to_string();
    let rows: Vec<serde_json::Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |role: &str| rows.iter().find(|r| r["role"] == role).unwrap().clone();
    assert!(
        find("newsletter")["origin"]
            .as_str()
            .unwrap()
            .ends_with("agents/newsletter.toml")
    );
    assert!(
        find("editor")["description"]
            .as_str()
            .unwrap()
            .starts_with("Our house editor")
    );
    assert_eq!(find("writer")["origin"], "shipped");
    let out = keel(
        &ws,
        &[
            "agents",
            "run",
            "newsletter",
            "--json",
            "--input",
            r#"{"title":"November"}"#,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["output"]["title"], "November");
    assert_eq!(outcome["object"]["kind"], "draft");
}

/// SIGKILL the real binary while its second model call is in flight, then resume the run:
/// the first (completed) call is not made again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_resumes_without_repeating_completed_calls() {
    use super::server::{Reply, Server, openai_text, openai_tools};
    let (_d, ws) = temp_workspace();
    let server = Server::start(vec![
        openai_tools(&[("c1", "memory_search", r#"{"query":"pricing"}"#)]),
        Reply::Stall,
        openai_text(r#"{"ideas":[{"title":"Pricing guide","score":0.9,"rationale":"fits","sources":[]}],"rationale":"resumed"}"#),
    ])
    .await;
    std::fs::write(
        ws.join("config.toml"),
        format!(
            "[providers.mock]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"m1\"\nstream = false\nmax_retries = 0\n\n\
             [routing]\ntriage = \"mock\"\ndraft = \"mock\"\nfinal = \"mock\"\n",
            server.base
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(crate::support::keel_bin())
        .arg("--workspace")
        .arg(&ws)
        .args([
            "agents",
            "run",
            "researcher",
            "--json",
            "--task",
            "t1",
            "--input",
            r#"{"goals":["pricing"]}"#,
        ])
        .env_remove("KEEL_WORKSPACE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..400 {
        if server.count() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(server.count(), 2, "the second call never arrived");
    child.kill().unwrap();
    child.wait().unwrap();

    let ws2 = ws.clone();
    let list = tokio::task::spawn_blocking(move || keel(&ws2, &["runs", "list", "--json"]))
        .await
        .unwrap();
    let row: serde_json::Value =
        serde_json::from_slice(list.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(row["status"], "running", "killed mid-call: {row}");
    let run = row["id"].as_str().unwrap().to_string();
    let ws3 = ws.clone();
    let r = run.clone();
    let out = tokio::task::spawn_blocking(move || {
        keel(
            &ws3,
            &["agents", "run", "researcher", "--json", "--resume", &r],
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (outcome["status"].as_str(), outcome["run"].as_str()),
        (Some("succeeded"), Some(run.as_str()))
    );
    assert_eq!(
        server.count(),
        3,
        "only the interrupted call was made again"
    );
    // The resumed call carries the recorded tool result of the first call.
    let resumed = server.request(2);
    assert!(
        resumed.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "tool")
    );
}
