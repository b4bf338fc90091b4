//! Structured output: how a provider is asked for JSON that matches the role's schema, the
//! fallback when a server refuses that form, and reading a JSON value out of a small model's
//! answer.
//!
//! Modes, strongest first: `json_schema` (the server constrains decoding to the schema),
//! `json_object` (any JSON object), `prompt` (the schema is only in the instructions). A
//! server that answers 400 to a mode is asked again with the next weaker one; the weaker
//! mode is remembered per model (and per "with tools or not", since some servers refuse
//! the combination) only once it has worked, so an unrelated 400 never downgrades anything.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How the answer's shape is asked for; ordered strongest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    /// The schema is handed to the server, which enforces it while decoding.
    #[default]
    JsonSchema,
    /// The server is asked for a JSON object; the schema is in the instructions.
    JsonObject,
    /// Nothing is asked of the server; the schema is in the instructions.
    Prompt,
}

impl OutputMode {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OutputMode::JsonSchema => "json_schema",
            OutputMode::JsonObject => "json_object",
            OutputMode::Prompt => "prompt",
        }
    }

    /// The next weaker mode, if any.
    #[must_use]
    pub fn weaker(self) -> Option<OutputMode> {
        match self {
            OutputMode::JsonSchema => Some(OutputMode::JsonObject),
            OutputMode::JsonObject => Some(OutputMode::Prompt),
            OutputMode::Prompt => None,
        }
    }

    /// Parses a config value (`auto` means start at the strongest).
    pub fn from_config(value: &str) -> Result<OutputMode, String> {
        match value {
            "" | "auto" | "json_schema" => Ok(OutputMode::JsonSchema),
            "json_object" => Ok(OutputMode::JsonObject),
            "prompt" => Ok(OutputMode::Prompt),
            other => Err(format!(
                "structured_output {other:?} is not one of auto, json_schema, json_object, prompt"
            )),
        }
    }
}

/// The output schema a request carries (the role's), with the name servers want for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSchema {
    pub name: String,
    pub schema: Value,
}

impl OutputSchema {
    /// A name servers accept (`[a-zA-Z0-9_-]`, at most 64 characters).
    #[must_use]
    pub fn wire_name(&self) -> String {
        let n: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        if n.is_empty() { "output".into() } else { n }
    }

    /// Whether `OpenAI`'s strict mode accepts the schema: every object closes its properties
    /// and requires all of them. Strict is asked for only then (a strict request with an
    /// open schema is refused).
    #[must_use]
    pub fn strict_compatible(&self) -> bool {
        fn check(v: &Value) -> bool {
            match v {
                Value::Object(map) => {
                    if map.get("type").and_then(Value::as_str) == Some("object") {
                        let props = map.get("properties").and_then(Value::as_object);
                        let required: Vec<&str> = map
                            .get("required")
                            .and_then(Value::as_array)
                            .map(|r| r.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        let closed = map.get("additionalProperties") == Some(&Value::Bool(false));
                        let all_required =
                            props.is_none_or(|p| p.keys().all(|k| required.contains(&k.as_str())));
                        if !closed || !all_required {
                            return false;
                        }
                    }
                    map.values().all(check)
                }
                Value::Array(items) => items.iter().all(check),
                _ => true,
            }
        }
        check(&self.schema)
    }
}

/// The modes that worked per model, learned from refusals.
#[derive(Debug, Default)]
pub struct ModeMemory {
    learned: Mutex<HashMap<(String, bool), OutputMode>>,
}

impl ModeMemory {
    /// The mode to start with for `model` (`with_tools`: the request offers tools).
    #[must_use]
    pub fn start(&self, model: &str, with_tools: bool, configured: OutputMode) -> OutputMode {
        self.learned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(model.to_string(), with_tools))
            .copied()
            .unwrap_or(configured)
    }

    /// Remembers that `mode` is the strongest one `model` accepts.
    pub fn learn(&self, model: &str, with_tools: bool, mode: OutputMode) {
        self.learned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((model.to_string(), with_tools), mode);
    }

    /// Every learned fallback, for the health view.
    #[must_use]
    pub fn snapshot(&self) -> Vec<(String, bool, OutputMode)> {
        let mut v: Vec<_> = self
            .learned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|((m, t), mode)| (m.clone(), *t, *mode))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        v
    }
}

/// The schema handed to the server for decoding: the role's schema with every open-ended
/// string and array bounded so the whole answer fits in `max_tokens`. Constrained decoding
/// keeps a small model inside the grammar, but a string it never closes runs into the
/// token limit and the JSON is cut; a bound makes the grammar close it. The budget is
/// shared down the schema: an object splits its share among its required properties
/// (optional ones get a little), an array among its items. Validation still uses the
/// role's own schema.
#[must_use]
pub fn decoding_schema(schema: &Value, max_tokens: u32) -> Value {
    // Two characters per token is the pessimistic end (ids, numbers, code); a quarter of
    // that goes to keys, punctuation and the whitespace the grammar allows.
    let budget = (u64::from(max_tokens) * 3 / 2).max(64);
    let mut out = schema.clone();
    bound(&mut out, budget);
    out
}

/// What an optional property gets at most.
const OPTIONAL_SHARE: u64 = 48;
/// No open string is bounded below this.
const MIN_STRING: u64 = 16;

fn bound(node: &mut Value, share: u64) {
    let Some(map) = node.as_object_mut() else {
        return;
    };
    let ty = map.get("type").and_then(Value::as_str).unwrap_or_default();
    let fixed = ["enum", "const", "pattern", "format"]
        .iter()
        .any(|k| map.contains_key(*k));
    match ty {
        "string" if !fixed && !map.contains_key("maxLength") => {
            let min = map.get("minLength").and_then(Value::as_u64).unwrap_or(0);
            map.insert(
                "maxLength".into(),
                Value::from(share.max(min + 8).max(MIN_STRING)),
            );
        }
        // Grammars built from a schema check a number's type, not its range: a score
        // between 0 and 1 is decoded as one of its values to two decimals instead.
        "number" if !fixed => {
            if let Some(values) = range_values(map) {
                map.insert("enum".into(), Value::Array(values));
            }
        }
        "array" => {
            let min = map.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let max = if let Some(m) = map.get("maxItems").and_then(Value::as_u64) {
                m
            } else {
                let m = min.max(3);
                map.insert("maxItems".into(), Value::from(m));
                m
            };
            if let Some(items) = map.get_mut("items") {
                bound(items, share / max.max(1));
            }
        }
        _ => {
            let required: Vec<String> = map
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(props) = map.get_mut("properties").and_then(Value::as_object_mut) {
                let each = share / (required.len().max(1) as u64);
                for (name, p) in props.iter_mut() {
                    let part = if required.contains(name) {
                        each
                    } else {
                        each.min(OPTIONAL_SHARE)
                    };
                    bound(p, part);
                }
            }
        }
    }
}

/// A closed number range's values to two decimals, when there are few enough to list.
fn range_values(map: &serde_json::Map<String, Value>) -> Option<Vec<Value>> {
    let lo = map.get("minimum").and_then(Value::as_f64)?;
    let hi = map.get("maximum").and_then(Value::as_f64)?;
    #[allow(clippy::cast_possible_truncation)] // bounded by the check below
    let (lo, hi) = ((lo * 100.0).ceil() as i64, (hi * 100.0).floor() as i64);
    if hi < lo || hi - lo > 1000 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)] // at most 1,001 small integers
    let values = (lo..=hi)
        .map(|c| serde_json::Number::from_f64(c as f64 / 100.0).map_or(Value::Null, Value::Number))
        .collect();
    Some(values)
}

/// Whether a refusal may be about the output form (so a weaker mode is worth a try).
#[must_use]
pub fn refusal_may_concern_format(status: u16) -> bool {
    matches!(status, 400 | 422)
}

/// The first complete JSON value in `text`: code fences, prose before and after, and a
/// second value are ignored. `None` when no complete value starts anywhere in the text.
#[must_use]
pub fn first_json_value(text: &str) -> Option<(Value, &str)> {
    let mut from = 0;
    while let Some(off) = text[from..].find(['{', '[']) {
        let start = from + off;
        let mut values = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        if let Some(Ok(v)) = values.next() {
            let end = start + values.byte_offset();
            return Some((v, &text[start..end]));
        }
        from = start + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_complete_value_is_taken_from_prose_and_fences() {
        let (v, _) = first_json_value(
            "Sure! Here it is:\n```json\n{\"a\": [1, {\"b\": \"}\"}]}\n```\nAnything else?",
        )
        .unwrap();
        assert_eq!(v, json!({"a": [1, {"b": "}"}]}));
        let (v, _) = first_json_value("{\"x\": 1} {\"y\": 2}").unwrap();
        assert_eq!(v, json!({"x": 1}));
        // An unfinished object is skipped for a complete one after it.
        let (v, _) = first_json_value("{ broken [1, 2] tail").unwrap();
        assert_eq!(v, json!([1, 2]));
        assert!(first_json_value("{\"cut\": \"mid-str").is_none());
        assert!(first_json_value("no json here").is_none());
    }

    #[test]
    fn decoding_shares_the_budget_down_the_schema_and_keeps_fixed_strings() {
        let schema = json!({"type": "object", "required": ["body", "tags"], "properties": {
            "body": {"type": "string", "minLength": 1},
            "code": {"type": "string", "pattern": "^[a-z]+$"},
            "short": {"type": "string", "maxLength": 10},
            "note": {"type": "string"},
            "tags": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "n": {"type": "integer"}}});
        let d = decoding_schema(&schema, 800); // 1,200 characters, two required parts
        assert_eq!(d["properties"]["body"]["maxLength"], json!(600));
        assert!(d["properties"]["code"].get("maxLength").is_none());
        assert_eq!(d["properties"]["short"]["maxLength"], json!(10));
        assert_eq!(d["properties"]["note"]["maxLength"], json!(OPTIONAL_SHARE));
        assert_eq!(d["properties"]["tags"]["maxItems"], json!(3));
        assert_eq!(d["properties"]["tags"]["items"]["maxLength"], json!(200));
        assert_eq!(d["properties"]["n"], json!({"type": "integer"}));
        assert_eq!(d["required"], schema["required"]);
        let score = json!({"type": "number", "minimum": 0, "maximum": 1});
        let d = decoding_schema(&score, 100);
        let values = d["enum"].as_array().unwrap();
        assert_eq!(
            (values.len(), &values[0], &values[100]),
            (101, &json!(0.0), &json!(1.0))
        );
        let open = json!({"type": "number", "minimum": 0});
        assert!(decoding_schema(&open, 100).get("enum").is_none());
    }

    #[test]
    fn strict_is_asked_only_of_closed_schemas() {
        let open = OutputSchema {
            name: "writer".into(),
            schema: json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}}),
        };
        assert!(!open.strict_compatible());
        let closed = OutputSchema {
            name: "writer".into(),
            schema: json!({"type": "object", "required": ["a"], "additionalProperties": false,
                "properties": {"a": {"type": "object", "required": [], "additionalProperties": false, "properties": {}}}}),
        };
        assert!(closed.strict_compatible());
        assert_eq!(
            OutputSchema {
                name: "a b/c".into(),
                schema: Value::Null
            }
            .wire_name(),
            "a_b_c"
        );
    }

    #[test]
    fn a_learned_fallback_is_per_model_and_tool_use() {
        let m = ModeMemory::default();
        assert_eq!(
            m.start("x", false, OutputMode::JsonSchema),
            OutputMode::JsonSchema
        );
        m.learn("x", true, OutputMode::Prompt);
        assert_eq!(
            m.start("x", true, OutputMode::JsonSchema),
            OutputMode::Prompt
        );
        assert_eq!(
            m.start("x", false, OutputMode::JsonSchema),
            OutputMode::JsonSchema
        );
        assert_eq!(
            m.start("y", true, OutputMode::JsonSchema),
            OutputMode::JsonSchema
        );
    }
}
