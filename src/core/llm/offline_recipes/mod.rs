//! The offline provider's rules, one per shipped role. Each returns JSON that satisfies the
//! role's output schema whatever the input looks like (missing fields are named in the
//! rationale instead of failing).

mod content;
mod operations;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::offline::Slice;
use content::{editor, publisher, researcher, writer};
use operations::{accountant, analyst, scheduler};

const STOPWORDS: &[&str] = &[
    "the", "and", "for", "with", "that", "this", "from", "are", "was", "were", "you", "your",
    "our", "but", "not", "have", "has", "into", "about", "will", "can", "all", "how", "what",
    "why", "who", "its", "their", "they", "them", "than", "then", "out", "more", "most",
];

/// Runs the recipe for `role` (unknown roles get a plain summary).
#[must_use]
pub fn run(role: &str, input: &Value, memory: &[Slice]) -> Value {
    match role {
        "researcher" => researcher(input, memory),
        "writer" => writer(input, memory),
        "editor" => editor(input),
        "publisher" => publisher(input),
        "analyst" => analyst(input),
        "accountant" => accountant(input, memory),
        "scheduler" => scheduler(input),
        _ => json!({
            "summary": format!("no offline rules for role {role:?}; input echoed"),
            "input": input,
            "rationale": "the offline provider only knows the shipped roles",
        }),
    }
}

/// Lower-case content words of three letters or more.
pub fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 3 && !STOPWORDS.contains(&w.as_str()))
        .collect()
}

/// Set cosine: shared words over the geometric mean of the set sizes.
#[allow(clippy::cast_precision_loss)] // word counts stay far below 2^52
fn overlap(a: &BTreeSet<String>, b: &BTreeSet<String>) -> (f64, Vec<String>) {
    if a.is_empty() || b.is_empty() {
        return (0.0, Vec::new());
    }
    let shared: Vec<String> = a.intersection(b).cloned().collect();
    let score = shared.len() as f64 / ((a.len() * b.len()) as f64).sqrt();
    (score, shared)
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(" "),
        Value::Object(m) => ["title", "text", "body", "summary", "description", "name"]
            .iter()
            .filter_map(|k| m.get(*k).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn first_line(text: &str, max: usize) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let line = line.trim_start_matches('#').trim();
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>().trim_end())
    } else {
        line.to_string()
    }
}

/// Rounded to cents; a value that is not finite (overflow) becomes 0 rather than a JSON null.
fn round2(x: f64) -> f64 {
    let r = (x * 100.0).round() / 100.0;
    if r.is_finite() { r } else { 0.0 }
}
