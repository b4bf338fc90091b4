//! The core: state, orchestration, memory, agents and side effects. No terminal types here.
//!
//! The roles the orchestrator runs itself (`workflow`, `triage`, `publisher`, …) live in
//! [`roles`]: one list, one file per role; other rooms ask it rather than naming them.

pub mod actions;
pub mod agents;
pub mod approvals;
pub mod audit;
pub mod blackboard;
pub mod canonical;
pub mod clock;
pub mod config;
pub mod config_edit;
pub mod connectors;
pub mod coordinator;
pub mod demo;
pub mod doctor;
pub mod effects;
pub mod error;
pub mod failpoint;
pub mod handle;
pub mod health;
pub mod ids;
pub mod live;
pub mod llm;
pub mod mcp;
pub mod memory;
pub mod metrics;
pub mod model_assets;
pub mod objects;
pub mod outcomes;
pub mod policy;
pub mod provider_health;
pub mod queue;
pub mod reconcile;
pub mod redact;
pub mod research;
pub mod roles;
pub mod scheduler;
pub mod store;
pub mod toml_text;
pub mod watch;
pub mod wiring;
pub mod workflow;
pub mod workspace;

pub use error::{Error, Result};
