//! The console's live core: the in-process coordinator runs queued work beside a headless
//! `keel run` without running any task twice; the audit watcher turns another process's
//! changes into events; `Query::Health` reports what is working.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel::core::audit::{self, Filter};
use keel::core::clock::SystemClock;
use keel::core::handle::CoreHandle;
use keel::core::live::Live;
use keel::core::watch;
use keel::core::workspace::Workspace;
use keel::protocol::{Event, Health, Op, Page, Query, TaskRow};
use serde_json::json;

use crate::support::{keel, keel_bin};

fn workspace() -> (tempfile::TempDir, Workspace) {
    let tmp = tempfile::tempdir().unwrap();
    let ws = Workspace::init(&tmp.path().join("ws")).unwrap();
    (tmp, ws)
}

fn tasks(handle: &CoreHandle, state: Option<&str>) -> Page<TaskRow> {
    handle
        .request_blocking(Op::Query {
            query: Query::Tasks {
                state: state.map(Into::into),
                text: None,
                offset: 0,
                limit: 500,
            },
        })
        .unwrap()
        .try_into()
        .unwrap()
}

/// Waits (generously: a correctness check, not a timing) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_mins(1);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn console_coordinator_and_keel_run_share_the_queue_without_running_a_task_twice() {
    const N: u64 = 40;
    let (_tmp, ws) = workspace();
    let handle = CoreHandle::start(ws.clone()).unwrap();
    let mut events = handle.subscribe();
    let live = Live::start(&ws, Arc::new(SystemClock), &handle.events_sender()).unwrap();
    let daemon = Daemon(
        Command::new(keel_bin())
            .arg("--workspace")
            .arg(&ws.root)
            .arg("run")
            .env_remove("KEEL_WORKSPACE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for i in 0..N {
        handle
            .request_blocking(Op::SubmitTask {
                task: serde_json::from_value(
                    json!({"role": "noop", "title": format!("chore {i}")}),
                )
                .unwrap(),
            })
            .unwrap();
    }
    wait_until("every task to succeed", || {
        tasks(&handle, Some("succeeded")).total == N
    });
    // The in-process coordinator's changes reach the handle's subscribers.
    let mut saw_task_event = false;
    while let Ok(e) = events.try_recv() {
        if let Event::Changed { subject, .. } = e
            && subject.starts_with("task/")
        {
            saw_task_event = true;
        }
    }
    assert!(saw_task_event, "no task event reached the console");

    // SIGTERM the daemon (a clean stop), then stop the console's coordinator.
    let pid = daemon.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut daemon = daemon;
    assert!(daemon.0.wait().unwrap().success());
    let owner = live.owner().to_string();
    live.stop();

    // Each task was claimed exactly once, across both processes.
    let store = ws.store().unwrap();
    let claims = audit::query(
        store.conn(),
        &Filter {
            action: Some("task.claimed".into()),
            ..Filter::default()
        },
        10_000,
        false,
    )
    .unwrap();
    let mut subjects: Vec<&str> = claims.iter().map(|e| e.subject.as_str()).collect();
    subjects.sort_unstable();
    subjects.dedup();
    assert_eq!((claims.len(), subjects.len()), (40, 40));
    let held: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM tasks WHERE lease_owner = ?1 OR state = 'running'",
            [&owner],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(held, 0, "a lease outlived the console's coordinator");
    assert!(audit::verify(store.conn()).unwrap().first_broken.is_none());
    handle.shutdown();
}

#[test]
fn another_process_change_reaches_the_console_as_an_audit_event() {
    let (_tmp, ws) = workspace();
    let handle = CoreHandle::start(ws.clone()).unwrap();
    let mut events = handle.subscribe();
    let live = Live::start(&ws, Arc::new(SystemClock), &handle.events_sender()).unwrap();
    // The CLI is another process: it raises no event here.
    assert!(keel(&ws.root, &["queue", "pause"]).status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match events.try_recv() {
            Ok(Event::Changed { subject, action }) if subject == "audit" => {
                assert_eq!(action, watch::MOVED);
                break;
            }
            Ok(_) => {}
            Err(_) => {
                assert!(Instant::now() < deadline, "no audit event arrived");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    live.stop();
    let health: Health = handle
        .request_blocking(Op::Query {
            query: Query::Health,
        })
        .unwrap()
        .try_into()
        .unwrap();
    assert!(health.queue_paused, "the CLI paused the queue");
    handle.shutdown();
}

#[test]
fn health_reports_schema_model_providers_schedules_queue_and_audit() {
    let (_tmp, ws) = workspace();
    let handle = CoreHandle::start(ws.clone()).unwrap();
    let ask = || -> Health {
        handle
            .request_blocking(Op::Query {
                query: Query::Health,
            })
            .unwrap()
            .try_into()
            .unwrap()
    };
    let h = ask();
    assert_eq!(h.workspace, ws.root.display().to_string());
    assert_eq!(h.schema_version, keel::core::store::migrations::latest());
    assert!(
        h.embedding_model == "present"
            || h.embedding_model
                .starts_with("missing: run `keel models fetch`"),
        "{}",
        h.embedding_model
    );
    let offline = h.providers.iter().find(|p| p.name == "offline").unwrap();
    assert!(offline.status.contains("offline"), "{offline:?}");
    assert!(!h.queue_paused);
    let before = h.audit_entries;
    handle.request_blocking(Op::PauseQueue).unwrap();
    let h = ask();
    assert!(h.queue_paused);
    assert_eq!(h.audit_entries, before + 1);
    // Schedules are the scheduler's rows: none until a coordinator has seen the config.
    assert_eq!(
        h.schedules,
        keel::core::scheduler::cron::rows(ws.store().unwrap().conn()).unwrap()
    );
    handle.shutdown();
}

/// Works until it is interrupted (a long model call, say).
struct UntilInterrupted;

impl keel::core::coordinator::TaskExecutor for UntilInterrupted {
    fn handles(&self, _role: &str) -> bool {
        true
    }
    fn execute(
        &self,
        ctx: &mut keel::core::coordinator::StepContext<'_>,
    ) -> Result<keel::core::coordinator::Outcome, keel::core::coordinator::RunError> {
        loop {
            ctx.check_interrupt()?;
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn quitting_releases_the_lease_of_a_task_in_flight() {
    let (_tmp, ws) = workspace();
    let handle = CoreHandle::start(ws.clone()).unwrap();
    let live = Live::start_with(
        &ws,
        Arc::new(SystemClock),
        &handle.events_sender(),
        Arc::new(UntilInterrupted),
    )
    .unwrap();
    handle
        .request_blocking(Op::SubmitTask {
            task: serde_json::from_value(json!({"role": "noop", "title": "long one"})).unwrap(),
        })
        .unwrap();
    let owner = live.owner().to_string();
    let lease = |ws: &Workspace| -> (String, Option<String>) {
        ws.store()
            .unwrap()
            .conn()
            .query_row(
                "SELECT state, lease_owner FROM tasks WHERE title = 'long one'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    wait_until("the console to claim the task", || {
        lease(&ws) == ("running".to_string(), Some(owner.clone()))
    });
    live.stop();
    assert_eq!(lease(&ws), ("queued".to_string(), None));
    handle.shutdown();
}
