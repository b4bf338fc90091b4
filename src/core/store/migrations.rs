//! Ordered, transactional schema migrations. `PRAGMA user_version` records the last one
//! applied; each migration and its version bump commit together. A database whose version
//! is newer than this build knows is refused untouched.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::APPLICATION_ID;
use crate::core::error::{Error, Result};

/// (version, name, SQL). Append only: never edit a migration that has shipped.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("migrations/0001_foundation.sql"),
    ),
    (
        2,
        "orchestrator",
        include_str!("migrations/0002_orchestrator.sql"),
    ),
    (3, "memory", include_str!("migrations/0003_memory.sql")),
    (4, "agents", include_str!("migrations/0004_agents.sql")),
    (5, "policy", include_str!("migrations/0005_policy.sql")),
    (
        6,
        "model_calls_by_provider",
        include_str!("migrations/0006_model_calls_by_provider.sql"),
    ),
];

/// The schema version this build writes.
#[must_use]
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

pub fn current(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let found = current(conn)?;
    if found > latest() {
        return Err(Error::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: latest(),
        });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Error::from_sqlite(e, "starting a migration"))?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now >= *version {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|e| Error::failed(format!("migration {version} ({name}) failed"), e))?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()
            .map_err(|e| Error::from_sqlite(e, "committing a migration"))?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}
