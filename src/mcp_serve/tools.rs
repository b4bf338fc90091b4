//! The tools `keel mcp serve` offers, and how a call becomes one core op. Every call is sent
//! as `Op::AsClient`, so the core checks it against `[mcp.serve]` and audits it; this file
//! only shapes arguments and answers.

use serde_json::{Map, Value, json};

use crate::protocol::{Answer, NewTask, Op, Query};

/// Longest page a list tool returns.
const MAX_LIMIT: u64 = 100;

/// One offered tool: its name, what it does, its input schema, whether it only reads.
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: fn() -> Value,
    pub read_only: bool,
}

fn object(properties: &Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

fn limit() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "description": "how many (default 20)"})
}

pub const TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: "memory_search",
        description: "Search the business's memory (hybrid: meaning and keywords). Each hit says where it came from: source, the object and version it was taken from, tags, the run that wrote it, when.",
        schema: || {
            object(
                &json!({
                    "query": {"type": "string", "minLength": 1},
                    "kinds": {"type": "array", "items": {"type": "string"}, "description": "only these item kinds"},
                    "k": {"type": "integer", "minimum": 1, "maximum": 50, "description": "how many hits"}
                }),
                &["query"],
            )
        },
        read_only: true,
    },
    ToolSpec {
        name: "objects_list",
        description: "List the business's objects (drafts, contracts, customers, ideas…), newest first.",
        schema: || {
            object(
                &json!({
                    "kind": {"type": "string"},
                    "text": {"type": "string", "description": "words the title or body contains"},
                    "include_archived": {"type": "boolean"},
                    "offset": {"type": "integer", "minimum": 0},
                    "limit": limit()
                }),
                &[],
            )
        },
        read_only: true,
    },
    ToolSpec {
        name: "object_read",
        description: "Read one object: its body at its current version (or at `version`), who wrote that version and when.",
        schema: || {
            object(
                &json!({
                    "kind": {"type": "string"},
                    "id": {"type": "string"},
                    "version": {"type": "integer", "minimum": 1}
                }),
                &["kind", "id"],
            )
        },
        read_only: true,
    },
    ToolSpec {
        name: "object_history",
        description: "Every version of one object, oldest first: author (operator, agent:RUN, mcp:CLIENT), note, time, hash.",
        schema: || {
            object(
                &json!({"kind": {"type": "string"}, "id": {"type": "string"}}),
                &["kind", "id"],
            )
        },
        read_only: true,
    },
    ToolSpec {
        name: "tasks_list",
        description: "List tasks on the durable queue, newest first.",
        schema: || {
            object(
                &json!({
                    "state": {"type": "string", "enum": ["queued", "running", "waiting", "succeeded", "failed", "escalated", "cancelled"]},
                    "text": {"type": "string"},
                    "offset": {"type": "integer", "minimum": 0},
                    "limit": limit()
                }),
                &[],
            )
        },
        read_only: true,
    },
    ToolSpec {
        name: "task_show",
        description: "One task: its state, what it waits for, attempts, cost estimate.",
        schema: || object(&json!({"id": {"type": "string"}}), &["id"]),
        read_only: true,
    },
    ToolSpec {
        name: "task_submit",
        description: "Submit a task to an agent role (or a workflow). Anything it would publish, send or pay still waits for the operator's approval.",
        schema: || {
            object(
                &json!({
                    "role": {"type": "string", "description": "an agent role, e.g. researcher or writer"},
                    "workflow": {"type": "string", "description": "a workflow instead of a role, e.g. content"},
                    "title": {"type": "string"},
                    "input": {"type": "object", "description": "checked against the role's input schema"},
                    "idempotency_key": {"type": "string", "description": "submitting the same key again returns the first task"}
                }),
                &["input"],
            )
        },
        read_only: false,
    },
    ToolSpec {
        name: "draft_propose",
        description: "Propose a new version of an object (a draft, by default) authored by this client. Give `based_on`, the version you read, when the object exists; the operator reviews, edits or reverts it.",
        schema: || {
            object(
                &json!({
                    "kind": {"type": "string", "description": "default: draft"},
                    "id": {"type": "string"},
                    "body": {"type": "object"},
                    "based_on": {"type": "integer", "minimum": 1}
                }),
                &["id", "body"],
            )
        },
        read_only: false,
    },
    ToolSpec {
        name: "approvals_list",
        description: "Decisions waiting for the operator (pending first). Only the operator decides them, in keel's console or CLI.",
        schema: || {
            object(
                &json!({"pending_only": {"type": "boolean", "description": "default true"}, "limit": limit()}),
                &[],
            )
        },
        read_only: true,
    },
];

/// A bad argument, said to the client as the tool's error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadArguments(String);

fn text(args: &Map<String, Value>, key: &str) -> Result<Option<String>, BadArguments> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(BadArguments(format!("`{key}` must be a string"))),
    }
}

fn required(args: &Map<String, Value>, key: &str) -> Result<String, BadArguments> {
    text(args, key)?.ok_or_else(|| BadArguments(format!("`{key}` is required")))
}

fn number(args: &Map<String, Value>, key: &str) -> Result<Option<u64>, BadArguments> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| BadArguments(format!("`{key}` must be a whole number"))),
    }
}

fn flag(args: &Map<String, Value>, key: &str, default: bool) -> Result<bool, BadArguments> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(BadArguments(format!("`{key}` must be true or false"))),
    }
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn page(args: &Map<String, Value>) -> Result<(usize, usize), BadArguments> {
    let offset = usize_of(number(args, "offset")?.unwrap_or(0));
    let limit = usize_of(number(args, "limit")?.unwrap_or(20).clamp(1, MAX_LIMIT));
    Ok((offset, limit))
}

fn query(q: Query) -> Op {
    Op::Query { query: q }
}

/// The op a call of `tool` sends; `None` for a tool keel does not serve. `approve` and
/// `reject` are not offered, but a client that calls them anyway is sent to the core as the
/// operator's op it imitates, so the refusal comes from the core and is audited there.
pub fn op_for(tool: &str, args: &Map<String, Value>) -> Result<Option<Op>, BadArguments> {
    let i64_of = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(Some(match tool {
        "memory_search" => query(Query::MemorySearch {
            text: required(args, "query")?,
            kinds: match args.get("kinds") {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => serde_json::from_value(v.clone())
                    .map_err(|_| BadArguments("`kinds` must be a list of strings".into()))?,
            },
            k: number(args, "k")?.map(usize_of),
        }),
        "objects_list" => {
            let (offset, limit) = page(args)?;
            query(Query::Objects {
                kind: text(args, "kind")?,
                text: text(args, "text")?,
                include_archived: flag(args, "include_archived", false)?,
                offset,
                limit,
            })
        }
        "object_read" | "object_history" => query(Query::ObjectHistory {
            kind: required(args, "kind")?,
            id: required(args, "id")?,
        }),
        "tasks_list" => {
            let (offset, limit) = page(args)?;
            query(Query::Tasks {
                state: text(args, "state")?,
                text: text(args, "text")?,
                offset,
                limit,
            })
        }
        "task_show" => query(Query::Task {
            id: required(args, "id")?,
        }),
        "task_submit" => Op::SubmitTask {
            task: Box::new(new_task(args)?),
        },
        "draft_propose" => Op::PutObject {
            kind: text(args, "kind")?.unwrap_or_else(|| "draft".into()),
            id: required(args, "id")?,
            based_on: number(args, "based_on")?.map(i64_of),
            body: match args.get("body") {
                Some(body @ Value::Object(_)) => body.clone(),
                _ => return Err(BadArguments("`body` must be a JSON object".into())),
            },
        },
        "approvals_list" => {
            let (offset, limit) = page(args)?;
            query(Query::Approvals {
                pending_only: flag(args, "pending_only", true)?,
                offset,
                limit,
            })
        }
        "approve" => Op::Approve {
            id: text(args, "id")?.unwrap_or_default(),
            edited_body: None,
            always_allow: false,
        },
        "reject" => Op::Reject {
            id: text(args, "id")?.unwrap_or_default(),
            reason: text(args, "reason")?.unwrap_or_default(),
        },
        _ => return Ok(None),
    }))
}

fn new_task(args: &Map<String, Value>) -> Result<NewTask, BadArguments> {
    let input = match args.get("input") {
        Some(v @ Value::Object(_)) => v.clone(),
        None => json!({}),
        Some(_) => return Err(BadArguments("`input` must be a JSON object".into())),
    };
    let title = text(args, "title")?;
    let (role, input) = match (text(args, "workflow")?, text(args, "role")?) {
        (Some(workflow), None) => (
            "workflow".to_string(),
            json!({"workflow": workflow, "input": input}),
        ),
        (None, Some(role)) => (role, input),
        _ => {
            return Err(BadArguments(
                "give exactly one of `role` and `workflow`".into(),
            ));
        }
    };
    Ok(NewTask {
        title: title.unwrap_or_else(|| role.clone()),
        role,
        input,
        idempotency_key: text(args, "idempotency_key")?,
        tags: vec!["mcp".into()],
        ..NewTask::default()
    })
}

/// What the client gets back from `answer` to a call of `tool` (`version` for `object_read`).
pub fn result_for(
    tool: &str,
    args: &Map<String, Value>,
    answer: Answer,
) -> Result<Value, BadArguments> {
    Ok(match (tool, answer) {
        ("object_read", Answer::ObjectHistory(versions)) => {
            let wanted = number(args, "version")?;
            let found = match wanted {
                Some(v) => versions
                    .iter()
                    .find(|r| u64::try_from(r.version).ok() == Some(v)),
                None => versions.last(),
            };
            let Some(row) = found else {
                return Err(BadArguments(format!(
                    "no such version (the object has versions 1 to {})",
                    versions.len()
                )));
            };
            json!({
                "kind": args.get("kind"), "id": args.get("id"),
                "version": row.version, "current_version": versions.last().map(|r| r.version),
                "author": row.author, "created_ms": row.created_ms, "body": row.body,
            })
        }
        ("object_history", Answer::ObjectHistory(versions)) => Value::Array(
            versions
                .iter()
                .map(|r| {
                    json!({"version": r.version, "parent": r.parent, "author": r.author,
                           "note": r.note, "created_ms": r.created_ms, "hash": r.hash})
                })
                .collect(),
        ),
        (_, Answer::MemorySearch(hits)) => to_json(&*hits),
        (_, Answer::Objects(page)) => to_json(&page),
        (_, Answer::Tasks(page)) => to_json(&page),
        (_, Answer::Task(task)) => to_json(&*task),
        (_, Answer::Written(w)) => to_json(&w),
        (_, Answer::Approvals(page)) => to_json(&page),
        (_, other) => json!({"answer": other.name()}),
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
