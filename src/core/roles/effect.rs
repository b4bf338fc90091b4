//! The built-in `effect` role: one configured connector action (e.g. a webhook), always
//! through [`crate::core::actions::perform_gated`].

use serde_json::{Value, json};

use super::gated_outcome;
use crate::core::actions::{GatedAction, perform_gated};
use crate::core::coordinator::{Outcome, RunError, StepContext};

/// The role's name in tasks, schedules and workflow stages.
pub const NAME: &str = "effect";

/// `effect` input: `action` (e.g. `webhook.notify`), `args`, optional `target`, `amount`,
/// `cost`, `kind`, `summary`, `rationale`.
pub fn run(ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
    let input = ctx.task().input.clone();
    let text = |name: &str| input.get(name).and_then(Value::as_str).map(str::to_string);
    let name = text("action")
        .ok_or_else(|| RunError::Permanent("effect input needs an \"action\"".into()))?;
    // In a workflow after an accountant stage, the drafted invoice is what is sent: its
    // total is the amount policy gates on and its customer the target.
    let upstream = |name: &str| {
        input
            .get("upstream")
            .and_then(Value::as_object)
            .and_then(|up| up.values().rev().find_map(|o| o.get(name).cloned()))
    };
    let invoice = upstream("invoice");
    let invoice_text = |name: &str| {
        invoice
            .as_ref()
            .and_then(|i| i.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let action = GatedAction {
        step: "effect".into(),
        target: text("target")
            .or_else(|| invoice_text("customer"))
            .unwrap_or_else(|| name.clone()),
        args: input
            .get("args")
            .cloned()
            .or_else(|| invoice.clone())
            .unwrap_or_else(|| json!({})),
        object_kind: text("kind"),
        amount: input.get("amount").and_then(Value::as_f64).or_else(|| {
            invoice
                .as_ref()
                .and_then(|i| i.get("subtotal"))
                .and_then(Value::as_f64)
        }),
        cost: input.get("cost").and_then(Value::as_f64).unwrap_or(0.0),
        summary: text("summary")
            .or_else(|| {
                invoice.as_ref().map(|i| {
                    format!(
                        "Send invoice to {} for {} {}",
                        i["customer"].as_str().unwrap_or("?"),
                        i["subtotal"],
                        i["currency"].as_str().unwrap_or("")
                    )
                })
            })
            .unwrap_or_else(|| format!("Run {name}")),
        // Why: the stage that prepared this action explains it (e.g. how an invoice was
        // computed), unless the input says otherwise.
        rationale: text("rationale")
            .or_else(|| upstream("rationale").and_then(|v| v.as_str().map(str::to_string)))
            .unwrap_or_default(),
        action: name,
        proposed_body: None,
        current_body: None,
        object: input
            .get("object")
            .cloned()
            .or_else(|| upstream("object_ref"))
            .and_then(|v| serde_json::from_value(v).ok()),
    };
    Ok(gated_outcome(perform_gated(ctx, &action)?))
}
