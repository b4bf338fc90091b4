//! Key press → message → op assertions, keymap and themes, and the audit timeline against
//! a real core on a temporary workspace.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;

use super::keymap::Keymap;
use super::message::{AuditFetch, Command, MainPane, Message, Screen, Target};
use super::overlays::Overlay;
use super::state::App;
use super::test_fixtures::*;
use super::theme::Theme;
use crate::core::audit::{self, Actor};
use crate::protocol::{Answer, Op, Query};

// ---- keys → ops -------------------------------------------------------------------------

#[test]
fn approve_asks_then_sends_one_approve() {
    let mut a = filled_app();
    a.focus = MainPane::Approvals;
    assert!(
        ops(&press(&mut a, &[key('a')])).is_empty(),
        "nothing is sent before confirming"
    );
    assert!(matches!(a.overlay, Some(Overlay::Confirm(_))));
    let sent = ops(&press(&mut a, &[key('y')]));
    assert_eq!(
        sent,
        vec![Op::Approve {
            id: "appr-1".into(),
            edited_body: None,
            always_allow: false
        }]
    );
}

#[test]
fn batch_approve_with_always_allow() {
    let mut a = filled_app();
    a.focus = MainPane::Approvals;
    let sent = ops(&press(&mut a, &[key(' '), key(' '), key('A'), key('y')]));
    assert_eq!(
        sent,
        vec![
            Op::Approve {
                id: "appr-1".into(),
                edited_body: None,
                always_allow: true
            },
            Op::Approve {
                id: "appr-2".into(),
                edited_body: None,
                always_allow: true
            },
        ]
    );
}

#[test]
fn reject_requires_a_reason() {
    let mut a = filled_app();
    a.focus = MainPane::Approvals;
    assert!(ops(&press(&mut a, &[key('j'), key('r'), code(KeyCode::Enter)])).is_empty());
    let mut keys: Vec<KeyEvent> = "too pricey".chars().map(key).collect();
    keys.push(code(KeyCode::Enter));
    let sent = ops(&press(&mut a, &keys));
    assert_eq!(
        sent,
        vec![Op::Reject {
            id: "appr-2".into(),
            reason: "too pricey".into()
        }]
    );
}

#[test]
fn edit_then_approve_sends_the_edited_body_after_the_diff() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = filled_app();
    a.recovery_dir = Some(dir.path().to_path_buf());
    a.focus = MainPane::Approvals;
    press(&mut a, &[key('e'), code(KeyCode::End), key('!')]);
    let recovery = dir.path().join("approval-appr-1.txt");
    assert_eq!(
        std::fs::read_to_string(&recovery).unwrap(),
        "Hello world.!\nSecond line."
    );
    assert!(
        ops(&press(&mut a, &[ctrl('s')])).is_empty(),
        "save shows the diff first"
    );
    let commands = press(&mut a, &[code(KeyCode::Enter)]);
    let sent = ops(&commands);
    assert_eq!(
        sent,
        vec![Op::Approve {
            id: "appr-1".into(),
            edited_body: Some(json!({"title": "Hello", "body": "Hello world.!\nSecond line."})),
            always_allow: false,
        }]
    );
    // The recovery file goes once the core accepted the decision.
    let Command::Request { target, seq, .. } = commands
        .into_iter()
        .find(|c| {
            matches!(
                c,
                Command::Request {
                    target: Target::Action { .. },
                    ..
                }
            )
        })
        .unwrap()
    else {
        unreachable!()
    };
    a.on_reply(target, seq, Ok(Answer::Done));
    assert!(!recovery.exists());
}

#[test]
fn unsaved_edits_survive_a_crash_and_are_restored() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = filled_app();
    a.recovery_dir = Some(dir.path().to_path_buf());
    a.focus = MainPane::Approvals;
    press(&mut a, &[key('e'), key('X')]);
    drop(a); // the process dies without saving
    let mut b = filled_app();
    b.recovery_dir = Some(dir.path().to_path_buf());
    b.focus = MainPane::Approvals;
    press(&mut b, &[key('e')]);
    let Some(Overlay::Editor(e)) = &b.overlay else {
        panic!("editor not open")
    };
    assert_eq!(e.text(), "XHello world.\nSecond line.");
    assert!(e.modified());
    // Undo and redo work on the restored text too.
    press(&mut b, &[key('Y'), ctrl('z')]);
    let Some(Overlay::Editor(e)) = &b.overlay else {
        panic!()
    };
    assert_eq!(e.text(), "XHello world.\nSecond line.");
    // Esc with edits asks; "y" discards and removes the recovery file.
    press(&mut b, &[code(KeyCode::Esc)]);
    assert!(b.overlay.is_some());
    press(&mut b, &[key('y')]);
    assert!(b.overlay.is_none());
    assert!(!dir.path().join("approval-appr-1.txt").exists());
}

#[test]
fn queue_runs_and_queue_toggle_keys_send_their_ops() {
    let mut a = filled_app();
    assert_eq!(
        ops(&press(&mut a, &[key('R'), key('y')])),
        vec![Op::RetryTask {
            id: "task-0000".into(),
            new_input: None
        }]
    );
    assert_eq!(
        ops(&press(&mut a, &[key('c'), key('y')])),
        vec![Op::CancelTask {
            id: "task-0000".into()
        }]
    );
    assert_eq!(ops(&press(&mut a, &[key('P')])), vec![Op::PauseQueue]);
    press(&mut a, &[code(KeyCode::Tab)]);
    assert_eq!(a.focus, MainPane::Runs);
    assert_eq!(
        ops(&press(&mut a, &[key('j'), key('p'), key('y')])),
        vec![Op::ReplayRun {
            id: "run-0002".into()
        }]
    );
}

#[test]
fn selecting_a_run_loads_its_memory() {
    let mut a = filled_app();
    assert_eq!(a.memory.run.as_deref(), Some("run-0001"));
    let c = press(&mut a, &[code(KeyCode::Tab), key('j')]);
    assert!(c.iter().any(|c| matches!(c, Command::Request { op: Op::Query { query: Query::MemoryUsed { run } }, .. } if run == "run-0002")));
}

#[test]
fn palette_runs_an_action_by_fuzzy_name() {
    let mut a = filled_app();
    let mut keys = vec![key(':')];
    keys.extend("audit timeline".chars().map(key));
    keys.push(code(KeyCode::Enter));
    let c = press(&mut a, &keys);
    assert_eq!(a.screen, Screen::Audit);
    assert!(matches!(
        c.as_slice(),
        [Command::Request {
            target: Target::Audit(AuditFetch::Reset),
            ..
        }]
    ));
}

#[test]
fn audit_filter_and_paging_build_keyset_queries() {
    let mut a = filled_app();
    let c = press(&mut a, &[key('2')]);
    answer(&mut a, c, fixture_answer);
    let mut keys = vec![key('/')];
    keys.extend("agent:run-1 since:2025-11-24".chars().map(key));
    keys.push(code(KeyCode::Enter));
    let c = press(&mut a, &keys);
    let [
        Command::Request {
            op: Op::Query {
                query: Query::AuditPage { filter, .. },
            },
            ..
        },
    ] = c.as_slice()
    else {
        panic!("{c:?}")
    };
    assert_eq!(filter.actor.as_deref(), Some("agent:run-1"));
    assert_eq!(filter.since_ms, Some(1_763_942_400_000));
    answer(&mut a, c, fixture_answer);
    // Moving past the loaded page asks for the next one by sequence number.
    let c = (0..300)
        .map(|_| press(&mut a, &[key('j')]))
        .find(|c| !c.is_empty())
        .unwrap();
    let [
        Command::Request {
            op: Op::Query {
                query: Query::AuditPage { filter, .. },
            },
            ..
        },
    ] = c.as_slice()
    else {
        panic!("{c:?}")
    };
    assert_eq!(filter.before_seq, Some(301));
    // The end of the timeline is one query, oldest first, with the same filter.
    let mut b = filled_app();
    let c = press(&mut b, &[key('2')]);
    answer(&mut b, c, fixture_answer);
    let c = press(&mut b, &[key('G')]);
    let [
        Command::Request {
            op:
                Op::Query {
                    query:
                        Query::AuditPage {
                            filter,
                            oldest_first,
                            ..
                        },
                },
            ..
        },
    ] = c.as_slice()
    else {
        panic!("{c:?}")
    };
    assert!(*oldest_first);
    assert_eq!((filter.before_seq, filter.after_seq), (None, None));
}

#[test]
fn jump_from_an_audit_entry_opens_the_object_history() {
    let mut a = filled_app();
    let c = press(&mut a, &[key('2')]);
    answer(&mut a, c, fixture_answer);
    let c = press(&mut a, &[code(KeyCode::Enter)]);
    assert_eq!(a.screen, Screen::Objects);
    assert_eq!(a.objects.open, Some(("draft".into(), "post-3".into())));
    assert!(c.iter().any(|c| matches!(
        c,
        Command::Request {
            target: Target::History,
            ..
        }
    )));
}

#[test]
fn stale_replies_are_dropped() {
    let mut a = app();
    let first = a.start();
    a.load(Target::Tasks);
    let second: Vec<Command> = a.on_reply(Target::Metrics, 0, Err("x".into()));
    assert!(matches!(
        second.as_slice(),
        [Command::Request {
            target: Target::Tasks,
            ..
        }]
    ));
    assert!(
        a.metrics.error.is_none(),
        "an answer to a superseded request is ignored"
    );
    let Some(&Command::Request { seq, .. }) = first.iter().find(|c| {
        matches!(
            c,
            Command::Request {
                target: Target::Tasks,
                ..
            }
        )
    }) else {
        panic!()
    };
    a.on_reply(
        Target::Tasks,
        seq,
        Ok(Answer::Tasks(page(vec![task(1, "queued")], 1))),
    );
    assert!(
        a.queue.list.rows.is_empty(),
        "an answer to a superseded request is ignored"
    );
}

// ---- keymap and themes ------------------------------------------------------------------

#[test]
fn keymap_override_replaces_an_action_and_shows_in_help() {
    let km = Keymap::from_toml(
        super::keymap::DEFAULT_TOML,
        Some("[approvals]\napprove = [\"ctrl-a\"]\n"),
        "ws/keymap.toml",
    )
    .unwrap();
    assert_eq!(km.label(super::keymap::Action::Approve), "ctrl-a");
    let err = Keymap::from_toml(
        super::keymap::DEFAULT_TOML,
        Some("[approvals]\napprove = [\"hyper-a\"]\n"),
        "ws/keymap.toml",
    )
    .unwrap_err();
    assert!(err.to_string().contains("ws/keymap.toml"), "{err}");
    let err = Keymap::from_toml(
        super::keymap::DEFAULT_TOML,
        Some("[approvals\n"),
        "ws/keymap.toml",
    )
    .unwrap_err();
    assert!(err.to_string().contains("ws/keymap.toml:1:"), "{err}");
}

#[test]
fn every_action_has_a_default_key() {
    let km = Keymap::default_map();
    for a in super::keymap::Action::ALL {
        assert!(!km.keys(*a).is_empty(), "{} has no key", a.name());
    }
}

#[test]
fn themes_parse_and_fall_back_by_role() {
    use super::theme::Role;
    for (name, _) in super::theme::BUILT_IN {
        assert!(Theme::built_in(name).is_some(), "{name}");
    }
    let t = Theme::from_toml(
        "[roles]\nsuccess = { fg = \"green\" }\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(t.style(Role::DiffAdd), t.style(Role::Success));
    assert_eq!(t.style(Role::RiskLow), t.style(Role::Success));
    let light = Theme::from_toml(
        "extends = \"light\"\n[roles]\nerror = { fg = \"#ff0000\" }\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(
        light.style(Role::DiffDel).fg,
        Some(ratatui::style::Color::Rgb(255, 0, 0))
    );
    let err = Theme::from_toml(
        "[roles]\nsucess = { fg = \"green\" }\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("sucess"), "{err}");
    let err = Theme::from_toml(
        "[roles]\nsuccess = { fg = \"greenish\" }\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("greenish"), "{err}");
}

// ---- against a real core ----------------------------------------------------------------

#[test]
fn audit_timeline_pages_a_real_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let ws = crate::core::workspace::Workspace::init(&dir.path().join("ws")).unwrap();
    let mut store = ws.store().unwrap();
    // Whatever the workspace already holds comes first.
    let base = audit::count(store.conn()).unwrap();
    store
        .write(|tx| {
            for i in 0..450 {
                audit::append(
                    tx,
                    T0 + i,
                    &Actor::Operator,
                    "object.put",
                    &format!("draft/d{i}"),
                    &json!({"i": i}),
                )?;
            }
            Ok(())
        })
        .unwrap();
    let handle = crate::core::handle::CoreHandle::start(ws.clone()).unwrap();
    let mut a = super::new_app(&ws).unwrap();
    a.theme = Theme::plain();
    let run = |a: &mut App, commands: Vec<Command>| {
        answer(a, commands, |op| {
            Some(
                handle
                    .request_blocking(op.clone())
                    .map_err(|e| e.to_string()),
            )
        });
    };
    let c = a.start();
    run(&mut a, c);
    // An operator action the core refuses: a message in the status bar, nothing lost.
    let c = a.dispatch(Message::Send {
        label: "reject".into(),
        ops: vec![Op::Reject {
            id: "no-such-approval".into(),
            reason: "test".into(),
        }],
        cleanup: None,
    });
    run(&mut a, c);
    let flash = a.flash.clone().expect("a message");
    assert!(flash.error, "{flash:?}");
    assert!(flash.text.starts_with("reject:"), "{}", flash.text);
    let c = press(&mut a, &[key('2')]);
    run(&mut a, c);
    assert_eq!(a.audit.entries.first().map(|e| e.seq), Some(base + 450));
    for _ in 0..=(base + 450) / 200 {
        let c = press(&mut a, &[key('G')]);
        run(&mut a, c);
    }
    assert_eq!(a.audit.entries.last().map(|e| e.seq), Some(1));
    assert!(a.audit.exhausted);
    let c = press(&mut a, &[key('v')]);
    run(&mut a, c);
    assert!(
        matches!(&a.audit.verify, super::panes::audit::VerifyState::Done(v) if v.entries == base + 450 && v.first_broken.is_none())
    );
    handle.shutdown();
}

#[test]
fn output_of_an_unlisted_run_fetches_the_run_list_once() {
    let mut a = filled_app();
    let c = a.on_event(crate::protocol::Event::RunOutput {
        run: "run-9999".into(),
        delta: "a".into(),
    });
    assert!(matches!(
        c.as_slice(),
        [Command::Request {
            target: Target::Runs,
            ..
        }]
    ));
    let c = a.on_event(crate::protocol::Event::RunOutput {
        run: "run-9999".into(),
        delta: "b".into(),
    });
    assert!(c.is_empty(), "a load in flight covers later output");
    assert_eq!(a.runs.live.get("run-9999").map(String::as_str), Some("ab"));
}

#[test]
fn changes_reload_only_what_they_touch_and_coalesce() {
    let mut a = filled_app();
    let c = a.on_event(crate::protocol::Event::Changed {
        subject: "approval/appr-1".into(),
        action: "approved".into(),
    });
    let targets: Vec<&str> = c
        .iter()
        .filter_map(|c| match c {
            Command::Request { target, .. } => Some(target.key()),
            Command::Quit => None,
        })
        .collect();
    assert_eq!(targets, vec!["approvals", "tasks"]);
    // While those loads are in flight, more changes queue one reload each instead of a storm.
    for _ in 0..50 {
        assert!(
            a.on_event(crate::protocol::Event::Changed {
                subject: "task/t".into(),
                action: "updated".into()
            })
            .is_empty()
        );
    }
}

#[test]
fn another_process_change_reloads_what_is_shown_and_the_status_bar() {
    let mut a = filled_app();
    let keys = |c: &[Command]| -> Vec<&'static str> {
        let mut k: Vec<&'static str> = c
            .iter()
            .filter_map(|c| match c {
                Command::Request { target, .. } => Some(target.key()),
                Command::Quit => None,
            })
            .collect();
        k.sort_unstable();
        k
    };
    // An ordinary audit notice from this process reloads nothing by itself.
    let c = a.on_event(crate::protocol::Event::Changed {
        subject: "audit".into(),
        action: "approve".into(),
    });
    assert!(keys(&c).is_empty());
    // The watcher's notice: the main screen's lists plus spend and queue state.
    let c = a.on_event(crate::protocol::Event::Changed {
        subject: "audit".into(),
        action: crate::core::watch::MOVED.into(),
    });
    let k = keys(&c);
    for want in ["tasks", "runs", "approvals", "metrics", "health"] {
        assert!(k.contains(&want), "{k:?}");
    }
}

#[test]
fn the_plain_theme_has_no_colors() {
    use super::theme::Role;
    let t = Theme::plain();
    for role in [
        Role::Text,
        Role::Error,
        Role::Selection,
        Role::DiffAdd,
        Role::StatusBar,
    ] {
        assert_eq!(t.style(role).fg, None);
        assert_eq!(t.style(role).bg, None);
    }
}

#[test]
fn audit_window_pages_down_then_back_up_without_gaps() {
    const TOTAL: i64 = 2_000;
    let mut a = filled_app();
    let audit_answer = |op: &Op| audit_log_answer(op, TOTAL);
    let c = press(&mut a, &[key('2')]);
    answer(&mut a, c, audit_answer);
    // Five pages down: the window keeps three pages and moves.
    for _ in 0..1_000 {
        let c = press(&mut a, &[key('j')]);
        answer(&mut a, c, audit_answer);
    }
    assert_eq!(a.audit.selected_entry().map(|e| e.seq), Some(TOTAL - 1_000));
    assert!(a.audit.first_page > 0, "old pages were dropped");
    assert!(a.audit.entries.len() <= 600);
    // All the way back up: every entry on the way is there, in order.
    let mut seen = Vec::new();
    for _ in 0..1_000 {
        let c = press(&mut a, &[key('k')]);
        answer(&mut a, c, audit_answer);
        seen.push(a.audit.selected_entry().unwrap().seq);
    }
    assert_eq!(seen, ((TOTAL - 999)..=TOTAL).collect::<Vec<_>>());
    assert_eq!(a.audit.first_page, 0);
    for w in a.audit.entries.windows(2) {
        assert_eq!(w[0].seq, w[1].seq + 1, "the window is contiguous");
    }
}

#[test]
fn every_screen_and_overlay_renders_at_any_size() {
    let sizes = [
        (1, 1),
        (10, 3),
        (59, 15),
        (60, 16),
        (61, 17),
        (80, 24),
        (250, 70),
    ];
    let mut a = filled_app();
    let c = press(&mut a, &[key('2')]);
    answer(&mut a, c, fixture_answer);
    let c = press(&mut a, &[key('3'), code(KeyCode::Enter)]);
    answer(&mut a, c, fixture_answer);
    let c = press(
        &mut a,
        &[
            key('4'),
            key('5'),
            key('6'),
            key('1'),
            code(KeyCode::Tab),
            key('7'),
        ],
    );
    answer(&mut a, c, fixture_answer);
    for screen in ['1', '2', '3', '4', '5', '6', '7'] {
        press(&mut a, &[key(screen)]);
        for (w, h) in sizes {
            draw(&mut a, w, h);
        }
    }
    press(
        &mut a,
        &[key('1'), code(KeyCode::BackTab), code(KeyCode::BackTab)],
    );
    assert_eq!(a.focus, MainPane::Approvals);
    for open in [
        vec![key('?')],
        vec![key(':')],
        vec![key('a')],
        vec![key('r')],
        vec![key('e')],
        vec![key('e'), ctrl('s')],
    ] {
        a.overlay = None;
        a.resize(100, 30);
        press(&mut a, &open);
        assert!(a.overlay.is_some());
        for (w, h) in sizes {
            draw(&mut a, w, h);
        }
    }
}

#[test]
fn mouse_wheel_moves_the_selection() {
    use crossterm::event::{MouseEvent, MouseEventKind};
    let mut a = filled_app();
    let wheel = |kind| MouseEvent {
        kind,
        column: 5,
        row: 5,
        modifiers: KeyModifiers::NONE,
    };
    a.on_mouse(wheel(MouseEventKind::ScrollDown));
    a.on_mouse(wheel(MouseEventKind::ScrollDown));
    a.on_mouse(wheel(MouseEventKind::ScrollUp));
    assert_eq!(a.queue.list.selected, 1);
}

#[test]
fn new_audit_entries_keep_the_cursor_on_its_entry() {
    let mut a = filled_app();
    let c = press(&mut a, &[key('2')]);
    answer(&mut a, c, fixture_answer);
    press(&mut a, &[key('j'), key('j')]);
    assert_eq!(a.audit.selected_entry().map(|e| e.seq), Some(498));
    // Something changed: the timeline reloads from the top, now with two newer entries.
    let c = a.on_event(crate::protocol::Event::Changed {
        subject: "task/t".into(),
        action: "updated".into(),
    });
    answer(&mut a, c, |op| match op {
        Op::Query {
            query: Query::AuditPage { limit, .. },
        } => Some(Ok(Answer::AuditPage(fake_audit(503, *limit)))),
        other => fixture_answer(other),
    });
    assert_eq!(a.audit.entries.first().map(|e| e.seq), Some(502));
    assert_eq!(a.audit.selected_entry().map(|e| e.seq), Some(498));
}

#[test]
fn keys_resolve_as_terminals_send_them() {
    use super::keymap::{Action, Context};
    let km = Keymap::default_map();
    let all = [Context::Approvals, Context::List, Context::Global];
    let ev = |code, m| KeyEvent::new(code, m);
    assert_eq!(
        km.resolve(&all, &ev(KeyCode::Char('G'), KeyModifiers::SHIFT)),
        Some(Action::Bottom)
    );
    assert_eq!(
        km.resolve(&all, &ev(KeyCode::Char('?'), KeyModifiers::SHIFT)),
        Some(Action::Help)
    );
    assert_eq!(
        km.resolve(&all, &ev(KeyCode::BackTab, KeyModifiers::SHIFT)),
        Some(Action::PrevPane)
    );
    assert_eq!(
        km.resolve(&all, &ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Action::Quit)
    );
    assert_eq!(
        km.resolve(&all, &ev(KeyCode::Char('A'), KeyModifiers::SHIFT)),
        Some(Action::ApproveAlways)
    );
    assert_eq!(
        km.resolve(&all, &ev(KeyCode::Char(' '), KeyModifiers::NONE)),
        Some(Action::Mark)
    );
    // The most specific context wins: enter opens in a list, jumps in the audit timeline.
    assert_eq!(
        km.resolve(
            &[Context::Audit, Context::List],
            &ev(KeyCode::Enter, KeyModifiers::NONE)
        ),
        Some(Action::Jump)
    );
    assert_eq!(
        km.resolve(&[Context::List], &ev(KeyCode::Enter, KeyModifiers::NONE)),
        Some(Action::Open)
    );
    assert_eq!(
        km.resolve(&all, &ev(KeyCode::Char('a'), KeyModifiers::ALT)),
        None
    );
}

#[test]
fn filter_tokens_keep_unknown_pairs_as_text() {
    use super::panes::filter_tokens;
    let (pairs, text) = filter_tokens("state:failed see https://x.io now", Some(&["state"]));
    assert_eq!(pairs, vec![("state".to_string(), "failed".to_string())]);
    assert_eq!(text.as_deref(), Some("see https://x.io now"));
    let (pairs, text) = filter_tokens("acter:operator", None);
    assert_eq!(pairs.len(), 1);
    assert_eq!(text, None);
}

#[test]
fn editor_searches_and_toggles_wrapping() {
    let mut a = filled_app();
    a.focus = MainPane::Approvals;
    let mut keys = vec![key('e'), ctrl('f')];
    keys.extend("Sec".chars().map(key));
    keys.push(code(KeyCode::Enter));
    press(&mut a, &keys);
    let Some(Overlay::Editor(e)) = &a.overlay else {
        panic!("editor")
    };
    assert_eq!(
        e.textarea.cursor().0,
        1,
        "the cursor jumped to the match on line 2"
    );
    assert!(e.wrap);
    press(&mut a, &[ctrl('t')]);
    let Some(Overlay::Editor(e)) = &a.overlay else {
        panic!("editor")
    };
    assert!(!e.wrap);
    assert!(!e.modified(), "searching and wrapping do not edit");
    press(&mut a, &[code(KeyCode::Esc)]);
    assert!(a.overlay.is_none(), "no edits: esc closes without asking");
}

#[test]
fn an_escalated_triage_item_is_routed_by_a_typed_label() {
    let mut a = filled_app();
    // Only an escalated triage item asks; any other task says why not.
    press(&mut a, &[key('L')]);
    assert!(a.overlay.is_none());
    let row = &mut a.queue.list.rows[0];
    row.role = "triage".into();
    row.state = "escalated".into();
    press(&mut a, &[key('L')]);
    assert!(matches!(&a.overlay, Some(Overlay::Input(_))));
    // An empty label is refused in place; a typed one becomes the op.
    assert!(ops(&press(&mut a, &[code(KeyCode::Enter)])).is_empty());
    assert!(a.overlay.is_some());
    assert_eq!(
        ops(&press(
            &mut a,
            &[
                key('w'),
                key('r'),
                key('i'),
                key('t'),
                key('e'),
                key('r'),
                code(KeyCode::Enter)
            ]
        )),
        vec![Op::DecideTriage {
            id: "task-0000".into(),
            label: "writer".into()
        }]
    );
}

#[test]
fn bottom_jumps_to_the_oldest_entry_and_pages_back_up_to_the_newest() {
    const TOTAL: i64 = 2_000;
    let mut a = filled_app();
    let audit_answer = |op: &Op| audit_log_answer(op, TOTAL);
    let c = press(&mut a, &[key('2')]);
    answer(&mut a, c, audit_answer);
    assert_eq!(a.audit.selected_entry().map(|e| e.seq), Some(TOTAL));
    // One key, one query: the oldest entry, wherever it is.
    let c = press(&mut a, &[key('G')]);
    assert_eq!(c.len(), 1);
    answer(&mut a, c, audit_answer);
    assert_eq!(a.audit.selected_entry().map(|e| e.seq), Some(1));
    assert!(a.audit.top_unknown);
    // Up from there walks every entry to the newest, without gaps.
    let mut seen = Vec::new();
    for _ in 0..(TOTAL - 1) {
        let c = press(&mut a, &[key('k')]);
        answer(&mut a, c, audit_answer);
        seen.push(a.audit.selected_entry().unwrap().seq);
    }
    assert_eq!(seen, (2..=TOTAL).collect::<Vec<_>>());
    // One more step up finds nothing newer: the window knows it is at the top again.
    let c = press(&mut a, &[key('k')]);
    answer(&mut a, c, audit_answer);
    assert_eq!(a.audit.selected_entry().map(|e| e.seq), Some(TOTAL));
    assert!(!a.audit.top_unknown, "the newest entry was reached");
    for w in a.audit.entries.windows(2) {
        assert_eq!(w[0].seq, w[1].seq + 1, "the window is contiguous");
    }
    // And down again pages by cursors as before.
    for _ in 0..1_000 {
        let c = press(&mut a, &[key('j')]);
        answer(&mut a, c, audit_answer);
    }
    assert_eq!(a.audit.selected_entry().map(|e| e.seq), Some(TOTAL - 1_000));
}

/// The fixtures, with the audit pages of a fake log of `total` entries.
fn audit_log_answer(op: &Op, total: i64) -> Option<Result<Answer, String>> {
    match op {
        Op::Query {
            query:
                Query::AuditPage {
                    filter,
                    limit,
                    oldest_first,
                },
        } => Some(Ok(Answer::AuditPage(fake_audit_page(
            filter,
            *limit,
            *oldest_first,
            total,
        )))),
        other => fixture_answer(other),
    }
}
