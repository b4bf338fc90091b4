//! Concurrency with the console: the real console (in tmux, with its own coordinator and
//! audit watcher), a headless `keel run` and CLI writers — task submission, queue
//! pause/resume, memory adds, approvals raised by an agent and decided by the operator both
//! through the CLI and in the console — share one workspace for a sustained run. Afterwards:
//! the console still answers and quits with status 0, the daemon stops on SIGTERM (no
//! deadlock); every acknowledged task finished, every acknowledged memory item is there with
//! its vector, every approval was decided, no effect ran twice (no lost or doubled write); a
//! busy database, if it surfaced, said so clearly; the audit chain verifies.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keel::core::policy::Policy;
use keel::core::store::{Durability, Store};
use serde_json::Value;

use super::concurrency::{
    Daemons, check_failure, daemon, pauser, raise_payment_approval, stop_daemon, submitter,
    wait_all_succeeded,
};
use crate::support::{keel, temp_workspace};
use crate::tui::Tmux;

const SUSTAIN: Duration = Duration::from_secs(20);
/// The summary of approvals only the console decides.
const FOR_CONSOLE: &str = "console-pay";

/// An agent (this thread) raises payment approvals: odd ones the operator approves through
/// the CLI, even ones are left for the operator at the console. The console may take an odd
/// one first; the CLI then says it is already approved, which is a decision, not a loss.
/// Returns (all approval ids, those left for the console).
fn approver(ws: &Path, stop: &AtomicBool, busy: &Mutex<Vec<String>>) -> (Vec<String>, Vec<String>) {
    let policy = Policy::built_in().unwrap();
    let mut store = Store::open(&ws.join("keel.db"), Durability::Full).unwrap();
    let (mut all, mut for_console) = (Vec::new(), Vec::new());
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let console = i % 2 == 0;
        let summary = if console {
            format!("{FOR_CONSOLE} {i}")
        } else {
            format!("cli-pay {i}")
        };
        let Some(id) = raise_payment_approval(&mut store, &policy, i, summary, busy) else {
            continue;
        };
        all.push(id.clone());
        if console {
            for_console.push(id);
        } else {
            loop {
                let out = keel(ws, &["approvals", "approve", &id]);
                let err = String::from_utf8_lossy(&out.stderr);
                if out.status.success() || err.contains("is already approved") {
                    break;
                }
                check_failure("approvals approve", &out, busy);
            }
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    (all, for_console)
}

/// Adds memory items through the CLI (each loads the embedding model and writes `SQLite` and
/// the vector index); returns the ids acknowledged.
fn rememberer(ws: &Path, stop: &AtomicBool, busy: &Mutex<Vec<String>>) -> Vec<String> {
    let mut ids = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let text = format!("Customer C-{i} asked about plan {i} during the concurrency run.");
        let out = keel(ws, &["memory", "add", &text, "--kind", "note", "--json"]);
        if out.status.success() {
            let added: Value = serde_json::from_slice(&out.stdout).unwrap();
            ids.push(added["id"].as_str().unwrap().to_string());
        } else {
            check_failure("memory add", &out, busy);
        }
    }
    ids
}

/// Presses `a` on the focused approvals pane and confirms; false if nothing was selected.
fn console_approve_once(t: &Tmux) -> bool {
    t.keys(&["a"]);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if t.screen().contains("y / enter: confirm") {
            t.keys(&["y"]);
            return true;
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    // Nothing was selected, or the dialog came too late: close it if it is there, so the
    // next keys reach the screen.
    t.keys(&["Escape"]);
    false
}

/// The operator at the console: approves what is selected, scrolls, glances at the audit
/// screen and comes back, while everything else runs.
fn operator(t: &Tmux, stop: &AtomicBool, confirmed: &AtomicUsize) {
    let mut round = 0u32;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        if console_approve_once(t) {
            confirmed.fetch_add(1, Ordering::Relaxed);
        }
        if round.is_multiple_of(5) {
            t.keys(&["2"]);
            t.wait_for("Audit timeline, newest first");
            t.keys(&["1"]);
            t.wait_for("Approvals");
        }
        t.keys(&[if round.is_multiple_of(2) { "j" } else { "k" }]);
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn pending(store: &Store, ids: &[String]) -> Vec<String> {
    ids.iter()
        .filter(|id| {
            keel::core::approvals::get(store.conn(), id)
                .unwrap()
                .row
                .status
                != "approved"
        })
        .cloned()
        .collect()
}

/// The lease owner a process logged at start-up (`console: coordinator started owner=…`).
fn logged_owner(ws: &Path, line: &str) -> String {
    let log = std::fs::read_to_string(ws.join("logs").join("keel.log")).unwrap();
    let at = log
        .find(line)
        .unwrap_or_else(|| panic!("{line:?} not logged"));
    let rest = &log[at..];
    let owner = rest.split("owner=").nth(1).unwrap();
    owner
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .trim_matches('"')
        .to_string()
}

fn claims_by(store: &Store, owner: &str) -> i64 {
    store
        .conn()
        .query_row(
            "SELECT count(*) FROM audit WHERE action = 'task.claimed' AND json_extract(payload, '$.owner') = ?1",
            [owner],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
#[allow(clippy::too_many_lines)] // one sustained session, then the workspace check
fn console_daemon_and_cli_writers_lose_nothing_and_stop_when_told() {
    let (_dir, ws) = temp_workspace();
    std::fs::write(
        ws.join("config.toml"),
        "[orchestrator]\nworkers = 2\nlease_ms = 3000\npoll_ms = 20\nbackoff_base_ms = 20\nbackoff_max_ms = 100\n",
    )
    .unwrap();
    let hooks = keel::bench::loopback::Receiver::start().unwrap();
    let t = Tmux::start(&ws, 140, 40);
    t.wait_for("Approvals");
    // Queue → Runs → Memory → Approvals.
    t.keys(&["Tab", "Tab", "Tab"]);
    let mut daemons = Daemons(vec![daemon(&ws)]);
    let stop = AtomicBool::new(false);
    let busy = Arc::new(Mutex::new(Vec::new()));
    let confirmed = AtomicUsize::new(0);

    let (submitted, webhooks, toggles, (approvals, for_console), remembered) =
        std::thread::scope(|s| {
            let sub = s.spawn(|| submitter(&ws, &hooks.url, &stop, &busy));
            let sub2 = s.spawn(|| submitter(&ws, &hooks.url, &stop, &busy));
            let pause = s.spawn(|| pauser(&ws, &stop, &busy));
            let appr = s.spawn(|| approver(&ws, &stop, &busy));
            let mem = s.spawn(|| rememberer(&ws, &stop, &busy));
            let op = s.spawn(|| operator(&t, &stop, &confirmed));
            std::thread::sleep(SUSTAIN);
            stop.store(true, Ordering::Relaxed);
            let (mut ids, mut webhooks) = sub.join().unwrap();
            let (more, more_webhooks) = sub2.join().unwrap();
            ids.extend(more);
            webhooks += more_webhooks;
            op.join().unwrap();
            (
                ids,
                webhooks,
                pause.join().unwrap(),
                appr.join().unwrap(),
                mem.join().unwrap(),
            )
        });
    // The pauser may have stopped between pause and resume.
    assert!(keel(&ws, &["queue", "resume"]).status.success());

    // The operator finishes the console's share of approvals at the console.
    let store = Store::open(&ws.join("keel.db"), Durability::Full).unwrap();
    let deadline = Instant::now() + Duration::from_mins(1);
    while !pending(&store, &for_console).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the console never approved {:?}; screen:\n{}",
            pending(&store, &for_console),
            t.screen()
        );
        if console_approve_once(&t) {
            confirmed.fetch_add(1, Ordering::Relaxed);
        }
    }

    // Every acknowledged task finishes (the console and the daemon both run work).
    wait_all_succeeded(&store, &submitted);

    // No deadlock: the console still follows other processes and answers keys, then quits
    // with status 0; the daemon exits 0 on SIGTERM.
    assert!(keel(&ws, &["queue", "pause"]).status.success());
    t.wait_for("queue paused");
    assert!(keel(&ws, &["queue", "resume"]).status.success());
    t.wait_for("queue running");
    t.keys(&["2"]);
    t.wait_for("Audit timeline, newest first");
    t.keys(&["1", "q"]);
    assert_eq!(t.wait_exit(), "0");
    for d in std::mem::take(&mut daemons.0) {
        stop_daemon(d);
    }

    // Both the console and the daemon ran tasks.
    let console_claims = claims_by(&store, &logged_owner(&ws, "console: coordinator started"));
    let daemon_claims = claims_by(&store, &logged_owner(&ws, "keel run: started"));
    assert!(
        console_claims > 0 && daemon_claims > 0,
        "console {console_claims}, daemon {daemon_claims}"
    );

    // Nothing lost, nothing doubled.
    assert!(
        pending(&store, &approvals).is_empty(),
        "undecided: {:?}",
        pending(&store, &approvals)
    );
    let received = hooks.snapshot();
    assert!(received.duplicates.is_empty(), "{:?}", received.duplicates);
    assert_eq!(
        received.applied.len(),
        webhooks * 2,
        "every effect applied once"
    );
    for id in &remembered {
        assert!(
            keel::core::memory::kb::get(store.conn(), id)
                .unwrap()
                .is_some(),
            "acknowledged memory item {id} was lost"
        );
    }
    let agreement = keel::bench::torture_memory::agreement(&store, &ws.join("vectors"), true)
        .unwrap()
        .expect("memory was written");
    assert_eq!(agreement.mismatches(), 0, "{agreement:?}");
    let held: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM tasks WHERE state = 'running' OR lease_owner IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(held, 0, "a lease outlived its process");
    assert_eq!(keel::bench::torture::integrity_check(&store).unwrap(), "ok");
    let verification = keel::core::audit::verify(store.conn()).unwrap();
    assert!(verification.first_broken.is_none(), "{verification:?}");
    assert!(keel(&ws, &["audit", "verify"]).status.success());

    let busy = busy.lock().unwrap();
    eprintln!(
        "concurrency with the console: {} tasks acknowledged and finished (console claimed {console_claims}, \
         daemon {daemon_claims}), {toggles} pause/resume, {} approvals ({} left for the console, \
         {} console confirmations), {} memory items, {} effects, {} busy errors surfaced (all clear)",
        submitted.len(),
        approvals.len(),
        for_console.len(),
        confirmed.load(Ordering::Relaxed),
        remembered.len(),
        received.applied.len(),
        busy.len()
    );
    assert!(submitted.len() > 20 && toggles > 10 && for_console.len() > 5 && remembered.len() > 5);
}
