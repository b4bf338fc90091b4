//! `keel bench tui`: frame render time, key-to-frame latency and startup to first frame.
//!
//! The console runs on ratatui's `TestBackend` against a real core on a temporary workspace
//! whose audit table holds 1M entries (bulk-inserted; the chain hashes are placeholders
//! since only paging is measured), and a task list of 100k rows answered by slicing an
//! in-memory fixture the way the core pages it. Only the visible rows are ever built.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

use super::{Measurement, emit};
use crate::core::handle::CoreHandle;
use crate::core::workspace::Workspace;
use crate::protocol::{Answer, Op, Page, Query, TaskRow};
use crate::tui::message::Command;
use crate::tui::state::App;
use crate::tui::{keymap::Keymap, theme::Theme, view};

const TASKS: usize = 100_000;
const AUDIT: i64 = 1_000_000;
const WIDTH: u16 = 160;
const HEIGHT: u16 = 48;
const T0: i64 = 1_763_996_400_000;

#[allow(clippy::cast_precision_loss)] // row counts and sequence numbers far below 2^52
pub fn run(json: bool) -> anyhow::Result<()> {
    let dir = TempDir(std::env::temp_dir().join(format!("keel-bench-tui-{}", std::process::id())));
    let ws = Workspace::init(&dir.0.join("ws"))?;
    let started = Instant::now();
    fill_audit(&ws)?;
    let m = |metric: &str, value: f64, unit: &'static str| {
        emit(
            &Measurement {
                suite: "tui",
                metric: metric.into(),
                value,
                unit,
            },
            json,
        );
    };
    m("audit_bulk_insert_1m", started.elapsed().as_secs_f64(), "s");
    let tasks: Vec<TaskRow> = (0..TASKS).map(task).collect();

    // Startup: core start, state, first frame (drawn before any answer, as the console
    // does), then the first frame with the answers in.
    let t = Instant::now();
    let handle = CoreHandle::start(ws.clone())?;
    let mut app = App::new(
        "bench".into(),
        None,
        Keymap::default_map(),
        Theme::built_in("dark").unwrap_or_else(Theme::plain),
    );
    app.resize(WIDTH, HEIGHT);
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT))?;
    let start = app.start();
    terminal.draw(|f| view::render(&app, f))?;
    m("startup_to_first_frame", ms(t.elapsed()), "ms");
    answer(&mut app, start, &handle, &tasks);
    terminal.draw(|f| view::render(&app, f))?;
    m("startup_to_first_frame_with_data", ms(t.elapsed()), "ms");
    m("tasks_available", app.queue.list.total as f64, "rows");

    // Main screen: move through 100k tasks.
    let keys = key_script(2_000);
    let (render, latency) = drive(&mut app, &mut terminal, &handle, &tasks, &keys)?;
    report(&m, "main_100k_tasks", &render, &latency);
    m("tasks_rows_held", app.queue.list.rows.len() as f64, "rows");

    // Audit screen: page down through the 1M-entry log (keyset paging through the core).
    drive(
        &mut app,
        &mut terminal,
        &handle,
        &tasks,
        &[key(KeyCode::Char('2'))],
    )?;
    let keys = key_script(3_000);
    let (render, latency) = drive(&mut app, &mut terminal, &handle, &tasks, &keys)?;
    report(&m, "audit_1m_entries", &render, &latency);
    m("audit_rows_held", app.audit.entries.len() as f64, "rows");
    m(
        "audit_deepest_seq_reached",
        app.audit.entries.last().map_or(0.0, |e| e.seq as f64),
        "seq",
    );
    // Tail latencies on a shared machine mostly measure preemption: say how busy it was.
    if let Some(load) = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
    {
        m("host_load_average_1m", load, "runnable");
    }
    handle.shutdown();
    Ok(())
}

fn report(
    m: &impl Fn(&str, f64, &'static str),
    name: &str,
    render: &[Duration],
    latency: &[Duration],
) {
    for (what, samples) in [("render", render), ("key_to_frame", latency)] {
        for p in [50.0, 90.0, 99.0] {
            m(&format!("{what}_{name}_p{p}"), ms(pct(samples, p)), "ms");
        }
    }
}

/// Presses each key, answers what the console asked for, draws; returns the render times
/// and the key-to-frame times.
fn drive(
    app: &mut App,
    terminal: &mut Terminal<TestBackend>,
    handle: &CoreHandle,
    tasks: &[TaskRow],
    keys: &[KeyEvent],
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut render = Vec::with_capacity(keys.len());
    let mut latency = Vec::with_capacity(keys.len());
    for k in keys {
        let t = Instant::now();
        let commands = app.on_key(*k);
        answer(app, commands, handle, tasks);
        let r = Instant::now();
        terminal.draw(|f| view::render(app, f))?;
        render.push(r.elapsed());
        latency.push(t.elapsed());
    }
    Ok((render, latency))
}

/// Mostly j, a page down every 10 keys, one jump to the bottom and back to the top.
fn key_script(n: usize) -> Vec<KeyEvent> {
    (0..n)
        .map(|i| match i {
            _ if i == n / 2 => key(KeyCode::Char('G')),
            _ if i == n / 2 + 1 => key(KeyCode::Char('g')),
            _ if i % 10 == 0 => key(KeyCode::PageDown),
            _ => key(KeyCode::Char('j')),
        })
        .collect()
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Tasks come from the fixture (paged like the core pages them); everything else goes to
/// the real core.
fn answer(app: &mut App, commands: Vec<Command>, handle: &CoreHandle, tasks: &[TaskRow]) {
    let mut queue = commands;
    while let Some(c) = queue.pop() {
        let Command::Request { target, seq, op } = c else {
            continue;
        };
        let result = match &op {
            Op::Query {
                query: Query::Tasks { offset, limit, .. },
            } => {
                let end = (*offset + *limit).min(tasks.len());
                let items = tasks.get(*offset..end).unwrap_or_default().to_vec();
                Ok(Answer::Tasks(Page {
                    items,
                    total: tasks.len() as u64,
                }))
            }
            _ => handle.request_blocking(op).map_err(|e| e.to_string()),
        };
        queue.extend(app.on_reply(target, seq, result));
    }
}

fn fill_audit(ws: &Workspace) -> anyhow::Result<()> {
    let mut store = ws.store()?;
    store.write(|tx| {
        let mut stmt = tx.prepare(
            "INSERT INTO audit (seq, ts_ms, actor, action, subject, payload, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let payload = json!({"version": 1, "note": "bench"}).to_string();
        for seq in 1..=AUDIT {
            let actor = if seq % 3 == 0 {
                "operator".to_string()
            } else {
                format!("agent:run-{}", seq % 97)
            };
            stmt.execute(rusqlite::params![
                seq,
                T0 + seq * 10,
                actor,
                if seq % 2 == 0 {
                    "object.put"
                } else {
                    "task.update"
                },
                format!("draft/d{}", seq % 1000),
                payload,
                format!("{:064x}", seq - 1),
                format!("{seq:064x}"),
            ])?;
        }
        Ok(())
    })?;
    Ok(())
}

fn task(i: usize) -> TaskRow {
    let n = i64::try_from(i).unwrap_or(0);
    TaskRow {
        id: format!("0193{i:028x}"),
        role: ["writer", "researcher", "publisher", "analyst"][i % 4].into(),
        title: format!("Follow up with customer {i} about the renewal"),
        state: ["queued", "running", "waiting", "succeeded", "failed"][i % 5].into(),
        detail: String::new(),
        priority: n % 5,
        attempts: 1,
        max_attempts: 3,
        workflow: Some("renewals".into()),
        parent: None,
        not_before_ms: None,
        created_ms: T0 + n,
        updated_ms: T0 + n,
        cost_estimate_usd: 0.01,
        paused: false,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut s = samples.to_vec();
    s.sort_unstable();
    // p is a percentile (0..=100) and the index is clamped to the last sample.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[i.min(s.len() - 1)]
}

/// A scratch directory removed on drop (tempfile is a dev-dependency only).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
