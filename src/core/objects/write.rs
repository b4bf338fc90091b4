//! Writing versions: put, revert, archive, unarchive. Each takes the caller's transaction,
//! checks the `based_on` version against the current one, adds a version and writes the
//! audit entry in the same transaction.

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::{Value, json};

use super::{Kinds, check_id, subject, title_of};
use crate::core::audit::{self, Actor};
use crate::core::canonical;
use crate::core::clock::Millis;
use crate::core::error::{Error, Result};

/// Who writes, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub actor: Actor,
    pub ts_ms: Millis,
}

impl Stamp {
    #[must_use]
    pub fn new(actor: Actor, ts_ms: Millis) -> Self {
        Stamp { actor, ts_ms }
    }
}

pub use crate::protocol::Written;

/// What a write needs to know about the current version.
struct Current {
    version: i64,
    archived: bool,
    hash: String,
}

fn current(tx: &Transaction<'_>, kind: &str, id: &str) -> Result<Option<Current>> {
    let mut stmt = tx.prepare_cached(
        "SELECT o.version, o.archived, v.hash FROM objects o
         JOIN object_versions v ON v.kind = o.kind AND v.id = o.id AND v.version = o.version
         WHERE o.kind = ?1 AND o.id = ?2",
    )?;
    Ok(stmt
        .query_row(params![kind, id], |r| {
            Ok(Current {
                version: r.get(0)?,
                archived: r.get::<_, i64>(1)? != 0,
                hash: r.get(2)?,
            })
        })
        .optional()?)
}

/// Refuses a stale or misdirected `based_on`.
fn check_based_on(
    kind: &str,
    id: &str,
    current: Option<&Current>,
    based_on: Option<i64>,
) -> Result<()> {
    match (current, based_on) {
        (None, Some(_)) => Err(Error::NotFound {
            kind: kind.to_string(),
            id: id.to_string(),
        }),
        (Some(c), None) => Err(Error::Conflict {
            kind: kind.to_string(),
            id: id.to_string(),
            based_on: 0,
            current: c.version,
        }),
        (Some(c), Some(b)) if b != c.version => Err(Error::Conflict {
            kind: kind.to_string(),
            id: id.to_string(),
            based_on: b,
            current: c.version,
        }),
        (None, None) | (Some(_), Some(_)) => Ok(()),
    }
}

fn existing(tx: &Transaction<'_>, kind: &str, id: &str, based_on: i64) -> Result<Current> {
    let cur = current(tx, kind, id)?;
    check_based_on(kind, id, cur.as_ref(), Some(based_on))?;
    cur.ok_or_else(|| Error::NotFound {
        kind: kind.to_string(),
        id: id.to_string(),
    })
}

fn refuse_archived(kind: &str, id: &str, cur: &Current) -> Result<()> {
    if cur.archived {
        return Err(Error::invalid(
            "write",
            format!(
                "{kind}/{id} is archived; unarchive it first (`keel objects unarchive {kind} {id} --based-on {}`)",
                cur.version
            ),
        ));
    }
    Ok(())
}

/// Creates (`based_on: None`) or updates (`based_on: Some(current version)`) an object.
/// The body is checked against the kind's schema first. Writing the body the object already
/// has changes nothing and returns `changed: false`.
pub fn put(
    tx: &Transaction<'_>,
    kinds: &Kinds,
    stamp: &Stamp,
    kind: &str,
    id: &str,
    based_on: Option<i64>,
    body: &Value,
) -> Result<Written> {
    check_id(id)?;
    kinds.check(kind, body)?;
    let cur = current(tx, kind, id)?;
    check_based_on(kind, id, cur.as_ref(), based_on)?;
    let hash = canonical::hash_value(body);
    if let Some(cur) = &cur {
        refuse_archived(kind, id, cur)?;
        if cur.hash == hash {
            return Ok(unchanged(kind, id, cur));
        }
    }
    let text =
        serde_json::to_string(body).map_err(|e| Error::invalid("object body", e.to_string()))?;
    let title = title_of(body);
    let version = add_version(tx, stamp, kind, id, cur.as_ref(), &text, &hash, "")?;
    set_current(tx, stamp, kind, id, version, false, &title)?;
    let written = Written {
        kind: kind.to_string(),
        id: id.to_string(),
        version,
        parent: cur.as_ref().map(|c| c.version),
        hash,
        changed: true,
        archived: false,
    };
    record(tx, stamp, "object.put", &written, json!({ "title": title }))?;
    Ok(written)
}

/// Adds a new version whose body equals version `to_version` (checked against today's
/// schema). History is kept: the reverted-over versions stay.
pub fn revert(
    tx: &Transaction<'_>,
    kinds: &Kinds,
    stamp: &Stamp,
    kind: &str,
    id: &str,
    to_version: i64,
    based_on: i64,
) -> Result<Written> {
    let cur = existing(tx, kind, id, based_on)?;
    refuse_archived(kind, id, &cur)?;
    let (text, hash): (String, String) = tx
        .prepare_cached(
            "SELECT body, hash FROM object_versions WHERE kind = ?1 AND id = ?2 AND version = ?3",
        )?
        .query_row(params![kind, id, to_version], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?
        .ok_or_else(|| Error::NotFound {
            kind: kind.to_string(),
            id: format!("{id} version {to_version}"),
        })?;
    let body: Value = serde_json::from_str(&text).map_err(|e| {
        Error::failed(
            format!("{kind}/{id} version {to_version} is not valid JSON"),
            e,
        )
    })?;
    kinds.check(kind, &body)?;
    if cur.hash == hash {
        return Ok(unchanged(kind, id, &cur));
    }
    let note = format!("revert to {to_version}");
    let version = add_version(tx, stamp, kind, id, Some(&cur), &text, &hash, &note)?;
    set_current(tx, stamp, kind, id, version, false, &title_of(&body))?;
    let written = Written {
        kind: kind.to_string(),
        id: id.to_string(),
        version,
        parent: Some(cur.version),
        hash,
        changed: true,
        archived: false,
    };
    record(
        tx,
        stamp,
        "object.revert",
        &written,
        json!({"reverted_to": to_version}),
    )?;
    Ok(written)
}

/// Hides an object from lists and refuses further edits until it is unarchived. Nothing is
/// deleted: a version marked `archive` records who archived it and when.
pub fn archive(
    tx: &Transaction<'_>,
    stamp: &Stamp,
    kind: &str,
    id: &str,
    based_on: i64,
) -> Result<Written> {
    set_archived(tx, stamp, kind, id, based_on, true)
}

/// Brings an archived object back.
pub fn unarchive(
    tx: &Transaction<'_>,
    stamp: &Stamp,
    kind: &str,
    id: &str,
    based_on: i64,
) -> Result<Written> {
    set_archived(tx, stamp, kind, id, based_on, false)
}

fn set_archived(
    tx: &Transaction<'_>,
    stamp: &Stamp,
    kind: &str,
    id: &str,
    based_on: i64,
    archived: bool,
) -> Result<Written> {
    let cur = existing(tx, kind, id, based_on)?;
    if cur.archived == archived {
        return Ok(unchanged(kind, id, &cur));
    }
    let (text, title): (String, String) = tx
        .prepare_cached(
            "SELECT v.body, o.title FROM object_versions v JOIN objects o ON o.kind = v.kind AND o.id = v.id
             WHERE v.kind = ?1 AND v.id = ?2 AND v.version = ?3",
        )?
        .query_row(params![kind, id, cur.version], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let note = if archived { "archive" } else { "unarchive" };
    let version = add_version(tx, stamp, kind, id, Some(&cur), &text, &cur.hash, note)?;
    set_current(tx, stamp, kind, id, version, archived, &title)?;
    let written = Written {
        kind: kind.to_string(),
        id: id.to_string(),
        version,
        parent: Some(cur.version),
        hash: cur.hash,
        changed: true,
        archived,
    };
    record(tx, stamp, &format!("object.{note}"), &written, json!({}))?;
    Ok(written)
}

fn unchanged(kind: &str, id: &str, cur: &Current) -> Written {
    Written {
        kind: kind.to_string(),
        id: id.to_string(),
        version: cur.version,
        parent: None,
        hash: cur.hash.clone(),
        changed: false,
        archived: cur.archived,
    }
}

#[allow(clippy::too_many_arguments)] // one row's columns; a struct would only rename them
fn add_version(
    tx: &Transaction<'_>,
    stamp: &Stamp,
    kind: &str,
    id: &str,
    cur: Option<&Current>,
    body: &str,
    hash: &str,
    note: &str,
) -> Result<i64> {
    let version = cur.map_or(1, |c| c.version + 1);
    tx.prepare_cached(
        "INSERT INTO object_versions (kind, id, version, parent, author, body, hash, note, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        kind,
        id,
        version,
        cur.map(|c| c.version),
        stamp.actor.to_string(),
        body,
        hash,
        note,
        stamp.ts_ms
    ])?;
    Ok(version)
}

fn set_current(
    tx: &Transaction<'_>,
    stamp: &Stamp,
    kind: &str,
    id: &str,
    version: i64,
    archived: bool,
    title: &str,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO objects (kind, id, version, archived, created_ms, updated_ms, title)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
         ON CONFLICT (kind, id) DO UPDATE SET
            version = excluded.version, archived = excluded.archived,
            updated_ms = excluded.updated_ms, title = excluded.title",
    )?
    .execute(params![
        kind,
        id,
        version,
        i64::from(archived),
        stamp.ts_ms,
        title
    ])?;
    Ok(())
}

fn record(
    tx: &Transaction<'_>,
    stamp: &Stamp,
    action: &str,
    w: &Written,
    extra: Value,
) -> Result<i64> {
    let mut payload = json!({"version": w.version, "parent": w.parent, "hash": w.hash});
    if let (Some(map), Value::Object(extra)) = (payload.as_object_mut(), extra) {
        map.extend(extra);
    }
    audit::append(
        tx,
        stamp.ts_ms,
        &stamp.actor,
        action,
        &subject(&w.kind, &w.id),
        &payload,
    )
}
