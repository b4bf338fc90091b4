//! Measured outcomes flowing back into the business: analytics rows become `metric` objects
//! linked to their publication, reconciliation sums them onto the publication and onto the
//! ideas of the same topic, and writes one `outcome` memory note per publication so the
//! researcher's next ranking weighs what actually worked.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde_json::{Map, Value, json};

use crate::core::audit::Actor;
use crate::core::clock::Millis;
use crate::core::connectors::analytics::{
    self, ImportReport, MetricRecord, MetricSink, PublicationIndex,
};
use crate::core::error::Result;
use crate::core::memory::{Memory, kb};
use crate::core::objects::{self, Kinds, Stamp};
use crate::core::store::Store;

/// Publications by object id and by `slug`.
pub struct ObjectIndex {
    by_ref: BTreeMap<String, String>,
}

impl ObjectIndex {
    pub fn load(conn: &Connection) -> Result<Self> {
        let mut by_ref = BTreeMap::new();
        for p in publications(conn)? {
            if let Some(slug) = p.body.get("slug").and_then(Value::as_str) {
                by_ref.insert(slug.to_string(), p.id.clone());
            }
            by_ref.insert(p.id.clone(), p.id);
        }
        Ok(ObjectIndex { by_ref })
    }
}

impl PublicationIndex for ObjectIndex {
    fn resolve(&self, reference: &str) -> Option<String> {
        self.by_ref.get(reference.trim()).cloned()
    }
}

/// Writes metric records as `metric` objects (the record id is the object id, so a
/// re-import of the same rows changes nothing).
struct ObjectSink<'a> {
    store: &'a mut Store,
    kinds: &'a Kinds,
    stamp: Stamp,
}

impl MetricSink for ObjectSink<'_> {
    fn write(&mut self, records: &[MetricRecord]) -> Result<usize> {
        let (kinds, stamp) = (self.kinds, &self.stamp);
        self.store.write(|tx| {
            let mut changed = 0;
            for r in records {
                let body = json!({
                    "name": format!("{} {}", r.publication, r.metric),
                    "metric": r.metric,
                    "value": r.value,
                    "date": r.date,
                    "publication": r.publication,
                    "source": r.source,
                });
                let base = objects::find(tx, "metric", &r.id)?.map(|o| o.version);
                if objects::put(tx, kinds, stamp, "metric", &r.id, base, &body)?.changed {
                    changed += 1;
                }
            }
            Ok(changed)
        })
    }
}

/// Imports analytics CSV `text` (columns `publication,metric,value,date`) from `source`.
pub fn import_csv(
    store: &mut Store,
    kinds: &Kinds,
    actor: &Actor,
    now_ms: Millis,
    text: &str,
    source: &str,
) -> Result<ImportReport> {
    let index = ObjectIndex::load(store.conn())?;
    let mut sink = ObjectSink {
        store,
        kinds,
        stamp: Stamp::new(actor.clone(), now_ms),
    };
    analytics::import_csv(text, source, &index, &mut sink)
}

/// What one reconciliation changed (a protocol row: clients see it as it is).
pub use crate::protocol::Reconciled;

/// Sums every metric onto its publication (`outcomes`), onto the ideas of the same topic
/// (`evidence`), and stores one `outcome` note per measured publication in `memory`.
pub fn reconcile(
    store: &mut Store,
    kinds: &Kinds,
    memory: Option<&Memory>,
    actor: &Actor,
    now_ms: Millis,
) -> Result<Reconciled> {
    let totals = totals(store.conn())?;
    let pubs = publications(store.conn())?;
    let ideas = objects_of(store.conn(), "idea")?;
    let stamp = Stamp::new(actor.clone(), now_ms);
    let mut out = Reconciled::default();
    let mut notes = Vec::new();
    // Rank by signups: the number the goals care about.
    let mut by_signups: Vec<(&String, f64)> = totals
        .iter()
        .map(|(p, m)| (p, m.get("signups").copied().unwrap_or(0.0)))
        .collect();
    by_signups.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    store.write(|tx| {
        let mut by_topic: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for p in &pubs {
            let Some(metrics) = totals.get(&p.id) else {
                continue;
            };
            let mut body = p.body.clone();
            let outcome: Map<String, Value> =
                metrics.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            body["outcomes"] = Value::Object(outcome);
            if objects::put(tx, kinds, &stamp, "publication", &p.id, Some(p.version), &body)?
                .changed
            {
                out.publications.push(p.id.clone());
            }
            let topic = p.body.get("topic").and_then(Value::as_str).unwrap_or("");
            let signups = metrics.get("signups").copied().unwrap_or(0.0);
            by_topic
                .entry(topic.to_string())
                .or_default()
                .push((p.id.clone(), signups));
            let rank = by_signups.iter().position(|(id, _)| **id == p.id).unwrap_or(0) + 1;
            let figures = metrics
                .iter()
                .map(|(k, v)| format!("{v} {}", k.replace('_', " ")))
                .collect::<Vec<_>>()
                .join(", ");
            notes.push((
                p.id.clone(),
                p.version,
                format!(
                    "Outcome of {} \"{}\" (topic {topic}): {figures}; rank {rank} of {} by signups.",
                    p.id,
                    p.title,
                    by_signups.len()
                ),
            ));
        }
        for idea in &ideas {
            let topic = idea.body.get("topic").and_then(Value::as_str).unwrap_or("");
            let Some(evidence) = by_topic.get(topic).filter(|_| !topic.is_empty()) else {
                continue;
            };
            let mut body = idea.body.clone();
            body["evidence"] = json!({
                "publications": evidence.iter().map(|(p, _)| p).collect::<Vec<_>>(),
                "signups": evidence.iter().map(|(_, s)| s).sum::<f64>(),
            });
            if objects::put(tx, kinds, &stamp, "idea", &idea.id, Some(idea.version), &body)?
                .changed
            {
                out.ideas.push(idea.id.clone());
            }
        }
        Ok(())
    })?;
    if let Some(memory) = memory {
        for (id, _, text) in notes {
            let version = objects::get(store.conn(), "publication", &id)?.version;
            let item = kb::NewItem {
                text,
                kind: "outcome".into(),
                source: "analytics".into(),
                object: Some(crate::protocol::ObjectRef {
                    kind: "publication".into(),
                    id,
                    version,
                }),
                tags: vec!["outcome".into()],
                ..kb::NewItem::default()
            };
            if matches!(
                kb::add_or_defer(store, memory, actor, &item)?,
                kb::Added::Stored { .. }
            ) {
                out.notes += 1;
            }
        }
    }
    Ok(out)
}

/// Per publication: metric name → sum over all dates.
fn totals(conn: &Connection) -> Result<BTreeMap<String, BTreeMap<String, f64>>> {
    let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for m in objects_of(conn, "metric")? {
        let (Some(p), Some(name), Some(v)) = (
            m.body.get("publication").and_then(Value::as_str),
            m.body.get("metric").and_then(Value::as_str),
            m.body.get("value").and_then(Value::as_f64),
        ) else {
            continue;
        };
        *out.entry(p.to_string())
            .or_default()
            .entry(name.to_string())
            .or_default() += v;
    }
    Ok(out)
}

fn publications(conn: &Connection) -> Result<Vec<objects::Object>> {
    objects_of(conn, "publication")
}

fn objects_of(conn: &Connection, kind: &str) -> Result<Vec<objects::Object>> {
    let ids: Vec<String> = {
        let mut stmt =
            conn.prepare("SELECT id FROM objects WHERE kind = ?1 AND archived = 0 ORDER BY id")?;
        stmt.query_map([kind], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    ids.iter().map(|id| objects::get(conn, kind, id)).collect()
}
