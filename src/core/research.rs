//! The researcher's ranking, headless: the shipped researcher rules of the offline
//! provider over the knowledge base's ideas and measured outcomes, recorded as `idea`
//! objects with score, rationale and sources (a new version each time the ranking moves).
//! The agent runtime runs the same role through a model; this entry point is what the
//! weekly schedule and the loop test use when no model is configured.

use rusqlite::Connection;
use serde::Serialize;
use serde_json::{Value, json};

use crate::core::audit::Actor;
use crate::core::clock::Millis;
use crate::core::error::Result;
use crate::core::llm::offline::Slice;
use crate::core::llm::offline_recipes;
use crate::core::objects::{self, Kinds, Stamp};
use crate::core::store::Store;

/// One ranked idea.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    pub id: String,
    pub title: String,
    pub score: f64,
    pub rationale: String,
}

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
    let ranked: Vec<Ranked> = out["ideas"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let title = i["title"].as_str().unwrap_or("").to_string();
            Ranked {
                id: slug(&title),
                score: i["score"].as_f64().unwrap_or(0.0),
                rationale: i["rationale"].as_str().unwrap_or("").to_string(),
                title,
            }
        })
        .filter(|r| !r.id.is_empty())
        .collect();
    let stamp = Stamp::new(actor.clone(), now_ms);
    store.write(|tx| {
        for (rank, r) in ranked.iter().enumerate() {
            let current = objects::find(tx, "idea", &r.id)?;
            let mut body = current
                .as_ref()
                .map_or_else(|| json!({"status": "proposed"}), |o| o.body.clone());
            body["title"] = json!(r.title);
            body["score"] = json!(r.score);
            body["rank"] = json!(rank + 1);
            body["rationale"] = json!(r.rationale);
            objects::put(
                tx,
                kinds,
                &stamp,
                "idea",
                &r.id,
                current.map(|o| o.version),
                &body,
            )?;
        }
        Ok(())
    })?;
    Ok(ranked)
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
