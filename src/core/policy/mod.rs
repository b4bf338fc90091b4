//! The policy engine: decides whether an external action is allowed, needs the operator's
//! approval, or is denied. Rules live in the workspace's `policy.toml` (compiled defaults in
//! `assets/policy.toml`); the first rule that matches wins, in file order.
//!
//! The input is a typed [`ActionRequest`] built by code from the connector's declaration and
//! the task's arguments — never free text. Nothing an agent writes, reads from memory or gets
//! back from a model reaches the decision: only the rules, the budgets and the operator's own
//! "always allow" decisions do.

pub mod budget;
pub mod engine;
pub mod glob;
pub mod lint;
pub mod mcp_defaults;
pub mod request;
pub mod rules;

pub use budget::{SpendLookup, record_spend, utc_day};
pub use engine::{Decision, Policy, evaluate};
pub use request::ActionRequest;
pub use rules::{Outcome, PolicyFile, Rule};

/// The rules compiled into keel, used when the workspace has no `policy.toml`.
pub const DEFAULT_POLICY: &str = include_str!("../../../assets/policy.toml");

/// Name of the workspace's policy file.
pub const POLICY_FILE: &str = "policy.toml";

#[cfg(test)]
mod tests;
