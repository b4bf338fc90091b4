//! A local outbox: each performed action is written as one JSON file in a directory under
//! the workspace (`[connectors.outboxes.<name>]`, action `outbox.<name>`). It works offline
//! on a fresh machine — the demo sends its invoices here — and whatever picks the files up
//! (a mail merge, a sync script, the operator) does the rest.
//!
//! Sending is irreversible (a file someone may already have picked up), and idempotent by
//! the effects ledger's key: the file is named after the key, so a second perform with the
//! same key finds the file and writes nothing, and `lookup` after a crash between writing
//! and recording answers from the file. Files are written atomically (temp file, fsync,
//! rename); the directory must stay inside the workspace and a planted symlink is refused.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{atomic, permanent, transient};
use crate::core::effects::{ActionSpec, Connector, ConnectorError, Reversibility};
use crate::core::error::{Error, Result};

type CResult<T> = std::result::Result<T, ConnectorError>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Where each sent item is written as a JSON file, relative to the workspace.
    pub dir: String,
    /// One line for the operator (shown on approval cards).
    #[serde(default)]
    pub description: String,
}

#[derive(Debug)]
pub struct OutboxConnector {
    name: String,
    action: String,
    dir: PathBuf,
    description: String,
}

impl OutboxConnector {
    /// The outbox `name` of the workspace at `root`; creates its directory. Refuses a
    /// directory outside the workspace (absolute, `..`, or through a symlink).
    pub fn open(root: &Path, name: &str, cfg: &OutboxConfig) -> Result<Self> {
        let what = format!("outbox {name}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::invalid(
                what,
                "the name may hold only letters, digits, - and _",
            ));
        }
        let rel = Path::new(&cfg.dir);
        let inside = !cfg.dir.trim().is_empty()
            && rel
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside {
            return Err(Error::invalid(
                what,
                format!("dir {:?} must be a path inside the workspace", cfg.dir),
            ));
        }
        // One component at a time, so a symlink leading outside is caught before anything
        // is created out there.
        let real_root = root.canonicalize().map_err(|e| Error::io(root, e))?;
        let mut real_dir = real_root.clone();
        for part in rel.components() {
            let Component::Normal(part) = part else {
                continue;
            };
            let next = real_dir.join(part);
            match crate::core::workspace::private_dir_builder().create(&next) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(&next, e)),
            }
            real_dir = next.canonicalize().map_err(|e| Error::io(&next, e))?;
            if !real_dir.starts_with(&real_root) || !real_dir.is_dir() {
                return Err(Error::invalid(
                    what,
                    format!(
                        "dir {:?} leads outside the workspace (or is not a directory)",
                        cfg.dir
                    ),
                ));
            }
        }
        Ok(OutboxConnector {
            name: name.to_string(),
            action: format!("outbox.{name}"),
            dir: real_dir,
            description: if cfg.description.is_empty() {
                format!("Write to the {name} outbox ({})", cfg.dir)
            } else {
                cfg.description.clone()
            },
        })
    }

    /// The directory files are written to.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the effect with `key`: named after the key's hash, so no key can point
    /// anywhere else.
    #[must_use]
    pub fn file_name(&self, key: &str) -> String {
        let hash = crate::core::canonical::sha256_hex(key.as_bytes());
        format!("{}-{}.json", self.name, &hash[..32])
    }

    fn check_action(&self, action: &str) -> CResult<()> {
        if action == self.action {
            Ok(())
        } else {
            Err(permanent(
                &self.action,
                format!(
                    "unknown action {action:?} (this outbox provides {})",
                    self.action
                ),
            ))
        }
    }

    /// What perform and lookup answer for a written file.
    fn result(&self, name: &str, key: &str) -> Value {
        json!({"outbox": self.name, "file": self.dir.join(name).display().to_string(), "key": key})
    }

    /// The file written for `key`, if any; refuses anything but a regular file there.
    fn existing(&self, key: &str) -> CResult<Option<String>> {
        let name = self.file_name(key);
        let path = self.dir.join(&name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_file() => {}
            Ok(_) => {
                return Err(permanent(
                    &self.action,
                    format!("{} is not a regular file; refusing it", path.display()),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(transient(&self.action, format!("{}: {e}", path.display()))),
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| transient(&self.action, format!("{}: {e}", path.display())))?;
        let stored: Value = serde_json::from_str(&text).map_err(|e| {
            permanent(
                &self.action,
                format!("{} is not the JSON keel wrote: {e}", path.display()),
            )
        })?;
        if stored["key"] != json!(key) {
            return Err(permanent(
                &self.action,
                format!("{} belongs to another effect", path.display()),
            ));
        }
        Ok(Some(name))
    }
}

impl Connector for OutboxConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![ActionSpec {
            name: self.action.clone(),
            reversibility: Reversibility::Irreversible,
            compensation: None,
            description: self.description.clone(),
        }]
    }

    fn perform(&self, action: &str, args: &Value, key: &str) -> CResult<Value> {
        self.check_action(action)?;
        if let Some(name) = self.existing(key)? {
            return Ok(self.result(&name, key));
        }
        let name = self.file_name(key);
        let body = json!({"key": key, "action": action, "args": args});
        let text = serde_json::to_string_pretty(&body)
            .map_err(|e| permanent(&self.action, format!("arguments are not JSON: {e}")))?;
        atomic::write(&self.dir, &name, text.as_bytes())
            .map_err(|e| transient(&self.action, format!("{}: {e}", self.dir.display())))?;
        Ok(self.result(&name, key))
    }

    fn lookup(&self, action: &str, _args: &Value, key: &str) -> CResult<Option<Value>> {
        self.check_action(action)?;
        Ok(self.existing(key)?.map(|name| self.result(&name, key)))
    }

    fn compensate(
        &self,
        action: &str,
        _args: &Value,
        _result: &Value,
        _key: &str,
    ) -> CResult<Value> {
        self.check_action(action)?;
        Err(permanent(
            &self.action,
            "a sent item cannot be taken back (it may already have been picked up); send a correction instead",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(root: &Path, dir: &str) -> Result<OutboxConnector> {
        OutboxConnector::open(
            root,
            "invoice",
            &OutboxConfig {
                dir: dir.into(),
                description: String::new(),
            },
        )
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn sends_once_per_key_and_lookup_finds_what_was_sent() {
        let root = tempfile::tempdir().unwrap();
        let o = outbox(root.path(), "outbox/invoices").unwrap();
        let args = json!({"customer": "northwind-labs", "total": 2400.0});
        assert_eq!(o.lookup("outbox.invoice", &args, "k1").unwrap(), None);
        let first = o.perform("outbox.invoice", &args, "k1").unwrap();
        let written = files(o.dir());
        assert_eq!(written.len(), 1);
        let stored: Value =
            serde_json::from_str(&std::fs::read_to_string(&written[0]).unwrap()).unwrap();
        assert_eq!(stored["args"], args);
        assert_eq!(stored["key"], "k1");
        // A crash between writing and recording: the ledger asks, and the file answers.
        assert_eq!(
            o.lookup("outbox.invoice", &args, "k1").unwrap(),
            Some(first.clone())
        );
        // The same key again writes nothing; another key is another file.
        let before = std::fs::read(&written[0]).unwrap();
        assert_eq!(
            o.perform("outbox.invoice", &json!({"changed": true}), "k1")
                .unwrap(),
            first
        );
        assert_eq!(std::fs::read(&written[0]).unwrap(), before);
        o.perform("outbox.invoice", &args, "k2").unwrap();
        assert_eq!(files(o.dir()).len(), 2);
        assert_eq!(o.actions()[0].reversibility, Reversibility::Irreversible);
        assert!(o.compensate("outbox.invoice", &args, &first, "k1").is_err());
        assert!(o.perform("outbox.other", &args, "k3").is_err());
    }

    #[test]
    fn a_directory_outside_the_workspace_is_refused() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["../escape", "/tmp/outbox", "", "a/../../b"] {
            let err = outbox(root.path(), dir).unwrap_err().to_string();
            assert!(err.contains("inside the workspace"), "{dir}: {err}");
        }
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
            let err = outbox(root.path(), "link/invoices")
                .unwrap_err()
                .to_string();
            assert!(err.contains("outside the workspace"), "{err}");
            assert!(
                std::fs::read_dir(outside.path()).unwrap().next().is_none(),
                "nothing is created outside"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let o = outbox(root.path(), "outbox").unwrap();
        let secret = root.path().join("secret.txt");
        std::fs::write(&secret, "do not touch").unwrap();
        std::os::unix::fs::symlink(&secret, o.dir().join(o.file_name("k1"))).unwrap();
        assert!(o.lookup("outbox.invoice", &json!({}), "k1").is_err());
        assert!(o.perform("outbox.invoice", &json!({}), "k1").is_err());
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "do not touch");
    }
}
