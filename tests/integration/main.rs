//! One integration-test binary (each extra binary costs a link on a 2-core machine).
//! Each module covers one capability and uses only public APIs or the real `keel` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure should panic loudly

// Test code may panic on setup failures: that is how a test reports them.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod crash;
mod gate;
mod orchestrator;
mod agents;
mod audit;
mod layering;
mod objects;
mod memory;
mod support;
mod agents;
mod crash;
mod live;
mod metrics;
mod orchestrator;
mod policy;
mod support;
mod tui;
mod tui_live;
mod policy;
mod reliability;
mod support;
mod workspace;
