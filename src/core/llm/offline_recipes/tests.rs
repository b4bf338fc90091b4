//! Every recipe answers whatever its input looks like.

use super::*;

#[test]
fn researcher_ranks_by_goal_overlap() {
    let memory = vec![
        Slice {
            item: "idea/a".into(),
            kind: "idea".into(),
            text: "Guide to pricing consulting work".into(),
            score: 0.5,
        },
        Slice {
            item: "idea/b".into(),
            kind: "idea".into(),
            text: "Holiday photos".into(),
            score: 0.9,
        },
        Slice {
            item: "outcome/x".into(),
            kind: "outcome".into(),
            text: "pricing guide post brought 3 leads".into(),
            score: 0.4,
        },
    ];
    let out = researcher(
        &json!({"goals": ["more consulting leads from pricing content"]}),
        &memory,
    );
    assert_eq!(out["ideas"][0]["title"], "Guide to pricing consulting work");
    assert!(
        out["ideas"][0]["rationale"]
            .as_str()
            .unwrap()
            .contains("outcome/x")
    );
    assert!(
        out["ideas"][0]["score"].as_f64().unwrap() > out["ideas"][1]["score"].as_f64().unwrap()
    );
}

#[test]
fn editor_revises_the_upstream_draft_in_a_workflow() {
    let out = editor(&json!({"topic": "x", "upstream": {"write": {
        "title": "Pricing", "body": "Intro\nIntro\nWhat we tested:\nthree things"}}}));
    let body = out["body"].as_str().unwrap();
    assert!(body.contains("## What we tested"), "{body}");
    assert_eq!(body.matches("Intro").count(), 1, "{body}");
}

#[test]
fn accountant_adds_up() {
    let out = accountant(
        &json!({"contract": {"customer": "ACME", "currency": "USD",
        "lines": [{"description": "days", "quantity": 3, "unit_price": 500.0}, {"description": "setup", "unit_price": 99.5}]}}),
        &[],
    );
    assert_eq!(out["invoice"]["subtotal"], 1599.5);
}

#[test]
fn scheduler_respects_the_day() {
    let out = scheduler(&json!({"day_start": "09:00", "day_end": "10:00",
        "tasks": [{"title": "a", "minutes": 45}, {"title": "b", "minutes": 30, "priority": 2}]}));
    assert_eq!(out["slots"][0]["title"], "b");
    assert_eq!(out["unscheduled"][0], "a");
}

#[test]
fn hostile_numbers_do_not_panic() {
    let out = scheduler(
        &json!({"day_start": "99999999999999999:00", "day_end": "-3:99",
        "tasks": [{"title": "x", "minutes": i64::MAX, "priority": i64::MIN}]}),
    );
    assert_eq!(out["unscheduled"], json!(["x"]));
    let out = accountant(
        &json!({"contract": {"lines": [{"quantity": 1e308, "unit_price": 1e308}]}}),
        &[],
    );
    assert!(out["invoice"]["subtotal"].is_number(), "{out}");
}

#[test]
fn editor_removes_repeats_and_adds_headings() {
    let out = editor(&json!({"title": "T", "body": "Intro:\nsame line\nsame line\n\n\n\nend"}));
    let body = out["body"].as_str().unwrap();
    assert!(body.starts_with("# T\n"));
    assert!(body.contains("## Intro"));
    assert_eq!(body.matches("same line").count(), 1);
}
