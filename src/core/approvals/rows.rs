//! Reading approvals: the protocol's `ApprovalRow` plus the details only the core needs.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

use crate::core::error::{Error, Result};
use crate::protocol::{ApprovalRow, ObjectRef, Page};

pub use crate::protocol::ApprovalDetail;

pub(crate) const COLUMNS: &str = "id, task, agent, action, target, summary, rationale, cost_usd, \
    amount, risk, reversibility, undo_available, rule, status, created_ms, expires_ms, \
    object_kind, object_id, object_version, proposed_body, diff, memory, request_key, workflow, \
    rule_reason, on_expiry, hold_ms, send_after_ms, decided_ms, decided_by, reason, edited_body, \
    request, args, edited_version";

fn json_col(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Value>> {
    let text: Option<String> = row.get(i)?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<ApprovalDetail> {
    let object = match (
        row.get::<_, Option<String>>(16)?,
        row.get::<_, Option<String>>(17)?,
    ) {
        (Some(kind), Some(id)) => Some(ObjectRef {
            kind,
            id,
            version: row.get::<_, Option<i64>>(18)?.unwrap_or(0),
        }),
        _ => None,
    };
    let memory = json_col(row, 21)?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    Ok(ApprovalDetail {
        row: ApprovalRow {
            id: row.get(0)?,
            task: row.get(1)?,
            agent: row.get(2)?,
            action: row.get(3)?,
            target: row.get(4)?,
            summary: row.get(5)?,
            rationale: row.get(6)?,
            cost_usd: row.get(7)?,
            amount: row.get(8)?,
            risk: row.get(9)?,
            reversibility: row.get(10)?,
            undo_available: row.get(11)?,
            rule: row.get(12)?,
            status: row.get(13)?,
            created_ms: row.get(14)?,
            expires_ms: row.get(15)?,
            object,
            proposed_body: json_col(row, 19)?,
            diff: row.get(20)?,
            memory,
        },
        request_key: row.get(22)?,
        workflow: row.get(23)?,
        rule_reason: row.get(24)?,
        on_expiry: row.get(25)?,
        hold_ms: row.get(26)?,
        send_after_ms: row.get(27)?,
        decided_ms: row.get(28)?,
        decided_by: row.get(29)?,
        reason: row.get(30)?,
        edited_body: json_col(row, 31)?,
        request: json_col(row, 32)?.unwrap_or(Value::Null),
        args: json_col(row, 33)?.unwrap_or(Value::Null),
        edited_version: row.get(34)?,
    })
}

/// One approval, or `NotFound`.
pub fn get(conn: &Connection, id: &str) -> Result<ApprovalDetail> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"),
        params![id],
        from_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound {
        kind: "approval".into(),
        id: id.into(),
    })
}

/// A page of approvals: pending first (oldest first, so nothing starves), then the rest,
/// newest first.
pub fn list(
    conn: &Connection,
    pending_only: bool,
    offset: usize,
    limit: usize,
) -> Result<Page<ApprovalRow>> {
    let filter = if pending_only {
        "WHERE status = 'pending'"
    } else {
        ""
    };
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM approvals {filter}"),
        [],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM approvals {filter}
         ORDER BY status = 'pending' DESC,
                  CASE WHEN status = 'pending' THEN created_ms ELSE -created_ms END, id
         LIMIT ?1 OFFSET ?2"
    ))?;
    let items = stmt
        .query_map(
            params![
                i64::try_from(limit).unwrap_or(i64::MAX),
                i64::try_from(offset).unwrap_or(i64::MAX)
            ],
            |r| from_row(r).map(|d| d.row),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total: u64::try_from(total).unwrap_or(0),
    })
}

/// The reason of the latest rejected or cancelled approval of `task`: what the agent gets
/// back when the task is retried.
pub fn rejection_for_task(conn: &Connection, task: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT reason FROM approvals
             WHERE task = ?1 AND status IN ('rejected', 'expired', 'cancelled')
             ORDER BY decided_ms DESC LIMIT 1",
            params![task],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()?
        .flatten())
}
