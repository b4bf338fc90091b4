//! The append-only, hash-chained audit log.
//!
//! Each entry's hash is sha256 over `prev_hash` and the canonical JSON of
//! `[seq, ts_ms, actor, action, subject, payload]`. Triggers refuse UPDATE and DELETE;
//! [`verify`] recomputes the chain and names the first entry that does not match, which
//! catches edits made behind the triggers' back.
//!
//! [`append`] takes the caller's transaction, so a state change and its audit entry commit
//! together (the write lock of `BEGIN IMMEDIATE` keeps the chain linear across processes).

use std::fmt::Write as _;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::canonical;
use crate::core::clock::Millis;
use crate::core::error::Result;
use crate::core::redact;

/// The hash that precedes the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did something: the operator, an agent run, a system component, or an MCP client of
/// `keel mcp serve` (by the name it gave in its handshake).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Actor {
    Operator,
    Agent { run: String },
    System { component: String },
    Client { name: String },
}

impl Actor {
    #[must_use]
    pub fn agent(run: impl Into<String>) -> Self {
        Actor::Agent { run: run.into() }
    }
    #[must_use]
    pub fn system(component: impl Into<String>) -> Self {
        Actor::System {
            component: component.into(),
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Operator => f.write_str("operator"),
            Actor::Agent { run } => write!(f, "agent:{run}"),
            Actor::System { component } => write!(f, "system:{component}"),
            Actor::Client { name } => write!(f, "mcp:{name}"),
        }
    }
}

impl From<Actor> for String {
    fn from(a: Actor) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Actor {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for Actor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "operator" {
            Ok(Actor::Operator)
        } else if let Some(run) = s.strip_prefix("agent:") {
            Ok(Actor::agent(run))
        } else if let Some(c) = s.strip_prefix("system:") {
            Ok(Actor::system(c))
        } else if let Some(name) = s.strip_prefix("mcp:") {
            Ok(Actor::Client { name: name.into() })
        } else {
            Err(format!(
                "unknown actor {s:?} (expected operator, agent:RUN, system:NAME or mcp:CLIENT)"
            ))
        }
    }
}

/// One stored audit entry.
pub use crate::protocol::AuditEntry as Entry;

/// Computes the hash of an entry from its fields.
#[must_use]
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    ts_ms: Millis,
    actor: &str,
    action: &str,
    subject: &str,
    payload: &Value,
) -> String {
    // Same bytes as prev_hash + "\n" + canonical([seq, ts_ms, actor, action, subject,
    // payload]), written directly so the payload is not cloned into an array first.
    let mut text = String::with_capacity(prev_hash.len() + 128);
    text.push_str(prev_hash);
    text.push('\n');
    let _ = write!(text, "[{seq},{ts_ms},");
    for field in [actor, action, subject] {
        canonical::write_str(field, &mut text);
        text.push(',');
    }
    canonical::write(payload, &mut text);
    text.push(']');
    canonical::sha256_hex(text.as_bytes())
}

/// Appends an entry inside the caller's transaction. Secret-looking values in `payload`
/// are redacted first. Returns the new sequence number.
pub fn append(
    tx: &Transaction<'_>,
    ts_ms: Millis,
    actor: &Actor,
    action: &str,
    subject: &str,
    payload: &Value,
) -> Result<i64> {
    let payload = redact::redact_value(payload);
    let subject = redact::redact_str(subject);
    let (prev_seq, prev_hash): (i64, String) = tx
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, GENESIS.to_string()));
    let seq = prev_seq + 1;
    let actor = actor.to_string();
    let hash = entry_hash(&prev_hash, seq, ts_ms, &actor, action, &subject, &payload);
    tx.prepare_cached(
        "INSERT INTO audit (seq, ts_ms, actor, action, subject, payload, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        seq,
        ts_ms,
        actor,
        action,
        subject,
        canonical::to_string(&payload),
        prev_hash,
        hash
    ])?;
    Ok(seq)
}

/// Outcome of [`verify`].
pub use crate::protocol::{Broken, Verification};

/// Recomputes the whole chain, streaming rows (constant memory).
pub fn verify(conn: &Connection) -> Result<Verification> {
    let mut stmt = conn.prepare(
        "SELECT seq, ts_ms, actor, action, subject, payload, prev_hash, hash FROM audit ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut expected_prev = GENESIS.to_string();
    let mut expected_seq = 1;
    let mut count = 0;
    while let Some(row) = rows.next()? {
        count += 1;
        let seq: i64 = row.get(0)?;
        let broken = |reason: String| {
            Ok(Verification {
                entries: count,
                first_broken: Some(Broken { seq, reason }),
            })
        };
        if seq != expected_seq {
            return broken(format!("sequence jumps from {} to {seq}", expected_seq - 1));
        }
        let payload_text: String = row.get(5)?;
        let Ok(payload) = serde_json::from_str::<Value>(&payload_text) else {
            return broken("payload is not valid JSON".into());
        };
        let prev_hash: String = row.get(6)?;
        let hash: String = row.get(7)?;
        if prev_hash != expected_prev {
            return broken("previous-hash link does not match the entry before it".into());
        }
        let recomputed = entry_hash(
            &prev_hash,
            seq,
            row.get(1)?,
            &row.get::<_, String>(2)?,
            &row.get::<_, String>(3)?,
            &row.get::<_, String>(4)?,
            &payload,
        );
        if recomputed != hash {
            return broken("contents do not match the entry's hash (edited after writing)".into());
        }
        expected_prev = hash;
        expected_seq += 1;
    }
    Ok(Verification {
        entries: count,
        first_broken: None,
    })
}

/// Filters for [`query`]. Empty fields match everything. `subject` and `actor` match a
/// prefix when they end in `*`.
pub use crate::protocol::AuditFilter as Filter;

/// Returns up to `limit` matching entries, newest first when `newest_first`.
pub fn query(
    conn: &Connection,
    filter: &Filter,
    limit: usize,
    newest_first: bool,
) -> Result<Vec<Entry>> {
    let mut sql = String::from(
        "SELECT seq, ts_ms, actor, action, subject, payload, prev_hash, hash FROM audit WHERE 1=1",
    );
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut text_filter = |column: &str, value: &Option<String>, sql: &mut String| {
        if let Some(v) = value {
            if let Some(prefix) = v.strip_suffix('*') {
                let _ = write!(
                    sql,
                    " AND substr({column}, 1, ?{}) = ?{}",
                    args.len() + 1,
                    args.len() + 2
                );
                args.push(rusqlite::types::Value::Integer(
                    i64::try_from(prefix.len()).unwrap_or(i64::MAX),
                ));
                args.push(rusqlite::types::Value::Text(prefix.to_string()));
            } else {
                let _ = write!(sql, " AND {column} = ?{}", args.len() + 1);
                args.push(rusqlite::types::Value::Text(v.clone()));
            }
        }
    };
    text_filter("actor", &filter.actor, &mut sql);
    text_filter("action", &filter.action, &mut sql);
    text_filter("subject", &filter.subject, &mut sql);
    let mut int_filter = |cond: &str, value: Option<i64>, sql: &mut String| {
        if let Some(v) = value {
            let _ = write!(sql, " AND {cond} ?{}", args.len() + 1);
            args.push(rusqlite::types::Value::Integer(v));
        }
    };
    int_filter("ts_ms >=", filter.since_ms, &mut sql);
    int_filter("ts_ms <", filter.until_ms, &mut sql);
    int_filter("seq <", filter.before_seq, &mut sql);
    int_filter("seq >", filter.after_seq, &mut sql);
    sql.push_str(if newest_first {
        " ORDER BY seq DESC"
    } else {
        " ORDER BY seq ASC"
    });
    let _ = write!(sql, " LIMIT {limit}");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), row_to_entry)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn row_to_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let payload_text: String = row.get(5)?;
    Ok(Entry {
        seq: row.get(0)?,
        ts_ms: row.get(1)?,
        actor: row.get(2)?,
        action: row.get(3)?,
        subject: row.get(4)?,
        payload: serde_json::from_str(&payload_text).unwrap_or(Value::String(payload_text)),
        prev_hash: row.get(6)?,
        hash: row.get(7)?,
    })
}

/// Number of entries.
pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?)
}

/// Writes every matching entry as one JSON object per line, oldest first, streaming.
pub fn export_jsonl(
    conn: &Connection,
    filter: &Filter,
    out: &mut dyn std::io::Write,
) -> Result<u64> {
    let mut written = 0u64;
    let mut page = filter.clone();
    loop {
        let batch = query(conn, &page, 5_000, false)?;
        let Some(last) = batch.last() else { break };
        page.after_seq = Some(last.seq);
        for entry in &batch {
            let line = serde_json::to_string(entry).map_err(crate::core::Error::wrap)?;
            writeln!(out, "{line}").map_err(|e| crate::core::Error::io("export", e))?;
            written += 1;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entry_hash_is_sha256_of_the_canonical_array() {
        let payload = json!({"b": [1, "x"], "a": {"z": null, "k": "v\n\"q\""}});
        let expected = {
            let body = json!([7, 1_700, "agent:r1", "object.put", "draft/ä", payload]);
            canonical::sha256_hex(format!("{GENESIS}\n{}", canonical::to_string(&body)).as_bytes())
        };
        assert_eq!(
            entry_hash(
                GENESIS,
                7,
                1_700,
                "agent:r1",
                "object.put",
                "draft/ä",
                &payload
            ),
            expected
        );
    }
}
