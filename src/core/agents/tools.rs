//! The tools an agent may call, and the seams through which the runtime reaches the rest of
//! keel: [`ToolHost`] (objects, blackboard, queue, effects) and [`MemoryRetriever`].
//!
//! The runtime checks every call against the template's capability profile before it
//! reaches a host; a host therefore never sees a call the role is not allowed to make.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::template::MemoryTier;
use crate::core::llm::ToolSpec;
use crate::core::mcp::McpToolPattern;

/// An MCP tool offered to a run's model: `spec.name` is what the model calls it by.
#[derive(Debug, Clone, PartialEq)]
pub struct McpOffer {
    pub server: String,
    pub tool: String,
    pub spec: ToolSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolName {
    MemorySearch,
    ObjectRead,
    ObjectWrite,
    BlackboardPublish,
    SpawnTask,
    ExternalAction,
}

impl ToolName {
    pub const ALL: [ToolName; 6] = [
        ToolName::MemorySearch,
        ToolName::ObjectRead,
        ToolName::ObjectWrite,
        ToolName::BlackboardPublish,
        ToolName::SpawnTask,
        ToolName::ExternalAction,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ToolName::MemorySearch => "memory_search",
            ToolName::ObjectRead => "object_read",
            ToolName::ObjectWrite => "object_write",
            ToolName::BlackboardPublish => "blackboard_publish",
            ToolName::SpawnTask => "spawn_task",
            ToolName::ExternalAction => "external_action",
        }
    }

    #[must_use]
    pub fn parse(name: &str) -> Option<ToolName> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// What the model is told about the tool.
    #[must_use]
    pub fn spec(self) -> ToolSpec {
        let (description, parameters) = match self {
            ToolName::MemorySearch => (
                "Search long-term memory. Returns items with ids, versions and scores.",
                json!({"type": "object", "required": ["query"], "properties": {
                    "query": {"type": "string"},
                    "kinds": {"type": "array", "items": {"type": "string"}},
                    "k": {"type": "integer", "minimum": 1, "maximum": 50}}}),
            ),
            ToolName::ObjectRead => (
                "Read the current version of a business object.",
                json!({"type": "object", "required": ["kind", "id"], "properties": {
                    "kind": {"type": "string"}, "id": {"type": "string"}}}),
            ),
            ToolName::ObjectWrite => (
                "Write a new version of a business object (based_on: the version you read, or null for a new object).",
                json!({"type": "object", "required": ["kind", "id", "body"], "properties": {
                    "kind": {"type": "string"}, "id": {"type": "string"},
                    "based_on": {"type": ["integer", "null"]}, "body": {"type": "object"}}}),
            ),
            ToolName::BlackboardPublish => (
                "Publish a finding on a blackboard topic for other agents.",
                json!({"type": "object", "required": ["topic", "text"], "properties": {
                    "topic": {"type": "string"}, "text": {"type": "string"}, "data": {}}}),
            ),
            ToolName::SpawnTask => (
                "Queue a task for another role.",
                json!({"type": "object", "required": ["role", "title", "input"], "properties": {
                    "role": {"type": "string"}, "title": {"type": "string"}, "input": {}}}),
            ),
            ToolName::ExternalAction => (
                "Request an external action (publish, send, pay). It goes through policy and may wait for the operator's approval.",
                json!({"type": "object", "required": ["action", "args"], "properties": {
                    "action": {"type": "string"}, "args": {"type": "object"}}}),
            ),
        };
        ToolSpec {
            name: self.as_str().to_string(),
            description: description.to_string(),
            parameters,
        }
    }
}

/// What to retrieve, already narrowed to the role's memory scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalRequest {
    pub query: String,
    pub kinds: Vec<String>,
    pub tiers: Vec<MemoryTier>,
    pub k: usize,
}

/// One retrieved item with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemorySlice {
    /// e.g. `idea/8f…`
    pub item: String,
    pub version: i64,
    pub kind: String,
    pub score: f64,
    pub text: String,
}

/// Retrieved items plus the parameters that produced them (pinned in the run's record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Retrieval {
    pub slices: Vec<MemorySlice>,
    /// k, filters, `search_k`, embedding model… whatever the retriever used.
    pub params: Value,
}

/// The memory seam: the memory module's retrieval implements this at merge.
pub trait MemoryRetriever: Send + Sync {
    fn retrieve(&self, req: &RetrievalRequest) -> crate::core::Result<Retrieval>;
}

/// How the error of an action waiting for the operator starts ([`ToolError::Pending`]).
pub const PENDING: &str = "waiting for approval";

/// A tool failure the model is told about (it may try something else).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    #[error("{0}")]
    Failed(String),
    /// The piece of keel behind this tool is not connected in this build.
    #[error("{0} is not available in this build")]
    Unavailable(String),
    /// The action waits for the operator (an approval was requested).
    #[error("waiting for approval: {0}")]
    Pending(String),
    /// The operator must decide before the run can go on (an effect that may or may not
    /// have happened): the run ends escalated.
    #[error("the operator must decide: {0}")]
    Escalate(String),
}

/// Who is calling, for authorship and audit.
#[derive(Debug, Clone, PartialEq)]
pub struct CallContext {
    pub run: String,
    pub task: String,
    pub role: String,
    /// (run, step) — with the arguments, the effects ledger's idempotency key.
    pub step: i64,
}

/// The orchestration seam: objects, blackboard, queue and effects. The runtime has already
/// checked the role's capabilities (tool allowed, object kind in scope) before calling.
pub trait ToolHost: Send + Sync {
    fn object_read(
        &self,
        cx: &CallContext,
        kind: &str,
        id: &str,
    ) -> Result<Option<(i64, Value)>, ToolError>;
    /// Writes a new version authored by `agent:<run>`; returns the version number.
    fn object_write(
        &self,
        cx: &CallContext,
        kind: &str,
        id: &str,
        based_on: Option<i64>,
        body: &Value,
    ) -> Result<i64, ToolError>;
    fn blackboard_publish(
        &self,
        cx: &CallContext,
        topic: &str,
        text: &str,
        data: &Value,
    ) -> Result<String, ToolError>;
    fn spawn_task(
        &self,
        cx: &CallContext,
        role: &str,
        title: &str,
        input: &Value,
    ) -> Result<String, ToolError>;
    /// Goes through the policy engine and the effects ledger.
    fn external_action(
        &self,
        cx: &CallContext,
        action: &str,
        args: &Value,
    ) -> Result<Value, ToolError>;
    /// The workspace's MCP servers, when this host reaches any.
    fn mcp(&self) -> Option<&crate::core::mcp::manager::Manager> {
        None
    }
    /// The MCP tools matching a role's `mcp:` entries, with their schemas (starts the
    /// servers). A host without MCP offers none.
    fn mcp_offers(&self, patterns: &[McpToolPattern]) -> Vec<McpOffer> {
        self.mcp()
            .map(|m| crate::core::mcp::offers::offers(m, patterns))
            .unwrap_or_default()
    }
    /// Calls an offered MCP tool as an external action (policy, ledger, audit). A host
    /// without MCP has none to call.
    fn mcp_call(
        &self,
        _cx: &CallContext,
        server: &str,
        tool: &str,
        _args: &Value,
    ) -> Result<Value, ToolError> {
        Err(ToolError::Unavailable(format!("MCP tool {server}/{tool}")))
    }
}
