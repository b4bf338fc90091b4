//! The researcher's ranking, headless: the shipped researcher rules of the offline
//! provider over the knowledge base's ideas and measured outcomes, recorded as `idea`
//! objects with score, rationale and sources (a new version each time the ranking moves).
//! The agent runtime runs the same role through a model; this entry point is what the
//! weekly schedule and the loop test use when no model is configured.

use rusqlite::Connection;
use serde_json::{Value, json};

use crate::core::audit::Actor;
use crate::core::clock::Millis;
use crate::core::error::Result;
use crate::core::llm::offline::Slice;
use crate::core::llm::offline_recipes;
use crate::core::objects::{self, Kinds, Stamp};
use crate::core::store::Store;

/// One ranked idea (a protocol row).
pub use crate::protocol::Ranked;

/// Ranks every long-term `idea` note against `goals`, weighing `outcome` notes, and
/// records the result on idea objects. Returns the ranking, best first.
pub fn rank_ideas(
    store: &mut Store,
    kinds: &Kinds,
    actor: &Actor,
    now_ms: Millis,
    goals: &[String],
) -> Result<Vec<Ranked>> {
    let slices = slices(store.conn())?;
    let out = offline_recipes::run("researcher", &json!({"goals": goals}), &slices);
    let ranked = ranked_from(&out);
    let stamp = Stamp::new(actor.clone(), now_ms);
    store.write(|tx| record_ranking(tx, kinds, &stamp, &ranked))?;
    Ok(ranked)
}

/// The ideas of a researcher's output (`{"ideas": [{title, score, rationale, sources}]}`),
/// in its order (best first), each with the id its idea object has.
#[must_use]
pub fn ranked_from(output: &Value) -> Vec<Ranked> {
    output["ideas"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let title = i["title"].as_str().unwrap_or("").to_string();
            Ranked {
                id: slug(&title),
                score: i["score"].as_f64().unwrap_or(0.0),
                rationale: i["rationale"].as_str().unwrap_or("").to_string(),
                sources: i["sources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect(),
                title,
            }
        })
        .filter(|r| !r.id.is_empty())
        .collect()
}

/// Records a ranking on `idea` objects in the caller's transaction: one object per idea
/// (its id from the title), a new version when its score, rank or rationale moved (an
/// unchanged one is left alone), keeping what else the object holds (status, evidence).
/// Returns the ids of the ideas that got a new version.
pub fn record_ranking(
    tx: &rusqlite::Transaction<'_>,
    kinds: &Kinds,
    stamp: &Stamp,
    ranked: &[Ranked],
) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (rank, r) in ranked.iter().enumerate() {
        // Two titles with the same id: the better-ranked one stands.
        if !seen.insert(r.id.clone()) {
            continue;
        }
        let current = objects::find(tx, "idea", &r.id)?;
        let mut body = current
            .as_ref()
            .map_or_else(|| json!({"status": "proposed"}), |o| o.body.clone());
        // An existing idea keeps its title (the operator's words); a new one gets the
        // ranked title without a note's label or a preview's ellipsis.
        if body["title"].as_str().is_none_or(str::is_empty) {
            body["title"] = json!(clean_title(&r.title));
        }
        body["score"] = json!(r.score);
        body["rank"] = json!(rank + 1);
        body["rationale"] = json!(r.rationale);
        if !r.sources.is_empty() {
            body["sources"] = json!(r.sources);
        }
        let written = objects::put(
            tx,
            kinds,
            stamp,
            "idea",
            &r.id,
            current.map(|o| o.version),
            &body,
        )?;
        if written.changed {
            changed.push(r.id.clone());
        }
    }
    Ok(changed)
}

/// The knowledge base's ideas and outcomes, as the offline researcher reads them.
fn slices(conn: &Connection) -> Result<Vec<Slice>> {
    let mut stmt = conn.prepare(
        "SELECT id, kind, text FROM memory_items
         WHERE kind IN ('idea', 'outcome') AND tier = 'long' ORDER BY id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Slice {
                item: format!("memory/{}", r.get::<_, String>(0)?),
                kind: r.get(1)?,
                text: r.get(2)?,
                score: 1.0,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// `Idea backlog: pricing page experiments…` → `Pricing page experiments`: the part after a
/// note's label, without a preview's ellipsis (the original when nothing is left).
fn clean_title(title: &str) -> String {
    let core = title
        .rsplit(':')
        .next()
        .unwrap_or(title)
        .trim()
        .trim_end_matches('…')
        .trim();
    let mut chars = core.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => title.trim().to_string(),
    }
}

/// `Idea backlog: pricing page experiments` → `pricing-page-experiments`.
fn slug(title: &str) -> String {
    let core = title.rsplit(':').next().unwrap_or(title);
    let words: Vec<String> = core
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.join("-").chars().take(60).collect()
}

/// Used by tests and the CLI: the current ranking as stored on idea objects.
pub fn stored_ranking(conn: &Connection) -> Result<Vec<(String, f64)>> {
    let mut stmt = conn.prepare(
        "SELECT o.id, v.body FROM objects o JOIN object_versions v
           ON v.kind = o.kind AND v.id = o.id AND v.version = o.version
         WHERE o.kind = 'idea' AND o.archived = 0",
    )?;
    let mut rows: Vec<(String, i64, f64)> = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .filter_map(std::result::Result::ok)
        .filter_map(|(id, body)| {
            let v: Value = serde_json::from_str(&body).ok()?;
            Some((id, v["rank"].as_i64()?, v["score"].as_f64()?))
        })
        .collect();
    rows.sort_by_key(|r| r.1);
    Ok(rows.into_iter().map(|(id, _, s)| (id, s)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::store::Durability;

    #[test]
    fn a_ranking_updates_one_object_per_idea_and_skips_unchanged_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("keel.db"), Durability::Normal).unwrap();
        let kinds = Kinds::builtin().unwrap();
        let stamp = Stamp::new(Actor::agent("run-1"), 1);
        let output = json!({"ideas": [
            {"title": "Idea backlog: price increases…", "score": 0.6, "rationale": "goals", "sources": ["memory/a"]},
            {"title": "Refund policies", "score": 0.2, "rationale": "weak", "sources": []},
            {"title": "Price increases", "score": 0.1, "rationale": "same id, worse", "sources": []},
        ]});
        let ranked = ranked_from(&output);
        assert_eq!(ranked[0].id, "price-increases");
        let changed = store
            .write(|tx| record_ranking(tx, &kinds, &stamp, &ranked))
            .unwrap();
        assert_eq!(changed, ["price-increases", "refund-policies"]);
        let idea = objects::get(store.conn(), "idea", "price-increases").unwrap();
        assert_eq!(idea.body["score"], json!(0.6));
        assert_eq!(idea.body["sources"], json!(["memory/a"]));
        assert_eq!(idea.author, "agent:run-1");
        // A new idea's title loses the note's label; an existing idea keeps its own.
        assert_eq!(idea.body["title"], json!("Price increases"));
        store
            .write(|tx| {
                objects::put(tx, &kinds, &stamp, "idea", "refund-policies", Some(1),
                    &json!({"title": "Refunds, my way", "score": 0.2, "rank": 2, "rationale": "weak", "status": "proposed"}))
            })
            .unwrap();
        // The same ranking again writes nothing; a moved score is a new version.
        let again = store
            .write(|tx| record_ranking(tx, &kinds, &stamp, &ranked))
            .unwrap();
        assert!(again.is_empty());
        let mut moved = ranked.clone();
        moved[0].score = 0.7;
        let stamp = Stamp::new(Actor::agent("run-2"), 2);
        store
            .write(|tx| record_ranking(tx, &kinds, &stamp, &moved))
            .unwrap();
        assert_eq!(
            objects::get(store.conn(), "idea", "refund-policies")
                .unwrap()
                .body["title"],
            json!("Refunds, my way")
        );
        let history = objects::history(store.conn(), "idea", "price-increases").unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(
            objects::get(store.conn(), "idea", "price-increases")
                .unwrap()
                .author,
            "agent:run-2"
        );
    }
}
