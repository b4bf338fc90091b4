//! Fixtures and helpers for the console tests: fixed rows (fixed times), a fake core that
//! answers every query, key helpers and a `TestBackend` renderer.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

use super::keymap::Keymap;
use super::message::{Command, Target};
use super::state::App;
use super::theme::Theme;
use super::view;
use crate::protocol::AuditEntry as Entry;
use crate::protocol::{
    Answer, ApprovalRow, FindingRow, Health, MemorySliceRow, Metrics, ObjectRef, ObjectRow,
    ObjectVersionRow, Op, Page, ProviderHealth, Query, RunDetail, RunRow, RunStep, ScheduleRow,
    SlotsHealth, TaskRow, ValueRow, Verification, WindowHealth,
};

/// 2025-11-24 15:00:00 UTC.
pub(super) const T0: i64 = 1_763_996_400_000;

pub(super) fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

pub(super) fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

pub(super) fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

pub(super) fn app() -> App {
    App::new("acme".into(), None, Keymap::default_map(), Theme::plain())
}

pub(super) fn task(i: i64, state: &str) -> TaskRow {
    TaskRow {
        id: format!("task-{i:04}"),
        role: ["writer", "researcher", "publisher"][usize::try_from(i % 3).unwrap()].into(),
        title: format!("Task number {i}"),
        state: state.into(),
        detail: String::new(),
        priority: i % 5,
        attempts: 1,
        max_attempts: 3,
        workflow: Some("newsletter".into()),
        parent: None,
        not_before_ms: None,
        created_ms: T0 + i * 60_000,
        updated_ms: T0 + i * 60_000,
        cost_estimate_usd: 0.02,
        paused: false,
    }
}

pub(super) fn run(i: i64, status: &str) -> RunRow {
    RunRow {
        id: format!("run-{i:04}"),
        task: format!("task-{i:04}"),
        role: "writer".into(),
        status: status.into(),
        step: 2,
        current: "drafting the welcome email".into(),
        tokens_in: 1200,
        tokens_out: 340,
        cost_usd: 0.0123,
        provider: "offline".into(),
        started_ms: T0,
        finished_ms: None,
        output_preview: "Hello and welcome".into(),
    }
}

pub(super) fn approval(i: i64, risk: &str) -> ApprovalRow {
    ApprovalRow {
        id: format!("appr-{i}"),
        task: Some(format!("task-{i:04}")),
        agent: "publisher".into(),
        action: "site.publish".into(),
        target: format!("draft/post-{i}"),
        summary: format!("Publish blog post {i}"),
        rationale: "Scheduled for Tuesday; editor approved the copy.".into(),
        cost_usd: 0.0,
        amount: None,
        risk: risk.into(),
        reversibility: "compensable".into(),
        undo_available: true,
        rule: "publish-needs-approval".into(),
        status: "pending".into(),
        created_ms: T0,
        expires_ms: None,
        object: Some(ObjectRef {
            kind: "draft".into(),
            id: format!("post-{i}"),
            version: 2,
        }),
        proposed_body: Some(json!({"title": "Hello", "body": "Hello world.\nSecond line."})),
        diff: "@@ -1 +1 @@\n-Hello\n+Hello world.".into(),
        memory: vec![],
    }
}

pub(super) fn memory_rows() -> Vec<MemorySliceRow> {
    vec![
        MemorySliceRow {
            item: "pref-tone".into(),
            version: 3,
            rank: 1,
            score: 0.91,
            kind: "preference".into(),
            preview: "Warm, brief, no emoji".into(),
        },
        MemorySliceRow {
            item: "cust-042".into(),
            version: 1,
            rank: 2,
            score: 0.77,
            kind: "customer".into(),
            preview: "Ada, bought the course".into(),
        },
    ]
}

pub(super) fn page<T>(items: Vec<T>, total: u64) -> Page<T> {
    Page { items, total }
}

/// Answers every pending request with `answer` (None: leave the request unanswered).
pub(super) fn answer(
    app: &mut App,
    commands: Vec<Command>,
    mut answer: impl FnMut(&Op) -> Option<Result<Answer, String>>,
) {
    let mut queue = commands;
    while let Some(c) = queue.pop() {
        if let Command::Request { target, seq, op } = c
            && let Some(result) = answer(&op)
        {
            queue.extend(app.on_reply(target, seq, result));
        }
    }
}

/// A console filled with fixture data, as the real core would answer.
pub(super) fn filled_app() -> App {
    let mut a = app();
    let start = a.start();
    answer(&mut a, start, fixture_answer);
    a
}

#[allow(clippy::too_many_lines, clippy::unnecessary_wraps)] // one fixture per query, in one place
pub(super) fn fixture_answer(op: &Op) -> Option<Result<Answer, String>> {
    let Op::Query { query } = op else {
        return Some(Ok(Answer::Done));
    };
    Some(Ok(match query {
        Query::Tasks { offset, limit, .. } => {
            let total = 100_000u64;
            let rows: Vec<TaskRow> = (*offset..(*offset + *limit).min(100_000))
                .map(|i| {
                    task(
                        i64::try_from(i).unwrap(),
                        ["queued", "running", "waiting", "failed"][i % 4],
                    )
                })
                .collect();
            Answer::Tasks(page(rows, total))
        }
        Query::Runs { .. } => Answer::Runs(page(
            vec![run(1, "running"), run(2, "succeeded"), run(3, "failed")],
            3,
        )),
        Query::MemoryUsed { .. } => Answer::MemoryUsed(memory_rows()),
        Query::Task { .. } => Answer::Task(Box::new(task(1, "queued"))),
        Query::MemorySearch { .. } => Answer::MemorySearch(Box::default()),
        Query::Approvals { .. } => Answer::Approvals(page(
            vec![
                approval(1, "high"),
                approval(2, "low"),
                approval(3, "medium"),
            ],
            3,
        )),
        Query::Metrics => Answer::Metrics(Metrics {
            spend_today_usd: 1.25,
            budget_today_usd: 5.0,
            rows: vec![ValueRow {
                scope: "workflow".into(),
                name: "newsletter".into(),
                tasks_done: 12,
                minutes_saved: 95.0,
                model_spend_usd: 0.84,
                revenue_usd: 120.0,
                approval_rate: 0.9,
                failure_rate: 0.05,
                escalation_rate: 0.0,
                tasks_finished: 13,
                approvals_decided: 10,
            }],
        }),
        Query::Health => Answer::Health(Box::new(Health {
            workspace: "/srv/acme".into(),
            schema_version: 5,
            embedding_model: "ready: all-MiniLM-L6-v2 int8".into(),
            providers: vec![
                ProviderHealth {
                    name: "offline".into(),
                    kind: "offline".into(),
                    status: "offline".into(),
                    ..ProviderHealth::default()
                },
                ProviderHealth {
                    name: "local".into(),
                    kind: "openai".into(),
                    status: "reachable: http://127.0.0.1:8080/v1".into(),
                    window: Some(WindowHealth {
                        tokens: 2048,
                        source: "llama.cpp /props n_ctx".into(),
                    }),
                    slots: Some(SlotsHealth {
                        max_concurrent: Some(1),
                        source: "llama.cpp /props total_slots".into(),
                    }),
                    server: Some("llama.cpp".into()),
                    output_mode: Some("json_schema".into()),
                    last_latency_ms: Some(4337),
                    last_first_token_ms: Some(822),
                },
            ],
            schedules: vec![ScheduleRow {
                name: "weekly-digest".into(),
                cron: "0 9 * * MON".into(),
                next_ms: Some(T0 + 86_400_000),
                last_ms: None,
            }],
            queue_paused: false,
            audit_entries: 1_000_000,
            mcp_servers: Vec::new(),
        })),
        Query::Objects { .. } => Answer::Objects(page(
            vec![
                ObjectRow {
                    kind: "draft".into(),
                    id: "post-1".into(),
                    version: 3,
                    title: "Hello world".into(),
                    archived: false,
                    updated_ms: T0,
                },
                ObjectRow {
                    kind: "customer".into(),
                    id: "cust-042".into(),
                    version: 1,
                    title: "Ada Lovelace".into(),
                    archived: false,
                    updated_ms: T0,
                },
            ],
            2,
        )),
        Query::ObjectHistory { .. } => Answer::ObjectHistory(
            (1..=3)
                .map(|v| ObjectVersionRow {
                    version: v,
                    parent: (v > 1).then_some(v - 1),
                    author: if v == 3 {
                        "operator".into()
                    } else {
                        "agent:run-0001".into()
                    },
                    hash: format!("hash{v}"),
                    note: format!("version {v}"),
                    created_ms: T0 + v * 1000,
                    body: json!({"title": "Hello", "body": format!("text v{v}")}),
                })
                .collect::<Vec<_>>(),
        ),
        Query::ObjectDiff { .. } => {
            Answer::ObjectDiff("--- v2\n+++ v3\n@@ -1 +1 @@\n-text v2\n+text v3\n".into())
        }
        Query::Blackboard { .. } => Answer::Blackboard(page(
            vec![FindingRow {
                id: "f1".into(),
                topic: "market".into(),
                author: "researcher".into(),
                text: "Competitor raised prices 10%".into(),
                data: json!({"source": "pricing page"}),
                created_ms: T0,
            }],
            1,
        )),
        Query::RunDetail { id } => Answer::RunDetail(Box::new(RunDetail {
            run: RunRow {
                id: id.clone(),
                ..run(1, "running")
            },
            input: json!({"topic": "welcome email"}),
            template: "writer".into(),
            template_hash: "abcdef0123456789".into(),
            steps: vec![
                RunStep {
                    index: 0,
                    kind: "model".into(),
                    name: "draft".into(),
                    input: json!({"prompt": "write"}),
                    output: json!("Hello"),
                    rationale: "Start from the tone preference".into(),
                    tokens_in: 900,
                    tokens_out: 200,
                    cost_usd: 0.009,
                    latency_ms: 850,
                },
                RunStep {
                    index: 1,
                    kind: "tool".into(),
                    name: "objects.put".into(),
                    input: json!({"kind": "draft"}),
                    output: json!({"version": 2}),
                    rationale: "Save the draft".into(),
                    tokens_in: 0,
                    tokens_out: 0,
                    cost_usd: 0.0,
                    latency_ms: 4,
                },
            ],
            memory: memory_rows(),
            error: None,
        })),
        Query::AuditPage {
            filter,
            limit,
            oldest_first,
        } => Answer::AuditPage(fake_audit_page(filter, *limit, *oldest_first, 500)),
        Query::AuditVerify => Answer::AuditVerify(Verification {
            entries: 500,
            first_broken: None,
        }),
        // The console does not ask these yet; fail loudly if it starts to.
        Query::ApprovalDetail { .. } | Query::AllowRules { .. } | Query::Effects { .. } => {
            return Some(Err("no fixture for this query".into()));
        }
    }))
}

/// A page of a fake log of `total` entries, as the core answers `AuditPage`.
pub(super) fn fake_audit_page(
    filter: &crate::protocol::AuditFilter,
    limit: usize,
    oldest_first: bool,
    total: i64,
) -> Vec<Entry> {
    if oldest_first {
        let from = filter.after_seq.unwrap_or(0) + 1;
        let to = (from + i64::try_from(limit).unwrap()).min(total + 1);
        let mut page = fake_audit(to, usize::try_from(to - from).unwrap_or(0));
        page.reverse();
        page
    } else {
        fake_audit(filter.before_seq.unwrap_or(total + 1), limit)
    }
}

pub(super) fn fake_audit(before: i64, limit: usize) -> Vec<Entry> {
    let limit = i64::try_from(limit).unwrap();
    ((before - limit).max(1)..before)
        .rev()
        .map(|seq| Entry {
            seq,
            ts_ms: T0 + seq * 1000,
            actor: if seq % 2 == 0 {
                "operator".into()
            } else {
                "agent:run-0001".into()
            },
            action: "object.put".into(),
            subject: format!("draft/post-{}", seq % 7),
            payload: json!({"version": seq}),
            prev_hash: format!("{:064}", seq - 1),
            hash: format!("{seq:064}"),
        })
        .collect()
}

pub(super) fn draw(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    app.resize(w, h);
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::render(app, f)).unwrap();
    t
}

pub(super) fn ops(commands: &[Command]) -> Vec<Op> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Request {
                target: Target::Action { .. },
                op,
                ..
            } => Some(op.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn press(app: &mut App, keys: &[KeyEvent]) -> Vec<Command> {
    keys.iter().flat_map(|k| app.on_key(*k)).collect()
}
