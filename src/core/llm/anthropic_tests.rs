//! The Anthropic wire format: requests, full answers and streams.

use super::*;
use crate::core::llm::Message;

#[test]
fn tool_results_are_grouped_into_one_user_message() {
    let cfg = ProviderConfig {
        kind: super::super::ProviderKind::Anthropic,
        model: "m".into(),
        ..Default::default()
    };
    let p = Anthropic::new("a", &cfg).unwrap();
    let mut assistant = Message::new(Role::Assistant, "");
    assistant.tool_calls = vec![
        ToolCall {
            id: "1".into(),
            name: "x".into(),
            arguments: "{}".into(),
        },
        ToolCall {
            id: "2".into(),
            name: "y".into(),
            arguments: "{}".into(),
        },
    ];
    let req = ChatRequest {
        model: String::new(),
        messages: vec![
            Message::new(Role::System, "sys"),
            Message::new(Role::User, "hi"),
            assistant,
            Message::tool_result("1", "a"),
            Message::tool_result("2", "b"),
        ],
        tools: vec![],
        json_output: true,
        max_tokens: 10,
        context: Value::Null,
        output: None,
    };
    let body = p.body(&req, OutputMode::JsonObject);
    assert_eq!(body["messages"].as_array().unwrap().len(), 3);
    assert_eq!(body["messages"][2]["content"].as_array().unwrap().len(), 2);
    assert!(body["system"].as_str().unwrap().contains("JSON"));
}

#[test]
fn the_schema_is_enforced_as_a_forced_tool_and_its_call_is_the_answer() {
    let p = Anthropic::new("c", &ProviderConfig::default()).unwrap();
    let schema = serde_json::json!({"type": "object", "required": ["a"]});
    let req = ChatRequest {
        model: String::new(),
        messages: vec![Message::new(Role::User, "hi")],
        tools: vec![],
        json_output: true,
        max_tokens: 10,
        context: Value::Null,
        output: Some(crate::core::llm::OutputSchema {
            name: "writer".into(),
            schema: schema.clone(),
        }),
    };
    let body = p.body(&req, OutputMode::JsonSchema);
    assert_eq!(body["tool_choice"]["name"], ANSWER_TOOL);
    assert_eq!(body["tools"][0]["input_schema"], schema);
    // Prompt-only after a refusal: no tool, the instruction instead.
    let body = p.body(&req, OutputMode::Prompt);
    assert!(body.get("tools").is_none());
    let out = answer_from_tool(ChatResponse {
        text: String::new(),
        tool_calls: vec![ToolCall {
            id: "t".into(),
            name: ANSWER_TOOL.into(),
            arguments: r#"{"a":1}"#.into(),
        }],
        usage: Usage::default(),
        provider: "c".into(),
        model: String::new(),
        finish: "tool_use".into(),
        retries: 0,
        output_mode: None,
        first_token_ms: None,
    });
    assert_eq!(out.text, r#"{"a":1}"#);
    assert!(out.tool_calls.is_empty());
}
