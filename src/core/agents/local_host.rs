//! The stand-alone host `keel agents run` and replay use outside the queue: objects are read
//! and versioned in `objects` / `object_versions` (checked against the kind schemas when
//! given kinds), and memory is a keyword-overlap search over current object versions. The
//! queue, the blackboard and external actions answer "not available" here: those exist only
//! for runs the coordinator drives (`crate::core::wiring`), behind the policy gate.

use std::sync::{Arc, Mutex};

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::{Value, json};

use super::tools::{
    CallContext, MemoryRetriever, MemorySlice, Retrieval, RetrievalRequest, ToolError, ToolHost,
};
use crate::core::audit::{self, Actor};
use crate::core::clock::{Clock, Millis};
use crate::core::error::{Error, Result};
use crate::core::objects::{self, Kinds, Stamp};
use crate::core::store::Store;

/// Writes a new version of `kind/id` (a new object when `based_on` is None) and audits it.
pub fn put_version(
    tx: &Transaction<'_>,
    now: Millis,
    actor: &Actor,
    kind: &str,
    id: &str,
    based_on: Option<i64>,
    body: &Value,
) -> Result<i64> {
    let current: Option<i64> = tx
        .query_row(
            "SELECT version FROM objects WHERE kind = ?1 AND id = ?2",
            [kind, id],
            |r| r.get(0),
        )
        .optional()?;
    if current != based_on {
        return Err(Error::Conflict {
            kind: kind.into(),
            id: id.into(),
            based_on: based_on.unwrap_or(0),
            current: current.unwrap_or(0),
        });
    }
    let version = current.unwrap_or(0) + 1;
    let hash = crate::core::canonical::hash_value(body);
    let title = ["title", "name", "summary"]
        .iter()
        .find_map(|k| body[*k].as_str())
        .map_or_else(|| format!("{kind}/{id}"), |t| t.chars().take(120).collect());
    tx.execute(
        "INSERT INTO object_versions (kind, id, version, parent, author, body, hash, note, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '', ?8)",
        params![kind, id, version, current, actor.to_string(), crate::core::canonical::to_string(body), hash, now],
    )?;
    tx.execute(
        "INSERT INTO objects (kind, id, version, archived, created_ms, updated_ms, title) VALUES (?1, ?2, ?3, 0, ?4, ?4, ?5)
         ON CONFLICT (kind, id) DO UPDATE SET version = excluded.version, updated_ms = excluded.updated_ms, title = excluded.title",
        params![kind, id, version, now, title],
    )?;
    audit::append(
        tx,
        now,
        actor,
        "object.put",
        &format!("{kind}/{id}"),
        &json!({"version": version, "parent": current, "hash": hash}),
    )?;
    Ok(version)
}

/// The current version of `kind/id` as a tool sees it: `None` when missing or archived.
/// Both tool hosts read objects through this.
pub fn read_current(
    conn: &rusqlite::Connection,
    kind: &str,
    id: &str,
) -> Result<Option<(i64, Value)>> {
    Ok(objects::find(conn, kind, id)?
        .filter(|o| !o.archived)
        .map(|o| (o.version, o.body)))
}

/// Objects and keyword memory on one store connection.
#[derive(Debug, Clone)]
pub struct LocalHost {
    store: Arc<Mutex<Store>>,
    clock: Arc<dyn Clock>,
    /// Object writes go through the objects module with these kinds (schemas checked,
    /// archived objects refused), as in the coordinator's host.
    kinds: Kinds,
    /// The workspace's MCP servers, when it has any.
    mcp: Option<Arc<crate::core::mcp::Manager>>,
}

impl LocalHost {
    #[must_use]
    pub fn new(store: Store, clock: Arc<dyn Clock>, kinds: Kinds) -> Self {
        LocalHost {
            store: Arc::new(Mutex::new(store)),
            clock,
            kinds,
            mcp: None,
        }
    }

    /// Offers the roles' `mcp:` tools from `mcp`'s servers.
    #[must_use]
    pub fn with_mcp(mut self, mcp: Option<Arc<crate::core::mcp::Manager>>) -> Self {
        self.mcp = mcp;
        self
    }

    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T, ToolError> {
        let mut guard = self
            .store
            .lock()
            .map_err(|_| ToolError::Failed("the store lock is poisoned".into()))?;
        f(&mut guard).map_err(|e| ToolError::Failed(e.to_string()))
    }
}

impl ToolHost for LocalHost {
    fn object_read(
        &self,
        _cx: &CallContext,
        kind: &str,
        id: &str,
    ) -> Result<Option<(i64, Value)>, ToolError> {
        self.with_store(|s| read_current(s.conn(), kind, id))
    }

    fn object_write(
        &self,
        cx: &CallContext,
        kind: &str,
        id: &str,
        based_on: Option<i64>,
        body: &Value,
    ) -> Result<i64, ToolError> {
        let stamp = Stamp::new(Actor::agent(&cx.run), self.clock.now_ms());
        self.with_store(|s| {
            s.write(|tx| objects::put(tx, &self.kinds, &stamp, kind, id, based_on, body))
                .map(|w| w.version)
        })
    }

    fn blackboard_publish(
        &self,
        _cx: &CallContext,
        _topic: &str,
        _text: &str,
        _data: &Value,
    ) -> Result<String, ToolError> {
        Err(ToolError::Unavailable("the blackboard".into()))
    }

    fn spawn_task(
        &self,
        _cx: &CallContext,
        _role: &str,
        _title: &str,
        _input: &Value,
    ) -> Result<String, ToolError> {
        Err(ToolError::Unavailable("the task queue".into()))
    }

    fn external_action(
        &self,
        _cx: &CallContext,
        _action: &str,
        _args: &Value,
    ) -> Result<Value, ToolError> {
        Err(ToolError::Unavailable(
            "the policy engine and effects ledger".into(),
        ))
    }

    fn mcp(&self) -> Option<&crate::core::mcp::manager::Manager> {
        self.mcp.as_deref()
    }

    /// Outside the queue nobody can approve: the call runs only when the policy allows it
    /// outright (read-only tools, by their annotations), through the ledger and the audit.
    fn mcp_call(
        &self,
        cx: &CallContext,
        server: &str,
        tool: &str,
        args: &Value,
    ) -> std::result::Result<Value, ToolError> {
        use crate::core::mcp::operator::{self, Approval, LedgerSlot};
        let manager = self
            .mcp
            .clone()
            .ok_or_else(|| ToolError::Unavailable(format!("MCP tool {server}/{tool}")))?;
        let read_only = manager
            .tool(server, tool)
            .map_err(|e| ToolError::Failed(e.to_string()))?
            .is_read_only();
        let step = crate::core::mcp::offers::gate_step(&cx.run, cx.step, read_only);
        let connector = crate::core::mcp::McpConnector::new(manager);
        let call = crate::core::mcp::McpCall {
            server: server.to_string(),
            tool: tool.to_string(),
            arguments: args.clone(),
        };
        let mut store = self
            .store
            .lock()
            .map_err(|_| ToolError::Failed("the store lock is poisoned".into()))?;
        let done = operator::call(
            &mut store,
            self.clock.as_ref(),
            &Actor::agent(&cx.run),
            &cx.role,
            &connector,
            &call,
            &Approval::OutsideQueue,
            LedgerSlot {
                task: &cx.task,
                step: &step,
            },
        )
        .map_err(|e| ToolError::Failed(e.to_string()))?;
        drop(store);
        crate::core::mcp::offers::for_model(
            server,
            tool,
            serde_json::to_value(done.outcome).map_err(|e| ToolError::Failed(e.to_string()))?,
        )
    }
}

impl MemoryRetriever for LocalHost {
    fn retrieve(&self, req: &RetrievalRequest) -> Result<Retrieval> {
        let guard = self
            .store
            .lock()
            .map_err(|_| Error::Other("the store lock is poisoned".into()))?;
        keyword_search(guard.conn(), req)
    }
}

/// Scores current object versions of the permitted kinds by word overlap with the query.
pub fn keyword_search(conn: &rusqlite::Connection, req: &RetrievalRequest) -> Result<Retrieval> {
    use crate::core::llm::offline_recipes::words;
    let query = words(&req.query);
    let mut stmt = conn.prepare(
        "SELECT o.kind, o.id, v.version, v.body FROM objects o JOIN object_versions v
         ON v.kind = o.kind AND v.id = o.id AND v.version = o.version WHERE o.archived = 0 AND o.kind = ?1",
    )?;
    let mut scored: Vec<MemorySlice> = Vec::new();
    for kind in &req.kinds {
        let rows = stmt.query_map([kind], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for row in rows {
            let (kind, id, version, body) = row?;
            let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let text = body_text(&value);
            let w = words(&text);
            let shared = w.intersection(&query).count();
            #[allow(clippy::cast_precision_loss)]
            let score = if w.is_empty() || query.is_empty() {
                0.0
            } else {
                shared as f64 / ((w.len() * query.len()) as f64).sqrt()
            };
            scored.push(MemorySlice {
                item: format!("{kind}/{id}"),
                version,
                kind,
                score: (score * 1000.0).round() / 1000.0,
                text,
            });
        }
    }
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.item.cmp(&b.item))
    });
    scored.truncate(req.k);
    Ok(Retrieval {
        slices: scored,
        params: json!({"retriever": "keyword-overlap (stand-in until vector memory is connected)",
            "query": req.query, "k": req.k, "kinds": req.kinds, "tiers": req.tiers}),
    })
}

/// The searchable text of an object body: contracts keep their JSON so rules can read it.
fn body_text(v: &Value) -> String {
    match v {
        Value::Object(m)
            if m.contains_key("customer")
                && (m.contains_key("lines") || m.contains_key("items")) =>
        {
            v.to_string()
        }
        Value::Object(m) => {
            let mut parts: Vec<String> = Vec::new();
            for key in [
                "title",
                "name",
                "text",
                "summary",
                "body",
                "description",
                "notes",
            ] {
                if let Some(s) = m.get(key).and_then(Value::as_str) {
                    parts.push(s.to_string());
                }
            }
            if parts.is_empty() {
                v.to_string()
            } else {
                parts.join("\n")
            }
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
