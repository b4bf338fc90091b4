//! Measured outcomes as clients see them: an analytics import and its reconciliation, and
//! the offline researcher's ranking of ideas.

use serde::{Deserialize, Serialize};

/// A row that could not be imported, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    /// 1-based line in a CSV (header = 1), or 1-based item index for JSON.
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ImportReport {
    pub imported: usize,
    pub rejected: Vec<Rejected>,
}

/// What one reconciliation changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reconciled {
    /// Publications whose totals changed.
    pub publications: Vec<String>,
    /// Ideas whose evidence changed.
    pub ideas: Vec<String>,
    /// Outcome notes stored in memory (new ones only).
    pub notes: usize,
}

/// `Op::ImportAnalytics`: the rows imported and what reconciling them changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsImported {
    pub import: ImportReport,
    pub reconciled: Reconciled,
}

/// One idea in the offline researcher's ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    pub id: String,
    pub title: String,
    pub score: f64,
    pub rationale: String,
    /// The memory items it draws on.
    pub sources: Vec<String>,
}
