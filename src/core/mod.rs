//! The core: state, orchestration, memory, agents and side effects. No terminal types here.

pub mod approvals;
pub mod audit;
pub mod blackboard;
pub mod canonical;
pub mod clock;
pub mod config;
pub mod connectors;
pub mod coordinator;
pub mod effects;
pub mod error;
pub mod handle;
pub mod ids;
pub mod model_assets;
pub mod objects;
pub mod policy;
pub mod queue;
pub mod reconcile;
pub mod redact;
pub mod scheduler;
pub mod store;
pub mod workflow;
pub mod workspace;

pub use error::{Error, Result};
