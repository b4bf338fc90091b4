//! Snapshots of every pane and overlay on `TestBackend`, from fixed fixtures.

use crossterm::event::KeyCode;

use super::message::{Command, Screen, Target};
use super::test_fixtures::*;
use crate::protocol::Op;

// ---- snapshots --------------------------------------------------------------------------

#[test]
fn snapshot_main_screen() {
    let mut a = filled_app();
    insta::assert_snapshot!("main", draw(&mut a, 140, 36).backend());
}

#[test]
fn snapshot_main_screen_when_queries_are_not_available() {
    let mut a = app();
    let start = a.start();
    answer(&mut a, start, |op| {
        let name = match op {
            Op::Query { query } => format!("{query:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_string(),
            _ => "Op".into(),
        };
        Some(Err(format!("{name} is not available in this build yet")))
    });
    insta::assert_snapshot!("main_unavailable", draw(&mut a, 120, 30).backend());
}

#[test]
fn snapshot_queue_deep_in_100k_tasks_builds_only_the_window() {
    let mut a = filled_app();
    let c = press(&mut a, &[key('G')]);
    assert!(matches!(
        c.as_slice(),
        [Command::Request {
            target: Target::Tasks,
            ..
        }]
    ));
    answer(&mut a, c, fixture_answer);
    assert_eq!(a.queue.list.selected, 99_999);
    assert!(a.queue.list.rows.len() <= super::paged::WINDOW);
    insta::assert_snapshot!("queue_bottom", draw(&mut a, 120, 30).backend());
}

#[test]
fn snapshot_audit_screen() {
    let mut a = filled_app();
    let c = press(&mut a, &[key('2')]);
    answer(&mut a, c, fixture_answer);
    let c = press(&mut a, &[key('v')]);
    answer(&mut a, c, fixture_answer);
    insta::assert_snapshot!("audit", draw(&mut a, 120, 30).backend());
}

#[test]
fn snapshot_objects_history_and_diff() {
    let mut a = filled_app();
    let c = press(&mut a, &[key('3')]);
    answer(&mut a, c, fixture_answer);
    let c = press(&mut a, &[code(KeyCode::Enter)]);
    answer(&mut a, c, fixture_answer);
    let c = press(&mut a, &[key('k'), key('d')]);
    answer(&mut a, c, fixture_answer);
    insta::assert_snapshot!("objects", draw(&mut a, 120, 30).backend());
}

#[test]
fn snapshot_blackboard_metrics_health() {
    let mut a = filled_app();
    let c = press(&mut a, &[key('4')]);
    answer(&mut a, c, fixture_answer);
    insta::assert_snapshot!("blackboard", draw(&mut a, 100, 20).backend());
    let c = press(&mut a, &[key('5')]);
    answer(&mut a, c, fixture_answer);
    insta::assert_snapshot!("metrics", draw(&mut a, 100, 20).backend());
    let c = press(&mut a, &[key('6')]);
    answer(&mut a, c, fixture_answer);
    insta::assert_snapshot!("health", draw(&mut a, 100, 20).backend());
}

#[test]
fn snapshot_run_detail() {
    let mut a = filled_app();
    let c = press(&mut a, &[code(KeyCode::Tab), code(KeyCode::Enter)]);
    assert_eq!(a.screen, Screen::Run);
    answer(&mut a, c, fixture_answer);
    insta::assert_snapshot!("run_detail", draw(&mut a, 120, 32).backend());
}

#[test]
fn snapshot_live_run_output() {
    let mut a = filled_app();
    a.on_event(crate::protocol::Event::RunOutput {
        run: "run-0001".into(),
        delta: "Dear Ada,\nthanks for".into(),
    });
    a.on_event(crate::protocol::Event::RunOutput {
        run: "run-0001".into(),
        delta: " joining.".into(),
    });
    a.on_event(crate::protocol::Event::ModelState {
        state: "loading".into(),
    });
    insta::assert_snapshot!("live_output", draw(&mut a, 120, 30).backend());
}

#[test]
fn snapshot_overlays() {
    let mut a = filled_app();
    press(&mut a, &[key('?')]);
    insta::assert_snapshot!("help", draw(&mut a, 100, 40).backend());
    press(
        &mut a,
        &[
            code(KeyCode::Esc),
            key(':'),
            key('a'),
            key('p'),
            key('p'),
            key('r'),
        ],
    );
    insta::assert_snapshot!("palette", draw(&mut a, 100, 24).backend());
    press(
        &mut a,
        &[code(KeyCode::Esc), code(KeyCode::BackTab), key('a')],
    );
    insta::assert_snapshot!("confirm_approve", draw(&mut a, 100, 24).backend());
    press(&mut a, &[key('n'), key('r'), key('n'), key('o')]);
    insta::assert_snapshot!("reject_reason", draw(&mut a, 100, 24).backend());
    press(
        &mut a,
        &[
            code(KeyCode::Esc),
            key('e'),
            code(KeyCode::Down),
            code(KeyCode::End),
            key('!'),
        ],
    );
    insta::assert_snapshot!("editor", draw(&mut a, 100, 24).backend());
    press(&mut a, &[ctrl('s')]);
    insta::assert_snapshot!("editor_review", draw(&mut a, 100, 24).backend());
    press(&mut a, &[code(KeyCode::Esc), code(KeyCode::Esc)]);
    insta::assert_snapshot!("editor_discard_guard", draw(&mut a, 100, 24).backend());
}

#[test]
fn snapshot_too_small() {
    let mut a = filled_app();
    insta::assert_snapshot!("too_small", draw(&mut a, 40, 10).backend());
}

#[test]
fn snapshot_export_hint() {
    let mut a = filled_app();
    let c = press(&mut a, &[key('2')]);
    answer(&mut a, c, fixture_answer);
    press(&mut a, &[key('/')]);
    for ch in "actor:operator".chars() {
        press(&mut a, &[key(ch)]);
    }
    let c = press(&mut a, &[code(KeyCode::Enter)]);
    answer(&mut a, c, fixture_answer);
    press(&mut a, &[key('x')]);
    insta::assert_snapshot!("export_hint", draw(&mut a, 110, 24).backend());
}

#[test]
fn audit_timeline_reads_oldest_first_too() {
    let mut a = filled_app();
    let c = press(&mut a, &[key('2')]);
    answer(&mut a, c, fixture_answer);
    press(&mut a, &[key('j'), key('o')]);
    assert!(a.audit.oldest_first);
    assert_eq!(
        a.audit.selected_entry().map(|e| e.seq),
        Some(499),
        "the cursor stays on its entry"
    );
    // Down now walks towards newer entries; up towards older ones.
    press(&mut a, &[key('j')]);
    assert_eq!(a.audit.selected_entry().map(|e| e.seq), Some(500));
    press(&mut a, &[key('k'), key('k')]);
    assert_eq!(a.audit.selected_entry().map(|e| e.seq), Some(498));
    insta::assert_snapshot!("audit_oldest_first", draw(&mut a, 110, 24).backend());
}

#[test]
fn snapshot_demo_welcome() {
    let mut a = filled_app();
    a.overlay = Some(crate::tui::overlays::Overlay::Notice(
        crate::tui::overlays::notice::Notice {
            title: "Start here: one full round in five steps".into(),
            lines: vec![
                "1. Queue pane: the \"content\" workflow is already queued.".into(),
                "2. The writer drafts the top idea and the editor revises it.".into(),
                "3. Approvals pane: the publish step waits for you.".into(),
                "4. Measure: keel analytics import analytics.csv".into(),
                "5. Invoicing: invoices of $1,000 or more wait for your approval.".into(),
            ],
        },
    ));
    insta::assert_snapshot!("demo_welcome", draw(&mut a, 110, 24).backend());
}
