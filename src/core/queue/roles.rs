//! The registry of work item types: which roles exist, the JSON Schema each role's input must
//! satisfy, and which blackboard topics each role subscribes to.
//!
//! The agents module owns role templates; this catalog only needs their names, input schemas
//! and subscriptions. [`RoleCatalog::load`] reads them minimally from `<workspace>/agents/*.toml`
//! (keys `name`, `input_schema`, `subscriptions`; other keys are ignored here), and tests build
//! a catalog directly with [`RoleCatalog::with_role`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use std::sync::Arc;

use crate::core::error::{Error, Result};
use crate::core::workflow::{self, Workflow};

#[derive(Debug, Clone, Default)]
pub struct RoleSpec {
    /// JSON Schema for the role's input (the work item type); `None` accepts any JSON.
    pub input_schema: Option<Value>,
    /// Blackboard topics whose new findings become tasks for this role.
    pub subscriptions: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RoleCatalog {
    roles: BTreeMap<String, RoleSpec>,
    /// Workflow files by name; a file that failed to load keeps its error (`file:line:col`)
    /// so that submitting it says why, while other workflows stay usable.
    workflows: BTreeMap<String, std::result::Result<Arc<Workflow>, String>>,
}

/// The slice of an agent template this catalog reads.
#[derive(Debug, Deserialize)]
struct TemplateHead {
    name: Option<String>,
    input_schema: Option<toml::Value>,
    #[serde(default)]
    subscriptions: Vec<String>,
}

impl RoleCatalog {
    /// Only the built-in roles.
    #[must_use]
    pub fn builtin() -> Self {
        let mut catalog = RoleCatalog::default();
        for role in crate::core::roles::BUILTIN {
            catalog
                .roles
                .insert(role.name.to_string(), RoleSpec::default());
        }
        catalog
    }

    /// Built-in roles plus the templates in `<workspace>/agents/*.toml` (workflow files,
    /// `*.workflow.toml`, are skipped). A template that does not parse is an error naming
    /// its file, line and column.
    pub fn load(workspace_root: &Path) -> Result<Self> {
        let mut catalog = Self::builtin();
        // The shipped agent templates are compiled in; the workspace's files add roles or
        // override them (same name).
        for (name, text) in crate::core::agents::template::SHIPPED {
            catalog.add_template(text, Path::new(&format!("agents/{name}.toml")))?;
        }
        let dir = workspace_root.join("agents");
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        paths.sort();
        for path in paths {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let is_toml = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
            if !is_toml || name.ends_with(".workflow.toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            catalog.add_template(&text, &path)?;
        }
        catalog.workflows = workflow::load_all(&dir, &catalog);
        Ok(catalog)
    }

    /// Registers the role an agent template declares (`name`, else the file stem), with its
    /// `input_schema` and `subscriptions`. Other keys are the agents module's business.
    /// For templates compiled into the binary, call this with their text and shipped path.
    pub fn add_template(&mut self, text: &str, path: &Path) -> Result<()> {
        let head: TemplateHead = crate::core::toml_text::parse(text, path)?;
        let stem = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .trim_end_matches(".toml")
            .to_string();
        let input_schema = head
            .input_schema
            .map(|s| {
                serde_json::to_value(s).map_err(|e| Error::invalid("input_schema", e.to_string()))
            })
            .transpose()?;
        self.roles.insert(
            head.name.unwrap_or(stem),
            RoleSpec {
                input_schema,
                subscriptions: head.subscriptions,
            },
        );
        Ok(())
    }

    /// Adds a workflow (tests; built-ins are added by [`RoleCatalog::load`]).
    #[must_use]
    pub fn with_workflow(mut self, wf: Workflow) -> Self {
        self.workflows.insert(wf.name.clone(), Ok(Arc::new(wf)));
        self
    }

    /// A loaded workflow, or the error that kept it from loading.
    pub fn workflow(&self, name: &str) -> Result<Arc<Workflow>> {
        match self.workflows.get(name) {
            Some(Ok(wf)) => Ok(Arc::clone(wf)),
            Some(Err(message)) => Err(Error::invalid(
                format!("workflow {name:?}"),
                message.clone(),
            )),
            None => Err(Error::invalid(
                "task",
                format!(
                    "unknown workflow {name:?} (known: {})",
                    self.workflows
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// Checks a `workflow` task's input: `{"workflow": NAME, "input": {...}}`, the workflow
    /// loaded (acyclic) and every stage's role known.
    pub fn check_workflow(&self, input: &Value) -> Result<()> {
        let name = input
            .get("workflow")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::invalid(
                    "workflow task",
                    "input needs {\"workflow\": NAME, \"input\": {...}}",
                )
            })?;
        self.workflow(name)?.check_roles(self)
    }

    /// Adds (or replaces) a role.
    #[must_use]
    pub fn with_role(mut self, role: &str, input_schema: Option<Value>) -> Self {
        self.roles.entry(role.to_string()).or_default().input_schema = input_schema;
        self
    }

    /// Subscribes `role` to `topic`.
    #[must_use]
    pub fn with_subscription(mut self, role: &str, topic: &str) -> Self {
        self.roles
            .entry(role.to_string())
            .or_default()
            .subscriptions
            .push(topic.to_string());
        self
    }

    #[must_use]
    pub fn contains(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    #[must_use]
    pub fn get(&self, role: &str) -> Option<&RoleSpec> {
        self.roles.get(role)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// (role, topic) for every subscription.
    pub fn subscriptions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.roles.iter().flat_map(|(r, s)| {
            s.subscriptions
                .iter()
                .map(move |t| (r.as_str(), t.as_str()))
        })
    }

    /// Checks that `role` exists and `input` satisfies its schema.
    pub fn check_input(&self, role: &str, input: &Value) -> Result<()> {
        let spec = self.roles.get(role).ok_or_else(|| {
            let known: Vec<&str> = self.names().collect();
            Error::invalid(
                "task",
                format!("unknown role {role:?} (known roles: {})", known.join(", ")),
            )
        })?;
        if let Some(schema) = &spec.input_schema {
            check_schema(&format!("{role} input"), schema, input)?;
        }
        Ok(())
    }
}

/// Validates `value` against a JSON Schema; the error names the failing field.
pub fn check_schema(kind: &str, schema: &Value, value: &Value) -> Result<()> {
    let validator = jsonschema::validator_for(schema).map_err(|e| Error::Schema {
        kind: kind.to_string(),
        field: "(schema)".into(),
        message: format!("the schema itself is invalid: {e}"),
    })?;
    if let Some(err) = validator.iter_errors(value).next() {
        let path = err.instance_path().to_string();
        return Err(Error::Schema {
            kind: kind.to_string(),
            field: if path.is_empty() { "/".into() } else { path },
            message: err.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_role_and_bad_input_are_refused() {
        let catalog = RoleCatalog::builtin().with_role(
            "writer",
            Some(json!({"type":"object","required":["topic"],"properties":{"topic":{"type":"string"}}})),
        );
        assert!(
            catalog
                .check_input("writer", &json!({"topic": "x"}))
                .is_ok()
        );
        let err = catalog
            .check_input("writer", &json!({"topic": 3}))
            .unwrap_err();
        assert!(err.to_string().contains("/topic"), "{err}");
        let err = catalog.check_input("poet", &json!({})).unwrap_err();
        assert!(err.to_string().contains("unknown role \"poet\""), "{err}");
    }

    #[test]
    fn templates_are_read_minimally_and_errors_located() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("agents")).unwrap();
        std::fs::write(
            dir.path().join("agents/researcher.toml"),
            "name = \"researcher\"\nmodel = \"x\"\nsubscriptions = [\"leads\"]\n[input_schema]\ntype = \"object\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("agents/content.workflow.toml"), "junk = [").unwrap();
        let catalog = RoleCatalog::load(dir.path()).unwrap();
        assert!(catalog.contains("researcher"));
        let err = catalog.workflow("content").unwrap_err().to_string();
        assert!(
            err.contains("content.workflow.toml:1:"),
            "a broken workspace file replaces the built-in: {err}"
        );
        let bare = tempfile::tempdir().unwrap();
        assert!(
            RoleCatalog::load(bare.path())
                .unwrap()
                .workflow("content")
                .is_ok()
        );
        assert!(catalog.check_input("researcher", &json!(1)).is_err());
        // The workspace file replaces the shipped researcher's subscriptions; other shipped
        // roles keep theirs.
        let researcher: Vec<_> = catalog
            .subscriptions()
            .filter(|(role, _)| *role == "researcher")
            .collect();
        assert_eq!(researcher, vec![("researcher", "leads")]);
        assert!(catalog.contains("writer"), "shipped templates are roles");
        std::fs::write(dir.path().join("agents/bad.toml"), "name = \n").unwrap();
        let err = RoleCatalog::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("bad.toml:1:"), "{err}");
    }
}
