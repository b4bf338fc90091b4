//! Versioned canonical business objects.
//!
//! An object is `kind/id` with a JSON body checked against its kind's schema. A write never
//! overwrites: it adds a version recording its author (an [`Actor`]), its parent version, the
//! sha256 of the canonical body and the time. History, diff and revert are first-class;
//! archiving hides an object from lists but deletes nothing.
//!
//! Writes are optimistic: each names the version it is based on (`None` to create), and a
//! stale one is refused with [`Error::Conflict`](crate::core::Error::Conflict), so no edit is
//! silently lost. Every write function takes the caller's transaction and writes its audit
//! entry in it, so other modules (agents, approvals) can change objects atomically with
//! their own state:
//!
//! ```no_run
//! # use keel::core::{objects::{self, Kinds, Stamp}, audit::Actor, store::Store};
//! # fn demo(store: &mut Store, kinds: &Kinds) -> keel::core::Result<()> {
//! let stamp = Stamp::new(Actor::Operator, 1_700_000_000_000);
//! let body = serde_json::json!({"title": "Welcome", "body": "Hello"});
//! let v1 = store.write(|tx| objects::put(tx, kinds, &stamp, "draft", "welcome", None, &body))?;
//! assert_eq!(v1.version, 1);
//! # Ok(()) }
//! ```

mod diff;
pub mod kinds;
mod read;
mod verify;
mod write;

pub use diff::{diff, diff_bodies, render};
pub use kinds::{Kind, Kinds};
pub use read::{ListFilter, Object, find, get, history, list, version};
pub use verify::{Mismatch, VersionCheck, verify};
pub use write::{Stamp, Written, archive, put, revert, unarchive};

use serde_json::Value;

use crate::core::error::{Error, Result};

/// Longest accepted object id.
pub const MAX_ID_LEN: usize = 200;

/// The subject used in audit entries and change notifications: `kind/id`.
#[must_use]
pub fn subject(kind: &str, id: &str) -> String {
    format!("{kind}/{id}")
}

/// Ids are free text without `/`, whitespace or control characters (they appear in
/// `kind/id` subjects and on command lines).
pub fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(Error::invalid(
            "object id",
            format!("{id:?} must be 1 to {MAX_ID_LEN} bytes"),
        ));
    }
    if id
        .chars()
        .any(|c| c == '/' || c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid(
            "object id",
            format!("{id:?} may not contain '/', spaces or control characters"),
        ));
    }
    Ok(())
}

/// The title shown in lists: the body's `title`, else `name`, `key` or `subject`, else the
/// first line of `text`/`body` (shortened).
#[must_use]
pub fn title_of(body: &Value) -> String {
    for key in ["title", "name", "key", "subject"] {
        if let Some(s) = body.get(key).and_then(Value::as_str)
            && !s.trim().is_empty()
        {
            return shorten(s);
        }
    }
    for key in ["text", "body"] {
        if let Some(s) = body.get(key).and_then(Value::as_str)
            && let Some(line) = s.lines().find(|l| !l.trim().is_empty())
        {
            return shorten(line);
        }
    }
    String::new()
}

fn shorten(text: &str) -> String {
    const MAX: usize = 120;
    let text = text.lines().next().unwrap_or_default().trim();
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(MAX - 1).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests;
