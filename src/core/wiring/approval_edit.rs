//! The operator's edit on an approval card becomes a new version of the affected object,
//! authored by the operator (`objects::put` with `based_on` = the version the card showed:
//! if the object moved on since, the approval is refused as a conflict and nothing changes).
//! The action itself then runs with the edited fields (`gate::perform_gated`).

use rusqlite::Transaction;
use serde_json::Value;

use crate::core::approvals::{self, Approved};
use crate::core::audit::Actor;
use crate::core::clock::Millis;
use crate::core::error::{Error, Result};
use crate::core::objects::{self, Kinds, Stamp};
use crate::core::store::Store;
use crate::protocol::ObjectRef;

/// The edit laid over the current body: an object edit replaces those fields, a string
/// edit replaces `body` (the same rule the action's arguments follow).
#[must_use]
pub fn merged(current: Value, edit: &Value) -> Value {
    match (current, edit) {
        (Value::Object(mut map), Value::Object(fields)) => {
            map.extend(fields.clone());
            Value::Object(map)
        }
        (Value::Object(mut map), Value::String(_)) => {
            map.insert("body".into(), edit.clone());
            Value::Object(map)
        }
        (_, edit) => edit.clone(),
    }
}

/// Writes the operator's edit of `object` as its next version; returns the version.
pub fn write_edit(
    tx: &Transaction<'_>,
    kinds: &Kinds,
    now: Millis,
    object: &ObjectRef,
    edit: &Value,
) -> Result<i64> {
    let current = objects::find(tx, &object.kind, &object.id)?.ok_or_else(|| Error::NotFound {
        kind: object.kind.clone(),
        id: object.id.clone(),
    })?;
    let body = merged(current.body, edit);
    let stamp = Stamp::new(Actor::Operator, now);
    objects::put(
        tx,
        kinds,
        &stamp,
        &object.kind,
        &object.id,
        Some(object.version),
        &body,
    )
    .map(|w| w.version)
}

/// `approvals::approve_with` whose edit, if any, is written as an operator version of the
/// card's object.
/// `kinds` is the workspace's table (`agents::service::kinds_with_outputs`, cached by the
/// core handle).
pub fn approve(
    kinds: &Kinds,
    store: &mut Store,
    now: Millis,
    id: &str,
    edited_body: Option<&Value>,
    always_allow: bool,
) -> Result<Approved> {
    let writer = |tx: &Transaction<'_>, object: &ObjectRef, body: &Value| {
        write_edit(tx, kinds, now, object, body)
    };
    approvals::approve_with(
        store,
        now,
        &Actor::Operator,
        id,
        edited_body,
        always_allow,
        Some(&writer),
    )
}
