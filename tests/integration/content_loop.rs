//! The content business end to end, headless: the demo workspace, the researcher's ranking
//! moving once analytics are reconciled, and the invoicing gate (shipped policy) on the
//! real binary with the demo's invoice outbox.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel::core::audit::Actor;
use keel::core::clock::{Clock, ManualClock};
use keel::core::memory::{Memory, kb};
use keel::core::objects::{self, Kinds};
use keel::core::store::{Durability, Store};
use keel::core::workspace::Workspace;
use serde_json::{Value, json};

use crate::support::{Daemon, eventually, keel, temp_workspace};

const NOW: i64 = 1_795_000_000_000;

#[test]
fn demo_workspace_has_the_business_memory_analytics_schedules_and_a_first_round() {
    let (_dir, root) = temp_workspace();
    let ws = Workspace::open(&root).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::at(NOW));
    let report = keel::core::demo::seed_workspace(&ws, &clock)
        .unwrap()
        .expect("a fresh workspace is seeded");
    assert!(report.notes >= 30, "{report:?}");
    assert_eq!(report.metrics, 15);
    // Seeding twice adds nothing.
    assert!(
        keel::core::demo::seed_workspace(&ws, &clock)
            .unwrap()
            .is_none()
    );
    let store = Store::open(&ws.db_path(), Durability::Normal).unwrap();
    // Analytics are reconciled onto publications and their topic's ideas.
    let top = objects::get(
        store.conn(),
        "publication",
        "pricing-teardown-figma-plugins",
    )
    .unwrap();
    assert_eq!(top.body["outcomes"]["signups"], json!(96.0));
    let idea = objects::get(store.conn(), "idea", "pricing-page-experiments").unwrap();
    assert_eq!(idea.body["evidence"]["signups"], json!(184.0));
    // Notes are keyword-searchable whether or not the embedding model is installed.
    let hits: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM memory_fts WHERE memory_fts MATCH 'teardown'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(hits >= 2, "{hits}");
    // The reopened config has the daily and weekly schedules and the invoice endpoint.
    let ws = Workspace::open(&root).unwrap();
    let names: Vec<&str> = ws
        .config
        .schedules
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert!(names.contains(&"daily-research") && names.contains(&"weekly-analytics"));
    keel::core::scheduler::SchedulerSettings::from_config(&ws.config).unwrap();
    assert_eq!(
        ws.config.connectors.outboxes["invoice"].dir,
        "outbox/invoices"
    );
    // The first round is queued, and the pinned guide is there.
    let first =
        keel::core::queue::get(store.conn(), report.first_task.as_deref().unwrap()).unwrap();
    assert_eq!(first.role, "workflow");
    assert_eq!(first.state.to_string(), "queued");
    objects::get(store.conn(), "note", "start-here").unwrap();
    assert!(
        keel::core::audit::verify(store.conn())
            .unwrap()
            .first_broken
            .is_none()
    );
}

#[test]
fn ranking_changes_once_analytics_are_reconciled() {
    let (_dir, root) = temp_workspace();
    let ws = Workspace::open(&root).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::at(NOW));
    let kinds = Kinds::from_config(&ws.config).unwrap();
    let mut store = ws.store().unwrap();
    keel::core::demo::seed(&mut store, &kinds, NOW).unwrap();
    let memory = Memory::open(&ws, &mut store, clock.clone()).unwrap();
    let actor = Actor::system("test");
    for note in keel::core::demo::notes() {
        let item = kb::NewItem {
            text: note.text,
            kind: note.kind,
            source: "test".into(),
            ..kb::NewItem::default()
        };
        kb::add_or_defer(&mut store, &memory, &actor, &item).unwrap();
    }
    let goals: Vec<String> = keel::core::demo::GOALS
        .iter()
        .map(|g| (*g).to_string())
        .collect();
    let before = keel::core::research::rank_ideas(&mut store, &kinds, &actor, NOW, &goals).unwrap();
    assert!(before.len() >= 3);
    assert!(before.iter().all(|r| !r.rationale.contains("past outcome")));
    // The analyst's weekly job: import, then reconcile into objects and memory.
    let imported = keel::core::outcomes::import_csv(
        &mut store,
        &kinds,
        &actor,
        NOW,
        keel::core::demo::ANALYTICS,
        "analytics.csv",
    )
    .unwrap();
    assert_eq!(imported.imported, 15);
    let rec =
        keel::core::outcomes::reconcile(&mut store, &kinds, Some(&memory), &actor, NOW).unwrap();
    assert_eq!(rec.publications.len(), 5);
    assert_eq!(rec.notes, 5);
    let after =
        keel::core::research::rank_ideas(&mut store, &kinds, &actor, NOW + 1, &goals).unwrap();
    let order =
        |r: &[keel::core::research::Ranked]| r.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
    let scores = |r: &[keel::core::research::Ranked]| r.iter().map(|i| i.score).collect::<Vec<_>>();
    assert!(
        order(&before) != order(&after) || scores(&before) != scores(&after),
        "the ranking moved: {before:?} vs {after:?}"
    );
    assert!(
        after.iter().any(|r| r.rationale.contains("past outcome")),
        "{after:?}"
    );
    // The recorded ranking is on the idea objects, with a new version.
    let top = &after[0];
    let obj = objects::get(store.conn(), "idea", &top.id).unwrap();
    assert_eq!(obj.body["rank"], json!(1));
    assert!(obj.body["rationale"].as_str().unwrap().len() > 10);
    // Importing the same rows again changes nothing.
    let again =
        keel::core::outcomes::reconcile(&mut store, &kinds, Some(&memory), &actor, NOW).unwrap();
    assert!(
        again.publications.is_empty() && again.notes == 0,
        "{again:?}"
    );
}

fn ok(ws: &Path, args: &[&str]) -> String {
    let out = keel(ws, args);
    assert!(
        out.status.success(),
        "keel {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn store(ws: &Path) -> Store {
    Store::open(&ws.join("keel.db"), Durability::Full).unwrap()
}

fn state(ws: &Path, id: &str) -> String {
    keel::core::queue::get(store(ws).conn(), id)
        .unwrap()
        .state
        .to_string()
}

fn invoice_task(ws: &Path, amount: f64, customer: &str) -> String {
    let input = json!({"action": "outbox.invoice", "amount": amount, "kind": "contract",
        "target": customer, "summary": format!("Send invoice to {customer}"),
        "args": {"customer": customer, "total": amount}})
    .to_string();
    let row: Value = serde_json::from_str(&ok(
        ws,
        &[
            "task", "add", "--role", "effect", "--input", &input, "--json",
        ],
    ))
    .unwrap();
    row["id"].as_str().unwrap().to_string()
}

/// The demo's invoice connector: a local outbox.
const INVOICE_OUTBOX: &str = "[connectors.outboxes.invoice]\ndir = \"outbox/invoices\"\n";

/// A workspace with the demo's invoice outbox and the shipped policy (2-second hold
/// instead of 10 minutes), and its daemon.
fn invoicing_workspace() -> (tempfile::TempDir, std::path::PathBuf, Daemon) {
    let (dir, ws) = temp_workspace();
    std::fs::write(ws.join("config.toml"), format!("{FAST}{INVOICE_OUTBOX}")).unwrap();
    let policy = keel::core::policy::DEFAULT_POLICY.replace("hold_secs = 600", "hold_secs = 2");
    std::fs::write(ws.join("policy.toml"), policy).unwrap();
    let daemon = Daemon::start(&ws, None);
    (dir, ws, daemon)
}

/// Invoices to `who` in the outbox.
fn sent(ws: &Path, who: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(ws.join("outbox/invoices")) else {
        return 0;
    };
    entries
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .filter(|text| text.contains(who))
        .count()
}

#[test]
fn invoicing_gate_holds_above_the_threshold_and_allows_below() {
    let (_dir, ws, _daemon) = invoicing_workspace();
    let posts = |who: &str| sent(&ws, who);
    // Below the threshold: sent on its own, once.
    let small = invoice_task(&ws, 450.0, "maria-lopez");
    eventually("the small invoice to be sent", || {
        (state(&ws, &small) == "succeeded").then_some(())
    });
    assert_eq!(posts("maria-lopez"), 1);
    // Above: waits for approval under the invoice rule; one is approved, one cancelled in
    // its hold window.
    let large = invoice_task(&ws, 2400.0, "northwind-labs");
    let cancelled = invoice_task(&ws, 1500.0, "cancelled-client");
    let a = pending_for(&ws, &large);
    let b = pending_for(&ws, &cancelled);
    assert_eq!(a.rule, "approve-large-invoices");
    assert_eq!(
        posts("northwind-labs"),
        0,
        "nothing is sent before approval"
    );
    ok(&ws, &["approvals", "approve", &a.id, &b.id]);
    ok(
        &ws,
        &["approvals", "cancel", &b.id, "--reason", "wrong amount"],
    );
    eventually("the large invoice to be sent", || {
        (state(&ws, &large) == "succeeded").then_some(())
    });
    assert_eq!(posts("northwind-labs"), 1);
    eventually("the cancelled invoice to fail", || {
        (state(&ws, &cancelled) == "failed").then_some(())
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        posts("cancelled-client"),
        0,
        "a cancelled invoice is never sent"
    );
}

#[test]
fn the_invoicing_workflow_is_gated_on_the_drafted_total() {
    let (_dir, ws, _daemon) = invoicing_workspace();
    let posts = |who: &str| sent(&ws, who);
    // The invoicing workflow: the accountant drafts from the contract, the send stage is
    // gated on the drafted total.
    let contract = json!({"contract": {"customer": "workflow-client", "currency": "USD",
        "terms_days": 14, "lines": [{"description": "Consulting day", "quantity": 2, "unit_price": 1200.0}]}})
    .to_string();
    let row: Value = serde_json::from_str(&ok(
        &ws,
        &[
            "task",
            "add",
            "--workflow",
            "invoicing",
            "--input",
            &contract,
            "--json",
        ],
    ))
    .unwrap();
    let wf = row["id"].as_str().unwrap().to_string();
    let card = eventually("the workflow's invoice approval", || {
        keel::core::approvals::list(store(&ws).conn(), true, 0, 100)
            .unwrap()
            .items
            .into_iter()
            .find(|a| a.target == "workflow-client" && a.status == "pending")
    });
    assert_eq!(card.rule, "approve-large-invoices");
    assert_eq!(card.amount, Some(2400.0));
    // The card says how the accountant computed the invoice.
    assert!(
        card.rationale.contains("quantity × unit price"),
        "{}",
        card.rationale
    );
    assert_eq!(
        card.object.as_ref().map(|o| o.kind.as_str()),
        Some("invoice")
    );
    assert_eq!(card.reversibility, "irreversible");
    assert!(!card.undo_available);
    assert_eq!(posts("workflow-client"), 0);
    ok(
        &ws,
        &[
            "approvals",
            "reject",
            &card.id,
            "--reason",
            "not this month",
        ],
    );
    eventually("the workflow to end", || {
        matches!(
            state(&ws, &wf).as_str(),
            "failed" | "escalated" | "cancelled"
        )
        .then_some(())
    });
    assert_eq!(
        posts("workflow-client"),
        0,
        "a rejected invoice is never sent"
    );
}

#[test]
fn a_crash_between_writing_an_invoice_and_recording_it_sends_it_once() {
    let (_dir, ws) = temp_workspace();
    std::fs::write(ws.join("config.toml"), format!("{FAST}{INVOICE_OUTBOX}")).unwrap();
    // This daemon writes the invoice file, then stalls before recording it: killed there.
    let first = Daemon::start(&ws, Some("effect.after_perform:60000"));
    let task = invoice_task(&ws, 450.0, "crash-client");
    eventually("the invoice to be written", || {
        (sent(&ws, "crash-client") == 1).then_some(())
    });
    drop(first);
    let written: Vec<std::path::PathBuf> = std::fs::read_dir(ws.join("outbox/invoices"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let before = std::fs::read(&written[0]).unwrap();
    let _second = Daemon::start(&ws, None);
    eventually_long("the invoice task to finish", || {
        (state(&ws, &task) == "succeeded").then_some(())
    });
    assert_eq!(sent(&ws, "crash-client"), 1, "written once");
    assert_eq!(std::fs::read(&written[0]).unwrap(), before);
    let rows = keel::core::effects::ledger::for_task(store(&ws).conn(), &task).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state.as_str(), "done");
    let performed = effect_done_entries(&ws, &rows[0].key);
    assert_eq!(performed, 0, "resolved by lookup, never performed again");
}

/// How many times the audit log says the effect with ledger key `key` was performed.
fn effect_done_entries(ws: &Path, key: &str) -> usize {
    keel::core::audit::query(
        store(ws).conn(),
        &keel::core::audit::Filter {
            action: Some("effect.done".into()),
            subject: Some(format!("effect/{key}")),
            ..Default::default()
        },
        100,
        false,
    )
    .unwrap()
    .len()
}

fn pending_for(ws: &Path, task: &str) -> keel::protocol::ApprovalRow {
    eventually("a pending approval", || {
        keel::core::approvals::list(store(ws).conn(), true, 0, 100)
            .unwrap()
            .items
            .into_iter()
            .find(|a| a.task.as_deref() == Some(task) && a.status == "pending")
    })
}

const FAST: &str = "[store]\ndurability = \"full\"\n[orchestrator]\nworkers = 2\nlease_ms = 3000\npoll_ms = 20\nbackoff_base_ms = 20\nbackoff_max_ms = 100\n";

/// A demo workspace whose config is `FAST` + `extra` (+ the demo's additions).
fn demo_workspace(extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, root) = temp_workspace();
    std::fs::write(root.join("config.toml"), format!("{FAST}{extra}")).unwrap();
    let ws = Workspace::open(&root).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(keel::core::clock::SystemClock);
    keel::core::demo::seed_workspace(&ws, &clock)
        .unwrap()
        .unwrap();
    (dir, root)
}

/// The first round's publish approval, once the research, write and edit stages are done.
fn publish_approval(ws: &Path) -> keel::protocol::ApprovalRow {
    eventually_long("the publish approval", || {
        keel::core::approvals::list(store(ws).conn(), true, 0, 100)
            .unwrap()
            .items
            .into_iter()
            .find(|a| a.action == "site.publish" && a.status == "pending")
    })
}

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

fn eventually_long<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the demo's first round to the end: research → write → edit → (approve) → publish.
fn full_round(extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, ws) = demo_workspace(extra);
    let _daemon = Daemon::start(&ws, None);
    let round = first_round(&ws);
    let approval = publish_approval(&ws);
    assert_eq!(approval.rule, "approve-public");
    assert!(
        !ws.join("site/pricing-page-experiments.md").exists(),
        "nothing before approval"
    );
    ok(&ws, &["approvals", "approve", &approval.id]);
    eventually_long("the round to finish", || {
        (state(&ws, &round) == "succeeded").then_some(())
    });
    let page = std::fs::read_to_string(ws.join("site/pricing-page-experiments.md")).unwrap();
    assert!(page.contains("Pricing page experiments"), "{page}");
    // Every stage ran as its role, and the draft has the writer's and the editor's versions.
    let stages: Vec<(String, String)> = {
        let s = store(&ws);
        let mut stmt = s
            .conn()
            .prepare("SELECT role, state FROM tasks WHERE parent = ?1 ORDER BY created_ms")
            .unwrap();
        stmt.query_map([&round], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let roles: Vec<&str> = stages.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        roles,
        ["researcher", "writer", "editor", "publisher"],
        "{stages:?}"
    );
    // The draft is attached to the idea (same id); the editor's revision is its next version,
    // and the published page is the revised one.
    let history = objects::history(store(&ws).conn(), "draft", "pricing-page-experiments").unwrap();
    assert_eq!(history.len(), 2, "writer's version, then the editor's");
    let draft = objects::get(store(&ws).conn(), "draft", "pricing-page-experiments").unwrap();
    let body = draft.body["body"].as_str().unwrap();
    assert!(
        page.contains(body.trim()),
        "published the editor's version: {page} vs {body}"
    );
    (dir, ws)
}

/// The ranking the latest `researcher` task produced (its output, best first), checked
/// against the idea objects: each ranked idea is an object whose current body carries that
/// rank, score and rationale, written by a researcher's agent run. Returns the task's run
/// and the ranking.
fn latest_ranking(ws: &Path) -> (Value, String, Vec<keel::core::research::Ranked>) {
    let s = store(ws);
    let (task, run): (String, String) = s
        .conn()
        .query_row(
            "SELECT t.id, r.id FROM agent_runs r JOIN tasks t ON t.id = r.task
             WHERE t.role = 'researcher' AND r.status = 'succeeded'
             ORDER BY r.started_ms DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let task = keel::core::queue::get(s.conn(), &task).unwrap();
    let output = task.output.unwrap();
    let ranked = keel::core::research::ranked_from(&output);
    for (i, r) in ranked.iter().enumerate() {
        let idea = objects::get(s.conn(), "idea", &r.id).unwrap();
        if idea.body["rank"] != json!(i + 1) {
            continue; // a later title with the same id
        }
        assert_eq!(idea.body["score"], json!(r.score), "{}", r.id);
        assert_eq!(idea.body["rationale"], json!(r.rationale), "{}", r.id);
        assert!(r.rationale.len() > 10 && (0.0..=1.0).contains(&r.score));
        assert!(
            idea.author.starts_with("agent:"),
            "{}: {}",
            r.id,
            idea.author
        );
    }
    (task.input, run, ranked)
}

fn outcome_notes(ws: &Path) -> Vec<String> {
    let s = store(ws);
    let mut stmt = s
        .conn()
        .prepare("SELECT id FROM memory_items WHERE kind = 'outcome'")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
#[allow(clippy::too_many_lines)] // one round, then the next ranking
fn the_whole_round_runs_headless_with_the_offline_provider() {
    let (_dir, ws) = full_round("");
    // The researcher's run ranked ideas as idea objects: one per idea, each with its
    // score and rationale, written by the run (a new version of an idea seen before).
    let (first_input, first_run, first) = latest_ranking(&ws);
    let known_outcomes = outcome_notes(&ws);
    assert!(first.len() >= 3, "{first:?}");
    let seeded = objects::history(store(&ws).conn(), "idea", "pricing-page-experiments").unwrap();
    assert!(
        seeded.len() >= 2
            && seeded
                .iter()
                .any(|v| v.author == format!("agent:{first_run}")),
        "the seeded idea got a new version by the run, not a duplicate: {seeded:?}"
    );
    assert_eq!(
        objects::get(store(&ws).conn(), "idea", &first[0].id)
            .unwrap()
            .author,
        format!("agent:{first_run}")
    );
    let page = std::fs::read_to_string(ws.join("site/pricing-page-experiments.md")).unwrap();
    assert!(!page.is_empty());
    // The weekly job (what the `weekly-analytics` schedule submits), with this week's row
    // for the new page; then the researcher's next ranking weighs the outcomes.
    let mut csv = std::fs::read_to_string(ws.join("analytics.csv")).unwrap();
    csv.push_str("pricing-page-experiments,signups,130,2026-11-24\n");
    std::fs::write(ws.join("analytics.csv"), csv).unwrap();
    // The publication record of the new page (what the operator or a CMS sync keeps).
    let pub_body = json!({"title": "Pricing page experiments that moved conversion",
        "slug": "pricing-page-experiments", "topic": "pricing"});
    let kinds = Kinds::builtin().unwrap();
    let stamp = objects::Stamp::new(Actor::Operator, NOW);
    store(&ws)
        .write(|tx| {
            objects::put(
                tx,
                &kinds,
                &stamp,
                "publication",
                "pricing-page-experiments",
                None,
                &pub_body,
            )
        })
        .unwrap();
    let _daemon = Daemon::start(&ws, None);
    let row: Value = serde_json::from_str(&ok(
        &ws,
        &[
            "task",
            "add",
            "--role",
            "analytics-import",
            "--input",
            r#"{"file": "analytics.csv"}"#,
            "--json",
        ],
    ))
    .unwrap();
    let import = row["id"].as_str().unwrap().to_string();
    eventually_long("the import", || {
        (state(&ws, &import) == "succeeded").then_some(())
    });
    let published =
        objects::get(store(&ws).conn(), "publication", "pricing-page-experiments").unwrap();
    assert_eq!(
        published.body["outcomes"]["signups"],
        json!(130.0),
        "reconciled onto the new publication"
    );
    // The researcher runs again on the same input: its ranking now weighs the new outcome.
    let new_outcomes: Vec<String> = outcome_notes(&ws)
        .into_iter()
        .filter(|o| !known_outcomes.contains(o))
        .collect();
    assert!(
        !new_outcomes.is_empty(),
        "the import recorded the outcome in memory"
    );
    let goals = first_input.to_string();
    let row: Value = serde_json::from_str(&ok(
        &ws,
        &[
            "task",
            "add",
            "--role",
            "researcher",
            "--input",
            &goals,
            "--json",
        ],
    ))
    .unwrap();
    let research = row["id"].as_str().unwrap().to_string();
    eventually_long("the next research run", || {
        (state(&ws, &research) == "succeeded").then_some(())
    });
    let (_, second_run, second) = latest_ranking(&ws);
    assert_ne!(first_run, second_run);
    assert!(
        second.iter().any(|r| r
            .sources
            .iter()
            .any(|s| new_outcomes.iter().any(|o| s.ends_with(o.as_str())))),
        "the new ranking draws on the new outcome {new_outcomes:?}: {second:#?}"
    );
    let shape = |r: &[keel::core::research::Ranked]| {
        r.iter()
            .map(|i| (i.id.clone(), i.score.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_ne!(
        shape(&first),
        shape(&second),
        "the ranking moved with the outcomes"
    );
    let ranked: Value = serde_json::from_str(&ok(&ws, &["analytics", "rank", "--json"])).unwrap();
    assert!(
        ranked
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rationale"].as_str().unwrap().contains("past outcome")),
        "{ranked}"
    );
}

#[test]
fn the_whole_round_runs_against_a_loopback_model_server() {
    let model = crate::model_server::ModelServer::start();
    let (_dir, ws) = full_round(&model.config());
    for role in ["researcher", "writer", "editor"] {
        assert!(
            model.calls(role) >= 1,
            "{role} asked the model: {:?}",
            model.calls
        );
    }
    let page = std::fs::read_to_string(ws.join("site/pricing-page-experiments.md")).unwrap();
    assert!(
        page.contains("Add an annual toggle"),
        "the editor's revision is published: {page}"
    );
}

#[test]
fn sigkill_in_the_middle_of_publishing_publishes_nothing_twice() {
    let (_dir, ws) = demo_workspace("");
    let first = Daemon::start(&ws, None);
    let round = first_round(&ws);
    let approval = publish_approval(&ws);
    drop(first);
    ok(&ws, &["approvals", "approve", &approval.id]);
    // This daemon writes the page, then stalls before recording it: SIGKILLed right there.
    let second = Daemon::start(&ws, Some("effect.after_perform:60000"));
    let page = ws.join("site/pricing-page-experiments.md");
    eventually_long("the page to be written", || page.exists().then_some(()));
    drop(second);
    let written = std::fs::read(&page).unwrap();
    let _third = Daemon::start(&ws, None);
    eventually_long("the round to finish", || {
        (state(&ws, &round) == "succeeded").then_some(())
    });
    let publish_task = approval.task.clone().unwrap();
    let rows = keel::core::effects::ledger::for_task(store(&ws).conn(), &publish_task).unwrap();
    assert_eq!(rows.len(), 1, "one effect for the publish");
    assert_eq!(rows[0].state.as_str(), "done");
    let done = effect_done_entries(&ws, &rows[0].key);
    assert_eq!(done, 0, "resolved by lookup, never performed again");
    assert_eq!(std::fs::read(&page).unwrap(), written);
    let replaced = std::fs::read_dir(ws.join("site-history")).map_or(0, Iterator::count);
    assert_eq!(replaced, 0, "the page was written once");
}
