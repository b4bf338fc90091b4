//! `Op::AsClient`: requests of MCP clients of `keel mcp serve`. The core, not the MCP
//! adapter, decides what a client may do, so no door into the core can widen it:
//! - reads and writes are checked against the workspace's `[mcp.serve]` profile;
//! - deciding approvals, rules, effects, and anything else not listed here, is refused;
//! - what a client writes is authored `mcp:CLIENT`;
//! - every request, allowed or refused, gets an audit entry naming the client and the tool.

use serde_json::{Value, json};

use super::{CoreContext, dispatch};
use crate::core::audit::{self, Actor};
use crate::core::error::{Error, Result};
use crate::core::mcp::serve_profile::ServeProfile;
use crate::protocol::{Answer, Op, Query};

/// Longest client name kept (the handshake's `clientInfo.name` is the client's to choose).
const MAX_NAME: usize = 64;

/// The client's handshake name as keel records it: printable, no spaces, bounded.
#[must_use]
pub fn client_name(raw: &str) -> String {
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(MAX_NAME)
        .collect();
    if name.is_empty() {
        "unnamed".into()
    } else {
        name
    }
}

pub fn op(ctx: &mut CoreContext, client: &str, tool: &str, op: Option<Box<Op>>) -> Result<Answer> {
    let name = client_name(client);
    let actor = Actor::Client { name: name.clone() };
    let profile = ctx.workspace.config.mcp.serve.clone();
    let op = match op {
        None => Err(format!(
            "keel serves no tool {tool:?} (approvals are decided only by the operator)"
        )),
        Some(op) => {
            let op = narrowed(&profile, *op);
            allowed(&profile, &op).map(|()| op)
        }
    };
    let op = match op {
        Ok(op) => op,
        Err(reason) => {
            record(
                ctx,
                &actor,
                "mcp.serve.refused",
                tool,
                &json!({"reason": reason}),
            )?;
            return Err(Error::Refused {
                actor: actor.to_string(),
                reason,
            });
        }
    };
    let summary = summary(&op);
    let answer = match op {
        op @ (Op::PutObject { .. } | Op::SubmitTask { .. }) => dispatch::as_actor(ctx, &actor, op),
        Op::Query { query } => dispatch::answer(ctx, query),
        _ => Err(Error::Other("unreachable: checked above".into())),
    };
    let outcome = match &answer {
        Ok(a) => json!({"ok": a.name()}),
        Err(e) => json!({"error": e.to_string()}),
    };
    record(
        ctx,
        &actor,
        "mcp.serve.call",
        tool,
        &json!({"request": summary, "outcome": outcome}),
    )?;
    answer
}

fn record(
    ctx: &mut CoreContext,
    actor: &Actor,
    action: &str,
    tool: &str,
    payload: &Value,
) -> Result<()> {
    let now = ctx.clock.now_ms();
    ctx.store.write(|tx| {
        audit::append(
            tx,
            now,
            actor,
            action,
            &format!("mcp-serve/{tool}"),
            payload,
        )
    })?;
    ctx.notify("audit", action);
    Ok(())
}

/// What the audit keeps of a request: the op without bodies or task inputs (the object's
/// history and the task keep those).
fn summary(op: &Op) -> Value {
    match op {
        Op::PutObject {
            kind, id, based_on, ..
        } => json!({"op": "put_object", "kind": kind, "id": id, "based_on": based_on}),
        Op::SubmitTask { task } => json!({
            "op": "submit_task", "role": task.role, "workflow": task.workflow, "title": task.title,
        }),
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    }
}

/// A search that names no kinds searches the kinds the profile allows.
fn narrowed(profile: &ServeProfile, op: Op) -> Op {
    match (op, profile.memory_kinds()) {
        (
            Op::Query {
                query: Query::MemorySearch { text, kinds, k },
            },
            Some(allowed),
        ) if kinds.is_empty() => Op::Query {
            query: Query::MemorySearch {
                text,
                kinds: allowed.to_vec(),
                k,
            },
        },
        (op, _) => op,
    }
}

fn refuse<T>(reason: impl Into<String>) -> std::result::Result<T, String> {
    Err(reason.into())
}

/// Whether `profile` lets a client send `op`; the refusal says why.
fn allowed(profile: &ServeProfile, op: &Op) -> std::result::Result<(), String> {
    match op {
        Op::Query { query } => readable(profile, query),
        Op::PutObject { kind, .. } => {
            if profile.may_write(kind) {
                Ok(())
            } else {
                refuse(format!(
                    "[mcp.serve] write does not list {kind:?} (it lists: {})",
                    profile.write.join(", ")
                ))
            }
        }
        Op::SubmitTask { task } => {
            if task.parent.is_some() || task.stage.is_some() || task.await_approval {
                return refuse(
                    "a client submits top-level tasks only (no parent, stage or approval wait)",
                );
            }
            // A workflow is submitted as the `workflow` role naming it in its input.
            let target = match (&task.workflow, task.role.as_str()) {
                (Some(w), _) => w.as_str(),
                (None, "workflow") => task.input["workflow"].as_str().unwrap_or_default(),
                (None, role) => role,
            };
            if profile.may_submit(target) {
                Ok(())
            } else {
                refuse(format!(
                    "[mcp.serve] submit does not list {target:?} (it lists: {})",
                    profile.submit.join(", ")
                ))
            }
        }
        Op::Approve { .. }
        | Op::BatchApprove { .. }
        | Op::Reject { .. }
        | Op::CancelApproval { .. }
        | Op::SweepApprovals
        | Op::RevokeAllowRule { .. }
        | Op::UndoEffect { .. }
        | Op::CallMcpTool { .. } => refuse(
            "approvals, rules and external actions are decided only by the operator, in the console or the CLI",
        ),
        _ => {
            refuse("an MCP client may read, search, submit tasks and propose drafts, nothing else")
        }
    }
}

fn readable(profile: &ServeProfile, query: &Query) -> std::result::Result<(), String> {
    let kind_allowed = |kind: &str| {
        if profile.may_read(kind) {
            Ok(())
        } else {
            refuse(format!(
                "[mcp.serve] read does not list {kind:?} (it lists: {})",
                profile.read.join(", ")
            ))
        }
    };
    match query {
        Query::Objects {
            kind: Some(kind), ..
        }
        | Query::ObjectHistory { kind, .. }
        | Query::ObjectDiff { kind, .. } => kind_allowed(kind),
        Query::Objects { kind: None, .. } => {
            if profile.may_read_every_kind() {
                Ok(())
            } else {
                refuse("name a kind: [mcp.serve] read does not allow every kind")
            }
        }
        Query::MemorySearch { kinds, .. } => match profile.memory_kinds() {
            None => Ok(()),
            Some(allowed) if !kinds.is_empty() && kinds.iter().all(|k| allowed.contains(k)) => {
                Ok(())
            }
            Some(allowed) => refuse(format!(
                "[mcp.serve] memory allows only the kinds {}",
                allowed.join(", ")
            )),
        },
        Query::Tasks { .. }
        | Query::Task { .. }
        | Query::Approvals { .. }
        | Query::ApprovalDetail { .. } => Ok(()),
        _ => refuse("an MCP client may read objects, memory, tasks and approvals, nothing else"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_handshake_are_kept_printable_and_bounded() {
        assert_eq!(client_name("claude-code"), "claude-code");
        assert_eq!(client_name("My Agent\n"), "My-Agent-");
        assert_eq!(client_name(""), "unnamed");
        assert_eq!(client_name(&"x".repeat(200)).len(), MAX_NAME);
    }

    #[test]
    fn approvals_are_never_a_clients_to_decide_whatever_the_profile() {
        let profile = ServeProfile {
            write: vec!["*".into()],
            submit: vec!["*".into()],
            ..ServeProfile::default()
        };
        for op in [
            Op::Approve {
                id: "a".into(),
                edited_body: None,
                always_allow: true,
            },
            Op::Reject {
                id: "a".into(),
                reason: String::new(),
            },
            Op::RevokeAllowRule { id: "r".into() },
            Op::UndoEffect { id: "e".into() },
            Op::CancelTask { id: "t".into() },
        ] {
            assert!(allowed(&profile, &op).is_err(), "{op:?} was allowed");
        }
    }

    #[test]
    fn memory_searches_stay_inside_the_profiles_kinds() {
        let profile = ServeProfile {
            memory: vec!["note".into()],
            ..ServeProfile::default()
        };
        let search = |kinds: &[&str]| Query::MemorySearch {
            text: "x".into(),
            kinds: kinds.iter().map(|k| (*k).to_string()).collect(),
            k: None,
        };
        assert!(readable(&profile, &search(&["note"])).is_ok());
        assert!(readable(&profile, &search(&[])).is_err());
        let narrowed = narrowed(&profile, Op::Query { query: search(&[]) });
        assert_eq!(
            narrowed,
            Op::Query {
                query: search(&["note"])
            }
        );
        assert!(readable(&profile, &search(&["note", "contract"])).is_err());
        assert!(readable(&profile, &Query::AuditVerify).is_err());
    }
}
