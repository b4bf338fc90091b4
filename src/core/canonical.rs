//! Canonical JSON (object keys sorted, no insignificant whitespace) and sha256 over it.
//! Hashes of audit entries and object versions are computed over this encoding so that
//! they do not depend on key order or formatting.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Serialises `value` with object keys sorted recursively.
#[must_use]
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// Appends the canonical encoding of `value` to `out`.
pub fn write(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(key, out);
                out.push(':');
                write(&map[key.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_str(s, out),
        other => out.push_str(&other.to_string()),
    }
}

/// Appends `text` as a JSON string literal.
pub fn write_str(text: &str, out: &mut String) {
    // Most strings (hashes, ids, actions) need no escaping: copy them as they are. serde_json
    // escapes exactly `"`, `\` and control characters below 0x20, so the output is the same.
    if !text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.reserve(text.len() + 2);
        out.push('"');
        out.push_str(text);
        out.push('"');
        return;
    }
    // Serialising a &str cannot fail; the Debug quoting fallback is only for the type system.
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => {
            let _ = std::fmt::Write::write_fmt(out, format_args!("{text:?}"));
        }
    }
}

/// Hex sha256 of `bytes`.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex sha256 of the canonical encoding of `value`.
#[must_use]
pub fn hash_value(value: &Value) -> String {
    sha256_hex(to_string(value).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_encoding() {
        let a = json!({"b": 1, "a": {"d": [1, 2], "c": "x"}});
        let b = json!({"a": {"c": "x", "d": [1, 2]}, "b": 1});
        assert_eq!(to_string(&a), r#"{"a":{"c":"x","d":[1,2]},"b":1}"#);
        assert_eq!(hash_value(&a), hash_value(&b));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Reverses the key order of every object, recursively.
    fn reorder(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .rev()
                    .map(|(k, v)| (k.clone(), reorder(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(reorder).collect()),
            other => other.clone(),
        }
    }

    proptest! {
        #[test]
        fn encoding_round_trips_and_ignores_key_order(value in json_value()) {
            let text = to_string(&value);
            let parsed: Value = serde_json::from_str(&text).unwrap();
            // Strings are quoted exactly as serde_json quotes them.
            if let Value::String(s) = &value {
                prop_assert_eq!(&text, &serde_json::to_string(s).unwrap());
            }
            prop_assert_eq!(&parsed, &value);
            prop_assert_eq!(to_string(&reorder(&value)), text);
        }
    }
}
