//! The core's protocol: `Op`s go in, `Event`s come out. Serde types only — no UI types —
//! so the console, the CLI and tests are all clients of the same handle.
//!
//! Every `Op` is submitted with a request id; the core answers with events that carry the
//! same id (`Event::Reply`/`Event::Failed`) and broadcasts state changes to every
//! subscriber.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A client's request id, echoed in the reply.
pub type RequestId = u64;

/// Commands into the core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Ask for a page of a list (tasks, runs, audit, objects, approvals…).
    Query { query: Query },
    /// Write an object version based on `based_on` (None for a new object).
    PutObject {
        kind: String,
        id: String,
        based_on: Option<i64>,
        body: Value,
    },
    /// Stop the core cleanly.
    Shutdown,
}

/// Read-only requests, answered with `Event::Reply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "query", rename_all = "snake_case")]
pub enum Query {
    AuditPage {
        before_seq: Option<i64>,
        limit: usize,
    },
    AuditVerify,
}

/// Notifications out of the core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The answer to request `id`.
    Reply { id: RequestId, body: Value },
    /// Request `id` failed; `message` is meant for the operator.
    Failed { id: RequestId, message: String },
    /// Something changed; clients refresh what they show of `subject`.
    Changed { subject: String, action: String },
    /// The core is stopping.
    ShuttingDown,
}
