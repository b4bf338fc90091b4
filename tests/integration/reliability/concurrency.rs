//! Concurrency: two `keel run` processes (a console and a daemon) plus CLI writers — task
//! submission, queue pause/resume, approvals raised by an agent and approved by the operator —
//! share one workspace for a bounded sustained run. Afterwards: every process exited when told
//! (no deadlock), every acknowledged task exists and finished, every approval was decided, no
//! effect ran twice, and a busy database, if it ever surfaced, said so clearly.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keel::core::approvals::{GateResult, NewApproval, gate};
use keel::core::audit::Actor;
use keel::core::effects::Reversibility;
use keel::core::policy::{ActionRequest, Policy};
use keel::core::store::{Durability, Store};
use serde_json::{Value, json};

use crate::support::{keel, keel_bin, temp_workspace};

/// How long the writers keep going (bounded: the suite must stay fast).
const SUSTAIN: Duration = Duration::from_secs(20);
pub(super) const BUSY_MESSAGE: &str = "locked by another process";

pub(super) fn daemon(ws: &Path) -> Child {
    Command::new(keel_bin())
        .arg("--workspace")
        .arg(ws)
        .arg("run")
        .env_remove("KEEL_WORKSPACE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Records a failed CLI call: a busy database must say so; anything else is a bug.
pub(super) fn check_failure(what: &str, out: &Output, busy: &Mutex<Vec<String>>) {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains(BUSY_MESSAGE) && err.contains("try again"),
        "{what} failed without a clear reason: {err}"
    );
    busy.lock().unwrap().push(err);
}

/// Submits noop and webhook tasks; returns the ids keel acknowledged and how many of them
/// were webhook tasks (two effects each).
pub(super) fn submitter(
    ws: &Path,
    url: &str,
    stop: &AtomicBool,
    busy: &Mutex<Vec<String>>,
) -> (Vec<String>, usize) {
    let mut acknowledged = Vec::new();
    let mut webhooks = 0;
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let input = json!({"url": url, "steps": 2}).to_string();
        let title = format!("writer {i}");
        let args: Vec<&str> = if i.is_multiple_of(3) {
            vec![
                "task", "add", "--role", "webhook", "--input", &input, "--json",
            ]
        } else {
            vec!["task", "add", "--role", "noop", "--title", &title, "--json"]
        };
        let out = keel(ws, &args);
        if out.status.success() {
            let row: Value = serde_json::from_slice(&out.stdout).unwrap();
            acknowledged.push(row["id"].as_str().unwrap().to_string());
            webhooks += usize::from(i.is_multiple_of(3));
        } else {
            check_failure("task add", &out, busy);
        }
    }
    (acknowledged, webhooks)
}

pub(super) fn pauser(ws: &Path, stop: &AtomicBool, busy: &Mutex<Vec<String>>) -> usize {
    let mut toggles = 0;
    while !stop.load(Ordering::Relaxed) {
        for cmd in ["pause", "resume"] {
            let out = keel(ws, &["queue", cmd]);
            if out.status.success() {
                toggles += 1;
            } else {
                check_failure(cmd, &out, busy);
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    toggles
}

/// An agent's payment of 5 for invoice `i`, gated: returns the approval it waits on, or None
/// when the database was busy (the clear message is recorded in `busy`).
pub(super) fn raise_payment_approval(
    store: &mut Store,
    policy: &Policy,
    i: usize,
    summary: String,
    busy: &Mutex<Vec<String>>,
) -> Option<String> {
    let req = ActionRequest {
        agent: "accountant".into(),
        action: "payment.send".into(),
        object_kind: None,
        amount: Some(5.0),
        reversibility: Reversibility::Irreversible,
        target: format!("supplier-{i}"),
        cost: 0.0,
        workflow: None,
    };
    let card = NewApproval {
        args: json!({"invoice": i}),
        summary,
        ..NewApproval::default()
    };
    let now = keel::core::clock::Clock::now_ms(&keel::core::clock::SystemClock);
    match gate(
        store,
        now,
        policy,
        &Actor::agent(format!("run-{i}")),
        &req,
        &card,
    ) {
        Ok(GateResult::Pending { approval, .. }) => Some(approval),
        Ok(other) => panic!("a payment did not wait for approval: {other:?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(BUSY_MESSAGE), "gate failed: {msg}");
            busy.lock().unwrap().push(msg);
            None
        }
    }
}

/// An agent (this thread, with its own connection) raises approvals for small payments; the
/// operator approves each through the CLI. Returns the approval ids.
fn approver(ws: &Path, stop: &AtomicBool, busy: &Mutex<Vec<String>>) -> Vec<String> {
    let policy = Policy::built_in().unwrap();
    let mut store = Store::open(&ws.join("keel.db"), Durability::Full).unwrap();
    let mut ids = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let Some(id) =
            raise_payment_approval(&mut store, &policy, i, format!("pay invoice {i}"), busy)
        else {
            continue;
        };
        loop {
            let out = keel(ws, &["approvals", "approve", &id]);
            if out.status.success() {
                break;
            }
            check_failure("approvals approve", &out, busy);
        }
        ids.push(id);
        std::thread::sleep(Duration::from_millis(100));
    }
    ids
}

/// Kills the daemons if the test fails before stopping them.
pub(super) struct Daemons(pub(super) Vec<Child>);
impl Drop for Daemons {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM, then wait a bounded time: a process that does not exit is deadlocked.
pub(super) fn stop_daemon(mut child: Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(
                status.success(),
                "keel run {pid} exited with {status:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("keel run {pid} did not exit within 20 s of SIGTERM (deadlock?)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_daemons_and_cli_writers_lose_nothing_and_stop_when_told() {
    let (_dir, ws) = temp_workspace();
    std::fs::write(
        ws.join("config.toml"),
        "[orchestrator]\nworkers = 2\nlease_ms = 3000\npoll_ms = 20\nbackoff_base_ms = 20\nbackoff_max_ms = 100\n",
    )
    .unwrap();
    let hooks = keel::bench::loopback::Receiver::start().unwrap();
    let mut daemons = Daemons(vec![daemon(&ws), daemon(&ws)]);
    let stop = Arc::new(AtomicBool::new(false));
    let busy = Arc::new(Mutex::new(Vec::new()));

    let (submitted, webhooks, toggles, approvals) = std::thread::scope(|s| {
        let sub = s.spawn(|| submitter(&ws, &hooks.url, &stop, &busy));
        let sub2 = s.spawn(|| submitter(&ws, &hooks.url, &stop, &busy));
        let pause = s.spawn(|| pauser(&ws, &stop, &busy));
        let appr = s.spawn(|| approver(&ws, &stop, &busy));
        std::thread::sleep(SUSTAIN);
        stop.store(true, Ordering::Relaxed);
        let (mut ids, mut webhooks) = sub.join().unwrap();
        let (more, more_webhooks) = sub2.join().unwrap();
        ids.extend(more);
        webhooks += more_webhooks;
        (ids, webhooks, pause.join().unwrap(), appr.join().unwrap())
    });
    // The pauser may have stopped between pause and resume.
    assert!(keel(&ws, &["queue", "resume"]).status.success());

    let store = Store::open(&ws.join("keel.db"), Durability::Full).unwrap();
    wait_all_succeeded(&store, &submitted);
    for d in std::mem::take(&mut daemons.0) {
        stop_daemon(d);
    }

    for id in &approvals {
        let a = keel::core::approvals::get(store.conn(), id).unwrap();
        assert_eq!(a.row.status, "approved", "approval {id}: {a:?}");
    }
    let received = hooks.snapshot();
    assert!(received.duplicates.is_empty(), "{:?}", received.duplicates);
    assert_eq!(
        received.applied.len(),
        webhooks * 2,
        "every effect applied once"
    );
    assert_eq!(keel::bench::torture::integrity_check(&store).unwrap(), "ok");
    let verification = keel::core::audit::verify(store.conn()).unwrap();
    assert!(verification.first_broken.is_none(), "{verification:?}");
    let busy = busy.lock().unwrap();
    eprintln!(
        "concurrency: {} tasks acknowledged and finished, {} pause/resume, {} approvals, \
         {} effects, {} busy errors surfaced (all clear)",
        submitted.len(),
        toggles,
        approvals.len(),
        received.applied.len(),
        busy.len()
    );
    assert!(submitted.len() > 20 && toggles > 10 && approvals.len() > 5);
}

/// Waits (up to a minute) until every acknowledged task succeeded; a task that vanished
/// was lost, which fails at once.
pub(super) fn wait_all_succeeded(store: &Store, submitted: &[String]) {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let unfinished: Vec<String> = submitted
            .iter()
            .filter_map(|id| match keel::core::queue::get(store.conn(), id) {
                Ok(t) if t.state.to_string() == "succeeded" => None,
                Ok(t) => Some(format!("{id}: {}", t.state)),
                Err(e) => panic!("acknowledged task {id} was lost: {e}"),
            })
            .collect();
        if unfinished.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "tasks never finished: {unfinished:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
