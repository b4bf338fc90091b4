//! Triage: classify an incoming item on each facet (which workflow or agent, priority,
//! spam or not) by its nearest labelled examples — from `[triage]` in config and from the
//! operator's past decisions. Below the confidence threshold the item goes to the operator.
//! Every decision is recorded (table and audit); the operator's answers become examples.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Embed, embed::cosine};
use crate::core::audit::{self, Actor};
use crate::core::clock::Clock;
use crate::core::error::{Error, Result};
use crate::core::ids::new_id;
use crate::core::store::Store;

/// `[triage]` in config.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriageConfig {
    /// Decisions with a lower confidence go to the operator.
    pub threshold: f32,
    /// Nearest examples that vote.
    pub neighbours: usize,
    pub examples: Vec<Example>,
}

impl Default for TriageConfig {
    fn default() -> Self {
        TriageConfig {
            threshold: 0.45,
            neighbours: 5,
            examples: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// What is being decided: `route` (workflow or agent), `priority`, `spam`…
    #[serde(default = "default_facet")]
    pub facet: String,
    pub label: String,
    pub text: String,
}

fn default_facet() -> String {
    "route".into()
}

/// A decision and the examples it leaned on (protocol rows).
pub use crate::protocol::{Neighbour, TriageDecision as Decision};

/// Softmax temperature of the neighbour vote: a closer example counts much more.
const TEMPERATURE: f32 = 0.05;

pub struct Triage {
    embedder: Arc<dyn Embed>,
    config: TriageConfig,
    clock: Arc<dyn Clock>,
    /// Example vectors by text (examples repeat across calls).
    cache: Mutex<HashMap<String, Vec<f32>>>,
}

impl std::fmt::Debug for Triage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Triage")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Triage {
    #[must_use]
    pub fn new(embedder: Arc<dyn Embed>, config: TriageConfig, clock: Arc<dyn Clock>) -> Self {
        Triage {
            embedder,
            config,
            clock,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn examples(&self, conn: &rusqlite::Connection) -> Result<Vec<(Example, String)>> {
        let mut out: Vec<(Example, String)> = self
            .config
            .examples
            .iter()
            .map(|e| (e.clone(), "config".to_string()))
            .collect();
        let mut stmt =
            conn.prepare("SELECT facet, label, text, source FROM triage_examples ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                Example {
                    facet: r.get(0)?,
                    label: r.get(1)?,
                    text: r.get(2)?,
                },
                r.get::<_, String>(3)?,
            ))
        })?;
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    fn vectors(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let missing: Vec<String> = {
            let cache = self
                .cache
                .lock()
                .map_err(|_| Error::Other("triage cache poisoned".into()))?;
            let mut m: Vec<String> = texts
                .iter()
                .filter(|t| !cache.contains_key(*t))
                .cloned()
                .collect();
            m.sort();
            m.dedup();
            m
        };
        let fresh = self.embedder.embed(&missing)?;
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| Error::Other("triage cache poisoned".into()))?;
        for (t, v) in missing.into_iter().zip(fresh) {
            cache.insert(t, v);
        }
        Ok(texts
            .iter()
            .map(|t| cache.get(t).cloned().unwrap_or_default())
            .collect())
    }

    /// Classifies `text` on every facet that has examples and records each decision.
    pub fn classify(&self, store: &mut Store, actor: &Actor, text: &str) -> Result<Vec<Decision>> {
        let decisions = self.decide(store.conn(), text)?;
        let now = self.clock.now_ms();
        let embedding = self.embedding();
        store.write(|tx| record(tx, now, actor, text, &embedding, &decisions))?;
        Ok(decisions)
    }

    /// The embedding version decisions are made with.
    #[must_use]
    pub fn embedding(&self) -> String {
        self.embedder.version().id()
    }

    /// Classifies `text` on every facet that has examples, without recording anything
    /// (the caller records the decisions with [`record`], e.g. in its own transaction).
    pub fn decide(&self, conn: &rusqlite::Connection, text: &str) -> Result<Vec<Decision>> {
        super::kb::validate_text(text, 1 << 20)?;
        let examples = self.examples(conn)?;
        if examples.is_empty() {
            return Err(Error::invalid(
                "triage",
                "no labelled examples: add some under [triage] in config.toml or decide a few items by hand",
            ));
        }
        let texts: Vec<String> = examples.iter().map(|(e, _)| e.text.clone()).collect();
        let vectors = self.vectors(&texts)?;
        let query = self
            .embedder
            .embed(&[text.to_string()])?
            .pop()
            .ok_or_else(|| Error::Other("the embedder returned no vector".into()))?;
        let mut by_facet: BTreeMap<&str, Vec<Neighbour>> = BTreeMap::new();
        for ((e, source), v) in examples.iter().zip(&vectors) {
            by_facet
                .entry(e.facet.as_str())
                .or_default()
                .push(Neighbour {
                    label: e.label.clone(),
                    similarity: cosine(&query, v),
                    source: source.clone(),
                    text: e.text.clone(),
                });
        }
        let mut decisions = Vec::new();
        for (facet, mut neighbours) in by_facet {
            neighbours.sort_by(|a, b| {
                b.similarity
                    .total_cmp(&a.similarity)
                    .then_with(|| a.label.cmp(&b.label))
                    .then_with(|| a.text.cmp(&b.text))
            });
            neighbours.truncate(self.config.neighbours.max(1));
            let (label, confidence) = vote(&neighbours);
            let routed = if confidence >= self.config.threshold {
                "auto"
            } else {
                "operator"
            };
            decisions.push(Decision {
                id: new_id(),
                facet: facet.to_string(),
                label,
                confidence,
                routed: routed.into(),
                neighbours,
            });
        }
        Ok(decisions)
    }

    /// Records the operator's label for a decision; it becomes an example for later ones.
    pub fn resolve(
        &self,
        store: &mut Store,
        actor: &Actor,
        decision: &str,
        label: &str,
    ) -> Result<()> {
        let label = label.trim();
        if label.is_empty() {
            return Err(Error::invalid("label", "it is empty"));
        }
        let row: Option<(String, String)> = store
            .conn()
            .query_row(
                "SELECT facet, text FROM triage_decisions WHERE id = ?1",
                [decision],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (facet, text) = row.ok_or_else(|| Error::NotFound {
            kind: "triage decision".into(),
            id: decision.into(),
        })?;
        let now = self.clock.now_ms();
        store.write(|tx| learn(tx, now, actor, &facet, &text, label, Some(decision)))
    }
}

/// Records `decisions` on `text` (table rows and one audit entry each) in the caller's
/// transaction.
pub fn record(
    tx: &rusqlite::Transaction<'_>,
    now: i64,
    actor: &Actor,
    text: &str,
    embedding: &str,
    decisions: &[Decision],
) -> Result<()> {
    for d in decisions {
        let neighbours = serde_json::to_string(&d.neighbours)
            .map_err(|e| Error::failed("triage neighbours", e))?;
        tx.execute(
            "INSERT INTO triage_decisions (id, ts_ms, facet, text, label, confidence, routed, embedding, neighbours)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![d.id, now, d.facet, text, d.label, f64::from(d.confidence), d.routed, embedding, neighbours],
        )?;
        audit::append(
            tx,
            now,
            actor,
            "triage.decide",
            &format!("triage/{}", d.id),
            &json!({"facet": d.facet, "label": d.label, "confidence": d.confidence, "routed": d.routed,
                    "embedding": embedding, "neighbours": d.neighbours.iter().map(|n| json!([n.label, n.similarity])).collect::<Vec<_>>()}),
        )?;
    }
    Ok(())
}

/// The operator's label for `text` on `facet` becomes a labelled example for later triage;
/// the decision it answers (if one was recorded) keeps the final label and who gave it.
pub fn learn(
    tx: &rusqlite::Transaction<'_>,
    now: i64,
    actor: &Actor,
    facet: &str,
    text: &str,
    label: &str,
    decision: Option<&str>,
) -> Result<()> {
    if let Some(decision) = decision {
        tx.execute(
            "UPDATE triage_decisions SET final_label = ?2, decided_by = ?3 WHERE id = ?1",
            params![decision, label, actor.to_string()],
        )?;
    }
    tx.execute(
        "INSERT OR IGNORE INTO triage_examples (facet, text, label, source, decision, created_ms)
         VALUES (?1, ?2, ?3, 'operator', ?4, ?5)",
        params![facet, text, label, decision, now],
    )?;
    let subject = decision.map_or_else(|| "triage/example".to_string(), |d| format!("triage/{d}"));
    audit::append(
        tx,
        now,
        actor,
        "triage.resolve",
        &subject,
        &json!({"facet": facet, "label": label}),
    )?;
    Ok(())
}

/// Weighted vote of the nearest examples: weights `exp(sim / T)`; the confidence is the
/// winner's share of the vote times its best similarity (so a far-off item is never sure).
fn vote(neighbours: &[Neighbour]) -> (Option<String>, f32) {
    let mut scores: BTreeMap<&str, (f32, f32)> = BTreeMap::new();
    let top = neighbours.first().map_or(0.0, |n| n.similarity);
    for n in neighbours {
        let w = ((n.similarity - top) / TEMPERATURE).exp();
        let e = scores.entry(n.label.as_str()).or_insert((0.0, f32::MIN));
        e.0 += w;
        e.1 = e.1.max(n.similarity);
    }
    let total: f32 = scores.values().map(|s| s.0).sum();
    let best = scores
        .iter()
        .max_by(|a, b| a.1.0.total_cmp(&b.1.0).then_with(|| b.0.cmp(a.0)));
    match best {
        Some((label, (w, sim))) if total > 0.0 => (
            Some((*label).to_string()),
            (w / total) * sim.clamp(0.0, 1.0),
        ),
        _ => (None, 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(label: &str, similarity: f32) -> Neighbour {
        Neighbour {
            label: label.into(),
            similarity,
            source: "config".into(),
            text: String::new(),
        }
    }

    #[test]
    fn vote_prefers_close_examples_and_doubts_far_ones() {
        let (label, sure) = vote(&[n("a", 0.8), n("b", 0.6), n("b", 0.59)]);
        assert_eq!(label.as_deref(), Some("a"));
        assert!(sure > 0.6, "{sure}");
        // Same shape, but far away: low confidence.
        let (_, far) = vote(&[n("a", 0.2), n("b", 0.0), n("b", -0.01)]);
        assert!(far < 0.2, "{far}");
        assert_eq!(vote(&[]), (None, 0.0));
    }
}
