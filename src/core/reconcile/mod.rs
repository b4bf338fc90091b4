//! Reconciliation.
