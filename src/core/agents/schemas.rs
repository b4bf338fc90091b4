//! Compiled JSON Schema validators, cached by a key that fixes the schema (a template hash,
//! a tool name), so a run does not recompile its output schema at every answer.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::Value;

static CACHE: LazyLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The validator for `schema`, compiled once per `key`. `key` must change whenever the
/// schema does (template hashes and tool names do).
pub fn validator(key: &str, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
    if let Ok(cache) = CACHE.lock()
        && let Some(v) = cache.get(key)
    {
        return Ok(v.clone());
    }
    let compiled = Arc::new(
        jsonschema::validator_for(schema)
            .map_err(|e| format!("the schema does not compile: {e}"))?,
    );
    if let Ok(mut cache) = CACHE.lock() {
        cache.insert(key.to_string(), compiled.clone());
    }
    Ok(compiled)
}

/// Up to `max` validation errors of `value`, each with where it is.
pub fn errors(validator: &jsonschema::Validator, value: &Value, max: usize) -> Vec<String> {
    validator
        .iter_errors(value)
        .take(max)
        .map(|e| {
            let at = e.instance_path().as_str().to_string();
            format!("at {}: {e}", if at.is_empty() { "/" } else { &at })
        })
        .collect()
}
