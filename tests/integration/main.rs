//! One integration-test binary (each extra binary costs a link on a 2-core machine).
//! Each module covers one capability and uses only public APIs or the real `keel` binary.

// Test code may panic on setup failures: that is how a test reports them.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod crash;
mod orchestrator;
mod policy;
mod reliability;
mod support;
mod workspace;
