//! The core's error type. Each variant carries the context an operator needs to act on it.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Any other `SQLite` error. `?` on a `rusqlite::Error` goes through [`Error::from_sqlite`],
    /// so full disk, read-only, busy and damaged files become the variants below.
    #[error("database error: {0}")]
    Sqlite(#[source] rusqlite::Error),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{file}:{line}:{column}: {message}")]
    Config {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{path} is not a keel database ({reason}); it was left untouched")]
    ForeignDatabase { path: PathBuf, reason: String },

    #[error(
        "{path} was written by a newer keel (schema {found}, this build knows up to {supported}); upgrade keel — the workspace was left untouched"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error("the database is locked by another process (waited {waited_ms} ms); try again")]
    Busy { waited_ms: u64 },

    #[error("the disk is full while writing {what}; nothing was committed — free space and retry")]
    DiskFull { what: String },

    #[error("the workspace is read-only ({what}); nothing was committed")]
    ReadOnly { what: String },

    #[error(
        "{what} is damaged ({detail}); keel left the file untouched — run `keel doctor`, and restore keel.db from a backup"
    )]
    Corrupt { what: String, detail: String },

    #[error("{}", conflict_message(kind, id, *based_on, *current))]
    Conflict {
        kind: String,
        id: String,
        based_on: i64,
        current: i64,
    },

    #[error("{kind}/{id} not found")]
    NotFound { kind: String, id: String },

    /// A client asked for something its profile or its role does not allow.
    #[error("refused for {actor}: {reason}")]
    Refused { actor: String, reason: String },

    #[error("invalid {what}: {message}")]
    Invalid { what: String, message: String },

    #[error("schema check failed for {kind} at {field}: {message}")]
    Schema {
        kind: String,
        field: String,
        message: String,
    },

    #[error("workspace {path} is not safe: {reason}")]
    Unsafe { path: PathBuf, reason: String },

    /// A failure of something keel called (a thread, a client, a codec, a lock file), with
    /// what keel was doing; the cause stays reachable through `source()`.
    #[error("{context}: {source}")]
    Failed {
        context: String,
        #[source]
        source: BoxError,
    },

    /// A foreign error passed on as it is (its message, its source chain).
    #[error(transparent)]
    Wrapped(BoxError),

    #[error("{0}")]
    Other(String),
}

/// Any error from outside the core, boxed so [`Error`] keeps it as its source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

fn conflict_message(kind: &str, id: &str, based_on: i64, current: i64) -> String {
    if based_on == 0 {
        format!(
            "conflict on {kind}/{id}: it already exists (version {current}); to change it, base your write on version {current}"
        )
    } else {
        format!(
            "conflict on {kind}/{id}: you edited version {based_on} but the current version is {current}; nothing was written — reload, reapply your change and base it on version {current}"
        )
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        Error::from_sqlite(err, "the database")
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// `source` while `context` (what was being done, e.g. "cannot start the core thread").
    pub fn failed(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Failed {
            context: context.into(),
            source: source.into(),
        }
    }

    /// `source` as it is, kept as the error's source.
    pub fn wrap(source: impl Into<BoxError>) -> Self {
        Error::Wrapped(source.into())
    }

    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }

    /// Maps `SQLite`'s full-disk, read-only and busy codes to errors that say what happened.
    pub fn from_sqlite(err: rusqlite::Error, what: &str) -> Self {
        use rusqlite::ErrorCode;
        if let rusqlite::Error::SqliteFailure(code, _) = &err {
            match code.code {
                ErrorCode::DiskFull => {
                    return Error::DiskFull {
                        what: what.to_string(),
                    };
                }
                ErrorCode::ReadOnly | ErrorCode::CannotOpen if code.extended_code & 0xff == 8 => {
                    return Error::ReadOnly {
                        what: what.to_string(),
                    };
                }
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                    return Error::Busy {
                        waited_ms: u64::try_from(crate::core::store::BUSY_TIMEOUT.as_millis())
                            .unwrap_or(u64::MAX),
                    };
                }
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                    return Error::Corrupt {
                        what: what.to_string(),
                        detail: err.to_string(),
                    };
                }
                // SQLite reports a full disk as an I/O error when it cannot grow the WAL
                // index or create its files: say where to look.
                ErrorCode::SystemIoFailure => {
                    return Error::Other(format!(
                        "disk I/O error while {what} ({err}); check that the disk has free space and is healthy — nothing was committed"
                    ));
                }
                _ => {}
            }
        }
        Error::Sqlite(err)
    }
}
