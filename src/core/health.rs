//! `Query::Health`: what the operator needs to know is working — the workspace, the schema
//! version, the embedding model, the model providers, the schedules, the queue and the
//! audit log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::core::error::{Error, Result};
use crate::core::llm::config::Providers;
use crate::core::llm::{Registry, RoutingConfig};
use crate::core::model_assets::{Assets, FETCH_COMMAND};
use crate::core::workspace::Workspace;
use crate::protocol::{Health, ProviderHealth};

/// How long a provider check is reused: an `auto` provider is probed over the network
/// (loopback), and the console asks for health after every change.
const PROVIDER_CHECK_TTL: Duration = Duration::from_mins(1);

/// The health report for `ws`, read through `conn`.
pub fn report(ws: &Workspace, conn: &Connection) -> Result<Health> {
    Ok(Health {
        workspace: ws.root.display().to_string(),
        schema_version: crate::core::store::migrations::current(conn)?,
        embedding_model: embedding_model(&Assets::locate()),
        providers: providers(ws)?,
        schedules: crate::core::scheduler::cron::rows(conn)?,
        queue_paused: crate::core::queue::ops::queue_paused(conn)?,
        audit_entries: crate::core::watch::newest_seq(conn)?,
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
/// provider that cannot be built says why. Reused for [`PROVIDER_CHECK_TTL`].
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

/// Builds each configured provider on its own, so one broken entry does not hide the rest.
pub fn check_providers(configured: &Providers) -> Result<Vec<ProviderHealth>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the provider check: {e}")))?;
    let mut rows = Registry::offline_only().health();
    for (name, cfg) in configured {
        let single: Providers = std::iter::once((name.clone(), cfg.clone())).collect();
        let built = rt.block_on(Registry::from_config(&single, &RoutingConfig::default()));
        let row = match built {
            // A hosted provider builds without its key (it is read per call): say so here.
            Ok(reg) => reg
                .health()
                .into_iter()
                .find(|p| &p.name == name)
                .map(|mut p| {
                    if let Err(e) = crate::core::llm::registry::read_key(name, cfg) {
                        p.status = format!("error: {e}");
                    }
                    p
                }),
            Err(e) => Some(ProviderHealth {
                name: name.clone(),
                kind: format!("{:?}", cfg.kind).to_lowercase(),
                status: format!("error: {e}"),
            }),
        };
        if let Some(row) = row {
            rows.retain(|p| p.name != row.name);
            rows.push(row);
        }
    }
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

    #[test]
    fn offline_is_plainly_offline_and_a_broken_provider_says_why() {
        let configured: Providers = crate::core::config::parse(
            "[hosted]\nkind = \"openai\"\napi_key_env = \"KEEL_TEST_SURELY_UNSET_KEY\"\n",
            std::path::Path::new("config.toml"),
        )
        .unwrap();
        let rows = check_providers(&configured).unwrap();
        let offline = rows.iter().find(|p| p.name == "offline").unwrap();
        assert!(offline.status.starts_with("offline"), "{offline:?}");
        let hosted = rows.iter().find(|p| p.name == "hosted").unwrap();
        assert!(
            hosted.status.starts_with("error:")
                && hosted.status.contains("KEEL_TEST_SURELY_UNSET_KEY"),
            "{hosted:?}"
        );
    }
}
