//! The built-in `triage` role end to end, with the real embedding model and labelled
//! examples from config: an incoming request becomes a child task for the right role or
//! workflow, spam is discarded, a doubtful item waits for the operator, whose answer is
//! learned; every decision is recorded (rows and audit). Without the model (the real binary
//! with an empty models directory) the item escalates and says what to run.
//!
//! Tasks other than `triage` run on a stub executor: the triage role is under test here,
//! not the agents it hands work to.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use keel::core::audit::{self, Actor};
use keel::core::clock::{Clock, ManualClock};
use keel::core::coordinator::builtin::BuiltinExecutor;
use keel::core::coordinator::{Coordinator, Outcome, RunError, StepContext, TaskExecutor};
use keel::core::memory::kb::{self, NewItem};
use keel::core::memory::{Embedder, Memory};
use keel::core::queue::{self, NewTask, RoleCatalog, Task};
use keel::core::workspace::Workspace;
use serde_json::{Value, json};

use super::support::{Daemon, eventually, keel_bin, keel_json, temp_workspace};

const NOW: i64 = 1_796_000_000_000;

/// Labelled examples as they would sit in a workspace's config.toml.
const CONFIG: &str = r#"
[triage]
threshold = 0.45
neighbours = 5

[[triage.examples]]
label = "writer"
text = "A reader asks: could you write a post explaining how you price your consulting work?"
[[triage.examples]]
label = "writer"
text = "Can you write an article for the newsletter about growing an email list?"
[[triage.examples]]
label = "writer"
text = "Please draft a blog post answering the reader question about pricing pages."
[[triage.examples]]
label = "accountant"
text = "Please send the invoice for last month's consulting days."
[[triage.examples]]
label = "accountant"
text = "The client asks for a corrected invoice with their VAT number on it."
[[triage.examples]]
label = "accountant"
text = "Payment reminder: the invoice from October is still unpaid."
[[triage.examples]]
label = "content"
text = "Research, write, edit and publish a complete article on onboarding email sequences."
[[triage.examples]]
label = "content"
text = "Run the whole content round for a new piece: research, draft, edit and publish it."

[[triage.examples]]
facet = "spam"
label = "spam"
text = "Congratulations, you have won a free iPhone! Click here to claim your prize."
[[triage.examples]]
facet = "spam"
label = "spam"
text = "Guaranteed first page on Google! Our SEO agency offers 1000% more traffic."
[[triage.examples]]
facet = "spam"
label = "spam"
text = "Sponsored post opportunity: we pay $50 for a dofollow casino backlink."
[[triage.examples]]
facet = "spam"
label = "ok"
text = "Could you write an article about pricing for the newsletter?"
[[triage.examples]]
facet = "spam"
label = "ok"
text = "Please send me the invoice for the workshop."
[[triage.examples]]
facet = "spam"
label = "ok"
text = "I loved your last issue, here is a question from a reader."
"#;

/// Runs `triage` for real; every other role succeeds at once with a stub output.
struct TriageOnly(BuiltinExecutor);

impl TaskExecutor for TriageOnly {
    fn handles(&self, _role: &str) -> bool {
        true
    }
    fn execute(&self, ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
        if ctx.task().role == "triage" {
            self.0.execute(ctx)
        } else {
            Ok(Outcome::Succeeded(json!({"stub": ctx.task().role})))
        }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    ws: Workspace,
    coordinator: Coordinator,
    clock: ManualClock,
}

fn fixture() -> Fixture {
    let e = Embedder::shared().expect("start embedder");
    if let Err(err) = e.wait_ready() {
        panic!("the embedding model is required for this test: {err}");
    }
    let (dir, root) = temp_workspace();
    std::fs::write(root.join("config.toml"), CONFIG).unwrap();
    let ws = Workspace::open(&root).unwrap();
    let clock = ManualClock::at(NOW);
    let coordinator = Coordinator::for_workspace(
        &ws,
        Arc::new(clock.clone()),
        Arc::new(TriageOnly(BuiltinExecutor::default())),
    )
    .unwrap();
    Fixture {
        _dir: dir,
        ws,
        coordinator,
        clock,
    }
}

impl Fixture {
    fn submit(&self, input: Value) -> String {
        let catalog = RoleCatalog::load(&self.ws.root).unwrap();
        let task = NewTask {
            role: "triage".into(),
            title: "incoming".into(),
            input,
            ..NewTask::default()
        };
        self.ws
            .store()
            .unwrap()
            .write(|tx| queue::submit(tx, self.clock.now_ms(), &Actor::Operator, &catalog, task))
            .unwrap()
            .task
            .id
    }

    fn run(&self) {
        let mut store = self.coordinator.open_store().unwrap();
        self.coordinator.run_pending(&mut store).unwrap();
    }

    fn task(&self, id: &str) -> Task {
        queue::get(self.ws.store().unwrap().conn(), id).unwrap()
    }

    fn children(&self, id: &str) -> Vec<Task> {
        queue::query::children(self.ws.store().unwrap().conn(), id).unwrap()
    }

    fn triage(&self, text: &str) -> String {
        let id = self.submit(json!({ "text": text }));
        self.run();
        id
    }

    fn routes(&self, task: &str) -> Vec<Value> {
        audit::query(
            self.ws.store().unwrap().conn(),
            &audit::Filter {
                action: Some("triage.route".into()),
                subject: Some(format!("task/{task}")),
                ..audit::Filter::default()
            },
            10,
            false,
        )
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect()
    }

    fn count(&self, sql: &str, arg: &str) -> i64 {
        self.ws
            .store()
            .unwrap()
            .conn()
            .query_row(sql, [arg], |r| r.get(0))
            .unwrap()
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one story: route, discard, escalate, decide, learn
fn items_are_routed_discarded_or_escalated_and_the_operator_is_learned_from() {
    let f = fixture();

    // A reader's request goes to the writer, as a child task carrying the item.
    let text = "A reader wants to know: could you write a post on how to set prices for a newsletter sponsorship?";
    let request = f.triage(text);
    let t = f.task(&request);
    assert_eq!(t.state.to_string(), "succeeded", "{}", t.detail);
    let out = t.output.unwrap();
    assert_eq!(out["action"], "route", "{out}");
    assert_eq!(out["to"], "writer", "{out}");
    assert_eq!(out["by"], "triage");
    let kids = f.children(&request);
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].role, "writer");
    assert_eq!(kids[0].input["incoming"], text);
    assert_eq!(out["child"], json!(kids[0].id));

    // An invoicing request goes to the accountant; a whole round to the content workflow.
    let invoice =
        f.triage("Could you send Northwind the invoice for the three consulting days in March?");
    let kids = f.children(&invoice);
    assert_eq!(kids.len(), 1, "{:?}", f.task(&invoice));
    assert_eq!(kids[0].role, "accountant");
    let round = f
        .triage("Research, write, edit and publish a complete article on welcome email sequences.");
    let kids = f.children(&round);
    assert_eq!(kids.len(), 1, "{:?}", f.task(&round));
    assert_eq!(kids[0].role, "workflow");
    assert_eq!(kids[0].input["workflow"], "content");

    // Spam is discarded: the task succeeds with the decision, and nothing is spawned.
    let spam =
        f.triage("We pay $80 for a sponsored casino backlink on your blog, dofollow guaranteed!");
    let t = f.task(&spam);
    assert_eq!(t.state.to_string(), "succeeded", "{}", t.detail);
    let out = t.output.unwrap();
    assert_eq!(out["action"], "discard", "{out}");
    assert_eq!(out["label"], "spam");
    assert!(f.children(&spam).is_empty());

    // A far-off item is not confident: it waits for the operator with the candidates.
    let odd = "The quantum chromodynamics lecture covers gluon confinement.";
    let doubtful = f.triage(odd);
    let t = f.task(&doubtful);
    assert_eq!(t.state.to_string(), "escalated", "{t:?}");
    let why = last_error(&t);
    assert!(
        t.detail.contains("keel memory decide --task"),
        "{}",
        t.detail
    );
    assert!(
        why.contains("below the threshold") && why.contains("candidates"),
        "{why}"
    );
    assert!(f.children(&doubtful).is_empty());

    // Every decision is recorded: two facets per classified item, each audited, and one
    // audited route per task.
    for task in [&request, &invoice, &round, &spam, &doubtful] {
        let routes = f.routes(task);
        assert_eq!(routes.len(), 1, "{routes:?}");
        let ids = routes[0]["decisions"].as_array().unwrap();
        assert_eq!(ids.len(), 2, "{routes:?}");
        for id in ids {
            let id = id.as_str().unwrap();
            assert_eq!(
                f.count("SELECT count(*) FROM triage_decisions WHERE id = ?1", id),
                1
            );
            assert_eq!(
                f.count(
                    "SELECT count(*) FROM audit WHERE action = 'triage.decide' AND subject = ?1",
                    &format!("triage/{id}")
                ),
                1
            );
        }
    }
    assert_eq!(routes_action(&f, &doubtful), "escalate");
    // A plain retry classifies again (an escalation is not a checkpoint): a new decision.
    let catalog = RoleCatalog::load(&f.ws.root).unwrap();
    f.ws.store()
        .unwrap()
        .write(|tx| {
            queue::ops::retry(
                tx,
                f.clock.now_ms(),
                &Actor::Operator,
                &catalog,
                &doubtful,
                None,
            )
        })
        .unwrap();
    f.run();
    assert_eq!(f.task(&doubtful).state.to_string(), "escalated");
    let routes = f.routes(&doubtful);
    assert_eq!(routes.len(), 2);
    assert_ne!(routes[0]["decisions"], routes[1]["decisions"]);

    // A decision needs a real target.
    let now = f.clock.now_ms();
    let mut store = f.ws.store().unwrap();
    let err = store
        .write(|tx| {
            keel::core::roles::triage::decide(
                tx,
                now,
                &Actor::Operator,
                &catalog,
                &doubtful,
                "nobody",
            )
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("not spam, a role or a workflow"),
        "{err}"
    );
    assert!(
        store
            .write(|tx| keel::core::roles::triage::decide(
                tx,
                now,
                &Actor::Operator,
                &catalog,
                &request,
                "writer"
            ))
            .is_err(),
        "a routed item is not decided again"
    );

    // The operator routes it to the researcher: the item is routed as told, and the answer
    // is learned (the decision keeps it, and it is a labelled example now).
    // Through the core handle, as the console sends it (`L` on the escalated item).
    let handle = keel::core::handle::CoreHandle::start_with_clock(
        Workspace::open(&f.ws.root).unwrap(),
        Arc::new(f.clock.clone()),
    )
    .unwrap();
    let row = super::support::answer_json(
        handle
            .request_blocking(keel::protocol::Op::DecideTriage {
                id: doubtful.clone(),
                label: "researcher".into(),
            })
            .unwrap(),
    );
    assert_eq!(row["state"], "queued", "{row}");
    f.run();
    let t = f.task(&doubtful);
    assert_eq!(t.state.to_string(), "succeeded", "{}", t.detail);
    assert_eq!(t.output.as_ref().unwrap()["by"], "operator");
    assert_eq!(t.input["decided_by"], "operator");
    let kids = f.children(&doubtful);
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].role, "researcher");
    let (final_label, decided_by): (String, String) = store
        .conn()
        .query_row(
            "SELECT final_label, decided_by FROM triage_decisions
             WHERE facet = 'route' AND text = ?1 AND final_label IS NOT NULL",
            [odd],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (final_label.as_str(), decided_by.as_str()),
        ("researcher", "operator")
    );
    assert_eq!(
        f.count(
            "SELECT count(*) FROM triage_examples WHERE source = 'operator' AND label = ?1",
            "researcher"
        ),
        1
    );
    // The next similar item is routed to the researcher without asking.
    let similar = f.triage("Notes from the quantum chromodynamics lecture on gluons.");
    let t = f.task(&similar);
    assert_eq!(t.state.to_string(), "succeeded", "{t:?}");
    assert_eq!(t.output.as_ref().unwrap()["to"], "researcher");
    assert_eq!(f.children(&similar)[0].role, "researcher");
    assert!(
        audit::verify(store.conn()).unwrap().first_broken.is_none(),
        "the audit chain holds"
    );
}

fn last_error(t: &Task) -> String {
    t.errors.last().map(ToString::to_string).unwrap_or_default()
}

fn routes_action(f: &Fixture, task: &str) -> String {
    f.routes(task)[0]["action"].as_str().unwrap().to_string()
}

#[test]
fn the_daily_sweep_triages_each_incoming_note_once() {
    let f = fixture();
    {
        let mut store = f.ws.store().unwrap();
        let memory = Memory::open(&f.ws, &mut store, Arc::new(f.clock.clone())).unwrap();
        for text in [
            "Reader question: could you write about how you pick newsletter sponsors?",
            "Winner! Claim your free cruise today, click the link to get your prize.",
        ] {
            let item = NewItem {
                text: text.into(),
                kind: "request".into(),
                source: "inbox".into(),
                ..NewItem::default()
            };
            kb::add(&mut store, &memory, &Actor::Operator, &item).unwrap();
        }
    }
    let sweep = f.submit(json!({"kind": "request"}));
    f.run();
    let t = f.task(&sweep);
    assert_eq!(t.state.to_string(), "succeeded", "{}", t.detail);
    assert_eq!(t.output.as_ref().unwrap()["notes"], 2);
    let notes = f.children(&sweep);
    assert_eq!(notes.len(), 2);
    let mut actions: Vec<String> = notes
        .iter()
        .map(|n| {
            let n = f.task(&n.id);
            assert_eq!(n.state.to_string(), "succeeded", "{n:?}");
            n.output.unwrap()["action"].as_str().unwrap().to_string()
        })
        .collect();
    actions.sort();
    assert_eq!(actions, ["discard", "route"]);
    // The next day's sweep finds the same notes already triaged: nothing new.
    let again = f.submit(json!({"kind": "request"}));
    f.run();
    let ids: Vec<String> = f.task(&again).output.unwrap()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut first: Vec<String> = notes.iter().map(|n| n.id.clone()).collect();
    first.sort();
    let mut ids = ids;
    ids.sort();
    assert_eq!(ids, first, "the same tasks, not new ones");
    assert_eq!(
        f.count("SELECT count(*) FROM tasks WHERE role = ?1", "triage"),
        4,
        "two sweeps and one task per note"
    );
}

fn without_model(ws: &Path, models: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(keel_bin());
    cmd.arg("--workspace")
        .arg(ws)
        .args(args)
        .env("KEEL_MODELS_DIR", models)
        .env_remove("KEEL_WORKSPACE")
        .env_remove("KEEL_FAILPOINT");
    cmd
}

#[test]
fn without_the_model_an_item_escalates_and_says_what_to_run() {
    let (dir, ws) = temp_workspace();
    std::fs::write(
        ws.join("config.toml"),
        format!("[orchestrator]\npoll_ms = 20\n{CONFIG}"),
    )
    .unwrap();
    let models = dir.path().join("no-models");
    let row = keel_json(
        &ws,
        &[
            "task",
            "add",
            "--role",
            "triage",
            "--input",
            r#"{"text": "Could you write a post about pricing?"}"#,
            "--json",
        ],
    );
    let id = row["id"].as_str().unwrap().to_string();
    let _daemon = Daemon(
        without_model(&ws, &models, &["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let store = || {
        keel::core::store::Store::open(&ws.join("keel.db"), keel::core::store::Durability::Full)
            .unwrap()
    };
    let task = eventually("the item to escalate", || {
        let t = queue::get(store().conn(), &id).unwrap();
        t.state.is_terminal().then_some(t)
    });
    assert_eq!(task.state.to_string(), "escalated", "{task:?}");
    let why = last_error(&task);
    assert!(why.contains("keel models fetch"), "{why}");
    assert!(why.contains("operator decides"), "{why}");
    // The escalation is audited with its reason; nothing was classified or spawned.
    let routes = audit::query(
        store().conn(),
        &audit::Filter {
            action: Some("triage.route".into()),
            subject: Some(format!("task/{id}")),
            ..audit::Filter::default()
        },
        10,
        false,
    )
    .unwrap();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].payload["action"], "escalate");
    assert!(
        routes[0].payload["reason"]
            .as_str()
            .unwrap()
            .contains("keel models fetch")
    );
    assert!(
        queue::query::children(store().conn(), &id)
            .unwrap()
            .is_empty()
    );
    // The operator routes it by hand; the label is still learned as an example.
    let out = without_model(&ws, &models, &["memory", "decide", "--task", &id, "writer"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let task = eventually("the operator's route", || {
        let t = queue::get(store().conn(), &id).unwrap();
        (t.state.to_string() == "succeeded").then_some(t)
    });
    assert_eq!(task.output.unwrap()["to"], "writer");
    let kids = queue::query::children(store().conn(), &id).unwrap();
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].role, "writer");
    let learned: i64 = store()
        .conn()
        .query_row(
            "SELECT count(*) FROM triage_examples WHERE label = 'writer' AND decision IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(learned, 1);
}

/// The demo's own examples and daily schedule, on the demo's incoming requests.
#[test]
fn the_demo_triages_its_incoming_requests() {
    let e = Embedder::shared().expect("start embedder");
    e.wait_ready()
        .expect("the embedding model is required for this test");
    let (_dir, root) = temp_workspace();
    let ws = Workspace::open(&root).unwrap();
    let clock = ManualClock::at(NOW);
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    keel::core::demo::seed_workspace(&ws, &shared)
        .unwrap()
        .unwrap();
    let ws = Workspace::open(&root).unwrap();
    assert!(ws.config.triage.examples.len() >= 12);
    let daily = ws
        .config
        .schedules
        .iter()
        .find(|s| s.name == "daily-triage")
        .expect("the daily triage schedule")
        .clone();
    assert_eq!(daily.task.role, "triage");
    assert_eq!(daily.task.input, json!({"kind": "request"}));
    let coordinator = Coordinator::for_workspace(
        &ws,
        shared,
        Arc::new(TriageOnly(BuiltinExecutor::default())),
    )
    .unwrap();
    let f = Fixture {
        _dir: tempfile::tempdir().unwrap(),
        ws,
        coordinator,
        clock,
    };
    let sweep = f.submit(daily.task.input.clone());
    f.run();
    let mut outcomes = std::collections::BTreeMap::new();
    for note in f.children(&sweep) {
        let t = f.task(&note.id);
        let title = t.input["text"]
            .as_str()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string();
        let outcome = match t.output {
            Some(out) if out["action"] == "route" => {
                format!("route {}", out["to"].as_str().unwrap())
            }
            Some(out) => out["action"].as_str().unwrap().to_string(),
            None => {
                eprintln!("{title}: {:?}", t.errors.last());
                t.state.to_string()
            }
        };
        outcomes.insert(title, outcome);
    }
    eprintln!("{outcomes:#?}");
    let expect = [
        ("Reader question: discount codes", "route writer"),
        ("Reader question: free tier", "route writer"),
        ("Reader question: trial length", "route writer"),
        ("Invoice request: Northwind workshops", "route accountant"),
        ("Consulting inquiry: Lumen Apps", "escalated"),
        ("Sponsor inquiry: devtools company", "escalated"),
        ("Sponsorship offer: casino backlinks", "discard"),
    ];
    for (title, outcome) in expect {
        assert_eq!(
            outcomes.get(title).map(String::as_str),
            Some(outcome),
            "{title}: {outcomes:#?}"
        );
    }
}
