//! The providers' lines of the health report: each configured provider built on its own
//! (so one broken entry does not hide the rest), what keel learnt of its server (window,
//! slots, server flavour) and the figures of its newest recorded call.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::core::error::{Error, Result};
use crate::core::llm::config::{ProviderKind, Providers};
use crate::core::llm::discovery::{self, Limits};
use crate::core::llm::{ProviderConfig, Registry, RoutingConfig};
use crate::protocol::{ProviderHealth, SlotsHealth, WindowHealth};

/// How long learning one provider's limits may take in a health check (each probe is
/// bounded too; this bounds their sum, so a host that drops packets costs seconds, not
/// a minute).
const DISCOVERY_BOUND: Duration = Duration::from_secs(4);

/// One line per provider: the built-in offline one first and plainly labelled, then every
/// configured one with its status and, when its server answered, what it can take.
pub fn check_providers(configured: &Providers) -> Result<Vec<ProviderHealth>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed("cannot start the provider check", e))?;
    let mut rows = Registry::offline_only().health();
    let checks = configured.iter().map(|(name, cfg)| check_one(name, cfg));
    for row in rt.block_on(futures_util::future::join_all(checks)) {
        rows.retain(|p| p.name != row.name);
        rows.push(row);
    }
    Ok(rows)
}

async fn check_one(name: &str, cfg: &ProviderConfig) -> ProviderHealth {
    let single: Providers = std::iter::once((name.to_string(), cfg.clone())).collect();
    let reg = match Registry::from_config(&single, &RoutingConfig::default()).await {
        Ok(reg) => reg,
        Err(e) => {
            return ProviderHealth {
                name: name.to_string(),
                kind: format!("{:?}", cfg.kind).to_lowercase(),
                status: format!("error: {e}"),
                ..ProviderHealth::default()
            };
        }
    };
    let Some(mut row) = reg.health().into_iter().find(|p| p.name == name) else {
        return ProviderHealth {
            name: name.to_string(),
            status: "error: not built".into(),
            ..ProviderHealth::default()
        };
    };
    // A hosted provider builds without its key (it is read per call): say so here.
    if let Err(e) = crate::core::llm::registry::read_key(name, cfg) {
        row.status = format!("error: {e}");
    }
    let Some(provider) = reg.get(name) else {
        return row;
    };
    let Some(state) = provider.state() else {
        return row; // offline, or `auto` with nothing answering
    };
    let base = cfg.effective_base_url();
    // `auto` has just probed its server; a configured local one is asked here, since the
    // limits of a server that is down would only be defaults.
    if cfg.kind != ProviderKind::Auto && discovery::is_local(&base) {
        if !answers(&base).await {
            row.status = format!("unreachable: nothing answered at {base}");
            return row;
        }
        if !row.status.starts_with("error") {
            row.status = format!("reachable: {base}");
        }
    }
    if let Ok(limits) = tokio::time::timeout(DISCOVERY_BOUND, state.limits()).await {
        fill(&mut row, &limits);
    }
    row
}

/// Whether anything answers HTTP at `{base}/models` (any status will do).
async fn answers(base: &str) -> bool {
    let Ok(client) = reqwest::Client::builder()
        .timeout(crate::core::llm::registry::PROBE_TIMEOUT)
        .build()
    else {
        return false;
    };
    client.get(format!("{base}/models")).send().await.is_ok()
}

fn fill(row: &mut ProviderHealth, l: &Limits) {
    row.window = Some(WindowHealth {
        tokens: l.context_tokens,
        source: l.context_source.clone(),
    });
    row.slots = Some(SlotsHealth {
        max_concurrent: l.max_concurrent,
        source: l.slots_source.clone(),
    });
    row.server = Some(l.server.clone());
}

/// Adds each non-offline provider's newest recorded call: its latency and time to first
/// token, and the output mode of the newest call that asked for structured output.
pub fn add_last_calls(conn: &Connection, rows: &mut [ProviderHealth]) -> Result<()> {
    let mut newest = conn.prepare_cached(
        "SELECT latency_ms, json_extract(response, '$.first_token_ms') FROM model_calls
         WHERE provider = ?1 ORDER BY created_ms DESC LIMIT 1",
    )?;
    let mut mode = conn.prepare_cached(
        "SELECT json_extract(response, '$.output_mode') FROM model_calls
         WHERE provider = ?1 AND json_extract(response, '$.output_mode') IS NOT NULL
         ORDER BY created_ms DESC LIMIT 1",
    )?;
    for row in rows.iter_mut().filter(|r| r.kind != "offline") {
        let last: Option<(i64, Option<i64>)> = newest
            .query_row(params![row.name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((latency, first)) = last {
            row.last_latency_ms = u64::try_from(latency).ok();
            row.last_first_token_ms = first.and_then(|f| u64::try_from(f).ok());
        }
        row.output_mode = mode
            .query_row(params![row.name], |r| r.get::<_, String>(0))
            .optional()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_is_plainly_offline_and_a_broken_provider_says_why() {
        let configured: Providers = crate::core::toml_text::parse(
            "[hosted]\nkind = \"openai\"\napi_key_env = \"KEEL_TEST_SURELY_UNSET_KEY\"\n",
            std::path::Path::new("config.toml"),
        )
        .unwrap();
        let rows = check_providers(&configured).unwrap();
        let offline = rows.iter().find(|p| p.name == "offline").unwrap();
        assert!(offline.status.starts_with("offline"), "{offline:?}");
        assert!(offline.window.is_none() && offline.slots.is_none());
        let hosted = rows.iter().find(|p| p.name == "hosted").unwrap();
        assert!(
            hosted.status.starts_with("error:")
                && hosted.status.contains("KEEL_TEST_SURELY_UNSET_KEY"),
            "{hosted:?}"
        );
        // Hosted limits need no network: the defaults say where they come from.
        let window = hosted.window.as_ref().unwrap();
        assert_eq!(
            (window.tokens, window.source.as_str()),
            (128_000, "hosted default")
        );
        assert_eq!(hosted.slots.as_ref().unwrap().max_concurrent, None);
        assert_eq!(hosted.server.as_deref(), Some("hosted"));
    }

    #[test]
    fn a_local_server_that_is_down_is_unreachable_with_no_figures() {
        // A port nothing listens on: bind one, then let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let configured: Providers = crate::core::toml_text::parse(
            &format!("[local]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\n"),
            std::path::Path::new("config.toml"),
        )
        .unwrap();
        let rows = check_providers(&configured).unwrap();
        let local = rows.iter().find(|p| p.name == "local").unwrap();
        assert!(local.status.starts_with("unreachable:"), "{local:?}");
        assert!(local.window.is_none() && local.server.is_none());
    }

    #[test]
    fn the_newest_call_gives_latency_first_token_and_mode() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE model_calls (provider TEXT, latency_ms INTEGER, response TEXT, created_ms INTEGER);
             INSERT INTO model_calls VALUES ('local', 900, '{\"output_mode\":\"json_object\"}', 1);
             INSERT INTO model_calls VALUES ('local', 400, '{\"first_token_ms\":120}', 2);
             INSERT INTO model_calls VALUES ('offline', 1, '{}', 3);",
        )
        .unwrap();
        let mut rows = vec![
            ProviderHealth {
                name: "local".into(),
                kind: "openai".into(),
                ..ProviderHealth::default()
            },
            ProviderHealth {
                name: "offline".into(),
                kind: "offline".into(),
                ..ProviderHealth::default()
            },
        ];
        add_last_calls(&conn, &mut rows).unwrap();
        assert_eq!(rows[0].last_latency_ms, Some(400));
        assert_eq!(rows[0].last_first_token_ms, Some(120));
        assert_eq!(rows[0].output_mode.as_deref(), Some("json_object"));
        assert_eq!(rows[1].last_latency_ms, None);
    }
}
