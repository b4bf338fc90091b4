//! The audit log as clients see it: entries, the filter that pages them, and the chain
//! verification.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub ts_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub payload: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Filters for `Query::AuditPage`. Empty fields match everything. `subject` and `actor` match a
/// prefix when they end in `*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub subject: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only entries with `seq` below this (for paging backwards from the newest).
    pub before_seq: Option<i64>,
    /// Only entries with `seq` above this (for paging forwards).
    pub after_seq: Option<i64>,
}

/// The answer to `Query::AuditVerify`: the whole chain recomputed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub entries: i64,
    /// The first entry whose stored fields do not hash to its stored hash, or whose
    /// `prev_hash` does not match its predecessor, or whose sequence number skips.
    pub first_broken: Option<Broken>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broken {
    pub seq: i64,
    pub reason: String,
}
