//! The orchestrator on a real `SQLite` database: submission, the state machine, leases,
//! retries under a manual clock, escalation, timeouts, checkpoints, pause/cancel, off-peak,
//! cron, the blackboard, workflows (fan-out/fan-in) and the effects ledger.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use keel::core::audit::{self, Actor};
use keel::core::clock::{Clock, ManualClock};
use keel::core::coordinator::builtin::BuiltinExecutor;
use keel::core::coordinator::retry::backoff_ms;
use keel::core::coordinator::{
    Coordinator, OrchestratorConfig, Outcome, RunError, StepContext, TaskExecutor,
};
use keel::core::queue::{self, NewTask, RoleCatalog, TaskState, WaitFor, ops};
use keel::core::scheduler::{CronSpec, ScheduleConfig, SchedulerSettings, parse_window};
use keel::core::store::{Durability, Store};
use keel::core::workflow::Workflow;
use keel::protocol::{Event, Op, Page, Query, TaskRow};
use serde_json::{Value, json};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    clock: ManualClock,
    store: Store,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keel.db");
    let store = Store::open(&path, Durability::Normal).unwrap();
    Fixture {
        _dir: dir,
        path,
        clock: ManualClock::at(T0),
        store,
    }
}

type RunFn = dyn Fn(&mut StepContext<'_>) -> Result<Outcome, RunError> + Send + Sync;

/// Runs the roles it lists with a closure; built-in roles still work.
struct Script {
    roles: Vec<&'static str>,
    run: Box<RunFn>,
}

impl TaskExecutor for Script {
    fn handles(&self, role: &str) -> bool {
        self.roles.contains(&role)
    }
    fn execute(&self, ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
        (self.run)(ctx)
    }
}

fn script(
    roles: &[&'static str],
    run: impl Fn(&mut StepContext<'_>) -> Result<Outcome, RunError> + Send + Sync + 'static,
) -> Arc<dyn TaskExecutor> {
    Arc::new(BuiltinExecutor::with_agents(Arc::new(Script {
        roles: roles.to_vec(),
        run: Box::new(run),
    })))
}

fn config() -> OrchestratorConfig {
    OrchestratorConfig {
        lease_ms: 1_000,
        backoff_base_ms: 1_000,
        backoff_max_ms: 60_000,
        ..OrchestratorConfig::default()
    }
}

fn coordinator(fx: &Fixture, catalog: RoleCatalog, executor: Arc<dyn TaskExecutor>) -> Coordinator {
    Coordinator::new(
        fx.path.clone(),
        Durability::Normal,
        Arc::new(fx.clock.clone()),
        catalog,
        config(),
        executor,
    )
}

fn submit(fx: &mut Fixture, catalog: &RoleCatalog, task: NewTask) -> queue::Task {
    let now = fx.clock.now_ms();
    fx.store
        .write(|tx| queue::submit(tx, now, &Actor::Operator, catalog, task))
        .unwrap()
        .task
}

fn task(role: &str) -> NewTask {
    NewTask {
        role: role.into(),
        input: json!({}),
        ..NewTask::default()
    }
}

fn get(fx: &Fixture, id: &str) -> queue::Task {
    queue::get(fx.store.conn(), id).unwrap()
}

fn audit_actions(fx: &Fixture, subject: &str) -> Vec<String> {
    let filter = audit::Filter {
        subject: Some(subject.into()),
        ..audit::Filter::default()
    };
    audit::query(fx.store.conn(), &filter, 1_000, false)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[test]
fn submission_is_validated_deduplicated_and_audited() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin().with_role(
        "writer",
        Some(json!({"type": "object", "required": ["topic"], "properties": {"topic": {"type": "string"}}})),
    );
    let mut new = task("writer");
    new.input = json!({"topic": "pricing"});
    new.idempotency_key = Some("k1".into());
    let first = submit(&mut fx, &catalog, new.clone());
    let again = fx
        .store
        .write(|tx| queue::submit(tx, T0, &Actor::Operator, &catalog, new.clone()))
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.task.id, first.id);
    assert_eq!(first.state, TaskState::Queued);

    let mut bad = task("writer");
    bad.input = json!({"topic": 7});
    let err = fx
        .store
        .write(|tx| queue::submit(tx, T0, &Actor::Operator, &catalog, bad))
        .unwrap_err();
    assert!(err.to_string().contains("/topic"), "{err}");
    let err = fx
        .store
        .write(|tx| queue::submit(tx, T0, &Actor::Operator, &catalog, task("poet")))
        .unwrap_err();
    assert!(err.to_string().contains("unknown role \"poet\""), "{err}");
    let count: i64 = fx
        .store
        .conn()
        .query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1, "refused submissions store nothing");
    assert_eq!(
        audit_actions(&fx, &format!("task/{}", first.id)),
        ["task.submitted"]
    );
}

#[test]
fn every_transition_is_audited_and_finished_tasks_stay_finished() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin();
    let t = submit(&mut fx, &catalog, task("noop"));
    let c = coordinator(&fx, catalog, Arc::new(BuiltinExecutor::default()));
    assert_eq!(c.run_pending(&mut fx.store).unwrap(), 1);
    assert_eq!(get(&fx, &t.id).state, TaskState::Succeeded);
    assert_eq!(
        audit_actions(&fx, &format!("task/{}", t.id)),
        ["task.submitted", "task.claimed", "task.succeeded"]
    );
    let err = fx
        .store
        .write(|tx| ops::cancel(tx, T0, &Actor::Operator, &t.id))
        .unwrap_err();
    assert!(err.to_string().contains("already succeeded"), "{err}");
    let err = fx
        .store
        .write(|tx| {
            queue::transition(
                tx,
                T0,
                &Actor::Operator,
                &t.id,
                TaskState::Queued,
                "x",
                queue::Change::default(),
            )
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("from succeeded to queued"),
        "{err}"
    );
    assert!(
        audit::verify(fx.store.conn())
            .unwrap()
            .first_broken
            .is_none()
    );
}

#[test]
fn two_processes_never_claim_the_same_task() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin();
    fx.store
        .write(|tx| {
            for _ in 0..200 {
                queue::submit(tx, T0, &Actor::Operator, &catalog, task("noop"))?;
            }
            Ok(())
        })
        .unwrap();
    let mut claimers = Vec::new();
    for _ in 0..2 {
        let path = fx.path.clone();
        let clock = fx.clock.clone();
        claimers.push(std::thread::spawn(move || {
            let mut cfg = config();
            cfg.max_running = 1_000;
            cfg.default_role_limit = 1_000;
            let c = Coordinator::new(
                path.clone(),
                Durability::Normal,
                Arc::new(clock),
                RoleCatalog::builtin(),
                cfg,
                Arc::new(BuiltinExecutor::default()),
            );
            let mut store = Store::open(&path, Durability::Normal).unwrap();
            let mut mine = Vec::new();
            loop {
                let got = c.claim(&mut store, 3).unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|t| t.id));
            }
        }));
    }
    let results: Vec<Vec<String>> = claimers.into_iter().map(|h| h.join().unwrap()).collect();
    let all: BTreeSet<&String> = results.iter().flatten().collect();
    assert_eq!(
        results.iter().map(Vec::len).sum::<usize>(),
        200,
        "each task claimed exactly once"
    );
    assert_eq!(all.len(), 200);
}

#[test]
fn concurrency_limits_hold_per_role_and_globally() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin().with_role("writer", None);
    for _ in 0..5 {
        submit(&mut fx, &catalog, task("writer"));
        submit(&mut fx, &catalog, task("noop"));
    }
    let mut cfg = config();
    cfg.max_running = 3;
    cfg.role_limits.insert("writer".into(), 1);
    let c = Coordinator::new(
        fx.path.clone(),
        Durability::Normal,
        Arc::new(fx.clock.clone()),
        catalog,
        cfg,
        Arc::new(BuiltinExecutor::default()),
    );
    let claimed = c.claim(&mut fx.store, 10).unwrap();
    assert_eq!(claimed.len(), 3, "global limit");
    assert_eq!(
        claimed.iter().filter(|t| t.role == "writer").count(),
        1,
        "per-role limit"
    );
    assert!(c.claim(&mut fx.store, 10).unwrap().is_empty());
}

#[test]
fn an_expired_lease_returns_the_task_and_the_old_owner_cannot_finish_it() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin();
    let t = submit(&mut fx, &catalog, task("noop"));
    let a = coordinator(&fx, catalog.clone(), Arc::new(BuiltinExecutor::default()));
    let b = coordinator(&fx, catalog, Arc::new(BuiltinExecutor::default()));
    let claimed = a.claim(&mut fx.store, 1).unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(b.claim(&mut fx.store, 1).unwrap().is_empty());
    fx.clock.advance(999);
    b.maintain(&mut fx.store).unwrap();
    assert_eq!(
        get(&fx, &t.id).state,
        TaskState::Running,
        "lease still valid"
    );
    fx.clock.advance(2);
    b.maintain(&mut fx.store).unwrap();
    let back = get(&fx, &t.id);
    assert_eq!(back.state, TaskState::Queued);
    assert_eq!(back.lease_losses, 1);
    assert!(
        audit_actions(&fx, &format!("task/{}", t.id)).contains(&"task.lease_recovered".to_string())
    );
    let reclaimed = b.claim(&mut fx.store, 1).unwrap();
    assert_eq!(reclaimed.len(), 1);
    // The old owner wakes up and tries to record its run: ignored.
    a.execute(&mut fx.store, &claimed[0]).unwrap();
    let now = get(&fx, &t.id);
    assert_eq!(now.state, TaskState::Running);
    assert_eq!(now.lease_owner.as_deref(), Some(b.env.owner.as_str()));
    b.execute(&mut fx.store, &reclaimed[0]).unwrap();
    assert_eq!(get(&fx, &t.id).state, TaskState::Succeeded);
}

#[test]
fn a_lease_this_process_forgot_is_released_at_the_next_heartbeat() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin();
    let t = submit(&mut fx, &catalog, task("noop"));
    let a = coordinator(&fx, catalog.clone(), Arc::new(BuiltinExecutor::default()));
    assert_eq!(a.claim(&mut fx.store, 1).unwrap().len(), 1);
    a.heartbeat(&mut fx.store).unwrap();
    assert_eq!(
        get(&fx, &t.id).state,
        TaskState::Running,
        "a known claim is renewed"
    );
    // The same owner without the claim in memory (as after a failed write): an orphan.
    let owner = a.env.owner.clone();
    let b = coordinator(&fx, catalog, Arc::new(BuiltinExecutor::default()))
        .configure(|env| env.owner = owner);
    b.heartbeat(&mut fx.store).unwrap();
    assert_eq!(get(&fx, &t.id).state, TaskState::Queued);
    assert!(audit_actions(&fx, &format!("task/{}", t.id)).contains(&"task.released".to_string()));
}

#[test]
fn a_task_that_keeps_killing_its_worker_is_escalated() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin();
    let t = submit(&mut fx, &catalog, task("noop"));
    let cfg = OrchestratorConfig {
        max_lease_losses: 2,
        ..config()
    };
    let c = Coordinator::new(
        fx.path.clone(),
        Durability::Normal,
        Arc::new(fx.clock.clone()),
        catalog,
        cfg,
        Arc::new(BuiltinExecutor::default()),
    );
    for _ in 0..2 {
        assert_eq!(c.claim(&mut fx.store, 1).unwrap().len(), 1);
        fx.clock.advance(1_001); // the worker died: no heartbeat
        c.maintain(&mut fx.store).unwrap();
    }
    let after = get(&fx, &t.id);
    assert_eq!(after.state, TaskState::Escalated);
    assert_eq!(after.lease_losses, 2);
    assert!(after.detail.contains("cut off 2 times"), "{}", after.detail);
}

#[test]
fn failures_back_off_then_escalate_with_history_and_a_suggested_fix() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin().with_role("caller", None);
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let c = coordinator(
        &fx,
        catalog.clone(),
        script(&["caller"], move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Err(RunError::Retryable(
                "connection refused (temporary failure)".into(),
            ))
        }),
    );
    let t = submit(&mut fx, &catalog, task("caller"));
    let cfg = config();
    for attempt in 1..=2 {
        assert_eq!(c.run_pending(&mut fx.store).unwrap(), 1);
        let after = get(&fx, &t.id);
        assert_eq!(after.state, TaskState::Queued);
        assert_eq!(after.attempts, attempt);
        let delay = backoff_ms(&cfg, &t.id, attempt);
        assert_eq!(after.not_before_ms, fx.clock.now_ms() + delay);
        fx.clock.advance(delay - 1);
        assert_eq!(
            c.run_pending(&mut fx.store).unwrap(),
            0,
            "not due before the backoff"
        );
        fx.clock.advance(1);
    }
    assert_eq!(c.run_pending(&mut fx.store).unwrap(), 1);
    let escalated = get(&fx, &t.id);
    assert_eq!(escalated.state, TaskState::Escalated);
    assert_eq!(escalated.errors.len(), 3);
    assert!(
        escalated.detail.contains("unreachable"),
        "{}",
        escalated.detail
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        c.run_pending(&mut fx.store).unwrap(),
        0,
        "escalated tasks wait for the operator"
    );

    // Operator: edit the input and retry.
    let now = fx.clock.now_ms();
    fx.store
        .write(|tx| {
            ops::retry(
                tx,
                now,
                &Actor::Operator,
                &catalog,
                &t.id,
                Some(json!({"fixed": true})),
            )
        })
        .unwrap();
    let retried = get(&fx, &t.id);
    assert_eq!((retried.state, retried.attempts), (TaskState::Queued, 0));
    assert_eq!(retried.input, json!({"fixed": true}));
    assert!(
        audit_actions(&fx, &format!("task/{}", t.id))
            .contains(&"task.retried_with_edit".to_string())
    );
}

#[test]
fn backoff_is_the_same_for_the_same_seed() {
    let cfg = config();
    let other = OrchestratorConfig {
        seed: 7,
        ..config()
    };
    assert_eq!(backoff_ms(&cfg, "a", 2), backoff_ms(&cfg, "a", 2));
    assert_ne!(backoff_ms(&cfg, "a", 2), backoff_ms(&other, "a", 2));
}

#[test]
fn a_timeout_stops_the_run_at_its_next_step_and_counts_as_a_failure() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin().with_role("slow", None);
    let clock = fx.clock.clone();
    let second_step = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&second_step);
    let c = coordinator(
        &fx,
        catalog.clone(),
        script(&["slow"], move |ctx| {
            ctx.step("long", || {
                clock.advance(5_001);
                Ok(1)
            })?;
            ctx.step("after", || {
                seen.fetch_add(1, Ordering::SeqCst);
                Ok(2)
            })?;
            Ok(Outcome::Succeeded(json!({})))
        }),
    );
    let mut new = task("slow");
    new.timeout_ms = Some(5_000);
    let t = submit(&mut fx, &catalog, new);
    c.run_pending(&mut fx.store).unwrap();
    let after = get(&fx, &t.id);
    assert_eq!(after.state, TaskState::Queued);
    assert_eq!(after.attempts, 1);
    assert!(
        after.errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 5000 ms")
    );
    assert_eq!(second_step.load(Ordering::SeqCst), 0);
}

#[test]
fn a_resumed_run_skips_its_checkpointed_steps() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin().with_role("steps", None);
    let calls = Arc::new(Mutex::new(vec![0usize; 3]));
    let stop_after_two = Arc::new(AtomicUsize::new(1));
    let (c_calls, c_stop) = (Arc::clone(&calls), Arc::clone(&stop_after_two));
    let c = coordinator(
        &fx,
        catalog.clone(),
        script(&["steps"], move |ctx| {
            let mut out = Vec::new();
            for i in 0..3 {
                if i == 2 && c_stop.swap(0, Ordering::SeqCst) == 1 {
                    return Err(RunError::Interrupted(
                        keel::core::coordinator::Interrupt::Shutdown,
                    ));
                }
                let calls = Arc::clone(&c_calls);
                let v: usize = ctx.step(&format!("s{i}"), move || {
                    calls.lock().unwrap()[i] += 1;
                    Ok(i * 10)
                })?;
                out.push(v);
            }
            Ok(Outcome::Succeeded(json!(out)))
        }),
    );
    let t = submit(&mut fx, &catalog, task("steps"));
    c.run_pending(&mut fx.store).unwrap();
    let t1 = get(&fx, &t.id);
    assert_eq!(
        t1.state,
        TaskState::Succeeded,
        "released then resumed in the same pass"
    );
    assert_eq!(*calls.lock().unwrap(), vec![1, 1, 1], "no step ran twice");
    assert_eq!(t1.output, Some(json!([0, 10, 20])));
    assert_eq!(t1.attempts, 0, "a release is not a failed attempt");
    assert!(audit_actions(&fx, &format!("task/{}", t.id)).contains(&"task.released".to_string()));
}

#[test]
fn a_database_step_commits_with_its_checkpoint_exactly_once() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin().with_role("note", None);
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&attempts);
    let c = coordinator(
        &fx,
        catalog.clone(),
        script(&["note"], move |ctx| {
            let id: String = ctx.db_step("publish", &json!({"topic": "notes"}), |tx, actor| {
                keel::core::blackboard::publish(
                    tx,
                    0,
                    actor,
                    &keel::core::blackboard::NewFinding {
                        topic: "notes".into(),
                        author: "note".into(),
                        text: "hello".into(),
                        data: json!({}),
                        task: None,
                    },
                )
            })?;
            // The first attempt fails after the step; the retry must not publish again.
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(RunError::Retryable("flaky".into()));
            }
            Ok(Outcome::Succeeded(json!({"finding": id})))
        }),
    );
    let t = submit(&mut fx, &catalog, task("note"));
    c.run_pending(&mut fx.store).unwrap();
    fx.clock.advance(60_000);
    c.run_pending(&mut fx.store).unwrap();
    assert_eq!(get(&fx, &t.id).state, TaskState::Succeeded);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(
        keel::core::blackboard::list(fx.store.conn(), Some("notes"), 0, 10)
            .unwrap()
            .total,
        1
    );
}

#[test]
fn a_task_whose_role_disappeared_is_escalated_not_dropped() {
    let mut fx = fixture();
    let with_ghost = RoleCatalog::builtin().with_role("ghost", None);
    let t = submit(&mut fx, &with_ghost, task("ghost"));
    let c = coordinator(
        &fx,
        RoleCatalog::builtin(),
        Arc::new(BuiltinExecutor::default()),
    );
    c.run_pending(&mut fx.store).unwrap();
    let after = get(&fx, &t.id);
    assert_eq!(after.state, TaskState::Escalated);
    assert!(
        after.detail.contains("agents/ghost.toml"),
        "{}",
        after.detail
    );
}

#[test]
fn output_is_checked_against_its_schema() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin();
    let mut new = task("noop");
    new.output_schema = Some(json!({"type": "object", "required": ["answer"]}));
    new.max_attempts = Some(1);
    let t = submit(&mut fx, &catalog, new);
    coordinator(&fx, catalog, Arc::new(BuiltinExecutor::default()))
        .run_pending(&mut fx.store)
        .unwrap();
    let after = get(&fx, &t.id);
    assert_eq!(after.state, TaskState::Escalated);
    assert!(
        after.errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("answer")
    );
}

#[test]
fn pause_resume_and_cancel() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin();
    let c = coordinator(&fx, catalog.clone(), Arc::new(BuiltinExecutor::default()));
    let a = submit(&mut fx, &catalog, task("noop"));
    fx.store
        .write(|tx| ops::set_queue_paused(tx, T0, &Actor::Operator, true))
        .unwrap();
    assert_eq!(c.run_pending(&mut fx.store).unwrap(), 0);
    fx.store
        .write(|tx| ops::set_task_paused(tx, T0, &Actor::Operator, &a.id, true))
        .unwrap();
    fx.store
        .write(|tx| ops::set_queue_paused(tx, T0, &Actor::Operator, false))
        .unwrap();
    assert_eq!(
        c.run_pending(&mut fx.store).unwrap(),
        0,
        "the task itself is paused"
    );
    fx.store
        .write(|tx| ops::set_task_paused(tx, T0, &Actor::Operator, &a.id, false))
        .unwrap();
    assert_eq!(c.run_pending(&mut fx.store).unwrap(), 1);

    let parent = submit(&mut fx, &catalog, task("noop"));
    let mut child = task("noop");
    child.parent = Some(parent.id.clone());
    let child = submit(&mut fx, &catalog, child);
    let changed = fx
        .store
        .write(|tx| ops::cancel(tx, T0, &Actor::Operator, &parent.id))
        .unwrap();
    assert_eq!(changed.len(), 2);
    assert_eq!(
        get(&fx, &child.id).state,
        TaskState::Cancelled,
        "cancel cascades to children"
    );
    assert_eq!(c.run_pending(&mut fx.store).unwrap(), 0);
}

#[test]
fn background_work_waits_for_the_off_peak_window_unless_run_now() {
    let mut fx = fixture();
    fx.clock.set(
        "2026-01-10T12:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond(),
    );
    let catalog = RoleCatalog::builtin();
    let c =
        coordinator(&fx, catalog.clone(), Arc::new(BuiltinExecutor::default())).configure(|env| {
            env.scheduler = SchedulerSettings {
                timezone: jiff::tz::TimeZone::UTC,
                off_peak: parse_window("22:00-06:00").unwrap(),
                schedules: Vec::new(),
            };
        });
    let mut bg = task("noop");
    bg.background = true;
    let a = submit(&mut fx, &catalog, bg.clone());
    let b = submit(&mut fx, &catalog, bg);
    assert_eq!(c.run_pending(&mut fx.store).unwrap(), 0);
    let now = fx.clock.now_ms();
    fx.store
        .write(|tx| ops::run_now(tx, now, &Actor::Operator, &a.id))
        .unwrap();
    assert_eq!(c.run_pending(&mut fx.store).unwrap(), 1);
    assert_eq!(get(&fx, &b.id).state, TaskState::Queued);
    fx.clock.advance(11 * 3_600_000); // 23:00
    assert_eq!(c.run_pending(&mut fx.store).unwrap(), 1);
    assert_eq!(get(&fx, &b.id).state, TaskState::Succeeded);
}

#[test]
fn one_off_timers_hold_work_until_due() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin().with_role("nap", None);
    let c = coordinator(
        &fx,
        catalog.clone(),
        script(&["nap"], |ctx| {
            let wake: i64 = {
                let now = ctx.now_ms();
                ctx.step("set alarm", move || Ok(now + 5_000))?
            };
            if ctx.now_ms() < wake {
                return Ok(Outcome::WaitTimer(wake));
            }
            Ok(Outcome::Succeeded(json!({"woke_at": wake})))
        }),
    );
    let mut later = task("noop");
    later.not_before_ms = Some(T0 + 60_000);
    let later = submit(&mut fx, &catalog, later);
    let nap = submit(&mut fx, &catalog, task("nap"));
    assert_eq!(
        c.run_pending(&mut fx.store).unwrap(),
        1,
        "only the nap runs now"
    );
    assert_eq!(get(&fx, &nap.id).state, TaskState::Waiting(WaitFor::Timer));
    fx.clock.advance(4_999);
    assert_eq!(c.run_pending(&mut fx.store).unwrap(), 0);
    fx.clock.advance(1);
    assert_eq!(c.run_pending(&mut fx.store).unwrap(), 1);
    assert_eq!(
        get(&fx, &nap.id).output,
        Some(json!({"woke_at": T0 + 5_000}))
    );
    assert_eq!(get(&fx, &later.id).state, TaskState::Queued);
    fx.clock.set(T0 + 60_000);
    assert_eq!(c.run_pending(&mut fx.store).unwrap(), 1);
    assert_eq!(get(&fx, &later.id).state, TaskState::Succeeded);
}

#[test]
fn cron_fires_on_time_and_missed_ticks_run_once() {
    let mut fx = fixture();
    let start = "2026-03-02T10:30:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    fx.clock.set(start);
    let catalog = RoleCatalog::builtin();
    let schedule = ScheduleConfig {
        name: "hourly".into(),
        cron: "0 * * * *".into(),
        task: task("noop"),
    };
    let settings = SchedulerSettings {
        timezone: jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
        off_peak: None,
        schedules: vec![(schedule.clone(), CronSpec::parse(&schedule.cron).unwrap())],
    };
    let c = coordinator(&fx, catalog, Arc::new(BuiltinExecutor::default()))
        .configure(|env| env.scheduler = settings);
    let scheduled = |fx: &Fixture| -> i64 {
        fx.store
            .conn()
            .query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))
            .unwrap()
    };
    c.maintain(&mut fx.store).unwrap();
    assert_eq!(scheduled(&fx), 0, "a new schedule waits for its first tick");
    fx.clock.set(start + 29 * 60_000); // 10:59
    c.maintain(&mut fx.store).unwrap();
    assert_eq!(scheduled(&fx), 0);
    fx.clock.set(start + 30 * 60_000); // 11:00
    c.maintain(&mut fx.store).unwrap();
    assert_eq!(scheduled(&fx), 1);
    // keel is down from 11:00 to 16:10: ticks at 12, 13, 14, 15 and 16 were missed.
    fx.clock.set(start + (5 * 60 + 40) * 60_000);
    c.maintain(&mut fx.store).unwrap();
    c.maintain(&mut fx.store).unwrap();
    assert_eq!(scheduled(&fx), 2, "missed ticks run once");
    let fired = audit::query(
        fx.store.conn(),
        &audit::Filter {
            action: Some("schedule.fired".into()),
            ..audit::Filter::default()
        },
        10,
        true,
    )
    .unwrap();
    assert_eq!(fired[0].payload["missed"], json!(4));
    let next: i64 = fx
        .store
        .conn()
        .query_row(
            "SELECT next_ms FROM schedules WHERE name = 'hourly'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        next,
        "2026-03-02T17:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond()
    );
    assert_eq!(c.run_pending(&mut fx.store).unwrap(), 2);
}

#[test]
fn findings_become_tasks_for_subscribers_once() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin()
        .with_subscription("analyst", "leads")
        .with_subscription("writer", "leads")
        .with_subscription("researcher", "leads");
    let c = coordinator(&fx, catalog, Arc::new(BuiltinExecutor::default()));
    let id = fx
        .store
        .write(|tx| {
            keel::core::blackboard::publish(
                tx,
                T0,
                &Actor::agent("r1"),
                &keel::core::blackboard::NewFinding {
                    topic: "leads".into(),
                    author: "researcher".into(),
                    text: "ACME wants a quote".into(),
                    data: json!({"company": "ACME"}),
                    task: None,
                },
            )
        })
        .unwrap();
    c.maintain(&mut fx.store).unwrap();
    // Redeliver everything (as after a crash before the cursor moved): no new tasks.
    fx.store
        .conn()
        .execute(
            "UPDATE orchestrator_state SET value = '0' WHERE key = 'blackboard.cursor'",
            [],
        )
        .unwrap();
    c.maintain(&mut fx.store).unwrap();
    let mut roles: Vec<(String, String)> = fx
        .store
        .conn()
        .prepare("SELECT role, idempotency_key FROM tasks ORDER BY role")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        vec![
            ("analyst".to_string(), format!("finding:{id}:analyst")),
            ("writer".to_string(), format!("finding:{id}:writer")),
        ],
        "one task per subscribed role, never for the author's own role"
    );
    let page = keel::core::blackboard::list(fx.store.conn(), Some("leads"), 0, 10).unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].data, json!({"company": "ACME"}));
    assert_eq!(
        keel::core::blackboard::list(fx.store.conn(), Some("other"), 0, 10)
            .unwrap()
            .total,
        0
    );
}

const DIAMOND: &str = r#"
name = "diamond"
[[stage]]
name = "a"
role = "step"
[[stage]]
name = "b"
role = "step"
after = ["a"]
[[stage]]
name = "c"
role = "step"
after = ["a"]
[[stage]]
name = "d"
role = "step"
after = ["b", "c"]
"#;

#[test]
fn a_workflow_fans_out_and_in() {
    let mut fx = fixture();
    let wf = Workflow::parse(
        DIAMOND,
        std::path::Path::new("agents/diamond.workflow.toml"),
    )
    .unwrap();
    let catalog = RoleCatalog::builtin()
        .with_role("step", None)
        .with_workflow(wf);
    let order = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&order);
    let c = coordinator(
        &fx,
        catalog.clone(),
        script(&["step"], move |ctx| {
            let stage = ctx.task().stage.clone().unwrap_or_default();
            let upstream: Vec<String> = ctx
                .task()
                .input
                .get("upstream")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            seen.lock().unwrap().push(stage.clone());
            Ok(Outcome::Succeeded(
                json!({"stage": stage, "upstream": upstream}),
            ))
        }),
    );
    let mut new = task("workflow");
    new.input = json!({"workflow": "diamond", "input": {"topic": "x"}});
    let parent = submit(&mut fx, &catalog, new);
    c.run_pending(&mut fx.store).unwrap();
    let done = get(&fx, &parent.id);
    assert_eq!(done.state, TaskState::Succeeded);
    let order = order.lock().unwrap().clone();
    assert_eq!(order.first().map(String::as_str), Some("a"));
    assert_eq!(order.last().map(String::as_str), Some("d"));
    assert_eq!(order.len(), 4, "each stage ran once: {order:?}");
    let out = done.output.unwrap();
    assert_eq!(out["stages"]["d"]["upstream"], json!(["b", "c"]));
    let actions = audit_actions(&fx, &format!("task/{}", parent.id));
    assert!(
        actions
            .iter()
            .filter(|a| *a == "task.children_done")
            .count()
            >= 2,
        "{actions:?}"
    );
    let children = queue::query::children(fx.store.conn(), &parent.id).unwrap();
    assert_eq!(children.len(), 4);
    assert!(children.iter().all(|c| c.input["topic"] == json!("x")));
}

#[test]
fn an_approval_stage_waits_for_the_operator() {
    let mut fx = fixture();
    let text = "name = \"gate\"\n[[stage]]\nname = \"draft\"\nrole = \"noop\"\n[[stage]]\nname = \"approve\"\napproval = true\n[[stage]]\nname = \"ship\"\nrole = \"noop\"\n";
    let catalog = RoleCatalog::builtin()
        .with_workflow(Workflow::parse(text, std::path::Path::new("g.toml")).unwrap());
    let c = coordinator(&fx, catalog.clone(), Arc::new(BuiltinExecutor::default()));
    let mut new = task("workflow");
    new.input = json!({"workflow": "gate"});
    let parent = submit(&mut fx, &catalog, new);
    c.run_pending(&mut fx.store).unwrap();
    assert_eq!(
        get(&fx, &parent.id).state,
        TaskState::Waiting(WaitFor::Children)
    );
    let children = queue::query::children(fx.store.conn(), &parent.id).unwrap();
    let gate = children
        .iter()
        .find(|t| t.stage.as_deref() == Some("approve"))
        .unwrap();
    assert_eq!(gate.state, TaskState::Waiting(WaitFor::Approval));
    fx.store
        .write(|tx| {
            ops::resolve_approval(
                tx,
                T0,
                &Actor::Operator,
                &gate.id,
                true,
                json!({"ok": true}),
            )
        })
        .unwrap();
    c.run_pending(&mut fx.store).unwrap();
    assert_eq!(get(&fx, &parent.id).state, TaskState::Succeeded);
}

#[test]
fn a_run_can_wait_for_approval_and_resume_after_it() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin()
        .with_role("spender", None)
        .with_role("lonely", None);
    // Stands in for the approvals module's record of the decision.
    let approved = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asks = Arc::new(AtomicUsize::new(0));
    let (decision, asked) = (Arc::clone(&approved), Arc::clone(&asks));
    let c = coordinator(
        &fx,
        catalog.clone(),
        script(&["spender", "lonely"], move |ctx| {
            if ctx.task().role == "lonely" {
                return Ok(Outcome::WaitChildren);
            }
            let asked = Arc::clone(&asked);
            let quote: u32 = ctx.step("quote", move || {
                asked.fetch_add(1, Ordering::SeqCst);
                Ok(40)
            })?;
            if !decision.load(Ordering::SeqCst) {
                return Ok(Outcome::WaitApproval(format!(
                    "pay {quote} USD to the printer"
                )));
            }
            Ok(Outcome::Succeeded(json!({"paid": quote})))
        }),
    );
    let t = submit(&mut fx, &catalog, task("spender"));
    c.run_pending(&mut fx.store).unwrap();
    let waiting = get(&fx, &t.id);
    assert_eq!(waiting.state, TaskState::Waiting(WaitFor::Approval));
    assert_eq!(waiting.detail, "pay 40 USD to the printer");
    approved.store(true, Ordering::SeqCst);
    fx.store
        .write(|tx| ops::resolve_approval(tx, T0, &Actor::Operator, &t.id, true, json!("ok")))
        .unwrap();
    assert_eq!(
        get(&fx, &t.id).state,
        TaskState::Queued,
        "an approved run resumes"
    );
    c.run_pending(&mut fx.store).unwrap();
    let done = get(&fx, &t.id);
    assert_eq!(done.state, TaskState::Succeeded);
    assert_eq!(done.output, Some(json!({"paid": 40})));
    assert_eq!(
        asks.load(Ordering::SeqCst),
        1,
        "the quote step was not redone"
    );

    let lonely = submit(&mut fx, &catalog, task("lonely"));
    c.run_pending(&mut fx.store).unwrap();
    assert_eq!(
        get(&fx, &lonely.id).state,
        TaskState::Escalated,
        "waiting for no children is refused"
    );
}

#[test]
fn cyclic_workflows_and_unknown_roles_are_refused_at_submission() {
    let mut fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("agents")).unwrap();
    std::fs::write(
        dir.path().join("agents/loop.workflow.toml"),
        "name = \"loop\"\n[[stage]]\nname = \"a\"\nrole = \"noop\"\nafter = [\"b\"]\n[[stage]]\nname = \"b\"\nrole = \"noop\"\nafter = [\"a\"]\n",
    )
    .unwrap();
    let catalog = RoleCatalog::load(dir.path()).unwrap();
    let mut new = task("workflow");
    new.input = json!({"workflow": "loop"});
    let err = fx
        .store
        .write(|tx| queue::submit(tx, T0, &Actor::Operator, &catalog, new))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cycle") && err.contains("loop.workflow.toml:"),
        "{err}"
    );
    // The shipped agent roles are known (compiled in), so the content workflow is accepted;
    // a stage whose role nobody runs is refused.
    let mut content = task("workflow");
    content.input = json!({"workflow": "content"});
    fx.store
        .write(|tx| queue::submit(tx, T0, &Actor::Operator, &catalog, content))
        .unwrap();
    std::fs::write(
        dir.path().join("agents/poems.workflow.toml"),
        "name = \"poems\"\n[[stage]]\nname = \"a\"\nrole = \"poet\"\n",
    )
    .unwrap();
    let catalog = RoleCatalog::load(dir.path()).unwrap();
    let mut poems = task("workflow");
    poems.input = json!({"workflow": "poems"});
    let err = fx
        .store
        .write(|tx| queue::submit(tx, T0, &Actor::Operator, &catalog, poems))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown role \"poet\""), "{err}");
}

mod ledger {
    use super::*;
    use keel::core::effects::connector::{ActionSpec, Connector, ConnectorError, Reversibility};
    use keel::core::effects::ledger::{self, EffectState, LedgerError, Request};

    /// A target that records what it applied and checks the ledger row before each call.
    struct Target {
        db: PathBuf,
        applied: Mutex<Vec<String>>,
        performs: AtomicUsize,
        lookup_works: bool,
    }

    impl Connector for Target {
        fn name(&self) -> &'static str {
            "target"
        }
        fn actions(&self) -> Vec<ActionSpec> {
            vec![ActionSpec {
                name: "send".into(),
                reversibility: Reversibility::Compensable,
                compensation: Some("unsend".into()),
                description: String::new(),
            }]
        }
        fn perform(&self, _: &str, args: &Value, key: &str) -> Result<Value, ConnectorError> {
            // The intent must be committed before the outside world is touched.
            let other = Store::open(&self.db, Durability::Normal).unwrap();
            assert_eq!(
                ledger::get(other.conn(), key).unwrap().unwrap().state,
                EffectState::Intended
            );
            self.performs.fetch_add(1, Ordering::SeqCst);
            self.applied.lock().unwrap().push(key.to_string());
            Ok(json!({"sent": args}))
        }
        fn lookup(&self, _: &str, _: &Value, key: &str) -> Result<Option<Value>, ConnectorError> {
            if !self.lookup_works {
                return Err(ConnectorError::Permanent {
                    target: "target".into(),
                    message: "no lookup".into(),
                });
            }
            Ok(self
                .applied
                .lock()
                .unwrap()
                .contains(&key.to_string())
                .then(|| json!({"found": key})))
        }
        fn compensate(
            &self,
            _: &str,
            _: &Value,
            _: &Value,
            key: &str,
        ) -> Result<Value, ConnectorError> {
            self.applied.lock().unwrap().retain(|k| k != key);
            Ok(json!({"undone": key}))
        }
    }

    fn target(fx: &Fixture, lookup_works: bool) -> Target {
        Target {
            db: fx.path.clone(),
            applied: Mutex::new(Vec::new()),
            performs: AtomicUsize::new(0),
            lookup_works,
        }
    }

    fn intended_row(fx: &mut Fixture, key: &str, args: &Value) {
        let args = keel::core::canonical::to_string(args);
        fx.store
            .write(|tx| {
                tx.execute(
                    "INSERT INTO effects (key, task, step, connector, action, args, state, created_ms, updated_ms)
                     VALUES (?1, 't', '0:send', 'target', 'send', ?2, 'intended', 0, 0)",
                    rusqlite::params![key, args],
                )?;
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn keys_ignore_argument_order() {
        assert_eq!(
            ledger::key("t", "s", &json!({"a": 1, "b": 2})),
            ledger::key("t", "s", &json!({"b": 2, "a": 1}))
        );
        assert_ne!(
            ledger::key("t", "s", &json!({"a": 1})),
            ledger::key("t", "s2", &json!({"a": 1}))
        );
    }

    #[test]
    fn an_effect_runs_once_and_its_result_is_replayed() {
        let mut fx = fixture();
        let t = target(&fx, true);
        let args = json!({"to": "a@b.c"});
        let req = Request {
            task: "t",
            step: "0:send",
            action: "send",
            args: &args,
        };
        let first = ledger::perform(&mut fx.store, &fx.clock, &Actor::agent("r"), &t, req).unwrap();
        let second =
            ledger::perform(&mut fx.store, &fx.clock, &Actor::agent("r"), &t, req).unwrap();
        assert_eq!(first, second);
        assert_eq!(t.performs.load(Ordering::SeqCst), 1);
        let key = ledger::key("t", "0:send", &args);
        assert_eq!(
            ledger::get(fx.store.conn(), &key).unwrap().unwrap().state,
            EffectState::Done
        );
        ledger::compensate(&mut fx.store, &fx.clock, &Actor::Operator, &t, &key).unwrap();
        assert_eq!(
            ledger::get(fx.store.conn(), &key).unwrap().unwrap().state,
            EffectState::Compensated
        );
        assert!(matches!(
            ledger::perform(&mut fx.store, &fx.clock, &Actor::agent("r"), &t, req),
            Err(LedgerError::Compensated { .. })
        ));
    }

    #[test]
    fn an_intended_row_is_resolved_by_lookup_never_resent_blindly() {
        let args = json!({"n": 1});
        let key = ledger::key("t", "0:send", &args);
        let req = Request {
            task: "t",
            step: "0:send",
            action: "send",
            args: &args,
        };

        // Crash after the target applied it: lookup finds it, nothing is sent.
        let mut fx = fixture();
        let t = target(&fx, true);
        intended_row(&mut fx, &key, &args);
        t.applied.lock().unwrap().push(key.clone());
        let out = ledger::perform(&mut fx.store, &fx.clock, &Actor::agent("r"), &t, req).unwrap();
        assert_eq!(out, json!({"found": key}));
        assert_eq!(t.performs.load(Ordering::SeqCst), 0);

        // Crash before the target got it: sent again, with the same key.
        let mut fx = fixture();
        let t = target(&fx, true);
        intended_row(&mut fx, &key, &args);
        ledger::perform(&mut fx.store, &fx.clock, &Actor::agent("r"), &t, req).unwrap();
        assert_eq!(*t.applied.lock().unwrap(), vec![key.clone()]);

        // The target cannot tell: escalate, do not send.
        let mut fx = fixture();
        let t = target(&fx, false);
        intended_row(&mut fx, &key, &args);
        let err =
            ledger::perform(&mut fx.store, &fx.clock, &Actor::agent("r"), &t, req).unwrap_err();
        assert!(matches!(err, LedgerError::Unresolvable { .. }), "{err}");
        assert_eq!(t.performs.load(Ordering::SeqCst), 0);
        let run_err: RunError = err.into();
        assert!(matches!(run_err, RunError::Escalate(_)));
    }
}

#[test]
fn the_handle_serves_task_ops_and_notifies() {
    let dir = tempfile::tempdir().unwrap();
    let ws = keel::core::workspace::Workspace::init(&dir.path().join("ws")).unwrap();
    let handle = keel::core::handle::CoreHandle::start(ws).unwrap();
    let mut events = handle.subscribe();
    let row: TaskRow = handle
        .request_blocking(Op::SubmitTask {
            task: serde_json::from_value(
                json!({"role": "noop", "title": "hello", "idempotency_key": "x"}),
            )
            .unwrap(),
        })
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        (row.state.as_str(), row.title.as_str()),
        ("queued", "hello")
    );
    match events.try_recv().unwrap() {
        Event::Changed { subject, .. } => assert_eq!(subject, format!("task/{}", row.id)),
        other => panic!("unexpected {other:?}"),
    }
    let page: Page<TaskRow> = handle
        .request_blocking(Op::Query {
            query: Query::Tasks {
                state: Some("queued".into()),
                text: None,
                offset: 0,
                limit: 10,
            },
        })
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(page.total, 1);
    let cancelled: TaskRow = handle
        .request_blocking(Op::CancelTask { id: row.id.clone() })
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(cancelled.state, "cancelled");
    let err = handle
        .request_blocking(Op::SubmitTask {
            task: serde_json::from_value(json!({"role": "nobody"})).unwrap(),
        })
        .unwrap_err();
    assert!(err.to_string().contains("unknown role"), "{err}");
    handle.request_blocking(Op::PauseQueue).unwrap();
    handle.shutdown();
}

/// Polls `cond` until it holds (generous deadline; not a timing assertion).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn running_tasks_can_be_paused_resumed_and_cancelled_between_steps() {
    let mut fx = fixture();
    let catalog = RoleCatalog::builtin().with_role("long", None);
    // (task id, step) → times run; and the tasks whose executor has returned.
    let runs = Arc::new(Mutex::new(std::collections::HashMap::<
        (String, usize),
        usize,
    >::new()));
    let returned = Arc::new(Mutex::new(Vec::<String>::new()));
    let (counted, exits) = (Arc::clone(&runs), Arc::clone(&returned));
    let cfg = OrchestratorConfig {
        lease_ms: 150,
        poll_ms: 10,
        ..config()
    };
    let executor = script(&["long"], move |ctx| {
        let id = ctx.task().id.clone();
        let mut body = || -> Result<Outcome, RunError> {
            for i in 0..100 {
                let counted = Arc::clone(&counted);
                let key = (id.clone(), i);
                ctx.step(&format!("s{i}"), move || {
                    *counted.lock().unwrap().entry(key).or_default() += 1;
                    std::thread::sleep(std::time::Duration::from_millis(3));
                    Ok(i)
                })?;
            }
            Ok(Outcome::Succeeded(json!({})))
        };
        let result = body();
        exits.lock().unwrap().push(id);
        result
    });
    let steps_of = |id: &str| -> (usize, usize) {
        let runs = runs.lock().unwrap();
        let mine: Vec<usize> = runs
            .iter()
            .filter(|((t, _), _)| t == id)
            .map(|(_, n)| *n)
            .collect();
        (mine.len(), mine.iter().copied().max().unwrap_or(0))
    };
    let c = Arc::new(Coordinator::new(
        fx.path.clone(),
        Durability::Normal,
        Arc::new(keel::core::clock::SystemClock),
        catalog.clone(),
        cfg,
        executor,
    ));
    let t = submit(&mut fx, &catalog, task("long"));
    let running = Arc::clone(&c).start().unwrap();
    eventually("the task to start", || {
        get(&fx, &t.id).state == TaskState::Running
    });
    fx.store
        .write(|tx| ops::set_task_paused(tx, 0, &Actor::Operator, &t.id, true))
        .unwrap();
    eventually("the paused task to be released", || {
        let now = get(&fx, &t.id);
        now.state == TaskState::Queued && now.paused
    });
    assert!(steps_of(&t.id).0 < 100, "paused mid-run");
    fx.store
        .write(|tx| ops::set_task_paused(tx, 0, &Actor::Operator, &t.id, false))
        .unwrap();
    eventually("the resumed task to finish", || {
        get(&fx, &t.id).state == TaskState::Succeeded
    });
    assert_eq!(
        steps_of(&t.id),
        (100, 1),
        "every step ran exactly once across the pause"
    );

    let u = submit(&mut fx, &catalog, task("long"));
    eventually("the second task to start", || {
        get(&fx, &u.id).state == TaskState::Running
    });
    fx.store
        .write(|tx| ops::cancel(tx, 0, &Actor::Operator, &u.id))
        .unwrap();
    eventually("the cancelled run to stop by itself", || {
        returned.lock().unwrap().contains(&u.id)
    });
    running.stop();
    assert_eq!(get(&fx, &u.id).state, TaskState::Cancelled);
    assert!(
        steps_of(&u.id).0 < 100,
        "the cancelled run stopped at a step boundary"
    );
    assert!(
        audit::verify(fx.store.conn())
            .unwrap()
            .first_broken
            .is_none()
    );
}
