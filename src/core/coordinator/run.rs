//! How a run ends and how it is stopped from outside: its outcome, its error (and how core
//! and ledger errors map onto retry, escalation or failure) and its interrupt flag.

use std::sync::atomic::{AtomicU8, Ordering};

use serde_json::Value;

use crate::core::clock::Millis;
use crate::core::effects::connector::ConnectorError;
use crate::core::effects::ledger::LedgerError;
use crate::core::error::Error;

/// How a run ended, when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded(Value),
    /// Wait until every child is finished, then run again (fan-in).
    WaitChildren,
    /// Wait for the operator's approval (the approvals module resolves it).
    WaitApproval(String),
    /// Wait until this time, then run again.
    WaitTimer(Millis),
}

/// Why a run was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Interrupt {
    Timeout = 1,
    /// The lease is gone (cancelled, or another process took the task over).
    LeaseLost = 2,
    Paused = 3,
    Shutdown = 4,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Worth another attempt after a backoff.
    #[error("{0}")]
    Retryable(String),
    /// Will fail again; escalate now.
    #[error("{0}")]
    Permanent(String),
    /// The operator must decide (e.g. an effect that may or may not have happened).
    #[error("{0}")]
    Escalate(String),
    #[error("interrupted: {0:?}")]
    Interrupted(Interrupt),
    /// Refused for good (a policy denial): the task fails without retry or escalation.
    #[error("{0}")]
    Refused(String),
}

impl From<Error> for RunError {
    fn from(e: Error) -> Self {
        match e {
            Error::Schema { .. } | Error::Invalid { .. } | Error::NotFound { .. } => {
                RunError::Permanent(e.to_string())
            }
            other => RunError::Retryable(other.to_string()),
        }
    }
}

impl From<LedgerError> for RunError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Connector(ConnectorError::Transient { .. }) | LedgerError::Store(_) => {
                RunError::Retryable(e.to_string())
            }
            LedgerError::Connector(ConnectorError::Permanent { .. }) => {
                RunError::Permanent(e.to_string())
            }
            LedgerError::Unresolvable { .. } | LedgerError::Compensated { .. } => {
                RunError::Escalate(e.to_string())
            }
        }
    }
}

/// Shared between a running task and the heartbeat that may interrupt it.
#[derive(Debug)]
pub struct RunControl {
    interrupt: AtomicU8,
    pub deadline_ms: Millis,
}

impl RunControl {
    #[must_use]
    pub fn new(deadline_ms: Millis) -> Self {
        RunControl {
            interrupt: AtomicU8::new(0),
            deadline_ms,
        }
    }
    pub fn interrupt(&self, why: Interrupt) {
        let _ = self
            .interrupt
            .compare_exchange(0, why as u8, Ordering::SeqCst, Ordering::SeqCst);
    }
    #[must_use]
    pub fn interrupted(&self) -> Option<Interrupt> {
        match self.interrupt.load(Ordering::SeqCst) {
            1 => Some(Interrupt::Timeout),
            2 => Some(Interrupt::LeaseLost),
            3 => Some(Interrupt::Paused),
            4 => Some(Interrupt::Shutdown),
            _ => None,
        }
    }
}
