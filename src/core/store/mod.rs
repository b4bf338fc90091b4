//! The `SQLite` store: the single source of truth. WAL mode, one writer at a time
//! (`BEGIN IMMEDIATE`), busy waits with a bounded timeout, durability as a setting.
//!
//! Every state change goes through [`Store::write`], which hands the closure a transaction;
//! the change and its audit entry commit together or not at all.

pub mod migrations;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::core::error::{Error, Result};

/// keel's `SQLite` `application_id` ("KEEL" in ASCII): tells our databases from foreign ones.
pub const APPLICATION_ID: i64 = 0x4B45_454C;

/// How long a writer waits for another process's transaction before reporting busy.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// `synchronous` level. FULL is the default for a business ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    #[default]
    Full,
    Normal,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// One connection to a workspace database. Cheap to open; open one per thread.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Write transactions committed through this connection (what an operator action
    /// costs is measured with it).
    writes: u64,
}

impl Store {
    /// Opens (creating if absent) and migrates the database at `path`.
    /// A foreign or newer-schema file is refused and never written.
    pub fn open(path: &Path, durability: Durability) -> Result<Self> {
        let existed = path.exists();
        if existed {
            check_header(path)?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Error::from_sqlite(e, "opening the database"))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            writes: 0,
        };
        store.check_identity(existed)?;
        store
            .conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| Error::from_sqlite(e, "enabling WAL"))?;
        store
            .conn
            .pragma_update(None, "synchronous", durability.pragma())?;
        store.conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(&mut store.conn, &store.path)?;
        #[cfg(unix)]
        crate::core::workspace::restrict_file(path)?;
        Ok(store)
    }

    /// Opens without migrating: for read-only tools (`doctor`) that must not touch the file.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        check_header(path)?;
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| Error::from_sqlite(e, "opening the database read-only"))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
            writes: 0,
        };
        store.check_identity(true)?;
        Ok(store)
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw connection, for reads. Writes go through [`Store::write`].
    #[must_use]
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn set_durability(&self, durability: Durability) -> Result<()> {
        self.conn
            .pragma_update(None, "synchronous", durability.pragma())?;
        Ok(())
    }

    /// Runs `f` inside an immediate (write-locking) transaction and commits it.
    /// On error nothing is committed. Full disk, read-only and busy map to clear errors.
    pub fn write<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| busy_aware(e, "the database"))?;
        // Statements inside `f` hit a full disk or a read-only file first: classify their
        // errors too, not only those of BEGIN and COMMIT.
        let out = f(&tx).map_err(|e| match e {
            Error::Sqlite(e) => busy_aware(e, "the database"),
            other => other,
        })?;
        tx.commit().map_err(|e| busy_aware(e, "the database"))?;
        self.writes += 1;
        Ok(out)
    }

    /// How many write transactions this connection has committed.
    #[must_use]
    pub fn writes(&self) -> u64 {
        self.writes
    }

    fn check_identity(&self, existed: bool) -> Result<()> {
        let app_id: i64 = self
            .conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(|e| open_error(&self.path, e))?;
        let user_version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if app_id == APPLICATION_ID {
            return Ok(());
        }
        let tables: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| open_error(&self.path, e))?;
        if existed && (app_id != 0 || user_version != 0 || tables > 0) {
            return Err(foreign(
                &self.path,
                "it is a SQLite database that belongs to another program",
            ));
        }
        Ok(())
    }
}

fn busy_aware(err: rusqlite::Error, what: &str) -> Error {
    match Error::from_sqlite(err, what) {
        Error::Busy { .. } => Error::Busy {
            waited_ms: u64::try_from(BUSY_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
        },
        other => other,
    }
}

/// Why the first read of a freshly opened file failed, in words an operator can act on.
/// The header was already checked, so "not a database" here means a damaged file; "cannot
/// open" usually means `SQLite` could not create its `-shm`/`-wal` companions, because the
/// disk is full or the directory read-only — a probe write tells which.
fn open_error(path: &Path, err: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    let what = path.display().to_string();
    let Some(code) = err.sqlite_error_code() else {
        return Error::Sqlite(err);
    };
    match code {
        ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => Error::Corrupt {
            what: path.display().to_string(),
            detail: err.to_string(),
        },
        ErrorCode::CannotOpen
        | ErrorCode::SystemIoFailure
        | ErrorCode::ReadOnly
        | ErrorCode::DiskFull => match probe_write(path.parent().unwrap_or(Path::new("."))) {
            Some(std::io::ErrorKind::StorageFull) => Error::DiskFull { what },
            Some(std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied) => {
                Error::ReadOnly { what }
            }
            _ => Error::failed(format!("cannot open {}", path.display()), err),
        },
        _ => Error::from_sqlite(err, &what),
    }
}

/// Tries to write 4 KiB next to the database; returns the kind of error if that fails.
fn probe_write(dir: &Path) -> Option<std::io::ErrorKind> {
    use std::io::Write;
    let probe = dir.join(".keel-write-probe");
    let result = std::fs::File::create(&probe).and_then(|mut f| {
        f.write_all(&[0u8; 4096])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(&probe);
    result.err().map(|e| e.kind())
}

fn foreign(path: &Path, reason: &str) -> Error {
    Error::ForeignDatabase {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Refuses files that are not `SQLite` databases before `SQLite` gets a chance to touch them.
///
/// Checked once per path per process: closing any descriptor of the database file drops
/// every POSIX lock this process holds on it, including the SHARED lock `SQLite` keeps in
/// WAL mode. Re-reading the header while another connection is open let a second process
/// think it was the last user, checkpoint and delete the WAL under us — a corrupted
/// database (found by the orchestrator's crash test).
fn check_header(path: &Path) -> Result<()> {
    static CHECKED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut checked = CHECKED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if checked.contains(&key) {
        return Ok(());
    }
    read_header(path)?;
    checked.push(key);
    Ok(())
}

fn read_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut header = [0u8; 16];
    let n = file.read(&mut header).map_err(|e| Error::io(path, e))?;
    if n == 0 {
        return Ok(());
    }
    if n < 16 || &header != b"SQLite format 3\0" {
        return Err(foreign(path, "the file is not a SQLite database"));
    }
    Ok(())
}
