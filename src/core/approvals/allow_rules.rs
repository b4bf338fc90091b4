//! Narrow "always allow" rules the operator creates from a decision: exactly this agent,
//! this action, this target. Listed and revocable; a revoked rule is kept for the record.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::json;

use crate::core::audit::{self, Actor};
use crate::core::clock::Millis;
use crate::core::error::{Error, Result};
use crate::core::ids;
use crate::core::policy::engine::StandingRules;
use crate::core::store::Store;

pub use crate::protocol::AllowRule;

/// Creates a rule in the caller's transaction (and audits it).
pub fn create(
    tx: &Transaction<'_>,
    now_ms: Millis,
    actor: &Actor,
    agent: &str,
    action: &str,
    target: &str,
    approval: Option<&str>,
) -> Result<String> {
    if *actor != Actor::Operator {
        return Err(Error::invalid(
            "always-allow rule",
            "only the operator can create one",
        ));
    }
    let id = ids::new_id();
    tx.execute(
        "INSERT INTO policy_allow_rules (id, agent, action, target, approval, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, agent, action, target, approval, now_ms],
    )?;
    audit::append(
        tx,
        now_ms,
        actor,
        "policy.always_allow",
        &format!("policy_rule/{id}"),
        &json!({"agent": agent, "action": action, "target": target, "approval": approval}),
    )?;
    Ok(id)
}

/// All rules, newest first; revoked ones only when asked.
pub fn list(conn: &Connection, include_revoked: bool) -> Result<Vec<AllowRule>> {
    let filter = if include_revoked {
        ""
    } else {
        "WHERE revoked_ms IS NULL"
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT id, agent, action, target, approval, created_ms, revoked_ms
         FROM policy_allow_rules {filter} ORDER BY created_ms DESC, id DESC"
    ))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(AllowRule {
                id: r.get(0)?,
                agent: r.get(1)?,
                action: r.get(2)?,
                target: r.get(3)?,
                approval: r.get(4)?,
                created_ms: r.get(5)?,
                revoked_ms: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Revokes rule `id`: from now on its actions need approval again.
pub fn revoke(store: &mut Store, now_ms: Millis, actor: &Actor, id: &str) -> Result<()> {
    if *actor != Actor::Operator {
        return Err(Error::invalid(
            "always-allow rule",
            "only the operator can revoke one",
        ));
    }
    store.write(|tx| {
        let revoked: Option<Option<i64>> = tx
            .query_row(
                "SELECT revoked_ms FROM policy_allow_rules WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        match revoked {
            None => {
                return Err(Error::NotFound {
                    kind: "always-allow rule".into(),
                    id: id.into(),
                });
            }
            Some(Some(_)) => {
                return Err(Error::invalid(
                    "always-allow rule",
                    format!("{id} is already revoked"),
                ));
            }
            Some(None) => {}
        }
        tx.execute(
            "UPDATE policy_allow_rules SET revoked_ms = ?1 WHERE id = ?2",
            params![now_ms, id],
        )?;
        audit::append(
            tx,
            now_ms,
            actor,
            "policy.always_allow.revoke",
            &format!("policy_rule/{id}"),
            &json!({}),
        )?;
        Ok(())
    })
}

impl StandingRules for Connection {
    fn always_allowed(&self, agent: &str, action: &str, target: &str) -> Result<Option<String>> {
        Ok(self
            .query_row(
                "SELECT id FROM policy_allow_rules
                 WHERE agent = ?1 AND action = ?2 AND target = ?3 AND revoked_ms IS NULL
                 ORDER BY created_ms LIMIT 1",
                params![agent, action, target],
                |r| r.get(0),
            )
            .optional()?)
    }
}
