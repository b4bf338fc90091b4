//! What `keel bench torture` found: the report, its invariants as a list of violations,
//! and its figures as bench measurements.

use super::torture_memory::Agreement;
use super::{Measurement, emit};

/// What the torture found. `lost`, `duplicates` and `overlapping_claims` must be 0.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub seed: u64,
    pub trials: usize,
    pub kills: usize,
    /// `keel task add` processes killed mid-submission.
    pub writer_kills: usize,
    pub tasks: usize,
    pub effects_expected: usize,
    pub effects_applied: usize,
    pub effects_done_in_ledger: usize,
    pub requests: usize,
    pub recovery_lookups: usize,
    pub claims: usize,
    /// Leases taken back from killed processes.
    pub leases_recovered: usize,
    pub lost: usize,
    pub duplicates: usize,
    pub overlapping_claims: usize,
    pub audit_entries: i64,
    /// The chain verified in-process and through `keel audit verify`.
    pub audit_ok: bool,
    pub integrity: String,
    /// `Some(true)` if the LMDB directory opened, `None` if the workspace has none yet.
    pub lmdb_opened: Option<bool>,
    /// `keel memory add` / `forget` processes acknowledged, and killed mid-command.
    pub memory_adds: usize,
    pub memory_forgets: usize,
    pub memory_kills: usize,
    /// Memory commands killed exactly between the vector index's commit and `SQLite`'s.
    pub memory_faults_injected: usize,
    /// Memory commands refused on a busy database (clearly, nothing committed).
    pub memory_busy: usize,
    /// Acknowledged memory items missing at the end; acknowledged forgets still present.
    pub memory_lost: usize,
    pub memory_resurrected: usize,
    /// Disagreements between the vector index and `SQLite` left by the kills, before the
    /// final run's reconcile (`None`: no index).
    pub vector_drift_before_repair: Option<u64>,
    /// Repairs recorded in the audit log (the reconcile step at start-up made them).
    pub vector_repairs: usize,
    /// The agreement at the end, stored vectors re-embedded and compared (`None`: no index).
    pub vector_agreement: Option<Agreement>,
}

impl Report {
    /// The invariants, as a list of violations (empty when everything held).
    #[must_use]
    pub fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.lost > 0 {
            out.push(format!(
                "{} acknowledged tasks lost or unfinished",
                self.lost
            ));
        }
        if self.duplicates > 0 {
            out.push(format!("{} effects applied twice", self.duplicates));
        }
        if self.effects_applied != self.effects_expected {
            out.push(format!(
                "{} of {} effects applied",
                self.effects_applied, self.effects_expected
            ));
        }
        if self.effects_done_in_ledger != self.effects_expected {
            out.push(format!(
                "the ledger marks {} of {} effects done",
                self.effects_done_in_ledger, self.effects_expected
            ));
        }
        if self.overlapping_claims > 0 {
            out.push(format!(
                "{} claims overlapped a live claim",
                self.overlapping_claims
            ));
        }
        if !self.audit_ok {
            out.push("the audit chain does not verify".into());
        }
        if self.integrity != "ok" {
            out.push(format!("integrity_check: {}", self.integrity));
        }
        if self.lmdb_opened != Some(true) {
            out.push("the LMDB vector directory does not open (or was never created)".into());
        }
        if self.memory_lost > 0 || self.memory_resurrected > 0 {
            out.push(format!(
                "{} memory items lost, {} that must not exist present",
                self.memory_lost, self.memory_resurrected
            ));
        }
        match &self.vector_agreement {
            Some(a) if a.mismatches() == 0 => {}
            Some(a) => out.push(format!("the vector index and SQLite disagree: {a:?}")),
            None => out.push("no vector index to compare with SQLite".into()),
        }
        out
    }
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
pub(super) fn print_report(r: &Report, json: bool) {
    let mismatches = r
        .vector_agreement
        .as_ref()
        .map_or(-1.0, |a| a.mismatches() as f64);
    let figures: [(&str, f64, &'static str); 24] = [
        ("trials", r.trials as f64, "count"),
        ("sigkills", r.kills as f64, "count"),
        ("writer_sigkills", r.writer_kills as f64, "count"),
        ("tasks_acknowledged", r.tasks as f64, "count"),
        ("effects_applied", r.effects_applied as f64, "count"),
        ("recovery_lookups", r.recovery_lookups as f64, "count"),
        ("claims", r.claims as f64, "count"),
        ("leases_recovered", r.leases_recovered as f64, "count"),
        ("lost", r.lost as f64, "count"),
        ("duplicates", r.duplicates as f64, "count"),
        ("audit_entries_verified", r.audit_entries as f64, "count"),
        (
            "integrity_ok",
            if r.integrity == "ok" { 1.0 } else { 0.0 },
            "bool",
        ),
        (
            "lmdb_opened",
            match r.lmdb_opened {
                Some(true) => 1.0,
                Some(false) => 0.0,
                None => -1.0,
            },
            "bool (-1 = no vectors yet)",
        ),
        ("memory_adds_acknowledged", r.memory_adds as f64, "count"),
        (
            "memory_forgets_acknowledged",
            r.memory_forgets as f64,
            "count",
        ),
        ("memory_sigkills", r.memory_kills as f64, "count"),
        (
            "memory_faults_injected",
            r.memory_faults_injected as f64,
            "count",
        ),
        ("memory_busy_refusals", r.memory_busy as f64, "count"),
        ("memory_items_lost", r.memory_lost as f64, "count"),
        (
            "memory_forgotten_back",
            r.memory_resurrected as f64,
            "count",
        ),
        (
            "vector_drift_before_repair",
            r.vector_drift_before_repair.map_or(-1.0, |d| d as f64),
            "count (-1 = no index)",
        ),
        ("vector_repairs", r.vector_repairs as f64, "count"),
        (
            "vector_chunks_checked",
            r.vector_agreement.as_ref().map_or(0.0, |a| a.chunks as f64),
            "count",
        ),
        (
            "vector_sqlite_mismatches",
            mismatches,
            "count (-1 = no index)",
        ),
    ];
    for (metric, value, unit) in figures {
        emit(
            &Measurement {
                suite: "torture",
                metric: metric.to_string(),
                value,
                unit,
            },
            json,
        );
    }
}
