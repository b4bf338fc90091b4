//! The business roles' recipes: analyst, accountant, scheduler.

use serde_json::{Value, json};

use super::{round2, text_of};
use crate::core::llm::offline::Slice;

pub(super) fn analyst(input: &Value) -> Value {
    let mut highlights = Vec::new();
    for m in input["metrics"].as_array().into_iter().flatten() {
        let name = m["name"].as_str().unwrap_or("metric");
        let value = m["value"].as_f64().unwrap_or(0.0);
        let mut h = json!({"metric": name, "value": value});
        if let Some(prev) = m["previous"].as_f64() {
            h["change"] = json!(round2(value - prev));
            if prev != 0.0 {
                h["change_pct"] = json!(round2((value - prev) / prev.abs() * 100.0));
            }
        }
        highlights.push(h);
    }
    highlights.sort_by(|a, b| {
        let mag = |v: &Value| v["change_pct"].as_f64().unwrap_or(0.0).abs();
        mag(b).total_cmp(&mag(a))
    });
    let summary = if highlights.is_empty() {
        "no metrics in the input".to_string()
    } else {
        highlights
            .iter()
            .take(3)
            .map(|h| match h["change_pct"].as_f64() {
                Some(p) => format!(
                    "{} {} ({p:+}%)",
                    h["metric"].as_str().unwrap_or(""),
                    h["value"]
                ),
                None => format!("{} {}", h["metric"].as_str().unwrap_or(""), h["value"]),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    json!({"summary": summary, "highlights": highlights,
        "rationale": "metrics ordered by the size of their relative change"})
}

pub(super) fn accountant(input: &Value, memory: &[Slice]) -> Value {
    let from_memory = memory
        .iter()
        .filter(|s| s.kind == "contract")
        .find_map(|s| serde_json::from_str::<Value>(&s.text).ok());
    let (contract, source) = if input["contract"].is_object() {
        (input["contract"].clone(), "the task input".to_string())
    } else if let Some(c) = from_memory {
        (c, "a contract retrieved from memory".to_string())
    } else {
        (json!({}), "nothing (no contract given)".to_string())
    };
    let currency = contract["currency"].as_str().unwrap_or("EUR");
    let items = contract["lines"]
        .as_array()
        .or_else(|| contract["items"].as_array());
    let mut lines = Vec::new();
    let mut subtotal = 0.0;
    for item in items.into_iter().flatten() {
        let qty = item["quantity"].as_f64().unwrap_or(1.0);
        let price = item["unit_price"].as_f64().unwrap_or(0.0);
        let amount = round2(qty * price);
        subtotal += amount;
        lines.push(
            json!({"description": item["description"].as_str().unwrap_or("item"),
            "quantity": qty, "unit_price": price, "amount": amount}),
        );
    }
    json!({
        "invoice": {
            "customer": contract["customer"].as_str().unwrap_or("unknown customer"),
            "currency": currency,
            "lines": lines,
            "subtotal": round2(subtotal),
            "due_days": contract["terms_days"].as_i64().unwrap_or(30),
        },
        "rationale": format!("invoice draft computed from {source}: quantity × unit price per line"),
    })
}

/// `HH:MM` within one day, in minutes.
fn parse_hm(s: &str) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    let (h, m) = (h.trim().parse::<i64>().ok()?, m.trim().parse::<i64>().ok()?);
    ((0..=24).contains(&h) && (0..60).contains(&m)).then_some((h * 60 + m).min(24 * 60))
}

fn fmt_hm(mins: i64) -> String {
    format!("{:02}:{:02}", mins / 60, mins % 60)
}

pub(super) fn scheduler(input: &Value) -> Value {
    let start = input["day_start"]
        .as_str()
        .and_then(parse_hm)
        .unwrap_or(9 * 60);
    let end = input["day_end"]
        .as_str()
        .and_then(parse_hm)
        .unwrap_or(17 * 60)
        .max(start);
    let mut tasks: Vec<(i64, usize, String, i64)> = input["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, t)| {
            let title = t["title"]
                .as_str()
                .map_or_else(|| text_of(t), str::to_string);
            (
                t["priority"].as_i64().unwrap_or(0),
                i,
                title,
                t["minutes"].as_i64().unwrap_or(30).clamp(5, 24 * 60),
            )
        })
        .collect();
    tasks.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut at = start;
    let mut slots = Vec::new();
    let mut unscheduled = Vec::new();
    for (_, _, title, minutes) in tasks {
        if at + minutes <= end {
            slots.push(json!({"start": fmt_hm(at), "end": fmt_hm(at + minutes), "title": title}));
            at += minutes;
        } else {
            unscheduled.push(json!(title));
        }
    }
    json!({"slots": slots, "unscheduled": unscheduled,
        "rationale": format!("highest priority first, back to back from {} to {}", fmt_hm(start), fmt_hm(end))})
}
