//! keel — the operating layer of a one-person company.
//!
//! Module map:
//! - [`core`] — everything that is not the terminal: the `SQLite` store and its migrations,
//!   versioned business objects, the hash-chained audit log, workspaces and configuration,
//!   the durable queue, the built-in roles (`core::roles`: one list, one file each),
//!   scheduler, blackboard, policy, approvals, effects ledger, memory (embeddings + vectors),
//!   agents, model providers, connectors and the cost/value ledger.
//!   Nothing under `core` depends on ratatui or crossterm (a test enforces it).
//! - [`protocol`] — `Op` (commands in), its typed `Answer`, and `Event` (notifications out),
//!   with the rows they carry; it imports nothing from `core` (a test enforces it). Clients
//!   drive the core through `core::handle::CoreHandle` with these types: the console for
//!   everything, the CLI for every write of approvals, tasks, the queue, objects and effects
//!   (read-only commands may read the store directly), and `keel mcp serve` for MCP clients.
//!   Nothing else writes: the layering test checks it.
//! - [`tui`] — the full-screen ratatui console, a client of the core handle.
//! - [`mcp_serve`] — `keel mcp serve`: keel as an MCP server, another client of the handle.
//! - [`cli`] — clap subcommands; every console action is scriptable.
//! - [`bench`] — `keel bench <suite> --json`, one JSON object per line.
//! - [`logging`] — file logging (0600) and the terminal-restoring panic hook.

pub mod bench;
pub mod cli;
pub mod core;
pub mod logging;
pub mod mcp_serve;
pub mod protocol;
pub mod tui;
