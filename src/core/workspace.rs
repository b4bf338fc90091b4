//! Workspaces: a directory holding one business — the `SQLite` database, the LMDB vector
//! directory, `config.toml`, logs and overrides. Directories are 0700 and files 0600.
//!
//! Resolution order: `--workspace DIR`, then `KEEL_WORKSPACE`, then the platform data dir.

use std::path::{Path, PathBuf};

use crate::core::config::{self, Config};
use crate::core::error::{Error, Result};
use crate::core::store::Store;

pub const DB_FILE: &str = "keel.db";
pub const VECTORS_DIR: &str = "vectors";
pub const CONFIG_FILE: &str = "config.toml";
pub const LOGS_DIR: &str = "logs";

/// An opened workspace: its root and its effective configuration.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub config: Config,
}

impl Workspace {
    /// Creates a workspace at `root` (idempotent: an existing one is opened, not reset).
    pub fn init(root: &Path) -> Result<Self> {
        create_private_dir(root)?;
        create_private_dir(&root.join(VECTORS_DIR))?;
        create_private_dir(&root.join(LOGS_DIR))?;
        let config_path = root.join(CONFIG_FILE);
        if !config_path.exists() {
            write_private_file(&config_path, config::TEMPLATE.as_bytes())?;
        }
        let ws = Self::open(root)?;
        // Creating the store applies migrations.
        drop(ws.store()?);
        Ok(ws)
    }

    /// Opens an existing workspace. Refuses a directory other users can write to.
    pub fn open(root: &Path) -> Result<Self> {
        if !root.join(CONFIG_FILE).exists() && !root.join(DB_FILE).exists() {
            return Err(Error::Other(format!(
                "there is no keel workspace at {} (create one with `keel init {}`)",
                root.display(),
                root.display()
            )));
        }
        check_not_shared(root)?;
        let config = Config::load(&root.join(CONFIG_FILE))?;
        Ok(Workspace {
            root: root.to_path_buf(),
            config,
        })
    }

    #[must_use]
    pub fn db_path(&self) -> PathBuf {
        self.root.join(DB_FILE)
    }

    #[must_use]
    pub fn vectors_dir(&self) -> PathBuf {
        self.root.join(VECTORS_DIR)
    }

    #[must_use]
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join(LOGS_DIR)
    }

    /// Opens a new connection to the workspace database (one per thread).
    pub fn store(&self) -> Result<Store> {
        Store::open(&self.db_path(), self.config.store.durability)
    }
}

/// The default workspace location: the platform's data directory.
#[must_use]
pub fn default_root() -> PathBuf {
    directories::ProjectDirs::from("", "", "keel").map_or_else(
        || PathBuf::from(".keel"),
        |d| d.data_dir().join("workspace"),
    )
}

/// `--workspace` wins, then `KEEL_WORKSPACE` (clap reads it into the same option), then the
/// default.
#[must_use]
pub fn resolve(explicit: Option<&Path>) -> PathBuf {
    explicit.map_or_else(default_root, Path::to_path_buf)
}

/// Creates `path` and any missing parents as 0700 (and makes `path` itself 0700 if it
/// existed): nothing keel creates inside a workspace is readable by other users.
pub fn create_private_dir(path: &Path) -> Result<()> {
    new_private_dirs(path)?;
    set_mode(path, 0o700)
}

/// Creates `path` and any missing parents as 0700, leaving existing directories as they are
/// (for directories the operator may point outside the workspace, such as a site root).
pub fn new_private_dirs(path: &Path) -> Result<()> {
    private_dir_builder()
        .recursive(true)
        .create(path)
        .map_err(|e| Error::io(path, e))
}

/// A directory builder whose directories are created 0700.
#[must_use]
pub fn private_dir_builder() -> std::fs::DirBuilder {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
}

/// Writes `bytes` to `path` with mode 0600 (atomically: temp file then rename).
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp-write");
    {
        let mut f = open_private(&tmp)?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Creates or truncates `path` with mode 0600.
pub fn open_private(path: &Path) -> Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).map_err(|e| Error::io(path, e))
}

/// Restricts an existing file (and `SQLite`'s -wal/-shm companions) to 0600.
pub fn restrict_file(path: &Path) -> Result<()> {
    set_mode(path, 0o600)?;
    for suffix in ["-wal", "-shm"] {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        let companion = PathBuf::from(companion);
        if companion.exists() {
            set_mode(&companion, 0o600)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .permissions()
        .mode()
        & 0o777;
    if current != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

/// A workspace that another user can write to could have its ledger rewritten: refuse it.
#[cfg(unix)]
fn check_not_shared(root: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    for path in [
        root.to_path_buf(),
        root.join(DB_FILE),
        root.join(CONFIG_FILE),
    ] {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.mode() & 0o022 != 0 {
            return Err(Error::Unsafe {
                path,
                reason: format!(
                    "mode {:o} lets other users write it; run `chmod go-w` on it",
                    meta.mode() & 0o777
                ),
            });
        }
        // SAFETY-free check: compare owners through the metadata only.
        let me = current_uid();
        if me != 0 && meta.uid() != me {
            return Err(Error::Unsafe {
                path,
                reason: format!("it is owned by uid {}, not by you (uid {me})", meta.uid()),
            });
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_not_shared(_root: &Path) -> Result<()> {
    Ok(())
}

/// The effective uid, read from /proc so that no unsafe FFI is needed.
#[cfg(unix)]
fn current_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().nth(1))
                .and_then(|uid| uid.parse().ok())
        })
        .unwrap_or(0)
}
