//! One integration-test binary (each extra binary costs a link on a 2-core machine).
//! Each module covers one capability and uses only public APIs or the real `keel` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure should panic loudly

mod audit;
mod layering;
mod objects;
mod support;
mod workspace;
