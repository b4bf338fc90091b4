//! The core handle's object ops and queries: the operator writes through the console or
//! the CLI, so the actor is the operator.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::{Kinds, ListFilter, Stamp};
use crate::core::audit::Actor;
use crate::core::config::KindConfig;
use crate::core::error::Result;
use crate::core::handle::CoreContext;

/// The kinds of the workspace's config, compiled once per distinct `[kinds]` table (the
/// core thread serves many ops; user schemas need not be recompiled for each).
fn kinds(ctx: &CoreContext) -> Result<Kinds> {
    type Cache = Option<(BTreeMap<String, KindConfig>, Kinds)>;
    static CACHE: Mutex<Cache> = Mutex::new(None);
    let config = &ctx.workspace.config;
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((table, kinds)) = cache.as_ref()
        && *table == config.kinds
    {
        return Ok(kinds.clone());
    }
    let kinds = Kinds::from_config(config)?;
    *cache = Some((config.kinds.clone(), kinds.clone()));
    Ok(kinds)
}

fn stamp(ctx: &CoreContext) -> Stamp {
    Stamp::new(Actor::Operator, ctx.clock.now_ms())
}

fn changed(ctx: &CoreContext, w: &super::Written, action: &str) -> Value {
    if w.changed {
        ctx.notify(&super::subject(&w.kind, &w.id), action);
    }
    json!(w)
}

/// `Op::PutObject`. Answer: `Written`.
pub fn put(
    ctx: &mut CoreContext,
    kind: &str,
    id: &str,
    based_on: Option<i64>,
    body: &Value,
) -> Result<Value> {
    let kinds = kinds(ctx)?;
    let stamp = stamp(ctx);
    let w = ctx
        .store
        .write(|tx| super::put(tx, &kinds, &stamp, kind, id, based_on, body))?;
    Ok(changed(ctx, &w, "object.put"))
}

/// `Op::RevertObject`. Answer: `Written`.
pub fn revert(
    ctx: &mut CoreContext,
    kind: &str,
    id: &str,
    to_version: i64,
    based_on: i64,
) -> Result<Value> {
    let kinds = kinds(ctx)?;
    let stamp = stamp(ctx);
    let w = ctx
        .store
        .write(|tx| super::revert(tx, &kinds, &stamp, kind, id, to_version, based_on))?;
    Ok(changed(ctx, &w, "object.revert"))
}

/// `Op::ArchiveObject`. Answer: `Written`.
pub fn archive(ctx: &mut CoreContext, kind: &str, id: &str, based_on: i64) -> Result<Value> {
    let stamp = stamp(ctx);
    let w = ctx
        .store
        .write(|tx| super::archive(tx, &stamp, kind, id, based_on))?;
    Ok(changed(ctx, &w, "object.archive"))
}

/// `Op::UnarchiveObject`. Answer: `Written`.
pub fn unarchive(ctx: &mut CoreContext, kind: &str, id: &str, based_on: i64) -> Result<Value> {
    let stamp = stamp(ctx);
    let w = ctx
        .store
        .write(|tx| super::unarchive(tx, &stamp, kind, id, based_on))?;
    Ok(changed(ctx, &w, "object.unarchive"))
}

/// `Query::Objects`. Answer: `Page<ObjectRow>`.
pub fn list(ctx: &CoreContext, filter: &ListFilter) -> Result<Value> {
    Ok(json!(super::list(ctx.store.conn(), filter)?))
}

/// `Query::ObjectHistory`. Answer: `Vec<ObjectVersionRow>`.
pub fn history(ctx: &CoreContext, kind: &str, id: &str) -> Result<Value> {
    Ok(json!(super::history(ctx.store.conn(), kind, id)?))
}

/// `Query::ObjectDiff`. Answer: the unified diff as a string.
pub fn diff(ctx: &CoreContext, kind: &str, id: &str, from: i64, to: i64) -> Result<Value> {
    Ok(json!(super::diff(ctx.store.conn(), kind, id, from, to)?))
}
