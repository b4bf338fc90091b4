//! Role-based agents: templates with capability profiles, and the runtime that runs them.
//!
//! - [`template`] — `agents/*.toml`, hashed; shipped roles plus the workspace's own.
//! - [`runtime`] (with `runtime_steps`, `runtime_model`, `runtime_tools`) — one task, step
//!   by step, every step checkpointed in [`record`]; [`replay`] re-executes from the record.
//! - [`context`], [`window`], [`routing`], [`budget`], [`cost`], [`schemas`] — prompt
//!   assembly, fitting it into the model's context window, tier routing and cascade,
//!   budget checks, the spend ledger, cached validators.
//! - [`query`] answers `Query::Runs`, `Query::RunDetail` and `Query::MemoryUsed`.
//! - [`service`] builds a runtime for a workspace.
//!
//! Seams to the rest of keel: [`tools::ToolHost`] (objects, blackboard, queue, effects
//! ledger) and [`tools::MemoryRetriever`] (vector memory), implemented in
//! `crate::core::wiring` for runs the coordinator drives. [`local_host::LocalHost`] stays
//! for stand-alone runs (`keel agents run`, replay): objects on the foundation tables,
//! memory as a keyword search, and no blackboard, queue or external actions.

pub mod budget;
pub mod context;
pub mod cost;
pub mod local_host;
pub mod query;
pub mod record;
pub mod references;
pub mod replay;
pub mod routing;
pub mod runtime;
mod runtime_context;
mod runtime_model;
mod runtime_steps;
mod runtime_tools;
pub mod schemas;
pub mod service;
pub mod template;
pub mod tool_refs;
pub mod tools;
pub mod window;

pub use runtime::{AgentTask, RunOutcome, Runtime};
