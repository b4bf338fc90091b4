//! The content roles' recipes: researcher, writer, editor, publisher.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{first_line, overlap, round2, text_of, words};
use crate::core::llm::offline::Slice;

pub(super) fn researcher(input: &Value, memory: &[Slice]) -> Value {
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

pub(super) fn writer(input: &Value, memory: &[Slice]) -> Value {
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

pub(super) fn editor(input: &Value) -> Value {
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

pub(super) fn publisher(input: &Value) -> Value {
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
