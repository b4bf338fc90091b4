//! The blackboard: agents publish findings (JSON and text) to topics; roles that subscribe to
//! a topic get a task for every new finding. Delivery is at least once (a cursor advances in
//! the same transaction as the submissions) and deduplicated by the task idempotency key
//! `finding:<finding id>:<role>`, so a redelivery never makes a second task.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::core::audit::{self, Actor};
use crate::core::canonical;
use crate::core::clock::Millis;
use crate::core::error::{Error, Result};
use crate::core::queue::{NewTask, RoleCatalog};
use crate::protocol::{FindingRow, Page};

const CURSOR: &str = "blackboard.cursor";

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NewFinding {
    pub topic: String,
    /// The publishing role (or `operator`).
    pub author: String,
    pub text: String,
    pub data: Value,
    pub task: Option<String>,
}

/// Publishes a finding; returns its id.
pub fn publish(
    tx: &Transaction<'_>,
    now: Millis,
    actor: &Actor,
    finding: &NewFinding,
) -> Result<String> {
    if finding.topic.trim().is_empty() {
        return Err(Error::invalid("finding", "a finding needs a topic"));
    }
    let id = crate::core::ids::new_id();
    tx.execute(
        "INSERT INTO findings (id, topic, author, text, data, task, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            finding.topic,
            finding.author,
            finding.text,
            canonical::to_string(&finding.data),
            finding.task,
            now
        ],
    )?;
    audit::append(
        tx,
        now,
        actor,
        "blackboard.published",
        &format!("finding/{id}"),
        &json!({
            "topic": finding.topic, "author": finding.author, "text": finding.text, "data": finding.data,
        }),
    )?;
    Ok(id)
}

fn cursor(conn: &Connection) -> Result<i64> {
    let value: Option<String> = conn
        .query_row(
            "SELECT value FROM orchestrator_state WHERE key = ?1",
            [CURSOR],
            |r| r.get(0),
        )
        .optional()?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Whether findings wait for delivery.
pub fn pending(conn: &Connection) -> Result<bool> {
    let last: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM findings", [], |r| {
        r.get(0)
    })?;
    Ok(last > cursor(conn)?)
}

/// Turns findings published since the cursor into tasks for subscribed roles.
/// Returns the ids of new tasks.
pub fn deliver(tx: &Transaction<'_>, now: Millis, catalog: &RoleCatalog) -> Result<Vec<String>> {
    let from = cursor(tx)?;
    let findings: Vec<(i64, FindingRow)> = {
        let mut stmt = tx.prepare(
            "SELECT seq, id, topic, author, text, data, created_ms FROM findings
             WHERE seq > ?1 ORDER BY seq LIMIT 500",
        )?;
        stmt.query_map([from], |r| Ok((r.get(0)?, finding_row(r, 1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let Some(last) = findings.last().map(|f| f.0) else {
        return Ok(Vec::new());
    };
    let actor = Actor::system("blackboard");
    let mut created = Vec::new();
    for (_, finding) in &findings {
        for (role, topic) in catalog.subscriptions() {
            // A role does not get its own findings back (no feedback loops).
            if topic != finding.topic || role == finding.author {
                continue;
            }
            let task = NewTask {
                role: role.to_string(),
                title: format!(
                    "{}: {}",
                    finding.topic,
                    finding.text.chars().take(60).collect::<String>()
                ),
                input: json!({"finding": finding}),
                idempotency_key: Some(format!("finding:{}:{role}", finding.id)),
                tags: vec![format!("topic:{}", finding.topic)],
                ..NewTask::default()
            };
            match crate::core::queue::submit(tx, now, &actor, catalog, task) {
                Ok(s) if s.created => created.push(s.task.id),
                Ok(_) => {}
                // A finding that does not fit the role's input schema is recorded, not retried.
                Err(e) => {
                    audit::append(
                        tx,
                        now,
                        &actor,
                        "blackboard.undeliverable",
                        &format!("finding/{}", finding.id),
                        &json!({"role": role, "error": e.to_string()}),
                    )?;
                }
            }
        }
    }
    tx.execute(
        "INSERT INTO orchestrator_state (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![CURSOR, last.to_string()],
    )?;
    Ok(created)
}

fn finding_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<FindingRow> {
    let data: String = r.get(at + 4)?;
    Ok(FindingRow {
        id: r.get(at)?,
        topic: r.get(at + 1)?,
        author: r.get(at + 2)?,
        text: r.get(at + 3)?,
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
        created_ms: r.get(at + 5)?,
    })
}

/// A page of findings, newest first, optionally for one topic.
pub fn list(
    conn: &Connection,
    topic: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<Page<FindingRow>> {
    let total: i64 = conn.query_row(
        "SELECT count(*) FROM findings WHERE ?1 IS NULL OR topic = ?1",
        [topic],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(
        "SELECT id, topic, author, text, data, created_ms FROM findings
         WHERE ?1 IS NULL OR topic = ?1 ORDER BY seq DESC LIMIT ?2 OFFSET ?3",
    )?;
    let items = stmt
        .query_map(
            params![
                topic,
                i64::try_from(limit).unwrap_or(i64::MAX),
                i64::try_from(offset).unwrap_or(i64::MAX)
            ],
            |r| finding_row(r, 0),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total: u64::try_from(total).unwrap_or(0),
    })
}
