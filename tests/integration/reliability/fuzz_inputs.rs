//! Fuzzing files and bodies the operator (or an agent) hands to keel: whole agent templates
//! through the `agents/` loader, object bodies against each built-in kind's schema (and into
//! the store when accepted), and `.md` / `.txt` / `.csv` files through the memory import.
//! Nothing may panic; errors name the file and line, or the failing field; nothing accepted
//! is lost.

use std::path::Path;
use std::sync::Arc;

use keel::core::agents::template::{SHIPPED, Templates, load_text};
use keel::core::error::Error;
use keel::core::objects::kinds::BUILTIN;
use keel::core::objects::{Kinds, Stamp};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::fuzz::{cases, csv_text, toml_inputs};

/// A template error names this file, a line inside the text (or just past it) and a column.
fn assert_template_error(err: &Error, text: &str, path: &Path) -> Result<(), TestCaseError> {
    match err {
        Error::Config {
            file,
            line,
            column,
            message,
        } => {
            prop_assert_eq!(file.as_path(), path);
            prop_assert!(*line >= 1 && *column >= 1, "{}", err);
            prop_assert!(
                *line <= text.lines().count() + 1,
                "line {} of {}",
                line,
                text.lines().count()
            );
            prop_assert!(!message.trim().is_empty());
            // The operator sees `file:line:column: message`.
            let shown = err.to_string();
            prop_assert!(
                shown.starts_with(&format!("{}:{line}:{column}", path.display())),
                "{}",
                shown
            );
        }
        other => prop_assert!(false, "not a located config error: {:?}", other),
    }
    Ok(())
}

/// Mutations of every shipped template (tools, budgets, tiers, scopes, output schema…).
fn template_text() -> impl Strategy<Value = String> {
    (0..SHIPPED.len()).prop_flat_map(|i| toml_inputs(SHIPPED[i].1))
}

#[test]
fn agent_templates_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzzed.toml");
    let mut runner = proptest::test_runner::TestRunner::new(cases("agent_template"));
    runner
        .run(&template_text(), |text| {
            // Through the loader a workspace uses: `agents/*.toml` over the shipped roles.
            std::fs::write(&path, &text).unwrap();
            let checked = Templates::check_all(dir.path());
            let (_, result) = checked.iter().find(|(n, _)| n == "fuzzed").unwrap();
            // The shipped roles are never disturbed by a bad workspace file.
            prop_assert!(
                checked
                    .iter()
                    .filter(|(n, _)| n != "fuzzed")
                    .all(|(_, r)| r.is_ok())
            );
            let loaded = Templates::load(dir.path()).unwrap();
            match result {
                Err(e) => {
                    assert_template_error(e, &text, &path)?;
                    // Only that role is unavailable, with the same error.
                    prop_assert!(loaded.get("fuzzed").is_err());
                }
                Ok(l) => {
                    // A template that loads hashes the same every time, through both paths.
                    let again = load_text("fuzzed", &text, &path).unwrap();
                    prop_assert_eq!(&l.hash, &again.hash);
                    prop_assert_eq!(&loaded.get("fuzzed").unwrap().hash, &l.hash);
                }
            }
            Ok(())
        })
        .unwrap();
}

/// Every property name and enum value in the built-in schemas, so random bodies reach them.
fn schema_words() -> (Vec<String>, Vec<Value>) {
    fn walk(v: &Value, names: &mut Vec<String>, enums: &mut Vec<Value>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Object(props)) = m.get("properties") {
                    names.extend(props.keys().cloned());
                }
                if let Some(Value::Array(e)) = m.get("enum") {
                    enums.extend(e.iter().cloned());
                }
                for child in m.values() {
                    walk(child, names, enums);
                }
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, names, enums)),
            _ => {}
        }
    }
    let (mut names, mut enums) = (Vec::new(), Vec::new());
    for (_, schema) in BUILTIN {
        walk(
            &serde_json::from_str(schema).unwrap(),
            &mut names,
            &mut enums,
        );
    }
    names.sort();
    names.dedup();
    names.push("unexpected_field".into());
    (names, enums)
}

/// Bodies made of the schemas' own words. Strings are marked `secret-…`: a refusal must
/// never echo a value (a body may hold something private).
fn body() -> impl Strategy<Value = Value> {
    let (names, enums) = schema_words();
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-1_000i64..1_000_000).prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "secret-[a-z0-9 ]{0,10}".prop_map(Value::from),
        prop::sample::select(
            &[
                "EUR",
                "usd",
                "2026-01-31",
                "2026-13-45",
                "a@b.co",
                "not an email",
                "",
                "https://example.com/x",
            ][..]
        )
        .prop_map(Value::from),
        prop::sample::select(enums),
    ];
    let body = leaf.prop_recursive(3, 40, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(names.clone()), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        8 => body.prop_filter_map("objects mostly", |b| Some(b).filter(Value::is_object)),
        1 => body_any(),
    ]
}

/// The smallest body a schema accepts (required fields only), to mutate from.
fn minimal_valid(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match schema["type"].as_str() {
        Some("object") => {
            let mut body = serde_json::Map::new();
            for field in schema["required"].as_array().into_iter().flatten() {
                let name = field.as_str().unwrap_or_default();
                body.insert(name.into(), minimal_valid(&schema["properties"][name]));
            }
            Value::Object(body)
        }
        Some("number" | "integer") => json!(1),
        Some("boolean") => json!(true),
        Some("array") => json!([]),
        _ => match schema["pattern"].as_str() {
            Some(p) if p.contains("A-Z") => json!("EUR"),
            Some(p) if p.contains('@') => json!("a@b.co"),
            _ => json!("secret-ok"),
        },
    }
}

/// A kind and a body for it: mostly its minimal valid body with a few fields set, removed
/// or added; sometimes a body built from any schema's words.
fn kind_and_body(kinds: &Kinds) -> impl Strategy<Value = (String, Value)> {
    let seeds: Vec<(String, Value)> = kinds
        .iter()
        .map(|k| {
            (
                k.name.clone(),
                minimal_valid(k.schema.as_ref().unwrap_or(&Value::Null)),
            )
        })
        .collect();
    let (names, _) = schema_words();
    let edits = prop::collection::vec((0u8..3, prop::sample::select(names), body()), 0..4).boxed();
    prop::sample::select(seeds).prop_flat_map(move |(kind, seed)| {
        let mutated = edits.clone().prop_map(move |edits| {
            let mut body = seed.clone();
            if let Some(map) = body.as_object_mut() {
                for (op, key, value) in edits {
                    match op {
                        0 => {
                            map.remove(&key);
                        }
                        1 => {
                            map.insert(key, value);
                        }
                        // A leaf value where the schema may want another type.
                        _ => {
                            let leaf = if value.is_object() || value.is_array() {
                                json!("secret-leaf")
                            } else {
                                value
                            };
                            map.insert(key, leaf);
                        }
                    }
                }
            }
            body
        });
        (Just(kind), prop_oneof![3 => mutated, 1 => body()])
    })
}

fn body_any() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!([])),
        Just(json!("secret-not-an-object")),
        Just(json!(42)),
        Just(Value::Null)
    ]
}

#[test]
fn object_bodies_per_kind_never_panic() {
    let kinds = Kinds::builtin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = std::cell::RefCell::new(
        keel::core::store::Store::open(
            &dir.path().join("keel.db"),
            keel::core::store::Durability::Normal,
        )
        .unwrap(),
    );
    let stamp = Stamp::new(keel::core::audit::Actor::Operator, 1_000);
    let accepted = std::cell::RefCell::new(std::collections::BTreeMap::<String, usize>::new());
    let mut runner = proptest::test_runner::TestRunner::new(cases("object_body_per_kind"));
    let n = std::cell::Cell::new(0u64);
    runner
        .run(&kind_and_body(&kinds), |(kind, body)| {
            n.set(n.get() + 1);
            let schema = kinds
                .get(&kind)
                .unwrap()
                .schema
                .clone()
                .unwrap_or(Value::Null);
            match kinds.check(&kind, &body) {
                Ok(()) => {
                    // Accepted bodies are stored as given and read back unchanged.
                    let id = format!("fz-{}", n.get());
                    let mut store = store.borrow_mut();
                    store
                        .write(|tx| {
                            keel::core::objects::put(tx, &kinds, &stamp, &kind, &id, None, &body)
                        })
                        .unwrap();
                    let got = keel::core::objects::get(store.conn(), &kind, &id).unwrap();
                    prop_assert_eq!(&got.body, &body);
                    *accepted.borrow_mut().entry(kind).or_default() += 1;
                }
                Err(Error::Schema {
                    kind: k,
                    field,
                    message,
                }) => {
                    prop_assert_eq!(&k, &kind);
                    prop_assert!(!message.trim().is_empty());
                    prop_assert!(
                        !message.contains("secret-"),
                        "a value was echoed: {}",
                        message
                    );
                    // The field is `(body)` (the body as a whole), or one the body has, or
                    // one the schema requires.
                    if field != "(body)" {
                        let first = field.split(['.', '[']).next().unwrap_or_default();
                        let in_body = body.get(first).is_some();
                        let required = schema["required"]
                            .as_array()
                            .is_some_and(|r| r.iter().any(|f| f == first));
                        prop_assert!(
                            in_body || required,
                            "field {} names nothing: {}",
                            field,
                            body
                        );
                    }
                    // The store refuses it the same way and keeps nothing.
                    let refused = store.borrow_mut().write(|tx| {
                        keel::core::objects::put(
                            tx,
                            &kinds,
                            &stamp,
                            &kind,
                            "fz-refused",
                            None,
                            &body,
                        )
                    });
                    prop_assert!(
                        matches!(refused, Err(Error::Schema { .. })),
                        "{:?}",
                        refused.err()
                    );
                }
                Err(other) => prop_assert!(false, "not a schema error: {}", other),
            }
            Ok(())
        })
        .unwrap();
    let accepted = accepted.into_inner();
    eprintln!("object bodies accepted per kind: {accepted:?}");
    // The generator reaches valid bodies of every kind, not only refusals.
    assert_eq!(accepted.len(), BUILTIN.len(), "{accepted:?}");
}

/// File contents for the import: prose, CSV (quotes, newlines, ragged rows), binary,
/// non-UTF-8, blank, and over the size limit.
fn import_file() -> impl Strategy<Value = (&'static str, Vec<u8>)> {
    let ext = prop::sample::select(&["md", "txt", "csv", "markdown", "MD", "pdf", ""][..]);
    let content = prop_oneof![
        3 => "(#{0,3} ?[A-Za-zé0-9 ,.*_`-]{0,40}\n{0,2}){1,8}".prop_map(String::into_bytes),
        3 => csv_text().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => "[ \t\r\n]{0,20}".prop_map(String::into_bytes),
        1 => "[a-z ]{1,20}".prop_map(|s| s.repeat(400).into_bytes()),
        1 => Just(b"title,body\n\"unterminated, quote\nnext".to_vec()),
    ];
    (ext, content)
}

#[test]
fn memory_import_files_never_panic() {
    use keel::core::memory::import::{ImportOptions, import};
    use keel::core::memory::{Embedder, Memory, MemoryConfig};

    let dir = tempfile::tempdir().unwrap();
    let mut store = keel::core::store::Store::open(
        &dir.path().join("keel.db"),
        keel::core::store::Durability::Normal,
    )
    .unwrap();
    // A small size limit, so "too large" is reachable; the real embedding model.
    let config = MemoryConfig {
        max_text_bytes: 4_096,
        ..MemoryConfig::default()
    };
    let memory = Memory::with_embedders(
        &dir.path().join("vectors"),
        config,
        &mut store,
        vec![Arc::new(Embedder::shared().unwrap())],
        Arc::new(keel::core::clock::ManualClock::at(1_000)),
    )
    .unwrap();
    let options = ImportOptions {
        kind: "doc".into(),
        ..ImportOptions::default()
    };
    let store = std::cell::RefCell::new(store);
    let mut runner = proptest::test_runner::TestRunner::new(cases("memory_import"));
    let (n, added, skipped) = (
        std::cell::Cell::new(0),
        std::cell::Cell::new(0),
        std::cell::Cell::new(0),
    );
    runner
        .run(&import_file(), |(ext, bytes)| {
            n.set(n.get() + 1);
            let path = dir.path().join(format!("in-{}.{ext}", n.get()));
            let mut store = store.borrow_mut();
            std::fs::write(&path, &bytes).unwrap();
            let report = import(
                &mut store,
                &memory,
                &keel::core::audit::Actor::Operator,
                &path,
                &options,
            )
            .map_err(|e| {
                TestCaseError::fail(format!(
                    "a bad file must be skipped, not fail the import: {e}"
                ))
            })?;
            prop_assert!(report.added.len() + report.duplicates.len() + report.skipped.len() >= 1);
            for s in &report.skipped {
                prop_assert!(!s.reason.trim().is_empty());
            }
            added.set(added.get() + report.added.len());
            skipped.set(skipped.get() + report.skipped.len());
            let ext_ok = matches!(
                ext.to_lowercase().as_str(),
                "md" | "markdown" | "txt" | "csv"
            );
            if !ext_ok {
                prop_assert!(
                    report.added.is_empty() && report.skipped[0].reason.contains("unsupported")
                );
            } else if bytes.iter().take(8192).any(|b| *b == 0)
                && !bytes.iter().all(u8::is_ascii_whitespace)
            {
                prop_assert!(
                    report.skipped[0].reason.contains("binary"),
                    "{:?}",
                    report.skipped
                );
            } else if std::str::from_utf8(&bytes).is_err() && bytes.len() <= 4_096 {
                prop_assert!(
                    report.skipped[0].reason.contains("UTF-8"),
                    "{:?}",
                    report.skipped
                );
            }
            // What was added is there, word for word (a prose file is one item).
            for item in &report.added {
                let stored = keel::core::memory::kb::get(store.conn(), &item.id)
                    .unwrap()
                    .unwrap();
                if ext == "csv" {
                    let row: usize = item.source.rsplit_once("#row").unwrap().1.parse().unwrap();
                    prop_assert!(row >= 2, "{}", item.source);
                } else {
                    prop_assert_eq!(stored.text.as_bytes(), bytes.as_slice());
                }
            }
            Ok(())
        })
        .unwrap();
    let (added, skipped) = (added.get(), skipped.get());
    eprintln!("memory import: {added} items added, {skipped} skipped with a reason");
    assert!(added > 0 && skipped > 0);
    let store = store.into_inner();
    let check = keel::core::memory::check::check(store.conn(), &memory).unwrap();
    assert!(check.is_consistent(), "{check:?}");
}
