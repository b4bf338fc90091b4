//! Objects: list rows, versions, references, and what a write did.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ObjectRow {
    pub kind: String,
    pub id: String,
    pub version: i64,
    pub title: String,
    pub archived: bool,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ObjectVersionRow {
    pub version: i64,
    pub parent: Option<i64>,
    pub author: String,
    pub hash: String,
    pub note: String,
    pub created_ms: i64,
    pub body: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ObjectRef {
    pub kind: String,
    pub id: String,
    pub version: i64,
}

/// The outcome of a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub kind: String,
    pub id: String,
    /// The current version after the write.
    pub version: i64,
    /// The version the new one was based on (`None` for a creation, or when nothing changed).
    pub parent: Option<i64>,
    /// sha256 of the canonical body.
    pub hash: String,
    /// False when the write would not have changed anything (same body, or already in the
    /// requested archive state): no version and no audit entry were added.
    pub changed: bool,
    pub archived: bool,
}
