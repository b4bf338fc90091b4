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
