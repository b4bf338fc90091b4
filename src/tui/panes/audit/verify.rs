//! Chain verification: the core walks the hash chain; the pane shows how that went.

use super::AuditPane;
use crate::protocol::{Op, Query, Verification};
use crate::tui::format;
use crate::tui::panes::source::Source;
use crate::tui::theme::Role;

#[derive(Debug, Clone, PartialEq)]
pub enum VerifyState {
    NotRun,
    Running,
    Done(Verification),
    Failed(String),
}

impl VerifyState {
    /// The status line's text and its role; `verify_key` names the key that verifies.
    pub fn status(&self, verify_key: &str) -> (String, Role) {
        match self {
            VerifyState::NotRun => (
                format!("chain: not verified yet — {verify_key} verifies"),
                Role::Muted,
            ),
            VerifyState::Running => ("chain: verifying…".to_string(), Role::Info),
            VerifyState::Done(v) => match &v.first_broken {
                None => (
                    format!(
                        "chain: verified, {} entries intact",
                        format::count(v.entries.unsigned_abs())
                    ),
                    Role::Success,
                ),
                Some(b) => (
                    format!("chain: BROKEN at seq {}: {}", b.seq, b.reason),
                    Role::Error,
                ),
            },
            VerifyState::Failed(e) => (format!("chain: verification failed: {e}"), Role::Error),
        }
    }
}

/// The verification of the pane's chain as a [`Source`].
pub struct Verify<'a>(pub &'a mut AuditPane);

impl Source for Verify<'_> {
    type Answer = Verification;

    fn query(&mut self) -> Option<Op> {
        self.0.verify = VerifyState::Running;
        Some(Op::Query {
            query: Query::AuditVerify,
        })
    }

    fn fill(&mut self, answer: Verification) {
        self.0.verify = VerifyState::Done(answer);
    }

    fn fail(&mut self, message: String) {
        self.0.verify = VerifyState::Failed(message);
    }
}
