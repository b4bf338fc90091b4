//! keel's MCP server: the tools of [`super::tools`] over rmcp, each call sent to the core
//! handle as the client named in its handshake.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value};

use super::tools::{TOOLS, op_for, result_for};
use crate::core::handle::CoreHandle;
use crate::protocol::Op;

const INSTRUCTIONS: &str = "keel runs a one-person business. Search its memory, read its objects and their history, list and submit tasks, propose drafts (authored by you, reviewed by the operator) and see the approvals waiting. Only the operator approves or rejects, in keel's console or CLI.";

/// One MCP session's server (rmcp makes one per connection).
#[derive(Clone)]
pub struct KeelServer {
    handle: CoreHandle,
    tools: Arc<Vec<Tool>>,
}

impl KeelServer {
    #[must_use]
    pub fn new(handle: CoreHandle) -> Self {
        KeelServer {
            handle,
            tools: Arc::new(offered()),
        }
    }

    /// Runs one call: the op goes to the core as `client`; a refusal, a bad argument or a
    /// core error comes back as the tool's error, which the client's model can read.
    async fn call(&self, client: &str, tool: &str, args: &Map<String, Value>) -> CallToolResult {
        let op = match op_for(tool, args) {
            Ok(op) => op,
            Err(e) => return failed(&format!("bad arguments for {tool}: {e}")),
        };
        let request = Op::AsClient {
            client: client.to_string(),
            tool: tool.to_string(),
            request: op.map(Box::new),
        };
        match self.handle.request(request).await {
            Ok(answer) => match result_for(tool, args, answer) {
                Ok(value) => {
                    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
                    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                    if value.is_object() {
                        result.structured_content = Some(value);
                    }
                    result
                }
                Err(e) => failed(&e.to_string()),
            },
            Err(e) => failed(&e.to_string()),
        }
    }
}

fn failed(message: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.to_string())])
}

/// The tools as MCP lists them, with annotations a client's own gate can use.
fn offered() -> Vec<Tool> {
    TOOLS
        .iter()
        .map(|spec| {
            let schema = match (spec.schema)() {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            // Reads are idempotent; a proposal makes a new version (never destroys one).
            let annotations = ToolAnnotations::from_raw(
                None,
                Some(spec.read_only),
                Some(false),
                Some(spec.read_only),
                Some(false),
            );
            let mut tool = Tool::new(
                Cow::Borrowed(spec.name),
                Cow::Borrowed(spec.description),
                Arc::new(schema),
            );
            tool.annotations = Some(annotations);
            tool
        })
        .collect()
}

impl ServerHandler for KeelServer {
    fn get_info(&self) -> ServerConfig {
        let mut implementation = Implementation::from_build_env();
        implementation.name = "keel".into();
        implementation.version = env!("CARGO_PKG_VERSION").into();
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(implementation)
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let client = context.peer.peer_info().map_or_else(
            || "unnamed".to_string(),
            |info| info.client_info.name.clone(),
        );
        let args = request.arguments.unwrap_or_default();
        Ok(self.call(&client, &request.name, &args).await.into())
    }
}
