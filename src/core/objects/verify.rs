//! Checks that every stored object version still has the content its hash and its audit
//! entry say it had. The audit chain proves the log was not edited; this proves the versions
//! the log describes were not edited either (e.g. behind the immutability triggers' back).

use std::collections::HashMap;

use rusqlite::Connection;
use serde::Serialize;

use super::subject;
use crate::core::canonical;
use crate::core::error::Result;
use crate::core::redact;

/// One version that does not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub kind: String,
    pub id: String,
    pub version: i64,
    pub reason: String,
}

/// Outcome of [`verify`]: how many versions were checked and which did not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionCheck {
    pub versions: i64,
    pub mismatches: Vec<Mismatch>,
}

/// Recomputes each version's hash from its body and compares it with the stored hash and
/// with the hash its audit entry recorded. Reports at most `limit` mismatches.
pub fn verify(conn: &Connection, limit: usize) -> Result<VersionCheck> {
    let mut audited: HashMap<(String, i64), String> = HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT subject, json_extract(payload, '$.version'), json_extract(payload, '$.hash')
         FROM audit WHERE action LIKE 'object.%'",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if let (Ok(subject), Ok(version), Ok(hash)) = (
            row.get::<_, String>(0),
            row.get::<_, i64>(1),
            row.get::<_, String>(2),
        ) {
            audited.insert((subject, version), hash);
        }
    }
    let mut stmt = conn.prepare(
        "SELECT kind, id, version, body, hash FROM object_versions ORDER BY kind, id, version",
    )?;
    let mut rows = stmt.query([])?;
    let mut check = VersionCheck {
        versions: 0,
        mismatches: Vec::new(),
    };
    while let Some(row) = rows.next()? {
        check.versions += 1;
        let (kind, id, version): (String, String, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let (body, stored): (String, String) = (row.get(3)?, row.get(4)?);
        let reason = match serde_json::from_str(&body) {
            Err(_) => Some("the body is not valid JSON".to_string()),
            Ok(value) if canonical::hash_value(&value) != stored => {
                Some("the body does not match its stored hash (edited after writing)".to_string())
            }
            Ok(_) => match audited.get(&(redact::redact_str(&subject(&kind, &id)), version)) {
                None => Some("no audit entry records this version".to_string()),
                Some(h) if *h != stored => {
                    Some("the audit entry recorded a different hash".to_string())
                }
                Some(_) => None,
            },
        };
        if let Some(reason) = reason
            && check.mismatches.len() < limit
        {
            check.mismatches.push(Mismatch {
                kind,
                id,
                version,
                reason,
            });
        }
    }
    Ok(check)
}
