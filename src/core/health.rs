//! `Query::Health`: what the operator needs to know is working — the workspace, the schema
//! version, the embedding model, the model providers, the schedules, the queue and the
//! audit log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::core::error::Result;
use crate::core::model_assets::{Assets, FETCH_COMMAND};
use crate::core::workspace::Workspace;
use crate::protocol::{Health, ProviderHealth};

pub use crate::core::provider_health::check_providers;

/// How long a provider check is reused: an `auto` provider is probed over the network
/// (loopback), and the console asks for health after every change.
const PROVIDER_CHECK_TTL: Duration = Duration::from_mins(1);

/// The health report for `ws`, read through `conn`.
pub fn report(ws: &Workspace, conn: &Connection) -> Result<Health> {
    Ok(Health {
        workspace: ws.root.display().to_string(),
        schema_version: crate::core::store::migrations::current(conn)?,
        embedding_model: embedding_model(&Assets::locate()),
        providers: {
            let mut rows = providers(ws)?;
            crate::core::provider_health::add_last_calls(conn, &mut rows)?;
            rows
        },
        schedules: crate::core::scheduler::cron::rows(conn)?,
        queue_paused: crate::core::queue::ops::queue_paused(conn)?,
        audit_entries: crate::core::watch::newest_seq(conn)?,
        mcp_servers: crate::core::mcp::manager::health(&ws.config.mcp, &ws.root),
    })
}

/// `present` when every model file is in place, else `missing: run …` (short: the status
/// bar shows it; `keel models status` lists the files). Whether the model has loaded is
/// the embedder's own `ModelState` event.
#[must_use]
pub fn embedding_model(assets: &Assets) -> String {
    if assets.missing().is_empty() {
        "present".into()
    } else {
        format!("missing: run `{FETCH_COMMAND}`")
    }
}

type CheckCache = Mutex<BTreeMap<PathBuf, (Instant, Vec<ProviderHealth>)>>;

static CHECKS: CheckCache = Mutex::new(BTreeMap::new());

/// One line per provider (the built-in offline one first-class and plainly labelled); a
/// provider that cannot be built says why. Reused for [`PROVIDER_CHECK_TTL`]; the newest
/// calls' figures are added fresh on every report.
fn providers(ws: &Workspace) -> Result<Vec<ProviderHealth>> {
    let key = ws.root.clone();
    if let Some((at, rows)) = CHECKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&key)
        && at.elapsed() < PROVIDER_CHECK_TTL
    {
        return Ok(rows.clone());
    }
    let rows = check_providers(&ws.config.providers)?;
    CHECKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key, (Instant::now(), rows.clone()));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_model_files_name_the_fetch_command() {
        let dir = tempfile::tempdir().unwrap();
        let state = embedding_model(&Assets::at(dir.path()));
        assert!(
            state.starts_with("missing: run `keel models fetch`"),
            "{state}"
        );
    }
}
