//! Agents and models: providers against a loopback server, the runtime, the offline
//! provider end to end, and the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod cli;
mod model_faults;
mod offline;
pub(crate) mod providers;
pub(crate) mod runtime;
pub(crate) mod server;
