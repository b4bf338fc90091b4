//! The offline provider end to end for every shipped role: no network, outputs that pass
//! each role's schema, plainly labelled, built from the input and retrieved memory.

use std::sync::Arc;

use keel::core::agents::local_host::put_version;
use keel::core::agents::{AgentTask, RunOutcome, record, service};
use keel::core::audit::Actor;
use keel::core::clock::ManualClock;
use keel::core::llm::Registry;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::runtime::workspace;

fn inputs() -> Vec<(&'static str, Value)> {
    vec![
        (
            "researcher",
            json!({"goals": ["win consulting clients with pricing content"]}),
        ),
        (
            "writer",
            json!({"title": "Pricing your consulting", "brief": "Explain value-based pricing to new consultants."}),
        ),
        (
            "editor",
            json!({"draft": {"title": "Pricing", "body": "Intro:\nPrice on value.\nPrice on value.\n\n\n\nEnd."}}),
        ),
        (
            "publisher",
            json!({"object": {"kind": "draft", "id": "pricing", "version": 3}, "target": "site"}),
        ),
        (
            "analyst",
            json!({"metrics": [{"name": "visits", "value": 1200, "previous": 1000}, {"name": "leads", "value": 9, "previous": 12}]}),
        ),
        ("accountant", json!({})),
        (
            "scheduler",
            json!({"day_start": "09:00", "day_end": "12:00", "tasks": [{"title": "write", "minutes": 90, "priority": 2}, {"title": "email", "minutes": 30}, {"title": "admin", "minutes": 120}]}),
        ),
    ]
}

#[tokio::test]
async fn every_shipped_role_runs_offline_with_schema_valid_output() {
    let (_d, ws) = workspace();
    {
        let mut store = ws.store().unwrap();
        store.write(|tx| {
            put_version(tx, 1, &Actor::Operator, "idea", "pricing", None, &json!({"title": "Pricing guide for consulting clients"}))?;
            put_version(tx, 1, &Actor::Operator, "idea", "travel", None, &json!({"title": "Travel diary"}))?;
            put_version(tx, 1, &Actor::Operator, "outcome", "o1", None, &json!({"summary": "The pricing post brought consulting clients"}))?;
            put_version(tx, 1, &Actor::Operator, "note", "n1", None, &json!({"title": "Value-based pricing", "text": "Price on outcomes, not hours. Anchor high."}))?;
            put_version(tx, 1, &Actor::Operator, "contract", "c1", None, &json!({"customer": "ACME", "currency": "EUR", "terms_days": 14,
                "lines": [{"description": "Workshop day", "quantity": 2, "unit_price": 900.0}]}))?;
            Ok(())
        }).unwrap();
    }
    let clock = Arc::new(ManualClock::at(1_800_000_000_000));
    let mut rt = service::runtime_with(
        &ws,
        clock.clone(),
        Arc::new(|_: &str, _: &str| {}),
        Registry::offline_only(),
    )
    .unwrap();
    for (role, input) in inputs() {
        let task = AgentTask {
            task: format!("t-{role}"),
            role: role.into(),
            input,
            ..AgentTask::default()
        };
        let out = rt.execute(&task, &CancellationToken::new()).await.unwrap();
        let RunOutcome::Succeeded {
            run,
            output,
            object: Some(obj),
        } = &out
        else {
            panic!("{role}: {out:?}")
        };
        let tpl = rt.templates.get(role).unwrap();
        let v = jsonschema::validator_for(&tpl.schema).unwrap();
        assert!(v.is_valid(output), "{role}: {output}");
        assert!(
            output["generated_by"]
                .as_str()
                .unwrap()
                .contains("no language model"),
            "{role}"
        );
        assert_eq!(obj.kind, tpl.template.output.kind);
        let rec = record::load_run(rt.store.conn(), run).unwrap().unwrap();
        assert_eq!((rec.provider.as_str(), rec.cost_usd), ("offline", 0.0));
        assert_eq!(rec.template_hash, tpl.hash);
        match role {
            "researcher" => {
                assert_eq!(
                    output["ideas"][0]["title"], "Pricing guide for consulting clients",
                    "{output}"
                );
                assert!(
                    output["ideas"][0]["rationale"]
                        .as_str()
                        .unwrap()
                        .contains("outcome/o1"),
                    "{output}"
                );
            }
            "writer" => assert!(
                output["body"]
                    .as_str()
                    .unwrap()
                    .contains("Price on outcomes"),
                "{output}"
            ),
            "accountant" => assert_eq!(output["invoice"]["subtotal"], 1800.0, "{output}"),
            "scheduler" => assert_eq!(output["unscheduled"], json!(["admin"]), "{output}"),
            "analyst" => assert_eq!(output["highlights"][0]["metric"], "leads", "{output}"),
            _ => {}
        }
        // Memory provenance is recorded with the run.
        if role == "researcher" {
            let used = keel::core::agents::query::memory_used(rt.store.conn(), run).unwrap();
            assert!(
                used.iter()
                    .any(|m| m.item == "idea/pricing" && m.version == 1),
                "{used:?}"
            );
        }
        let report = service::replay(&ws, clock.clone(), run).await.unwrap();
        assert!(report.matches, "{role}: {report:?}");
    }
}

#[tokio::test]
async fn an_object_named_in_the_input_is_read_once_recorded_and_replayed_as_read() {
    let (_d, ws) = workspace();
    let contract = |price: f64| {
        json!({"customer": "Northwind", "currency": "USD", "terms_days": 30,
            "lines": [{"description": "Consulting day", "quantity": 3, "unit_price": price}]})
    };
    let mut store = ws.store().unwrap();
    store
        .write(|tx| {
            put_version(
                tx,
                1,
                &Actor::Operator,
                "contract",
                "nw",
                None,
                &contract(500.0),
            )?;
            Ok(())
        })
        .unwrap();
    let clock = Arc::new(ManualClock::at(1_800_000_000_000));
    let mut rt = service::runtime_with(
        &ws,
        clock.clone(),
        Arc::new(|_: &str, _: &str| {}),
        Registry::offline_only(),
    )
    .unwrap();
    let run_with = |input: Value, task: &str| AgentTask {
        task: task.into(),
        role: "accountant".into(),
        input,
        ..AgentTask::default()
    };
    // "contract/nw" and "nw" both name it; the invoice is drawn from its lines.
    let out = rt
        .execute(
            &run_with(json!({"contract": "contract/nw"}), "t1"),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let RunOutcome::Succeeded { run, output, .. } = &out else {
        panic!("{out:?}")
    };
    assert_eq!(output["invoice"]["subtotal"], 1500.0, "{output}");
    assert_eq!(output["invoice"]["customer"], "Northwind");
    let steps = record::steps(rt.store.conn(), run).unwrap();
    assert_eq!(steps[0].output["objects"][0]["version"], 1);
    assert_eq!(steps[0].output["objects"][0]["id"], "nw");
    // The contract changes afterwards; the replay still sees what the run read.
    store
        .write(|tx| {
            put_version(
                tx,
                2,
                &Actor::Operator,
                "contract",
                "nw",
                Some(1),
                &contract(900.0),
            )?;
            Ok(())
        })
        .unwrap();
    let report = service::replay(&ws, clock.clone(), run).await.unwrap();
    assert!(report.matches, "{report:?}");
    let again = rt
        .execute(
            &run_with(json!({"contract": "nw"}), "t2"),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let RunOutcome::Succeeded { output, .. } = &again else {
        panic!("{again:?}")
    };
    assert_eq!(output["invoice"]["subtotal"], 2700.0, "{output}");
}

#[tokio::test]
async fn an_invoice_without_lines_is_never_drafted() {
    let (_d, ws) = workspace();
    let mut rt = service::runtime_with(
        &ws,
        Arc::new(ManualClock::at(1_800_000_000_000)),
        Arc::new(|_: &str, _: &str| {}),
        Registry::offline_only(),
    )
    .unwrap();
    // No such contract and none in memory: the draft has no lines, fails the schema and
    // goes to the operator instead of becoming an empty invoice someone could send.
    let out = rt
        .execute(
            &AgentTask {
                task: "t".into(),
                role: "accountant".into(),
                input: json!({"contract": "nobody"}),
                ..AgentTask::default()
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let RunOutcome::Escalated { reason, raw, .. } = &out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("/invoice/lines"), "{reason}");
    assert!(
        raw.as_deref()
            .is_some_and(|r| r.contains("unknown customer"))
    );
}
