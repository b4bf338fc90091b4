//! Object kinds and their JSON Schemas.
//!
//! The built-in kinds' schemas live in `assets/schemas/*.json` and are compiled in; user
//! kinds come from `[kinds.NAME]` in config.toml. Every body is a JSON object checked against
//! its kind's schema; a failure names the field (`price.amount`, `tags[2]`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::core::config::Config;
use crate::core::error::{Error, Result};

/// (name, schema) of the built-in kinds.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "customer",
        include_str!("../../../assets/schemas/customer.json"),
    ),
    ("offer", include_str!("../../../assets/schemas/offer.json")),
    ("idea", include_str!("../../../assets/schemas/idea.json")),
    ("draft", include_str!("../../../assets/schemas/draft.json")),
    (
        "publication",
        include_str!("../../../assets/schemas/publication.json"),
    ),
    (
        "contract",
        include_str!("../../../assets/schemas/contract.json"),
    ),
    (
        "preference",
        include_str!("../../../assets/schemas/preference.json"),
    ),
    ("note", include_str!("../../../assets/schemas/note.json")),
    (
        "metric",
        include_str!("../../../assets/schemas/metric.json"),
    ),
];

/// One kind: its name, description, schema and compiled validator.
#[derive(Clone)]
pub struct Kind {
    pub name: String,
    pub description: String,
    pub builtin: bool,
    /// The JSON Schema bodies must satisfy (`None`: any JSON object).
    pub schema: Option<Value>,
    validator: Option<Arc<Validator>>,
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kind")
            .field("name", &self.name)
            .field("builtin", &self.builtin)
            .finish_non_exhaustive()
    }
}

/// The kinds a workspace knows: the built-in ones plus those from its config.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Kinds {
    kinds: Arc<BTreeMap<String, Arc<Kind>>>,
}

static BUILTIN_KINDS: LazyLock<std::result::Result<Kinds, String>> = LazyLock::new(|| {
    compile_builtin().map(|map| Kinds {
        kinds: Arc::new(map),
    })
});

fn compile_builtin() -> std::result::Result<BTreeMap<String, Arc<Kind>>, String> {
    let mut map = BTreeMap::new();
    for (name, text) in BUILTIN {
        let schema: Value = serde_json::from_str(text)
            .map_err(|e| format!("built-in schema for {name} is not JSON: {e}"))?;
        let validator = compile(&schema).map_err(|e| format!("built-in schema {name}: {e}"))?;
        let description = schema["description"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        map.insert(
            (*name).to_string(),
            Arc::new(Kind {
                name: (*name).to_string(),
                description,
                builtin: true,
                schema: Some(schema),
                validator: Some(Arc::new(validator)),
            }),
        );
    }
    Ok(map)
}

fn compile(schema: &Value) -> std::result::Result<Validator, String> {
    jsonschema::validator_for(schema).map_err(|e| e.masked().to_string())
}

impl Kinds {
    /// The built-in kinds only.
    pub fn builtin() -> Result<Self> {
        BUILTIN_KINDS.clone().map_err(Error::Other)
    }

    /// The built-in kinds plus `[kinds.NAME]` from `config`.
    pub fn from_config(config: &Config) -> Result<Self> {
        let builtin = Self::builtin()?;
        if config.kinds.is_empty() {
            return Ok(builtin);
        }
        let mut map = (*builtin.kinds).clone();
        for (name, kind) in &config.kinds {
            let user = user_kind(name, kind).map_err(|message| Error::Invalid {
                what: format!("kind {name:?} in config.toml"),
                message,
            })?;
            map.insert(name.clone(), Arc::new(user));
        }
        Ok(Kinds {
            kinds: Arc::new(map),
        })
    }

    /// These kinds plus `name` checked against `schema` (an agent role's output kind). A
    /// kind already known keeps its own schema.
    pub fn with_kind(&self, name: &str, description: &str, schema: &Value) -> Result<Self> {
        if self.kinds.contains_key(name) {
            return Ok(self.clone());
        }
        check_kind_name(name).map_err(|message| Error::Invalid {
            what: format!("kind {name:?}"),
            message,
        })?;
        let validator = compile(schema).map_err(|message| Error::Invalid {
            what: format!("schema of kind {name:?}"),
            message,
        })?;
        let mut map = (*self.kinds).clone();
        map.insert(
            name.to_string(),
            Arc::new(Kind {
                name: name.to_string(),
                description: description.to_string(),
                builtin: false,
                schema: Some(schema.clone()),
                validator: Some(Arc::new(validator)),
            }),
        );
        Ok(Kinds {
            kinds: Arc::new(map),
        })
    }

    /// The kind called `name`, or an error listing the known ones.
    pub fn get(&self, name: &str) -> Result<&Kind> {
        self.kinds.get(name).map(AsRef::as_ref).ok_or_else(|| {
            Error::invalid(
                "kind",
                format!(
                    "unknown kind {name:?} (known: {}; add others under [kinds.NAME] in config.toml)",
                    self.names().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Kind> {
        self.kinds.values().map(AsRef::as_ref)
    }

    /// Checks `body` against the schema of `kind`. The error names the first failing field
    /// (and how many other problems there are); values are never echoed, since a body may
    /// hold something private.
    pub fn check(&self, kind: &str, body: &Value) -> Result<()> {
        let k = self.get(kind)?;
        if !body.is_object() {
            return Err(Error::Schema {
                kind: kind.to_string(),
                field: "(body)".into(),
                message: "the body must be a JSON object".into(),
            });
        }
        let Some(validator) = &k.validator else {
            return Ok(());
        };
        let mut errors = validator.iter_errors(body);
        let Some(first) = errors.next() else {
            return Ok(());
        };
        let others = errors.count();
        let mut message = first.masked().to_string();
        if others > 0 {
            let _ = write!(
                message,
                " (and {others} more problem{})",
                if others == 1 { "" } else { "s" }
            );
        }
        Err(Error::Schema {
            kind: kind.to_string(),
            field: field_path(&first),
            message,
        })
    }
}

/// Checks the `[kinds]` of a config: names are valid, no built-in is redefined, every
/// schema compiles. Returns (kind name, problem) pairs.
#[must_use]
pub fn config_problems(config: &Config) -> Vec<(String, String)> {
    config
        .kinds
        .iter()
        .filter_map(|(name, kind)| user_kind(name, kind).err().map(|e| (name.clone(), e)))
        .collect()
}

fn user_kind(
    name: &str,
    kind: &crate::core::config::KindConfig,
) -> std::result::Result<Kind, String> {
    check_kind_name(name)?;
    if BUILTIN.iter().any(|(b, _)| *b == name) {
        return Err(format!(
            "{name:?} is a built-in kind; give your kind another name"
        ));
    }
    let schema = kind
        .schema
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| format!("schema cannot be read as JSON: {e}"))?;
    let validator = schema
        .as_ref()
        .map(|s| compile(s).map_err(|e| format!("schema is not a valid JSON Schema: {e}")))
        .transpose()?;
    Ok(Kind {
        name: name.to_string(),
        description: kind.description.clone(),
        builtin: false,
        schema,
        validator: validator.map(Arc::new),
    })
}

/// Kind names: lowercase ASCII letters, digits, `_` and `-`, starting with a letter.
pub fn check_kind_name(name: &str) -> std::result::Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name.len() <= 40;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "kind name {name:?} must start with a lowercase letter and use only a-z, 0-9, _ and - (at most 40 characters)"
        ))
    }
}

/// `price.amount`, `tags[2]`; a missing required property or an unexpected one is appended
/// to the path of the object that lacks (or has) it.
fn field_path(error: &ValidationError<'_>) -> String {
    let mut path = String::new();
    for segment in error.instance_path().segments() {
        match segment {
            LocationSegment::Property(p) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&p);
            }
            LocationSegment::Index(i) => {
                let _ = write!(path, "[{i}]");
            }
        }
    }
    let extra = match error.kind() {
        ValidationErrorKind::Required { property } => property.as_str().map(str::to_string),
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected.first().cloned(),
        _ => None,
    };
    if let Some(extra) = extra {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(&extra);
    }
    if path.is_empty() {
        "(body)".into()
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema_error(kind: &str, body: &Value) -> (String, String) {
        match Kinds::builtin().unwrap().check(kind, body).unwrap_err() {
            Error::Schema { field, message, .. } => (field, message),
            other => panic!("expected a schema error, got {other}"),
        }
    }

    #[test]
    fn every_builtin_schema_compiles() {
        let kinds = Kinds::builtin().unwrap();
        assert_eq!(kinds.names().count(), BUILTIN.len());
        for kind in kinds.iter() {
            assert!(
                !kind.description.is_empty(),
                "{} has no description",
                kind.name
            );
        }
    }

    #[test]
    fn failures_name_the_field() {
        assert_eq!(schema_error("customer", &json!({"email": "a@b"})).0, "name");
        let (field, message) = schema_error("customer", &json!({"name": "Ann", "email": 5}));
        assert_eq!(field, "email");
        assert!(message.contains("string"), "{message}");
        let offer = json!({"title": "Audit", "price": {"amount": -1, "currency": "EUR"}});
        assert_eq!(schema_error("offer", &offer).0, "price.amount");
        let tags = json!({"title": "t", "tags": ["a", "b", 3]});
        assert_eq!(schema_error("draft", &tags).0, "tags[2]");
        assert_eq!(schema_error("note", &json!([1])).0, "(body)");
    }

    #[test]
    fn messages_do_not_echo_values() {
        let (_, message) = schema_error(
            "customer",
            &json!({"name": "Ann", "email": "sk-secret-value"}),
        );
        assert!(!message.contains("sk-secret-value"), "{message}");
    }

    #[test]
    fn user_kinds_come_from_config() {
        let config: Config = crate::core::toml_text::parse(
            "[kinds.lead]\ndescription = \"prospect\"\nschema = { type = \"object\", required = [\"name\"] }\n",
            std::path::Path::new("c.toml"),
        )
        .unwrap();
        let kinds = Kinds::from_config(&config).unwrap();
        assert!(kinds.check("lead", &json!({"name": "x"})).is_ok());
        assert!(kinds.check("lead", &json!({})).is_err());
        assert!(kinds.get("nope").unwrap_err().to_string().contains("lead"));
    }

    #[test]
    fn redefining_a_builtin_or_a_bad_schema_is_a_problem() {
        let config: Config = crate::core::toml_text::parse(
            "[kinds.draft]\n[kinds.bad]\nschema = { type = 5 }\n[kinds.Upper]\n",
            std::path::Path::new("c.toml"),
        )
        .unwrap();
        let problems = config_problems(&config);
        let names: Vec<_> = problems.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(names, ["Upper", "bad", "draft"]);
    }
}
