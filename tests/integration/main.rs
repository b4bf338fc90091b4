//! One integration-test binary (each extra binary costs a link on a 2-core machine).
//! Each module covers one capability and uses only public APIs or the real `keel` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure should panic loudly

mod agents;
mod agents_wired;
mod audit;
mod content_loop;
mod crash;
mod gate;
mod layering;
mod live;
mod mcp;
mod mcp_agents;
mod mcp_faults;
mod mcp_gate;
mod mcp_http;
mod mcp_peers;
mod mcp_serve;
mod memory;
mod metrics;
mod model_server;
mod models_connect;
mod objects;
mod orchestrator;
mod policy;
mod real_model;
mod reliability;
mod support;
mod triage_routing;
mod tui;
mod tui_live;
mod workspace;
