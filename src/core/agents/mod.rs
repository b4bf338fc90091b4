//! Role-based agents: templates with capability profiles, and the runtime that runs them.

pub mod budget;
pub mod context;
pub mod cost;
pub mod local_host;
pub mod query;
pub mod record;
pub mod replay;
pub mod routing;
pub mod runtime;
mod runtime_model;
mod runtime_steps;
mod runtime_tools;
pub mod schemas;
pub mod service;
pub mod template;
pub mod tools;

pub use runtime::{AgentTask, RunOutcome, Runtime};
