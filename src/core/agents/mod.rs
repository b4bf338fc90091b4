//! Role-based agents: templates with capability profiles, and the runtime that runs them.

pub mod template;
pub mod tools;
