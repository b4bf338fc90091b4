//! The static-site CMS connector: Markdown pages with TOML front matter in a directory
//! (`site/` in the workspace by default). Works offline.
//!
//! - `site.publish` / `site.update` write `<slug>.md` atomically; the same key, or the same
//!   slug, version and content, gives the same result without rewriting the file.
//! - `site.unpublish` removes the page.
//! - Every overwritten or removed page is kept in the history directory under the key that
//!   replaced it, so compensation can restore it exactly.
//! - Slugs are plain names: `..`, separators, absolute paths and symlinks are refused, so
//!   nothing is ever written outside the directory.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::atomic;
use super::front_matter::{self, FrontMatter};
use super::{permanent, transient};
use crate::core::canonical;
use crate::core::effects::{ActionSpec, Connector, ConnectorError, Reversibility};
use crate::core::error::{Error, Result};

pub const PUBLISH: &str = "site.publish";
pub const UPDATE: &str = "site.update";
pub const UNPUBLISH: &str = "site.unpublish";
/// The compensation of update and unpublish (restores the page as it was).
pub const RESTORE: &str = "site.restore";

#[derive(Debug, Clone)]
pub struct SiteConnector {
    root: PathBuf,
    history: PathBuf,
    /// Mode of published pages (the directory's is set when it is opened).
    file_mode: u32,
}

/// What publish/update are given.
struct PageArgs {
    slug: String,
    version: i64,
    title: String,
    body: String,
    extra: toml::Table,
}

/// Gives the site directory its configured mode. A directory keel does not own (the
/// operator pointed `dir` at one) keeps its mode, with a warning.
fn set_dir_mode(dir: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(path = %dir.display(), "cannot set the site directory's mode to {mode:o}: {e}");
    }
}

type CResult<T> = std::result::Result<T, ConnectorError>;

impl SiteConnector {
    /// Opens (creating) the site and history directories with the default modes (site
    /// 0755, pages 0644; history private) and removes temp files left by an interrupted
    /// write (they were never the published page).
    pub fn open(root: &Path, history: &Path) -> Result<Self> {
        let d = super::config::SiteConfig::default();
        Self::open_with_modes(root, history, d.dir_mode, d.file_mode)
    }

    /// The site `cfg` configures in the workspace at `workspace`.
    pub fn from_config(workspace: &Path, cfg: &super::config::SiteConfig) -> Result<Self> {
        Self::open_with_modes(
            &workspace.join(&cfg.dir),
            &workspace.join(&cfg.history_dir),
            cfg.dir_mode,
            cfg.file_mode,
        )
    }

    /// [`Self::open`] with the site directory's and the pages' modes. The history stays
    /// private (0700 / 0600): it is the operator's undo store, not part of the site.
    pub fn open_with_modes(
        root: &Path,
        history: &Path,
        dir_mode: u32,
        file_mode: u32,
    ) -> Result<Self> {
        for dir in [root, history] {
            crate::core::workspace::new_private_dirs(dir)?;
        }
        set_dir_mode(root, dir_mode);
        let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
        let history = history.canonicalize().map_err(|e| Error::io(history, e))?;
        let removed = atomic::clean_stale_temps(&root).map_err(|e| Error::io(&root, e))?;
        for t in removed {
            tracing::warn!(path = %t.display(), "removed a temp file left by an interrupted write");
        }
        Ok(SiteConnector {
            root,
            history,
            file_mode,
        })
    }

    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn target(&self) -> String {
        format!("site {}", self.root.display())
    }

    /// The page file name for `slug`, or a refusal if the slug could escape the directory.
    pub fn file_name(&self, slug: &str) -> CResult<String> {
        let ok = !slug.is_empty()
            && slug.len() <= 120
            && !slug.starts_with(['.', '-'])
            && slug
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !slug.contains("..");
        if !ok {
            return Err(permanent(
                &self.target(),
                format!(
                    "refusing slug {slug:?}: use letters, digits, '-', '_' or '.' (no path separators, no '..', not starting with '.' or '-')"
                ),
            ));
        }
        let name = format!("{slug}.md");
        // A symlink at the page path could point anywhere: never write through or over one.
        if let Ok(meta) = std::fs::symlink_metadata(self.root.join(&name))
            && !meta.file_type().is_file()
        {
            return Err(permanent(
                &self.target(),
                format!("refusing {name}: it is a symlink or not a regular file"),
            ));
        }
        Ok(name)
    }

    /// Reads the page for `slug`: `Ok(None)` if absent, an error if it is unreadable.
    pub fn read_page(&self, slug: &str) -> CResult<Option<(FrontMatter, String)>> {
        let name = self.file_name(slug)?;
        match std::fs::read_to_string(self.root.join(&name)) {
            Ok(text) => front_matter::parse(&text)
                .map(Some)
                .map_err(|e| permanent(&self.target(), format!("{name}: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(transient(&self.target(), format!("{name}: {e}"))),
        }
    }

    fn history_name(slug: &str, key: &str) -> String {
        let h = canonical::sha256_hex(key.as_bytes());
        format!("{slug}.{}.md", &h[..16])
    }

    /// Saves the current page (if any) to history under `key`; returns its history name.
    fn keep_previous(&self, name: &str, slug: &str, key: &str) -> CResult<Option<String>> {
        let hist = Self::history_name(slug, key);
        if self.history.join(&hist).exists() {
            return Ok(Some(hist));
        }
        match std::fs::read(self.root.join(name)) {
            Ok(bytes) => {
                atomic::write(&self.history, &hist, &bytes).map_err(|e| {
                    transient(&self.target(), format!("saving previous {name}: {e}"))
                })?;
                Ok(Some(hist))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(transient(&self.target(), format!("{name}: {e}"))),
        }
    }

    fn previous_for(&self, slug: &str, key: &str) -> Option<String> {
        let hist = Self::history_name(slug, key);
        self.history.join(&hist).exists().then_some(hist)
    }

    fn page_result(fm: &FrontMatter, previous: Option<&str>, written: bool) -> Value {
        json!({
            "slug": fm.slug,
            "path": format!("{}.md", fm.slug),
            "version": fm.version,
            "content_hash": fm.content_hash,
            "idempotency_key": fm.idempotency_key,
            "previous": previous,
            "written": written,
        })
    }

    fn write_page(&self, action: &str, args: &PageArgs, key: &str) -> CResult<Value> {
        let name = self.file_name(&args.slug)?;
        let hash = front_matter::body_hash(&args.body);
        let existing = self.read_page(&args.slug)?;
        if let Some((fm, _)) = &existing {
            if fm.idempotency_key == key || (fm.version == args.version && fm.content_hash == hash)
            {
                return Ok(Self::page_result(
                    fm,
                    self.previous_for(&args.slug, key).as_deref(),
                    false,
                ));
            }
            if fm.version == args.version {
                return Err(permanent(
                    &self.target(),
                    format!(
                        "{name} already has version {} with different content; publish a new version instead",
                        fm.version
                    ),
                ));
            }
            if fm.version > args.version {
                return Err(permanent(
                    &self.target(),
                    format!(
                        "{name} is at version {}, newer than version {} being written",
                        fm.version, args.version
                    ),
                ));
            }
        } else if action == UPDATE {
            return Err(permanent(
                &self.target(),
                format!("nothing is published at {name}; use site.publish"),
            ));
        }
        let previous = self.keep_previous(&name, &args.slug, key)?;
        let fm = FrontMatter {
            title: args.title.clone(),
            slug: args.slug.clone(),
            version: args.version,
            content_hash: hash,
            idempotency_key: key.to_string(),
            extra: args.extra.clone(),
        };
        let page =
            front_matter::render(&fm, &args.body).map_err(|e| permanent(&self.target(), e))?;
        atomic::write_with_mode(&self.root, &name, page.as_bytes(), self.file_mode)
            .map_err(|e| transient(&self.target(), format!("writing {name}: {e}")))?;
        Ok(Self::page_result(&fm, previous.as_deref(), true))
    }

    fn unpublish(&self, slug: &str, key: &str) -> CResult<Value> {
        let name = self.file_name(slug)?;
        if !self.root.join(&name).exists() {
            return Ok(json!({"slug": slug, "removed": false,
                             "previous": self.previous_for(slug, key)}));
        }
        let previous = self.keep_previous(&name, slug, key)?;
        atomic::remove(&self.root, &name)
            .map_err(|e| transient(&self.target(), format!("removing {name}: {e}")))?;
        Ok(json!({"slug": slug, "removed": true, "previous": previous}))
    }

    /// Puts history file `hist` back as the page for `slug`.
    fn restore(&self, slug: &str, hist: &str) -> CResult<Value> {
        let name = self.file_name(slug)?;
        if hist.contains(['/', '\\']) || hist.starts_with('.') {
            return Err(permanent(
                &self.target(),
                format!("refusing history name {hist:?}"),
            ));
        }
        let bytes = std::fs::read(self.history.join(hist)).map_err(|e| {
            permanent(
                &self.target(),
                format!("previous version {hist} is gone: {e}"),
            )
        })?;
        atomic::write_with_mode(&self.root, &name, &bytes, self.file_mode)
            .map_err(|e| transient(&self.target(), format!("restoring {name}: {e}")))?;
        Ok(json!({"slug": slug, "restored": hist}))
    }

    fn parse_args(&self, args: &Value) -> CResult<PageArgs> {
        let field = |name: &str| args.get(name).and_then(Value::as_str);
        let slug = field("slug")
            .ok_or_else(|| permanent(&self.target(), "missing string argument `slug`"))?;
        let version = args
            .get("version")
            .and_then(Value::as_i64)
            .ok_or_else(|| permanent(&self.target(), "missing integer argument `version`"))?;
        let body = field("body")
            .ok_or_else(|| permanent(&self.target(), "missing string argument `body`"))?;
        let extra = match args.get("extra") {
            None | Some(Value::Null) => toml::Table::new(),
            Some(v) => toml::Table::try_from(v)
                .map_err(|e| permanent(&self.target(), format!("`extra` is not a table: {e}")))?,
        };
        Ok(PageArgs {
            slug: slug.to_string(),
            version,
            title: field("title").unwrap_or(slug).to_string(),
            body: body.to_string(),
            extra,
        })
    }

    fn slug_arg(&self, args: &Value) -> CResult<String> {
        args.get("slug")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| permanent(&self.target(), "missing string argument `slug`"))
    }
}

impl Connector for SiteConnector {
    fn name(&self) -> &'static str {
        "site"
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![
            ActionSpec {
                name: PUBLISH.into(),
                reversibility: Reversibility::Reversible,
                compensation: Some(UNPUBLISH.into()),
                description: "Publishes a Markdown page on the site".into(),
            },
            ActionSpec {
                name: UPDATE.into(),
                reversibility: Reversibility::Reversible,
                compensation: Some(RESTORE.into()),
                description: "Replaces a published page with a new version".into(),
            },
            ActionSpec {
                name: UNPUBLISH.into(),
                reversibility: Reversibility::Reversible,
                compensation: Some(RESTORE.into()),
                description: "Removes a page from the site".into(),
            },
        ]
    }

    fn perform(&self, action: &str, args: &Value, key: &str) -> CResult<Value> {
        match action {
            PUBLISH | UPDATE => self.write_page(action, &self.parse_args(args)?, key),
            UNPUBLISH => self.unpublish(&self.slug_arg(args)?, key),
            other => Err(permanent(&self.target(), format!("unknown action {other}"))),
        }
    }

    fn lookup(&self, action: &str, args: &Value, key: &str) -> CResult<Option<Value>> {
        let slug = self.slug_arg(args)?;
        match action {
            PUBLISH | UPDATE => {
                let a = self.parse_args(args)?;
                let hash = front_matter::body_hash(&a.body);
                Ok(self.read_page(&slug)?.and_then(|(fm, _)| {
                    (fm.idempotency_key == key
                        || (fm.version == a.version && fm.content_hash == hash))
                        .then(|| {
                            Self::page_result(&fm, self.previous_for(&slug, key).as_deref(), false)
                        })
                }))
            }
            UNPUBLISH => {
                let gone = self.read_page(&slug)?.is_none();
                Ok((gone && self.previous_for(&slug, key).is_some())
                    .then(|| json!({"slug": slug, "removed": true, "previous": self.previous_for(&slug, key)})))
            }
            other => Err(permanent(&self.target(), format!("unknown action {other}"))),
        }
    }

    fn compensate(&self, action: &str, args: &Value, result: &Value, key: &str) -> CResult<Value> {
        let slug = self.slug_arg(args)?;
        let previous = result.get("previous").and_then(Value::as_str);
        match (action, previous) {
            (PUBLISH | UPDATE | UNPUBLISH, Some(hist)) => self.restore(&slug, hist),
            (PUBLISH, None) => {
                let name = self.file_name(&slug)?;
                match self.read_page(&slug)? {
                    None => Ok(json!({"slug": slug, "removed": false})),
                    Some((fm, _)) if fm.idempotency_key == key => {
                        atomic::remove(&self.root, &name).map_err(|e| {
                            transient(&self.target(), format!("removing {name}: {e}"))
                        })?;
                        Ok(json!({"slug": slug, "removed": true}))
                    }
                    Some((fm, _)) => Err(permanent(
                        &self.target(),
                        format!(
                            "{name} was changed since (now version {}); not removing a page this action did not write",
                            fm.version
                        ),
                    )),
                }
            }
            (UPDATE | UNPUBLISH, None) => Ok(json!({"slug": slug, "restored": null,
                "note": "there was no previous page to restore"})),
            (other, _) => Err(permanent(&self.target(), format!("unknown action {other}"))),
        }
    }
}
