//! External side effects: connectors (what can be done to the outside world and how to undo
//! it) and the idempotency ledger (so that each effect happens at most once).

pub mod connector;
pub mod ledger;
pub mod webhook;

pub use connector::{ActionSpec, Connector, ConnectorError, Reversibility};
