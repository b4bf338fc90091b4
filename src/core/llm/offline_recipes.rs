//! The offline provider's rules, one per shipped role. Each returns JSON that satisfies the
//! role's output schema whatever the input looks like (missing fields are named in the
//! rationale instead of failing).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::offline::Slice;

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

fn researcher(input: &Value, memory: &[Slice]) -> Value {
    let goals_text = [
        text_of(&input["goals"]),
        text_of(&input["goal"]),
        text_of(&input["topic"]),
    ]
    .join(" ");
    let goals = words(&goals_text);
    let outcomes: Vec<&Slice> = memory
        .iter()
        .filter(|s| matches!(s.kind.as_str(), "outcome" | "metric" | "publication"))
        .collect();
    let mut candidates: Vec<(String, String, Vec<String>)> = Vec::new(); // (title, text, sources)
    if let Some(list) = input["candidates"].as_array() {
        for c in list {
            let t = text_of(c);
            candidates.push((first_line(&t, 80), t, Vec::new()));
        }
    }
    for s in memory
        .iter()
        .filter(|s| matches!(s.kind.as_str(), "idea" | "note" | "preference"))
    {
        candidates.push((
            first_line(&s.text, 80),
            s.text.clone(),
            vec![s.item.clone()],
        ));
    }
    if candidates.is_empty() {
        for g in input["goals"].as_array().into_iter().flatten() {
            let t = text_of(g);
            candidates.push((format!("Explore: {}", first_line(&t, 70)), t, Vec::new()));
        }
    }
    let mut ideas: Vec<(f64, Value)> = candidates
        .into_iter()
        .filter(|(title, _, _)| !title.is_empty())
        .map(|(title, text, mut sources)| {
            let w = words(&text);
            let (goal_score, shared) = overlap(&w, &goals);
            let mut best_outcome: Option<(f64, &Slice)> = None;
            for o in &outcomes {
                let (s, _) = overlap(&w, &words(&o.text));
                if s > 0.0 && best_outcome.is_none_or(|(b, _)| s > b) {
                    best_outcome = Some((s, o));
                }
            }
            let outcome_score = best_outcome.map_or(0.0, |(s, _)| s);
            let score = round2(0.7 * goal_score + 0.3 * outcome_score);
            let mut why = if shared.is_empty() {
                "shares no words with the goals".to_string()
            } else {
                format!("shares {} with the goals", shared.join(", "))
            };
            if let Some((_, o)) = best_outcome {
                let _ = write!(why, "; resembles past outcome {}", o.item);
                sources.push(o.item.clone());
            }
            (
                score,
                json!({"title": title, "score": score, "rationale": why, "sources": sources}),
            )
        })
        .collect();
    ideas.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1["title"].as_str().cmp(&b.1["title"].as_str()))
    });
    ideas.truncate(10);
    let mut ideas: Vec<Value> = ideas.into_iter().map(|(_, v)| v).collect();
    let rationale = if ideas.is_empty() {
        ideas.push(json!({"title": "Collect ideas first", "score": 0.0,
            "rationale": "no candidates in the input or memory and no goals given", "sources": []}));
        "nothing to rank: give goals or candidates, or add ideas to memory".to_string()
    } else {
        format!(
            "ranked {} candidates by word overlap with the goals (70%) and with past outcomes (30%)",
            ideas.len()
        )
    };
    json!({"ideas": ideas, "rationale": rationale})
}

fn sentences(text: &str) -> Vec<String> {
    text.split(['.', '!', '?', '\n'])
        .map(|s| {
            s.trim()
                .trim_start_matches(['-', '*', '#'])
                .trim()
                .to_string()
        })
        .filter(|s| s.len() > 2)
        .collect()
}

fn writer(input: &Value, memory: &[Slice]) -> Value {
    let brief = [text_of(&input["brief"]), text_of(&input["topic"])]
        .join(" ")
        .trim()
        .to_string();
    let title = input["title"].as_str().map_or_else(
        || {
            if brief.is_empty() {
                "Untitled draft".to_string()
            } else {
                first_line(&brief, 60)
            }
        },
        str::to_string,
    );
    let mut outline = vec![json!({
        "heading": "Introduction",
        "points": if brief.is_empty() { vec!["State the purpose of this piece.".to_string()] } else { sentences(&brief).into_iter().take(3).collect() },
        "sources": [],
    })];
    for s in memory.iter().take(5) {
        let points: Vec<String> = sentences(&s.text).into_iter().take(3).collect();
        if points.is_empty() {
            continue;
        }
        outline.push(
            json!({"heading": first_line(&s.text, 60), "points": points, "sources": [s.item]}),
        );
    }
    outline.push(json!({"heading": "Next steps", "points": ["Say what the reader should do next."], "sources": []}));
    let mut body = format!("# {title}\n");
    for section in &outline {
        let _ = write!(
            body,
            "\n## {}\n\n",
            section["heading"].as_str().unwrap_or_default()
        );
        for p in section["points"].as_array().into_iter().flatten() {
            let _ = writeln!(body, "- {}", p.as_str().unwrap_or_default());
        }
    }
    let used = outline.len() - 2;
    json!({
        "title": title,
        "outline": outline,
        "body": body,
        "rationale": format!("outline assembled from the brief and {used} retrieved notes, in retrieval order"),
    })
}

fn editor(input: &Value) -> Value {
    // In a workflow the draft is the writer's output, passed on under `upstream`.
    let upstream = input["upstream"]
        .as_object()
        .and_then(|up| up.values().rev().find(|o| o["body"].is_string()));
    let draft = if input["draft"].is_object() {
        &input["draft"]
    } else if input["body"].is_string() {
        input
    } else {
        upstream.unwrap_or(input)
    };
    let body = draft["body"].as_str().unwrap_or_default();
    let mut changes = Vec::new();
    let mut seen = BTreeSet::new();
    let mut lines: Vec<String> = Vec::new();
    let mut dropped = 0;
    let mut headings = 0;
    for raw in body.lines() {
        let line = raw.trim_end();
        let key = line.trim().to_lowercase();
        if !key.is_empty() && !key.starts_with('#') && !seen.insert(key) {
            dropped += 1;
            continue;
        }
        // A short line ending in ':' reads as a heading: make it one.
        if line.ends_with(':')
            && !line.starts_with('#')
            && line.len() < 60
            && !line.starts_with('-')
        {
            lines.push(format!("## {}", line.trim_end_matches(':').trim()));
            headings += 1;
            continue;
        }
        if line.is_empty() && lines.last().is_some_and(String::is_empty) {
            continue;
        }
        lines.push(line.to_string());
    }
    let title = draft["title"]
        .as_str()
        .map_or_else(|| first_line(body, 60), str::to_string);
    let title = if title.is_empty() {
        "Untitled".to_string()
    } else {
        title
    };
    if !lines.first().is_some_and(|l| l.starts_with("# ")) {
        lines.insert(0, format!("# {title}"));
        lines.insert(1, String::new());
        changes.push("added the title as a top heading".to_string());
    }
    if dropped > 0 {
        changes.push(format!("removed {dropped} repeated lines"));
    }
    if headings > 0 {
        changes.push(format!("turned {headings} label lines into headings"));
    }
    let edited = lines.join("\n").trim().to_string() + "\n";
    if edited != body {
        changes.push("normalised whitespace".to_string());
    }
    let rationale = if body.is_empty() {
        "the input had no draft body; produced a title-only skeleton".to_string()
    } else if changes.is_empty() {
        "structure checked: no change needed".to_string()
    } else {
        format!("tightened structure: {}", changes.join("; "))
    };
    json!({"title": title, "body": edited, "changes": changes, "rationale": rationale})
}

fn publisher(input: &Value) -> Value {
    let object = &input["object"];
    let kind = object["kind"].as_str().unwrap_or("draft");
    let id = object["id"].as_str().unwrap_or("unknown");
    let version = object["version"].as_i64().unwrap_or(1).max(1);
    let target = input["target"].as_str().unwrap_or("site");
    json!({
        "action": format!("{target}.publish"),
        "target": target,
        "object": {"kind": kind, "id": id, "version": version},
        "summary": format!("publish {kind}/{id} version {version} to {target}"),
        "rationale": "publishing is a public side effect: this is a request for the operator's approval, not the act itself",
    })
}

fn analyst(input: &Value) -> Value {
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

fn accountant(input: &Value, memory: &[Slice]) -> Value {
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

fn scheduler(input: &Value) -> Value {
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

#[cfg(test)]
mod tests {
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
}
