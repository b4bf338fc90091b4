//! Reading objects: the current version, one version, the history, and filtered lists.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::error::{Error, Result};
use crate::protocol::{ObjectRow, ObjectVersionRow, Page};

/// An object at its current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object {
    pub kind: String,
    pub id: String,
    pub version: i64,
    pub title: String,
    pub archived: bool,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Author of the current version.
    pub author: String,
    pub hash: String,
    pub body: Value,
}

fn not_found(kind: &str, id: &str) -> Error {
    Error::NotFound {
        kind: kind.to_string(),
        id: id.to_string(),
    }
}

fn parse_body(text: &str) -> Value {
    // Bodies are written from serialised JSON; should one ever be damaged, show its text.
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// The current version of `kind/id`, if it exists.
pub fn find(conn: &Connection, kind: &str, id: &str) -> Result<Option<Object>> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.version, o.title, o.archived, o.created_ms, o.updated_ms, v.author, v.hash, v.body
         FROM objects o
         JOIN object_versions v ON v.kind = o.kind AND v.id = o.id AND v.version = o.version
         WHERE o.kind = ?1 AND o.id = ?2",
    )?;
    let row = stmt
        .query_row(params![kind, id], |r| {
            Ok(Object {
                kind: kind.to_string(),
                id: id.to_string(),
                version: r.get(0)?,
                title: r.get(1)?,
                archived: r.get::<_, i64>(2)? != 0,
                created_ms: r.get(3)?,
                updated_ms: r.get(4)?,
                author: r.get(5)?,
                hash: r.get(6)?,
                body: parse_body(&r.get::<_, String>(7)?),
            })
        })
        .optional()?;
    Ok(row)
}

/// The current version of `kind/id`, or [`Error::NotFound`].
pub fn get(conn: &Connection, kind: &str, id: &str) -> Result<Object> {
    find(conn, kind, id)?.ok_or_else(|| not_found(kind, id))
}

const VERSION_COLUMNS: &str = "version, parent, author, hash, note, created_ms, body";

fn version_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectVersionRow> {
    Ok(ObjectVersionRow {
        version: r.get(0)?,
        parent: r.get(1)?,
        author: r.get(2)?,
        hash: r.get(3)?,
        note: r.get(4)?,
        created_ms: r.get(5)?,
        body: parse_body(&r.get::<_, String>(6)?),
    })
}

/// One version of `kind/id`.
pub fn version(conn: &Connection, kind: &str, id: &str, version: i64) -> Result<ObjectVersionRow> {
    conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM object_versions WHERE kind = ?1 AND id = ?2 AND version = ?3"
    ))?
    .query_row(params![kind, id, version], version_row)
    .optional()?
    .ok_or_else(|| not_found(kind, &format!("{id} version {version}")))
}

/// Every version of `kind/id`, oldest first.
pub fn history(conn: &Connection, kind: &str, id: &str) -> Result<Vec<ObjectVersionRow>> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS} FROM object_versions WHERE kind = ?1 AND id = ?2 ORDER BY version"
        ))?
        .query_map(params![kind, id], version_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if rows.is_empty() {
        return Err(not_found(kind, id));
    }
    Ok(rows)
}

/// What [`list`] returns. Empty fields match everything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListFilter {
    pub kind: Option<String>,
    /// Substring of the id, the title or the current body (case-insensitive for ASCII).
    pub text: Option<String>,
    pub include_archived: bool,
    pub offset: usize,
    /// 0 means no limit.
    pub limit: usize,
}

/// Objects matching `filter`, most recently updated first, and how many match in total.
pub fn list(conn: &Connection, filter: &ListFilter) -> Result<Page<ObjectRow>> {
    let from = "FROM objects o
         JOIN object_versions v ON v.kind = o.kind AND v.id = o.id AND v.version = o.version
         WHERE (?1 IS NULL OR o.kind = ?1)
           AND (?2 OR o.archived = 0)
           AND (?3 IS NULL OR instr(lower(o.id), ?3) > 0 OR instr(lower(o.title), ?3) > 0
                OR instr(lower(v.body), ?3) > 0)";
    let text = filter.text.as_deref().map(str::to_lowercase);
    let args = params![filter.kind, filter.include_archived, text];
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) {from}"))?
        .query_row(args, |r| r.get(0))?;
    let limit = if filter.limit == 0 {
        -1
    } else {
        i64::try_from(filter.limit).unwrap_or(i64::MAX)
    };
    let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
    let items = conn
        .prepare_cached(&format!(
            "SELECT o.kind, o.id, o.version, o.title, o.archived, o.updated_ms {from}
             ORDER BY o.updated_ms DESC, o.kind, o.id LIMIT ?4 OFFSET ?5"
        ))?
        .query_map(
            params![filter.kind, filter.include_archived, text, limit, offset],
            |r| {
                Ok(ObjectRow {
                    kind: r.get(0)?,
                    id: r.get(1)?,
                    version: r.get(2)?,
                    title: r.get(3)?,
                    archived: r.get::<_, i64>(4)? != 0,
                    updated_ms: r.get(5)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total: u64::try_from(total).unwrap_or(0),
    })
}
